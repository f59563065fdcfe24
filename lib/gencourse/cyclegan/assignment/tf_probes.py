"""Probes of the CycleGAN assignment, TensorFlow/Keras track (run in the worker).

Student parts: `cycle_consistency_loss(real_a, reconstructed_a, real_b,
reconstructed_b, lambda_cycle)`, `identity_loss(real, same, lambda_cycle,
lambda_identity)` and `build_patch_discriminator(in_channels, ndf, n_layers)`
(a Keras model on NHWC images of any size).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ...grading.probing import part, plain, scalar  # noqa: E402
from .common_probes import train_with_parts  # noqa: E402


def _images(a):
    return tf.constant(np.asarray(a, np.float32))


def _summed(loss):
    """The student's loss summed to a float32 scalar (inside the tape), or None when it is no tensor."""
    if tf.is_tensor(loss) or isinstance(loss, tf.Variable):
        return tf.reduce_sum(tf.cast(loss, tf.float32))
    return None


def _grad_back(tape, total, tensors):
    """Gradients of `total` for `tensors`, and a 0/1 flag per tensor that got none."""
    grads = [None] * len(tensors) if total is None else tape.gradient(total, tensors)
    missing = np.array([g is None for g in grads], dtype=np.float64)
    return [np.zeros(t.shape) if g is None else plain(g) for g, t in zip(grads, tensors)], missing


def cycle(ns, real_a, reconstructed_a, real_b, reconstructed_b, lambda_cycle):
    fn = part(ns, "cycle_consistency_loss")
    ra, ca, rb, cb = (_images(x) for x in (real_a, reconstructed_a, real_b, reconstructed_b))
    with tf.GradientTape() as tape:
        tape.watch([ca, cb])
        loss = fn(ra, ca, rb, cb, scalar(lambda_cycle, float))
        total = _summed(loss)
    (ga, gb), missing = _grad_back(tape, total, [ca, cb])
    return {"loss": plain(loss), "grad_a": ga, "grad_b": gb, "missing": missing}


def identity(ns, real, same, lambda_cycle, lambda_identity):
    fn = part(ns, "identity_loss")
    r, s = _images(real), _images(same)
    with tf.GradientTape() as tape:
        tape.watch(s)
        loss = fn(r, s, scalar(lambda_cycle, float), scalar(lambda_identity, float))
        total = _summed(loss)
    (grad,), missing = _grad_back(tape, total, [s])
    return {"loss": plain(loss), "grad": grad, "missing": missing}


def _discriminator(ns, in_channels, ndf, n_layers):
    build = part(ns, "build_patch_discriminator")
    return build(in_channels=scalar(in_channels), ndf=scalar(ndf), n_layers=scalar(n_layers))


def d_maps(ns, sizes, in_channels, ndf, n_layers, seed):
    """Output shapes for square inputs of each size."""
    d = _discriminator(ns, in_channels, ndf, n_layers)
    rng = np.random.default_rng(scalar(seed))
    out = {}
    for i, n in enumerate(np.asarray(sizes).ravel()):
        y = d(_images(rng.uniform(-1, 1, (2, int(n), int(n), scalar(in_channels)))), training=False)
        out[f"shape{i}"] = np.array(tuple(y.shape))
    return out


def d_logits(ns, size, in_channels, ndf, n_layers, seed):
    """The scores for random images, then again with the last layer's weights times 1000.

    Raw scores grow with that layer's weights; a sigmoid after it keeps them in [0, 1].
    """
    d = _discriminator(ns, in_channels, ndf, n_layers)
    x = _images(np.random.default_rng(scalar(seed)).uniform(-1, 1, (2, scalar(size), scalar(size),
                                                                      scalar(in_channels))))
    values = plain(d(x, training=False))
    for v in [layer for layer in d.layers if layer.weights][-1].weights:
        v.assign(v * 1000.0)
    return {"values": values, "scaled": plain(d(x, training=False))}


def _without_norms(model):
    """A copy of the model (new weights) with every normalization layer replaced by an identity."""
    def clone(layer):
        if "Normalization" in type(layer).__name__:
            return keras.layers.Identity()
        return layer.__class__.from_config(layer.get_config())
    return keras.models.clone_model(model, clone_function=clone)


def d_receptive_field(ns, size, unit, in_channels, ndf, n_layers, seed):
    """Which input rows and columns the gradient of output unit (unit, unit) reaches.

    Normalization layers are switched off (the model is cloned with identities in
    their place): their statistics couple every pixel, which would hide the
    convolutions' field.
    """
    original = _discriminator(ns, in_channels, ndf, n_layers)
    d = _without_norms(original)
    switched = sum("Normalization" in type(layer).__name__ for layer in original.layers)
    rng = np.random.default_rng(scalar(seed))
    x = tf.Variable(rng.normal(size=(1, scalar(size), scalar(size), scalar(in_channels))).astype(np.float32))
    u = scalar(unit)
    with tf.GradientTape() as tape:
        y = d(x, training=False)
        if len(y.shape) != 4 or y.shape[1] <= u or y.shape[2] <= u:
            raise ValueError(f"the output has shape {list(y.shape)}: it has no unit ({u}, {u}) to follow "
                             f"for a {scalar(size)}x{scalar(size)} input (expected a map [N, H, W, 1])")
        unit_out = y[0, u, u, 0]
    mask = np.abs(plain(tape.gradient(unit_out, x))[0]).sum(axis=-1) > 0
    return {"rows": mask.any(axis=1).astype(np.float64), "cols": mask.any(axis=0).astype(np.float64),
            "switched": np.array(switched)}


def d_params(ns, in_channels, ndf, n_layers):
    d = _discriminator(ns, in_channels, ndf, n_layers)
    return {"count": np.array(sum(int(np.prod(v.shape)) for v in d.trainable_weights), dtype=np.int64)}


def train(ns, a, b, iterations, batch_size, seed, lambda_identity):
    """The student's losses and PatchGAN in the trusted loop (see `common_probes.train_with_parts`)."""
    return train_with_parts("tf", ns, "build_patch_discriminator", lambda: tf.zeros(()), a, b, iterations, batch_size, seed,
                            lambda_identity)
