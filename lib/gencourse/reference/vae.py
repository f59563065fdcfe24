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


def reparameterize(z_mean, z_log_var, epsilon):
    """z = mu + exp(1/2 log sigma^2) * eps, with eps ~ N(0, I) given explicitly."""
    mu = np.asarray(z_mean, dtype=np.float64)
    return mu + np.exp(0.5 * np.asarray(z_log_var, dtype=np.float64)) * np.asarray(epsilon)


def latent_ranges(z, labels, n_classes: int = 10):
    """Per-class (min, max) of each latent dimension: array [n_classes, dims, 2].

    Classes with no example get NaN. The report read these off the scatter by eye.
    """
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels)
    out = np.full((n_classes, z.shape[1], 2), np.nan)
    for c in range(n_classes):
        zc = z[labels == c]
        if len(zc):
            out[c, :, 0] = zc.min(axis=0)
            out[c, :, 1] = zc.max(axis=0)
    return out


def _reduce(per_example, reduce):
    if reduce == "none":
        return per_example
    if reduce == "batch_mean":
        return float(per_example.mean())
    if reduce == "batch_sum":
        return float(per_example.sum())
    raise ValueError(f"reduce must be 'none', 'batch_mean' or 'batch_sum', got {reduce!r}")
