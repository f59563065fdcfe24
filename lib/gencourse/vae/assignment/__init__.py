"""The VAE assignment: its parts, its checks (`checks`) and the probes each track's worker runs.

Parts (nbgrader grade_ids of the student's cells) and what judges them:

- `sampling`: the statistics of z = mu + exp(log_var / 2) * eps and its gradients
  (the reparameterization trick);
- `encoder`, `decoder`: output shapes, the report's parameter counts, and the
  trusted weights loaded into the student's network layer by layer (`grading.networks`);
- `reconstruction`, `kl`: the two terms of the negative ELBO against
  `reference.vae`, their gradients, saturated probabilities;
- `iwae`: the importance-weighted bound of given codes against `reference.iwae_bound`, finite at
  a real digit's hundreds of nats;
- `train_step`: two SGD steps from fixed weights against the grader's own;
- `latent_ranges`, `manifold`: ranges per digit (percentiles, NaN for an absent
  digit), the manifold's grid of codes and its image from a trusted decoder;
- `condition`: the CVAE's conditioning, features followed by the one-hot digit;
- `training` (a test cell, no solution cell): a CVAE trained in the trusted loop
  with the student's Sampling, losses, step and condition, judged on held-out digits.
"""

from __future__ import annotations

from ...grading.contract import Assignment, per_track

TRACKS = ("tf", "torch")
PARTS = ["sampling", "encoder", "decoder", "reconstruction", "kl", "train_step", "iwae", "latent_ranges", "manifold",
         "condition"]


def assignments() -> list[Assignment]:
    from .checks import visible_checks

    return per_track(__name__, "vae", TRACKS, PARTS, visible_checks, cpu_seconds=180, memory_mb=6144,
                     solution_modules=("gencourse.vae.{track}_models", "gencourse.reference.vae"))
