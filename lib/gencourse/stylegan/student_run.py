"""The notebook's training run: the student's `training_step` trains their `Generator` on the embedded digits.

`train` plays the trainer's loop (run.fit) around a step it does not own: the package's discriminator and Adam
optimizers with `gencourse train stylegan`'s defaults (run.py), and every random draw (the batch, both phases'
latents, crossover and noise) made here from one numpy generator seeded by `seed`, so that a run repeats. Only
the step and the generator are the student's. It stops with a message naming the step where a loss first
turns non-finite, instead of training on NaN for minutes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..progress import tqdm
from . import common, run, sampling

RESOLUTION = 32


@dataclass(frozen=True)
class Budget:
    """The run's length and settings: `gencourse train stylegan`'s defaults but for the number of steps and Gs's
    ramp-up. A run of a third of the shipped one's 3,000 steps ends with 7 % of G's random initial weights still in
    Gs at a fixed half-life of 10,000 images (0.9978 ** 1200); StyleGAN2-ADA's ramp-up (its training_loop.py
    ema_rampup = 0.05: a half-life of min(10,000, 0.05 x images seen)) lets Gs follow. Measured (torch, the solution
    notebook's step, 1,000 samples): after 800 steps Gs scored 39 without it and 22 with it, G 23."""

    steps: int = 1000
    batch_size: int = 32
    learning_rate: float = run.DEFAULTS["learning_rate"]
    d_learning_rate: float = run.CONFIG_DEFAULTS["d_learning_rate"]
    gamma: float = run.DEFAULTS["r1_gamma"]
    r1_every: int = run.CONFIG_DEFAULTS["r1_interval"]
    ema_kimg: float = common.EMA_KIMG
    ema_rampup: float = 0.05
    mixing_prob: float = common.MIXING_PROB
    seed: int = 0

    def ema_beta(self, step: int) -> float:
        """Gs's weight at `step` (from 1): common.ema_beta, with StyleGAN2-ADA's ramp-up when `ema_rampup` > 0."""
        return common.ema_beta(self.batch_size, self.ema_kimg, self.ema_rampup, (step - 1) * self.batch_size)


@dataclass
class Run:
    """What `train` leaves: the step's logs (each with its `step`), the discriminator, the seconds trained."""

    history: list[dict] = field(default_factory=list)
    discriminator: object = None
    seconds: float = 0.0


class StepFailed(RuntimeError):
    """The student's step returned a non-finite loss or something other than the dict of floats it promises."""


def draw(rng: np.random.Generator, n: int, z_dim: int, n_layers: int, mixing_prob: float,
         resolution: int = RESOLUTION) -> tuple:
    """(z1, z2, crossover, noise [n, r, r, 1] per layer) of one phase, numpy: a crossover layer in 1 .. n_layers - 1
    with probability `mixing_prob`, else n_layers (no mixing)."""
    z1, z2 = rng.standard_normal((n, z_dim)).astype(np.float32), rng.standard_normal((n, z_dim)).astype(np.float32)
    crossover = int(rng.integers(1, n_layers)) if rng.random() < mixing_prob else n_layers
    return z1, z2, crossover, common.sample_noise(rng, resolution, n)


def model_images(x_uint8: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
    """Digits [n, 28, 28] uint8 -> [n, res, res] in [-1, 1]: padded to 32x32, then averaged over blocks below it."""
    x = sampling.to_model_images(x_uint8, RESOLUTION)
    f = RESOLUTION // resolution
    if f * resolution != RESOLUTION:
        raise ValueError(f"resolution must divide {RESOLUTION}, got {resolution}")
    return x.reshape(len(x), resolution, f, resolution, f).mean(axis=(2, 4)) if f > 1 else x


def _torch(G, Gs, budget: Budget, z_dim: int, D, graphs: bool):
    import torch

    from . import torch_models as tm

    cfg = run.make_config()
    D = D if D is not None else tm.build_discriminator(cfg)
    with torch.no_grad():
        for e, p in zip(Gs.parameters(), G.parameters()):
            e.copy_(p)
    Gs.requires_grad_(False)
    adam = dict(betas=(cfg.beta_1, cfg.beta_2), eps=1e-8)
    opts = (torch.optim.Adam(G.parameters(), lr=budget.learning_rate, **adam),
            torch.optim.Adam(D.parameters(), lr=budget.d_learning_rate, **adam))
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))
    return D, opts, (lambda x: nchw(x[..., None])), (lambda d: (*map(torch.from_numpy, d[:2]), d[2],
                                                                 [nchw(n) for n in d[3]]))


def _graph_adam():
    """Keras's Adam whose update runs as one TF graph once it is built: the same arithmetic on the same
    variables (the same losses to the last digit after 150 steps), without eager Keras's Python per variable."""
    import keras
    import tensorflow as tf

    class GraphAdam(keras.optimizers.Adam):
        _graph_vars = None

        def apply(self, grads, trainable_variables=None):
            grads = list(grads)
            variables = None if trainable_variables is None else list(trainable_variables)
            if not self.built or variables is None or any(g is None for g in grads):
                return super().apply(grads, variables)
            if self._graph_vars is None:
                self._graph_vars = variables
                self._graph = tf.function(lambda gs: super(GraphAdam, self).apply(gs, self._graph_vars))
            if len(variables) != len(self._graph_vars) or any(a is not b for a, b in zip(variables, self._graph_vars)):
                return super().apply(grads, variables)
            return self._graph(grads)

    return GraphAdam


def _tf(G, Gs, budget: Budget, z_dim: int, D, graphs: bool):
    import keras
    import tensorflow as tf

    from . import tf_models as km

    cfg = run.make_config()
    D = D if D is not None else km.build_discriminator(cfg)
    for net in (G, Gs):         # a Keras layer makes its weights on its first call
        net(np.zeros((1, z_dim), np.float32))
    for e, p in zip(Gs.trainable_variables, G.trainable_variables):
        e.assign(p)
    adam = _graph_adam() if graphs else keras.optimizers.Adam
    opts = tuple(adam(learning_rate=lr, beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=1e-8)
                 for lr in (budget.learning_rate, budget.d_learning_rate))
    to = tf.convert_to_tensor
    return D, opts, (lambda x: to(x[..., None])), (lambda d: (to(d[0]), to(d[1]), d[2], [to(n) for n in d[3]]))


def train(track: str, training_step, G, Gs, x_train: np.ndarray, budget: Budget = Budget(), *,
          z_dim: int = 64, n_layers: int | None = None, progress: bool = True, on_step=None,
          discriminator=None, resolution: int = RESOLUTION, graphs: bool = True) -> Run:
    """`budget.steps` calls of `training_step(G, D, Gs, g_opt, d_opt, reals, d_draw, g_draw, step, gamma,
    r1_every, ema_beta)` on batches of `x_train` ([n, 28, 28] uint8 digits, padded to 32x32 in [-1, 1], or
    averaged down to `resolution`); Gs starts as a copy of G; D is `discriminator`, by default the package's at
    the trainer's size; `z_dim`, `n_layers`: the generator's latent size and styled layers; `on_step(step)` is
    called after each step (snapshots; its time is not counted); `graphs` (tf): the Adam updates run as TF
    graphs, the student's G, D's forwards and the step eagerly, 0.46 s of CPU a step against 0.57 at the
    notebook's size (False: all eager; D's forwards as a graph took 0.41 s, but TF's graph optimizer then logs a
    failed rewrite of D's convolutions into the student's output). Raises StepFailed naming the first step whose
    losses are not finite floats."""
    setup = {"torch": _torch, "tf": _tf}.get(track)
    if setup is None:
        raise ValueError(f"track must be 'tf' or 'torch', got {track!r}")
    n_layers = n_layers or common.num_layers(resolution)
    x = model_images(x_train, resolution)
    D, (g_opt, d_opt), images, tensors = setup(G, Gs, budget, z_dim, discriminator, graphs)
    rng, out = np.random.default_rng(budget.seed), Run(discriminator=D)
    start = time.perf_counter()
    with tqdm(total=budget.steps, desc="your StyleGAN", unit="step", disable=not progress) as bar:
        for step in range(1, budget.steps + 1):
            reals = images(x[rng.choice(len(x), budget.batch_size, replace=False)])
            d_draw, g_draw = (tensors(draw(rng, budget.batch_size, z_dim, n_layers, budget.mixing_prob, resolution))
                              for _ in range(2))
            logs = training_step(G, D, Gs, g_opt, d_opt, reals, d_draw, g_draw, step, gamma=budget.gamma,
                                 r1_every=budget.r1_every, ema_beta=budget.ema_beta(step))
            out.history.append({"step": step, **_checked(logs, step)})
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(d=f"{logs['d_loss']:.2f}", g=f"{logs['g_loss']:.2f}")
            if on_step is not None:
                paused = time.perf_counter()
                on_step(step)
                start += time.perf_counter() - paused
    out.seconds = time.perf_counter() - start
    return out


def _checked(logs, step: int) -> dict:
    keys = ("d_loss", "g_loss", "r1")
    if not isinstance(logs, dict):
        raise StepFailed(f"step {step}: training_step returned {type(logs).__name__}, not a dict of d_loss, g_loss, r1")
    missing = [k for k in keys if k not in logs]
    if missing:
        raise StepFailed(f"step {step}: training_step's dict has no {', '.join(missing)} (it returns d_loss, g_loss, r1)")
    values = {}
    for k in keys:
        try:
            values[k] = float(logs[k])
        except (TypeError, ValueError):
            raise StepFailed(f"step {step}: training_step's {k} is {logs[k]!r}, not a number") from None
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise StepFailed(f"step {step}: training_step returned {', '.join(f'{k} = {values[k]}' for k in bad)}; "
                         f"the run stops here (look at the losses of the steps before it)")
    return values


def sampler(track: str, generator, z_dim: int = 64, samples_for_w_avg: int = 10_000, seed: int = 0):
    """A sampler (sampling.generate, editing) of a student's trained generator, with its `w_avg` (where it has one)
    set to the mean mapped latent (the trainer's running mean does the same), so that truncation works on it."""
    cfg = run.make_config()
    z = sampling.latents(np.random.default_rng(seed), samples_for_w_avg, z_dim)
    if track == "torch":
        import torch

        from .torch_track import TorchSampler

        s = TorchSampler(cfg, generator)
        if isinstance(getattr(generator, "w_avg", None), torch.Tensor):
            generator.w_avg.copy_(torch.from_numpy(s.mapping(z).mean(0)))
        return s
    from .tf_track import KerasSampler

    s = KerasSampler(cfg, generator)
    if hasattr(getattr(generator, "w_avg", None), "assign"):
        generator.w_avg.assign(s.mapping(z).mean(0))
    return s
