"""The StyleGAN shipped in the package: plain arrays, both tracks draw the same images, the
recorded Fréchet distance comes back, and `--pretrained` writes the figures untrained."""

import json
import zipfile

import numpy as np
import pytest

from gencourse.stylegan import convert, editing, pretrained, sampling
from test_stylegan_run import one_thread  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def shipped():
    return pretrained.metrics()


def test_the_weights_are_plain_float32_arrays_under_2_mb(shipped):
    assert pretrained.WEIGHTS.stat().st_size < 2 * 2**20
    with zipfile.ZipFile(pretrained.WEIGHTS) as z:
        assert all(name.endswith(".npy") for name in z.namelist())
    arrays = convert.load(pretrained.WEIGHTS)          # allow_pickle=False inside
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert "w_avg" in arrays and np.abs(arrays["w_avg"]).sum() > 0
    for key in ("command", "machine", "train_seconds_this_session", "steps", "config",
                "frechet_distance", "frechet_floor", "class_fractions", "seed_spread"):
        assert key in shipped, key


def test_both_tracks_load_the_shipped_weights_to_the_same_images():
    torch_gs, keras_gs = pretrained.load("torch"), pretrained.load("tf")
    rng = np.random.default_rng(0)
    z = sampling.latents(rng, 16, torch_gs.config.z_dim)
    np.testing.assert_allclose(keras_gs.mapping(z), torch_gs.mapping(z), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras_gs.w_avg, torch_gs.w_avg)
    ws = sampling.broadcast(torch_gs.mapping(z), torch_gs.config.num_layers)
    noise = sampling.noise(torch_gs, rng, 16)
    np.testing.assert_allclose(keras_gs.synthesize(ws, noise), torch_gs.synthesize(ws, noise),
                               rtol=0, atol=1e-4)
    # truncation and mixing go through the same numpy styles
    mixed = sampling.style_mixing_table(keras_gs, np.random.default_rng(1), (0, 4))
    np.testing.assert_allclose(mixed, sampling.style_mixing_table(torch_gs,
                                                                  np.random.default_rng(1), (0, 4)),
                               rtol=0, atol=1e-4)


def test_the_shipped_model_scores_its_recorded_frechet_distance(shipped):
    """Scored as the run scored it (embedded digits, the package classifier, seed 0); the
    margin is the spread of the score over sampling seeds, measured when it shipped."""
    from gencourse.data import load_mnist
    from gencourse.stylegan import run

    data = load_mnist()
    if data.source != shipped["data"]:
        pytest.skip(f"recorded on {shipped['data']}, here {data.source}")
    gs = pretrained.load("torch")
    m = run.evaluate(gs, data, run.classifier_for(data, 0), shipped["fid_samples"], 0)
    margin = shipped["seed_spread"]["margin"]
    assert m["frechet_distance"] == pytest.approx(shipped["frechet_distance"], abs=margin)
    assert m["frechet_floor"] == pytest.approx(shipped["frechet_floor"], abs=0.5)
    np.testing.assert_allclose(m["class_fractions"], shipped["class_fractions"], atol=0.02)


def test_editing_works_on_the_shipped_model():
    gs = pretrained.load("torch")
    found = editing.attribute_directions(gs, np.random.default_rng(2), n=400)
    means = editing.response(gs, *found["thickness"], np.random.default_rng(3), n=32)
    assert np.all(np.diff(means) > 0)


def test_cli_pretrained_writes_the_figures_without_training(tmp_path, shipped):
    from gencourse.cli import main

    out = tmp_path / "shipped"
    assert main(["train", "stylegan", "--pretrained", "--track", "torch", "--threads", "1",
                 "--fid-samples", "300", "--out", str(out), "--no-progress"]) == 0
    for name in ("samples.png", "noise.png", "style_mixing_coarse.png", "truncation.png",
                 "editing.png"):
        assert (out / name).stat().st_size > 1000, name
    m = json.loads((out / "metrics.json").read_text())
    assert m["pretrained"] == shipped["command"] and not (out / "checkpoint").exists()


def test_the_shipped_model_draws_all_ten_digits_near_the_floor(shipped):
    """The bar it was trained to (issue 14): Fréchet distance at most 10x the real-vs-real floor,
    every digit class 4-18 % of the samples (re-scored above, within the seed spread)."""
    assert shipped["frechet_distance"] <= 10 * shipped["frechet_floor"]
    assert 0.04 <= min(shipped["class_fractions"]) and max(shipped["class_fractions"]) <= 0.18


@pytest.mark.parametrize("track", ["torch", "tf"])
def test_other_layers_plugged_in_draw_with_the_shipped_weights(track):
    """load(track, adain=..., noise=...) with the package's own classes given as the "student's" draws the
    same images as the plain load; a noise layer with a weight of another shape is refused by name."""
    if track == "torch":
        from gencourse.stylegan import torch_models as m
    else:
        from gencourse.stylegan import tf_models as m
    plain = pretrained.load(track)
    plugged = pretrained.load(track, adain=m.AdaptiveInstanceNorm, noise=m.NoiseInjection)
    rng = np.random.default_rng(4)
    ws = sampling.broadcast(plain.mapping(sampling.latents(rng, 8, plain.config.z_dim)),
                            plain.config.num_layers)
    noise = sampling.noise(plain, rng, 8)
    np.testing.assert_allclose(plugged.synthesize(ws, noise), plain.synthesize(ws, noise), rtol=0, atol=1e-6)
    assert np.abs(plain.synthesize(ws, noise)).max() <= 1.0      # tanh output

    class WideNoise(m.NoiseInjection):                        # one weight too many per channel
        def __init__(self, channels):
            super().__init__(2 * channels)

    with pytest.raises(ValueError, match="the shipped generator's has"):
        pretrained.load(track, noise=WideNoise)


def test_mixing_experiment_scores_given_models_without_training(tmp_path, one_thread):  # noqa: F811
    """`--model 0.9=shipped` scores the shipped generator as the 90 % row: nothing is trained, the row
    names its source; a folder that is no finished run is refused by name."""
    from gencourse.cli import main

    out = tmp_path / "mix"
    assert main(["experiment", "stylegan-mixing", "--probs", "0.9", "--model", "0.9=shipped",
                 "--fid-samples", "200", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    saved = json.loads((out / "mixing.json").read_text())
    assert saved["sources"] == {"0.9": "the shipped generator"}
    assert len(saved["rows"]["0.9"]) == 4 and all(v > 0 for v in saved["rows"]["0.9"])
    from gencourse.stylegan.experiments import trained_model

    with pytest.raises(ValueError, match="not a finished `gencourse train stylegan` run"):
        trained_model("torch", str(tmp_path))
