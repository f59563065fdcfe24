"""The StyleGAN assignment: its parts, its checks (`checks`) and the probes each track's worker runs.

Parts (nbgrader grade_ids) and what judges them:

- `equalized`, `mapping`, `losses`, `frechet`: see `gan_checks` (the equalized
  learning rate and its gradient, the mapping network by `grading.networks`
  against a numpy oracle with its weights loaded, the non-saturating and
  logistic losses, R1 and its gradient for D's weights, the Fréchet distance);
- `adain`: AdaptiveInstanceNorm(channels, w_dim, eps) with the grader's affine
  map A loaded into its given `style`: (1 + y_s) * instance_norm(x) + y_b
  against `reference.adaptive_instance_norm`, the gradient reaching w, and the
  epsilon on channels of zero and tiny variance;
- `noise`: NoiseInjection(channels): one learned scale per channel starting at
  zero, x + scale * noise for a given noise image, and drawn noise that is one
  N(0, 1) image per example, the same for every channel, fresh on every call;
- `mixing`: mix_styles(w1, w2, crossover) against `reference.mix_styles` (mixing_checks);
- `truncation`: truncate(ws, w_avg, psi, cutoff) against `reference.truncate` (mixing_checks);
- `generator`: the student's whole Generator (their equalized convolution, constant, styled layers,
  synthesis, mapping, mixing and truncation) with the shipped weights loaded in run order: every
  layer against the package's, mixing and truncation inside it, the Fréchet distance of its digits
  (generator_checks);
- `step`: training_step, two steps from fixed weights and draws on the package's small networks with plain
  gradient descent, G, D and Gs compared weight by weight with the trusted step replayed in the grader, the known
  wrong steps (R1 on every step or unweighted, no mixing, the moving average inverted...) named (step_checks);
  a hidden short training of the package's 16x16 StyleGAN with the step, Gs's digits scored in the grader
  (training_checks);
- `editing`: find_direction and class_direction, directions in W from labelled codes, against
  gencourse.stylegan.editing (editing_checks);
- `training` (the test cell after the parts): the shipped generator
  (stylegan/pretrained) with the student's AdaIN and noise in every layer draws
  digits in the worker; the grader scores them (Fréchet distance, its own
  classifier) and, on a failure, names the layer from drawings with each alone.
"""

from __future__ import annotations

from ...grading.contract import Assignment, per_track

TRACKS = ("tf", "torch")
PARTS = ["equalized", "mapping", "adain", "noise", "mixing", "truncation", "generator", "losses", "step", "frechet",
         "editing"]


def assignments() -> list[Assignment]:
    from .checks import visible_checks

    return per_track(__name__, "stylegan", TRACKS, PARTS, visible_checks, cpu_seconds=240, memory_mb=6144,
                     solution_modules=("gencourse.stylegan.{track}_models", "gencourse.reference.stylegan",
                                       "gencourse.metrics.frechet", "gencourse.stylegan.editing"))
