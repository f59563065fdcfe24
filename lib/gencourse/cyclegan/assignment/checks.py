"""The CycleGAN assignment's checks (visible ones) and their judges, in both tracks.

The probes (`tf_probes` / `torch_probes`) run the student's parts in the
worker on seeded inputs; the judges here compare what came back with
`gencourse.reference.cyclegan` and `gencourse.cyclegan.common` in the
grader's process. Hidden checks (autograder/hidden/cyclegan.py) reuse these
builders on other inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...grading import Case, Check, Mistake, close, first_match, get, make_check, ok_reply, show, unflatten
from ...reference import cyclegan as ref
from ...weights import assign
from ..common import PATCHGAN_PARAMS, patch_map_size, patchgan_layers, receptive_field

TRAINING_PART = "training"


def _scalar_loss(replies, key) -> float:
    got = get(replies, key, "loss")
    if got.size != 1:
        raise Mistake(f"the loss should be one number (a scalar tensor); got shape {list(got.shape)}: "
                      "take the mean over every pixel and example")
    return float(got.reshape(()))


def _match(got: float, variants) -> None:
    """Mistake with the hint of the first known wrong answer a loss value equals."""
    first_match(got, variants, rtol=1e-4, atol=1e-6)


def _check_gradient(replies, key, grads: dict, what: str):
    """`grads`: {input name: (name of its gradient in the reply, expected gradient)}."""
    missing = get(replies, key, "missing", (len(grads),))
    for flag, (name, (grad_name, exp)) in zip(missing, grads.items()):
        if flag:
            raise Mistake(f"the value is right but no gradient reaches {name}: the loss is computed outside "
                          f"the framework's graph (numpy, .numpy(), .detach()?), so it could never train {what}")
        grad = get(replies, key, grad_name, exp.shape)
        if not close(grad, exp, rtol=1e-3, atol=1e-6):
            raise Mistake(f"the value is right but its gradient for {name} is not: got {show(grad)}, "
                          f"expected {show(exp)}")


# --------------------------------------------------------------------- cycle consistency

def cycle_case(seed: int, shape, lambda_cycle: float, error_a: float = 0.3, error_b: float = 0.8) -> Case:
    """Images in [-1, 1] and reconstructions off by errors of different sizes in A and B."""
    rng = np.random.default_rng(seed)
    real_a, real_b = (rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(2))
    rec_a = np.clip(real_a + rng.normal(0, error_a, shape), -1, 1).astype(np.float32)
    rec_b = np.clip(real_b + rng.normal(0, error_b, shape), -1, 1).astype(np.float32)
    return Case(f"seed {seed}, images of shape {list(shape)} (NHWC), lambda_cycle {lambda_cycle:g}",
                {"real_a": real_a, "reconstructed_a": rec_a, "real_b": real_b, "reconstructed_b": rec_b,
                 "lambda_cycle": np.array(lambda_cycle)})


def judge_cycle(inputs, replies, key):
    lam = float(inputs["lambda_cycle"])
    a, ra = inputs["real_a"].astype(np.float64), inputs["reconstructed_a"].astype(np.float64)
    b, rb = inputs["real_b"].astype(np.float64), inputs["reconstructed_b"].astype(np.float64)
    l1_a, l1_b = np.abs(a - ra).mean(), np.abs(b - rb).mean()
    l2_a, l2_b = np.square(a - ra).mean(), np.square(b - rb).mean()
    expected = ref.cycle_consistency_loss(a, ra, lam) + ref.cycle_consistency_loss(b, rb, lam)
    got = _scalar_loss(replies, key)
    if np.isclose(got, expected, rtol=1e-4, atol=1e-6):
        n = a.size
        _check_gradient(replies, key, {"reconstructed_a": ("grad_a", lam * np.sign(ra - a) / n),
                                       "reconstructed_b": ("grad_b", lam * np.sign(rb - b) / n)}, "the generators")
        return None
    _match(got, [
        (lam * (l2_a + l2_b), "L2 instead of L1: the cycle loss is the mean absolute error |F(G(a)) - a| "
                              "(the paper's L1 norm), not the squared error"),
        (l2_a + l2_b, "L2 instead of L1, and lambda_cycle is missing: lambda * mean |F(G(a)) - a|, per direction"),
        (l1_a + l1_b, f"lambda_cycle is missing: the mean absolute errors came out right, but they must be "
                      f"multiplied by lambda_cycle ({lam:g} here)"),
        (ref.LAMBDA_CYCLE * (l1_a + l1_b), f"lambda_cycle is fixed at {ref.LAMBDA_CYCLE:g}: use the argument "
                                            f"lambda_cycle (it was {lam:g} here)"),
        (lam * l1_a, "only one direction: you computed mean |F(G(a)) - a| (A -> B -> A) but not "
                     "mean |G(F(b)) - b| (B -> A -> B); the cycle loss adds both"),
        (lam * l1_b, "only one direction: you computed mean |G(F(b)) - b| (B -> A -> B) but not "
                     "mean |F(G(a)) - a| (A -> B -> A); the cycle loss adds both"),
        (0.5 * lam * (l1_a + l1_b), "the two directions are averaged: the paper adds them "
                                    "(lambda * (mean |F(G(a)) - a| + mean |G(F(b)) - b|))"),
        (lam * l1_a + l1_b, "lambda_cycle multiplies only the A direction: it weighs both"),
        (l1_a + lam * l1_b, "lambda_cycle multiplies only the B direction: it weighs both"),
        (lam * (np.abs(a - ra).sum() + np.abs(b - rb).sum()),
         "summed over the pixels instead of averaged: take the mean absolute error"),
        (-expected, "the cycle loss has the wrong sign: it is a distance, never negative"),
    ])
    raise Mistake(f"expected lambda * (mean |F(G(a)) - a| + mean |G(F(b)) - b|) = {expected:.6g}, got {got:.6g}")


# --------------------------------------------------------------------- identity

def identity_case(seed: int, shape, lambda_cycle: float = 10.0, lambda_identity: float = 0.5) -> Case:
    rng = np.random.default_rng(seed)
    real = rng.uniform(-1, 1, shape).astype(np.float32)
    same = np.clip(real + rng.normal(0, 0.4, shape), -1, 1).astype(np.float32)
    return Case(f"seed {seed}, images of shape {list(shape)}, lambda_cycle {lambda_cycle:g}, "
                f"lambda_identity {lambda_identity:g}",
                {"real": real, "same": same, "lambda_cycle": np.array(lambda_cycle),
                 "lambda_identity": np.array(lambda_identity)})


def judge_identity(inputs, replies, key):
    lc, li = float(inputs["lambda_cycle"]), float(inputs["lambda_identity"])
    real, same = inputs["real"].astype(np.float64), inputs["same"].astype(np.float64)
    l1, l2 = np.abs(real - same).mean(), np.square(real - same).mean()
    expected = ref.identity_loss(real, same, lc, li)
    got = _scalar_loss(replies, key)
    if np.isclose(got, expected, rtol=1e-4, atol=1e-6):
        _check_gradient(replies, key, {"same": ("grad", li * lc * np.sign(same - real) / real.size)}, "the generator")
        return None
    weight = f"lambda_identity * lambda_cycle = {li:g} * {lc:g} = {li * lc:g}"
    _match(got, [
        (li * l1, f"the identity weight is wrong: it is {weight} (paper, section 5.2); you used lambda_identity "
                  "alone"),
        (lc * l1, f"the identity weight is wrong: it is {weight}; you used lambda_cycle alone"),
        (l1, f"the identity weight is missing: multiply the mean absolute error by {weight}"),
        (ref.LAMBDA_IDENTITY * ref.LAMBDA_CYCLE * l1,
         f"the weight is fixed at 0.5 * 10: use the arguments ({weight} here)"),
        (li * lc * l2, "L2 instead of L1: the identity loss is the mean absolute error |G(y) - y|"),
        (li * lc * np.abs(real - same).sum(), "summed over the pixels instead of averaged"),
        (-expected, "the identity loss has the wrong sign: it is a distance, never negative"),
    ])
    raise Mistake(f"expected {weight} times mean |same - real| = {expected:.6g}, got {got:.6g}")


# --------------------------------------------------------------------- the PatchGAN

def patchgan_param_count(in_channels: int, ndf: int, n_layers: int) -> int:
    """Parameters of the reference layout (4x4 convolutions with biases, norms without parameters)."""
    widths = [in_channels, ndf] + [ndf * min(2 ** i, 8) for i in range(1, n_layers + 1)] + [1]
    return sum(16 * c_in * c_out + c_out for c_in, c_out in zip(widths, widths[1:]))


def maps_case(seed: int, sizes, n_layers: int = 3, in_channels: int = 3, ndf: int = 8) -> Case:
    label = (f"inputs of {', '.join(f'{s}x{s}' for s in sizes)} with {in_channels} channel(s), "
             f"n_layers={n_layers}, ndf={ndf}")
    return Case(label, {"sizes": np.array(sizes, np.int64), "in_channels": np.array(in_channels),
                        "ndf": np.array(ndf), "n_layers": np.array(n_layers), "seed": np.array(seed)})


def _map_sides(replies, key, sizes, track):
    """[(H, W)] of each output, from shapes sent back in NHWC order."""
    sides = []
    for i, n in enumerate(sizes):
        shape = tuple(int(s) for s in get(replies, key, f"shape{i}"))
        if len(shape) != 4 or shape[0] != 2 or shape[3] != 1:
            layout = "[N, 1, H, W]" if track == "torch" else "[N, H, W, 1]"
            if int(np.prod(shape)) == 2:
                raise Mistake(f"one number per image (output shape {list(shape)} for a batch of 2 at {n}x{n}): "
                              "global pooling or a dense layer at the end; a PatchGAN keeps a map of "
                              f"scores, one per patch, {layout}")
            raise Mistake(f"for 2 images of {n}x{n} the output has shape {list(shape)}; expected a map of "
                          f"scores {layout} with one channel")
        sides.append(shape[1:3])
    return sides


def judge_maps(track):
    def judge_one(inputs, replies, key):
        sizes, n_layers = [int(s) for s in inputs["sizes"]], int(inputs["n_layers"])
        layers = patchgan_layers(n_layers)
        sides = _map_sides(replies, key, sizes, track)
        expected = [(patch_map_size(n, layers),) * 2 for n in sizes]
        if sides == expected:
            return None
        if all(s == (1, 1) for s in sides):
            raise Mistake("the output map is 1x1 for every input size: global pooling (or a kernel as large "
                          "as the image) at the end; a PatchGAN keeps one score per patch")
        if n_layers != 3 and sides == [(patch_map_size(n),) * 2 for n in sizes]:
            raise Mistake(f"n_layers={n_layers} was asked for but the map sizes are those of n_layers=3: "
                          "use the n_layers argument (the digits task trains with 2)")
        got = ", ".join(f"{n} -> {h}x{w}" for n, (h, w) in zip(sizes, sides))
        want = ", ".join(f"{n} -> {h}x{w}" for n, (h, w) in zip(sizes, expected))
        raise Mistake(f"map sizes {got}; expected {want} (4x4 kernels, padding 1, strides 2 for the first "
                      f"{n_layers} convolutions, then 1, 1)")
    return judge_one


def logits_case(seed: int, size: int = 64, ndf: int = 16, n_layers: int = 3) -> Case:
    return Case(f"two {size}x{size} images, ndf={ndf}, n_layers={n_layers}",
                {"size": np.array(size), "in_channels": np.array(3), "ndf": np.array(ndf),
                 "n_layers": np.array(n_layers), "seed": np.array(seed)})


def judge_logits(inputs, replies, key):
    values, scaled = get(replies, key, "values"), get(replies, key, "scaled")
    if scaled.size and scaled.min() >= 0 and scaled.max() <= 1:
        raise Mistake(f"the scores stay within [0, 1] even with the last layer's weights 1000 times larger "
                      f"(scores {values.min():.3g} to {values.max():.3g}): a sigmoid at the end? The LSGAN loss "
                      "compares raw scores with 1 and 0, and the BCE loss applies its own sigmoid (from logits): "
                      "end with the last convolution")
    return None


def field_case(seed: int, size: int, unit: int, n_layers: int = 3, in_channels: int = 3, ndf: int = 8) -> Case:
    return Case(f"a {size}x{size} input, output unit ({unit}, {unit}), n_layers={n_layers}",
                {"size": np.array(size), "unit": np.array(unit), "in_channels": np.array(in_channels),
                 "ndf": np.array(ndf), "n_layers": np.array(n_layers), "seed": np.array(seed)})


def judge_field(inputs, replies, key):
    size, unit, n_layers = int(inputs["size"]), int(inputs["unit"]), int(inputs["n_layers"])
    field, jump, start = receptive_field(patchgan_layers(n_layers))
    first = start + unit * jump
    expected = np.zeros(size, bool)
    expected[max(first, 0):first + field] = True
    for axis in ("rows", "cols"):
        got = get(replies, key, axis, (size,)) > 0
        if np.array_equal(got, expected):
            continue
        seen = np.flatnonzero(got)
        if got.all():
            raise Mistake(f"one output unit depends on every pixel of the {size}x{size} input (normalization "
                          "switched off): global pooling or a dense layer? Each PatchGAN score sees only its "
                          f"{field}x{field} patch")
        if not seen.size:
            raise Mistake("no gradient reaches the input from one output unit: is the output computed with "
                          "the framework's layers?")
        raise Mistake(f"one output unit sees {axis} {seen[0]} to {seen[-1]} ({len(seen)} pixels wide); the "
                      f"{field}x{field} PatchGAN's unit ({unit}, {unit}) sees {first} to {first + field - 1} "
                      f"(4x4 kernels; strides 2 in the first {n_layers} convolutions, then 1, 1)")
    return f"unit ({unit}, {unit}) sees a {field}x{field} patch"


def params_case(in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> Case:
    return Case(f"in_channels={in_channels}, ndf={ndf}, n_layers={n_layers}",
                {"in_channels": np.array(in_channels), "ndf": np.array(ndf), "n_layers": np.array(n_layers)})


def judge_params(inputs, replies, key):
    c, ndf, n_layers = (int(inputs[k]) for k in ("in_channels", "ndf", "n_layers"))
    expected = patchgan_param_count(c, ndf, n_layers)
    got = int(get(replies, key, "count").reshape(()))
    if got == expected:
        return f"{got:,} parameters"
    normed = sum(ndf * min(2 ** i, 8) for i in range(1, n_layers + 1))
    biases = ndf + normed + 1
    _match(got, [
        (expected + 2 * normed, f"{got:,} parameters, {2 * normed:,} more than the {expected:,} of the reference "
                                "layout: affine normalization (a scale and an offset per channel); use "
                                "instance norm without parameters (affine=False)"),
        (expected + 2 * (normed + ndf), f"{got:,} parameters: a normalization with parameters after every "
                                        "convolution, the first included; the reference has none after the "
                                        "first and no affine parameters"),
        (expected - biases, f"{got:,} parameters, {biases:,} fewer than the reference's {expected:,}: "
                            "the convolutions have no biases (use_bias / bias must stay on)"),
        (patchgan_param_count(3, ndf, n_layers) if c != 3 else -1,
         f"{got:,} parameters for in_channels={c}: the first convolution ignores in_channels"),
    ])
    raise Mistake(f"{got:,} parameters; the reference layout has {expected:,} (C{ndf}-...-C{ndf * 8}, 4x4 kernels "
                  "with biases, instance norm without parameters, a last conv to 1 channel)")


# --------------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainingSetup:
    """The short training of the convergence check and its pass mark.

    Digits task (sklearn digits -> MNIST, the embedded 5,000 MNIST digits), the
    DIGITS_DEFAULTS networks, 30 iterations of batch 8, identity weight 0: with
    the identity term the generators learn a near-identity map on their own and
    a missing cycle loss goes unnoticed (A / B errors 0.25 / 0.30 without it,
    0.21 / 0.29 with it, PyTorch). Held-out cycle error (mean of A -> B -> A and B -> A -> B;
    untrained about 0.99), measured through the grader on a loaded 2-core CPU
    (30-70 s per run):

      solution parts             torch 0.278 (0.245, 0.310)   tf 0.281 (0.213, 0.348)
      lambda missing (1, not 10) torch 0.342 (0.303, 0.381)   tf 0.359 (0.296, 0.421)
      cycle loss always zero     torch 0.451 (0.407, 0.495)   tf 0.533 (0.492, 0.574)
      cycle loss of wrong sign   torch 1.61 (1.613, 1.608)

    The pass mark 0.36 sits 0.08 above the solution and 0.09 (torch) / 0.17 (tf)
    below a dead cycle loss. A missing lambda lands near the mark either way; the
    value checks catch it, not this one.
    """

    iterations: int = 30
    batch_size: int = 8
    seed: int = 0
    lambda_identity: float = 0.0
    n_eval: int = 200
    threshold: float = 0.36


@lru_cache(maxsize=2)
def _digits(seed: int = 0):
    from ...data.domains import digits_domains
    from ...data.mnist import embedded_subset

    return digits_domains(28, seed, mnist=embedded_subset())


def training_case(setup: TrainingSetup) -> Case:
    from ...data.domains import UnpairedDomains

    d = _digits()
    batches = UnpairedDomains(d.train_a, d.train_b, 28, setup.batch_size, seed=setup.seed)
    a, b = zip(*[batch for _, batch in zip(range(setup.iterations), batches.epoch(0))])
    label = (f"{setup.iterations} iterations of batch {setup.batch_size} on sklearn digits <-> MNIST, "
             f"seed {setup.seed}, identity weight {setup.lambda_identity:g}")
    return Case(label, {"a": np.concatenate(a), "b": np.concatenate(b),
                        "iterations": np.array(setup.iterations), "batch_size": np.array(setup.batch_size),
                        "seed": np.array(setup.seed), "lambda_identity": np.array(setup.lambda_identity)})


def trusted_generators(track: str, setup: TrainingSetup, weights: dict):
    """The grader's own CycleGAN (package code) with the returned G and F loaded: its `translate`."""
    from ..common import CycleGANConfig
    from ..run import DIGITS_DEFAULTS, make_trainer

    config = CycleGANConfig(**{**DIGITS_DEFAULTS, "batch_size": setup.batch_size, "seed": setup.seed})
    model = make_trainer(track, config, "cpu", jit=False)
    for net in ("G", "F"):
        tensors = model.weight_tensors(net)
        flat = weights.get(net, np.zeros(0))
        assign(tensors, unflatten(flat, [tuple(t.shape) for t in tensors], f"the trained {net}"))
    return model.translate


def held_out_cycle_error(translate, n_eval: int) -> tuple[float, float]:
    """mean |F(G(x)) - x| on held-out sklearn digits and mean |G(F(y)) - y| on held-out MNIST."""
    d = _digits()
    x, y = d.test_a.array(28, range(n_eval)), d.test_b.array(28, range(n_eval))
    return (float(np.abs(translate(translate(x, "AB"), "BA") - x).mean()),
            float(np.abs(translate(translate(y, "BA"), "AB") - y).mean()))


def judge_training(track: str, setup: TrainingSetup):
    def judge_one(inputs, replies, key):
        reply = ok_reply(replies, key)
        arrays = {k: np.asarray(v) for k, v in reply.arrays.items()}
        if any(a.dtype.kind not in "biuf" or not np.all(np.isfinite(a)) for a in arrays.values()):
            raise Mistake("the training diverged (NaN or infinite losses or weights) with your losses and "
                          "discriminator")
        history = arrays.pop("history", np.zeros((0, 2)))
        error_a, error_b = held_out_cycle_error(trusted_generators(track, setup, arrays), setup.n_eval)
        error = (error_a + error_b) / 2
        if not np.isfinite(error) or error > setup.threshold:
            trend = f"; generator loss per iteration: {show(history[:, 0], 6)}" if history.size else ""
            raise Mistake(f"after {setup.iterations} iterations with your parts the held-out cycle error "
                          f"mean |F(G(x)) - x| is {error_a:.3f} (A) and {error_b:.3f} (B), above the pass mark "
                          f"{setup.threshold:.2f} for their mean; the solution's parts reach about 0.28 in the "
                          f"same run (untrained: about 1.0, without a cycle loss about 0.45): "
                          f"does your cycle loss pull F(G(x)) towards x{trend}?")
        return (f"held-out cycle error {error_a:.3f} (A -> B -> A), {error_b:.3f} (B -> A -> B) after "
                f"{setup.iterations} iterations (pass mark {setup.threshold:.2f} for their mean)")
    return judge_one


# --------------------------------------------------------------------- the assignments

VISIBLE_TRAINING = TrainingSetup()


def visible_checks(track: str) -> list[Check]:
    return [
        make_check("Cycle-consistency loss: lambda * (mean |F(G(a)) - a| + mean |G(F(b)) - b|)", "cycle_loss", 4,
                   "cycle", [cycle_case(11, (4, 16, 16, 3), 10.0), cycle_case(12, (2, 8, 8, 1), 2.5, 0.6, 0.2)],
                   judge_cycle),
        make_check("Identity loss: lambda_identity * lambda_cycle * mean |G(y) - y|", "identity_loss", 2,
                   "identity", [identity_case(21, (3, 12, 12, 3)), identity_case(22, (2, 8, 8, 1), 4.0, 0.25)],
                   judge_identity),
        make_check("PatchGAN: map sizes (256 -> 30x30, 128 -> 14x14, 64 -> 6x6; n_layers=2)", "discriminator", 2,
                   "d_maps", [maps_case(31, [256, 128, 64]), maps_case(32, [64, 28], n_layers=2, in_channels=1)],
                   judge_maps(track)),
        make_check("PatchGAN: each output unit sees a 70x70 patch (gradient of one unit)", "discriminator", 2,
                   "d_receptive_field", [field_case(33, 96, 5)], judge_field),
        make_check(f"PatchGAN: {PATCHGAN_PARAMS:,} parameters in the reference layout", "discriminator", 1,
                   "d_params", [params_case()], judge_params),
        make_check("PatchGAN: raw scores (logits), no sigmoid at the end", "discriminator", 1,
                   "d_logits", [logits_case(34)], judge_logits),
        make_check("Training with your parts lowers the held-out cycle error (digits task)", TRAINING_PART, 3,
                   "train", lambda: [training_case(VISIBLE_TRAINING)], judge_training(track, VISIBLE_TRAINING),
                   slow=True),
    ]
