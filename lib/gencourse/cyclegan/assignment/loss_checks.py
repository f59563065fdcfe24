"""Judges of the CycleGAN assignment's losses: adversarial, cycle, identity, semantic (grader side).

Each judge compares the student's value with gencourse.reference.cyclegan on seeded inputs, names a known
wrong answer only when the value equals it, and then checks the gradient the probe sent back and the
contract the TODO text states (one float32 scalar, finite). The adversarial losses are judged by
`grading.crossentropy`, which also reads each score's gradient (a value dominated by scores of +-200 hides
the other terms).
"""

from __future__ import annotations

import numpy as np

from ...grading import Case, Mistake, crossentropy as ce, differences, first_match, get
from ...reference import cyclegan as ref

GAN_MODES = ("lsgan", "bce")


def scalar_loss(replies, key, name: str = "loss") -> float:
    got = get(replies, key, name)
    if got.size != 1:
        raise Mistake(f"the loss should be one number (a scalar tensor); got shape {list(got.shape)}: "
                      "take the mean over every pixel and example")
    return float(got.reshape(()))


def _dtype(replies, key, flag: str = "float32") -> None:
    if float(get(replies, key, flag).reshape(())) != 1:
        raise Mistake("the value is right but the loss is not a float32 tensor (float64 from a numpy or Python "
                      "constant?): the generators' gradients would come back in another precision")


def match(got: float, variants) -> None:
    """Mistake with the hint of the first known wrong answer a loss value equals."""
    first_match(got, variants, rtol=1e-4, atol=1e-6)


def check_gradient(replies, key, grads: dict, what: str):
    """`grads`: {input name: (name of its gradient in the reply, expected gradient)}."""
    missing = get(replies, key, "missing", (len(grads),))
    for flag, (name, (grad_name, exp)) in zip(missing, grads.items()):
        if flag:
            raise Mistake(f"the value is right but no gradient reaches {name}: the loss is computed outside "
                          f"the framework's graph (numpy, .numpy(), .detach()?), so it could never train {what}")
        grad = get(replies, key, grad_name, exp.shape)
        if not np.allclose(grad, exp, rtol=1e-3, atol=1e-6 * max(1.0, float(np.abs(exp).max(initial=0)))):
            raise Mistake(f"the value is right but its gradient for {name} is not: "
                          f"{differences(grad, exp, 1e-3, 1e-6)}")


# --------------------------------------------------------------------- adversarial

def adversarial_case(seed: int, shape, gan_mode: str, spread: float = 2.0, extreme: bool = False) -> Case:
    """Score maps D(y), D(G(x)) [N, h, w, 1]; `extreme` puts -200 and 200 in them (log sigmoid underflows)."""
    rng = np.random.default_rng(seed)
    d_real, d_fake = (spread * rng.normal(size=shape) for _ in range(2))
    if extreme:
        d_real.flat[:2], d_fake.flat[:2] = (200.0, -200.0), (-200.0, 200.0)
    return Case(f"seed {seed}, score maps of shape {list(shape)} (NHWC) of spread {spread:g}, gan_mode {gan_mode!r}"
                + (", scores of -200 and 200 among them" if extreme else ""),
                {"d_real": d_real.astype(np.float32), "d_fake": d_fake.astype(np.float32),
                 "gan_mode": np.array(GAN_MODES.index(gan_mode))})


def _finite(replies, key, name, what):
    value = scalar_loss(replies, key, name)
    if float(get(replies, key, f"{name}_finite").reshape(())) != 1:
        raise Mistake(f"{what} is not finite (NaN or infinite) for scores of -200 and 200: the cross-entropy is "
                      "not computed from the logits stably (log(sigmoid(z)) underflows to log(0)): use the "
                      "framework's cross-entropy from logits")
    return value


def judge_adversarial(inputs, replies, key):
    mode = GAN_MODES[int(inputs["gan_mode"])]
    r, f = inputs["d_real"].astype(np.float64), inputs["d_fake"].astype(np.float64)
    n = f.size
    kind = "squared" if mode == "lsgan" else "bce"      # LSGAN's terms are the squared error
    right = lambda z, t: float(np.mean(ce.terms(kind, z, t)))  # noqa: E731
    g_got = _finite(replies, key, "g_loss", "G's loss")
    g_want = ref.generator_adversarial_loss(f, mode)
    ce.judge_terms(replies, key, "G", f"G's {mode} loss", kind, g_got, g_want, [
        (np.mean(f ** 2) if mode == "lsgan" else np.mean(ce.softplus(f)),
         "G's target is 0, D's for fakes: G wants D to score its images as real, target 1"),
        (np.mean(ce.softplus(-f)) if mode == "lsgan" else np.mean((f - 1) ** 2),
         f"gan_mode {mode!r} was asked but the loss is the {'BCE' if mode == 'lsgan' else 'least-squares'} one"),
        (-np.mean(ce.softplus(f)), "the saturating minimax form, log(1 - D(G(x))): G minimizes the "
                                   "non-saturating -log D(G(x)) (BCE with target 1)"),
        (np.mean(ce.softplus(-ce.sigmoid(f))), "a sigmoid applied twice: the scores are logits, and the BCE "
                                                "from logits applies its own sigmoid"),
        (np.mean((ce.sigmoid(f) - 1) ** 2), "a sigmoid on the scores before the least-squares loss: LSGAN "
                                            "compares the raw scores with 1"),
        (np.mean(np.abs(f - 1)), "the absolute error |D(G(x)) - 1|: LSGAN squares it"),
        (n * g_want, "summed over the scores instead of averaged"),
        (0.5 * g_want, "G's loss is halved: only D's loss has the 1/2"),
        *(ce.bce_variants([("d_fake", f, 1.0, 1.0)]) if mode == "bce" else []),
    ], [("d_fake", f, 1.0, 1.0, "g_grad")], get(replies, key, "missing", (1,)))
    d_got = _finite(replies, key, "d_loss", "D's loss")
    d_want = ref.discriminator_loss(r, f, mode)
    swapped, real, fake = 0.5 * (right(r, 0.0) + right(f, 1.0)), right(r, 1.0), right(f, 0.0)
    ce.judge_terms(replies, key, "D", f"D's {mode} loss", kind, d_got, d_want, [
        (2 * d_want, "D's loss is not halved: the paper divides it by 2 to slow D down relative to G"),
        (swapped, "D's targets are swapped: real scores go towards 1, fake ones towards 0"),
        (2 * swapped, "D's targets are swapped (real towards 1, fakes towards 0) and the 1/2 is missing"),
        (0.5 * real, "only the real half: D's loss adds loss(D(y), 1) and loss(D(G(x)), 0)"),
        (0.5 * fake, "only the fake half: D's loss adds loss(D(y), 1) and loss(D(G(x)), 0)"),
        (ref.discriminator_loss(r, f, "bce" if mode == "lsgan" else "lsgan"),
         f"gan_mode {mode!r} was asked but the loss is the other one"),
        (0.5 * (np.mean(ce.softplus(-ce.sigmoid(r))) + np.mean(ce.softplus(ce.sigmoid(f)))),
         "a sigmoid applied twice: the scores are logits, and the BCE from logits applies its own sigmoid"),
        (0.5 * (np.mean((ce.sigmoid(r) - 1) ** 2) + np.mean(ce.sigmoid(f) ** 2)),
         "a sigmoid on the scores before the least-squares loss: LSGAN compares the raw scores"),
        *(ce.bce_variants([("d_real", r, 1.0, 0.5), ("d_fake", f, 0.0, 0.5)]) if mode == "bce" else []),
    ], [("d_real", r, 1.0, 0.5, "d_grad_real"), ("d_fake", f, 0.0, 0.5, "d_grad_fake")],
        get(replies, key, "d_missing", (2,)))
    _dtype(replies, key)
    return None


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
    got = scalar_loss(replies, key)
    if np.isclose(got, expected, rtol=1e-4, atol=1e-6):
        n = a.size
        check_gradient(replies, key, {"reconstructed_a": ("grad_a", lam * np.sign(ra - a) / n),
                                      "reconstructed_b": ("grad_b", lam * np.sign(rb - b) / n)}, "the generators")
        return None
    match(got, [
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

def identity_case(seed: int, shape, lambda_identity: float = 5.0) -> Case:
    rng = np.random.default_rng(seed)
    real = rng.uniform(-1, 1, shape).astype(np.float32)
    same = np.clip(real + rng.normal(0, 0.4, shape), -1, 1).astype(np.float32)
    return Case(f"seed {seed}, images of shape {list(shape)}, lambda_identity {lambda_identity:g}",
                {"real": real, "same": same, "lambda_identity": np.array(lambda_identity)})


def judge_identity(inputs, replies, key):
    li = float(inputs["lambda_identity"])
    real, same = inputs["real"].astype(np.float64), inputs["same"].astype(np.float64)
    l1, l2 = np.abs(real - same).mean(), np.square(real - same).mean()
    expected = ref.identity_loss(real, same, li)
    got = scalar_loss(replies, key)
    if np.isclose(got, expected, rtol=1e-4, atol=1e-6):
        check_gradient(replies, key, {"same": ("grad", li * np.sign(same - real) / real.size)}, "the generator")
        return None
    weight = f"lambda_identity = {li:g}"
    match(got, [
        (li * ref.LAMBDA_CYCLE * l1, f"the weight is lambda_identity times lambda_cycle, the paper's way of writing "
                                     f"it: here the identity loss has a weight of its own, {weight}"),
        (l1, f"the identity weight is missing: multiply the mean absolute error by {weight}"),
        (ref.LAMBDA_IDENTITY * l1, f"the weight is fixed at {ref.LAMBDA_IDENTITY:g}: use the argument ({weight} here)"),
        (li * l2, "L2 instead of L1: the identity loss is the mean absolute error |G(y) - y|"),
        (li * np.abs(real - same).sum(), "summed over the pixels instead of averaged"),
        (-expected, "the identity loss has the wrong sign: it is a distance, never negative"),
    ])
    raise Mistake(f"expected {weight} times mean |same - real| = {expected:.6g}, got {got:.6g}")


# --------------------------------------------------------------------- semantic consistency (CyCADA)

def semantic_case(seed: int, n: int, classes: int = 10, weight: float = 1.0, spread: float = 3.0,
                  extreme: bool = False) -> Case:
    rng = np.random.default_rng(seed)
    logits = spread * rng.normal(size=(n, classes))
    labels = rng.integers(0, classes, n)
    if extreme:
        logits[0, :] = -90.0
        logits[0, (labels[0] + 1) % classes] = 90.0
    return Case(f"seed {seed}, logits [{n}, {classes}] of spread {spread:g}, weight {weight:g}"
                + (", one logit of 90 on a wrong class and -90 elsewhere" if extreme else ""),
                {"logits": logits.astype(np.float32), "labels": labels.astype(np.int64), "weight": np.array(weight)})


def judge_semantic(inputs, replies, key):
    z, y, w = inputs["logits"].astype(np.float64), inputs["labels"].astype(np.int64), float(inputs["weight"])
    n, c = z.shape
    got = scalar_loss(replies, key)
    if float(get(replies, key, "loss_finite").reshape(())) != 1:
        raise Mistake("the loss is not finite (NaN or infinite) for logits of -90 and 90: log(softmax) underflows "
                      "to log(0); use the framework's cross-entropy from logits (it subtracts the largest logit "
                      "first)")
    want = ref.semantic_consistency_loss(z, y, w)
    if not np.isclose(got, want, rtol=1e-4, atol=1e-6):
        p = np.exp(ref.log_softmax(z))
        onehot = np.eye(c)[y]
        bce = ce.softplus(z) - onehot * z
        match(got, [(want / w, f"the weight is missing: multiply the mean cross-entropy by weight ({w:g} here)")]
              if w != 1 else [])
        match(got, [
            (ref.semantic_consistency_loss(p, y, w), "a softmax applied twice: the classifier gives logits, and the "
                                                     "cross-entropy from logits applies its own softmax"),
            (-w * z[np.arange(n), y].mean(), "the log-softmax is missing: the negative log-likelihood takes "
                                             "log-probabilities, not raw logits"),
            (n * want, "summed over the batch instead of averaged"),
            (w * bce.mean(), "a binary cross-entropy per class (sigmoid) instead of the softmax cross-entropy"),
            (w * bce.sum(axis=1).mean(), "a binary cross-entropy per class (sigmoid) instead of the softmax "
                                         "cross-entropy"),
            (-want, "the sign is wrong: the cross-entropy is positive, and G must make it small"),
        ])
        raise Mistake(f"expected weight * mean cross-entropy = {want:.6g}, got {got:.6g}")
    check_gradient(replies, key, {"logits": ("grad", w * (np.exp(ref.log_softmax(z)) - np.eye(c)[y]) / n)},
                   "the generators")
    _dtype(replies, key)
    return None
