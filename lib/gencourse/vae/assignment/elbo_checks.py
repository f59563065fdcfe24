"""Judges of the negative ELBO's parts (grader side): the sampling layer, the reconstruction term, the KL.

Each judge compares the worker's arrays with `gencourse.reference` and names a
mistake only when its values equal that mistake's and no other known one's on
the same input (a KL averaged over two latent dimensions is also half of the
KL: the cases with 5 dimensions come first, where the two differ); otherwise
it says what it sees (a ratio, an offset, which entries differ).
"""

from __future__ import annotations

import numpy as np

from ... import reference
from ...grading import Case, Mistake, close, differences, first_match, get, ok_reply, show


# --------------------------------------------------------------------- sampling

def sampling_case(seed: int, n: int, log_var_columns=None, dims: int = 2,
                  mu_range=2.0, log_var_range=(-3.0, 2.0)) -> Case:
    """mu random per entry; log_var constant per column (if given) or random per entry."""
    rng = np.random.default_rng(seed)
    if log_var_columns is not None:
        dims = len(log_var_columns)
        log_var = np.tile(np.asarray(log_var_columns, np.float32), (n, 1))
    else:
        log_var = rng.uniform(*log_var_range, (n, dims)).astype(np.float32)
    mu = rng.uniform(-mu_range, mu_range, (n, dims)).astype(np.float32)
    label = f"seed {seed}, z_mean and z_log_var of shape [{n}, {dims}]"
    return Case(label, {"z_mean": mu, "z_log_var": log_var})


def judge_sampling_stats(inputs, replies, key):
    mu = inputs["z_mean"].astype(np.float64)
    log_var = inputs["z_log_var"].astype(np.float64)
    z = get(replies, key, "z", mu.shape)
    z_again = get(replies, key, "z_again", mu.shape)
    r = z - mu
    if np.max(np.abs(r)) < 1e-6:
        raise Mistake("z equals z_mean exactly: the noise is missing; z = z_mean + exp(0.5 * z_log_var) * eps "
                      "with eps drawn from N(0, 1) on every call")
    if np.array_equal(z, z_again):
        raise Mistake("two calls of the same layer gave the same z: the noise must be new on every call "
                      "(a fixed seed inside call()/forward()? create the random generator once, in __init__)")
    eps = r / np.exp(0.5 * log_var)
    if np.all(np.std(eps, axis=0) < 1e-3):
        raise Mistake("every example got the same eps: draw eps with the full shape of z_mean "
                      "(batch, latent_dim), not (latent_dim,)")
    mean, std = float(eps.mean()), float(eps.std())
    inside = float(np.mean(np.abs(eps) < 1.0))
    if eps.min() >= -1.0 - 1e-6 and eps.max() <= 1.0 + 1e-6:
        raise Mistake(f"(z - z_mean) / exp(0.5 * z_log_var) stays within [{eps.min():.3g}, {eps.max():.3g}]: "
                      "eps looks uniform; draw it from a standard normal N(0, 1) "
                      "(keras.random.normal / torch.randn_like), not a uniform distribution")
    if abs(mean) < 0.1 and abs(std - 1.0) < 0.08 and 0.64 < inside < 0.73:
        return
    constant_columns = np.all(log_var == log_var[:1], axis=0).all()
    spread = np.std(r, axis=0)
    if constant_columns:
        cols = log_var[0]
        if close(spread, np.exp(cols), rtol=0.1, atol=0.0):
            raise Mistake(f"the spread of z around z_mean is exp(z_log_var) = sigma^2 (got std {show(spread)} for "
                          f"log_var {show(cols)}): the standard deviation is exp(0.5 * z_log_var)")
        if close(spread, np.exp(-0.5 * cols), rtol=0.1, atol=0.0):
            raise Mistake(f"the spread of z around z_mean is exp(-0.5 * z_log_var) (got std {show(spread)} for "
                          f"log_var {show(cols)}): the sign is flipped; the standard deviation is exp(0.5 * z_log_var)")
        if close(spread, np.abs(cols), rtol=0.1, atol=0.0):
            raise Mistake(f"the spread of z around z_mean is |z_log_var| (got std {show(spread)}): z_log_var is a "
                          "log-variance; the standard deviation is exp(0.5 * z_log_var)")
    elif abs(float(np.std(r / np.exp(log_var))) - 1.0) < 0.08:
        raise Mistake("the spread of z around z_mean is exp(z_log_var) = sigma^2: "
                      "the standard deviation is exp(0.5 * z_log_var)")
    raise Mistake(f"(z - z_mean) / exp(0.5 * z_log_var) should be standard normal (mean 0, std 1, 68% within "
                  f"+-1); got mean {mean:.3f}, std {std:.3f}, {100 * inside:.0f}% within +-1")


def gradient_case(seed: int, n: int = 64, dims: int = 2, scale: float = 1.5) -> Case:
    rng = np.random.default_rng(seed)
    return Case(f"seed {seed}, shape [{n}, {dims}]", {
        "z_mean": rng.uniform(-scale, scale, (n, dims)).astype(np.float32),
        "z_log_var": rng.uniform(-scale, scale, (n, dims)).astype(np.float32),
        "weights": rng.normal(size=(n, dims)).astype(np.float32),
    })


def judge_sampling_gradients(inputs, replies, key):
    mu, w = inputs["z_mean"].astype(np.float64), inputs["weights"].astype(np.float64)
    z = get(replies, key, "z", mu.shape)
    missing = get(replies, key, "missing", (2,))
    g_mu = get(replies, key, "grad_mu", mu.shape)
    g_lv = get(replies, key, "grad_logvar", mu.shape)
    if missing.all():
        raise Mistake("no gradient reaches z_mean or z_log_var: z is computed outside the framework's graph "
                      "(numpy, .numpy(), .detach()?), so training could never update the encoder; "
                      "compute z with framework operations")
    if missing[0]:
        raise Mistake("no gradient reaches z_mean (a stop_gradient/.detach() on it?)")
    if missing[1]:
        if np.max(np.abs(z - mu)) < 1e-6:
            raise Mistake("z does not depend on z_log_var: the noise term exp(0.5 * z_log_var) * eps is missing")
        raise Mistake("no gradient reaches z_log_var: the noise term is computed outside the graph "
                      "or detached from z_log_var")
    if not close(g_mu, w, rtol=1e-3, atol=1e-4):
        raise Mistake(f"d z / d z_mean should be 1 for every entry; the gradient of sum(w * z) came back as "
                      f"{show(g_mu)} instead of w = {show(w)}")
    expected = 0.5 * w * (z - mu)          # d/d log_var of mu + exp(log_var / 2) eps = z - mu over 2
    if close(g_lv, expected, rtol=2e-3, atol=2e-4):
        return
    if close(g_lv, 2 * expected, rtol=2e-3, atol=2e-4):
        raise Mistake("d z / d z_log_var is (z - z_mean), twice what z = mu + exp(0.5 * log_var) * eps gives: "
                      "exp(z_log_var) where exp(0.5 * z_log_var) belongs?")
    if np.max(np.abs(g_lv)) < 1e-9:
        raise Mistake("the gradient with respect to z_log_var is zero: the noise term does not depend on it "
                      "inside the graph")
    raise Mistake(f"d z / d z_log_var should be 0.5 * exp(0.5 * z_log_var) * eps = (z - z_mean) / 2; the gradient "
                  f"of sum(w * z) came back as {show(g_lv)}, expected {show(expected)}")


# --------------------------------------------------------------------- reconstruction

def image_shape(track: str, n: int) -> tuple:
    return (n, 28, 28, 1) if track == "tf" else (n, 1, 28, 28)


def reconstruction_case(track: str, seed: int, n: int, binary: bool = True, saturated: bool = False) -> Case:
    """Digits-like targets and probabilities in (0.001, 0.999); `saturated`: some exactly 0 and 1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=image_shape(track, n)).astype(np.float32)
    x = (x > 0.6).astype(np.float32) if binary else x
    p = rng.uniform(0.001, 0.999, x.shape).astype(np.float32)
    if saturated:
        flat, xf = p.reshape(n, -1), x.reshape(n, -1)
        flat[:, :40] = 1.0 - xf[:, :40]          # confidently wrong: log(0) without clipping
        flat[:, 40:80] = xf[:, 40:80]            # confidently right: 0 * log(0) without clipping
    label = f"seed {seed}, {n} images of shape {list(x.shape[1:])}" + (", gray" if not binary else "") + (
        ", probabilities exactly 0 and 1 at some pixels" if saturated else "")
    return Case(label, {"x": x, "x_prob": p})


def reconstruction_variants(x, p) -> list[tuple[np.ndarray, str]]:
    """Known wrong answers on probabilities inside (0, 1), each a different function of (x, p)."""
    n = len(x)
    pixels = x[0].size
    flat = lambda a: a.reshape(n, -1)  # noqa: E731
    right = reference.bernoulli_reconstruction(x, p, reduce="none")
    q = 1 / (1 + np.exp(-p))
    swapped = np.clip(x, reference.vae.EPS, 1 - reference.vae.EPS)
    return [
        (right / pixels, f"one value per example, but the mean over the {pixels} pixels: sum them instead"),
        (-right, "the wrong sign: the reconstruction term is the negative log-likelihood, "
                 "-sum(x log p + (1 - x) log(1 - p))"),
        (-flat(x * np.log(q) + (1 - x) * np.log(1 - q)).sum(1),
         "x_prob is read as logits (a sigmoid applied again, from_logits=True or *_with_logits): the decoder "
         "already returns probabilities"),
        (-flat(p * np.log(swapped) + (1 - p) * np.log(1 - swapped)).sum(1),
         "x and x_prob are swapped: the targets are x, the probabilities x_prob"),
        (-flat(x * np.log(p)).sum(1), "the (1 - x) log(1 - p) term is missing"),
        (flat((x - p) ** 2).sum(1), "the squared error, not the Bernoulli negative log-likelihood"),
        (right / np.log(2), "in bits (log base 2); the ELBO here is in nats (natural log)"),
    ]


def judge_reconstruction(inputs, replies, key):
    x, p = inputs["x"].astype(np.float64), inputs["x_prob"].astype(np.float64)
    expected = reference.bernoulli_reconstruction(x, p, reduce="none")
    got, again = get(replies, key, "value"), get(replies, key, "again")
    if got.shape != again.shape or not np.array_equal(got, again):
        raise Mistake("two calls with the same input gave different answers: the loss must not be random")
    one_per_example(got, expected, "reconstruction loss", pixels=x[0].size)
    got = got.reshape(expected.shape)
    if close(got, expected, rtol=1e-4, atol=1e-4):
        return
    first_match(got, reconstruction_variants(x, p), rtol=1e-3, atol=1e-3)
    raise Mistake(describe(got, expected))


def judge_saturated(inputs, replies, key):
    reply = ok_reply(replies, key)
    value = np.asarray(reply.arrays.get("value", np.zeros(0)), np.float64)
    if value.size and not np.all(np.isfinite(value)):
        raise Mistake("NaN or infinity where the decoder outputs exactly 0 or 1 (log(0), or 0 * log(0)): clip "
                      "x_prob to [1e-7, 1 - 1e-7] before the logarithms, as Keras' binary cross-entropy does")
    get(replies, key, "value")


def judge_reconstruction_grad(inputs, replies, key):
    x, p = inputs["x"].astype(np.float64), inputs["x_prob"].astype(np.float64)
    w = inputs["weights"].astype(np.float64).reshape(len(x), *[1] * (x.ndim - 1))
    missing = get(replies, key, "missing", (2,))
    if missing[1]:
        raise Mistake("no gradient reaches x_prob: the loss is computed outside the framework's graph (numpy, "
                      ".numpy(), .detach()?), so it could not train the decoder")
    got = get(replies, key, "grad_b", p.shape)
    expected = w * ((1 - x) / (1 - p) - x / p)
    if not close(got, expected, rtol=1e-3, atol=1e-4):
        raise Mistake(f"the gradient with respect to x_prob should be (1 - x) / (1 - p) - x / p per pixel "
                      f"(times each example's weight); {describe(got, expected)}")


# --------------------------------------------------------------------- KL

def kl_case(seed: int, n: int, dims: int, mu_range=2.0, log_var_range=(-2.0, 1.5), zero=False) -> Case:
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-mu_range, mu_range, (n, dims)).astype(np.float32)
    log_var = rng.uniform(*log_var_range, (n, dims)).astype(np.float32)
    if zero:
        mu, log_var = np.zeros_like(mu), np.zeros_like(log_var)
    label = f"seed {seed}, shape [{n}, {dims}]" + (", all zeros" if zero else "")
    return Case(label, {"z_mean": mu, "z_log_var": log_var})


def kl_variants(mu, log_var) -> list[tuple[np.ndarray, str]]:
    """Known wrong answers (per example) and what they tell the student, on `dims` latent dimensions."""
    dims = mu.shape[1]
    e = reference.gaussian_kl(mu, log_var, reduce="none")
    half = ("half the expected values: on 2 latent dimensions the 1/2 applied twice and a mean over the "
            "dimensions instead of a sum give the same" if dims == 2 else
            "half the expected values: the factor is 1/2, once")
    out = [
        (2 * e, "twice the expected values: did you drop the 1/2 in -1/2 * sum(1 + log_var - mu^2 - exp(log_var))?"),
        (-e, "the wrong sign: KL is never negative; it is -1/2 * sum(1 + log_var - mu^2 - exp(log_var))"),
        (-2 * e, "the wrong sign and twice too large: -1/2 * sum(1 + log_var - mu^2 - exp(log_var))"),
        (0.5 * e, half),
        (-0.5 * np.sum(1 + log_var - mu**2 - np.exp(0.5 * log_var), axis=-1),
         "the variance is exp(log_var), not exp(0.5 * log_var), in the KL formula"),
        (-0.5 * np.sum(1 + 2 * log_var - mu**2 - np.exp(2 * log_var), axis=-1),
         "z_log_var is read as a log standard deviation (log sigma^2 = 2 z_log_var): it is the log-variance"),
        (-0.5 * np.sum(1 + log_var - np.abs(mu) - np.exp(log_var), axis=-1),
         "the mean enters the KL squared: mu^2, not mu"),
        (-0.5 * np.sum(1 + log_var - mu**2 - log_var, axis=-1), "the variance term is exp(log_var), not log_var"),
        (e + 0.5 * dims, f"every value is 1/2 per latent dimension ({0.5 * dims:g}) too large: the 1 inside "
                         "-1/2 * sum(1 + log_var - mu^2 - exp(log_var)) is missing"),
    ]
    if dims != 2:
        out.append((e / dims, f"the mean over the {dims} latent dimensions instead of their sum"))
    return out


def judge_kl(inputs, replies, key):
    mu = inputs["z_mean"].astype(np.float64)
    log_var = inputs["z_log_var"].astype(np.float64)
    n, dims = mu.shape
    expected = reference.gaussian_kl(mu, log_var, reduce="none")
    got, again = get(replies, key, "value"), get(replies, key, "again")
    if got.shape != again.shape or not np.array_equal(got, again):
        raise Mistake("two calls with the same input gave different answers: the KL must not be random or keep state")
    if got.shape == (dims,) and dims != n and close(got, (-0.5 * (1 + log_var - mu**2 - np.exp(log_var))).sum(0)):
        raise Mistake("summed over the batch (axis 0) instead of the latent dimensions: sum over the last axis")
    one_per_example(got, expected, "KL", dims=dims)
    got = got.reshape(expected.shape)
    if close(got, expected, rtol=1e-4, atol=1e-5):
        return
    first_match(got, kl_variants(mu, log_var), rtol=1e-3, atol=1e-4)
    raise Mistake(describe(got, expected))


def judge_kl_grad(inputs, replies, key):
    mu, lv = inputs["z_mean"].astype(np.float64), inputs["z_log_var"].astype(np.float64)
    w = inputs["weights"].astype(np.float64)[:, None]
    missing = get(replies, key, "missing", (2,))
    if missing.all():
        raise Mistake("no gradient reaches z_mean or z_log_var: the KL is computed outside the framework's graph "
                      "(numpy, .numpy(), .detach()?), so it could not pull the codes towards the prior")
    for i, (name, expected) in enumerate((("z_mean", w * mu), ("z_log_var", w * 0.5 * (np.exp(lv) - 1)))):
        if missing[i]:
            raise Mistake(f"no gradient reaches {name} (detached, or computed outside the graph)")
        got = get(replies, key, "grad_a" if i == 0 else "grad_b", mu.shape)
        if not close(got, expected, rtol=1e-3, atol=1e-5):
            formula = "z_mean" if i == 0 else "(exp(z_log_var) - 1) / 2"
            raise Mistake(f"d KL / d {name} should be {formula} per entry; {describe(got, expected)}")


# --------------------------------------------------------------------- shared

def one_per_example(got, expected, what: str, pixels: int = 0, dims: int = 0) -> None:
    """A Mistake unless `got` holds one value per example (shape [n], or [n, 1])."""
    n = len(expected)
    if got.shape in [(n,), (n, 1), (1, n)] or (n == 1 and got.size == 1):
        return
    if got.size == 1 and n > 1:
        value = float(got.reshape(()))
        which = [name for name, v in (("sum", expected.sum()), ("mean", expected.mean()))
                 if np.isclose(value, v, rtol=1e-4)]
        of = f" (its {' or '.join(which)}, {value:.4g})" if which else f" ({value:.4g})"
        raise Mistake(f"one number for the whole batch{of}: return one {what} value per example, shape [{n}]; "
                      "the training step takes the mean")
    if dims and got.shape == (n, dims):
        raise Mistake(f"one value per latent dimension (shape [{n}, {dims}]): sum over the latent dimensions "
                      f"(the last axis) to get one value per example, shape [{n}]")
    if pixels and got.size == n * pixels:
        raise Mistake(f"one value per pixel (shape {list(got.shape)}): sum over the {pixels} pixels of each "
                      f"example, shape [{n}]")
    raise Mistake(f"expected one {what} value per example, shape [{n}]; got shape {list(got.shape)}")


def describe(got, expected) -> str:
    """What distinguishes `got` from `expected` when no known mistake explains it: a ratio, an offset,
    or the entries that differ."""
    ratio = got / np.where(expected == 0, np.nan, expected)
    finite = ratio[np.isfinite(ratio)]
    if finite.size and np.allclose(finite, finite.mean(), rtol=1e-3):
        return f"every value is {finite.mean():.4g} times the expected one (expected {show(expected)}, got {show(got)})"
    offset = got - expected
    if np.allclose(offset, offset.mean(), rtol=1e-3, atol=1e-4):
        return (f"every value is the expected one {'+' if offset.mean() > 0 else '-'} {abs(offset.mean()):.4g} "
                f"(expected {show(expected)}, got {show(got)})")
    return differences(got, expected, 1e-3, 1e-4)
