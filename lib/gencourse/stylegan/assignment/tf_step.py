"""The training-step check's networks and trusted step in Keras/TensorFlow (torch_step's, the same contract).

Images and noise are NHWC tensors; a network's weights are its trainable variables (w_avg is not one).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .. import tf_models as km  # noqa: E402
from .step_checks import GS_OFFSET, PERTURB, held  # noqa: E402


class TrustedGenerator(km.Generator):
    """The package's network, called from this module (see torch_step.TrustedGenerator)."""

    def call(self, z, z2=None, crossover=None, psi=1.0, cutoff=None, noise=None, update_w_avg=False, training=None):
        return super().call(z, z2, crossover, psi, cutoff, noise, update_w_avg, training)


class TrustedDiscriminator(km.Discriminator):
    def call(self, x, training=None):
        return super().call(x, training)


def make_nets(cfg: dict, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    g_args = dict(resolution=cfg["resolution"], z_dim=cfg["z_dim"], w_dim=cfg["z_dim"],
                  mapping_layers=cfg["mapping_layers"], fmap_base=cfg["fmap_base"], fmap_max=cfg["fmap_max"])
    nets = {"G": TrustedGenerator(**g_args), "Gs": TrustedGenerator(**g_args),
            "D": TrustedDiscriminator(cfg["resolution"], fmap_base=cfg["fmap_base"], fmap_max=cfg["fmap_max"])}
    r = cfg["resolution"]
    for name in ("G", "Gs"):
        nets[name](tf.zeros((1, cfg["z_dim"])), noise=[tf.zeros(s) for s in _noise_shapes(r)])
    nets["D"](tf.zeros((1, r, r, 1)))
    rng = np.random.default_rng(seed)     # off the initial point, where the constant's AdaIN divides by sqrt(eps)
    for p, e in zip(tensors(nets["G"]), tensors(nets["Gs"])):
        moved = p.numpy() + PERTURB * rng.standard_normal(p.shape).astype(np.float32)
        p.assign(moved)
        e.assign(moved + GS_OFFSET * np.sqrt(np.mean(moved ** 2)) * rng.standard_normal(p.shape).astype(np.float32))
    return nets


def _noise_shapes(resolution: int) -> list:
    from ..common import noise_shapes

    return noise_shapes(resolution, 1)


def tensors(net) -> list:
    return list(net.trainable_variables)


def names(net) -> list[str]:
    return [v.path for v in net.trainable_variables]


def images(x):
    return tf.constant(np.asarray(x, np.float32))


def draw(inputs: dict, phase: str, it: int) -> tuple:
    """(z1, z2, crossover, noise) of one phase ("d" or "g") of iteration `it`, as the student's step gets them."""
    key = f"{phase}{it}"
    count = int(np.asarray(inputs["n_noise"]).reshape(()))
    return (images(inputs[f"z1_{key}"]), images(inputs[f"z2_{key}"]),
            int(np.asarray(inputs[f"crossover_{key}"]).reshape(())),
            [images(inputs[f"noise{i}_{key}"]) for i in range(count)])


def trusted_steps(nets: dict, inputs: dict, v, lr: float, steps=(1, 2)) -> list[dict]:
    """{net: [weights as numpy]} after each step of the variant `v` from the nets' present weights."""
    G, D, Gs = nets["G"], nets["D"], nets["Gs"]
    gp, dp = tensors(G), tensors(D)
    k, gamma, beta = (float(np.asarray(inputs[n]).reshape(())) for n in ("r1_every", "gamma", "ema_beta"))
    store = {"G": [tf.zeros_like(p) for p in gp], "D": [tf.zeros_like(p) for p in dp]}
    out = []
    for it in steps:
        reals = images(inputs[f"reals{it}"])
        z1, z2, crossover, noise = draw(inputs, "d", it)
        fake = tf.stop_gradient(G(z1, z2 if v.mix_d else None, crossover=crossover, noise=noise))
        with tf.GradientTape() as tape:
            loss = km.discriminator_loss(D(reals), D(fake))
            if v.applies_r1(it, int(k)):
                loss = loss + km.r1_penalty(D, reals, gamma * (k if v.r1_times_k else 1.0))
        grads = held(store, "D", _dense(tape.gradient(loss, dp), dp), v.d_keeps_grads)
        for p, g in zip(dp, grads):
            p.assign_sub(lr * g)
        z1, z2, crossover, noise = draw(inputs, "g", it)
        with tf.GradientTape() as tape:
            g_loss = km.generator_loss(D(G(z1, z2 if v.mix_g else None, crossover=crossover, noise=noise)))
        both = _dense(tape.gradient(g_loss, gp + dp), gp + dp)
        g_grads, d_grads = both[:len(gp)], both[len(gp):]
        g_grads = held(store, "G", g_grads, v.g_keeps_grads)
        if v.ema == "before":
            _ema(Gs, G, beta)
        for p, g in zip(gp, g_grads):
            p.assign_sub(lr * g)
        if v.g_moves_d:
            for p, g in zip(dp, d_grads):
                p.assign_sub(lr * g)
        if v.d_keeps_grads and v.g_grads_in_d:
            held(store, "D", d_grads, True)
        if v.ema_weight(beta) is not None:
            _ema(Gs, G, v.ema_weight(beta))
        out.append({name: [p.numpy().copy() for p in tensors(net)] for name, net in nets.items()})
    return out


def _dense(grads, weights) -> list:
    """Zeros where no gradient reached a weight (the tape gives None)."""
    return [tf.zeros_like(w) if g is None else g for g, w in zip(grads, weights)]


def _ema(gs, g, beta: float) -> None:
    for e, p in zip(tensors(gs), tensors(g)):
        e.assign(beta * e + (1.0 - beta) * p)


def _generator_args(size: dict) -> dict:
    return dict(resolution=size["resolution"], z_dim=size["z_dim"], w_dim=size["z_dim"],
                mapping_layers=size["mapping_layers"], fmap_base=size["fmap_base"], fmap_max=size["fmap_max"])


def short_generator(size: dict) -> TrustedGenerator:
    """The package's generator at the short training's size (training_checks.SHORT), its weights made."""
    net = TrustedGenerator(**_generator_args(size))
    net(tf.zeros((1, size["z_dim"])), noise=[tf.zeros(s) for s in _noise_shapes(size["resolution"])])
    return net


def short_nets(size: dict, seed: int) -> dict:
    """G, Gs and D of the short training, seeded (student_run.train starts Gs as a copy of G). Eager: with their
    forwards compiled (one graph per crossover) and a compiled Adam a step took 0.19 s against 0.3, but the worker
    grew by 218 MB against 60 and the tf grading no longer fitted Gradescope's 768 MB container."""
    keras.utils.set_random_seed(seed)
    return {"G": TrustedGenerator(**_generator_args(size)), "Gs": TrustedGenerator(**_generator_args(size)),
            "D": TrustedDiscriminator(size["resolution"], fmap_base=size["fmap_base"], fmap_max=size["fmap_max"])}


def sample(net, z: np.ndarray, noise: list) -> np.ndarray:
    """[n, r, r] images of `net` for latents z and NHWC noise images, no mixing, no truncation."""
    return net(tf.constant(z), noise=[tf.constant(n) for n in noise]).numpy()[..., 0]
