"""Hidden checks of the VAE assignment (both tracks): inputs the visible checks never show.

Loaded by path by the grader (`checks(assignment)`) and by the hidden tests of
the nbgrader source notebooks (`gencourse.grading.run_hidden`);
never shipped to students, never on the worker's file system.
"""

from __future__ import annotations

from gencourse.vae.assignment import checks as vc


def checks(assignment) -> list:
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
        vc.make_check("KL divergence (hidden): a batch of one, all zeros, wide latents, large values",
                      "kl", 2, "kl",
                      [vc.kl_case(111, 1, 2), vc.kl_case(113, 20, 7, mu_range=6.0, log_var_range=(-4.0, 4.0)),
                       vc.kl_case(114, 50, 1), vc.kl_case(112, 4, 3, zero=True)],
                      vc.judge_kl, prefix="hidden/kl", **hidden),
        vc.make_check("Latent ranges (hidden): a digit seen once, codes below zero, wider latents",
                      "latent_ranges", 1, "latent_ranges",
                      [vc.ranges_case(121, 80, 5, singleton=3), vc.ranges_case(122, 200, 2, offset=-20.0),
                       vc.ranges_case(123, 40, 1)],
                      vc.judge_ranges, prefix="hidden/ranges", **hidden),
        vc.make_check("CVAE conditioning (hidden): one example, another number of classes",
                      "condition", 1, "condition",
                      [vc.condition_case(131, 1, 5), vc.condition_case(132, 9, 7, n_classes=4),
                       vc.condition_case(133, 30, 16)],
                      vc.judge_condition, prefix="hidden/condition", **hidden),
    ]
