"""CycleGAN's losses: the numpy oracles on analytic values, both tracks against the oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gencourse.cyclegan import torch_models as tm
from gencourse.cyclegan.common import generator_terms
from gencourse.reference import cyclegan as ref

MODES = ["lsgan", "bce"]


def rel_err(a, b) -> float:
    a, b = float(np.asarray(a)), float(np.asarray(b))
    return abs(a - b) / max(abs(b), 1e-12)


def patches(rng, n=2, size=30, scale=2.0):
    """A batch of PatchGAN outputs (logits), NHWC."""
    return rng.normal(0.0, scale, (n, size, size, 1)).astype(np.float32)


def images(rng, n=2, size=16):
    return rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


# ---------------------------------------------------------------- the oracle, analytically

def test_perfect_cycle_and_identity_cost_nothing(rng):
    x = images(rng)
    assert ref.cycle_consistency_loss(x, x) == 0.0
    assert ref.identity_loss(x, x) == 0.0


def test_cycle_and_identity_weights():
    real, rec = np.zeros((1, 4, 4, 3)), np.full((1, 4, 4, 3), -0.3)
    assert ref.cycle_consistency_loss(real, rec) == pytest.approx(10 * 0.3)
    assert ref.identity_loss(real, rec) == pytest.approx(0.5 * 10 * 0.3)
    assert ref.cycle_consistency_loss(real, rec, lambda_cycle=1.0) == pytest.approx(0.3)


def test_lsgan_values():
    ones, zeros = np.ones((2, 30, 30, 1)), np.zeros((2, 30, 30, 1))
    assert ref.discriminator_loss(ones, zeros, "lsgan") == 0.0          # a perfect D
    assert ref.discriminator_loss(zeros, ones, "lsgan") == 1.0          # 1/2 (1 + 1)
    assert ref.generator_adversarial_loss(zeros, "lsgan") == 1.0
    assert ref.generator_adversarial_loss(ones, "lsgan") == 0.0
    assert ref.discriminator_loss(np.full((1, 3), 0.5), np.full((1, 3), 0.5), "lsgan") == 0.25


def test_bce_values():
    zeros = np.zeros((2, 30, 30, 1))
    assert ref.generator_adversarial_loss(zeros, "bce") == pytest.approx(math.log(2))
    # halved: 1/2 (log 2 + log 2)
    assert ref.discriminator_loss(zeros, zeros, "bce") == pytest.approx(math.log(2))
    # stable far out: sigmoid(1000) = 1 costs nothing as real, 1000 nats as fake
    assert ref.bce_with_logits(np.array([1000.0]), np.array([1.0]))[0] == 0.0
    assert ref.bce_with_logits(np.array([1000.0]), np.array([0.0]))[0] == pytest.approx(1000.0)
    z = np.linspace(-5, 5, 11)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(ref.bce_with_logits(z, np.ones_like(z)), -np.log(p), rtol=1e-12)


def test_unknown_gan_mode_is_an_error():
    with pytest.raises(ValueError, match="gan_mode"):
        ref.generator_adversarial_loss(np.zeros(3), "wgan")


def test_generator_objective_is_the_sum_of_its_terms(rng):
    d1, d2 = patches(rng), patches(rng)
    ra, rb, ca, cb, sa, sb = (images(rng) for _ in range(6))
    parts = (ref.generator_adversarial_loss(d1) + ref.generator_adversarial_loss(d2)
             + ref.cycle_consistency_loss(ra, ca) + ref.cycle_consistency_loss(rb, cb))
    assert ref.generator_objective(d1, d2, ra, ca, rb, cb) == pytest.approx(parts)
    idt = ref.identity_loss(ra, sa) + ref.identity_loss(rb, sb)
    assert ref.generator_objective(d1, d2, ra, ca, rb, cb, sa, sb) == pytest.approx(parts + idt)
    assert ref.generator_objective(d1, d2, ra, ca, rb, cb, sa, sb, lambda_identity=0) == pytest.approx(parts)


# ---------------------------------------------------------------- PyTorch against the oracle

def _t(x):
    return torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())


@pytest.mark.parametrize("mode", MODES)
def test_torch_adversarial_losses_match_oracle(rng, mode):
    real, fake = patches(rng), patches(rng)
    assert rel_err(tm.generator_adversarial_loss(_t(fake), mode),
                   ref.generator_adversarial_loss(fake, mode)) < 1e-5
    assert rel_err(tm.discriminator_loss(_t(real), _t(fake), mode),
                   ref.discriminator_loss(real, fake, mode)) < 1e-5


def test_torch_cycle_identity_objective_match_oracle(rng):
    d1, d2 = patches(rng), patches(rng)
    ra, rb, ca, cb, sa, sb = (images(rng) for _ in range(6))
    assert rel_err(tm.cycle_consistency_loss(_t(ra), _t(ca)), ref.cycle_consistency_loss(ra, ca)) < 1e-5
    assert rel_err(tm.identity_loss(_t(rb), _t(sb)), ref.identity_loss(rb, sb)) < 1e-5
    for mode in MODES:
        got = sum(generator_terms(lambda name: getattr(tm, name), *map(_t, (d1, d2, ra, ca, rb, cb)),
                                  gan_mode=mode, lambda_cycle=10.0, lambda_identity=5.0,
                                  same_a=lambda: _t(sa), same_b=lambda: _t(sb)).values())
        assert rel_err(got, ref.generator_objective(d1, d2, ra, ca, rb, cb, sa, sb, gan_mode=mode)) < 1e-5


def test_torch_discriminator_loss_gradient_lsgan(rng):
    """d/dD(fake) of 1/2 mean(D(fake)^2) is D(fake) / N: the halving reaches the gradient."""
    fake = torch.from_numpy(patches(rng, n=1, size=5)).requires_grad_()
    tm.discriminator_loss(torch.ones_like(fake), fake, "lsgan").backward()
    np.testing.assert_allclose(fake.grad.numpy(), fake.detach().numpy() / fake.numel(), rtol=1e-6)


# ---------------------------------------------------------------- Keras against the oracle

@pytest.fixture(scope="module")
def tfm():
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    from gencourse.cyclegan import tf_models
    return tf_models


@pytest.mark.parametrize("mode", MODES)
def test_keras_adversarial_losses_match_oracle(rng, tfm, mode):
    real, fake = patches(rng), patches(rng)
    assert rel_err(tfm.generator_adversarial_loss(fake, mode),
                   ref.generator_adversarial_loss(fake, mode)) < 1e-5
    assert rel_err(tfm.discriminator_loss(real, fake, mode), ref.discriminator_loss(real, fake, mode)) < 1e-5


def test_keras_bce_is_the_tutorials_loss(rng, tfm):
    """The tutorial's BinaryCrossentropy(from_logits=True) gives the same number."""
    import keras

    fake = patches(rng)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    assert rel_err(tfm.generator_adversarial_loss(fake, "bce"), bce(np.ones_like(fake), fake)) < 1e-5


def test_keras_cycle_identity_objective_match_oracle(rng, tfm):
    d1, d2 = patches(rng), patches(rng)
    ra, rb, ca, cb, sa, sb = (images(rng) for _ in range(6))
    assert rel_err(tfm.cycle_consistency_loss(ra, ca), ref.cycle_consistency_loss(ra, ca)) < 1e-5
    assert rel_err(tfm.identity_loss(rb, sb), ref.identity_loss(rb, sb)) < 1e-5
    for mode in MODES:
        got = sum(generator_terms(lambda name: getattr(tfm, name), d1, d2, ra, ca, rb, cb, gan_mode=mode,
                                  lambda_cycle=10.0, lambda_identity=5.0, same_a=lambda: sa,
                                  same_b=lambda: sb).values())
        assert rel_err(got, ref.generator_objective(d1, d2, ra, ca, rb, cb, sa, sb, gan_mode=mode)) < 1e-5


# ---------------------------------------------------------------- the semantic-consistency loss (CyCADA)

def test_semantic_oracle_is_the_cross_entropy_and_stable():
    logits, labels = np.array([[2.0, 0.0], [0.0, 0.0]]), np.array([0, 1])
    want = -(np.log(np.exp(2) / (np.exp(2) + 1)) + np.log(0.5)) / 2
    assert ref.semantic_consistency_loss(logits, labels) == pytest.approx(want)
    assert ref.semantic_consistency_loss(logits, labels, 3.0) == pytest.approx(3 * want)
    assert ref.semantic_consistency_loss(np.array([[1000.0, -1000.0]]), np.array([1])) == pytest.approx(2000.0)


def test_both_tracks_semantic_losses_match_the_oracle(rng, tfm):
    logits, labels = rng.normal(0, 3, (6, 10)).astype(np.float32), rng.integers(0, 10, 6)
    want = ref.semantic_consistency_loss(logits, labels, 2.0)
    assert rel_err(tm.semantic_consistency_loss(torch.from_numpy(logits), torch.from_numpy(labels), 2.0), want) < 1e-5
    assert rel_err(tfm.semantic_consistency_loss(logits, labels, 2.0), want) < 1e-5
