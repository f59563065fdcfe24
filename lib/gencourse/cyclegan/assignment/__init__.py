"""The CycleGAN assignment: its parts, its checks (`checks`) and the probes each track's worker runs.

Parts (nbgrader grade_ids) and what judges them:

- `cycle_loss`: cycle_consistency_loss(real_a, reconstructed_a, real_b,
  reconstructed_b, lambda_cycle) = lambda (mean |F(G(a)) - a| + mean |G(F(b)) - b|),
  its value and its gradients;
- `identity_loss`: lambda_identity * lambda_cycle * mean |same - real|;
- `discriminator`: the PatchGAN's map sizes, its receptive field (measured from
  the gradient of one output unit), its parameter count and its raw outputs;
- `training` (no cell of its own: the test cell after the parts): the three
  parts in the trusted loop on the digits task; the grader loads the returned
  generators and measures their held-out cycle error.
"""

from __future__ import annotations

from ...grading.contract import Assignment, per_track

TRACKS = ("tf", "torch")
PARTS = ["cycle_loss", "identity_loss", "discriminator"]


def assignments() -> list[Assignment]:
    from .checks import visible_checks

    return per_track(__name__, "cyclegan", TRACKS, PARTS, visible_checks, cpu_seconds=300, memory_mb=6144)
