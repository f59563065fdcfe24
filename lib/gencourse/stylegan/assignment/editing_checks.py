"""Checks of the editing part (grader side): directions in W found from labelled samples.

`find_direction(ws, values, quantile)` and `class_direction(ws, predicted, target)` take plain numpy
codes [n, w_dim] with one measured attribute per sample (stroke thickness, the classifier's digit)
and return a direction in W; they are judged on fixed codes against gencourse.stylegan.editing,
the package's versions (the paper's linear-separability idea, section 4.2, made a difference of
means). The notebook then moves its own generator's w along them.
"""

from __future__ import annotations

import numpy as np

from ...grading import Case, Mistake, close, first_match, get, show
from .. import editing


def direction_case(seed: int, n: int, w_dim: int, quantile: float) -> Case:
    """Codes whose mean depends on the attribute (so every wrong split gives another direction)."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(n).astype(np.float64) + rng.uniform(0, 0.5, n)     # distinct: no ties
    ws = rng.standard_normal((n, w_dim)) + np.outer(values / n, rng.standard_normal(w_dim))
    return Case(f"seed {seed}, {n} codes of {w_dim} numbers, quantile {quantile:g}",
                {"ws": ws.astype(np.float32), "values": values, "quantile": np.array(quantile)})


def _split(ws, order, k_top, k_bottom):
    return ws[order[-k_top:]].mean(axis=0) - ws[order[:k_bottom]].mean(axis=0)


def judge_direction(inputs, replies, key):
    ws, values, q = inputs["ws"].astype(np.float64), inputs["values"], float(inputs["quantile"])
    got = get(replies, key, "direction", (ws.shape[1],))
    expected = editing.find_direction(ws, values, q)
    if close(got, expected, rtol=1e-4, atol=1e-5):
        return None
    order, n = np.argsort(values), len(values)
    k = max(1, int(n * q))
    first_match(got, [
        (-expected, "the sign is flipped: the direction goes from the bottom quantile's mean w to the top's "
                    "(top minus bottom), so that moving along it raises the attribute"),
        (expected / np.linalg.norm(expected), "the direction is normalized to length 1: return the difference "
                                              "of the two means as it is (its length says how far apart they are)"),
        (_split(ws, order, n // 2, n - n // 2), f"the samples are split at the median: take the top and bottom "
                                                f"{q:g} of the attribute ({k} samples each here)"),
        (ws[order[-k:]].mean(axis=0) - ws.mean(axis=0), "the top quantile's mean minus the mean of all samples: "
                                                        "subtract the bottom quantile's mean"),
        (ws[order[-k:]].mean(axis=0), "only the top quantile's mean: the direction is its difference from the "
                                      "bottom quantile's mean"),
    ], rtol=1e-4, atol=1e-5)
    raise Mistake(f"expected the mean w of the {k} samples with the largest attribute minus that of the {k} with "
                  f"the smallest: got {show(got)}, expected {show(expected)}")


def class_case(seed: int, n: int, w_dim: int, target: int, few: bool = False) -> Case:
    rng = np.random.default_rng(seed)
    predicted = rng.integers(0, 10, n)
    if few:
        predicted[predicted == target] = (target + 1) % 10
        predicted[:3] = target
    ws = rng.standard_normal((n, w_dim)) + (predicted == target)[:, None] * rng.standard_normal(w_dim)
    return Case(f"seed {seed}, {n} codes, target digit {target}" + (" (3 samples of it)" if few else ""),
                {"ws": ws.astype(np.float32), "predicted": predicted.astype(np.int64), "target": np.array(target)})


def judge_class_direction(inputs, replies, key):
    ws, predicted, target = inputs["ws"].astype(np.float64), inputs["predicted"], int(inputs["target"])
    expected = editing.class_direction(ws, predicted, target)
    none = float(get(replies, key, "none").reshape(()))
    if expected is None:
        if none:
            return None
        raise Mistake(f"only {int((predicted == target).sum())} samples are read as {target}: return None when "
                      f"fewer than {editing.MIN_CLASS_SAMPLES} fall on either side (no direction to estimate)")
    if none:
        raise Mistake(f"None returned although {int((predicted == target).sum())} samples are read as {target} "
                      f"and {int((predicted != target).sum())} are not")
    got = get(replies, key, "direction", (ws.shape[1],))
    if close(got, expected, rtol=1e-4, atol=1e-5):
        return None
    hit = predicted == target
    first_match(got, [
        (-expected, f"the sign is flipped: the mean w of the samples read as {target} minus that of the others"),
        (ws[hit].mean(axis=0) - ws.mean(axis=0), f"the mean of the samples read as {target} minus the mean of all: "
                                                 "subtract the mean of the others"),
    ], rtol=1e-4, atol=1e-5)
    raise Mistake(f"expected the mean w of the samples read as {target} minus that of the others: got {show(got)}, "
                  f"expected {show(expected)}")
