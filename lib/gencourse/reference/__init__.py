"""Numpy oracles: one trusted formula for everything a student implements.

The TF solution, the PyTorch solution and every submission are compared with
these functions on seeded random inputs (relative error, never exact equality).
"""

from .cyclegan import cycle_consistency_loss, identity_loss, instance_norm
from .stylegan import adaptive_instance_norm, mix_styles, pixel_norm, truncate
from .vae import (
    bernoulli_reconstruction,
    binarize,
    bits_per_dim,
    gaussian_kl,
    iwae_bound,
    neg_elbo,
    reparameterize,
    latent_ranges,
)

__all__ = [
    "cycle_consistency_loss",
    "identity_loss",
    "instance_norm",
    "adaptive_instance_norm",
    "mix_styles",
    "pixel_norm",
    "truncate",
    "bernoulli_reconstruction",
    "binarize",
    "bits_per_dim",
    "gaussian_kl",
    "iwae_bound",
    "neg_elbo",
    "reparameterize",
    "latent_ranges",
]
