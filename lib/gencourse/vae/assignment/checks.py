"""The VAE assignment's checks (visible ones) and their judges, in both tracks.

Each check builds seeded inputs (`Call`s), the worker runs the probes of
`tf_probes` / `torch_probes` on them, and the judges here compare what came
back with `gencourse.reference` in the grader's process. The hidden checks
(autograder/hidden/vae.py) are built with the same functions on inputs these
never show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import reference
from ...grading import Case, Check, Mistake, close, get, make_check, ok_reply, show, unflatten
from ...weights import assign


# --------------------------------------------------------------------- sampling

def sampling_case(seed: int, n: int, log_var_columns=None, dims: int = 2,
                  mu_range=2.0, log_var_range=(-3.0, 2.0)) -> Case:
    """mu random per entry; log_var constant per column (if given) or random per entry."""
    rng = np.random.default_rng(seed)
    if log_var_columns is not None:
        dims = len(log_var_columns)
        log_var = np.tile(np.asarray(log_var_columns, np.float32), (n, 1))
    else:
        log_var = rng.uniform(*log_var_range, (n, dims)).astype(np.float32)
    mu = rng.uniform(-mu_range, mu_range, (n, dims)).astype(np.float32)
    label = f"seed {seed}, z_mean and z_log_var of shape [{n}, {dims}]"
    return Case(label, {"z_mean": mu, "z_log_var": log_var})


def judge_sampling_stats(inputs, replies, key):
    mu = inputs["z_mean"].astype(np.float64)
    log_var = inputs["z_log_var"].astype(np.float64)
    z = get(replies, key, "z", mu.shape)
    z_again = get(replies, key, "z_again", mu.shape)
    r = z - mu
    if np.max(np.abs(r)) < 1e-6:
        raise Mistake("z equals z_mean exactly: the noise is missing; z = z_mean + exp(0.5 * z_log_var) * eps "
                      "with eps drawn from N(0, 1) on every call")
    if np.array_equal(z, z_again):
        raise Mistake("two calls of the same layer gave the same z: the noise must be new on every call "
                      "(a fixed seed inside call()/forward()? create the random generator once, in __init__)")
    eps = r / np.exp(0.5 * log_var)
    if np.all(np.std(eps, axis=0) < 1e-3):
        raise Mistake("every example got the same eps: draw eps with the full shape of z_mean "
                      "(batch, latent_dim), not (latent_dim,)")
    mean, std = float(eps.mean()), float(eps.std())
    inside = float(np.mean(np.abs(eps) < 1.0))
    if eps.min() >= -1.0 - 1e-6 and eps.max() <= 1.0 + 1e-6:
        raise Mistake(f"(z - z_mean) / exp(0.5 * z_log_var) stays within [{eps.min():.3g}, {eps.max():.3g}]: "
                      "eps looks uniform; draw it from a standard normal N(0, 1) "
                      "(keras.random.normal / torch.randn_like), not a uniform distribution")
    if abs(mean) < 0.1 and abs(std - 1.0) < 0.08 and 0.64 < inside < 0.73:
        return
    constant_columns = np.all(log_var == log_var[:1], axis=0).all()
    spread = np.std(r, axis=0)
    if constant_columns:
        cols = log_var[0]
        if close(spread, np.exp(cols), rtol=0.1, atol=0.0):
            raise Mistake(f"the spread of z around z_mean is exp(z_log_var) = sigma^2 (got std {show(spread)} for "
                          f"log_var {show(cols)}): the standard deviation is exp(0.5 * z_log_var)")
        if close(spread, np.abs(cols), rtol=0.1, atol=0.0):
            raise Mistake(f"the spread of z around z_mean is |z_log_var| (got std {show(spread)}): z_log_var is a "
                          "log-variance; the standard deviation is exp(0.5 * z_log_var)")
    elif abs(float(np.std(r / np.exp(log_var))) - 1.0) < 0.08:
        raise Mistake("the spread of z around z_mean is exp(z_log_var) = sigma^2: "
                      "the standard deviation is exp(0.5 * z_log_var)")
    raise Mistake(f"(z - z_mean) / exp(0.5 * z_log_var) should be standard normal (mean 0, std 1, 68% within "
                  f"+-1); got mean {mean:.3f}, std {std:.3f}, {100 * inside:.0f}% within +-1")


def gradient_case(seed: int, n: int = 64, dims: int = 2, scale: float = 1.5) -> Case:
    rng = np.random.default_rng(seed)
    return Case(f"seed {seed}, shape [{n}, {dims}]", {
        "z_mean": rng.uniform(-scale, scale, (n, dims)).astype(np.float32),
        "z_log_var": rng.uniform(-scale, scale, (n, dims)).astype(np.float32),
        "weights": rng.normal(size=(n, dims)).astype(np.float32),
    })


def judge_sampling_gradients(inputs, replies, key):
    mu, w = inputs["z_mean"].astype(np.float64), inputs["weights"].astype(np.float64)
    z = get(replies, key, "z", mu.shape)
    missing = get(replies, key, "missing", (2,))
    g_mu = get(replies, key, "grad_mu", mu.shape)
    g_lv = get(replies, key, "grad_logvar", mu.shape)
    if missing.all():
        raise Mistake("no gradient reaches z_mean or z_log_var: z is computed outside the framework's graph "
                      "(numpy, .numpy(), .detach()?), so training could never update the encoder; "
                      "compute z with framework operations")
    if missing[0]:
        raise Mistake("no gradient reaches z_mean (a stop_gradient/.detach() on it?)")
    if missing[1]:
        if np.max(np.abs(z - mu)) < 1e-6:
            raise Mistake("z does not depend on z_log_var: the noise term exp(0.5 * z_log_var) * eps is missing")
        raise Mistake("no gradient reaches z_log_var: the noise term is computed outside the graph "
                      "or detached from z_log_var")
    if not close(g_mu, w, rtol=1e-3, atol=1e-4):
        raise Mistake(f"d z / d z_mean should be 1 for every entry; the gradient of sum(w * z) came back as "
                      f"{show(g_mu)} instead of w = {show(w)}")
    expected = 0.5 * w * (z - mu)          # d/d log_var of mu + exp(log_var / 2) eps = z - mu over 2
    if close(g_lv, expected, rtol=2e-3, atol=2e-4):
        return
    if close(g_lv, 2 * expected, rtol=2e-3, atol=2e-4):
        raise Mistake("d z / d z_log_var is (z - z_mean), twice what z = mu + exp(0.5 * log_var) * eps gives: "
                      "exp(z_log_var) where exp(0.5 * z_log_var) belongs?")
    if np.max(np.abs(g_lv)) < 1e-9:
        raise Mistake("the gradient with respect to z_log_var is zero: the noise term does not depend on it "
                      "inside the graph")
    raise Mistake(f"d z / d z_log_var should be 0.5 * exp(0.5 * z_log_var) * eps = (z - z_mean) / 2; the gradient "
                  f"of sum(w * z) came back as {show(g_lv)}, expected {show(expected)}")


# --------------------------------------------------------------------- KL

def kl_case(seed: int, n: int, dims: int, mu_range=2.0, log_var_range=(-2.0, 1.5), zero=False) -> Case:
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-mu_range, mu_range, (n, dims)).astype(np.float32)
    log_var = rng.uniform(*log_var_range, (n, dims)).astype(np.float32)
    if zero:
        mu, log_var = np.zeros_like(mu), np.zeros_like(log_var)
    label = f"seed {seed}, shape [{n}, {dims}]" + (", all zeros" if zero else "")
    return Case(label, {"z_mean": mu, "z_log_var": log_var})


def kl_variants(mu, log_var) -> list[tuple[np.ndarray, str]]:
    """Known wrong answers and what they tell the student."""
    e = reference.gaussian_kl(mu, log_var, reduce="none")
    per_dim = -0.5 * (1 + log_var - mu**2 - np.exp(log_var))
    return [
        (2 * e, "the KL term is twice too large: did you drop the 1/2 in -1/2 * sum(1 + log_var - mu^2 - exp(log_var))?"),
        (-e, "the KL term has the wrong sign: KL is never negative; it is -1/2 * sum(1 + log_var - mu^2 - exp(log_var))"),
        (-2 * e, "the KL term has the wrong sign and is twice too large: -1/2 * sum(1 + log_var - mu^2 - exp(log_var))"),
        (0.5 * e, "the KL term is half what it should be: the factor is 1/2, once"),
        (-0.5 * np.sum(1 + log_var - mu**2 - np.exp(0.5 * log_var), axis=-1),
         "the variance is exp(log_var), not exp(0.5 * log_var), in the KL formula"),
        (-0.5 * np.sum(1 + log_var - np.abs(mu) - np.exp(log_var), axis=-1),
         "the mean enters the KL squared: mu^2, not mu"),
        (-0.5 * np.sum(1 + log_var - mu**2 - log_var, axis=-1),
         "the variance term is exp(log_var), not log_var"),
        (per_dim.sum(axis=0), "summed over the batch (axis 0) instead of the latent dimensions: sum over the last axis"),
    ]


def judge_kl(inputs, replies, key):
    mu = inputs["z_mean"].astype(np.float64)
    log_var = inputs["z_log_var"].astype(np.float64)
    n, dims = mu.shape
    expected = reference.gaussian_kl(mu, log_var, reduce="none")
    got = get(replies, key, "kl")
    again = get(replies, key, "kl_again")
    if got.shape != again.shape or not np.array_equal(got, again):
        raise Mistake("two calls with the same input gave different answers: the KL must not be random or keep state")
    if got.shape in [(n, 1), (1, n)] and n > 1:
        got = got.reshape(n)
    if got.size == 1 and n > 1:
        value = float(got.reshape(()))
        if np.isclose(value, expected.sum(), rtol=1e-4) and np.isclose(value, expected.mean(), rtol=1e-4):
            raise Mistake(f"one number for the whole batch (its sum or its mean, {value:.4g}): return one KL value "
                          f"per example, shape [{n}]; the training loop takes the mean")
        if np.isclose(value, expected.sum(), rtol=1e-4):
            raise Mistake(f"one number for the whole batch (its sum, {value:.4g}): return one KL value per example, "
                          f"shape [{n}]; the training loop takes the mean")
        if np.isclose(value, expected.mean(), rtol=1e-4):
            raise Mistake(f"one number for the whole batch (its mean, {value:.4g}): return one KL value per example, "
                          f"shape [{n}]; the training loop takes the mean")
        raise Mistake(f"one number ({value:.4g}) came back: return one KL value per example, shape [{n}]")
    if got.shape == (n, dims) and dims > 1:
        raise Mistake(f"one value per latent dimension (shape [{n}, {dims}]): sum over the latent dimensions "
                      f"(the last axis) to get one value per example, shape [{n}]")
    if n == 1 and got.shape == ():
        got = got.reshape(1)
    if got.shape != expected.shape:
        for variant, hint in kl_variants(mu, log_var):
            if got.shape == variant.shape and close(got, variant, rtol=1e-3, atol=1e-4):
                raise Mistake(hint)
        raise Mistake(f"expected one KL value per example, shape [{n}]; got shape {list(got.shape)}")
    if close(got, expected, rtol=1e-4, atol=1e-5):
        return
    for variant, hint in kl_variants(mu, log_var):
        if variant.shape == got.shape and close(got, variant, rtol=1e-3, atol=1e-4):
            raise Mistake(hint)
    raise Mistake(f"expected KL values {show(expected)}, got {show(got)}")


# --------------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainingSetup:
    """The short training of the convergence check and its pass mark.

    Measured on a 2-core CPU with seeds 0-2 (about 6 s in PyTorch, 12 s in
    Keras): the solution's parts reach a held-out neg-ELBO of 215-219 nats
    per image; a KL with the wrong sign diverges (NaN or above 9e4). A larger
    rate (3e-3 on 1,200 digits) let both sit at the collapsed posterior
    (KL = 0, about 213), where the wrong sign goes unnoticed.
    """

    n_train: int = 2000
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    offset: int = 0              # first training image taken from the embedded subset
    threshold: float = 300.0     # held-out neg-ELBO per image (nats); untrained: about 543


def _embedded():
    from ...data.mnist import embedded_subset

    data = embedded_subset()
    to01 = lambda a: (np.asarray(a, np.float32) / 255.0).reshape(-1, 28, 28)  # noqa: E731
    return to01(data.x_train), to01(data.x_test)


def training_case(setup: TrainingSetup) -> Case:
    x_train, _ = _embedded()
    x = x_train[setup.offset: setup.offset + setup.n_train]
    label = (f"{len(x)} training digits, {setup.epochs} epoch(s), batch {setup.batch_size}, "
             f"Adam {setup.learning_rate:g}, seed {setup.seed}")
    return Case(label, {"x": x, "epochs": np.array(setup.epochs), "batch_size": np.array(setup.batch_size),
                        "learning_rate": np.array(setup.learning_rate), "seed": np.array(setup.seed)})


def held_out_neg_elbo(track: str, weights: dict, seed: int = 0) -> float:
    """Load returned weights into the grader's own trusted model; neg-ELBO on digits the worker never saw."""
    from ..common import VAEConfig, make_trainer

    _, x_test = _embedded()
    trainer = make_trainer(track, VAEConfig(latent_dim=2, seed=seed), "cpu")
    for net in trainer.NETS:
        if net not in weights:
            raise Mistake(f"the trained model came back without its {net}")
        tensors = trainer.weight_tensors(net)
        assign(tensors, unflatten(weights[net], [tuple(t.shape) for t in tensors], f"the trained {net}"))
    return float(trainer.evaluate(x_test, None)["loss"])


def judge_training(track: str, setup: TrainingSetup):
    def judge_one(inputs, replies, key):
        reply = ok_reply(replies, key)
        history = np.asarray(reply.arrays.get("history", np.zeros((0, 3))), np.float64)
        weights = {name: np.asarray(a) for name, a in reply.arrays.items() if name != "history"}
        if any(a.dtype.kind not in "biuf" for a in weights.values()) or history.dtype.kind not in "biuf":
            raise Mistake("the training came back with something other than numbers")
        if not np.all(np.isfinite(history)) or not all(np.all(np.isfinite(a)) for a in weights.values()):
            raise Mistake("the training diverged (NaN or infinite loss or weights) with your Sampling and "
                          "kl_divergence: a KL term with the wrong sign grows without bound")
        loss = held_out_neg_elbo(track, weights)
        if not np.isfinite(loss):
            raise Mistake("the trained model's held-out neg-ELBO is NaN or infinite")
        if loss > setup.threshold:
            trend = f" (training loss per epoch: {show(history[:, 0], 8)})" if history.size else ""
            raise Mistake(f"after training with your Sampling and kl_divergence the held-out neg-ELBO is "
                          f"{loss:.1f} nats per image; the solution's parts reach well below {setup.threshold:.0f} "
                          f"in the same run (untrained: about 543){trend}")
        return f"held-out neg-ELBO {loss:.1f} nats per image after the short training (pass mark {setup.threshold:.0f})"
    return judge_one


# --------------------------------------------------------------------- latent ranges

def ranges_case(seed: int, n: int, dims: int, offset: float = 0.0, singleton: int | None = None) -> Case:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    labels[:10] = rng.permutation(10)           # every class present
    if singleton is not None:
        labels[labels == singleton] = (singleton + 1) % 10
        labels[rng.integers(n)] = singleton
    z = (rng.normal(size=(n, dims)) * 2 + labels[:, None] * 0.3 + offset).astype(np.float32)
    label = f"seed {seed}, {n} codes of dimension {dims}" + (
        f", digit {singleton} only once" if singleton is not None else "") + (
        ", all codes below zero" if offset < 0 else "")
    return Case(label, {"z": z, "labels": labels.astype(np.int64)})


def judge_ranges(inputs, replies, key):
    z, labels = inputs["z"].astype(np.float64), inputs["labels"]
    expected = reference.latent_ranges(z, labels)
    dims = z.shape[1]
    got = get(replies, key, "ranges")
    if got.shape != expected.shape:
        for axes in [(1, 0, 2), (0, 2, 1), (2, 1, 0), (1, 2, 0), (2, 0, 1)]:
            if got.shape == np.transpose(expected, axes).shape and close(got, np.transpose(expected, axes)):
                raise Mistake(f"the axes are in another order: expected shape [10 digits, {dims} latent "
                              f"dimensions, 2 (min, max)], got {list(got.shape)}")
        raise Mistake(f"expected shape [10, {dims}, 2] (digit, latent dimension, (min, max)); got {list(got.shape)}")
    if close(got, expected):
        return
    if close(got, expected[..., ::-1]):
        raise Mistake("min and max are swapped: the last axis is (min, max)")
    if dims == 2 and close(got, np.swapaxes(expected, 1, 2)):
        raise Mistake("the last two axes are swapped: ranges[digit, dim] should be (min, max) of that "
                      "dimension; you gave ranges[digit, 0] = both minima")
    if close(got, np.stack([np.minimum(expected[..., 0], 0), np.maximum(expected[..., 1], 0)], -1)):
        raise Mistake("the ranges include 0 where the codes never reach it: start min/max from the data "
                      "(or +-infinity), not from 0")
    wrong = np.argwhere(~np.isclose(got, expected, rtol=1e-4, atol=1e-4))
    c, d, k = wrong[0]
    raise Mistake(f"digit {c}, dimension {d}: expected {'max' if k else 'min'} {expected[c, d, k]:.4g}, "
                  f"got {got[c, d, k]:.4g}")


# --------------------------------------------------------------------- conditioning

def condition_case(seed: int, n: int, width: int, n_classes: int = 10) -> Case:
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, width)).astype(np.float32)
    labels = rng.integers(0, n_classes, n).astype(np.int64)
    return Case(f"seed {seed}, features [{n}, {width}], {n_classes} classes",
                {"h": h, "labels": labels, "n_classes": np.array(n_classes)})


def judge_condition(inputs, replies, key):
    h, labels, k = inputs["h"].astype(np.float64), inputs["labels"], int(inputs["n_classes"])
    onehot = np.eye(k)[labels]
    expected = np.concatenate([h, onehot], axis=-1)
    n, width = h.shape
    got = get(replies, key, "out")
    again = get(replies, key, "out_again")
    if not np.array_equal(got, again):
        raise Mistake("two calls with the same input gave different answers")
    if got.shape == expected.shape:
        if close(got, expected):
            return
        if close(got, np.concatenate([onehot, h], axis=-1)):
            raise Mistake("the one-hot digit comes first: put the features first, then the one-hot digit "
                          "(the trusted encoder and decoder expect that order)")
        raise Mistake(f"expected the features followed by the one-hot digit, e.g. row 0 = {show(expected[0], 8)}, "
                      f"got {show(got[0], 8)}")
    if got.shape == (n, width + 1):
        raise Mistake(f"the output has {width + 1} columns: the digit went in as a number; append its one-hot "
                      f"vector ({k} columns)")
    if got.shape == (n, width + 10) and k != 10:
        raise Mistake(f"the one-hot vector has 10 columns but n_classes is {k}: use the n_classes argument")
    if got.shape == (2 * n, width) or got.shape[0] != n:
        raise Mistake(f"expected shape [{n}, {width + k}] (one row per example); got {list(got.shape)}: "
                      "concatenate along the last axis")
    raise Mistake(f"expected shape [{n}, {width + k}] (features then one-hot digit); got {list(got.shape)}")


# --------------------------------------------------------------------- the assignments

VISIBLE_TRAINING = TrainingSetup()


def visible_checks(track: str) -> list[Check]:
    return [
        make_check("Sampling: z = z_mean + exp(0.5 * z_log_var) * eps with eps ~ N(0, 1)", "sampling", 3,
                   "sampling",
                   [sampling_case(11, 4000, [-1.2, 0.7]), sampling_case(12, 3000, [1.0, -0.4, -2.0])],
                   judge_sampling_stats),
        make_check("Sampling: gradients reach z_mean and z_log_var (reparameterization trick)", "sampling", 2,
                   "sampling_grad", [gradient_case(13), gradient_case(14, 32, 3)],
                   judge_sampling_gradients),
        make_check("KL divergence: one value per example, equal to the formula", "kl", 3, "kl",
                   [kl_case(21, 16, 2), kl_case(22, 33, 2), kl_case(23, 8, 5)], judge_kl),
        make_check("Training with your Sampling and KL lowers the held-out neg-ELBO", "kl", 3, "train",
                   lambda: [training_case(VISIBLE_TRAINING)], judge_training(track, VISIBLE_TRAINING), slow=True),
        make_check("Latent ranges: per digit and dimension, (min, max)", "latent_ranges", 2,
                   "latent_ranges", [ranges_case(31, 500, 2), ranges_case(32, 300, 3)], judge_ranges),
        make_check("CVAE conditioning: features followed by the one-hot digit", "condition", 2,
                   "condition", [condition_case(41, 6, 16), condition_case(42, 12, 3)], judge_condition),
    ]
