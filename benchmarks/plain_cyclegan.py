"""Plain CycleGAN iterations, written for the benchmark as a practitioner would: the yardstick.

Neither uses anything of gencourse. Both run the iteration the package's trainers run
(Zhu et al. 2017; the reference code's ResnetGenerator, NLayerDiscriminator and
optimize_parameters): G = A->B and F = B->A translate and reconstruct both batches, the
generators step on LSGAN, cycle (lambda 10) and identity (0.5 lambda) terms with the
discriminators frozen, then D_B and D_A step on real images against fakes drawn from a
history pool of 50, Adam(2e-4, beta1 0.5).

- `PlainTorch`: eager PyTorch, nn.Sequential networks, MSELoss/L1Loss, the pool on tensors.
- `PlainKeras`: Keras 3 functional models on TensorFlow, the generators' and the
  discriminators' updates each in one `tf.function` (no XLA), the pool on tensors between
  them, as the TensorFlow CycleGAN tutorial writes its step.

Both take numpy NHWC batches in [-1, 1], like the trainers' `train_step`.
"""

from __future__ import annotations

import os
import random

import numpy as np

LAMBDA = 10.0


class _Pool:
    """The reference's ImagePool: until full, store and return; then with probability 1/2 swap."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.size, self.images, self.rng = size, [], random.Random(seed)

    def query(self, images, stack):
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.random() > 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return stack(out)


class PlainTorch:
    """One CycleGAN in eager PyTorch: `train_step(a, b)`."""

    def __init__(self, channels: int, ngf: int, ndf: int, n_blocks: int, d_layers: int):
        import torch
        from torch import nn

        self.torch = torch

        def resnet_block(ch):
            body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
                                 nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

            class Residual(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.body = body

                def forward(self, x):
                    return x + self.body(x)
            return Residual()

        def generator():
            layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
            ch = ngf
            for _ in range(2):
                layers += [nn.Conv2d(ch, 2 * ch, 3, 2, 1), nn.InstanceNorm2d(2 * ch), nn.ReLU(True)]
                ch *= 2
            layers += [resnet_block(ch) for _ in range(n_blocks)]
            for _ in range(2):
                layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(ch // 2),
                           nn.ReLU(True)]
                ch //= 2
            layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, channels, 7), nn.Tanh()]
            return nn.Sequential(*layers)

        def discriminator():
            layers, ch = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)], ndf
            for i in range(1, d_layers + 1):
                out, stride = ndf * min(2 ** i, 8), 2 if i < d_layers else 1
                layers += [nn.Conv2d(ch, out, 4, stride, 1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True)]
                ch = out
            layers += [nn.Conv2d(ch, 1, 4, 1, 1)]
            return nn.Sequential(*layers)

        torch.manual_seed(0)
        self.G, self.F, self.D_A, self.D_B = generator(), generator(), discriminator(), discriminator()
        self.opt_g = torch.optim.Adam(list(self.G.parameters()) + list(self.F.parameters()), 2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(list(self.D_A.parameters()) + list(self.D_B.parameters()), 2e-4,
                                      betas=(0.5, 0.999))
        self.mse, self.l1 = nn.MSELoss(), nn.L1Loss()
        self.pool_a, self.pool_b = _Pool(seed=0), _Pool(seed=1)

    def _gan(self, pred, target: float):
        return self.mse(pred, self.torch.full_like(pred, target))

    def train_step(self, a: np.ndarray, b: np.ndarray) -> None:
        torch = self.torch
        real_a = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
        real_b = torch.from_numpy(np.ascontiguousarray(b.transpose(0, 3, 1, 2)))
        fake_b, fake_a = self.G(real_a), self.F(real_b)
        rec_a, rec_b = self.F(fake_b), self.G(fake_a)
        for d in (self.D_A, self.D_B):
            d.requires_grad_(False)
        self.opt_g.zero_grad()
        loss_g = (self._gan(self.D_B(fake_b), 1.0) + self._gan(self.D_A(fake_a), 1.0)
                  + LAMBDA * (self.l1(rec_a, real_a) + self.l1(rec_b, real_b))
                  + 0.5 * LAMBDA * (self.l1(self.F(real_a), real_a) + self.l1(self.G(real_b), real_b)))
        loss_g.backward()
        self.opt_g.step()
        for d in (self.D_A, self.D_B):
            d.requires_grad_(True)
        self.opt_d.zero_grad()
        old_b = self.pool_b.query(fake_b.detach(), torch.stack)
        old_a = self.pool_a.query(fake_a.detach(), torch.stack)
        loss_d = 0.5 * (self._gan(self.D_B(real_b), 1.0) + self._gan(self.D_B(old_b), 0.0)) \
            + 0.5 * (self._gan(self.D_A(real_a), 1.0) + self._gan(self.D_A(old_a), 0.0))
        loss_d.backward()
        self.opt_d.step()


class PlainKeras:
    """One CycleGAN in Keras 3 on TensorFlow: `train_step(a, b)`."""

    def __init__(self, channels: int, ngf: int, ndf: int, n_blocks: int, d_layers: int, size: int):
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import tensorflow as tf
        from keras import layers as L

        self.tf = tf
        keras.utils.set_random_seed(0)

        class ReflectionPad(L.Layer):
            def __init__(self, p, **kw):
                super().__init__(**kw)
                self.p = p

            def call(self, x):
                return tf.pad(x, [[0, 0], [self.p, self.p], [self.p, self.p], [0, 0]], mode="REFLECT")

        def norm():
            return L.GroupNormalization(groups=-1, epsilon=1e-5, center=False, scale=False)

        def generator():
            x = inp = keras.Input((size, size, channels))
            x = L.ReLU()(norm()(L.Conv2D(ngf, 7)(ReflectionPad(3)(x))))
            ch = ngf
            for _ in range(2):
                ch *= 2
                x = L.ReLU()(norm()(L.Conv2D(ch, 3, 2, padding="same")(x)))
            for _ in range(n_blocks):
                y = L.ReLU()(norm()(L.Conv2D(ch, 3)(ReflectionPad(1)(x))))
                x = L.Add()([x, norm()(L.Conv2D(ch, 3)(ReflectionPad(1)(y)))])
            for _ in range(2):
                ch //= 2
                x = L.ReLU()(norm()(L.Conv2DTranspose(ch, 3, 2, padding="same")(x)))
            x = L.Activation("tanh")(L.Conv2D(channels, 7)(ReflectionPad(3)(x)))
            return keras.Model(inp, x)

        def discriminator():
            x = inp = keras.Input((size, size, channels))
            x = L.LeakyReLU(0.2)(L.Conv2D(ndf, 4, 2)(L.ZeroPadding2D(1)(x)))
            for i in range(1, d_layers + 1):
                stride = 2 if i < d_layers else 1
                x = L.LeakyReLU(0.2)(norm()(L.Conv2D(ndf * min(2 ** i, 8), 4, stride)(L.ZeroPadding2D(1)(x))))
            return keras.Model(inp, L.Conv2D(1, 4)(L.ZeroPadding2D(1)(x)))

        self.G, self.F, self.D_A, self.D_B = generator(), generator(), discriminator(), discriminator()
        self.opt_g = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.opt_d = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_vars = self.G.trainable_variables + self.F.trainable_variables
        self.d_vars = self.D_A.trainable_variables + self.D_B.trainable_variables
        self.pool_a, self.pool_b = _Pool(seed=0), _Pool(seed=1)
        mse = lambda p, t: tf.reduce_mean(tf.square(p - t))  # noqa: E731
        l1 = lambda x, y: tf.reduce_mean(tf.abs(x - y))  # noqa: E731

        @tf.function
        def g_step(real_a, real_b):
            with tf.GradientTape() as tape:
                fake_b, fake_a = self.G(real_a, training=True), self.F(real_b, training=True)
                rec_a, rec_b = self.F(fake_b, training=True), self.G(fake_a, training=True)
                loss = (mse(self.D_B(fake_b, training=True), 1.0) + mse(self.D_A(fake_a, training=True), 1.0)
                        + LAMBDA * (l1(rec_a, real_a) + l1(rec_b, real_b))
                        + 0.5 * LAMBDA * (l1(self.F(real_a, training=True), real_a)
                                          + l1(self.G(real_b, training=True), real_b)))
            self.opt_g.apply_gradients(zip(tape.gradient(loss, self.g_vars), self.g_vars))
            return fake_a, fake_b

        @tf.function
        def d_step(real_a, real_b, old_a, old_b):
            with tf.GradientTape() as tape:
                loss = 0.5 * (mse(self.D_B(real_b, training=True), 1.0) + mse(self.D_B(old_b, training=True), 0.0)) \
                    + 0.5 * (mse(self.D_A(real_a, training=True), 1.0) + mse(self.D_A(old_a, training=True), 0.0))
            self.opt_d.apply_gradients(zip(tape.gradient(loss, self.d_vars), self.d_vars))

        self.g_step, self.d_step = g_step, d_step

    def train_step(self, a: np.ndarray, b: np.ndarray) -> None:
        tf = self.tf
        real_a, real_b = tf.constant(a), tf.constant(b)
        fake_a, fake_b = self.g_step(real_a, real_b)
        old_a = self.pool_a.query(tf.unstack(fake_a), tf.stack)
        old_b = self.pool_b.query(tf.unstack(fake_b), tf.stack)
        self.d_step(real_a, real_b, old_a, old_b)
