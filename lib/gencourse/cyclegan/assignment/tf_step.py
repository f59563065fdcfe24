"""The training-step check's networks and loss terms in Keras (as torch_step, NHWC throughout)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .. import tf_models as km  # noqa: E402


def make_nets(cfg: dict, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    c = cfg["channels"]
    return {"G": km.build_resnet_generator(None, c, c, cfg["ngf"], cfg["n_blocks"]),
            "F": km.build_resnet_generator(None, c, c, cfg["ngf"], cfg["n_blocks"]),
            "D_A": km.build_patch_discriminator(None, c, cfg["ndf"], cfg["n_layers"]),
            "D_B": km.build_patch_discriminator(None, c, cfg["ndf"], cfg["n_layers"])}


def tensors(net) -> list:
    return list(net.trainable_variables)


def images(x):
    return tf.constant(np.asarray(x, np.float32))


def linear_classifier(weight, bias):
    """A frozen linear classifier on flattened one-channel images (the check's stand-in for a CNN)."""
    side = int(round(np.sqrt(weight.shape[0])))
    net = keras.Sequential([keras.Input((side, side, 1)), keras.layers.Flatten(), keras.layers.Dense(weight.shape[1])])
    net.layers[-1].set_weights([np.asarray(weight, np.float32), np.asarray(bias, np.float32)])
    net.trainable = False
    return net


def labels(y):
    return tf.constant(np.asarray(y, np.int64))


def translate(net, x, batch: int = 100) -> np.ndarray:
    return np.concatenate([np.asarray(net(images(x[i:i + batch]), training=False)) for i in range(0, len(x), batch)])


def fakes(nets, a, b) -> tuple[np.ndarray, np.ndarray]:
    return translate(nets["F"], b), translate(nets["G"], a)


def _grads(tape, losses: dict, variables) -> dict:
    out = {}
    for name, loss in losses.items():
        grads = tape.gradient(loss, variables)
        out[name] = np.concatenate([np.zeros(int(np.prod(v.shape))) if g is None else np.asarray(g, np.float64).ravel()
                                    for g, v in zip(grads, variables)])
    return out


def gen_terms(nets, a, b, cfg: dict, semantic=None) -> dict:
    """{term: gradient w.r.t. G's then F's weights} (see torch_step.gen_terms); one forward pass, kept by a
    persistent tape, serves every term."""
    G, F, D_A, D_B = (nets[k] for k in ("G", "F", "D_A", "D_B"))
    variables = tensors(G) + tensors(F)
    real_a, real_b = images(a), images(b)
    lam, lam_id, mode = cfg["lambda_cycle"], cfg["lambda_identity"], cfg["gan_mode"]
    adv = km.generator_adversarial_loss
    l1 = lambda x, y: tf.reduce_mean(tf.abs(x - y))  # noqa: E731
    with tf.GradientTape(persistent=True) as tape:
        fake_b, fake_a = G(real_a, training=True), F(real_b, training=True)
        same_a, same_b = F(real_a, training=True), G(real_b, training=True)
        losses = {
            "G_adv": adv(D_B(fake_b, training=True), mode), "F_adv": adv(D_A(fake_a, training=True), mode),
            "cycle_A": lam * l1(F(fake_b, training=True), real_a), "cycle_B": lam * l1(G(fake_a, training=True), real_b),
            "identity_A": lam_id * l1(same_a, real_a), "identity_B": lam_id * l1(same_b, real_b),
            "G_adv_by_D_A": adv(D_A(fake_b, training=True), mode), "F_adv_by_D_B": adv(D_B(fake_a, training=True), mode),
            "identity_A_by_G": lam_id * l1(fake_b, real_a), "identity_B_by_F": lam_id * l1(fake_a, real_b),
        }
        if semantic is not None:
            c_a, c_b, y_a, y_b, weight = semantic
            losses["semantic_A"] = km.semantic_consistency_loss(c_b(fake_b), labels(y_a), weight)
            losses["semantic_B"] = km.semantic_consistency_loss(c_a(fake_a), labels(y_b), weight)
    return _grads(tape, losses, variables)


def disc_terms(nets, a, b, old_a, old_b, fake_a, fake_b, cfg: dict) -> dict:
    """{term: gradient w.r.t. D_A's then D_B's weights} (see torch_step.disc_terms)."""
    D_A, D_B = nets["D_A"], nets["D_B"]
    variables = tensors(D_A) + tensors(D_B)
    mode = cfg["gan_mode"]
    half = lambda d, x, target: 0.5 * km._adversarial(d(images(x), training=True), target, mode)  # noqa: E731
    with tf.GradientTape(persistent=True) as tape:
        losses = {
            "D_A_real": half(D_A, a, 1.0), "D_A_fake": half(D_A, old_a, 0.0),
            "D_B_real": half(D_B, b, 1.0), "D_B_fake": half(D_B, old_b, 0.0),
            "D_A_fake_now": half(D_A, fake_a, 0.0), "D_B_fake_now": half(D_B, fake_b, 0.0),
            "D_A_on_fake_b": half(D_A, old_b, 0.0), "D_B_on_fake_a": half(D_B, old_a, 0.0),
            "D_A_from_F": km.generator_adversarial_loss(D_A(images(fake_a), training=True), mode),
            "D_B_from_G": km.generator_adversarial_loss(D_B(images(fake_b), training=True), mode),
        }
    return _grads(tape, losses, variables)
