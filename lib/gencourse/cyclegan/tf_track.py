"""CycleGAN's training in Keras 3 on TensorFlow, under a tf.distribute strategy.

The iteration of torch_track, in two compiled steps with the history pool
between them: the generators' step (G = A->B, F = B->A; only their variables
get gradients, so the discriminators stay frozen) returns the fakes, the pool
(numpy, shared with the PyTorch track) swaps some for older ones, and the
discriminators' step trains D_B and D_A on them. Each replica takes its share
of the batch; losses are divided by the replica count, so the summed gradients
are those of the global batch. `parts` as in torch_track, with tf_models'
signatures ("PatchDiscriminator" is called as f(in_channels=, ndf=, n_layers=)).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ..devices import tf_strategy  # noqa: E402
from . import tf_models as km  # noqa: E402
from .common import CycleGANConfig, ImagePool, generator_terms  # noqa: E402

NETS = ("G", "F", "D_A", "D_B")


class HistoryPool:
    """The history pool on TF tensors NHWC (the notebook's training step, between its two compiled steps):
    `query(fakes)` gives back each fake or, once the pool is full and with probability 1/2, an older one."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.pool = ImagePool(size, seed)

    def query(self, fakes):
        return tf.constant(self.pool.query(np.asarray(fakes)))


class TFCycleGAN:
    """The CycleGAN of `config` in Keras, on `tf_strategy(device)`."""

    is_main = True   # tf.distribute runs one process that sees all replicas

    def __init__(self, config: CycleGANConfig, device: str = "auto", parts: dict | None = None,
                 jit: bool | None = None):
        self.config, self.parts = config, dict(parts or {})
        self.strategy = tf_strategy(device)
        self.jit = self._default_jit(device) if jit is None else jit
        keras.utils.set_random_seed(config.seed)
        c = config.channels
        make_d = self.parts.get("PatchDiscriminator", km.build_patch_discriminator)
        with self.strategy.scope():
            if config.generator == "resnet":
                self.G, self.F = (km.build_resnet_generator(None, c, c, config.ngf, config.blocks, in_kernel=True)
                                  for _ in range(2))
            else:
                n_downs = int(np.log2(config.image_size))
                self.G, self.F = (km.build_unet_generator(None, c, c, config.ngf, n_downs)
                                  for _ in range(2))
            self.D_A = make_d(in_channels=c, ndf=config.ndf, n_layers=config.d_layers)
            self.D_B = make_d(in_channels=c, ndf=config.ndf, n_layers=config.d_layers)
            self.opt_g = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
            self.opt_d = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
            self.g_vars = self.G.trainable_variables + self.F.trainable_variables
            self.d_vars = self.D_A.trainable_variables + self.D_B.trainable_variables
            self.opt_g.build(self.g_vars)
            self.opt_d.build(self.d_vars)
        self.nets = dict(zip(NETS, (self.G, self.F, self.D_A, self.D_B)))
        self.pool_a = ImagePool(config.pool_size, seed=config.seed * 2)
        self.pool_b = ImagePool(config.pool_size, seed=config.seed * 2 + 1)
        self.classifiers = {}
        self._g_step = tf.function(
            lambda a, b, la, lb: self.strategy.run(self._generator_step, (a, b, la, lb)), jit_compile=self.jit)
        self._d_step = tf.function(
            lambda a, b, fa, fb: self.strategy.run(self._discriminator_step, (a, b, fa, fb)),
            jit_compile=self.jit)

    def _default_jit(self, device: str) -> bool:
        """XLA for the steps? Not across replicas (strategy.run under XLA is not supported there), and not
        on the CPU: in one process on an idle 2-core machine (docs/results.md, issue 26) the XLA step ran
        at 0.91x of plain Keras's speed at the digits size against 0.96-0.97x for plain tf.function, and
        at 0.78x of tf.function's at 128²; without it the start saves XLA's compile (20-25 s).
        Accelerators keep XLA (not measured here)."""
        if self.strategy.num_replicas_in_sync != 1:
            return False
        return device != "cpu" and bool(tf.config.list_physical_devices("GPU"))

    def _part(self, name):
        return self.parts.get(name, getattr(km, name))

    def set_classifiers(self, a, b) -> None:
        """The frozen digit classifiers of domains A and B that the semantic loss reads."""
        self.classifiers = {"A": a, "B": b}

    def classify(self, net, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """A classifier's logits for images NHWC in [-1, 1]."""
        return np.concatenate([np.asarray(net(x[i:i + batch], training=False)) for i in range(0, len(x), batch)])

    def _generator_step(self, real_a, real_b, labels_a, labels_b):
        cfg, n = self.config, self.strategy.num_replicas_in_sync
        with tf.GradientTape() as tape:
            fake_b = self.G(real_a, training=True)
            rec_a = self.F(fake_b, training=True)
            fake_a = self.F(real_b, training=True)
            rec_b = self.G(fake_a, training=True)
            losses = generator_terms(self._part, self.D_B(fake_b, training=True), self.D_A(fake_a, training=True),
                                     real_a, rec_a, real_b, rec_b, gan_mode=cfg.gan_mode,
                                     lambda_cycle=cfg.lambda_cycle, lambda_identity=cfg.lambda_identity,
                                     same_a=lambda: self.F(real_a, training=True),
                                     same_b=lambda: self.G(real_b, training=True),
                                     semantic_weight=cfg.semantic_weight,
                                     semantic_a=lambda: (self.classifiers["B"](fake_b, training=False), labels_a),
                                     semantic_b=lambda: (self.classifiers["A"](fake_a, training=False), labels_b))
            total = tf.add_n([tf.cast(v, tf.float32) for v in losses.values()]) / n
        self.opt_g.apply_gradients(zip(tape.gradient(total, self.g_vars), self.g_vars))
        return fake_a, fake_b, losses

    def _discriminator_step(self, real_a, real_b, old_a, old_b):
        cfg, n = self.config, self.strategy.num_replicas_in_sync
        d_loss = self._part("discriminator_loss")
        with tf.GradientTape() as tape:
            losses = {"D_B": d_loss(self.D_B(real_b, training=True), self.D_B(old_b, training=True),
                                    cfg.gan_mode),
                      "D_A": d_loss(self.D_A(real_a, training=True), self.D_A(old_a, training=True),
                                    cfg.gan_mode)}
            total = (tf.cast(losses["D_A"], tf.float32) + tf.cast(losses["D_B"], tf.float32)) / n
        self.opt_d.apply_gradients(zip(tape.gradient(total, self.d_vars), self.d_vars))
        return losses

    def _split(self, *arrays):
        """Each replica's share of the batch (the batch must divide by the replica count)."""
        n = self.strategy.num_replicas_in_sync
        if n == 1:
            return tuple(tf.constant(x) for x in arrays)
        return tuple(self.strategy.experimental_distribute_values_from_function(
            lambda ctx, x=x: tf.constant(x[ctx.replica_id_in_sync_group::n])) for x in arrays)

    def _gather(self, value) -> np.ndarray:
        return np.concatenate([np.asarray(v) for v in self.strategy.experimental_local_results(value)])

    def _mean(self, value) -> float:
        return float(np.mean([float(v) for v in self.strategy.experimental_local_results(value)]))

    def set_lr_factor(self, factor: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            opt.learning_rate.assign(self.config.learning_rate * factor)

    def train_step(self, a: np.ndarray, b: np.ndarray, labels_a=None, labels_b=None) -> dict[str, float]:
        """One iteration on batches a (domain A) and b (domain B), NHWC in [-1, 1]; the labels of both
        batches feed the semantic loss (config.semantic_weight > 0)."""
        if self.config.semantic_weight and (labels_a is None or labels_b is None or not self.classifiers):
            raise ValueError("semantic_weight > 0 needs set_classifiers() and the labels of both batches")
        none = np.zeros(len(a), np.int64)
        real_a, real_b, la, lb = self._split(a, b, *(np.asarray(v if v is not None else none, np.int64)
                                                     for v in (labels_a, labels_b)))
        fake_a, fake_b, losses = self._g_step(real_a, real_b, la, lb)
        old_a = self.pool_a.query(self._gather(fake_a))
        old_b = self.pool_b.query(self._gather(fake_b))
        losses.update(self._d_step(real_a, real_b, *self._split(old_a, old_b)))
        return {k: self._mean(v) for k, v in losses.items()}

    def translate(self, x: np.ndarray, direction: str = "AB", batch: int = 64) -> np.ndarray:
        """G(x) for "AB", F(x) for "BA" (inference mode), numpy NHWC in and out."""
        net = {"AB": self.G, "BA": self.F}[direction]
        return np.concatenate([np.asarray(net(x[i:i + batch], training=False))
                               for i in range(0, len(x), batch)])

    def param_counts(self) -> dict[str, int]:
        return {k: int(m.count_params()) for k, m in self.nets.items()}

    def weight_tensors(self, net: str) -> list:
        """The variables of network `net` ("G", "F", "D_A", "D_B") in Keras' order."""
        return list(self.nets[net].weights)

    def save(self, folder) -> None:
        """Weights, optimizer slots and the history pools."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for k, m in self.nets.items():
            m.save_weights(folder / f"{k}.weights.h5")
        pools = {f"{p}_{k}": v for p, pool in (("pool_a", self.pool_a), ("pool_b", self.pool_b))
                 for k, v in pool.state().items() if k == "images"}
        np.savez(folder / "optimizers.npz",
                 **{f"g{i}": np.asarray(v) for i, v in enumerate(self.opt_g.variables)},
                 **{f"d{i}": np.asarray(v) for i, v in enumerate(self.opt_d.variables)}, **pools)
        (folder / "pool_rng.json").write_text(json.dumps(
            [self.pool_a.rng.bit_generator.state, self.pool_b.rng.bit_generator.state]))

    def load(self, folder) -> None:
        folder = Path(folder)
        for k, m in self.nets.items():
            m.load_weights(folder / f"{k}.weights.h5")
        with np.load(folder / "optimizers.npz") as z:
            for prefix, opt in (("g", self.opt_g), ("d", self.opt_d)):
                for i, v in enumerate(opt.variables):
                    v.assign(z[f"{prefix}{i}"])
            pools = {p: z[f"{p}_images"] for p in ("pool_a", "pool_b")}
        rng = json.loads((folder / "pool_rng.json").read_text())
        self.pool_a.load_state({"images": pools["pool_a"], "rng": rng[0]})
        self.pool_b.load_state({"images": pools["pool_b"], "rng": rng[1]})
