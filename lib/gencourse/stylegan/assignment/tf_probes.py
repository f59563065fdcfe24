"""Probes of the StyleGAN assignment, TensorFlow/Keras track (run in the worker).

Student parts: `AdaptiveInstanceNorm(channels, w_dim, eps)` (a Keras layer whose
given `self.style` is the affine map A, called as `adain(x, w)`),
`NoiseInjection(channels)` (called as `noise(x, noise=None)`),
`mix_styles(w1, w2, crossover)` and `truncate(ws, w_avg, psi, cutoff)`. Images
are NHWC as the grader's; noise images [N, H, W, 1].
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ...grading.probing import keeping, part, plain, reseeded, scalar, shape_table, substituted  # noqa: E402
from . import common_probes as cp  # noqa: E402
from .common_probes import class_direction, direction, frechet, losses, shipped  # noqa: E402, F401 (probes)


def _t(a):
    return tf.constant(np.asarray(a, np.float32))


def _set_style(layer, kernel, bias) -> None:
    """Load the grader's A into the layer's `style` (an EqualizedDense: kernel [w_dim, 2C], bias [2C])."""
    style = getattr(layer, "style", None)
    if style is None or not hasattr(style, "kernel") or not hasattr(style, "bias"):
        raise AttributeError("AdaptiveInstanceNorm has no `self.style` with a kernel and a bias: keep the given "
                             "line self.style = EqualizedDense(w_dim, 2 * channels, gain=1.0)")
    style.kernel.assign(np.asarray(kernel, np.float32))
    style.bias.assign(np.asarray(bias, np.float32))


def adain(ns, x, w, kernel, bias, eps, weights):
    """AdaIN's output for x and w with the grader's A, and the gradient of sum(weights * output) for w."""
    from ..tf_models import EqualizedDense

    with substituted(ns, EqualizedDense=EqualizedDense):     # the package's A: this check judges AdaIN alone
        layer = part(ns, "AdaptiveInstanceNorm")(int(np.shape(x)[-1]), int(np.shape(w)[-1]), eps=scalar(eps, float))
    _set_style(layer, kernel, bias)
    wt = tf.Variable(np.asarray(w, np.float32))
    with tf.GradientTape() as tape:
        y = layer(_t(x), wt)
        total = tf.reduce_sum(tf.cast(y, tf.float32) * _t(weights)) if tf.is_tensor(y) else None
    grad = None if total is None else tape.gradient(total, wt)
    return {"y": plain(y), "grad_w": np.zeros(np.shape(w)) if grad is None else plain(grad),
            "missing": np.array(float(grad is None))}


def _noise_layer(ns, channels):
    return part(ns, "NoiseInjection")(scalar(channels))


def noise_init(ns, x, seed):
    """The new layer's weights (sizes and values) and its output for x with drawn noise."""
    keras.utils.set_random_seed(scalar(seed))
    layer = _noise_layer(ns, np.shape(x)[-1])
    y = layer(_t(x))
    params = layer.weights
    out = {"sizes": np.array([int(np.prod(v.shape)) for v in params], np.int64), "y": plain(y),
           "shapes": shape_table(params)}
    if params:
        out["values"] = np.concatenate([plain(v).ravel() for v in params])
    return out


def _set_scale(layer, x, scale) -> None:
    layer(_t(x))                       # builds the layer if it creates its weights in build()
    params = layer.weights
    scale = np.asarray(scale, np.float32)
    if len(params) != 1 or int(np.prod(params[0].shape)) != scale.size:
        raise ValueError(f"NoiseInjection holds weights of sizes {[int(np.prod(v.shape)) for v in params]}: "
                         f"expected one learned scale per channel ({scale.size} numbers)")
    params[0].assign(scale.reshape(params[0].shape))


def noise_given(ns, x, noise, scale):
    """x + scale * noise for a given noise image [N, H, W, 1]."""
    layer = _noise_layer(ns, np.shape(x)[-1])
    _set_scale(layer, x, scale)
    return {"y": plain(layer(_t(x), _t(noise)))}


def noise_drawn(ns, x, scale, seed):
    """Two calls with noise=None; what each added, per channel, divided by that channel's scale."""
    keras.utils.set_random_seed(scalar(seed))
    layer = _noise_layer(ns, np.shape(x)[-1])
    _set_scale(layer, x, scale)
    first, second = plain(layer(_t(x))), plain(layer(_t(x)))
    x, s = np.asarray(x, np.float64), np.asarray(scale, np.float64)
    return {"first": (first - x) / s, "second": (second - x) / s}


def mix(ns, w1, w2, crossover):
    ws, changed = keeping(part(ns, "mix_styles"), _t(w1), _t(w2), scalar(crossover))
    return {"ws": plain(ws), "changed": changed[:2]}


def trunc(ns, ws, w_avg, psi, cutoff):
    c = scalar(cutoff)
    out, changed = keeping(part(ns, "truncate"), _t(ws), _t(w_avg), scalar(psi, float), None if c < 0 else c)
    return {"ws": plain(out), "changed": changed[:2]}


def pretrained(ns, z, noise_seed):
    """The shipped generator drawing with the student's AdaIN and noise (common_probes.shipped)."""
    from ..tf_models import EqualizedDense

    with substituted(ns, EqualizedDense=EqualizedDense):     # the package's A inside the student's AdaIN
        return shipped(ns, "tf", z, noise_seed)


# --------------------------------------------------------------------- equalized lr, mapping, losses

def equalized(ns, x, weight, bias, r, gain, lr_mul, seed):
    """A fresh EqualizedDense's stored kernel and bias, then its output and gradients with the grader's W, b.

    Kernels are Keras' [in, out]; they travel in the grader's [out, in] layout."""
    cls = part(ns, "EqualizedDense")
    out_f, in_f = np.shape(weight)
    keras.utils.set_random_seed(scalar(seed))
    layer = cls(in_f, out_f, gain=scalar(gain, float), lr_mul=scalar(lr_mul, float))
    out = {"init_weight": plain(layer.kernel).T, "init_bias": plain(layer.bias)}
    layer.kernel.assign(np.asarray(weight, np.float32).T)
    layer.bias.assign(np.asarray(bias, np.float32))
    with tf.GradientTape() as tape:
        y = layer(_t(x))
        total = tf.reduce_sum(tf.cast(y, tf.float32) * _t(r)) if tf.is_tensor(y) else None
    grads = [None, None] if total is None else tape.gradient(total, [layer.kernel, layer.bias])
    out.update(y=plain(y), missing=np.array([g is None for g in grads], np.float64),
               grad_w=np.zeros(np.shape(weight)) if grads[0] is None else plain(grads[0]).T,
               grad_b=np.zeros(np.shape(bias)) if grads[1] is None else plain(grads[1]))
    return out


def mapping(ns, z, z_dim, w_dim, n_layers, seed, x, weights_flat, weights_table, structure):
    """The student's MappingNetwork, built with the package's equalized layer, with the package's weights
    loaded in run order (grading.networks)."""
    from ...grading.tracing import probe_network

    from ..tf_models import EqualizedDense

    keras.utils.set_random_seed(scalar(seed))
    with substituted(ns, EqualizedDense=EqualizedDense):     # the package's layer: this check judges the network
        net = part(ns, "MappingNetwork")(scalar(z_dim), scalar(w_dim), scalar(n_layers))
    return probe_network(net, x, weights_flat, weights_table, structure)


def _with_grads(fn, *arrays):
    """fn on float32 tensors of `arrays` under a tape: its value, its gradient for each (zeros where none
    reached it) and a 0/1 flag per input that got none."""
    ts = [_t(a) for a in arrays]
    with tf.GradientTape() as tape:
        tape.watch(ts)
        value = fn(*ts)
        total = tf.reduce_sum(tf.cast(value, tf.float32)) if tf.is_tensor(value) else None
    grads = [None] * len(ts) if total is None else tape.gradient(total, ts)
    return (value, [np.zeros(np.shape(a)) if g is None else plain(g) for g, a in zip(grads, arrays)],
            np.array([g is None for g in grads], np.float64))


def loss_values(ns, d_real, d_fake):
    return losses(ns, _with_grads, d_real, d_fake)


class QuadraticD(keras.layers.Layer):
    """D(x) = sum_p (a x^2 + c x) + b per image of [N, H, W, 1]: its input gradient is 2 a x + c."""

    def __init__(self, a, c, b):
        super().__init__()
        self.a = self.add_weight(shape=np.shape(a), initializer=keras.initializers.Constant(np.asarray(a)))
        self.c = self.add_weight(shape=np.shape(c), initializer=keras.initializers.Constant(np.asarray(c)))
        self.b = self.add_weight(shape=(), initializer=keras.initializers.Constant(float(np.asarray(b))))

    def call(self, x):
        x = x[..., 0]
        return tf.reduce_sum(self.a * x ** 2 + self.c * x, axis=(1, 2))[:, None] + self.b


def _images(a):
    return _t(np.asarray(a, np.float32)[..., None])


def r1(ns, reals, fakes, a, c, b, gamma):
    """The student's r1_penalty(D, reals, gamma), and its gradient for D's weight a (None: cut from the graph)."""
    d = QuadraticD(a, c, b)
    with tf.GradientTape() as outer:
        value = part(ns, "r1_penalty")(d, _images(reals), scalar(gamma, float))
        total = tf.reduce_sum(tf.cast(value, tf.float32)) if tf.is_tensor(value) else None
    grad = None if total is None else outer.gradient(total, d.a)
    return {"r1": plain(value), "missing": np.array(float(grad is None)),
            "grad_a": np.zeros(np.shape(a)) if grad is None else plain(grad)}


def d_objective(ns, reals, fakes, a, c, b, gamma):
    """The student's discriminator_objective, with the package's loss and R1 in its namespace: this check
    judges what the objective is made of."""
    from ..tf_models import discriminator_loss, r1_penalty

    with substituted(ns, discriminator_loss=discriminator_loss, r1_penalty=r1_penalty):
        value = part(ns, "discriminator_objective")(QuadraticD(a, c, b), _images(reals), _images(fakes),
                                                    scalar(gamma, float))
    return {"objective": plain(value)}


def step(ns, **inputs):
    """Two steps of the student's training_step (common_probes.step), keras.optimizers.SGD, the package's losses."""
    from .. import tf_models as km
    from . import tf_step

    return cp.step(tf_step, km, ns, inputs, sgd=lambda weights, lr: keras.optimizers.SGD(learning_rate=lr))



def short_training(ns, **inputs):
    """The grader's short training with the student's training_step (common_probes.short_training)."""
    from .. import tf_models as km
    from . import tf_step

    return cp.short_training("tf", tf_step, km, ns, inputs)

globals().update(cp.generator_probes("tf"))   # generator_net, generator_styles, generator_draw

reseeded(globals())   # every probe above starts from the same random state in every run
