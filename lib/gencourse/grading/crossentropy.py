"""Judging a loss made of one term per score (a logit) towards a target: the squared error or the
binary cross-entropy from logits, each half weighted (grader side; no topic).

A half is (name, scores z, target t, weight w): the loss is the sum over halves of w * mean(term(z, t)).
Scores far from zero (the hidden cases put some at +-150 or +-200) dominate a value, so its tolerance
can be larger than a moderate score's whole term: each score's gradient, which the probe sends back,
tells the terms apart, and the target it implies names a loss towards another label.
"""

from __future__ import annotations

import numpy as np

from .judging import Mistake, differences, first_match, get

EXTREME = 100.0     # scores this large dominate a loss's value: only the gradient shows the other scores' terms
KINDS = ("squared", "bce")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softplus(z):
    return np.logaddexp(0.0, z)


def terms(kind, z, t):
    """Each score's loss towards target t: the squared error or the cross-entropy from logits."""
    return (z - t) ** 2 if kind == "squared" else softplus(z) - t * z


def gradient(kind, z, t, w):
    """The gradient of w * mean(terms(kind, z, t)) for the scores z."""
    return w * (2 * (z - t) if kind == "squared" else sigmoid(z) - t) / z.size


def implied_target(kind, z, grad, w):
    """The target each score's gradient says was used (`gradient` solved for t)."""
    return z - z.size * grad / (2 * w) if kind == "squared" else sigmoid(z) - z.size * grad / w


def from_probabilities(z, t, how: str) -> float:
    """Mean cross-entropy of float32 probabilities: the raw scores (`raw`: Keras without from_logits, which
    clips to [1e-7, 1 - 1e-7]), or a sigmoid's output clipped so (`clip`) or with the log clamped at -100
    (`clamp`: torch's binary_cross_entropy)."""
    p = np.asarray(z if how == "raw" else sigmoid(z), np.float32).astype(np.float64)
    with np.errstate(divide="ignore"):
        if how == "clamp":
            log_p, log_q = np.maximum(np.log(p), -100), np.maximum(np.log(1 - p), -100)
        else:
            p = np.clip(p, np.float32(1e-7), np.float32(1) - np.float32(1e-7))
            log_p, log_q = np.log(p), np.log(1 - p)
    return float(np.mean(-(t * log_p + (1 - t) * log_q)))


def bce_variants(halves) -> list:
    """Known wrong cross-entropies [(value, hint)] of a loss that sums w * mean BCE(z, t) over `halves`:
    the arguments swapped (in every half, or in one), from_logits left out, a sigmoid and then the
    cross-entropy of probabilities (torch's log clamped at -100, Keras' clip)."""
    right = lambda z, t: float(np.mean(terms("bce", z, t)))  # noqa: E731

    def total(fn, only=None):
        return sum(w * (fn(z, t) if only in (None, name) else right(z, t)) for name, z, t, w in halves)

    def swapped(z, t):                   # BCE(input=t, target=z) = softplus(t) - t z
        return float(np.mean(softplus(t) - t * z))
    out = [(total(swapped), "the cross-entropy's arguments are swapped: the scores are its input (logits), the "
                            "0/1 labels its targets")]
    if len(halves) > 1:
        out += [(total(swapped, name), f"the cross-entropy's arguments are swapped for {name}: the scores are its "
                                       "input (logits), the 0/1 labels its targets") for name, *_ in halves]
    big = _extremes(halves)
    sigmoid_then = (f"a sigmoid, then the cross-entropy of probabilities: at scores {big}" if big else
                    "a sigmoid, then the cross-entropy of probabilities: at large scores") + (
        " the float32 sigmoid is exactly 0 or 1, and the log is {}; the cross-entropy from logits never forms "
        "the probability")
    return out + [
        (total(lambda z, t: from_probabilities(z, t, "raw")),
         "the cross-entropy treats the scores as probabilities (from_logits left out): the scores are logits, any "
         "real number; pass from_logits=True"),
        (total(lambda z, t: from_probabilities(z, t, "clamp")), sigmoid_then.format("clamped at -100")),
        (total(lambda z, t: from_probabilities(z, t, "clip")), sigmoid_then.format("taken of 1e-7 instead")),
    ]


def _extremes(halves) -> str:
    """'of -200 and 200' for the largest scores of the halves when they dominate, else ''."""
    big = max(float(np.abs(z).max(initial=0)) for _, z, *_ in halves)
    return f"of -{big:g} and {big:g}" if big >= EXTREME else ""


def _constant_target(kind, z, grad, w, t):
    """The one target other than t that every score's gradient implies, or None."""
    implied = implied_target(kind, z, grad, w)
    if implied.size > 1 and np.ptp(implied) < 1e-3 and abs(float(implied.mean()) - t) > 1e-3:
        return float(implied.mean())
    return None


def judge_terms(replies, key, who: str, label: str, kind: str, got: float, want: float, variants, halves,
                missing_flags) -> None:
    """One loss: its value, then each half's gradient [(name, z, t, w, gradient's reply name)]; a Mistake
    with the known wrong answer the value equals (`variants`), the other target the gradients imply, or the
    terms that differ. `label` names the loss in messages ("G's bce loss")."""
    value_ok = bool(np.isclose(got, want, rtol=1e-4, atol=1e-6))
    if not value_ok:
        first_match(got, variants, rtol=1e-4, atol=1e-6)
    big = _extremes([h[:4] for h in halves]) or "far from zero"
    wrong = []
    for flag, (name, z, t, w, grad_name) in zip(missing_flags, halves):
        if flag:
            if value_ok:
                raise Mistake(f"{who}'s loss is right but no gradient reaches {name}: it is computed outside the "
                              "framework's graph (numpy, .numpy(), .detach()?), so it could not train the networks")
            continue
        exp = gradient(kind, z, t, w)
        grad = get(replies, key, grad_name, exp.shape)
        if not np.allclose(grad, exp, rtol=1e-3, atol=1e-7):
            wrong.append((name, z, t, w, grad, exp))
    targets = [(name, t, _constant_target(kind, z, grad, w, t)) for name, z, t, w, grad, exp in wrong]
    implied = {name: other for name, t, other in targets}
    if wrong and None not in implied.values() and np.isclose(got, sum(
            w * np.mean(terms(kind, z, implied.get(name, t))) for name, z, t, w, _ in halves), rtol=1e-4, atol=1e-6):
        said = "; ".join(f"the target for {name} is {other:.3g} where it should be {t:g}" for name, t, other in targets)
        raise Mistake(f"{label}: {said} (no label smoothing in this loss)")
    if not value_ok:
        text = f"{label}: expected {want:.6g}, got {got:.6g}"
        if wrong and all(np.all(np.abs(z)[~np.isclose(grad, exp, rtol=1e-3, atol=1e-7)] >= EXTREME)
                         for name, z, t, w, grad, exp in wrong):
            text += (f": its terms are right for the moderate scores and wrong only at the scores {big}; " +
                     ("compute the cross-entropy from the logits stably (the framework's loss from logits, or "
                      "softplus)" if kind == "bce" else "the loss must hold for any score (no clip or clamp)"))
        elif wrong:
            text += f"; its gradient for {wrong[0][0]} differs too: {differences(wrong[0][4], wrong[0][5], 1e-3, 1e-7)}"
        raise Mistake(text)
    if wrong:
        name, z, t, w, grad, exp = wrong[0]
        if np.abs(z).max() >= EXTREME:
            raise Mistake(f"{who}'s loss is close to the expected {want:.6g} only because the scores {big} "
                          f"dominate its value: the terms of other scores are not right, as its gradient for {name} "
                          f"shows: {differences(grad, exp, 1e-3, 1e-7)}")
        raise Mistake(f"{who}'s loss is right but its gradient for {name} is not: {differences(grad, exp, 1e-3, 1e-7)}")
