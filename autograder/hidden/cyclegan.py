"""Hidden checks of the CycleGAN assignment (both tracks): inputs the visible checks never show.

Loaded by path by the grader (`checks(assignment)`) and by the hidden tests of
the nbgrader source notebooks (`gencourse.grading.run_hidden`); never
shipped to students, never on the worker's file system.
"""

from __future__ import annotations

from gencourse.cyclegan.assignment import checks as cc


def checks(assignment) -> list:
    hidden = dict(visible=False)
    return [
        cc.make_check("Cycle-consistency loss (hidden): a batch of one, non-square images, a perfect A side",
                      "cycle_loss", 2, "cycle",
                      [cc.cycle_case(111, (1, 28, 28, 1), 7.0), cc.cycle_case(112, (3, 5, 9, 3), 10.0, 0.0, 0.5),
                       cc.cycle_case(113, (2, 6, 6, 2), 0.5, 1.2, 0.05)],
                      cc.judge_cycle, prefix="hidden/cycle", **hidden),
        cc.make_check("Identity loss (hidden): other weights and shapes", "identity_loss", 1, "identity",
                      [cc.identity_case(121, (1, 28, 28, 1), 3.0, 0.1), cc.identity_case(122, (4, 7, 5, 3), 10.0, 1.0)],
                      cc.judge_identity, prefix="hidden/identity", **hidden),
        cc.make_check("PatchGAN (hidden): map sizes 70, 200 and 32, one and four channels", "discriminator", 1,
                      "d_maps", [cc.maps_case(131, [70, 200]), cc.maps_case(132, [32], n_layers=2, in_channels=4)],
                      cc.judge_maps(assignment.track), prefix="hidden/maps", **hidden),
        cc.make_check("PatchGAN (hidden): receptive field at another unit, and with n_layers=2", "discriminator", 1,
                      "d_receptive_field", [cc.field_case(133, 112, 8), cc.field_case(134, 64, 6, n_layers=2)],
                      cc.judge_field, prefix="hidden/field", **hidden),
        cc.make_check("PatchGAN (hidden): parameter counts of other widths", "discriminator", 1, "d_params",
                      [cc.params_case(1, 16, 2), cc.params_case(4, 32, 4)],
                      cc.judge_params, prefix="hidden/params", **hidden),
    ]
