"""The short-training check (grader side): does the student's `training_step` train a StyleGAN?

The two-step check (step_checks) pins the step's arithmetic on fixed draws; this one asks what an instructor
asks of a training step: run it and look at the samples. The worker trains the package's small 16x16 G and D
(SHORT, seeded) with the student's step for `steps` steps of student_run's loop (the notebook's, with Adam and
lazy R1), the package's losses standing in for the student's (so that the step is judged alone), and sends back
G's and Gs's weights. The grader loads them into its own copies of the package's networks, draws digits for its
own latents and noise, and scores them with the Fréchet distance of the other StyleGAN checks (shipped_scorer,
the 16x16 images upsampled to the scorer's 32x32). Gs passes under the pass mark; G's score tells a step that
trains G but whose Gs does not follow from one that does not train G.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...grading import Case, Mistake, ok_reply, unflatten
from ...weights import assign
from .. import common
from .step_checks import framework

# The package's networks at the check's size: 32 feature maps at 4x4 and 8x8, 16 at 16x16, z and w of 32.
SHORT = dict(resolution=16, z_dim=32, mapping_layers=2, fmap_base=256, fmap_max=32)
N_SAMPLES = 500
N_DIGITS = 2000        # training digits the worker gets (of the embedded set's 4,000)


@dataclass(frozen=True)
class ShortTraining:
    """One setting of the check and its calibration (the solution's step over seeds, in the docstring's table)."""

    seed: int
    steps: int
    threshold: float
    solution: str           # the solution's scores, for the message
    untrained: str
    learning_rate: float = 2e-3
    d_learning_rate: float = 2e-3
    r1_every: int = 4
    batch_size: int = 32


def case(setup: ShortTraining) -> Case:
    from .checks import embedded_digits

    digits = embedded_digits().x_train[:N_DIGITS]
    inputs = {"seed": np.array(setup.seed), "steps": np.array(setup.steps), "digits": digits,
              "learning_rate": np.array(setup.learning_rate), "d_learning_rate": np.array(setup.d_learning_rate),
              "r1_every": np.array(setup.r1_every), "batch_size": np.array(setup.batch_size)}
    return Case(f"{setup.steps} steps of your training_step on the package's 16x16 G and D (seed {setup.seed}, "
                f"batch {setup.batch_size}, Adam {setup.learning_rate:g} / {setup.d_learning_rate:g}, R1 every "
                f"{setup.r1_every} steps)", inputs)


def _draws(seed: int) -> tuple:
    rng = np.random.default_rng([seed, 7])
    z = rng.standard_normal((N_SAMPLES, SHORT["z_dim"])).astype(np.float32)
    return z, common.sample_noise(rng, SHORT["resolution"], N_SAMPLES)


def upsampled(images: np.ndarray) -> np.ndarray:
    """[n, 16, 16] -> [n, 32, 32] by repeating each pixel: the scorer's size."""
    f = 32 // images.shape[1]
    return np.repeat(np.repeat(images, f, axis=1), f, axis=2)


def scores(track: str, arrays: dict, seed: int) -> dict:
    """The Fréchet distance of what G and Gs draw with the weights that came back (a Mistake if they do not fit)."""
    from .checks import shipped_scorer

    fw = framework(track)
    net = fw.short_generator(SHORT)
    shapes = [tuple(t.shape) for t in fw.tensors(net)]
    z, noise = _draws(seed)
    out = {}
    for name in ("Gs", "G"):
        assign(fw.tensors(net), unflatten(arrays.get(name, np.zeros(0)), shapes, f"{name}'s weights"))
        images = fw.sample(net, z, noise)
        if not np.all(np.isfinite(images)):
            raise Mistake(f"after your steps {name} draws NaN or infinite pixels (its weights are not finite)")
        out[name] = shipped_scorer().score(upsampled(images))
    return out


def judge_short(track: str, setup: ShortTraining):
    def judge_one(inputs, replies, key):
        fd = scores(track, ok_reply(replies, key).arrays, setup.seed)
        seen = (f"after {setup.steps} steps of your training_step Gs draws digits at a Fréchet distance of "
                f"{fd['Gs']:.0f} and G at {fd['G']:.0f} (pass mark {setup.threshold:.0f} for Gs; the solution's step: "
                f"{setup.solution}; an untrained generator: {setup.untrained})")
        if fd["Gs"] <= setup.threshold:
            return seen
        if fd["G"] <= setup.threshold:
            raise Mistake(f"{seen}: G learns but Gs does not follow it. Gs is the moving average of G's weights, "
                          "Gs <- ema_beta * Gs + (1 - ema_beta) * G after G's update")
        raise Mistake(f"{seen}: G itself does not learn to draw digits in your step (look at D's and G's updates: "
                      "which loss each minimizes, for which weights)")
    return judge_one


# Calibrated with the probe and the judge above (2026-12-07; the solution's step, and the same loop with a step that
# changes no weight, over the seeds 0-9; Gs's Fréchet distance of 500 digits; real digits score 2.4 on this scorer
# at 32x32):
#
#   track  steps  CPU s   solution's step, seeds 0-9   untrained Gs, seeds 0-9   at the check's seed 1
#   torch  100    6-10    41-78                        184-1117                  41 / 639
#   tf     120    28-37   42-94                        215-1692                  48 / 654
#
# The pass mark 150 sits at 1.6x (tf) and 1.9x (torch) the solution's worst seed and at a quarter of the untrained
# generator's score at the check's seed. A step whose Gs never moves (G trained) scored 654 / 639 at seed 1; without
# R1 the step still trains at this length (torch 48-72 over seeds 0-2): the two-step check is the one that sees it.
SETTINGS = {
    "torch": ShortTraining(seed=1, steps=100, threshold=150, solution="41-78 over ten seeds",
                           untrained="184-1117 over ten seeds, 639 at this one"),
    "tf": ShortTraining(seed=1, steps=120, threshold=150, solution="42-94 over ten seeds",
                        untrained="215-1692 over ten seeds, 654 at this one"),
}
