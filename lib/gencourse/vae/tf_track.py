"""The VAE and conditional VAE in Keras 3 on TensorFlow: the graded parts and the trusted loop.

Names follow the report and the Keras VAE example (F. Chollet, keras.io/examples/
generative/vae), whose formulas are those of Kingma & Welling (2014): `Sampling`
(the reparameterization trick), `kl_divergence`, `reconstruction_loss`,
`build_encoder`, `build_decoder` and the `VAE` model with its own train step.
The KL function and the sampling layer are parameters, so that the grader can
train a student's parts in this loop. `TFVAE` is the `Trainer` of `common`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from ..devices import tf_strategy  # noqa: E402
from ..reference.vae import EPS  # noqa: E402
from .common import VAEConfig  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"gencourse.vae.tf_track needs Keras on TensorFlow; Keras was already "
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


def build_encoder(latent_dim: int = 2, n_classes: int = 0, sampling=None) -> keras.Model:
    """Image [B,28,28,1] (and one-hot digit [B,n_classes] if n_classes) -> [z_mean, z_log_var, z]."""
    image = keras.Input(shape=(28, 28, 1), name="image")
    inputs = [image]
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(image)
    h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Flatten()(h)
    if n_classes:
        label = keras.Input(shape=(n_classes,), name="label")
        inputs.append(label)
        h = layers.Concatenate()([h, label])
    h = layers.Dense(16, activation="relu")(h)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z = (sampling or Sampling())([z_mean, z_log_var])
    return keras.Model(inputs if n_classes else image, [z_mean, z_log_var, z], name="encoder")


def build_decoder(latent_dim: int = 2, n_classes: int = 0) -> keras.Model:
    """z [B,latent_dim] (and one-hot digit if n_classes) -> pixel probabilities [B,28,28,1]."""
    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    if n_classes:
        label = keras.Input(shape=(n_classes,), name="label")
        h = layers.Concatenate()([z, label])
    h = layers.Dense(7 * 7 * 64, activation="relu")(h)
    h = layers.Reshape((7, 7, 64))(h)
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    x_prob = layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h)
    return keras.Model([z, label] if n_classes else z, x_prob, name="decoder")


class VAE(keras.Model):
    """Encoder + decoder trained on the negative ELBO (reconstruction + KL, per image).

    A batch is an image tensor, or (image, one-hot digit) for a conditional encoder.
    The metrics `loss`, `recon` and `kl` are per-image means over everything seen
    since the last reset (an epoch in `fit`, the data set in `evaluate`).
    """

    def __init__(self, encoder, decoder, kl_fn: Callable = kl_divergence, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.kl_fn = encoder, decoder, kl_fn
        self.conditional = len(encoder.inputs) == 2
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_tracker = keras.metrics.Mean(name="recon")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        # Encoder and decoder are built functional models. Marked built, fit() skips its
        # symbolic build, which would call the CVAE with the images alone: Keras reads an
        # (image, one-hot) batch as (x, y).
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.recon_tracker, self.kl_tracker]

    def call(self, data):
        _, _, z = self.encoder(data)
        return self.decoder([z, data[1]] if self.conditional else z)

    def per_example_losses(self, data):
        """(reconstruction, KL), each of shape [B], with z sampled by the encoder."""
        z_mean, z_log_var, z = self.encoder(data)
        x, latent = (data[0], [z, data[1]]) if self.conditional else (data, z)
        return reconstruction_loss(x, self.decoder(latent)), self.kl_fn(z_mean, z_log_var)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            recon, kl = self.per_example_losses(data)
            # Gradients are summed over replicas, so each one takes its share of the mean.
            loss = ops.mean(recon + kl) / tf.distribute.get_strategy().num_replicas_in_sync
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._track(recon, kl)

    def test_step(self, data):
        return self._track(*self.per_example_losses(data))

    def _track(self, recon, kl):
        self.loss_tracker.update_state(recon + kl)
        self.recon_tracker.update_state(recon)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}


class TFVAE:
    """The `Trainer` of `gencourse.vae.common` in Keras, on `tf_strategy(device)`."""

    name = "tf"
    NETS = ("encoder", "decoder")
    is_main = True   # tf.distribute runs one process that sees all replicas

    def __init__(self, config: VAEConfig, device: str = "auto", sampling=None, kl_fn=None):
        self.config = config
        self.strategy = tf_strategy(device)
        keras.utils.set_random_seed(config.seed)
        n_classes = config.n_classes if config.conditional else 0
        with self.strategy.scope():
            self.encoder = build_encoder(config.latent_dim, n_classes,
                                         sampling or Sampling(seed=config.seed))
            self.decoder = build_decoder(config.latent_dim, n_classes)
            self.model = VAE(self.encoder, self.decoder, kl_fn or kl_divergence)
            self.model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))

    def _inputs(self, first, y):
        """The model's inputs: `first` alone, or (first, one-hot digit) for the CVAE."""
        if not self.config.conditional:
            return first
        return first, np.eye(self.config.n_classes, dtype=np.float32)[np.asarray(y)]

    def _images(self, x, y):
        return self._inputs(np.asarray(x, np.float32).reshape(-1, 28, 28, 1), y)

    @staticmethod
    def _batches(data, batch_size):
        """A tf.data pipeline, which a distribution strategy splits across its replicas."""
        return tf.data.Dataset.from_tensor_slices(data).batch(batch_size).prefetch(2)

    def train_epoch(self, x, y, batch_size, seed, on_batch=None) -> dict:
        order = np.random.default_rng(seed).permutation(len(x))
        callbacks = []
        if on_batch is not None:
            callbacks.append(keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: on_batch(
                min(batch_size, len(x) - b * batch_size))))
        data = self._images(x[order], None if y is None else y[order])
        history = self.model.fit(self._batches(data, batch_size), epochs=1, shuffle=False,
                                 verbose=0, callbacks=callbacks)
        return {k: float(v[-1]) for k, v in history.history.items()}

    def evaluate(self, x, y, batch_size=500) -> dict:
        logs = self.model.evaluate(self._batches(self._images(x, y), batch_size), verbose=0,
                                   return_dict=True)
        return {k: float(v) for k, v in logs.items()}

    # predict() reads a pair as (inputs, targets), so the inputs travel as a 1-tuple.
    def encode(self, x, y):
        z_mean, z_log_var, _ = self.encoder.predict(self._batches((self._images(x, y),), 500), verbose=0)
        return z_mean, z_log_var

    def decode(self, z, y):
        data = (self._inputs(np.asarray(z, np.float32), y),)
        return self.decoder.predict(self._batches(data, 500), verbose=0)[..., 0]

    def param_counts(self) -> dict:
        return {"encoder": self.encoder.count_params(), "decoder": self.decoder.count_params()}

    def weight_tensors(self, net: str) -> list:
        """The trainable variables of `net` in layer order, the sampling layer's own left out."""
        model = getattr(self, net)
        return [v for layer in model.layers if type(layer).__name__ != "Sampling"
                for v in layer.trainable_weights]

    def _state(self):
        """Weights, random-seed states and optimizer slots, in a fixed order."""
        optimizer = self.model.optimizer
        if not optimizer.built:
            with self.strategy.scope():
                optimizer.build(self.model.trainable_variables)
        return self.model.variables + optimizer.variables

    def save(self, directory) -> None:
        """Everything a resumed run needs, as plain arrays (no pickle)."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        np.savez(Path(directory) / "keras_state.npz", *[v.numpy() for v in self._state()])

    def load(self, directory) -> None:
        with np.load(Path(directory) / "keras_state.npz", allow_pickle=False) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        state = self._state()
        shapes = [tuple(v.shape) for v in state]
        if [a.shape for a in values] != shapes:
            raise ValueError(f"{directory}: the saved model does not match this configuration "
                             f"({self.config}); saved shapes {[a.shape for a in values]}, expected {shapes}")
        for variable, value in zip(state, values):
            variable.assign(value)
