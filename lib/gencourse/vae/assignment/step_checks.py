"""Judges of the training step (grader side): one step from fixed weights, and a short training.

One step: the worker runs the student's step twice with plain SGD from weights
the grader chose, on the trusted networks and losses (the step alone is judged).
With SGD, (before - after) / learning rate is the gradient the step followed;
the grader computes the gradients of the batch means of the reconstruction and
of the KL itself and fits the update as a * reconstruction + b * KL (+ c * the
previous update, on the second step), so it can say which term is missing,
doubled or summed over the batch, or that gradients accumulate across steps.

Training: the student's Sampling, losses and step in the trusted loop (a VAE), and
the student's condition in a CVAE that is otherwise trusted; the grader loads the
returned weights into its own model and measures, on digits the worker never saw, the
VAE's reconstruction and KL per image against bands calibrated on the solution
(`TrainingSetup`), and which digit the package's classifier reads in what the CVAE
draws for each requested one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ...grading import Case, Mistake, get, ok_reply, show, unflatten
from ...weights import assign
from .network_checks import trusted_net, trusted_weights

METRICS = ("loss", "recon", "kl")


# --------------------------------------------------------------------- one step

def step_case(track: str, seed: int, batch: int = 16, n_classes: int = 0, learning_rate: float = 0.01,
              beta: float = 1.0) -> Case:
    """Two batches and the weights to start from; `beta` other than 1 is passed to the step (the KL's weight)."""
    rng = np.random.default_rng(seed)
    shape = (batch, 28, 28, 1) if track == "tf" else (batch, 1, 28, 28)
    x1, x2 = ((rng.uniform(size=shape) > 0.7).astype(np.float32) for _ in range(2))
    labels1, labels2 = (rng.integers(0, max(n_classes, 1), batch).astype(np.int64) for _ in range(2))
    eps = rng.normal(size=2).astype(np.float32)
    label = f"seed {seed}, two batches of {batch}" + (f", {n_classes} classes" if n_classes else "") + \
        f", SGD with learning rate {learning_rate:g}" + (f", beta = {beta:g}" if beta != 1 else "")
    extra = {"beta": np.array(beta, np.float32)} if beta != 1 else {}
    return Case(label, {**extra, "x1": x1, "labels1": labels1, "x2": x2, "labels2": labels2,
                        "n_classes": np.array(n_classes),
                        "eps": eps, "encoder_flat": _flat(trusted_weights(track, "encoder", 2, n_classes, seed)),
                        "decoder_flat": _flat(trusted_weights(track, "decoder", 2, n_classes, seed + 1)),
                        "learning_rate": np.array(learning_rate)})


def _track(track):
    if track == "tf":
        from .. import tf_models as T
    else:
        from .. import torch_models as T
    return T


def _flat(arrays) -> np.ndarray:
    return np.concatenate([a.ravel() for a in arrays]).astype(np.float32)


_STEPS: dict = {}


def step_reference(track: str, inputs: dict) -> dict:
    """The trusted SGD steps from the case's weights: each step's term gradients and batch means."""
    beta = float(inputs.get("beta", 1.0))
    key = (track, inputs["encoder_flat"].tobytes(), inputs["x1"].tobytes(), beta)
    if key in _STEPS:
        return _STEPS[key]
    T, n = _track(track), int(inputs["n_classes"])
    encoder = trusted_net(track, "encoder", 2, n, inputs["eps"])
    decoder = trusted_net(track, "decoder", 2, n, inputs["eps"])
    at_mean = trusted_net(track, "encoder", 2, n, np.zeros_like(inputs["eps"]))     # z = z_mean
    tensors = T.weight_tensors(encoder) + T.weight_tensors(decoder)
    w0 = np.concatenate([inputs["encoder_flat"], inputs["decoder_flat"]]).astype(np.float64)
    lr, out, w = float(inputs["learning_rate"]), {"w0": w0, "n_encoder": inputs["encoder_flat"].size}, w0
    for i in (1, 2):
        assign(tensors, unflatten(w.astype(np.float32), [tuple(t.shape) for t in tensors]))
        data = _data(track, inputs[f"x{i}"], inputs[f"labels{i}"], n)
        g_r, g_k = T.term_gradients(encoder, decoder, *data)
        assign(T.weight_tensors(at_mean), unflatten(w[:out["n_encoder"]].astype(np.float32),
                                                    [tuple(t.shape) for t in T.weight_tensors(at_mean)]))
        g_r_mean, _ = T.term_gradients(at_mean, decoder, *data)
        recon, kl = _means(track, encoder, decoder, data)
        out.update({f"g_recon{i}": g_r, f"g_kl{i}": g_k, f"g_recon_mean{i}": g_r_mean,
                    f"metrics{i}": np.array([recon + beta * kl, recon, kl])})
        w = w - lr * (g_r + beta * g_k)
    _STEPS[key] = out
    return out


def _data(track, x, labels, n_classes) -> tuple:
    """The arguments after (encoder, decoder) of the track's per_example_losses / term_gradients."""
    if track == "tf":
        import tensorflow as tf

        x = tf.constant(x)
        return ((x, tf.constant(labels, tf.int32)) if n_classes else x,)
    import torch

    return torch.as_tensor(x), torch.as_tensor(labels) if n_classes else None


def _means(track, encoder, decoder, data) -> tuple[float, float]:
    T = _track(track)
    if track == "tf":
        recon, kl = T.per_example_losses(encoder, decoder, *data)
        return float(np.mean(recon)), float(np.mean(kl))
    import torch

    with torch.no_grad():
        recon, kl = T.per_example_losses(encoder, decoder, *data)
    return float(recon.mean()), float(kl.mean())


def _near(a, b, tol=0.02) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def judge_update(before, after, lr, g_recon, g_kl, n_encoder, batch, previous=None, g_recon_mean=None,
                 beta: float = 1.0) -> None:
    """A Mistake unless after = before - lr * (g_recon + beta * g_kl); names the pattern of the update otherwise.
    `g_recon_mean`: the reconstruction's gradient when the decoder gets z_mean instead of z."""
    g_kl_weighted = beta * g_kl
    d = (before - after) / lr
    scale = np.linalg.norm(g_recon + g_kl_weighted)
    if np.linalg.norm(d) < 1e-6 * scale:
        raise Mistake("the weights did not change: no optimizer step was applied (apply_gradients / "
                      "optimizer.step()), or the loss it differentiates has no gradient")
    if g_recon_mean is not None and np.linalg.norm(d - g_recon - g_kl_weighted) > 1e-2 * np.linalg.norm(d) and \
            np.linalg.norm(d - g_recon_mean - g_kl_weighted) <= 1e-2 * np.linalg.norm(d):
        raise Mistake("the step follows the gradient of a loss whose reconstruction decodes z_mean, not the "
                      "sampled z: decode the z the encoder returns (the reparameterized sample)")
    columns = [g_recon, g_kl] + ([previous] if previous is not None else [])
    # A term without gradient here (a decoder saturated by the first step) says nothing about its weight.
    used = [i for i, col in enumerate(columns) if np.linalg.norm(col) > 1e-9 * scale]
    coef = np.array([1.0, beta, 0.0][:len(columns)])
    coef[used], *_ = np.linalg.lstsq(np.stack([columns[i] for i in used], 1), d, rcond=None)
    residual = np.linalg.norm(d - np.stack(columns, 1) @ coef) / np.linalg.norm(d)
    if residual > 1e-2:
        enc, dec = np.linalg.norm(d[:n_encoder]), np.linalg.norm(d[n_encoder:])
        if dec < 1e-6 * scale or enc < 1e-6 * scale:
            moved = "encoder" if dec < 1e-6 * scale else "decoder"
            raise Mistake(f"only the {moved}'s weights moved: apply the gradients to the weights of both networks")
        raise Mistake(f"the step's update is not made of this batch's reconstruction and KL gradients (what "
                      f"they leave unexplained: {residual:.0%} of it): a step of the given optimizer on the "
                      "batch mean of the negative ELBO is expected")
    a, b = coef[0], coef[1]
    c = coef[2] if previous is not None else 0.0
    if previous is not None and _near(c, 1) and _near(a, 1) and _near(b, beta):
        raise Mistake("the second step moved the weights by this batch's gradient plus the first batch's: the "
                      "gradients accumulate from step to step (optimizer.zero_grad() before backward())")
    if _near(c, 0) and _near(a, 1) and _near(b, beta):
        return
    if _near(c, 0):
        for (ea, eb), hint in [
            *([((1, 1), f"the KL term's weight is 1 where beta = {beta:g}: the step ignores its beta argument "
                        "(the loss is reconstruction + beta * KL)")] if beta != 1 else []),
            ((1, 0), "the step follows the reconstruction term's gradient only: the KL term does not reach "
                     "the loss it differentiates"),
            ((0, beta), "the step follows the KL term's gradient only: the reconstruction term does not reach "
                     "the loss it differentiates"),
            ((-1, -beta), "the step goes uphill: it follows minus the gradient of the negative ELBO (a sign flipped)"),
            ((batch, batch * beta), f"the update is {batch} times the gradient of the batch mean, with a batch of "
                             f"{batch}: the loss is summed over the batch instead of averaged"),
        ]:
            if _near(a, ea) and _near(b, eb):
                raise Mistake(hint)
    raise Mistake(f"the step moves the weights by {a:.3g} times the reconstruction term's gradient and {b:.3g} "
                  f"times the KL term's" + (f" (plus {c:.3g} times the previous step's update)" if not _near(c, 0)
                                          else "") + f"; expected 1 and {beta:g}: the batch mean of reconstruction + "
                  + ("KL" if beta == 1 else f"beta * KL with beta = {beta:g}"))


def judge_metrics(got, present, want, step: int, keras_running: np.ndarray | None) -> None:
    missing = [m for m, p in zip(METRICS, present) if not p]
    if missing:
        raise Mistake(f"the dict the step returns has no {', '.join(repr(m) for m in missing)}: return "
                      "'loss', 'recon' and 'kl' (batch means, in nats per image)")
    if not np.all(np.isfinite(got)):
        raise Mistake(f"the metrics returned at step {step} are not all finite numbers: {show(got)}")
    target = keras_running if keras_running is not None else want
    if np.allclose(got, target, rtol=1e-3, atol=1e-3):
        return
    if keras_running is not None and np.allclose(got, want, rtol=1e-3, atol=1e-3):
        raise Mistake("the second step returned that batch's losses, not the trackers' running means since "
                      "the epoch began: update_state() each tracker and return their result()")
    if np.allclose(got[[0, 2, 1]], target, rtol=1e-3, atol=1e-3):
        raise Mistake("'recon' and 'kl' are swapped in the returned metrics")
    raise Mistake(f"after step {step} the metrics (loss, recon, kl) came back as {show(got)}; expected "
                  f"{show(target)} (the batch means of the negative ELBO and its two terms)")


def judge_step(track: str):
    def judge_one(inputs, replies, key):
        ref = step_reference(track, inputs)
        lr, n_enc, batch = float(inputs["learning_rate"]), ref["n_encoder"], len(inputs["x1"])
        w1 = get(replies, key, "w1", ref["w0"].shape)
        beta = float(inputs.get("beta", 1.0))
        judge_update(ref["w0"], w1, lr, ref["g_recon1"], ref["g_kl1"], n_enc, batch,
                     g_recon_mean=ref["g_recon_mean1"], beta=beta)
        w2 = get(replies, key, "w2", ref["w0"].shape)
        judge_update(w1, w2, lr, ref["g_recon2"], ref["g_kl2"], n_enc, batch, previous=(ref["w0"] - w1) / lr,
                     g_recon_mean=ref["g_recon_mean2"], beta=beta)
        reply = ok_reply(replies, key)
        for step in (1, 2):
            running = (ref["metrics1"] + ref["metrics2"]) / 2 if track == "tf" and step == 2 else None
            judge_metrics(np.asarray(reply.arrays[f"metrics{step}"], np.float64),
                          np.asarray(reply.arrays[f"present{step}"], np.float64), ref[f"metrics{step}"], step, running)
    return judge_one


# --------------------------------------------------------------------- training

@dataclass(frozen=True)
class TrainingSetup:
    """A short training in the trusted loop and its pass marks (nats per held-out image, share of digits).

    `conditional`: a CVAE with the student's condition (and the trusted sampling, losses and
    step), judged by the digits it draws; otherwise a VAE with the student's Sampling, losses
    and step, judged by the held-out reconstruction and KL. The bands hold the solution's
    values over seeds and tracks with a margin (benchmarks/training_bands.py, seeds 0-19,
    docs/results.md): the solution 186-203 nats of reconstruction and a KL of 0.70-4.11 (Keras
    188.8-201.5 and 1.16-4.11, PyTorch 186.3-202.9 and 0.70-3.74); a KL without gradient (its
    values right) a KL of 15-295; a reconstruction without gradient 543-546; a deterministic
    Sampling a reconstruction of 269-353. The KL has no lower mark: 250 steps are near the
    edge of posterior collapse (PyTorch's seed 18 reaches 0.70; the solution's parts at a
    learning rate of 3e-3 collapse on 3 of 20 seeds, KL 0.00-0.10 and reconstruction
    204.6-205.2, the mean image's; before every probe was reseeded, a Keras Sampling's own
    noise stream moved the KL from 0.06 to 3.51 between runs), as a reconstruction averaged
    over pixels does (KL 0.00, 206.7), which costs the reconstruction's own checks instead. The CVAE's setup (1 epoch): the solution's condition
    99-100 % of the requested digits over seeds 0-19 (Keras), one-hot first 5-10 %.
    """

    conditional: bool = False
    n_train: int = 4000
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    recon: tuple = (150.0, 215.0)     # held-out reconstruction per image
    kl: tuple = (0.0, 10.0)           # held-out KL per image (no lower mark: see above)
    accuracy: float = 0.8             # share of generated digits read as the requested one


@functools.lru_cache(maxsize=1)
def _embedded():
    from ...data.mnist import embedded_subset

    data = embedded_subset()
    to01 = lambda a: (np.asarray(a, np.float32) / 255.0).reshape(-1, 28, 28)  # noqa: E731
    return to01(data.x_train), data.y_train, to01(data.x_test), data.y_test


def training_case(setup: TrainingSetup) -> Case:
    x, y, _, _ = _embedded()
    label = (f"a {'CVAE' if setup.conditional else 'VAE'} on {setup.n_train} training digits, {setup.epochs} "
             f"epoch(s), batch {setup.batch_size}, Adam {setup.learning_rate:g}, seed {setup.seed}")
    inputs = {"x": x[:setup.n_train], "epochs": np.array(setup.epochs), "batch_size": np.array(setup.batch_size),
              "learning_rate": np.array(setup.learning_rate), "seed": np.array(setup.seed)}
    if setup.conditional:
        inputs["labels"] = y[:setup.n_train].astype(np.int64)
    return Case(label, inputs)


_CLASSIFIER: list = []


def classifier():
    """The package's kernel digit classifier, fitted once per grading process on 1,000 embedded digits
    (93 % right on the 1,000 held-out ones, in about a second; 4,000 digits: 96 %, in five)."""
    if not _CLASSIFIER:
        from ...metrics.classifier import KernelDigitClassifier

        x, y, _, _ = _embedded()
        _CLASSIFIER.append(KernelDigitClassifier().fit(x[-1000:], y[-1000:]))
    return _CLASSIFIER[0]


def trained_model(track: str, reply, conditional: bool, seed: int = 0):
    """The grader's own VAE or CVAE with the weights the worker returned."""
    from ..common import VAEConfig, make_trainer

    history = np.asarray(reply.arrays.get("history", np.zeros((0, 3))), np.float64)
    weights = {name: np.asarray(a) for name, a in reply.arrays.items() if name != "history"}
    if not np.all(np.isfinite(history)) or not all(np.all(np.isfinite(a)) for a in weights.values()):
        raise Mistake("the training diverged (NaN or infinite losses or weights) with your parts")
    trainer = make_trainer(track, VAEConfig(latent_dim=2, conditional=conditional, seed=seed), "cpu")
    hint = (" (the CVAE's first dense layers take the features and the one-hot digit: does `condition` return "
            "[batch, width + n_classes]?)" if conditional else "")
    for net in trainer.NETS:
        if net not in weights:
            raise Mistake(f"the trained model came back without its {net}")
        tensors = trainer.weight_tensors(net)
        assign(tensors, unflatten(weights[net], [tuple(t.shape) for t in tensors], f"the trained {net}", hint))
    return trainer


def judge_training(track: str, setup: TrainingSetup):
    """The VAE's held-out terms against the bands: which term is off, in what the trained model does."""
    def judge_one(inputs, replies, key):
        _, _, x_test, y_test = _embedded()
        m = trained_model(track, ok_reply(replies, key), False, setup.seed).evaluate(x_test, y_test)
        seen = f"held-out reconstruction {m['recon']:.1f} and KL {m['kl']:.2f} nats per image"
        for term, name, part in (("recon", "reconstruction", "reconstruction_loss"), ("kl", "KL", "kl_divergence")):
            lo, hi = getattr(setup, term)
            if not lo <= m[term] <= hi:
                raise Mistake(f"{seen}: the {name} term is off, {'above' if m[term] > hi else 'below'} the band "
                              f"[{lo:g}, {hi:g}] the solution's parts stay in, in the same training (the parts "
                              f"trained: Sampling, {part} and the other loss, and the step; their own checks "
                              "tell them apart)")
        return seen
    return judge_one


def judge_generation(track: str, setup: TrainingSetup):
    """The CVAE trained with the student's condition (everything else trusted): does it draw the digit asked for?"""
    def judge_one(inputs, replies, key):
        trainer = trained_model(track, ok_reply(replies, key), True, setup.seed)
        wanted = np.repeat(np.arange(10), 50)
        z = np.random.default_rng(setup.seed).standard_normal((len(wanted), 2)).astype(np.float32)
        read = classifier().predict(trainer.decode(z, wanted))
        accuracy = float(np.mean(read == wanted))
        per_digit = [float(np.mean(read[wanted == d] == d)) for d in range(10)]
        seen = f"the classifier reads the requested digit in {accuracy:.0%} of the CVAE's samples"
        if accuracy < setup.accuracy:
            raise Mistake(f"{seen} (per digit {show(per_digit, 10)}), the solution's condition at least "
                          f"{setup.accuracy:.0%}: the CVAE trained with your condition (and the trusted parts "
                          "otherwise) does not draw the digit it is asked for")
        return seen
    return judge_one
