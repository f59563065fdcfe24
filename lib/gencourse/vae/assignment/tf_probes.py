"""Probes of the VAE assignment, TensorFlow/Keras track (run in the worker).

Student parts: `Sampling` (a Keras layer called on [z_mean, z_log_var]),
`build_encoder(latent_dim, n_classes)` and `build_decoder(latent_dim, n_classes)`
(functional models), `reconstruction_loss(x, x_prob)`, `kl_divergence(z_mean,
z_log_var)`, `iwae_bound(log_px_given_z, z, z_mean, z_log_var)`, the `VAE` model's
`train_step`, `latent_ranges`, `latent_grid`, `decode_manifold` and `condition(h, labels,
n_classes)`. A part is probed with the trusted versions of the others (`substituted`), so that
each is judged alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ...grading.tracing import probe_network  # noqa: E402
from ...grading.probing import part, plain, scalar, reseeded  # noqa: E402
from ...weights import to_flat  # noqa: E402
from .. import tf_models as T  # noqa: E402
from ..tf_track import TFVAE  # noqa: E402
from .common_probes import (  # noqa: E402,F401  (the framework-neutral probes are this track's too)
    latent_grid, latent_ranges, metrics_of, shape_table, split, substituted, train_with_parts, trusted_config,
)
from .common_probes import manifold as _manifold  # noqa: E402


def _t(a, dtype=tf.float32):
    return tf.constant(np.asarray(a), dtype=dtype)


def sampling(ns, z_mean, z_log_var):
    """z for the given mu/logvar, twice from one layer."""
    layer = part(ns, "Sampling")()
    mu, lv = _t(z_mean), _t(z_log_var)
    return {"z": plain(layer([mu, lv])), "z_again": plain(layer([mu, lv]))}


def sampling_grad(ns, z_mean, z_log_var, weights):
    """z and the gradients of sum(weights * z) w.r.t. z_mean and z_log_var; a gradient that does not
    reach an input comes back as zeros with its flag in `missing` ([mu, log_var]) set."""
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


# ------------------------------------------------------------------ networks

def _others(ns, eps=None):
    """The trusted sampling (fixed noise when eps is given) and condition in the student's namespace while
    their network is built and run, so that it is judged alone."""
    sampler = (lambda *a, **k: T.FixedNoise(eps)) if eps is not None else (lambda *a, **k: T.Sampling(seed=0))
    return substituted(ns, Sampling=sampler, condition=T.condition)


def _inputs(first, labels, n_classes):
    first = np.asarray(first, np.float32)
    return [first, np.asarray(labels, np.int64)] if scalar(n_classes) else first


def network_shapes(ns, builder, first, labels, latent_dim, n_classes):
    with _others(ns):
        net = part(ns, builder)(scalar(latent_dim), scalar(n_classes))
        out = net(_inputs(first, labels, n_classes))
    values = out if isinstance(out, (tuple, list)) else [out]
    return {"shapes": shape_table(out), "params": np.array(net.count_params(), np.float64),
            "low": np.array(min(float(np.min(plain(v))) for v in values)),
            "high": np.array(max(float(np.max(plain(v))) for v in values))}


def encoder_shapes(ns, x, labels, latent_dim, n_classes):
    return network_shapes(ns, "build_encoder", x, labels, latent_dim, n_classes)


def decoder_shapes(ns, z, labels, latent_dim, n_classes):
    return network_shapes(ns, "build_decoder", z, labels, latent_dim, n_classes)


def encoder_net(ns, x, labels, latent_dim, n_classes, eps, weights_flat, weights_table):
    with _others(ns, eps):
        net = part(ns, "build_encoder")(scalar(latent_dim), scalar(n_classes))
        return probe_network(net, _inputs(x, labels, n_classes), weights_flat, weights_table)


def decoder_net(ns, x, labels, latent_dim, n_classes, eps, weights_flat, weights_table):
    with _others(ns, eps):
        net = part(ns, "build_decoder")(scalar(latent_dim), scalar(n_classes))
        return probe_network(net, _inputs(x, labels, n_classes), weights_flat, weights_table)


# ------------------------------------------------------------------ the negative ELBO

def _gradient(fn, a, b, weights):
    """The gradients of sum(weights * fn(a, b)) w.r.t. a and b (plain sum when the shapes differ);
    one that does not reach its input comes back as zeros with its flag in `missing` set."""
    at, bt, w = _t(a), _t(b), _t(weights)
    with tf.GradientTape() as tape:
        tape.watch([at, bt])
        value = fn(at, bt)
        vt = tf.cast(value, tf.float32) if tf.is_tensor(value) else _t(plain(value))
        total = tf.reduce_sum(vt * w) if vt.shape == w.shape else tf.reduce_sum(vt)
    grads = tape.gradient(total, [at, bt])
    return {"grad_a": np.zeros(np.shape(a)) if grads[0] is None else plain(grads[0]),
            "grad_b": np.zeros(np.shape(b)) if grads[1] is None else plain(grads[1]),
            "missing": np.array([g is None for g in grads], np.float64)}


def reconstruction(ns, x, x_prob):
    fn = part(ns, "reconstruction_loss")
    return {"value": plain(fn(_t(x), _t(x_prob))), "again": plain(fn(_t(x), _t(x_prob)))}


def reconstruction_grad(ns, x, x_prob, weights):
    return _gradient(part(ns, "reconstruction_loss"), x, x_prob, weights)


def kl(ns, z_mean, z_log_var):
    fn = part(ns, "kl_divergence")
    return {"value": plain(fn(_t(z_mean), _t(z_log_var))), "again": plain(fn(_t(z_mean), _t(z_log_var)))}


def kl_grad(ns, z_mean, z_log_var, weights):
    return _gradient(part(ns, "kl_divergence"), z_mean, z_log_var, weights)


def iwae(ns, log_px_given_z, z, z_mean, z_log_var):
    fn = part(ns, "iwae_bound")
    args = [_t(a) for a in (log_px_given_z, z, z_mean, z_log_var)]
    return {"value": plain(fn(*args)), "again": plain(fn(*args))}


# ------------------------------------------------------------------ one training step

def one_step(ns, x1, labels1, x2, labels2, n_classes, eps, encoder_flat, decoder_flat, learning_rate, beta=None):
    """Two of the student's train_step calls with SGD from the given weights (the trusted networks and
    losses: the step alone is judged); the weights after each and the metrics each returned. A `beta`
    goes to the model (VAE(encoder, decoder, beta=...)); without one the model's default is judged."""
    import keras

    n = scalar(n_classes)
    encoder = T.build_encoder(2, n, sampling=T.FixedNoise(eps))
    decoder = T.build_decoder(2, n)
    split(encoder_flat, T.weight_tensors(encoder))
    split(decoder_flat, T.weight_tensors(decoder))
    out = {}
    with substituted(ns, kl_divergence=T.kl_divergence, reconstruction_loss=T.reconstruction_loss,
                     condition=T.condition, Sampling=lambda *a, **k: T.FixedNoise(eps)):
        model = part(ns, "VAE")(encoder, decoder, **({} if beta is None else {"beta": scalar(beta, float)}))
        model.compile(optimizer=keras.optimizers.SGD(scalar(learning_rate, float)))
        for i, (x, y) in enumerate(((x1, labels1), (x2, labels2)), start=1):
            data = (_t(x), _t(y, tf.int32)) if n else _t(x)
            logs = model.train_step(data)
            m = metrics_of(logs)
            out.update({f"w{i}": to_flat(T.weight_tensors(encoder) + T.weight_tensors(decoder)),
                        f"metrics{i}": m["values"], f"present{i}": m["present"]})
    return out


def train(ns, x, epochs, batch_size, learning_rate, seed):
    """The student's Sampling, VAE model (train_step) and losses in the trusted loop: a VAE."""
    trainer = TFVAE(trusted_config(False, learning_rate, seed), "cpu", sampling=part(ns, "Sampling")(),
                      model_class=part(ns, "VAE"))
    return train_with_parts(trainer, x, None, epochs, batch_size, seed)


def train_cvae(ns, x, labels, epochs, batch_size, learning_rate, seed):
    """The student's condition in a CVAE whose other parts are the trusted ones."""
    trainer = TFVAE(trusted_config(True, learning_rate, seed), "cpu", conditioning=part(ns, "condition"))
    return train_with_parts(trainer, x, labels, epochs, batch_size, seed)


# ------------------------------------------------------------------ latent space and the CVAE

def manifold(ns, codes, n, decoder_flat):
    decoder = T.build_decoder(2, 0)
    split(decoder_flat, T.weight_tensors(decoder))
    return _manifold(ns, lambda z: plain(decoder(_t(z)))[..., 0], codes, n)


def condition(ns, h, labels, n_classes):
    fn = part(ns, "condition")
    dtype = tf.float64 if np.asarray(h).dtype == np.float64 else tf.float32
    out = fn(_t(h, dtype), _t(labels, tf.int64), scalar(n_classes))
    again = fn(_t(h, dtype), _t(labels, tf.int64), scalar(n_classes))
    bits = tf.as_dtype(out.dtype).size * 8 if hasattr(out, "dtype") else 0
    return {"out": plain(out), "out_again": plain(again), "bits": np.array(bits, np.float64)}


reseeded(globals())   # every probe above starts from the same random state in every run
