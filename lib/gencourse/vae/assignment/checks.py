"""The VAE assignment's visible checks, in both tracks.

Each check builds seeded inputs (`Case`s), the worker runs the probes of
`tf_probes` / `torch_probes` on them, and the judges compare what came back in
the grader's process: with `gencourse.reference` (elbo_checks, latent_checks),
with the grader's own networks (network_checks), with the grader's own SGD
steps and a CVAE it evaluates on held-out digits (step_checks). The hidden
checks (autograder/hidden/vae.py) use the same functions on inputs these never show.
"""

from __future__ import annotations

import numpy as np

from ...grading import Case, Check, make_check
from .elbo_checks import (  # noqa: F401  (the hidden checks take them from here)
    gradient_case, image_shape, judge_kl, judge_kl_grad, judge_reconstruction, judge_reconstruction_grad,
    judge_sampling_gradients, judge_sampling_stats, judge_saturated, kl_case, reconstruction_case, sampling_case,
)
from .iwae_checks import iwae_case, judge_iwae, judge_iwae_finite  # noqa: F401
from .latent_checks import (  # noqa: F401
    condition_case, grid_case, judge_condition, judge_grid, judge_manifold, judge_ranges, manifold_case, ranges_case,
)
from .network_checks import judge_net, judge_shapes, net_case, shapes_case  # noqa: F401
from .step_checks import (  # noqa: F401
    TrainingSetup, judge_generation, judge_step, judge_training, step_case, training_case,
)


def with_weights(case: Case, seed: int) -> Case:
    """`case` and one weight per example, for the gradient of sum(weights * loss)."""
    n = len(next(iter(case.inputs.values())))
    w = np.random.default_rng(seed).uniform(0.5, 1.5, n).astype(np.float32)
    return Case(case.label, {**case.inputs, "weights": w})


VISIBLE_TRAINING = TrainingSetup()
VISIBLE_CVAE = TrainingSetup(conditional=True, epochs=1)


def visible_checks(track: str) -> list[Check]:
    return [
        make_check("Sampling: z = z_mean + exp(0.5 * z_log_var) * eps with eps ~ N(0, 1)", "sampling", 3,
                   "sampling",
                   [sampling_case(11, 4000, [-1.2, 0.7]), sampling_case(12, 3000, [1.0, -0.4, -2.0])],
                   judge_sampling_stats),
        make_check("Sampling: gradients reach z_mean and z_log_var (reparameterization trick)", "sampling", 2,
                   "sampling_grad", [gradient_case(13), gradient_case(14, 32, 3)], judge_sampling_gradients),
        make_check("Encoder: three outputs of shape [batch, latent_dim] and the report's 69,076 parameters",
                   "encoder", 2, "encoder_shapes",
                   lambda: [shapes_case(track, "encoder", 51, 5, 2), shapes_case(track, "encoder", 52, 3, 3)],
                   judge_shapes(track, "encoder")),
        make_check("Encoder: with the trusted weights loaded, every layer computes what the report's does",
                   "encoder", 3, "encoder_net", lambda: [net_case(track, "encoder", 53)], judge_net(track, "encoder")),
        make_check("Decoder: images of 28 x 28 probabilities and the report's 65,089 parameters", "decoder", 2,
                   "decoder_shapes",
                   lambda: [shapes_case(track, "decoder", 61, 5, 2), shapes_case(track, "decoder", 62, 3, 3)],
                   judge_shapes(track, "decoder")),
        make_check("Decoder: with the trusted weights loaded, every layer computes what the report's does",
                   "decoder", 3, "decoder_net", lambda: [net_case(track, "decoder", 63)], judge_net(track, "decoder")),
        make_check("Reconstruction: binary cross-entropy summed over the 784 pixels, one value per example",
                   "reconstruction", 3, "reconstruction",
                   [reconstruction_case(track, 71, 8), reconstruction_case(track, 72, 5, binary=False)],
                   judge_reconstruction),
        make_check("Reconstruction: finite where the decoder gives exactly 0 or 1", "reconstruction", 1,
                   "reconstruction", [reconstruction_case(track, 73, 4, saturated=True)], judge_saturated),
        make_check("Reconstruction: its gradient with respect to x_prob", "reconstruction", 1,
                   "reconstruction_grad", [with_weights(reconstruction_case(track, 74, 6), 75)],
                   judge_reconstruction_grad),
        make_check("KL divergence: one value per example, equal to the closed form", "kl", 3, "kl",
                   [kl_case(23, 8, 5), kl_case(21, 16, 2), kl_case(22, 33, 3)], judge_kl),
        make_check("KL divergence: its gradients with respect to z_mean and z_log_var", "kl", 1, "kl_grad",
                   [with_weights(kl_case(24, 12, 3), 25)], judge_kl_grad),
        make_check("IWAE bound: log of the mean importance weight p(x|z) p(z) / q(z|x) over the K codes, "
                   "one value per example", "iwae", 2, "iwae",
                   [iwae_case(201, 50, 6, 2), iwae_case(202, 7, 9, 3, log_px=(-12.0, -1.0))], judge_iwae),
        make_check("IWAE bound: finite for log p(x|z) of hundreds of nats, as for real digits", "iwae", 1, "iwae",
                   [iwae_case(203, 50, 5, 2, log_px=(-700.0, -150.0))], judge_iwae_finite),
        make_check("Training step: two SGD steps from fixed weights follow the mean negative ELBO's gradient "
                   "(and with beta = 4 the KL's weight), and return its metrics", "train_step", 4, "one_step",
                   lambda: [step_case(track, 81), step_case(track, 82, beta=4.0)],
                   judge_step(track)),
        make_check("Latent ranges: per digit and dimension, (min, max)", "latent_ranges", 1, "latent_ranges",
                   [ranges_case(31, 500, 2), ranges_case(32, 300, 3)], judge_ranges),
        make_check("Latent ranges: percentiles (percentile=p gives the p-th and (100 - p)-th)", "latent_ranges", 1,
                   "latent_ranges", [ranges_case(33, 800, 2, percentile=1), ranges_case(34, 400, 2, percentile=5)],
                   judge_ranges),
        make_check("Latent ranges: a digit without codes gets NaN", "latent_ranges", 1, "latent_ranges",
                   [ranges_case(35, 300, 2, absent=4)], judge_ranges),
        make_check("Manifold: the grid of codes (the report's range, and the normal quantiles)", "manifold", 2,
                   "latent_grid", [grid_case(91, 10, "linear"), grid_case(92, 10, "normal")], judge_grid),
        make_check("Manifold: the decoded grid as one image, row by row", "manifold", 2, "manifold",
                   lambda: [manifold_case(track, 93, 10)], judge_manifold(track)),
        make_check("CVAE conditioning: features followed by the one-hot digit, in the features' dtype",
                   "condition", 2, "condition", [condition_case(41, 6, 16), condition_case(42, 12, 3)],
                   judge_condition),
        make_check("Training: a VAE with your Sampling, losses and step, its held-out reconstruction and KL each "
                   "within the solution's band", "training", 3, "train", lambda: [training_case(VISIBLE_TRAINING)],
                   judge_training(track, VISIBLE_TRAINING), slow=True),
        make_check("Training: a CVAE with your condition draws the digit it is asked for", "training", 2,
                   "train_cvae", lambda: [training_case(VISIBLE_CVAE)], judge_generation(track, VISIBLE_CVAE),
                   slow=True),
    ]
