"""The numpy oracles against values derived by hand."""

import numpy as np
import pytest

from gencourse import reference as ref


def test_kl_of_standard_normal_is_zero():
    assert ref.gaussian_kl(np.zeros((3, 2)), np.zeros((3, 2))) == 0.0


def test_kl_mean_shift_is_half_mu_squared_per_dimension():
    # KL(N(2, 1) || N(0, 1)) = 1/2 * 2^2 = 2 per dimension.
    kl = ref.gaussian_kl(np.full((4, 3), 2.0), np.zeros((4, 3)), reduce="none")
    np.testing.assert_allclose(kl, 6.0)


def test_kl_variance_only():
    # sigma^2 = e: KL = -1/2 (1 + 1 - 0 - e) = (e - 2) / 2 per dimension.
    kl = ref.gaussian_kl(np.zeros((1, 1)), np.ones((1, 1)))
    assert kl == pytest.approx((np.e - 2) / 2, rel=1e-12)


def test_kl_is_nonnegative_and_batch_mean(rng):
    mu, lv = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    per = ref.gaussian_kl(mu, lv, reduce="none")
    assert per.shape == (50,) and np.all(per >= 0)
    assert ref.gaussian_kl(mu, lv) == pytest.approx(per.mean(), rel=1e-12)
    assert ref.gaussian_kl(mu, lv, reduce="batch_sum") == pytest.approx(per.sum(), rel=1e-12)


def test_bce_of_half_is_log2_per_pixel():
    x = np.random.default_rng(0).integers(0, 2, size=(2, 28, 28)).astype(float)
    assert ref.bernoulli_reconstruction(x, np.full_like(x, 0.5)) == pytest.approx(784 * np.log(2))


def test_bce_perfect_prediction_is_clipped_not_infinite():
    x = np.array([[0.0, 1.0]])
    assert 0 < ref.bernoulli_reconstruction(x, x) < 1e-5
    assert np.isfinite(ref.bernoulli_reconstruction(x, 1 - x))


def test_neg_elbo_is_sum_of_terms(rng):
    x, p = rng.uniform(size=(5, 28, 28)), rng.uniform(0.01, 0.99, size=(5, 28, 28))
    mu, lv = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    assert ref.neg_elbo(x, p, mu, lv) == pytest.approx(
        ref.bernoulli_reconstruction(x, p) + ref.gaussian_kl(mu, lv), rel=1e-12)


def test_reparameterize_uses_standard_deviation():
    z = ref.reparameterize(np.array([1.0]), np.array([np.log(4.0)]), np.array([1.5]))
    assert z[0] == pytest.approx(1.0 + 2.0 * 1.5)


def test_latent_ranges_per_class():
    z = np.array([[0.0, 5.0], [2.0, -1.0], [7.0, 7.0]])
    r = ref.latent_ranges(z, np.array([3, 3, 4]))
    np.testing.assert_array_equal(r[3], [[0.0, 2.0], [-1.0, 5.0]])
    np.testing.assert_array_equal(r[4], [[7.0, 7.0], [7.0, 7.0]])
    assert np.isnan(r[0]).all()


def test_unknown_reduction_is_an_error():
    with pytest.raises(ValueError, match="reduce"):
        ref.gaussian_kl(np.zeros((1, 1)), np.zeros((1, 1)), reduce="avg")


def test_iwae_bound_by_hand():
    # q = p (mean 0, log-variance 0): the log-weights are log p(x|z_k), the bound log((e^-1 + e^-3) / 2)
    z = np.array([[[0.3, -1.0]], [[2.0, 0.5]]])
    zeros = np.zeros((1, 2))
    got = ref.iwae_bound(np.array([[-1.0], [-3.0]]), z, zeros, zeros)
    assert got == pytest.approx([np.log((np.exp(-1.0) + np.exp(-3.0)) / 2)])
    # K = 1 is the one-sample ELBO: log p(x|z) + log p(z) - log q(z|x); here z = mu, so log q = -log(2 pi) - 1/2 sum lv
    mu, lv = np.array([[1.0, 0.0]]), np.array([[0.0, np.log(4.0)]])
    one = ref.iwae_bound(np.array([[-5.0]]), mu[None], mu, lv)
    log_p = -np.log(2 * np.pi) - 0.5
    assert one == pytest.approx([-5.0 + log_p + np.log(2 * np.pi) + 0.5 * np.log(4.0)])


def test_iwae_bound_is_finite_for_real_likelihoods_and_tighter_than_the_mean(rng):
    log_px = rng.uniform(-900, -700, (50, 4))
    z = rng.normal(size=(50, 4, 2))
    bound = ref.iwae_bound(log_px, z, np.zeros((4, 2)), np.zeros((4, 2)))
    assert np.all(np.isfinite(bound)) and np.all(bound >= log_px.mean(0)) and np.all(bound <= log_px.max(0))


def test_bits_per_dim_and_binarize(rng):
    assert ref.bits_per_dim(784 * np.log(2.0)) == pytest.approx(1.0)
    grey = np.array([0.0, 1.0, 0.3] * 10000, np.float32)
    b = ref.binarize(grey, rng)
    assert set(np.unique(b)) == {0.0, 1.0} and b[0] == 0 and b[1] == 1
    assert b[2::3].mean() == pytest.approx(0.3, abs=0.02)
