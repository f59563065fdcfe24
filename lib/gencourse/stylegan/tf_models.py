"""StyleGAN's networks and losses in Keras 3 on TensorFlow (NHWC).

The same networks as torch_models, layer for layer (layout and equalized
learning rate in stylegan/common.py), as subclassed layers whose weights are
created in the constructor, in torch_models' order: a weight copied across gives
the same output. Kernels are Keras' layout ([in, out], [kh, kw, in, out]); the
constant is [1, 4, 4, C]; noise images are [batch, H, W, 1]. Weights are drawn
N(0, 1/lr_mul) at construction (seed with keras.utils.set_random_seed); noise
drawn inside the network uses a keras.random.SeedGenerator per layer.
`count_params` counts trainable weights only (Keras' own counts w_avg too).
Save with `save_weights` / `load_weights`.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from . import common  # noqa: E402
from .common import EPS_ADAIN, EPS_PIXEL_NORM, GAIN_LRELU, LEAKY_SLOPE, R1_GAMMA  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"gencourse.stylegan.tf_models needs Keras on TensorFlow; Keras was already "
                      f"imported with the {keras.backend.backend()!r} backend (KERAS_BACKEND)")


def _lrelu(x):
    return ops.leaky_relu(x, negative_slope=LEAKY_SLOPE)


# ---------------------------------------------------------------- equalized learning rate

class EqualizedDense(layers.Layer):
    """y = x (W * lr_mul * gain / sqrt(fan_in)) + b * lr_mul, W stored N(0, 1/lr_mul) (as torch)."""

    def __init__(self, in_features: int, units: int, gain: float = GAIN_LRELU,
                 lr_mul: float = 1.0, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.RandomNormal(0.0, 1.0 / lr_mul)
        self.kernel = self.add_weight(shape=(in_features, units), name="kernel", initializer=init)
        self.bias = self.add_weight(shape=(units,), name="bias", initializer="zeros") \
            if use_bias else None
        self.scale = lr_mul * gain / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.built = True

    def call(self, x):
        y = ops.matmul(x, self.kernel * self.scale)
        return y + self.bias * self.lr_mul if self.bias is not None else y


class EqualizedConv2D(layers.Layer):
    """A k x k convolution, stride 1, "same" zero padding (k // 2 each side), equalized lr."""

    def __init__(self, in_channels: int, filters: int, kernel: int = 3, gain: float = GAIN_LRELU,
                 use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.kernel = self.add_weight(shape=(kernel, kernel, in_channels, filters), name="kernel",
                                      initializer=keras.initializers.RandomNormal(0.0, 1.0))
        self.bias = self.add_weight(shape=(filters,), name="bias", initializer="zeros") \
            if use_bias else None
        self.scale = gain / math.sqrt(in_channels * kernel * kernel)
        self.built = True

    def call(self, x):
        y = ops.conv(x, self.kernel * self.scale, strides=1, padding="same")
        return y + self.bias if self.bias is not None else y


class PixelNorm(layers.Layer):
    """x / sqrt(mean(x^2 over the last axis) + eps)."""

    def __init__(self, eps: float = EPS_PIXEL_NORM, **kwargs):
        super().__init__(**kwargs)
        self.eps = eps

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.eps)


# ---------------------------------------------------------------- generator parts

class MappingNetwork(layers.Layer):
    """f: Z -> W. Pixel norm, then `n_layers` x (dense, leaky ReLU 0.2), lr_mul 0.01."""

    def __init__(self, z_dim: int = 128, w_dim: int = 128, n_layers: int = 8,
                 lr_mul: float = common.MAPPING_LR_MUL, **kwargs):
        super().__init__(**kwargs)
        self.norm = PixelNorm()
        dims = [z_dim] + [w_dim] * n_layers
        self.dense_layers = [EqualizedDense(a, b, lr_mul=lr_mul)
                             for a, b in zip(dims[:-1], dims[1:])]
        self.built = True

    def call(self, z):
        x = self.norm(ops.convert_to_tensor(z, "float32"))
        for layer in self.dense_layers:
            x = _lrelu(layer(x))
        return x


class ConstantInput(layers.Layer):
    """The learned 4x4 constant (ones), [1, size, size, channels], repeated for each example of
    `like` (any tensor whose first axis is the batch)."""

    def __init__(self, channels: int, size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.const = self.add_weight(shape=(1, size, size, channels), name="const",
                                     initializer="ones")
        self.built = True

    def call(self, like):
        return ops.broadcast_to(self.const, (ops.shape(like)[0], *self.const.shape[1:]))


class NoiseInjection(layers.Layer):
    """x + weight * noise, noise [batch, H, W, 1] broadcast over channels, weight starting at 0."""

    def __init__(self, channels: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.weight = self.add_weight(shape=(channels,), name="weight", initializer="zeros")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, x, noise=None):
        if noise is None:
            shape = ops.shape(x)
            noise = keras.random.normal((shape[0], shape[1], shape[2], 1),
                                        seed=self.seed_generator)
        return x + self.weight * ops.convert_to_tensor(noise, x.dtype)


class AdaptiveInstanceNorm(layers.Layer):
    """AdaIN(x, w) = (1 + y_s) * instance_norm(x) + y_b, (y_s, y_b) = A(w) (gain 1, zero bias)."""

    def __init__(self, channels: int, w_dim: int, eps: float = EPS_ADAIN, **kwargs):
        super().__init__(**kwargs)
        self.style = EqualizedDense(w_dim, 2 * channels, gain=1.0)
        self.channels, self.eps = channels, eps
        self.built = True

    def call(self, x, w):
        style = self.style(w)
        scale = style[:, None, None, :self.channels]
        bias = style[:, None, None, self.channels:]
        x = x - ops.mean(x, axis=(1, 2), keepdims=True)
        x = x * ops.rsqrt(ops.mean(ops.square(x), axis=(1, 2), keepdims=True) + self.eps)
        return (1.0 + scale) * x + bias


class LayerEpilogue(layers.Layer):
    """Noise injection, bias, leaky ReLU 0.2, AdaIN with this layer's w (the official epilogue)."""

    def __init__(self, channels: int, w_dim: int, eps: float = EPS_ADAIN, **kwargs):
        super().__init__(**kwargs)
        self.bias = self.add_weight(shape=(channels,), name="bias", initializer="zeros")
        self.noise = NoiseInjection(channels)
        self.adain = AdaptiveInstanceNorm(channels, w_dim, eps)
        self.built = True

    def call(self, x, w, noise=None):
        return self.adain(_lrelu(self.noise(x, noise) + self.bias), w)


class StyledConv(layers.Layer):
    """[nearest x2 upsampling,] conv 3x3 without bias, LayerEpilogue."""

    def __init__(self, in_channels: int, filters: int, w_dim: int, upsample: bool = False,
                 eps: float = EPS_ADAIN, **kwargs):
        super().__init__(**kwargs)
        self.upsample = upsample
        self.conv = EqualizedConv2D(in_channels, filters, 3, use_bias=False)
        self.epilogue = LayerEpilogue(filters, w_dim, eps)
        self.built = True

    def call(self, x, w, noise=None):
        if self.upsample:
            x = ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)
        return self.epilogue(self.conv(x), w, noise)


class SynthesisNetwork(layers.Layer):
    """g: styles [batch, num_layers, w_dim] (+ noise [batch, r, r, 1] per layer) -> NHWC images."""

    def __init__(self, resolution: int = 32, w_dim: int = 128, channels: int = 1,
                 fmap_base: int = 2048, fmap_max: int = 128, eps: float = EPS_ADAIN,
                 output: str = common.OUTPUT, **kwargs):
        super().__init__(**kwargs)
        nf = lambda r: common.feature_maps(r, fmap_base, fmap_max)  # noqa: E731
        self.resolution, self.num_layers = resolution, common.num_layers(resolution)
        self.out_activation = common.check_output(output)
        self.const_input = ConstantInput(nf(4))
        self.input_epilogue = LayerEpilogue(nf(4), w_dim, eps)
        convs = [StyledConv(nf(4), nf(4), w_dim, eps=eps)]
        for res in common.resolutions(resolution)[1:]:
            convs += [StyledConv(nf(res // 2), nf(res), w_dim, upsample=True, eps=eps),
                      StyledConv(nf(res), nf(res), w_dim, eps=eps)]
        self.convs = convs
        self.to_rgb = EqualizedConv2D(nf(resolution), channels, 1, gain=1.0)
        self.built = True

    def call(self, ws, noise=None):
        ws = ops.convert_to_tensor(ws, "float32")
        if ws.shape[1] != self.num_layers:
            raise ValueError(f"expected styles [batch, {self.num_layers}, w_dim], "
                             f"got {tuple(ws.shape)}")
        noise = [None] * self.num_layers if noise is None else list(noise)
        x = self.input_epilogue(self.const_input(ws), ws[:, 0], noise[0])
        for i, conv in enumerate(self.convs, start=1):
            x = conv(x, ws[:, i], noise[i])
        x = self.to_rgb(x)
        return ops.tanh(x) if self.out_activation == "tanh" else x


def mix_styles(w1, w2, crossover):
    """Layers before `crossover` (an int or one per example) take w1, the rest w2."""
    mask = common.crossover_mask(w1.shape[1], crossover)     # [1, L] or [batch, L]
    return ops.where(ops.convert_to_tensor(mask[:, :, None]), w1, w2)


def truncate(ws, w_avg, psi: float, cutoff: int | None = None):
    """w_avg + psi (w - w_avg) on the layers below `cutoff` (None: all)."""
    coef = common.truncation_coefficients(ws.shape[1], psi, cutoff).astype(np.float32)
    w_avg = ops.convert_to_tensor(w_avg, "float32")
    return w_avg + coef[None, :, None] * (ws - w_avg)


class Generator(keras.Model):
    """Mapping + synthesis with w_avg, style mixing and truncation (see torch_models.Generator)."""

    def __init__(self, resolution: int = 32, channels: int = 1, z_dim: int = 128,
                 w_dim: int = 128, mapping_layers: int = 8,
                 mapping_lr_mul: float = common.MAPPING_LR_MUL, fmap_base: int = 2048,
                 fmap_max: int = 128, adain_eps: float = EPS_ADAIN,
                 w_avg_decay: float = common.W_AVG_DECAY, output: str = common.OUTPUT, **kwargs):
        super().__init__(**kwargs)
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul)
        self.synthesis = SynthesisNetwork(resolution, w_dim, channels, fmap_base, fmap_max,
                                          adain_eps, output)
        self.w_avg = self.add_weight(shape=(w_dim,), name="w_avg", initializer="zeros",
                                     trainable=False)
        self.w_avg_decay, self.z_dim = w_avg_decay, z_dim
        self.built = True

    @property
    def num_layers(self) -> int:
        return self.synthesis.num_layers

    def update_w_avg(self, w) -> None:
        """w_avg <- decay * w_avg + (1 - decay) * mean of this batch's w."""
        mean = ops.stop_gradient(ops.mean(w, axis=0))
        self.w_avg.assign(self.w_avg_decay * self.w_avg + (1.0 - self.w_avg_decay) * mean)

    def styles(self, z, z2=None, crossover=None, psi: float = 1.0, cutoff: int | None = None,
               update_w_avg: bool = False):
        """Latents -> styles [batch, num_layers, w_dim] (mixed and truncated as asked)."""
        w = self.mapping(z)
        if update_w_avg:
            self.update_w_avg(w)
        ws = ops.repeat(w[:, None, :], self.num_layers, axis=1)
        if z2 is not None:
            ws2 = ops.repeat(self.mapping(z2)[:, None, :], self.num_layers, axis=1)
            ws = mix_styles(ws, ws2, self.num_layers if crossover is None else crossover)
        if psi != 1.0:
            ws = truncate(ws, self.w_avg, psi, cutoff)
        return ws

    def call(self, z, z2=None, crossover=None, psi: float = 1.0, cutoff: int | None = None,
             noise=None, update_w_avg: bool = False, training=None):
        return self.synthesis(self.styles(z, z2, crossover, psi, cutoff, update_w_avg), noise)


# ---------------------------------------------------------------- discriminator

class MinibatchStdDev(layers.Layer):
    """Appends the mean over features of the stddev over a group (example n in group n % M).

    The group size depends on the batch, so the batch must be known when the
    layer is traced (eager calls, or a tf.function with a fixed batch size).
    """

    def __init__(self, group_size: int = common.MBSTD_GROUP, eps: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.group_size, self.eps = group_size, eps

    def call(self, x):
        b, h, w, c = x.shape
        g = common.stddev_group(b, self.group_size)
        y = ops.reshape(x, (g, -1, h, w, c))
        y = y - ops.mean(y, axis=0, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(y), axis=0) + self.eps)     # [M, H, W, C]
        feat = ops.tile(ops.mean(std, axis=(1, 2, 3)), [g])            # [B]
        feat = ops.broadcast_to(ops.reshape(feat, (b, 1, 1, 1)), (b, h, w, 1))
        return ops.concatenate([x, feat], axis=-1)


class DiscriminatorBlock(layers.Layer):
    """conv 3x3, leaky ReLU, conv 3x3, leaky ReLU, 2x2 average pooling."""

    def __init__(self, in_channels: int, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.conv0 = EqualizedConv2D(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2D(in_channels, filters, 3)
        self.built = True

    def call(self, x):
        x = _lrelu(self.conv1(_lrelu(self.conv0(x))))
        return ops.average_pool(x, 2, strides=2, padding="valid")


class Discriminator(keras.Model):
    """FromRGB 1x1, blocks down to 4x4, [minibatch stddev], conv 3x3, dense, dense -> one logit."""

    def __init__(self, resolution: int = 32, channels: int = 1, fmap_base: int = 2048,
                 fmap_max: int = 128, mbstd_group: int = common.MBSTD_GROUP, **kwargs):
        super().__init__(**kwargs)
        nf = lambda r: common.feature_maps(r, fmap_base, fmap_max)  # noqa: E731
        self.from_rgb = EqualizedConv2D(channels, nf(resolution), 1)
        self.blocks = [DiscriminatorBlock(nf(res), nf(res // 2))
                       for res in reversed(common.resolutions(resolution)[1:])]
        self.mbstd = MinibatchStdDev(mbstd_group) if mbstd_group > 1 else None
        self.conv = EqualizedConv2D(nf(4) + (self.mbstd is not None), nf(4), 3)
        self.dense = EqualizedDense(nf(4) * 16, nf(4))
        self.out = EqualizedDense(nf(4), 1, gain=1.0)
        self.built = True

    def call(self, x, training=None):
        x = _lrelu(self.from_rgb(ops.convert_to_tensor(x, "float32")))
        for block in self.blocks:
            x = block(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = _lrelu(self.conv(x))
        x = _lrelu(self.dense(ops.reshape(x, (ops.shape(x)[0], -1))))
        return self.out(x)


def build_generator(config: common.StyleGANConfig | None = None) -> Generator:
    return Generator(**common.generator_args(config or common.StyleGANConfig()))


def build_discriminator(config: common.StyleGANConfig | None = None) -> Discriminator:
    return Discriminator(**common.discriminator_args(config or common.StyleGANConfig()))


def count_params(model) -> int:
    """Trainable weights only (w_avg is not a parameter, as torch_models' buffer)."""
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


# ---------------------------------------------------------------- losses (reference.stylegan's)

def generator_loss(d_fake):
    """Non-saturating: mean softplus(-D(G(z)))."""
    return ops.mean(ops.softplus(-ops.convert_to_tensor(d_fake, "float32")))


def discriminator_loss(d_real, d_fake):
    """Logistic: mean softplus(D(G(z))) + mean softplus(-D(x))."""
    return (ops.mean(ops.softplus(ops.convert_to_tensor(d_fake, "float32")))
            + ops.mean(ops.softplus(-ops.convert_to_tensor(d_real, "float32"))))


def r1_penalty(discriminator, reals, gamma: float = R1_GAMMA, return_logits: bool = False):
    """gamma / 2 * mean over reals of |grad_x D(x)|^2, by an inner GradientTape.

    R1 rather than WGAN-GP: see torch_models.r1_penalty (the official FFHQ setup).
    Call it inside the GradientTape that differentiates D's loss: the inner tape
    is recorded by the outer one, so the penalty's gradient reaches D's weights.
    """
    reals = tf.convert_to_tensor(reals, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(reals)
        logits = discriminator(reals)
        total = tf.reduce_sum(logits)
    grad = tape.gradient(total, reals)
    per_image = tf.reduce_sum(tf.square(tf.reshape(grad, (tf.shape(grad)[0], -1))), axis=1)
    penalty = 0.5 * gamma * tf.reduce_mean(per_image)
    return (penalty, logits) if return_logits else penalty


def sample_styles_for_training(generator: Generator, batch: int, rng: np.random.Generator,
                               mixing_prob: float = common.MIXING_PROB):
    """One training batch of styles: two latents, a crossover from common.sample_crossover
    (mixing with probability `mixing_prob`), and the w_avg update (as torch_models')."""
    z1 = rng.standard_normal((batch, generator.z_dim)).astype(np.float32)
    z2 = rng.standard_normal((batch, generator.z_dim)).astype(np.float32)
    crossover = common.sample_crossover(rng, generator.num_layers, mixing_prob)
    z2 = z2 if crossover < generator.num_layers else None    # no mixing: skip f(z2)
    return generator.styles(z1, z2, crossover, update_w_avg=True)
