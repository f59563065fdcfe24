"""The CycleGAN assignment's visible checks, in both tracks.

The probes (`tf_probes` / `torch_probes`) run the student's parts in the worker on seeded inputs; the judges
(`loss_checks`, `network_checks`, `step_checks`) compare what came back with gencourse.reference.cyclegan and
the package's own networks in the grader's process. Hidden checks (autograder/hidden/cyclegan.py) reuse these
builders on other inputs.
"""

from __future__ import annotations

from ...grading import Check, Mistake, make_check  # noqa: F401 (re-exported for the hidden checks)
from ..common import PATCHGAN_PARAMS, RESNET6_PARAMS, RESNET9_PARAMS
from .loss_checks import (adversarial_case, cycle_case, identity_case, judge_adversarial, judge_cycle,  # noqa: F401
                          judge_identity, judge_semantic, semantic_case)
from .network_checks import (field_case, generator_params_case, generator_shapes_case, judge_field,  # noqa: F401
                             judge_generator_params, judge_generator_shapes, judge_logits, judge_maps,
                             judge_network_of, judge_params, logits_case, maps_case, network_case, network_inputs,
                             params_case, patchgan_param_count, resnet_param_count)
from .step_checks import (TrainingSetup, judge_step, judge_training, step_case, training_case)  # noqa: F401

TRAINING_PART = "training"
VISIBLE_TRAINING = TrainingSetup()


def generator_network_case(track: str, seed: int, shape, **config):
    return lambda: [network_inputs(track, "generator", network_case("ResnetGenerator", seed, shape, **config))]


def discriminator_network_case(track: str, seed: int, shape, **config):
    return lambda: [network_inputs(track, "discriminator", network_case("PatchGAN", seed, shape, **config))]


def visible_checks(track: str) -> list[Check]:
    return [
        make_check("ResNet generator: an image of the input's size, in (-1, 1), float32", "generator", 1,
                   "g_shapes", [generator_shapes_case(41, [(2, 28, 28), (1, 32, 32)]),
                                generator_shapes_case(42, [(2, 16, 16)], 3, 3, 4, 2)], judge_generator_shapes(track)),
        make_check(f"ResNet generator: {RESNET6_PARAMS:,} parameters with 6 blocks, {RESNET9_PARAMS:,} with 9",
                   "generator", 2, "g_params", [generator_params_case(n_blocks=6), generator_params_case(n_blocks=9)],
                   judge_generator_params),
        make_check("ResNet generator: with the reference's weights, every layer computes what the reference's does",
                   "generator", 4, "g_network",
                   generator_network_case(track, 43, (2, 20, 20, 3), in_channels=3, out_channels=3, ngf=4, n_blocks=2),
                   judge_network_of(track, "generator")),
        make_check("PatchGAN: map sizes (256 -> 30x30, 128 -> 14x14, 64 -> 6x6; n_layers=2)", "discriminator", 2,
                   "d_maps", [maps_case(31, [256, 128, 64]), maps_case(32, [64, 28], n_layers=2, in_channels=1)],
                   judge_maps(track)),
        make_check("PatchGAN: each output unit sees a 70x70 patch (gradient of one unit)", "discriminator", 2,
                   "d_receptive_field", [field_case(33, 96, 5)], judge_field),
        make_check(f"PatchGAN: {PATCHGAN_PARAMS:,} parameters in the reference layout", "discriminator", 1,
                   "d_params", [params_case()], judge_params),
        make_check("PatchGAN: raw scores (logits), no sigmoid at the end", "discriminator", 1,
                   "d_logits", [logits_case(34)], judge_logits),
        make_check("PatchGAN: with the reference's weights, every layer computes what the reference's does",
                   "discriminator", 2, "d_network",
                   discriminator_network_case(track, 35, (2, 48, 48, 3), in_channels=3, ndf=8, n_layers=3),
                   judge_network_of(track, "discriminator")),
        make_check("Adversarial losses, LSGAN: mean (D(G(x)) - 1)^2 and 1/2 [mean (D(y) - 1)^2 + mean D(G(x))^2]",
                   "adversarial", 2, "adversarial",
                   [adversarial_case(51, (2, 6, 6, 1), "lsgan"), adversarial_case(52, (3, 4, 5, 1), "lsgan", 0.7)],
                   judge_adversarial),
        make_check("Adversarial losses, BCE on logits (G's target 1; D's 1 and 0, halved)", "adversarial", 2,
                   "adversarial", [adversarial_case(53, (2, 6, 6, 1), "bce"), adversarial_case(54, (3, 4, 5, 1), "bce", 4.0)],
                   judge_adversarial),
        make_check("Cycle-consistency loss: lambda * (mean |F(G(a)) - a| + mean |G(F(b)) - b|)", "cycle_loss", 4,
                   "cycle", [cycle_case(11, (4, 16, 16, 3), 10.0), cycle_case(12, (2, 8, 8, 1), 2.5, 0.6, 0.2)],
                   judge_cycle),
        make_check("Identity loss: lambda_identity * mean |G(y) - y| (a weight of its own)", "identity_loss", 2,
                   "identity", [identity_case(21, (3, 12, 12, 3)), identity_case(22, (2, 8, 8, 1), 1.0)],
                   judge_identity),
        make_check("Training step: two iterations from fixed weights, every parameter as the reference's",
                   "training_step", 4, "step",
                   lambda: [step_case(61, "lsgan", 10.0, 5.0), step_case(62, "bce", 10.0, 0.0, semantic_weight=2.0)],
                   judge_step(track)),
        make_check("Semantic-consistency loss: weight * mean cross-entropy of the logits against the labels",
                   "semantic_loss", 2, "semantic",
                   [semantic_case(71, 8, 10, 1.0), semantic_case(72, 5, 4, 2.5, spread=1.0)], judge_semantic),
        make_check("Training with your parts lowers the held-out cycle error (digits task)", TRAINING_PART, 3,
                   "train", lambda: [training_case(VISIBLE_TRAINING)], judge_training(track, VISIBLE_TRAINING),
                   slow=True),
    ]
