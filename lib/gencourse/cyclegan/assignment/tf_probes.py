"""Probes of the CycleGAN assignment, TensorFlow/Keras track (run in the worker).

Student parts: `build_resnet_generator(in_channels, out_channels, ngf, n_blocks)` and
`build_patch_discriminator(in_channels, ndf, n_layers)` (Keras models on NHWC images of any size),
`generator_adversarial_loss`, `discriminator_loss`, `cycle_consistency_loss`, `identity_loss`,
`training_step(...)` and `semantic_consistency_loss(logits, labels, weight)`.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ...grading.tracing import probe_network  # noqa: E402
from ...grading.probing import part, plain, scalar, reseeded  # noqa: E402
from .. import tf_models as km  # noqa: E402
from ..tf_track import HistoryPool  # noqa: E402
from . import tf_step  # noqa: E402
from .common_probes import finite, step_probe, train_probe  # noqa: E402
from .loss_checks import GAN_MODES  # noqa: E402


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


def _float32(loss) -> bool:
    return bool((tf.is_tensor(loss) or isinstance(loss, tf.Variable)) and loss.dtype == tf.float32)


def cycle(ns, real_a, reconstructed_a, real_b, reconstructed_b, lambda_cycle):
    fn = part(ns, "cycle_consistency_loss")
    ra, ca, rb, cb = (_images(x) for x in (real_a, reconstructed_a, real_b, reconstructed_b))
    with tf.GradientTape() as tape:
        tape.watch([ca, cb])
        loss = fn(ra, ca, rb, cb, scalar(lambda_cycle, float))
        total = _summed(loss)
    (ga, gb), missing = _grad_back(tape, total, [ca, cb])
    return {"loss": plain(loss), "grad_a": ga, "grad_b": gb, "missing": missing}


def identity(ns, real, same, lambda_identity):
    fn = part(ns, "identity_loss")
    r, s = _images(real), _images(same)
    with tf.GradientTape() as tape:
        tape.watch(s)
        loss = fn(r, s, scalar(lambda_identity, float))
        total = _summed(loss)
    (grad,), missing = _grad_back(tape, total, [s])
    return {"loss": plain(loss), "grad": grad, "missing": missing}


def adversarial(ns, d_real, d_fake, gan_mode):
    mode = GAN_MODES[scalar(gan_mode)]
    real, fake = _images(d_real), _images(d_fake)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([real, fake])
        g = part(ns, "generator_adversarial_loss")(fake, mode)
        d = part(ns, "discriminator_loss")(real, fake, mode)
        g_total, d_total = _summed(g), _summed(d)
    (g_grad,), missing = _grad_back(tape, g_total, [fake])
    (d_grad_real, d_grad_fake), d_missing = _grad_back(tape, d_total, [real, fake])
    return finite({"g_loss": plain(g), "g_grad": g_grad, "missing": missing, "d_loss": plain(d),
                   "d_grad_real": d_grad_real, "d_grad_fake": d_grad_fake, "d_missing": d_missing,
                   "float32": np.array(float(_float32(g) and _float32(d)))}, "g_loss", "d_loss")


def semantic(ns, logits, labels, weight):
    z = _images(logits)
    with tf.GradientTape() as tape:
        tape.watch(z)
        loss = part(ns, "semantic_consistency_loss")(z, tf.constant(np.asarray(labels, np.int64)),
                                                     scalar(weight, float))
        total = _summed(loss)
    (grad,), missing = _grad_back(tape, total, [z])
    return finite({"loss": plain(loss), "grad": grad, "missing": missing, "float32": np.array(float(_float32(loss)))},
                  "loss")


def _generator(ns, in_channels, out_channels, ngf, n_blocks):
    build = part(ns, "build_resnet_generator")
    return build(in_channels=scalar(in_channels), out_channels=scalar(out_channels), ngf=scalar(ngf),
                 n_blocks=scalar(n_blocks))


def g_shapes(ns, shapes, in_channels, out_channels, ngf, n_blocks, seed):
    """Output shapes and ranges for batches of each (N, H, W), and whether they are float32."""
    keras.utils.set_random_seed(scalar(seed))
    g = _generator(ns, in_channels, out_channels, ngf, n_blocks)
    rng, out, dtypes = np.random.default_rng(scalar(seed)), {}, []
    for i, (n, h, w) in enumerate(np.asarray(shapes)):
        y = g(_images(rng.uniform(-1, 1, (int(n), int(h), int(w), scalar(in_channels)))), training=False)
        out[f"shape{i}"] = np.array(tuple(y.shape))
        out[f"range{i}"] = np.array([float(tf.reduce_min(y)), float(tf.reduce_max(y))])
        dtypes.append(y.dtype == tf.float32)
    out["float32"] = np.array(float(all(dtypes)))
    return out


def g_params(ns, in_channels, out_channels, ngf, n_blocks):
    """The parameter count; the model (45 MB at ResNet-9's full width) is let go at once."""
    g = _generator(ns, in_channels, out_channels, ngf, n_blocks)
    count = sum(int(np.prod(v.shape)) for v in g.trainable_weights)
    del g
    keras.backend.clear_session(free_memory=True)
    return {"count": np.array(count, dtype=np.int64)}


def g_network(ns, x, weights_flat, weights_table, structure, in_channels, out_channels, ngf, n_blocks, **_):
    return probe_network(_generator(ns, in_channels, out_channels, ngf, n_blocks), x, weights_flat, weights_table,
                         structure)


def _discriminator(ns, in_channels, ndf, n_layers):
    build = part(ns, "build_patch_discriminator")
    return build(in_channels=scalar(in_channels), ndf=scalar(ndf), n_layers=scalar(n_layers))


def d_network(ns, x, weights_flat, weights_table, structure, in_channels, ndf, n_layers, **_):
    return probe_network(_discriminator(ns, in_channels, ndf, n_layers), x, weights_flat, weights_table, structure)


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
            return {"no_unit": np.array(list(y.shape), np.float64)}      # the judge says what the map lacks
        unit_out = y[0, u, u, 0]
    mask = np.abs(plain(tape.gradient(unit_out, x))[0]).sum(axis=-1) > 0
    return {"rows": mask.any(axis=1).astype(np.float64), "cols": mask.any(axis=0).astype(np.float64),
            "switched": np.array(switched)}


def d_params(ns, in_channels, ndf, n_layers):
    d = _discriminator(ns, in_channels, ndf, n_layers)
    return {"count": np.array(sum(int(np.prod(v.shape)) for v in d.trainable_weights), dtype=np.int64)}


def _two_way_cycle(real_a, rec_a, real_b, rec_b, lambda_cycle=10.0):
    return km.cycle_consistency_loss(real_a, rec_a, lambda_cycle) + km.cycle_consistency_loss(real_b, rec_b, lambda_cycle)


TRUSTED_LOSSES = {"generator_adversarial_loss": km.generator_adversarial_loss,
                  "discriminator_loss": km.discriminator_loss, "cycle_consistency_loss": _two_way_cycle,
                  "identity_loss": km.identity_loss, "semantic_consistency_loss": km.semantic_consistency_loss}


def _sgd(variables, lr):
    opt = keras.optimizers.SGD(lr)
    opt.build(variables)
    return opt


def _adam(variables):
    opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    opt.build(variables)
    return opt


def step(ns, **inputs):
    """Two iterations of the student's training_step with the package's losses (see common_probes.step_probe),
    its tf.functions run eagerly: on these small networks faster than tracing them for each case."""
    eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    try:
        return step_probe(tf_step, ns, inputs, losses=TRUSTED_LOSSES, sgd=_sgd, pool_cls=HistoryPool)
    finally:
        tf.config.run_functions_eagerly(eager)


def train(ns, a, b, iterations, batch_size, seed, lambda_identity):
    """The student's losses and training_step on the package's networks (see common_probes.train_probe)."""
    return train_probe(tf_step, ns, a, b, iterations, batch_size, seed, lambda_identity, adam=_adam,
                       pool_cls=HistoryPool)


reseeded(globals())   # every probe above starts from the same random state in every run
