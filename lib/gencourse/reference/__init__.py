"""Numpy oracles: one trusted formula for everything a student implements.

The TF solution, the PyTorch solution and every submission are compared with
these functions on seeded random inputs (relative error, never exact equality).
"""

from .vae import (
    bernoulli_reconstruction,
    gaussian_kl,
    neg_elbo,
    reparameterize,
    latent_ranges,
)

__all__ = [
    "bernoulli_reconstruction",
    "gaussian_kl",
    "neg_elbo",
    "reparameterize",
    "latent_ranges",
]
