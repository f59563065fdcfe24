"""Hidden checks of the VAE assignment (both tracks): inputs the visible checks never show.

Loaded by path by the grader (`checks(assignment)`) and by the hidden tests of
the nbgrader source notebooks (`gencourse.grading.run_hidden`);
never shipped to students, never on the worker's file system.
"""

from __future__ import annotations

from gencourse.vae.assignment import checks as vc


def checks(assignment) -> list:
    track = assignment.probes.rsplit(".", 1)[-1].split("_")[0]     # "tf" or "torch", also for a test's copy
    hidden = dict(visible=False)
    return [
        vc.make_check("Sampling (hidden): other shapes, log-variances per entry, tiny and large sigma",
                      "sampling", 1, "sampling",
                      [vc.sampling_case(101, 5000, dims=5, mu_range=5.0, log_var_range=(-3.0, 2.5)),
                       vc.sampling_case(102, 3000, [-6.0]),
                       vc.sampling_case(103, 2500, [2.5, 0.3, -0.9, 1.7])],
                      vc.judge_sampling_stats, prefix="hidden/sampling/stats", **hidden),
        vc.make_check("Sampling gradients (hidden): other shapes and scales", "sampling", 1, "sampling_grad",
                      [vc.gradient_case(104, 7, 6, scale=3.0), vc.gradient_case(105, 1, 1, scale=0.5)],
                      vc.judge_sampling_gradients, prefix="hidden/sampling/grad", **hidden),
        vc.make_check("Encoder (hidden): latent_dim=5, and the CVAE's encoder with the trusted weights",
                      "encoder", 2, "encoder_net",
                      lambda: [vc.net_case(track, "encoder", 151, 4, 5), vc.net_case(track, "encoder", 152, 5, 2, 10)],
                      vc.judge_net(track, "encoder"), prefix="hidden/encoder", **hidden),
        vc.make_check("Decoder (hidden): latent_dim=5, and the CVAE's decoder with the trusted weights",
                      "decoder", 2, "decoder_net",
                      lambda: [vc.net_case(track, "decoder", 161, 4, 5), vc.net_case(track, "decoder", 162, 5, 2, 10)],
                      vc.judge_net(track, "decoder"), prefix="hidden/decoder", **hidden),
        vc.make_check("Reconstruction (hidden): a batch of one, gray targets, another batch", "reconstruction", 1,
                      "reconstruction",
                      [vc.reconstruction_case(track, 171, 1), vc.reconstruction_case(track, 172, 3, binary=False),
                       vc.reconstruction_case(track, 173, 17)],
                      vc.judge_reconstruction, prefix="hidden/reconstruction", **hidden),
        vc.make_check("KL divergence (hidden): a batch of one, all zeros, one and seven latent dimensions, "
                      "large values", "kl", 2, "kl",
                      [vc.kl_case(113, 20, 7, mu_range=6.0, log_var_range=(-4.0, 4.0)), vc.kl_case(111, 1, 2),
                       vc.kl_case(114, 50, 1), vc.kl_case(112, 4, 3, zero=True)],
                      vc.judge_kl, prefix="hidden/kl", **hidden),
        vc.make_check("IWAE bound (hidden): one code per example (the ELBO's estimate), one latent dimension, "
                      "a batch of one, K=200 at a digit's likelihood", "iwae", 1, "iwae",
                      [vc.iwae_case(211, 1, 8, 2), vc.iwae_case(212, 30, 4, 1, log_px=(-40.0, -2.0)),
                       vc.iwae_case(213, 10, 1, 4), vc.iwae_case(214, 200, 3, 2, log_px=(-500.0, -300.0))],
                      vc.judge_iwae, prefix="hidden/iwae", **hidden),
        vc.make_check("Training step (hidden): the CVAE's step (images and digits), another batch and rate",
                      "train_step", 1, "one_step", lambda: [vc.step_case(track, 181, 8, 10, 0.02)],
                      vc.judge_step(track), prefix="hidden/step", **hidden),
        vc.make_check("Latent ranges (hidden): a digit seen once, codes below zero, wider latents, 4 classes, "
                      "a percentile with an absent digit", "latent_ranges", 1, "latent_ranges",
                      [vc.ranges_case(121, 80, 5, singleton=3), vc.ranges_case(122, 200, 2, offset=-20.0),
                       vc.ranges_case(123, 40, 1, n_classes=4), vc.ranges_case(124, 600, 3, percentile=10, absent=7)],
                      vc.judge_ranges, prefix="hidden/ranges", **hidden),
        vc.make_check("Manifold grid (hidden): other sizes and ranges", "manifold", 1, "latent_grid",
                      [vc.grid_case(191, 7, "linear", (-1.0, 0.5), (4.0, 2.0)), vc.grid_case(192, 5, "normal")],
                      vc.judge_grid, prefix="hidden/grid", **hidden),
        vc.make_check("Manifold image (hidden): another size and the normal grid", "manifold", 1, "manifold",
                      lambda: [vc.manifold_case(track, 193, 6, "normal")], vc.judge_manifold(track),
                      prefix="hidden/manifold", **hidden),
        vc.make_check("CVAE conditioning (hidden): one example, another number of classes, float64 features",
                      "condition", 1, "condition",
                      [vc.condition_case(131, 1, 5), vc.condition_case(132, 9, 7, n_classes=4),
                       vc.condition_case(133, 30, 16, float64=True)],
                      vc.judge_condition, prefix="hidden/condition", **hidden),
    ]
