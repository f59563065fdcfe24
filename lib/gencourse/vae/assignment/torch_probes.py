"""Probes of the VAE assignment, PyTorch track (run in the worker).

Student parts: `Sampling` (an nn.Module called as `Sampling()(z_mean, z_log_var)`),
`Encoder(latent_dim, n_classes)` and `Decoder(latent_dim, n_classes)` (nn.Modules),
`reconstruction_loss(x, x_prob)`, `kl_divergence(z_mean, z_log_var)`,
`iwae_bound(log_px_given_z, z, z_mean, z_log_var)`,
`train_step(encoder, decoder, optimizer, x, y)`, `latent_ranges`, `latent_grid`,
`decode_manifold` and `condition(h, labels, n_classes)`. A part is probed with
the trusted versions of the others (`substituted`), so that each is judged alone.
"""

from __future__ import annotations

import numpy as np
import torch

from ...grading.tracing import probe_network
from ...grading.probing import part, plain, scalar, reseeded
from ...weights import to_flat
from .. import torch_models as T
from ..torch_track import TorchVAE
from .common_probes import (  # noqa: F401  (the framework-neutral probes are this track's too)
    latent_grid, latent_ranges, metrics_of, shape_table, split, substituted, train_with_parts, trusted_config,
)
from .common_probes import manifold as _manifold


def _t(a, dtype=torch.float32, grad=False):
    return torch.tensor(np.asarray(a), dtype=dtype, requires_grad=grad)


def sampling(ns, z_mean, z_log_var):
    """z for the given mu/logvar, twice from one module."""
    module = part(ns, "Sampling")()
    mu, lv = _t(z_mean), _t(z_log_var)
    with torch.no_grad():
        return {"z": plain(module(mu, lv)), "z_again": plain(module(mu, lv))}


def _gradient(fn, a, b, weights):
    """The gradients of sum(weights * fn(a, b)) w.r.t. a and b (plain sum when the shapes differ);
    one that does not reach its input comes back as zeros with its flag in `missing` set."""
    at, bt, w = _t(a, grad=True), _t(b, grad=True), _t(weights)
    value = fn(at, bt)
    missing, grads = np.ones(2), [np.zeros(np.shape(a)), np.zeros(np.shape(b))]
    if isinstance(value, torch.Tensor) and value.requires_grad:
        total = (value.float() * w).sum() if value.shape == w.shape else value.float().sum()
        got = torch.autograd.grad(total, [at, bt], allow_unused=True)
        missing = np.array([g is None for g in got], np.float64)
        grads = [np.zeros(np.shape(x)) if g is None else plain(g) for g, x in zip(got, (a, b))]
    return {"grad_a": grads[0], "grad_b": grads[1], "missing": missing}


def sampling_grad(ns, z_mean, z_log_var, weights):
    """z and the gradients of sum(weights * z) w.r.t. z_mean and z_log_var, from one call; a gradient
    that does not reach an input comes back as zeros with its flag in `missing` ([mu, log_var]) set."""
    module = part(ns, "Sampling")()
    mu, lv = _t(z_mean, grad=True), _t(z_log_var, grad=True)
    z = module(mu, lv)
    missing = np.ones(2)
    g_mu, g_lv = np.zeros(np.shape(z_mean)), np.zeros(np.shape(z_mean))
    if isinstance(z, torch.Tensor) and z.requires_grad:
        grads = torch.autograd.grad((z.float() * _t(weights)).sum(), [mu, lv], allow_unused=True)
        missing = np.array([g is None for g in grads], dtype=np.float64)
        g_mu, g_lv = (np.zeros(np.shape(z_mean)) if g is None else plain(g) for g in grads)
    return {"z": plain(z), "grad_mu": g_mu, "grad_logvar": g_lv, "missing": missing}


# ------------------------------------------------------------------ networks

def _others(ns, eps=None):
    """The trusted sampling (fixed noise when eps is given) and condition in the student's namespace while
    their network is built and run, so that it is judged alone."""
    sampler = (lambda *a, **k: T.FixedNoise(eps)) if eps is not None else (lambda *a, **k: T.Sampling())
    return substituted(ns, Sampling=sampler, condition=T.condition)


def _inputs(first, labels, n_classes):
    first = np.asarray(first, np.float32)
    return [first, np.asarray(labels, np.int64)] if scalar(n_classes) else first


def network_shapes(ns, name, first, labels, latent_dim, n_classes):
    inputs = _inputs(first, labels, n_classes)
    with _others(ns), torch.no_grad():
        net = part(ns, name)(scalar(latent_dim), scalar(n_classes))
        out = net(*[torch.as_tensor(a) for a in (inputs if isinstance(inputs, list) else [inputs])])
    values = out if isinstance(out, (tuple, list)) else [out]
    return {"shapes": shape_table(out), "params": np.array(sum(p.numel() for p in net.parameters()), np.float64),
            "low": np.array(min(float(plain(v).min()) for v in values)),
            "high": np.array(max(float(plain(v).max()) for v in values))}


def encoder_shapes(ns, x, labels, latent_dim, n_classes):
    return network_shapes(ns, "Encoder", x, labels, latent_dim, n_classes)


def decoder_shapes(ns, z, labels, latent_dim, n_classes):
    return network_shapes(ns, "Decoder", z, labels, latent_dim, n_classes)


def encoder_net(ns, x, labels, latent_dim, n_classes, eps, weights_flat, weights_table):
    with _others(ns, eps):
        net = part(ns, "Encoder")(scalar(latent_dim), scalar(n_classes))
        return probe_network(net, _inputs(x, labels, n_classes), weights_flat, weights_table)


def decoder_net(ns, x, labels, latent_dim, n_classes, eps, weights_flat, weights_table):
    with _others(ns, eps):
        net = part(ns, "Decoder")(scalar(latent_dim), scalar(n_classes))
        return probe_network(net, _inputs(x, labels, n_classes), weights_flat, weights_table)


# ------------------------------------------------------------------ the negative ELBO

def reconstruction(ns, x, x_prob):
    fn = part(ns, "reconstruction_loss")
    with torch.no_grad():
        return {"value": plain(fn(_t(x), _t(x_prob))), "again": plain(fn(_t(x), _t(x_prob)))}


def reconstruction_grad(ns, x, x_prob, weights):
    return _gradient(part(ns, "reconstruction_loss"), x, x_prob, weights)


def kl(ns, z_mean, z_log_var):
    fn = part(ns, "kl_divergence")
    with torch.no_grad():
        return {"value": plain(fn(_t(z_mean), _t(z_log_var))), "again": plain(fn(_t(z_mean), _t(z_log_var)))}


def kl_grad(ns, z_mean, z_log_var, weights):
    return _gradient(part(ns, "kl_divergence"), z_mean, z_log_var, weights)


def iwae(ns, log_px_given_z, z, z_mean, z_log_var):
    fn = part(ns, "iwae_bound")
    args = [_t(a) for a in (log_px_given_z, z, z_mean, z_log_var)]
    with torch.no_grad():
        return {"value": plain(fn(*args)), "again": plain(fn(*args))}


# ------------------------------------------------------------------ one training step

def one_step(ns, x1, labels1, x2, labels2, n_classes, eps, encoder_flat, decoder_flat, learning_rate, beta=None):
    """Two of the student's train_step calls with SGD from the given weights (the trusted networks and
    losses: the step alone is judged); the weights after each and the metrics each returned. A `beta`
    goes to the step as its keyword; without one the step's default is judged."""
    beta_kw = {} if beta is None else {"beta": scalar(beta, float)}
    n = scalar(n_classes)
    encoder, decoder = T.Encoder(2, n, T.FixedNoise(eps)), T.Decoder(2, n)
    split(encoder_flat, T.weight_tensors(encoder))
    split(decoder_flat, T.weight_tensors(decoder))
    optimizer = torch.optim.SGD([*encoder.parameters(), *decoder.parameters()], lr=scalar(learning_rate, float))
    out = {}
    with substituted(ns, kl_divergence=T.kl_divergence, reconstruction_loss=T.reconstruction_loss,
                     condition=T.condition):
        for i, (x, y) in enumerate(((x1, labels1), (x2, labels2)), start=1):
            logs = part(ns, "train_step")(encoder, decoder, optimizer, _t(x), _t(y, torch.int64) if n else None,
                                             **beta_kw)
            m = metrics_of(logs)
            out.update({f"w{i}": to_flat(T.weight_tensors(encoder) + T.weight_tensors(decoder)),
                        f"metrics{i}": m["values"], f"present{i}": m["present"]})
    return out


def train(ns, x, epochs, batch_size, learning_rate, seed):
    """The student's Sampling, train_step and losses in the trusted loop: a VAE."""
    trainer = TorchVAE(trusted_config(False, learning_rate, seed), "cpu", sampling=part(ns, "Sampling")(),
                      step=part(ns, "train_step"))
    return train_with_parts(trainer, x, None, epochs, batch_size, seed)


def train_cvae(ns, x, labels, epochs, batch_size, learning_rate, seed):
    """The student's condition in a CVAE whose other parts are the trusted ones."""
    trainer = TorchVAE(trusted_config(True, learning_rate, seed), "cpu", conditioning=part(ns, "condition"))
    return train_with_parts(trainer, x, labels, epochs, batch_size, seed)


# ------------------------------------------------------------------ latent space and the CVAE

def manifold(ns, codes, n, decoder_flat):
    decoder = T.Decoder(2, 0)
    split(decoder_flat, T.weight_tensors(decoder))

    def decode(z):
        with torch.no_grad():
            return plain(decoder(_t(z)))[:, 0]
    return _manifold(ns, decode, codes, n)


def condition(ns, h, labels, n_classes):
    fn = part(ns, "condition")
    dtype = torch.float64 if np.asarray(h).dtype == np.float64 else torch.float32
    with torch.no_grad():
        out = fn(_t(h, dtype), _t(labels, torch.int64), scalar(n_classes))
        again = fn(_t(h, dtype), _t(labels, torch.int64), scalar(n_classes))
    bits = out.element_size() * 8 if isinstance(out, torch.Tensor) else 0
    return {"out": plain(out), "out_again": plain(again), "bits": np.array(bits, np.float64)}


reseeded(globals())   # every probe above starts from the same random state in every run
