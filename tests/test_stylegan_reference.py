"""StyleGAN's numpy oracles and the framework-neutral part, on hand-derived values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gencourse.reference import stylegan as ref
from gencourse.stylegan import common


# ---------------------------------------------------------------- pixel norm

def test_pixel_norm_gives_unit_mean_square(rng):
    z = rng.normal(0, 5, (6, 32))
    y = ref.pixel_norm(z)
    np.testing.assert_allclose(np.mean(y**2, axis=1), 1.0, rtol=1e-7)
    np.testing.assert_allclose(ref.pixel_norm(3.0 * z), y, rtol=1e-7)   # scale-invariant
    np.testing.assert_allclose(y, z / np.sqrt(np.mean(z**2, axis=1, keepdims=True)), rtol=1e-7)


def test_pixel_norm_of_zero_stays_zero():
    assert np.all(ref.pixel_norm(np.zeros((2, 4))) == 0)


# ---------------------------------------------------------------- AdaIN

def test_adain_of_a_constant_channel_is_its_bias():
    x = np.full((1, 4, 4, 2), 7.0)
    y = ref.adaptive_instance_norm(x, scale=[[3.0, -0.5]], bias=[[0.25, -2.0]])
    np.testing.assert_array_equal(y[..., 0], 0.25)
    np.testing.assert_array_equal(y[..., 1], -2.0)


def test_adain_uses_the_biased_variance_and_eps():
    # one channel holding +a and -a: mean 0, biased variance a^2 (the unbiased one would be 4a^2/3)
    a, eps, s, b = 0.01, 1e-4, 0.5, 0.1
    x = np.array([a, -a, a, -a]).reshape(1, 2, 2, 1)
    y = ref.adaptive_instance_norm(x, [[s]], [[b]], eps=eps)
    expected = (1 + s) * a / math.sqrt(a**2 + eps) + b
    np.testing.assert_allclose(y.ravel(), [expected, 2 * b - expected] * 2, rtol=1e-12)


def test_adain_output_has_mean_bias_and_std_one_plus_scale(rng):
    x = rng.normal(3.0, 2.0, (3, 8, 8, 5))
    scale, bias = rng.normal(0, 0.5, (3, 5)), rng.normal(0, 1, (3, 5))
    y = ref.adaptive_instance_norm(x, scale, bias)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), bias, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(1, 2)), np.abs(1 + scale), rtol=1e-7)


def test_adain_channel_axis(rng):
    x = rng.normal(size=(2, 6, 5, 3))
    scale, bias = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    nhwc = ref.adaptive_instance_norm(x, scale, bias)
    nchw = ref.adaptive_instance_norm(x.transpose(0, 3, 1, 2), scale, bias, channel_axis=1)
    np.testing.assert_allclose(nchw.transpose(0, 2, 3, 1), nhwc, rtol=1e-12)


# ---------------------------------------------------------------- truncation

@pytest.fixture
def styles(rng):
    return rng.normal(size=(3, 8, 4)), rng.normal(size=(3, 8, 4)), rng.normal(size=4)


def test_truncation_psi_zero_gives_w_avg_and_psi_one_changes_nothing(styles):
    w, _, w_avg = styles
    np.testing.assert_allclose(ref.truncate(w, w_avg, 0.0), np.broadcast_to(w_avg, w.shape))
    np.testing.assert_allclose(ref.truncate(w, w_avg, 1.0), w, rtol=1e-12, atol=1e-15)


def test_truncation_acts_below_the_cutoff_only(styles):
    w, _, w_avg = styles
    y = ref.truncate(w, w_avg, 0.7, cutoff=3)
    np.testing.assert_allclose(y[:, :3], w_avg + 0.7 * (w[:, :3] - w_avg), rtol=1e-12)
    np.testing.assert_allclose(y[:, 3:], w[:, 3:], rtol=1e-12, atol=1e-15)   # coefficient 1
    np.testing.assert_array_equal(ref.truncation_coefficients(5, 0.5, 2), [0.5, 0.5, 1, 1, 1])
    np.testing.assert_array_equal(ref.truncation_coefficients(3, 0.5), [0.5] * 3)


def test_truncation_halves_the_distance_to_the_average(styles):
    w, _, w_avg = styles
    d = np.linalg.norm(ref.truncate(w, w_avg, 0.5) - w_avg, axis=-1)
    np.testing.assert_allclose(d, 0.5 * np.linalg.norm(w - w_avg, axis=-1), rtol=1e-12)


# ---------------------------------------------------------------- style mixing

def test_mixing_crossover_zero_gives_all_w2_and_num_layers_all_w1(styles):
    w1, w2, _ = styles
    np.testing.assert_array_equal(ref.mix_styles(w1, w2, 0), w2)
    np.testing.assert_array_equal(ref.mix_styles(w1, w2, 8), w1)


def test_mixing_layers_before_the_crossover_take_w1(styles):
    w1, w2, _ = styles
    y = ref.mix_styles(w1, w2, 3)
    np.testing.assert_array_equal(y[:, :3], w1[:, :3])
    np.testing.assert_array_equal(y[:, 3:], w2[:, 3:])


def test_mixing_with_one_crossover_per_example(styles):
    w1, w2, _ = styles
    y = ref.mix_styles(w1, w2, np.array([0, 5, 8]))
    np.testing.assert_array_equal(y[0], w2[0])
    np.testing.assert_array_equal(y[1, :5], w1[1, :5])
    np.testing.assert_array_equal(y[1, 5:], w2[1, 5:])
    np.testing.assert_array_equal(y[2], w1[2])
    assert ref.crossover_mask(4, 2, batch=3).tolist() == [[True, True, False, False]] * 3


def test_broadcast_w(rng):
    w = rng.normal(size=(2, 5))
    ws = ref.broadcast_w(w, 4)
    assert ws.shape == (2, 4, 5) and all(np.array_equal(ws[:, i], w) for i in range(4))


# ---------------------------------------------------------------- w average

def test_w_avg_moves_by_one_minus_decay(rng):
    w = rng.normal(size=(16, 4))
    avg = ref.update_w_avg(np.zeros(4), w, 0.995)
    np.testing.assert_allclose(avg, 0.005 * w.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(ref.update_w_avg(avg, ref.broadcast_w(w, 3)),
                               ref.update_w_avg(avg, w))    # [B, L, D]: the first layer's w


def test_w_avg_of_a_constant_w_converges_geometrically():
    w, avg = np.ones((4, 2)), np.zeros(2)
    for _ in range(100):
        avg = ref.update_w_avg(avg, w, 0.99)
    np.testing.assert_allclose(avg, 1 - 0.99**100, rtol=1e-12)


# ---------------------------------------------------------------- minibatch stddev

def test_stddev_group_is_the_largest_divisor_up_to_the_group_size():
    assert [ref.stddev_group(b, 4) for b in (1, 2, 3, 4, 5, 6, 8, 12)] == [1, 2, 3, 4, 1, 3, 4, 4]


def test_minibatch_stddev_analytic():
    # batch 8, groups of 4: example n is in group n % 2. Group 0 holds +-1, group 1 constants.
    x = np.zeros((8, 2, 2, 3))
    x[[0, 4]] = 1.0
    x[[2, 6]] = -1.0
    x[1::2] = 5.0
    y = ref.minibatch_stddev(x, 4)
    assert y.shape == (8, 2, 2, 4)
    np.testing.assert_array_equal(y[..., :3], x)
    np.testing.assert_allclose(y[0::2, ..., 3], math.sqrt(1 + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(y[1::2, ..., 3], math.sqrt(1e-8), rtol=1e-12)


def test_minibatch_stddev_channel_axis(rng):
    x = rng.normal(size=(6, 3, 3, 2))
    nchw = ref.minibatch_stddev(x.transpose(0, 3, 1, 2), 4, channel_axis=1)
    np.testing.assert_allclose(nchw.transpose(0, 2, 3, 1), ref.minibatch_stddev(x, 4), rtol=1e-12)


# ---------------------------------------------------------------- losses and R1

def test_losses_at_zero_logits_are_log_two():
    assert ref.generator_loss(np.zeros(5)) == pytest.approx(math.log(2))
    assert ref.discriminator_loss(np.zeros(5), np.zeros(3)) == pytest.approx(2 * math.log(2))


def test_losses_analytic_and_stable():
    assert ref.generator_loss([1000.0]) == pytest.approx(0.0, abs=1e-12)
    assert ref.generator_loss([-1000.0]) == pytest.approx(1000.0)
    # a confident, correct D: real logits +30, fake -30 -> loss ~ 2 e^-30
    assert ref.discriminator_loss([30.0], [-30.0]) == pytest.approx(2 * math.exp(-30), rel=1e-6)
    assert ref.discriminator_loss([2.0], [1.0]) == pytest.approx(
        math.log1p(math.exp(1.0)) + math.log1p(math.exp(-2.0)))


def test_r1_of_given_gradients():
    g = np.zeros((2, 2, 2, 1))
    g[0, 0, 0, 0], g[1] = 3.0, 1.0      # squared norms 9 and 4: mean 6.5
    assert ref.r1_penalty(g, gamma=10.0) == pytest.approx(5.0 * 6.5)
    assert ref.r1_penalty(g, gamma=0.0) == 0.0


# ---------------------------------------------------------------- common

def test_layer_arithmetic():
    assert [common.num_layers(r) for r in (4, 32, 64, 1024)] == [2, 8, 10, 18]
    assert common.resolutions(32) == [4, 8, 16, 32]
    assert [common.layer_resolution(i) for i in range(8)] == [4, 4, 8, 8, 16, 16, 32, 32]
    assert [common.feature_maps(r) for r in (4, 8, 16, 32, 64)] == [128, 128, 128, 64, 32]
    # the paper's 1024² generator: 512 up to 64², then halving to 32 at 1024²
    assert [common.feature_maps(r, 16384, 512) for r in (32, 64, 128, 1024)] == [512, 256, 128, 16]
    assert common.noise_shapes(8, 3) == [(3, 4, 4, 1)] * 2 + [(3, 8, 8, 1)] * 2
    assert common.noise_shapes(8, 3, channels_last=False)[2] == (3, 1, 8, 8)


def test_config_defaults_and_validation():
    c = common.StyleGANConfig()
    assert (c.resolution, c.num_layers, c.z_dim, c.w_dim, c.mapping_layers) == (32, 8, 128, 128, 8)
    assert (c.mapping_lr_mul, c.mixing_prob, c.w_avg_decay, c.r1_gamma) == (0.01, 0.9, 0.995, 10.0)
    assert (c.truncation_psi, c.truncation_cutoff, c.beta_1, c.beta_2) == (0.7, 8, 0.0, 0.99)
    assert c.to_dict()["channels"] == 1
    for bad in (2, 48, 0):
        with pytest.raises(ValueError):
            common.StyleGANConfig(resolution=bad)


def test_sample_crossover():
    rng = np.random.default_rng(0)
    draws = np.array([common.sample_crossover(rng, 8, 0.9) for _ in range(4000)])
    mixed = draws < 8
    assert abs(mixed.mean() - 0.9) < 0.02
    assert set(draws[mixed]) == set(range(1, 8))          # both latents always reach the image
    assert {common.sample_crossover(rng, 8, 0.0) for _ in range(50)} == {8}
    assert common.sample_crossover(rng, 1, 1.0) == 1


def test_sample_noise_is_seeded():
    a = common.sample_noise(np.random.default_rng(3), 16, 2)
    b = common.sample_noise(np.random.default_rng(3), 16, 2)
    assert [n.shape for n in a] == common.noise_shapes(16, 2)
    assert all(np.array_equal(x, y) and x.dtype == np.float32 for x, y in zip(a, b))
