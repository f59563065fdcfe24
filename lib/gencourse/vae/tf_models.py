"""The VAE and conditional VAE in Keras 3 on TensorFlow: the parts the assignment grades.

Names follow the report and the Keras VAE example (F. Chollet, keras.io/examples/
generative/vae), whose formulas are those of Kingma & Welling (2014): `Sampling`
(the reparameterization trick), `kl_divergence`, `reconstruction_loss`,
`condition` (the CVAE's features followed by the one-hot digit), `build_encoder`,
`build_decoder` and the `VAE` model with its own `train_step`. The package's
answers to the assignment's TODOs live here, apart from the trainer (`tf_track`),
so that the notebook's locked cells never import them (docs/design.md, "Integrity").
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from ..reference.vae import EPS  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"gencourse.vae.tf_models needs Keras on TensorFlow; Keras was already "
                      f"imported with the {keras.backend.backend()!r} backend (KERAS_BACKEND)")


class Sampling(layers.Layer):
    """z = mu + exp(log_var / 2) * eps with eps ~ N(0, I): noise outside the gradient path."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


class FixedNoise(layers.Layer):
    """z = mu + exp(log_var / 2) * eps for one given eps per latent dimension: the grader's
    deterministic sampling, so that a network's or a step's outputs can be compared exactly."""

    def __init__(self, eps, **kwargs):
        super().__init__(**kwargs)
        self.eps = np.asarray(eps, np.float32)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        return z_mean + ops.exp(0.5 * z_log_var) * self.eps


def kl_divergence(z_mean, z_log_var):
    """KL(N(mu, sigma^2) || N(0, I)) per example, summed over latent dimensions: shape [B]."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def reconstruction_loss(x, x_prob):
    """Bernoulli negative log-likelihood per example, summed over pixels: shape [B].

    p and 1 - p are clipped to [1e-7, 1 - 1e-7] as in Keras' binary cross-entropy and
    the numpy oracle, so a saturated sigmoid never gives log(0). Clipping 1 - p itself
    keeps the oracle's log(1e-7) in float32, where 1 - 1e-7 rounds to 1 - 1.19e-7.
    """
    x = ops.cast(x, "float32")
    p = ops.cast(x_prob, "float32")
    log_p = ops.log(ops.clip(p, EPS, 1.0 - EPS))
    log_not_p = ops.log(ops.clip(1.0 - p, EPS, 1.0 - EPS))
    bce = -(x * log_p + (1.0 - x) * log_not_p)
    return ops.sum(ops.reshape(bce, (ops.shape(bce)[0], -1)), axis=1)


def condition(h, labels, n_classes: int = 10):
    """The CVAE's conditioning: the features, then the one-hot digit, [B, width + n_classes]."""
    return ops.concatenate([h, ops.one_hot(labels, n_classes, dtype=h.dtype)], axis=-1)


def build_encoder(latent_dim: int = 2, n_classes: int = 0, sampling=None, conditioning=None) -> keras.Model:
    """Image [B,28,28,1] (and integer digit [B] if n_classes) -> [z_mean, z_log_var, z]."""
    image = keras.Input(shape=(28, 28, 1), name="image")
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(image)
    h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Flatten()(h)
    if n_classes:
        label = keras.Input(shape=(), dtype="int32", name="label")
        h = (conditioning or condition)(h, label, n_classes)
    h = layers.Dense(16, activation="relu")(h)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z = (sampling or Sampling())([z_mean, z_log_var])
    return keras.Model([image, label] if n_classes else image, [z_mean, z_log_var, z], name="encoder")


def build_decoder(latent_dim: int = 2, n_classes: int = 0, conditioning=None) -> keras.Model:
    """z [B,latent_dim] (and integer digit [B] if n_classes) -> pixel probabilities [B,28,28,1]."""
    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    if n_classes:
        label = keras.Input(shape=(), dtype="int32", name="label")
        h = (conditioning or condition)(z, label, n_classes)
    h = layers.Dense(7 * 7 * 64, activation="relu")(h)
    h = layers.Reshape((7, 7, 64))(h)
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    x_prob = layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h)
    return keras.Model([z, label] if n_classes else z, x_prob, name="decoder")


def is_conditional(encoder) -> bool:
    return len(encoder.inputs) == 2


def per_example_losses(encoder, decoder, data):
    """(reconstruction, KL), each [B], by the trusted formulas; data = images or (images, digits)."""
    if is_conditional(encoder):
        x, y = data
        z_mean, z_log_var, z = encoder([x, y])
        x_prob = decoder([z, y])
    else:
        x = data
        z_mean, z_log_var, z = encoder(x)
        x_prob = decoder(z)
    return reconstruction_loss(x, x_prob), kl_divergence(z_mean, z_log_var)


class VAE(keras.Model):
    """Encoder + decoder trained on the negative ELBO (reconstruction + KL, per image).

    A batch is an image tensor, or (images, digits) for a conditional encoder. The
    metrics `loss`, `recon` and `kl` are per-image means over everything seen since
    the last reset (an epoch in `fit`).
    """

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_tracker = keras.metrics.Mean(name="recon")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        # Encoder and decoder are built functional models. Marked built, fit() skips its
        # symbolic build, which would call the CVAE with the images alone: Keras reads an
        # (images, digits) batch as (x, y).
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.recon_tracker, self.kl_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            recon, kl = per_example_losses(self.encoder, self.decoder, data)
            # Gradients are summed over replicas, so each one takes its share of the mean.
            loss = ops.mean(recon + kl) / tf.distribute.get_strategy().num_replicas_in_sync
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self.track(recon, kl)

    def test_step(self, data):
        return self.track(*per_example_losses(self.encoder, self.decoder, data))

    def track(self, recon, kl):
        self.loss_tracker.update_state(recon + kl)
        self.recon_tracker.update_state(recon)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}


def weight_tensors(model) -> list:
    """The trainable variables of `model` in layer order, a sampling layer's own left out."""
    return [v for layer in model.layers if not isinstance(layer, (Sampling, FixedNoise))
            for v in layer.trainable_weights]


def term_gradients(encoder, decoder, data) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the batch means of the reconstruction and of the KL, each flat over
    `weight_tensors(encoder) + weight_tensors(decoder)`: what one SGD step should follow."""
    weights = weight_tensors(encoder) + weight_tensors(decoder)
    with tf.GradientTape(persistent=True) as tape:
        recon, kl = per_example_losses(encoder, decoder, data)
        terms = ops.mean(recon), ops.mean(kl)
    flat = []
    for term in terms:
        grads = tape.gradient(term, weights)
        flat.append(np.concatenate([np.zeros(v.shape, np.float32).ravel() if g is None else
                                    np.asarray(g, np.float64).ravel() for v, g in zip(weights, grads)]))
    return flat[0], flat[1]
