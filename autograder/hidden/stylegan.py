"""Hidden checks of the StyleGAN assignment (both tracks): inputs the visible checks never show.

Loaded by path by the grader (`checks(assignment)`) and by the hidden tests of
the nbgrader source notebooks (`gencourse.grading.run_hidden`); never
shipped to students, never on the worker's file system.
"""

from __future__ import annotations

from gencourse.stylegan.assignment import checks as sc


def checks(assignment) -> list:
    hidden = dict(visible=False)
    noise = [sc.noise_case(141, (3, 4, 9, 5)), sc.noise_case(142, (1, 16, 16, 2))]
    return [
        sc.make_check("AdaIN (hidden): a batch of one, non-square maps, one channel, another eps", "adain", 2,
                      "adain", [sc.adain_case(111, (1, 5, 7, 4), 12), sc.adain_case(112, (5, 2, 4, 1), 3, eps=1e-5),
                                sc.adain_case(113, (3, 3, 5, 4), 6, eps=1e-2, flat_channels=True)],
                      sc.judge_adain, prefix="hidden/adain", **hidden),
        sc.make_check("NoiseInjection (hidden): other shapes and channel counts", "noise", 1, "noise_given",
                      [sc.given_inputs(c) for c in noise], sc.judge_noise_given, prefix="hidden/noise", **hidden),
        sc.make_check("Style mixing (hidden): crossover 0 (all w2), at the last layer (all w1) and 1", "mixing", 1,
                      "mix", [sc.mixing_case(151, 2, 8, 3, 0), sc.mixing_case(152, 4, 10, 2, 10),
                              sc.mixing_case(153, 1, 12, 6, 1)],
                      sc.judge_mixing, prefix="hidden/mixing", **hidden),
        sc.make_check("Truncation (hidden): psi 0 (all w_avg), psi above 1, a cutoff of 1", "truncation", 1,
                      "trunc", [sc.truncation_case(161, 2, 8, 5, 0.0, 8), sc.truncation_case(162, 3, 6, 4, 1.5, 2),
                                sc.truncation_case(163, 1, 10, 3, 0.3, 1)],
                      sc.judge_truncation, prefix="hidden/truncation", **hidden),
        *gan_checks(assignment),
        *generator_checks(assignment),
        *editing_checks(),
    ]


def editing_checks() -> list:
    """Hidden checks of the editing part: a quantile under one sample, too few samples of the digit."""
    from gencourse.stylegan.assignment import editing_checks as ec

    hidden = dict(visible=False)
    return [
        sc.make_check("find_direction (hidden): 7 codes, quantile 0.1 (one sample a side), quantile 0.5", "editing",
                      1, "direction", [ec.direction_case(241, 7, 3, 0.1), ec.direction_case(242, 40, 9, 0.5)],
                      ec.judge_direction, prefix="hidden/direction", **hidden),
        sc.make_check("class_direction (hidden): three samples of the digit (None), target 0", "editing", 1,
                      "class_direction", [ec.class_case(251, 60, 4, 7, few=True), ec.class_case(252, 80, 5, 0)],
                      ec.judge_class_direction, prefix="hidden/class_direction", **hidden),
    ]


def generator_checks(assignment) -> list:
    """Hidden checks of the whole generator: a batch of one, mixing at the first layer, no truncation cutoff."""
    from gencourse.stylegan.assignment import generator_checks as gc

    hidden, track = dict(visible=False), assignment.track.replace("fast", "")
    return [
        sc.make_check("Generator (hidden): a batch of one, other latents and noise", "generator", 1,
                      "generator_net", lambda: [gc.network_case(track, 131, 1)], gc.judge_network_of(track),
                      prefix="hidden/generator", **hidden),
        sc.make_check("Generator (hidden): crossover 1, psi 0.3 on every layer", "generator", 1, "generator_styles",
                      lambda: [gc.styles_case(132, 2, 1, 0.3, None)], gc.judge_styles_of(track),
                      prefix="hidden/generator_styles", **hidden),
    ]


def gan_checks(assignment) -> list:
    """Hidden checks of the equalized layer, the mapping network, the losses and the Fréchet distance."""
    from gencourse.stylegan.assignment import gan_checks as g
    from gencourse.stylegan.assignment import step_checks as stc

    hidden, track = dict(visible=False), assignment.track.replace("fast", "")
    return [
        sc.make_check("Equalized dense (hidden): one input feature, lr_mul 0.1, gain 1", "equalized", 1, "equalized",
                      [g.equalized_case(171, 2, 1, 3, 0.1, gain=1.0), g.equalized_case(172, 7, 20, 1, 0.5)],
                      g.judge_equalized_forward, prefix="hidden/equalized", **hidden),
        sc.make_check("MappingNetwork (hidden): one layer, w_dim narrower than z_dim", "mapping", 1, "mapping",
                      lambda: [g.mapping_inputs(track, g.mapping_case(181, 3, 9, 5, 1)),
                               g.mapping_inputs(track, g.mapping_case(182, 1, 4, 4, 2, scale=0.01))],
                      g.judge_mapping(track), prefix="hidden/mapping", **hidden),
        sc.make_check("Losses and R1 (hidden): a batch of one, gamma 0.5, non-square images", "losses", 1, "r1",
                      [g.r1_case(191, 1, (3, 6), 0.5), g.r1_case(192, 8, (2, 2), 4.0)], g.judge_r1,
                      prefix="hidden/r1", **hidden),
        sc.make_check("training_step (hidden): other weights and draws, r1_every 3, gamma 5, ema_beta 0.9", "step", 1,
                      "step", [stc.step_case(231, r1_every=3, gamma=5.0, ema_beta=0.9, lr=0.03, crossovers=(1, 3, 3, 1))],
                      stc.judge_step(track), prefix="hidden/step", **hidden),
        short_training_check(track),
        sc.make_check("frechet_distance (hidden): dimension 1, covariances of rank 1", "frechet", 1, "frechet",
                      [g.frechet_case(201, 1), g.frechet_case(202, 7, rank=1)], g.judge_frechet,
                      prefix="hidden/frechet", **hidden),
    ]


def short_training_check(track: str):
    """The student's step trains the package's small StyleGAN; Gs's digits judged on their Fréchet distance."""
    from gencourse.stylegan.assignment import training_checks as tc

    setup = tc.SETTINGS[track]
    return sc.make_check(f"training_step (hidden): {setup.steps} steps train the package's 16x16 StyleGAN (Gs's "
                         "Fréchet distance)", "step", 1, "short_training", lambda: [tc.case(setup)],
                         tc.judge_short(track, setup), visible=False, slow=True, prefix="hidden/short_training")
