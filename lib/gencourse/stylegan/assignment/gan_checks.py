"""Checks of the StyleGAN assignment's network and objective parts (grader side).

- `equalized`: EqualizedLinear(in_features, out_features, gain, lr_mul): weights stored N(0, 1/lr_mul^2)
  (std 1/lr_mul) and biases zero at init; y = x (W lr_mul gain / sqrt(in))^T + b lr_mul with the
  grader's W and b loaded; the gradient of the *stored* W is lr_mul gain / sqrt(in) times a plain
  layer's, which is what the equalized learning rate is for (Karras et al. 2018, section 4.1);
- `mapping`: MappingNetwork(z_dim, w_dim, n_layers, lr_mul) built from the student's EqualizedLinear,
  judged by `grading.networks` against the package's with the package's weights loaded;
- `losses`: the non-saturating generator loss and the logistic discriminator loss on logits (judged by
  `grading.crossentropy`, value and each logit's gradient, with the cross-entropy's known mistakes), the R1
  penalty gamma / 2 E |grad_x D(x)|^2 on reals (Mescheder et al. 2018) with its gradient reaching D's
  weights, and the discriminator's objective (logistic loss + R1 on the reals);
- `frechet`: the Fréchet distance of two Gaussians, against `metrics.frechet` (scipy's sqrtm).

The R1 checks use a discriminator whose input gradient is known in closed form,
D(x) = sum_p (a_p x_p^2 + c_p x_p) + b per image: grad_x D = 2 a x + c.
"""

from __future__ import annotations

import numpy as np

from ...grading import Case, Mistake, close, crossentropy as ce, first_match, get, ok_reply, show
from ...metrics.frechet import gaussian_frechet_distance
from ...reference import stylegan as ref

GAIN = float(np.sqrt(2.0))
MAPPING_LR_MUL = 0.01     # the paper's learning-rate multiplier of the mapping network


# --------------------------------------------------------------------- the equalized learning rate

def equalized_case(seed: int, n: int, in_f: int, out_f: int, lr_mul: float, gain: float = GAIN) -> Case:
    rng = np.random.default_rng(seed)
    return Case(f"seed {seed}, {in_f} -> {out_f} features, gain {gain:.3g}, lr_mul {lr_mul:g}",
                {"x": rng.normal(size=(n, in_f)).astype(np.float32),
                 "weight": rng.normal(0, 1 / lr_mul, (out_f, in_f)).astype(np.float32),
                 "bias": rng.normal(0, 1, out_f).astype(np.float32),
                 "r": rng.normal(size=(n, out_f)).astype(np.float32),
                 "gain": np.array(gain), "lr_mul": np.array(lr_mul), "seed": np.array(seed)})


def judge_equalized_init(inputs, replies, key):
    lr_mul, gain = float(inputs["lr_mul"]), float(inputs["gain"])
    out_f, in_f = inputs["weight"].shape
    w0, b0 = get(replies, key, "init_weight", (out_f, in_f)), get(replies, key, "init_bias", (out_f,))
    std, mean = float(w0.std()), float(w0.mean())
    if np.any(b0 != 0):
        raise Mistake(f"the bias does not start at zero (it starts at {show(b0)})")
    if abs(std * lr_mul - 1) < 0.12 and abs(mean) < 0.15 / lr_mul:
        return None
    if abs(std - 1) < 0.12 and lr_mul != 1:
        raise Mistake(f"the stored weights start with standard deviation {std:.3g}, N(0, 1): with lr_mul "
                      f"{lr_mul:g} they start N(0, 1/lr_mul^2) (std {1 / lr_mul:g}), so that W * lr_mul starts N(0, 1)")
    scale = lr_mul * gain / np.sqrt(in_f)
    if abs(std / (scale / lr_mul) - 1) < 0.12 or abs(std / scale - 1) < 0.12:
        raise Mistake(f"the stored weights start already scaled (std {std:.3g}): the equalized learning rate "
                      "stores unit-scale weights and multiplies by lr_mul * gain / sqrt(in_features) at run time")
    raise Mistake(f"the stored weights start with mean {mean:.3g} and standard deviation {std:.3g}; expected "
                  f"N(0, 1/lr_mul^2), std {1 / lr_mul:g}")


def _linear(x, w, b, w_scale, b_scale):
    return x.astype(np.float64) @ (w.astype(np.float64) * w_scale).T + b.astype(np.float64) * b_scale


def judge_equalized_forward(inputs, replies, key):
    x, w, b, r = (inputs[k] for k in ("x", "weight", "bias", "r"))
    lr_mul, gain = float(inputs["lr_mul"]), float(inputs["gain"])
    in_f = x.shape[1]
    scale = lr_mul * gain / np.sqrt(in_f)
    y = get(replies, key, "y", (len(x), w.shape[0]))
    expected = _linear(x, w, b, scale, lr_mul)
    if not close(y, expected, rtol=1e-4, atol=1e-4):
        first_match(y, [
            (_linear(x, w, b, gain / np.sqrt(in_f), lr_mul), "the weights are not multiplied by lr_mul: the "
             "run-time scale is lr_mul * gain / sqrt(in_features)"),
            (_linear(x, w, b, scale, 1.0), "the bias is not multiplied by lr_mul (it learns at the same slower rate)"),
            (_linear(x, w, b, gain / np.sqrt(in_f), 1.0), "lr_mul is not applied at all (weights nor bias)"),
            (_linear(x, w, b, lr_mul / np.sqrt(in_f), lr_mul), "the gain is missing from the scale"),
            (_linear(x, w, b, lr_mul * gain / np.sqrt(w.shape[0]), lr_mul), "the scale uses sqrt(out_features); "
             "the fan-in is in_features"),
            (_linear(x, w, b, 1.0, 1.0), "no run-time scale: the stored weights are used as they are"),
            (_linear(x, w, b, scale * scale, lr_mul), "the scale is applied twice"),
        ], rtol=1e-3, atol=1e-4)
        raise Mistake(f"expected x (W * {scale:.4g})^T + b * {lr_mul:g}: got {show(y)}, expected {show(expected)}")
    missing = get(replies, key, "missing", (2,))
    if missing.any():
        raise Mistake("the output is right but no gradient reaches the stored " +
                      ("weight and bias" if missing.all() else "weight" if missing[0] else "bias") +
                      " (computed outside the graph, or detached?)")
    grad_w, grad_b = get(replies, key, "grad_w", w.shape), get(replies, key, "grad_b", b.shape)
    want_w = scale * (r.astype(np.float64).T @ x.astype(np.float64))
    if not close(grad_w, want_w, rtol=1e-3, atol=1e-4):
        raise Mistake(f"the output is right but the gradient of the stored weight is not {scale:.4g} times a plain "
                      f"layer's: got {show(grad_w)}, expected {show(want_w)}")
    if not close(grad_b, lr_mul * r.sum(axis=0), rtol=1e-3, atol=1e-4):
        raise Mistake("the output is right but the bias's gradient is not lr_mul times a plain layer's")
    return f"the stored weight's gradient is {scale:.3g} times a plain layer's"


# --------------------------------------------------------------------- the mapping network

def mapping_case(seed: int, n: int, z_dim: int, w_dim: int, n_layers: int, scale: float = 3.0) -> Case:
    z = (scale * np.random.default_rng(seed).normal(size=(n, z_dim))).astype(np.float32)
    return Case(f"seed {seed}, z [{n}, {z_dim}] -> w [{n}, {w_dim}], {n_layers} layers",
                {"z": z, "z_dim": np.array(z_dim), "w_dim": np.array(w_dim), "n_layers": np.array(n_layers),
                 "seed": np.array(seed)})


def reference_mapping(track: str, inputs):
    """The mapping network computed in numpy, with seeded weights in the track's layout (the oracle):
    pixel norm, then per layer the equalized dense (lr_mul 0.01) and the leaky ReLU 0.2."""
    from ...grading.networks import reference_from_arrays

    z_dim, w_dim, n_layers, seed = (int(inputs[k]) for k in ("z_dim", "w_dim", "n_layers", "seed"))
    rng = np.random.default_rng(seed + 1000)
    lr_mul = MAPPING_LR_MUL
    x = ref.pixel_norm(inputs["z"].astype(np.float64))
    outputs, groups, dims = [("pixel norm", x)], [], [z_dim] + [w_dim] * n_layers
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:]), 1):
        w = rng.normal(0, 1 / lr_mul, (b, a)).astype(np.float32)          # [out, in], stored N(0, 1/lr_mul^2)
        bias = rng.normal(0, 1 / lr_mul, b).astype(np.float32)           # non-zero, so a bias mistake shows
        h = x @ (w.astype(np.float64) * lr_mul * GAIN / np.sqrt(a)).T + bias * lr_mul
        x = np.where(h >= 0, h, 0.2 * h)
        groups.append((f"dense {i}", [w if track == "torch" else w.T, bias]))
        outputs += [(f"dense {i}", h), (f"leaky ReLU {i}", x)]
    return reference_from_arrays(groups, outputs, x)


def mapping_inputs(track: str, case: Case) -> Case:
    from ...grading.networks import call_inputs

    return Case(case.label, {**case.inputs, **call_inputs(reference_mapping(track, case.inputs), case.inputs["z"])})


def judge_mapping(track: str):
    from ...grading.networks import judge_network

    def judge_one(inputs, replies, key):
        reply = ok_reply(replies, key)
        return judge_network(reference_mapping(track, inputs), reply.arrays, channel_axis=-1,
                             what="mapping network")
    return judge_one


# --------------------------------------------------------------------- the losses and R1

def logits_case(seed: int, n: int, spread: float = 3.0, extreme: bool = False) -> Case:
    """Logits [n, 1]; `extreme` adds -150 and 150, where log(sigmoid(.)) underflows in float32."""
    rng = np.random.default_rng(seed)
    d_real, d_fake = (spread * rng.normal(size=(n, 1)) for _ in range(2))
    if extreme:
        d_real, d_fake = (np.concatenate([d, [[-150.0], [150.0]]]) for d in (d_real, d_fake))
    return Case(f"seed {seed}, {len(d_real)} logits of spread {spread:g}" + (", and -150 and 150" if extreme else ""),
                {"d_real": d_real.astype(np.float32), "d_fake": d_fake.astype(np.float32)})


def judge_generator_loss(inputs, replies, key):
    f = inputs["d_fake"].astype(np.float64)
    got = _scalar(replies, key, "g_loss")
    want = ref.generator_loss(f)
    ce.judge_terms(replies, key, "G", "G's non-saturating loss, mean softplus(-D(G(z)))", "bce", got, want, [
        (-ref.softplus(f).mean(), "the saturating loss, log(1 - D(G(z))): StyleGAN's generator minimizes the "
                                   "non-saturating -log D(G(z)) = softplus(-D(G(z)))"),
        (ref.softplus(f).mean(), "the sign of the logits is wrong: softplus(-D(G(z))), so that G is rewarded when "
                                 "D calls its images real"),
        (-f.mean(), "the Wasserstein loss -D(G(z)): StyleGAN's is softplus(-D(G(z)))"),
        (ref.softplus(-f).sum(), "summed over the batch: take the mean"),
        *ce.bce_variants([("d_fake", f, 1.0, 1.0)]),
    ], [("d_fake", f, 1.0, 1.0, "g_grad")], get(replies, key, "missing", (1,)))


def judge_discriminator_loss(inputs, replies, key):
    r, f = inputs["d_real"].astype(np.float64), inputs["d_fake"].astype(np.float64)
    got = _scalar(replies, key, "d_loss")
    want = ref.discriminator_loss(r, f)
    halves = [("d_real", r, 1.0, 1.0), ("d_fake", f, 0.0, 1.0)]
    ce.judge_terms(replies, key, "D", "D's logistic loss, mean softplus(D(G(z))) + mean softplus(-D(x))", "bce",
                   got, want, [
        (ref.discriminator_loss(f, r), "real and fake swapped: softplus(-D(x)) for the reals, softplus(D(G(z))) for "
                                       "the fakes"),
        (ref.softplus(-r).mean(), "only the reals' term: add mean softplus(D(G(z))) for the fakes"),
        (ref.softplus(f).mean(), "only the fakes' term: add mean softplus(-D(x)) for the reals"),
        (ref.discriminator_loss(ce.sigmoid(r), ce.sigmoid(f)), "a sigmoid before the loss: the discriminator's "
                                                               "outputs are logits, and softplus takes logits"),
        (0.5 * want, "halved: the logistic loss adds the two terms"),
        (ref.softplus(-r).sum() + ref.softplus(f).sum(), "summed over the batch: take the means"),
        *ce.bce_variants(halves),
    ], [(*h, g) for h, g in zip(halves, ("d_grad_real", "d_grad_fake"))], get(replies, key, "d_missing", (2,)))


def _scalar(replies, key, name) -> float:
    raw = np.asarray(ok_reply(replies, key).arrays.get(name, np.zeros(0)), np.float64)
    if raw.size != 1:
        raise Mistake(f"the loss should be one number (a scalar tensor); got shape {list(raw.shape)}")
    if not np.isfinite(raw).all():
        raise Mistake("the loss is not finite: for logits far from zero, log(sigmoid(.)) underflows; write it with "
                      "softplus (softplus(-x) = -log sigmoid(x)), which stays finite")
    return float(raw.reshape(()))


def r1_case(seed: int, n: int, shape=(4, 4), gamma: float = 10.0) -> Case:
    rng = np.random.default_rng(seed)
    full = (n, *shape)
    return Case(f"seed {seed}, {n} images of {shape[0]}x{shape[1]}, gamma {gamma:g}, D(x) = sum(a x^2 + c x) + b",
                {"reals": rng.normal(size=full).astype(np.float32), "fakes": rng.normal(1, 2, full).astype(np.float32),
                 "a": rng.normal(size=shape).astype(np.float32), "c": rng.normal(size=shape).astype(np.float32),
                 "b": np.array(0.3, np.float32), "gamma": np.array(gamma)})


def _quadratic(inputs, x):
    a, c = inputs["a"].astype(np.float64), inputs["c"].astype(np.float64)
    return np.sum(a * x ** 2 + c * x, axis=(1, 2)) + float(inputs["b"]), 2 * a * x + c


def _r1(inputs, x, gamma=None, squared=True, half=True, batch_mean=True, through=None):
    """R1, or a variant; `through(D(x))`: the factor a function of the logit puts on its input gradient."""
    d, g = _quadratic(inputs, x.astype(np.float64))
    per = np.sum(g.reshape(len(g), -1) ** 2, axis=1) * (1.0 if through is None else through(d) ** 2)
    per = per if squared else np.sqrt(per)
    gamma = float(inputs["gamma"]) if gamma is None else gamma
    return (0.5 if half else 1.0) * gamma * (per.mean() if batch_mean else per.sum())


def judge_r1(inputs, replies, key):
    x = inputs["reals"]
    got = _scalar(replies, key, "r1")
    want = ref.r1_penalty(_quadratic(inputs, x.astype(np.float64))[1], float(inputs["gamma"]))
    if not np.isclose(got, want, rtol=1e-4, atol=1e-6):
        first_match(got, [
            (_r1(inputs, x, squared=False), "the gradient norm is not squared: R1 = gamma / 2 * |grad_x D(x)|^2"),
            (_r1(inputs, x, half=False), "gamma / 2 is missing its / 2: R1 = gamma / 2 * |grad_x D(x)|^2"),
            (_r1(inputs, x, batch_mean=False), "summed over the batch: R1 is the mean over the images"),
            (_r1(inputs, x) / np.prod(x.shape[1:]), "averaged over the pixels: the squared norm sums them"),
            (_r1(inputs, x, gamma=1.0), "gamma is not used (it was given as the argument)"),
            (_r1(inputs, x, through=lambda d: ce.sigmoid(d) * (1 - ce.sigmoid(d))),
             "the gradient of sigmoid(D(x)), a probability: R1 takes the gradient of D's logit D(x) itself"),
            (_r1(inputs, x, through=lambda d: ce.sigmoid(-d)),
             "the gradient of the loss softplus(-D(x)): R1 takes the gradient of D's logit D(x) itself"),
        ], rtol=1e-4, atol=1e-6)
        raise Mistake(f"expected gamma / 2 * mean over images of |grad_x D(x)|^2 = {want:.6g}, got {got:.6g}")
    if float(get(replies, key, "missing", ()).reshape(())):
        raise Mistake("the value is right but no gradient reaches the discriminator's weights: the input gradient "
                      "must stay in the graph (torch: create_graph=True; TF: a tape inside a tape), or D never "
                      "learns from R1")
    a, c = inputs["a"].astype(np.float64), inputs["c"].astype(np.float64)
    xd = x.astype(np.float64)
    want_ga = 2 * float(inputs["gamma"]) * np.mean((2 * a * xd + c) * xd, axis=0)
    grad_a = get(replies, key, "grad_a", a.shape)
    if not close(grad_a, want_ga, rtol=1e-3, atol=1e-4):
        raise Mistake(f"the value is right but its gradient for D's weights is not: got {show(grad_a)}, expected "
                      f"{show(want_ga)}")
    return None


def judge_d_objective(inputs, replies, key):
    reals, fakes = inputs["reals"].astype(np.float64), inputs["fakes"].astype(np.float64)
    d_r, d_f = _quadratic(inputs, reals)[0], _quadratic(inputs, fakes)[0]
    loss = ref.discriminator_loss(d_r, d_f)
    got = _scalar(replies, key, "objective")
    want = loss + _r1(inputs, reals)
    if np.isclose(got, want, rtol=1e-4, atol=1e-6):
        return None
    first_match(got, [
        (loss + _r1(inputs, fakes), "R1 is computed on the fakes: it penalizes D's gradient on the real images"),
        (loss + _r1(inputs, reals) + _r1(inputs, fakes), "R1 on the reals and the fakes: only on the reals"),
        (loss, "R1 is missing: the objective is the logistic loss plus R1 on the reals"),
        (_r1(inputs, reals), "the logistic loss is missing: the objective is the logistic loss plus R1"),
    ], rtol=1e-4, atol=1e-6)
    raise Mistake(f"expected the logistic loss plus R1 on the reals, {loss:.6g} + {_r1(inputs, reals):.6g}, "
                  f"got {got:.6g}")


# --------------------------------------------------------------------- the Fréchet distance

def frechet_case(seed: int, d: int, rank: int | None = None, same: bool = False) -> Case:
    rng = np.random.default_rng(seed)

    def cov():
        a = rng.normal(size=(d, rank or d))
        return a @ a.T / (rank or d)
    s1 = cov()
    s2 = s1.copy() if same else cov()
    mu1 = rng.normal(size=d)
    mu2 = mu1.copy() if same else rng.normal(size=d)
    label = f"seed {seed}, dimension {d}" + (f", covariances of rank {rank}" if rank else "") + \
        (", the same Gaussian twice" if same else "")
    return Case(label, {"mu1": mu1, "sigma1": s1, "mu2": mu2, "sigma2": s2})


def judge_frechet(inputs, replies, key):
    mu1, s1, mu2, s2 = (inputs[k].astype(np.float64) for k in ("mu1", "sigma1", "mu2", "sigma2"))
    reply = ok_reply(replies, key)
    raw = np.asarray(reply.arrays.get("fd", np.zeros(0)))
    if raw.dtype.kind == "c" or float(get(replies, key, "is_complex", ()).reshape(())):
        raise Mistake("a complex number came back: sqrtm of a product of covariances can carry a tiny imaginary "
                      "part from round-off; keep the real part")
    if raw.size != 1:
        raise Mistake(f"the distance should be one number; got shape {list(raw.shape)}")
    got = float(raw.reshape(()))
    if not np.isfinite(got):
        raise Mistake("NaN or infinity" + (" for covariances of low rank (singular), which real features have: "
                                           "scipy's sqrtm handles them; an inverse or a Cholesky does not"
                                           if np.linalg.matrix_rank(s1) < len(s1) else ""))
    want = gaussian_frechet_distance(mu1, s1, mu2, s2)
    if np.isclose(got, want, rtol=1e-4, atol=1e-6):
        return None
    from scipy import linalg

    def fd(cross):
        return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(cross))
    first_match(got, [
        (fd(np.sqrt(np.abs(s1 * s2))), "the square root is taken entry by entry: (S1 S2)^(1/2) is the matrix "
                                       "square root (scipy.linalg.sqrtm) of the matrix product"),
        (fd(np.real(linalg.sqrtm(s1) @ linalg.sqrtm(s2))), "sqrtm(S1) @ sqrtm(S2) is not (S1 S2)^(1/2) when the "
                                                          "covariances do not commute: take sqrtm of the product"),
        (want + np.trace(np.real(linalg.sqrtm(s1 @ s2))), "the trace term is missing its factor 2: "
                                                          "- 2 Tr((S1 S2)^(1/2))"),
        (float(np.linalg.norm(mu1 - mu2)) + want - float((mu1 - mu2) @ (mu1 - mu2)),
         "the mean term is the norm, not its square: |mu1 - mu2|^2"),
        (float((mu1 - mu2) @ (mu1 - mu2)), "only the mean term |mu1 - mu2|^2: the trace term "
                                           "Tr(S1 + S2 - 2 (S1 S2)^(1/2)) is missing"),
        (fd(np.zeros_like(s1)), "the cross term - 2 Tr((S1 S2)^(1/2)) is missing"),
        (fd(np.real(linalg.sqrtm(s1 @ s1))), "the square root of the wrong product: (S1 S2)^(1/2), not (S1 S1)^(1/2)"),
        (fd(np.real(linalg.sqrtm(s2 @ s2))), "the square root of the wrong product: (S1 S2)^(1/2), not (S2 S2)^(1/2)"),
        (fd(np.real(linalg.sqrtm(s1 + s2))), "the square root of the sum: the cross term is (S1 S2)^(1/2), of the "
                                             "product"),
    ], rtol=1e-4, atol=1e-6)
    raise Mistake(f"expected |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = {want:.6g}, got {got:.6g}")
