"""Probes of the VAE assignment, TensorFlow/Keras track (run in the worker).

Student parts: `Sampling` (a Keras layer called on [z_mean, z_log_var]),
`kl_divergence(z_mean, z_log_var)`, `latent_ranges(z, labels)` and
`condition(h, labels, n_classes)`.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ...grading.probing import part, plain, scalar  # noqa: E402
from .common_probes import train_with_parts  # noqa: E402


def _t(a, dtype=tf.float32):
    return tf.constant(np.asarray(a), dtype=dtype)


def sampling(ns, z_mean, z_log_var):
    """z for the given mu/logvar, twice from one layer and once from a second layer."""
    layer = part(ns, "Sampling")()
    mu, lv = _t(z_mean), _t(z_log_var)
    z = layer([mu, lv])
    z_again = layer([mu, lv])
    return {"z": plain(z), "z_again": plain(z_again)}


def sampling_grad(ns, z_mean, z_log_var, weights):
    """z and the gradients of sum(weights * z) w.r.t. z_mean and z_log_var.

    A gradient that does not reach an input (sampling done in numpy, a
    stop_gradient, z independent of log_var) comes back as zeros with its flag
    in `missing` ([mu, log_var]) set to 1.
    """
    layer = part(ns, "Sampling")()
    mu, lv, w = _t(z_mean), _t(z_log_var), _t(weights)
    with tf.GradientTape() as tape:
        tape.watch([mu, lv])
        z = layer([mu, lv])
        zt = tf.cast(z, tf.float32) if tf.is_tensor(z) else _t(plain(z))
        loss = tf.reduce_sum(zt * w)
    grads = tape.gradient(loss, [mu, lv])
    missing = np.array([g is None for g in grads], dtype=np.float64)
    g_mu, g_lv = (np.zeros(np.shape(z_mean)) if g is None else plain(g) for g in grads)
    return {"z": plain(z), "grad_mu": g_mu, "grad_logvar": g_lv, "missing": missing}


def kl(ns, z_mean, z_log_var):
    fn = part(ns, "kl_divergence")
    mu, lv = _t(z_mean), _t(z_log_var)
    return {"kl": plain(fn(mu, lv)), "kl_again": plain(fn(mu, lv))}


def latent_ranges(ns, z, labels):
    fn = part(ns, "latent_ranges")
    return {"ranges": plain(fn(np.array(z, dtype=np.float32), np.array(labels, dtype=np.int64)))}


def condition(ns, h, labels, n_classes):
    fn = part(ns, "condition")
    out = fn(_t(h), _t(labels, tf.int64), scalar(n_classes))
    again = fn(_t(h), _t(labels, tf.int64), scalar(n_classes))
    return {"out": plain(out), "out_again": plain(again)}


def train(ns, x, epochs, batch_size, learning_rate, seed):
    """The student's Sampling and KL in the trusted loop (see `common_probes.train_with_parts`)."""
    return train_with_parts("tf", ns, x, epochs, batch_size, learning_rate, seed)
