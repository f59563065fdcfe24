"""The Keras/TensorFlow training loop of the small StyleGAN, the same as torch_track's.

Same draws from the numpy generator in the same order (z1, z2, crossover, noise
for D's fakes; again for G's), the same Adam (beta1 = 0, beta2 = 0.99, epsilon
1e-8, the official training_loop.py) and losses (logistic D + R1, non-saturating
G). The two steps are tf.functions of fixed batch size; the crossover enters as
a [1, layers] mask so that a new crossover layer does not retrace the graph.
`f(z2)` is computed also when no mixing is drawn (the mask then keeps w1 everywhere).
Samples come from `generator_ema`, G's moving average (the official Gs), as in torch_track.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..devices import tf_strategy  # noqa: E402
from . import augment, common, tf_models as km  # noqa: E402


def diff_augment(x, index, mask):
    """DiffAugment of NHWC images by a drawn (index, mask) (augment.draw): a gather over
    the flattened pixels times the mask, differentiable in x (torch_track.diff_augment's)."""
    shape = tf.shape(x)
    flat = tf.reshape(x, (shape[0], -1, shape[3]))
    return tf.reshape(tf.gather(flat, index, batch_dims=1) * mask[:, :, None], shape)


class KerasSampler:
    """`config`, `mapping`, `synthesize` and `w_avg` of `generator_ema` (Gs) as numpy arrays,
    what sampling.py and editing.py use (torch_track.TorchSampler's twin)."""

    def __init__(self, config: common.StyleGANConfig, generator):
        self.config, self.generator_ema = config, generator

    def mapping(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self.generator_ema.mapping(np.asarray(z, np.float32)))

    def synthesize(self, ws: np.ndarray, noise: list[np.ndarray], chunk: int = 256) -> np.ndarray:
        """Images [n, res, res] from styles [n, layers, w_dim] and noise [n, r, r, 1] per layer."""
        out = [np.asarray(self.generator_ema.synthesis(np.asarray(ws[i:i + chunk], np.float32),
                                                   [n[i:i + chunk] for n in noise]))[..., 0]
               for i in range(0, len(ws), chunk)]
        return np.concatenate(out)

    @property
    def w_avg(self) -> np.ndarray:
        return np.asarray(self.generator_ema.w_avg)


class TFStyleGAN(KerasSampler):
    """Generator, discriminator and their Adam optimizers under a tf.distribute strategy."""

    is_main = True

    def __init__(self, config: common.StyleGANConfig, device: str = "auto"):
        self.config = config
        self.strategy = tf_strategy(device)
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self.generator = km.build_generator(config)
            self.discriminator = km.build_discriminator(config)
            self.generator_ema = km.build_generator(config)
            self.generator_ema.set_weights(self.generator.get_weights())
            adam = dict(beta_1=config.beta_1, beta_2=config.beta_2, epsilon=1e-8)
            self.g_opt = keras.optimizers.Adam(learning_rate=config.learning_rate, **adam)
            self.d_opt = keras.optimizers.Adam(
                learning_rate=config.d_learning_rate or config.learning_rate, **adam)
            self.g_opt.build(self.generator.trainable_variables)
            self.d_opt.build(self.discriminator.trainable_variables)
        self._d_step = tf.function(self._d_step_eager)
        self._g_step = tf.function(self._g_step_eager)

    def _styles(self, z1, z2, mask):
        """Mixed styles [b, layers, w_dim] with the w_avg update (as sample_styles_for_training)."""
        g = self.generator
        w1 = g.mapping(z1)
        g.update_w_avg(w1)
        return tf.where(mask[:, :, None], w1[:, None, :], g.mapping(z2)[:, None, :])

    @staticmethod
    def _augment(x, aug):
        return x if aug is None else diff_augment(x, *aug)

    def _d_step_eager(self, reals, z1, z2, mask, noise, aug_real, aug_fake, r1_gamma):
        """r1_gamma: a Python float, 0 on the steps lazy R1 skips (a graph of its own)."""
        fake = tf.stop_gradient(self.generator.synthesis(self._styles(z1, z2, mask), noise))
        d = self.discriminator
        with tf.GradientTape() as tape:
            if r1_gamma:
                r1, d_real = km.r1_penalty(lambda v: d(self._augment(v, aug_real)), reals,
                                           r1_gamma, return_logits=True)
            else:
                r1, d_real = tf.zeros(()), d(self._augment(reals, aug_real))
            d_loss = km.discriminator_loss(d_real, d(self._augment(fake, aug_fake)))
            total = d_loss + r1
        grads = tape.gradient(total, d.trainable_variables)
        self.d_opt.apply_gradients(zip(grads, d.trainable_variables))
        return d_loss, r1

    def _g_step_eager(self, z1, z2, mask, noise, aug_fake, ema_beta):
        g = self.generator
        with tf.GradientTape() as tape:
            fake = g.synthesis(self._styles(z1, z2, mask), noise)
            g_loss = km.generator_loss(self.discriminator(self._augment(fake, aug_fake)))
        grads = tape.gradient(g_loss, g.trainable_variables)
        self.g_opt.apply_gradients(zip(grads, g.trainable_variables))
        for e, v in zip(self.generator_ema.trainable_variables, g.trainable_variables):
            e.assign(v + ema_beta * (e - v))
        self.generator_ema.w_avg.assign(g.w_avg)
        return g_loss

    def _draw(self, rng: np.random.Generator, b: int):
        """z1, z2, crossover mask and noise, drawn as torch_models.sample_styles_for_training."""
        c = self.config
        z1 = rng.standard_normal((b, c.z_dim)).astype(np.float32)
        z2 = rng.standard_normal((b, c.z_dim)).astype(np.float32)
        n_layers = self.generator.num_layers
        mask = common.crossover_mask(n_layers, common.sample_crossover(rng, n_layers,
                                                                       c.mixing_prob))
        return z1, z2, mask, common.sample_noise(rng, c.resolution, b)

    def _draw_augment(self, rng: np.random.Generator, b: int):
        c = self.config
        return augment.draw(rng, b, c.resolution, c.augment) if c.augment else None

    def train_step(self, reals: np.ndarray, rng: np.random.Generator, step: int = 1) -> dict:
        """torch_track.TorchStyleGAN.train_step's step: the same draws in the same order."""
        c, b = self.config, len(reals)
        x = np.asarray(reals, np.float32)[..., None]
        drawn = self._draw(rng, b)
        aug_real, aug_fake = self._draw_augment(rng, b), self._draw_augment(rng, b)
        gamma = c.r1_gamma * c.r1_interval if c.applies_r1(step) else 0.0
        d_loss, r1 = self._d_step(x, *drawn, aug_real, aug_fake, gamma)
        drawn = self._draw(rng, b)
        beta = common.ema_beta(b, c.ema_kimg, c.ema_rampup, (step - 1) * b)
        g_loss = self._g_step(*drawn, self._draw_augment(rng, b), tf.constant(beta, tf.float32))
        return {"g_loss": float(g_loss), "d_loss": float(d_loss), "r1": float(r1)}

    def param_counts(self) -> dict:
        return {"generator": km.count_params(self.generator),
                "discriminator": km.count_params(self.discriminator)}

    def _state(self) -> list:
        return (self.generator.weights + self.discriminator.weights + self.generator_ema.weights
                + self.g_opt.variables + self.d_opt.variables)

    def save(self, directory) -> None:
        """Weights, w_avg and optimizer slots as plain arrays (no pickle), in a fixed order."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        np.savez(Path(directory) / "keras_stylegan.npz", *[np.asarray(v) for v in self._state()])

    def load(self, directory) -> None:
        with np.load(Path(directory) / "keras_stylegan.npz", allow_pickle=False) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        state = self._state()
        if [a.shape for a in values] != [tuple(v.shape) for v in state]:
            raise ValueError(f"{directory}: the saved StyleGAN does not match this configuration")
        for v, a in zip(state, values):
            v.assign(a)
