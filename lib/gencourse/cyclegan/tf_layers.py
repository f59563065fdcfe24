"""CycleGAN's given Keras layers and the digit classifier, apart from the graded networks and losses.

Keras has no instance norm and no reflection padding: `InstanceNormalization`
and `ReflectionPadding2D` are written here (the tutorial's instance norm is the
same formula, always affine; here affine is optional and off by default). The
notebook's locked cells import this module, never `tf_models`, which holds the
package's answers to the assignment (docs/design.md, "Integrity").
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

INIT_STD = 0.02


def _normal():
    return keras.initializers.RandomNormal(0.0, INIT_STD)


@keras.saving.register_keras_serializable("gencourse")
class InstanceNormalization(layers.Layer):
    """(x - mean) / sqrt(var + eps) per example and channel over H, W (NHWC), biased variance.

    Ulyanov et al. 2016; torch.nn.InstanceNorm2d's formula. With `affine`, a
    per-channel scale (init N(1, 0.02), as the tutorial's) and offset (init 0).
    A batch of one image (the reference's batch 1) takes TF's fused batch-norm kernel,
    the same formula: its forward and backward at 128² took 1.6-2.3 times less CPU time
    (docs/results.md, issue 26's third pass); outputs within 1e-5 of the moments'.
    """

    def __init__(self, epsilon: float = 1e-5, affine: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon, self.affine = epsilon, affine

    def build(self, input_shape):
        if self.affine:
            channels = input_shape[-1]
            self.scale = self.add_weight(shape=(channels,), name="scale",
                                         initializer=keras.initializers.RandomNormal(1.0, INIT_STD))
            self.offset = self.add_weight(shape=(channels,), name="offset", initializer="zeros")

    def call(self, x):
        if x.shape[0] == 1:     # one image: its batch norm, on TF's fused kernel (forward and backward)
            c = x.shape[-1]
            scale, offset = (self.scale, self.offset) if self.affine else (tf.ones([c]), tf.zeros([c]))
            return tf.compat.v1.nn.fused_batch_norm(x, scale, offset, epsilon=self.epsilon, is_training=True)[0]
        mean, var = ops.moments(x, axes=[1, 2], keepdims=True)
        y = (x - mean) * ops.rsqrt(var + self.epsilon)
        return y * self.scale + self.offset if self.affine else y

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "affine": self.affine}


@keras.saving.register_keras_serializable("gencourse")
class ReflectionPadding2D(layers.Layer):
    """Mirror `padding` pixels on each side of H and W, without repeating the edge (NHWC)."""

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, x):
        p = self.padding
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = lambda n: None if n is None else n + 2 * self.padding  # noqa: E731
        return (b, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def build_digit_cnn(size: int = 28, channels: int = 1, classes: int = 10) -> keras.Model:
    """The semantic loss's classifier (as torch_layers.DigitCNN): conv 32, pool, conv 64, pool, dense 128, 10."""
    inputs = keras.Input((size, size, channels))
    x = layers.MaxPooling2D()(layers.Conv2D(32, 3, padding="same", activation="relu")(inputs))
    x = layers.MaxPooling2D()(layers.Conv2D(64, 3, padding="same", activation="relu")(x))
    x = layers.Dense(128, activation="relu")(layers.Flatten()(x))
    return keras.Model(inputs, layers.Dense(classes)(x), name="digit_cnn")


def train_digit_cnn(images, labels, epochs: int = 10, batch: int = 64, seed: int = 0) -> keras.Model:
    """A digit CNN fitted on images NHWC in [-1, 1] of one domain (Adam 1e-3), frozen."""
    import numpy as np

    keras.utils.set_random_seed(seed)
    images = np.asarray(images, np.float32)
    net = build_digit_cnn(images.shape[1], images.shape[3])
    net.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(images, np.asarray(labels, np.int64), batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    net.trainable = False
    return net
