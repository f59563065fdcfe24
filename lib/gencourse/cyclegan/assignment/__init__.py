"""The CycleGAN assignment: its parts, its checks (`checks`) and the probes each track's worker runs.

Parts (nbgrader grade_ids), each judged in the grader's process (docs/design.md, "Trust model"):

- `generator`: the ResNet generator's shapes, parameter counts and, with the reference's weights
  loaded, what each layer computes (network_checks);
- `discriminator`: the PatchGAN's map sizes, receptive field, parameter count, raw scores and layers;
- `adversarial`, `cycle_loss`, `identity_loss`, `semantic_loss`: values against
  gencourse.reference.cyclegan, their gradients and dtypes (loss_checks);
- `training_step`: two iterations from fixed weights, each weight's change against the reference
  iteration's, term by term (step_checks);
- `training` (no cell of its own: a test cell after the parts): the student's losses and step on the
  package's networks; the grader loads the returned generators and measures their held-out cycle error.
"""

from __future__ import annotations

from ...grading.contract import Assignment, per_track

TRACKS = ("tf", "torch")
PARTS = ["generator", "discriminator", "adversarial", "cycle_loss", "identity_loss", "training_step", "semantic_loss"]


def assignments() -> list[Assignment]:
    from .checks import visible_checks

    return per_track(__name__, "cyclegan", TRACKS, PARTS, visible_checks, cpu_seconds=300, memory_mb=6144,
                     solution_modules=("gencourse.cyclegan.{track}_models", "gencourse.reference.cyclegan"))
