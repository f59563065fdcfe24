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

from ...grading.probing import part, plain, scalar  # noqa: E402
from ...weights import to_flat  # noqa: E402
from .common_probes import FIT_NETWORK, ordered, plug  # noqa: E402


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
    out = {"sizes": np.array([int(np.prod(v.shape)) for v in params], np.int64), "y": plain(y)}
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
    return {"ws": plain(part(ns, "mix_styles")(_t(w1), _t(w2), scalar(crossover)))}


def trunc(ns, ws, w_avg, psi, cutoff):
    c = scalar(cutoff)
    return {"ws": plain(part(ns, "truncate")(_t(ws), _t(w_avg), scalar(psi, float), None if c < 0 else c))}


def fit(ns, ws, targets, iterations, learning_rate, seed):
    """The package's small SynthesisNetwork with the student's AdaIN and noise, fitted to map each w to its
    target image (mean squared error, Adam, full batch); the weights back, flat, in the package's order.
    A weight that gets no gradient (a detached style) takes a zero step."""
    from ..tf_models import SynthesisNetwork

    keras.utils.set_random_seed(scalar(seed))
    net = SynthesisNetwork(**FIT_NETWORK)
    trusted = list(net.weights)
    swapped = plug(net, part(ns, "AdaptiveInstanceNorm"), part(ns, "NoiseInjection"), FIT_NETWORK["w_dim"])
    styles = tf.repeat(_t(ws)[:, None, :], net.num_layers, axis=1)
    net(styles[:1])                    # builds the student's layers if they create their weights in build()
    weights = ordered(trusted, swapped, lambda layer: list(layer.weights))
    trainable = [v for v in weights if v.trainable]
    target = _t(targets)
    opt = keras.optimizers.Adam(scalar(learning_rate, float), beta_1=0.0, beta_2=0.99)
    opt.build(trainable)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(styles) - target))
        grads = tape.gradient(loss, trainable)
        opt.apply_gradients([(tf.zeros_like(v) if g is None else g, v) for g, v in zip(grads, trainable)])
        return loss

    history = [float(step()) for _ in range(scalar(iterations))]
    return {"weights": to_flat(weights),
            "history": np.array(history)}
