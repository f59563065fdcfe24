"""Probes of the VAE assignment, PyTorch track (run in the worker).

Student parts: `Sampling` (an nn.Module called as `Sampling()(z_mean, z_log_var)`),
`kl_divergence(z_mean, z_log_var)`, `latent_ranges(z, labels)` and
`condition(h, labels, n_classes)`.
"""

from __future__ import annotations

import numpy as np
import torch

from ...grading.probing import part, plain, scalar
from .common_probes import train_with_parts


def _t(a, dtype=torch.float32, grad=False):
    return torch.tensor(np.asarray(a), dtype=dtype, requires_grad=grad)


def sampling(ns, z_mean, z_log_var):
    """z for the given mu/logvar, twice from one module."""
    module = part(ns, "Sampling")()
    mu, lv = _t(z_mean), _t(z_log_var)
    with torch.no_grad():
        z = module(mu, lv)
        z_again = module(mu, lv)
    return {"z": plain(z), "z_again": plain(z_again)}


def sampling_grad(ns, z_mean, z_log_var, weights):
    """z and the gradients of sum(weights * z) w.r.t. z_mean and z_log_var.

    A gradient that does not reach an input (sampling in numpy, `.detach()`,
    z independent of log_var) comes back as zeros with its flag in `missing`
    ([mu, log_var]) set to 1.
    """
    module = part(ns, "Sampling")()
    mu, lv = _t(z_mean, grad=True), _t(z_log_var, grad=True)
    z = module(mu, lv)
    missing = np.ones(2)
    g_mu, g_lv = np.zeros(np.shape(z_mean)), np.zeros(np.shape(z_mean))
    if isinstance(z, torch.Tensor) and z.requires_grad:
        loss = (z.float() * _t(weights)).sum()
        grads = torch.autograd.grad(loss, [mu, lv], allow_unused=True)
        missing = np.array([g is None for g in grads], dtype=np.float64)
        g_mu, g_lv = (np.zeros(np.shape(z_mean)) if g is None else plain(g) for g in grads)
    return {"z": plain(z), "grad_mu": g_mu, "grad_logvar": g_lv, "missing": missing}


def kl(ns, z_mean, z_log_var):
    fn = part(ns, "kl_divergence")
    mu, lv = _t(z_mean), _t(z_log_var)
    with torch.no_grad():
        return {"kl": plain(fn(mu, lv)), "kl_again": plain(fn(mu, lv))}


def latent_ranges(ns, z, labels):
    fn = part(ns, "latent_ranges")
    return {"ranges": plain(fn(np.array(z, dtype=np.float32), np.array(labels, dtype=np.int64)))}


def condition(ns, h, labels, n_classes):
    fn = part(ns, "condition")
    with torch.no_grad():
        out = fn(_t(h), _t(labels, torch.int64), scalar(n_classes))
        again = fn(_t(h), _t(labels, torch.int64), scalar(n_classes))
    return {"out": plain(out), "out_again": plain(again)}


def train(ns, x, epochs, batch_size, learning_rate, seed):
    """The student's Sampling and KL in the trusted loop (see `common_probes.train_with_parts`)."""
    return train_with_parts("torch", ns, x, epochs, batch_size, learning_rate, seed)
