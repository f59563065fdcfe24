"""Style mixing and truncation in W: the judges of the two TODOs that act on a generator's styles.

Each compares the student's `ws` with `gencourse.reference.stylegan` and names the known slips (the
latents swapped, the crossover or the cutoff off by one or counted from the other end, psi and 1 - psi
swapped); both check that the notebook's inputs come back unchanged (it mixes the same w twice).
"""

from __future__ import annotations

import numpy as np

from ...grading import Case, Mistake, close, first_match, get, kept_inputs, show
from ...reference import stylegan as ref


def mixing_case(seed: int, batch: int, num_layers: int, w_dim: int, crossover: int) -> Case:
    rng = np.random.default_rng(seed)
    w1, w2 = (rng.standard_normal((batch, num_layers, w_dim)).astype(np.float32) for _ in range(2))
    return Case(f"seed {seed}, styles of shape {[batch, num_layers, w_dim]}, crossover {crossover}",
                {"w1": w1, "w2": w2, "crossover": np.array(crossover)})


def judge_mixing(inputs, replies, key):
    w1, w2, c = inputs["w1"].astype(np.float64), inputs["w2"].astype(np.float64), int(inputs["crossover"])
    got = get(replies, key, "ws", w1.shape)
    kept_inputs(replies, key, ("w1", "w2"), "mix_styles")      # the notebook mixes the same w twice
    expected = ref.mix_styles(w1, w2, c)
    if close(got, expected):
        return None
    n = w1.shape[1]
    first_match(got, [
        (ref.mix_styles(w2, w1, c), f"the latents are swapped: layers 0 to {c - 1} (before the crossover) take "
                                    "w1, the rest w2"),
        (ref.mix_styles(w1, w2, c + 1), f"off by one: layer {c} (the crossover itself) took w1; layers before "
                                        f"the crossover (index < {c}) take w1, the crossover and after take w2"),
        (ref.mix_styles(w1, w2, c - 1), f"off by one: layer {c - 1} took w2; every layer with index < {c} takes "
                                        "w1"),
        (ref.mix_styles(w2, w1, n - c), "the crossover is counted from the last layer: layers with index < "
                                        "crossover (the coarse ones, from 4x4) take w1"),
    ])
    raise Mistake(f"expected layers < {c} from w1 and the rest from w2: per layer, got w1 where "
                  f"{_which(got, w1)}, expected {_which(expected, w1)}")


def _which(ws, w1) -> str:
    return str([int(i) for i in range(ws.shape[1]) if np.allclose(ws[:, i], w1[:, i], atol=1e-5)])


def truncation_case(seed: int, batch: int, num_layers: int, w_dim: int, psi: float, cutoff) -> Case:
    rng = np.random.default_rng(seed)
    return Case(f"seed {seed}, styles of shape {[batch, num_layers, w_dim]}, psi {psi:g}, cutoff {cutoff}",
                {"ws": rng.standard_normal((batch, num_layers, w_dim)).astype(np.float32),
                 "w_avg": rng.normal(1.5, 0.5, w_dim).astype(np.float32), "psi": np.array(psi),
                 "cutoff": np.array(-1 if cutoff is None else cutoff)})


def judge_truncation(inputs, replies, key):
    ws, avg, psi = inputs["ws"].astype(np.float64), inputs["w_avg"].astype(np.float64), float(inputs["psi"])
    cutoff = None if int(inputs["cutoff"]) < 0 else int(inputs["cutoff"])
    got = get(replies, key, "ws", ws.shape)
    kept_inputs(replies, key, ("ws", "w_avg"), "truncate")
    expected = ref.truncate(ws, avg, psi, cutoff)
    if close(got, expected):
        return None
    n = ws.shape[1]
    mask = (ref.truncation_coefficients(n, 0.0, cutoff) == 0)[None, :, None]
    variants = [
        (ref.truncate(ws, avg, 1 - psi, cutoff), "psi and 1 - psi swapped: w' = w_avg + psi (w - w_avg), so psi "
                                                 "is the part of (w - w_avg) that is kept"),
        (np.where(mask, avg - psi * (ws - avg), ws), "the wrong direction: w' = w_avg + psi (w - w_avg) moves w "
                                                     "toward the average, not past it"),
        (ref.truncate(ws, 0 * avg, psi, cutoff), "psi is applied around zero (psi * w): truncation pulls w toward "
                                                 "w_avg, w' = w_avg + psi (w - w_avg)"),
    ]
    if cutoff is not None:
        variants += [
            (ref.truncate(ws, avg, psi, None), f"the cutoff is ignored: only layers with index < {cutoff} are "
                                               "truncated, the others keep their w"),
            (ref.truncate(ws, avg, psi, cutoff + 1), f"off by one: layer {cutoff} was truncated too; only layers "
                                                     f"with index < {cutoff}"),
            (ref.truncate(ws, avg, psi, cutoff - 1), f"off by one: layer {cutoff - 1} was not truncated; every "
                                                     f"layer with index < {cutoff} is"),
            (np.where(mask, ws, avg + psi * (ws - avg)), f"the wrong layers: those with index >= {cutoff} were "
                                                         f"truncated; it is those below {cutoff} (the coarse ones)"),
        ]
    first_match(got, variants)
    raise Mistake(f"expected w_avg + psi (w - w_avg) on layers < {cutoff if cutoff is not None else n}: "
                  f"got {show(got)}, expected {show(expected)}")
