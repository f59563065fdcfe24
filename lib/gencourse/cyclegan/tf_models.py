"""CycleGAN's networks and losses in Keras 3 on TensorFlow (NHWC).

The same networks as torch_models (layouts in cyclegan/common.py), built as
functional models, so that a weight copied across gives the same output:

- Keras has no instance norm and no reflection padding: `InstanceNormalization`
  and `ReflectionPadding2D` are in tf_layers (with the digit classifier).
- Where PyTorch pads symmetrically and Keras' "same" would not (3x3 stride-2
  convolutions, the PatchGAN's stride-1 4x4 convolutions), the zero padding is
  explicit (ZeroPadding2D + "valid"); the ResNet's transposed convolutions crop
  the first row and column of their "valid" output, as PyTorch's padding=1,
  output_padding=1 does. The trainer's ResNet generator does both inside the
  kernels (`in_kernel=True`: `PaddedConv2D`, `CroppedConv2DTranspose`, no padded
  or uncropped copy; its forward and backward about 9 % less CPU time at 128² on
  one thread); the grader's keeps the separate layers its layer-by-layer
  diagnosis names. The U-Net keeps the tutorial's "same", which equals
  padding 1 for 4x4 stride-2 kernels on even sides.
- Kernels N(0, 0.02), biases 0 (the reference init; seed with
  keras.utils.set_random_seed).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from .common import LAMBDA_CYCLE, LAMBDA_IDENTITY, unet_filters  # noqa: E402
from .tf_layers import InstanceNormalization, ReflectionPadding2D, _normal  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"gencourse.cyclegan.tf_models needs Keras on TensorFlow; Keras was already "
                      f"imported with the {keras.backend.backend()!r} backend (KERAS_BACKEND)")

def _norm(x, norm: str, affine: bool):
    if norm == "instance":
        return InstanceNormalization(affine=affine)(x)
    if norm == "none":
        return x
    raise ValueError(f"norm must be 'instance' or 'none', got {norm!r}")


def _conv(filters, kernel, strides=1, padding="valid", use_bias=True):
    return layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=use_bias,
                         kernel_initializer=_normal(), bias_initializer="zeros")


def _conv_t(filters, kernel, strides=2, padding="valid", use_bias=True, activation=None):
    return layers.Conv2DTranspose(filters, kernel, strides=strides, padding=padding,
                                  use_bias=use_bias, activation=activation,
                                  kernel_initializer=_normal(), bias_initializer="zeros")


@keras.saving.register_keras_serializable("gencourse")
class PaddedConv2D(layers.Conv2D):
    """A "valid" Conv2D after `zero_padding` zeros on each side of H and W, padded inside the convolution."""

    def __init__(self, filters, kernel_size, zero_padding: int = 1, **kwargs):
        super().__init__(filters, kernel_size, **{**kwargs, "padding": "valid"})
        self.zero_padding = zero_padding

    def call(self, x):
        p = self.zero_padding
        y = tf.nn.conv2d(x, self.kernel, self.strides, [[0, 0], [p, p], [p, p], [0, 0]])
        return tf.nn.bias_add(y, self.bias) if self.use_bias else y

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = lambda n: None if n is None else n + 2 * self.zero_padding  # noqa: E731
        return super().compute_output_shape((b, grow(h), grow(w), c))

    def get_config(self):
        return {**super().get_config(), "zero_padding": self.zero_padding}


@keras.saving.register_keras_serializable("gencourse")
class CroppedConv2DTranspose(layers.Conv2DTranspose):
    """A stride-2 Conv2DTranspose of odd kernel k as PyTorch's padding=(k - 1) / 2, output_padding=1 (twice the
    input's side): the "valid" output without its first (k - 1) / 2 and last (k - 3) / 2 rows and columns,
    cropped inside the kernel."""

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **{**kwargs, "strides": 2, "padding": "valid"})

    def call(self, x):
        s = tf.shape(x)
        (ph, pw) = ((k - 1) // 2 for k in self.kernel_size)
        crop = [[0, 0], [ph, ph - 1], [pw, pw - 1], [0, 0]]
        y = tf.nn.conv2d_transpose(x, self.kernel, tf.stack([s[0], 2 * s[1], 2 * s[2], self.filters]), 2, crop)
        return tf.nn.bias_add(y, self.bias) if self.use_bias else y

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        twice = lambda n: None if n is None else 2 * n  # noqa: E731
        return (b, twice(h), twice(w), self.filters)


def _input(image_size, channels):
    return keras.Input(shape=(image_size, image_size, channels), name="image")


def resnet_block(x, norm: str = "instance", affine: bool = False):
    """x + [reflect pad 1, conv 3x3, norm, ReLU, reflect pad 1, conv 3x3, norm](x) (R256)."""
    channels = x.shape[-1]
    h = _conv(channels, 3)(ReflectionPadding2D(1)(x))
    h = layers.ReLU()(_norm(h, norm, affine))
    h = _conv(channels, 3)(ReflectionPadding2D(1)(h))
    return layers.Add()([x, _norm(h, norm, affine)])


def build_resnet_generator(image_size: int | None = None, in_channels: int = 3,
                           out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                           norm: str = "instance", affine: bool = False, in_kernel: bool = False) -> keras.Model:
    """c7s1-64, d128, d256, n_blocks x R256, u128, u64, c7s1-out, tanh (as torch_models); `in_kernel`: the
    downs' zero padding and the ups' crop inside the convolutions (the same weights and outputs, faster)."""
    inputs = _input(image_size, in_channels)
    x = _conv(ngf, 7)(ReflectionPadding2D(3)(inputs))
    x = layers.ReLU()(_norm(x, norm, affine))
    ch = ngf
    for _ in range(2):
        ch *= 2
        if in_kernel:
            x = PaddedConv2D(ch, 3, strides=2, kernel_initializer=_normal(), bias_initializer="zeros")(x)
        else:
            x = _conv(ch, 3, strides=2)(layers.ZeroPadding2D(1)(x))
        x = layers.ReLU()(_norm(x, norm, affine))
    for _ in range(n_blocks):
        x = resnet_block(x, norm, affine)
    for _ in range(2):
        ch //= 2
        if in_kernel:
            x = CroppedConv2DTranspose(ch, 3, kernel_initializer=_normal(), bias_initializer="zeros")(x)
        else:   # PyTorch's padding=1, output_padding=1
            x = layers.Cropping2D(((1, 0), (1, 0)))(_conv_t(ch, 3)(x))
        x = layers.ReLU()(_norm(x, norm, affine))
    x = _conv(out_channels, 7)(ReflectionPadding2D(3)(x))
    return keras.Model(inputs, layers.Activation("tanh")(x), name="resnet_generator")


def build_unet_generator(image_size: int | None = None, in_channels: int = 3,
                         out_channels: int = 3, ngf: int = 64, n_downs: int = 8,
                         norm: str = "instance", affine: bool = False, dropout: float = 0.5,
                         leaky_slope: float = 0.3, innermost_norm: bool = False) -> keras.Model:
    """The tutorial's U-Net (pix2pix.unet_generator, instance norm); see torch_models.UnetGenerator."""
    downs, ups = unet_filters(ngf, n_downs)
    inputs = _input(image_size, in_channels)
    x, skips = inputs, []
    for i, f in enumerate(downs):
        x = _conv(f, 4, strides=2, padding="same", use_bias=False)(x)
        if 0 < i < n_downs - 1 or (i and innermost_norm):
            x = _norm(x, norm, affine)
        x = layers.LeakyReLU(leaky_slope)(x)
        skips.append(x)
    n_dropout = max(0, n_downs - 5)
    for i, (f, skip) in enumerate(zip(ups, reversed(skips[:-1]))):
        x = _norm(_conv_t(f, 4, padding="same", use_bias=False)(x), norm, affine)
        if i < n_dropout and dropout:
            x = layers.Dropout(dropout)(x)
        x = layers.Concatenate()([layers.ReLU()(x), skip])
    outputs = _conv_t(out_channels, 4, padding="same", activation="tanh")(x)
    return keras.Model(inputs, outputs, name="unet_generator")


def build_patch_discriminator(image_size: int | None = None, in_channels: int = 3, ndf: int = 64,
                              n_layers: int = 3, norm: str = "instance", affine: bool = False,
                              leaky_slope: float = 0.2) -> keras.Model:
    """The 70x70 PatchGAN (as torch_models.PatchDiscriminator): 256² -> 30x30 logits."""
    inputs = _input(image_size, in_channels)
    x = _conv(ndf, 4, strides=2)(layers.ZeroPadding2D(1)(inputs))
    x = layers.LeakyReLU(leaky_slope)(x)
    for i in range(1, n_layers + 1):
        f = ndf * min(2 ** i, 8)
        x = _conv(f, 4, strides=2 if i < n_layers else 1)(layers.ZeroPadding2D(1)(x))
        x = layers.LeakyReLU(leaky_slope)(_norm(x, norm, affine))
    x = _conv(1, 4)(layers.ZeroPadding2D(1)(x))
    return keras.Model(inputs, x, name="patch_discriminator")


# Losses: the formulas of gencourse.reference.cyclegan, on tensors.

def _adversarial(d_out, target: float, gan_mode: str):
    d = ops.convert_to_tensor(d_out, "float32")
    if gan_mode == "lsgan":
        return ops.mean(ops.square(d - target))
    if gan_mode == "bce":   # stable sigmoid cross-entropy on logits
        return ops.mean(ops.maximum(d, 0.0) - d * target + ops.log1p(ops.exp(-ops.abs(d))))
    raise ValueError(f"gan_mode must be 'lsgan' or 'bce', got {gan_mode!r}")


def generator_adversarial_loss(d_fake, gan_mode: str = "lsgan"):
    """Make D call the fakes real: mean (D(G(x)) - 1)^2, or BCE(1, D(G(x))) on logits."""
    return _adversarial(d_fake, 1.0, gan_mode)


def discriminator_loss(d_real, d_fake, gan_mode: str = "lsgan"):
    """1/2 [loss(D(y), 1) + loss(D(G(x)), 0)]."""
    return 0.5 * (_adversarial(d_real, 1.0, gan_mode) + _adversarial(d_fake, 0.0, gan_mode))


def cycle_consistency_loss(real, reconstructed, lambda_cycle: float = LAMBDA_CYCLE):
    """lambda * mean |F(G(x)) - x|, one direction."""
    return lambda_cycle * ops.mean(ops.abs(ops.convert_to_tensor(real, "float32") - reconstructed))


def identity_loss(real, same, lambda_identity: float = LAMBDA_IDENTITY):
    """lambda_identity * mean |G(y) - y| (its own weight; the paper's 0.5 * lambda = 5)."""
    return lambda_identity * ops.mean(
        ops.abs(ops.convert_to_tensor(real, "float32") - same))


def semantic_consistency_loss(logits, labels, weight: float = 1.0):
    """weight * mean cross-entropy of a frozen classifier's logits [N, 10] on translated images against
    the labels of the images they came from (CyCADA's L_sem, Hoffman et al. 2018)."""
    logits = ops.convert_to_tensor(logits, "float32")
    return weight * ops.mean(ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"), logits, from_logits=True))
