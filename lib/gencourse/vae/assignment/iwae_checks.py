"""Judges of the importance-weighted bound (grader side), against `reference.iwae_bound`.

The student's `iwae_bound(log_px_given_z, z, z_mean, z_log_var)` gets the K codes of
each example drawn from q(z|x) and log p(x|z_k), and returns log 1/K sum_k w_k with
w_k = p(x|z_k) p(z_k) / q(z_k|x) (Burda, Grosse & Salakhutdinov 2016, eq. 8). A known
mistake is named only when the values equal it on the case's input; the inputs draw
log p(x|z) over a range wide enough that every listed mistake gives other values.
"""

from __future__ import annotations

import numpy as np

from ... import reference
from ...grading import Case, Mistake, close, first_match, get, ok_reply
from ...reference.vae import log_normal
from .elbo_checks import describe, one_per_example


def iwae_case(seed: int, k: int, n: int, dims: int, log_px=(-6.0, -1.0)) -> Case:
    """K codes per example drawn from a random q(z|x); log p(x|z_k) uniform in `log_px` (nats).
    Hundreds of nats (a digit's likelihood) make exp(log-weight) underflow without a log-sum-exp."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-2.0, 2.0, (n, dims)).astype(np.float32)
    log_var = rng.uniform(-2.0, 1.0, (n, dims)).astype(np.float32)
    z = (mu + np.exp(0.5 * log_var) * rng.standard_normal((k, n, dims))).astype(np.float32)
    lp = rng.uniform(*log_px, (k, n)).astype(np.float32)
    label = f"seed {seed}, K={k} codes for {n} examples of {dims} latent dimensions, log p(x|z) in {list(log_px)}"
    return Case(label, {"log_px_given_z": lp, "z": z, "z_mean": mu, "z_log_var": log_var})


def _arrays(inputs):
    return [inputs[k].astype(np.float64) for k in ("log_px_given_z", "z", "z_mean", "z_log_var")]


def _lme(log_w):
    """log of the mean over axis 0 of exp(log_w), stably."""
    top = log_w.max(axis=0)
    return top + np.log(np.mean(np.exp(log_w - top), axis=0))


def iwae_variants(lp, z, mu, lv) -> list[tuple[np.ndarray, str]]:
    """Known wrong answers and what they tell the student."""
    k, dims = len(lp), z.shape[-1]
    prior, post = log_normal(z), log_normal(z, mu[None], lv[None])
    log_w = lp + prior - post
    const = 0.5 * dims * np.log(2 * np.pi)
    return [
        (log_w.mean(0), "the mean of the log-weights (the ELBO's estimate from K samples), not the log of the "
                        "mean weight: log-sum-exp over the K samples, minus log K"),
        (_lme(log_w) + np.log(k), f"every value is log K = {np.log(k):.3g} too large: the log of the *mean* "
                                  "weight, so subtract log K from the log-sum-exp"),
        (_lme(lp - post), "the prior's log-density log p(z_k) is missing from the log-weights: "
                          "log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)"),
        (_lme(lp + prior), "the posterior's log-density log q(z_k|x) is missing from the log-weights: "
                           "log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)"),
        (_lme(lp), "the log-weights are log p(x|z_k) alone: add log p(z_k) - log q(z_k|x)"),
        (_lme(lp + prior + post), "log q(z_k|x) is added where it is subtracted: "
                                  "log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)"),
        (_lme(lp + prior - log_normal(z, mu[None], 0.5 * lv[None])),
         "q's variance is taken as exp(0.5 * z_log_var), its standard deviation: the variance is exp(z_log_var)"),
        (_lme(log_w + const), f"every value is {const:.4g} = (d/2) log(2 pi) too large: the constant is in log q "
                              "but not in log p(z) (keep it in both, or in neither: it cancels)"),
        (_lme(log_w - const), f"every value is {const:.4g} = (d/2) log(2 pi) too small: the constant is in log p(z) "
                              "but not in log q (keep it in both, or in neither: it cancels)"),
        (log_w.max(0), "the largest log-weight alone: the log-sum-exp adds the others' share, "
                       "log sum_k exp(log w_k - max) after the max"),
    ]


def judge_iwae(inputs, replies, key):
    lp, z, mu, lv = _arrays(inputs)
    k, n = lp.shape
    expected = reference.iwae_bound(lp, z, mu, lv)
    got, again = get(replies, key, "value"), get(replies, key, "again")
    if got.shape != again.shape or not np.array_equal(got, again, equal_nan=True):
        raise Mistake("two calls with the same input gave different answers: the bound of given codes is not random")
    if got.shape == (k,) and k != n:
        raise Mistake(f"one value per code (shape [{k}]): reduce over the K samples (axis 0), one value per "
                      f"example, shape [{n}]")
    one_per_example(got, expected, "bound")
    got = got.reshape(expected.shape)
    if close(got, expected, rtol=1e-5, atol=2e-3):
        return
    first_match(got, iwae_variants(lp, z, mu, lv), rtol=1e-4, atol=1e-2)
    raise Mistake(describe(got, expected))


def judge_iwae_finite(inputs, replies, key):
    """Only finiteness and shape: the values are the other check's."""
    lp = inputs["log_px_given_z"]
    raw = np.asarray(ok_reply(replies, key).arrays.get("value", np.zeros(0)), np.float64)
    if raw.size and not np.all(np.isfinite(raw)):
        raise Mistake(f"-inf or NaN where log p(x|z) is about {float(np.median(lp)):.0f} nats, as for a real digit: "
                      "exp of the log-weights underflows to 0 in float32; subtract each example's largest "
                      "log-weight before exp and add it back after the log (a log-sum-exp)")
    one_per_example(get(replies, key, "value"), lp[0], "bound")
