"""The Fréchet distance: closed forms for Gaussians, symmetry, and real MNIST against noise."""

from __future__ import annotations

import numpy as np
import pytest

from gencourse.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    gaussian_frechet_distance,
    image_frechet_distance,
)


def diagonal_closed_form(mu1, s1, mu2, s2):
    """|mu1 - mu2|^2 + sum(s1 + s2 - 2 sqrt(s1 s2)) for diagonal covariances s1, s2."""
    return np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))


def test_distance_of_a_set_to_itself_is_zero(rng):
    x = rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12))    # correlated features
    mu, sigma = feature_statistics(x)
    assert frechet_distance(x, x) < 1e-8 * np.trace(sigma)


def test_diagonal_gaussians_match_the_closed_form(rng):
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = diagonal_closed_form(mu1, s1, mu2, s2)
    got = gaussian_frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert abs(got - expected) <= 1e-10 * expected


def test_one_dimension_is_the_difference_of_means_and_stddevs():
    # 1-D: (m1 - m2)^2 + (sd1 - sd2)^2
    assert gaussian_frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0)


def test_sampled_gaussians_approach_the_closed_form(rng):
    mu1, mu2 = np.zeros(4), np.array([1.0, 0.0, -1.0, 0.5])
    s1, s2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([1.0, 0.5, 0.5, 3.0])
    a = mu1 + rng.normal(size=(50_000, 4)) * np.sqrt(s1)
    b = mu2 + rng.normal(size=(50_000, 4)) * np.sqrt(s2)
    expected = diagonal_closed_form(mu1, s1, mu2, s2)
    assert abs(frechet_distance(a, b) - expected) < 0.03 * expected


def test_symmetric_and_a_shift_adds_its_squared_length(rng):
    a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    b = rng.gamma(2.0, size=(300, 5))
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)
    shift = np.array([1.0, -2.0, 0.0, 0.5, 3.0])
    assert frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-8)


def test_singular_covariances_give_a_finite_real_value(rng):
    # dead units (constant zero columns) and duplicated features, as ReLU features have
    base = np.maximum(rng.normal(size=(200, 4)), 0)
    a = np.hstack([base, base[:, :2], np.zeros((200, 3))])
    b = np.hstack([base + 0.3, base[:, :2] + 0.3, np.zeros((200, 3))])
    value = frechet_distance(a, b)
    assert np.isfinite(value) and isinstance(value, float)
    assert value == pytest.approx(0.09 * 6, rel=1e-3)     # a pure shift of 0.3 in 6 features


def test_rejects_mismatched_or_too_small_sets(rng):
    with pytest.raises(ValueError, match="differ"):
        frechet_distance(rng.normal(size=(10, 3)), rng.normal(size=(10, 4)))
    with pytest.raises(ValueError):
        frechet_distance(rng.normal(size=(1, 3)), rng.normal(size=(10, 3)))


def test_real_mnist_is_close_to_real_mnist_and_far_from_noise(mnist, classifier):
    rng = np.random.default_rng(0)
    real_train, real_test = mnist.x_train[:2000], mnist.x_test
    noise = rng.uniform(0, 1, real_test.shape).astype(np.float32)
    d_real = image_frechet_distance(real_train, real_test, classifier)
    d_noise = image_frechet_distance(noise, real_test, classifier)
    # measured: about 2.1 against 770 (the classifier of conftest, seed 0)
    assert 0 < d_real < 0.01 * d_noise, (d_real, d_noise)
