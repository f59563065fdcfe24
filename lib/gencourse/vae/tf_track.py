"""The VAE's trainer in Keras 3 on TensorFlow.

`TFVAE` is the `Trainer` of `common`; it takes a student's networks, sampling layer,
conditioning and model class (`model_class`, whose `train_step` is the student's),
and measures held-out losses with the trusted formulas (`tf_models`) whatever it trains.
"""

from __future__ import annotations

from pathlib import Path

from . import tf_models as km  # noqa: I001  (first: it sets KERAS_BACKEND before keras loads)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..devices import tf_strategy  # noqa: E402
from .common import VAEConfig  # noqa: E402

class TFVAE:
    """The `Trainer` of `gencourse.vae.common` in Keras, on `tf_strategy(device)`.

    `encoder`, `decoder` (built models), `sampling`, `conditioning` and `model_class` (a
    keras.Model taking (encoder, decoder), whose train_step trains) replace the package's own.
    """

    name = "tf"
    NETS = ("encoder", "decoder")
    is_main = True   # tf.distribute runs one process that sees all replicas

    def __init__(self, config: VAEConfig, device: str = "auto", *, encoder=None, decoder=None,
                 sampling=None, conditioning=None, model_class=None):
        self.config = config
        self.strategy = tf_strategy(device)
        keras.utils.set_random_seed(config.seed)
        n_classes = config.n_classes if config.conditional else 0
        with self.strategy.scope():
            self.encoder = encoder or km.build_encoder(config.latent_dim, n_classes,
                                                    sampling or km.Sampling(seed=config.seed), conditioning)
            self.decoder = decoder or km.build_decoder(config.latent_dim, n_classes, conditioning)
            self.model = (model_class or km.VAE)(self.encoder, self.decoder)
            self.model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        self._losses = tf.function(lambda data: km.per_example_losses(self.encoder, self.decoder, data),
                                   reduce_retracing=True)

    def _inputs(self, first, y):
        """The model's inputs: `first` alone, or (first, digits) for the CVAE."""
        if not self.config.conditional:
            return first
        return first, np.asarray(y, np.int32)

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
        """Per-image means of the trusted reconstruction and KL on (x, y), one z per image."""
        sums, n = np.zeros(2), 0
        for data in self._batches(self._images(x, y), batch_size):
            recon, kl = self._losses(data)
            sums += [float(keras.ops.sum(recon)), float(keras.ops.sum(kl))]
            n += int(recon.shape[0])
        recon, kl = (float(v) for v in sums / max(n, 1))
        return {"loss": recon + kl, "recon": recon, "kl": kl}

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
        return km.weight_tensors(getattr(self, net))

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
