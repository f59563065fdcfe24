"""Hidden checks of the CycleGAN assignment (both tracks): inputs the visible checks never show.

Loaded by path by the grader (`checks(assignment)`) and by the hidden tests of
the nbgrader source notebooks (`gencourse.grading.run_hidden`); never
shipped to students, never on the worker's file system.
"""

from __future__ import annotations

from gencourse.cyclegan.assignment import checks as cc


def checks(assignment) -> list:
    track = assignment.probes.rsplit(".", 1)[-1].split("_")[0]     # the framework: "tf" or "torch"
    hidden = dict(visible=False)
    return [
        cc.make_check("ResNet generator (hidden): non-square images, another number of channels", "generator", 1,
                      "g_shapes", [cc.generator_shapes_case(141, [(1, 24, 36)], 2, 4, 3, 2)],
                      cc.judge_generator_shapes(track), prefix="hidden/g_shapes", **hidden),
        cc.make_check("ResNet generator (hidden): layer by layer at another width, depth and shape", "generator", 1,
                      "g_network", cc.generator_network_case(track, 142, (1, 16, 24, 1), in_channels=1,
                                                             out_channels=1, ngf=6, n_blocks=3),
                      cc.judge_network_of(track, "generator"), prefix="hidden/g_network", **hidden),
        cc.make_check("PatchGAN (hidden): map sizes 70, 200 and 32, one and four channels", "discriminator", 1,
                      "d_maps", [cc.maps_case(131, [70, 200]), cc.maps_case(132, [32], n_layers=2, in_channels=4)],
                      cc.judge_maps(track), prefix="hidden/maps", **hidden),
        cc.make_check("PatchGAN (hidden): receptive field at another unit, and with n_layers=2", "discriminator", 1,
                      "d_receptive_field", [cc.field_case(133, 112, 8), cc.field_case(134, 64, 6, n_layers=2)],
                      cc.judge_field, prefix="hidden/field", **hidden),
        cc.make_check("PatchGAN (hidden): parameter counts of other widths", "discriminator", 1, "d_params",
                      [cc.params_case(1, 16, 2), cc.params_case(4, 32, 4)],
                      cc.judge_params, prefix="hidden/params", **hidden),
        cc.make_check("PatchGAN (hidden): layer by layer with one channel and n_layers=2", "discriminator", 1,
                      "d_network", cc.discriminator_network_case(track, 135, (1, 28, 28, 1), in_channels=1, ndf=6,
                                                                 n_layers=2),
                      cc.judge_network_of(track, "discriminator"), prefix="hidden/d_network", **hidden),
        cc.make_check("Adversarial losses (hidden): scores of -200 and 200, a batch of one", "adversarial", 2,
                      "adversarial", [cc.adversarial_case(151, (1, 5, 5, 1), "bce", extreme=True),
                                      cc.adversarial_case(152, (1, 3, 7, 1), "lsgan", 3.0, extreme=True)],
                      cc.judge_adversarial, prefix="hidden/adversarial", **hidden),
        cc.make_check("Cycle-consistency loss (hidden): a batch of one, non-square images, a perfect A side",
                      "cycle_loss", 2, "cycle",
                      [cc.cycle_case(111, (1, 28, 28, 1), 7.0), cc.cycle_case(112, (3, 5, 9, 3), 10.0, 0.0, 0.5),
                       cc.cycle_case(113, (2, 6, 6, 2), 0.5, 1.2, 0.05)],
                      cc.judge_cycle, prefix="hidden/cycle", **hidden),
        cc.make_check("Identity loss (hidden): other weights and shapes", "identity_loss", 1, "identity",
                      [cc.identity_case(121, (1, 28, 28, 1), 0.3), cc.identity_case(122, (4, 7, 5, 3), 10.0)],
                      cc.judge_identity, prefix="hidden/identity", **hidden),
        cc.make_check("Training step (hidden): other weights, lambdas and semantic weight", "training_step", 2,
                      "step", lambda: [cc.step_case(161, "lsgan", 7.0, 2.1, semantic_weight=0.5)],
                      cc.judge_step(track), prefix="hidden/step", **hidden),
        cc.make_check("Semantic-consistency loss (hidden): logits of -90 and 90, another weight", "semantic_loss", 1,
                      "semantic", [cc.semantic_case(171, 6, 10, 0.3, extreme=True)],
                      cc.judge_semantic, prefix="hidden/semantic", **hidden),
    ]
