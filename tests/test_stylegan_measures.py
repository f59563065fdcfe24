"""The measures behind the StyleGAN figures: noise vs style, attributes and their
directions, k-latent mixing, the Table 2 mechanics, and the VAE comparison."""

import numpy as np
import pytest

from gencourse.data.mnist import MNIST
from gencourse.stylegan import editing, experiments, run, sampling
from gencourse.stylegan.compare import vae_frechet
from test_stylegan_run import TINY, one_thread, quick_classifier  # noqa: F401  (a fixture)


def _blobs(rng, n, size=32):
    """Smooth images: a Gaussian blob at a random place and width."""
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(8, 24, 2)
        s = rng.uniform(3, 6)
        out.append(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s)))
    return np.array(out)


def test_noise_effect_separates_fine_pixel_noise_from_style(rng):
    base = _blobs(rng, 5)                                   # one smooth image per w
    pixel_noise = 0.05 * rng.standard_normal((1, 6, 32, 32))    # same draws for every w
    images = base[:, None] + pixel_noise
    m = sampling.noise_effect(images)
    assert m["ratio"] < 0.3
    assert m["noise_high_freq"] > 0.5 > m["style_high_freq"]
    # noise that moves whole blobs (coarse change) is not "fine detail"
    shifted = np.stack([np.stack([np.roll(b, s, axis=1) for s in range(0, 12, 2)]) for b in base])
    coarse = sampling.noise_effect(shifted)
    assert coarse["ratio"] > 0.3 and coarse["noise_high_freq"] < 0.5


def test_noise_only_changes_a_generator_through_its_noise_weights():
    """At init (noise weights 0) noise changes nothing; scaled at 32x32, it changes detail."""
    import torch

    trainer = sampling.make_trainer("torch", run.make_config(**TINY), "cpu")
    rng = np.random.default_rng(0)
    assert sampling.noise_effect(sampling.noise_images(trainer, rng))["noise_std"] == 0.0
    with torch.no_grad():
        for conv in trainer.generator_ema.synthesis.convs[-2:]:     # the 32x32 layers (sampled)
            conv.epilogue.noise.weight.fill_(0.3)
    m = sampling.noise_effect(sampling.noise_images(trainer, rng))
    assert 0 < m["ratio"] and m["noise_high_freq"] > m["style_high_freq"]


def test_thickness_and_slant_measure_what_they_say():
    img = np.zeros((3, 28, 28))
    img[0, 4:24, 13:15] = 1.0                         # thin upright bar
    img[1, 4:24, 11:17] = 1.0                         # thick upright bar
    for r in range(4, 24):                            # bar leaning right at the top
        c = 20 - (r - 4) // 2
        img[2, r, c:c + 2] = 1.0
    t, s = editing.thickness(img), editing.slant(img)
    assert t[1] > 2 * t[0]
    assert abs(s[0]) < 1e-9 and s[2] > 0.3
    assert editing.slant(img[2:, :, ::-1])[0] < -0.3  # mirrored: leaning left


def test_find_direction_recovers_a_linear_attribute(rng):
    ws = rng.standard_normal((2000, 16))
    true = rng.standard_normal(16)
    values = ws @ true + 0.1 * rng.standard_normal(2000)
    d = editing.find_direction(ws, values)
    assert d @ true / np.linalg.norm(d) / np.linalg.norm(true) > 0.95
    labels = (ws @ true > 1).astype(int)
    c = editing.class_direction(ws, labels, 1)
    assert c @ true / np.linalg.norm(c) / np.linalg.norm(true) > 0.9
    assert editing.class_direction(ws, np.zeros(2000, int), 1) is None


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_mixing_sources_use_exactly_k_latents_in_layer_order(rng, k):
    src = sampling.mixing_sources(rng, 200, 8, k)
    assert src.shape == (200, 8)
    assert (src[:, 0] == 0).all() and (np.diff(src, axis=1) >= 0).all()
    assert (src.max(axis=1) == k - 1).all()
    assert all(len(np.unique(row)) == k for row in src)


@pytest.fixture(scope="module")
def small(mnist):
    return MNIST(mnist.x_train[:1000], mnist.y_train[:1000], mnist.x_test[:500],
                 mnist.y_test[:500], "shared MNIST test set, subset")


@pytest.fixture(scope="module")
def small_classifier(small):
    return quick_classifier(small)


def test_mixing_experiment_table_mechanics(small, small_classifier):
    result = experiments.mixing_table("torch", [0.0, 1.0], steps=2, samples=100, data=small,
                                      device="cpu", progress=False, batch_size=8,
                                      classifier=small_classifier, **TINY)
    assert list(result["rows"]) == [0.0, 1.0]
    assert all(len(v) == 4 and min(v) > result["floor"] > 0 for v in result["rows"].values())
    text = experiments.format_table(result)
    assert "4.42" in text and "8.40" in text                  # the paper's corners beside ours
    assert f"{result['rows'][1.0][3]:8.2f}" in text


def test_vae_samples_are_scored_with_the_same_scorer(small, small_classifier, tmp_path):
    from gencourse.vae.run import train as train_vae

    train_vae("vae", "torch", epochs=1, data=small, out=tmp_path / "vae", progress=False)
    scorer = sampling.FrechetScorer(small_classifier, small.x_test)
    got = vae_frechet(tmp_path / "vae", scorer, 300, device="cpu")
    floor = scorer.score(small.x_train[:300].astype(np.float32) / 255)
    assert got["model"] == "vae" and got["track"] == "torch"
    assert got["frechet_distance"] > floor
    with pytest.raises(FileNotFoundError, match="--compare"):
        vae_frechet(tmp_path, scorer, 10, device="cpu")
