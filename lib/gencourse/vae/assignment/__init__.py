"""The VAE assignment: its parts, its checks (`checks`) and the probes each track's worker runs.

Parts (nbgrader grade_ids of the student's cells) and what judges them:

- `sampling`: the statistics of z = mu + exp(log_var / 2) * eps (mean, spread
  and shape of eps, fresh noise per call and per example) and the gradients of
  z with respect to mu and log_var (the reparameterization trick);
- `kl`: `kl_divergence` against `reference.gaussian_kl` per example, and a
  short training in the trusted loop with the student's Sampling and KL,
  judged by the held-out neg-ELBO of the returned weights in the grader;
- `latent_ranges`: against `reference.latent_ranges`;
- `condition`: the CVAE's conditioning, features followed by the one-hot digit.
"""

from __future__ import annotations

from ...grading.contract import Assignment, per_track

TRACKS = ("tf", "torch")
PARTS = ["sampling", "kl", "latent_ranges", "condition"]


def assignments() -> list[Assignment]:
    from .checks import visible_checks

    return per_track(__name__, "vae", TRACKS, PARTS, visible_checks, cpu_seconds=180, memory_mb=6144)
