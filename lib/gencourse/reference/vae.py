"""VAE formulas (Kingma & Welling 2014, appendix B), in nats, numpy only."""

from __future__ import annotations

import numpy as np

# Probabilities are clipped as Keras' binary cross-entropy does, so that
# log(0) never appears and the oracle matches both frameworks near 0 and 1.
EPS = 1e-7


def gaussian_kl(z_mean, z_log_var, *, reduce: str = "batch_mean"):
    """KL(N(mu, diag sigma^2) || N(0, I)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2).

    `reduce`: "none" gives one value per example (summed over latent
    dimensions); "batch_mean" averages those over the batch, as the report's loss.
    """
    mu = np.asarray(z_mean, dtype=np.float64)
    log_var = np.asarray(z_log_var, dtype=np.float64)
    per_example = -0.5 * np.sum(1.0 + log_var - mu**2 - np.exp(log_var), axis=-1)
    return _reduce(per_example, reduce)


def bernoulli_reconstruction(x, x_prob, *, reduce: str = "batch_mean"):
    """Binary cross-entropy summed over pixels: -sum(x log p + (1 - x) log(1 - p))."""
    x = np.asarray(x, dtype=np.float64)
    p = np.clip(np.asarray(x_prob, dtype=np.float64), EPS, 1.0 - EPS)
    bce = -(x * np.log(p) + (1.0 - x) * np.log1p(-p))
    per_example = bce.reshape(bce.shape[0], -1).sum(axis=1)
    return _reduce(per_example, reduce)


def neg_elbo(x, x_prob, z_mean, z_log_var, *, reduce: str = "batch_mean"):
    """Negative ELBO = reconstruction + KL, per image (both terms averaged over the batch)."""
    return bernoulli_reconstruction(x, x_prob, reduce=reduce) + gaussian_kl(
        z_mean, z_log_var, reduce=reduce
    )


def log_normal(z, mean=0.0, log_var=0.0):
    """log N(z; mean, diag exp(log_var)), summed over the last axis (the latent dimensions)."""
    z, mean, log_var = (np.asarray(a, dtype=np.float64) for a in (z, mean, log_var))
    return -0.5 * np.sum(np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(log_var), axis=-1)


def iwae_bound(log_px_given_z, z, z_mean, z_log_var):
    """The importance-weighted bound on log p(x) of each example (Burda, Grosse & Salakhutdinov 2016, eq. 8):
    log 1/K sum_k p(x|z_k) p(z_k) / q(z_k|x), with z_k ~ q(z|x).

    log_px_given_z [K, B]; z [K, B, d], the K codes drawn for each example; z_mean, z_log_var [B, d].
    Returns [B] nats; K = 1 is the one-sample ELBO, and the bound tightens as K grows. The log-sum-exp
    subtracts each example's largest log-weight first: log p(x|z) of a digit is hundreds of nats.
    """
    log_w = (np.asarray(log_px_given_z, dtype=np.float64) + log_normal(z)
             - log_normal(z, np.asarray(z_mean)[None], np.asarray(z_log_var)[None]))
    top = log_w.max(axis=0)
    return top + np.log(np.mean(np.exp(log_w - top), axis=0))


def bits_per_dim(nats, dims: int = 28 * 28):
    """Nats per image as bits per pixel: nats / (dims ln 2), the unit of likelihood papers."""
    return np.asarray(nats) / (dims * np.log(2.0))


def binarize(x, rng):
    """One Bernoulli draw per pixel with the grey level as its probability: dynamically binarized MNIST
    (a new draw each epoch for training), on which the Bernoulli decoder's ELBO bounds log p(x)."""
    x = np.asarray(x, dtype=np.float32)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def reparameterize(z_mean, z_log_var, epsilon):
    """z = mu + exp(1/2 log sigma^2) * eps, with eps ~ N(0, I) given explicitly."""
    mu = np.asarray(z_mean, dtype=np.float64)
    return mu + np.exp(0.5 * np.asarray(z_log_var, dtype=np.float64)) * np.asarray(epsilon)


def latent_ranges(z, labels, n_classes: int = 10, percentile: float = 0.0):
    """Per-class (low, high) of each latent dimension: array [n_classes, dims, 2].

    percentile 0 gives (min, max), the report's ranges read off the scatter; p > 0 gives
    numpy's (linear) p-th and (100 - p)-th percentiles, which a few outlying codes do not
    move. Classes with no example get NaN.
    """
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.full((n_classes, z.shape[1], 2), np.nan)
    for c in range(n_classes):
        zc = z[labels == c]
        if len(zc):
            out[c, :, 0] = np.percentile(zc, percentile, axis=0)
            out[c, :, 1] = np.percentile(zc, 100.0 - percentile, axis=0)
    return out


def latent_grid(n: int = 10, low=(-3.0, -3.0), high=(3.0, 3.0), method: str = "linear"):
    """The [n * n, 2] codes of an n x n manifold, row by row: code (x_j, y_i) at row i, column j,
    x growing left to right and y top to bottom from high to low (z[1] up, as on the scatter).

    "linear": x from low[0] to high[0], y from high[1] to low[1], n evenly spaced values each.
    "normal": both axes Phi^-1 of n evenly spaced probabilities in [0.05, 0.95], the prior's
    quantiles (Kingma & Welling 2014, fig. 4; the 2018 Keras example's norm.ppf grid).
    """
    if method == "linear":
        xs = np.linspace(low[0], high[0], n)
        ys = np.linspace(high[1], low[1], n)
    elif method == "normal":
        from statistics import NormalDist

        xs = np.array([NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)])
        ys = xs[::-1]
    else:
        raise ValueError(f"method must be 'linear' or 'normal', got {method!r}")
    return np.stack([np.tile(xs, n), np.repeat(ys, n)], axis=1)


def manifold_image(images, n: int):
    """[n * n, H, W] decoded codes (latent_grid's order) as one [n * H, n * W] image."""
    images = np.asarray(images, dtype=np.float64)
    _, h, w = images.shape
    return images.reshape(n, n, h, w).transpose(0, 2, 1, 3).reshape(n * h, n * w)


def _reduce(per_example, reduce):
    if reduce == "none":
        return per_example
    if reduce == "batch_mean":
        return float(per_example.mean())
    if reduce == "batch_sum":
        return float(per_example.sum())
    raise ValueError(f"reduce must be 'none', 'batch_mean' or 'batch_sum', got {reduce!r}")
