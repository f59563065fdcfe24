"""CycleGAN's training: history pool, learning-rate schedule, the two tracks' steps, resume, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gencourse.cli import main
from gencourse.cyclegan.common import CycleGANConfig, ImagePool, lr_factor
from gencourse.cyclegan.run import DIGITS_DEFAULTS, CycleData, train
from gencourse.data.domains import ArrayDomain

torch = pytest.importorskip("torch")

TINY = dict(image_size=12, channels=1, ngf=4, ndf=4, d_layers=2, batch_size=4, n_blocks=1)


# ---------------------------------------------------------------- pool and schedule

def test_pool_passes_the_first_fakes_through_then_swaps_about_half():
    pool = ImagePool(5, seed=0)
    first = np.arange(5, dtype=np.float32)[:, None]
    assert np.array_equal(pool.query(first), first)          # filling: returned as they came
    out = np.concatenate([pool.query(np.full((1, 1), 100.0 + i, np.float32)) for i in range(400)])[:, 0]
    new = 100.0 + np.arange(400)
    swapped = out != new
    assert 0.4 < swapped.mean() < 0.6                        # half are swapped for stored ones
    # a swapped-in image was put in earlier (one of the first five or an earlier fake), never later
    assert np.all((out[swapped] < 5) | (out[swapped] < new[swapped]))
    assert len(set(out[swapped].tolist())) == swapped.sum()  # each stored image leaves the pool once


def test_pool_of_size_zero_and_its_state_round_trip():
    x = np.random.default_rng(0).random((3, 2, 2, 1)).astype(np.float32)
    assert ImagePool(0).query(x) is x
    a = ImagePool(2, seed=1)
    a.query(x)
    b = ImagePool(2, seed=9)
    b.load_state(a.state())
    y = np.random.default_rng(1).random((6, 2, 2, 1)).astype(np.float32)
    assert np.array_equal(a.query(y), b.query(y))


def test_lr_schedule_is_constant_then_linear():
    f = [lr_factor(e, 100, 100) for e in range(200)]
    assert f[:100] == [1.0] * 100
    assert f[100] == pytest.approx(1 - 1 / 101) and f[199] == pytest.approx(1 / 101)
    assert np.all(np.diff(f[99:]) == pytest.approx(-1 / 101))


def test_config_rejects_sizes_the_networks_cannot_take():
    with pytest.raises(ValueError, match="divisible by 4"):
        CycleGANConfig(image_size=30)
    with pytest.raises(ValueError, match="too small for a PatchGAN with 3 stride-2 layers"):
        CycleGANConfig(image_size=16)
    CycleGANConfig(image_size=16, d_layers=2)


# ---------------------------------------------------------------- the tracks

def _batch(seed, n=4, size=12):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 1)).astype(np.float32)


def test_torch_step_trains_all_four_networks_and_reports_every_term():
    from gencourse.cyclegan.torch_track import TorchCycleGAN

    t = TorchCycleGAN(CycleGANConfig(**TINY), "cpu")
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in t.nets.items()}
    losses = t.train_step(_batch(0), _batch(1))
    assert set(losses) == {"G_adv", "F_adv", "cycle_A", "cycle_B", "identity_A", "identity_B", "D_A", "D_B"}
    assert all(np.isfinite(v) for v in losses.values())
    for k, m in t.nets.items():
        assert any(not torch.equal(p, q) for p, q in zip(m.parameters(), before[k])), k
    assert all(p.requires_grad for d in (t.D_A, t.D_B) for p in d.parameters())


def test_discriminators_are_frozen_in_the_generator_step():
    """With the discriminators' loss set to zero, their weights must not move: the generators'
    step leaves them no gradient (and Adam no momentum) of its own."""
    from gencourse.cyclegan.torch_track import TorchCycleGAN

    zero = {"discriminator_loss": lambda r, f, mode: 0.0 * (r.sum() + f.sum())}
    t = TorchCycleGAN(CycleGANConfig(**TINY), "cpu", parts=zero)
    before = [p.detach().clone() for d in (t.D_A, t.D_B) for p in d.parameters()]
    for i in range(2):
        t.train_step(_batch(i), _batch(i + 10))
    after = [p.detach() for d in (t.D_A, t.D_B) for p in d.parameters()]
    assert all(torch.equal(p, q) for p, q in zip(before, after))


def test_both_tracks_take_the_same_step():
    """Same weights, same batch, no pool: the same losses, and the same generator afterwards."""
    pytest.importorskip("tensorflow")
    from gencourse.cyclegan.convert import torch_to_keras
    from gencourse.cyclegan.tf_track import TFCycleGAN
    from gencourse.cyclegan.torch_track import TorchCycleGAN

    config = CycleGANConfig(**{**TINY, "pool_size": 0})
    pt, kt = TorchCycleGAN(config, "cpu"), TFCycleGAN(config, "cpu", jit=False)
    for k in pt.nets:
        torch_to_keras(pt.nets[k], kt.nets[k])
    a, b = _batch(2), _batch(3)
    lt, lk = pt.train_step(a, b), kt.train_step(a, b)
    for k in lt:
        assert lk[k] == pytest.approx(lt[k], rel=1e-4, abs=1e-6), k
    x = _batch(4)
    for direction in ("AB", "BA"):
        np.testing.assert_allclose(kt.translate(x, direction), pt.translate(x, direction), atol=2e-4)


def test_both_tracks_take_the_same_semantic_step():
    """With the same linear classifiers (one channel: both layouts flatten alike), the semantic terms
    come out the same in both tracks, and the step refuses to run without labels."""
    pytest.importorskip("tensorflow")
    import keras

    from gencourse.cyclegan.convert import torch_to_keras
    from gencourse.cyclegan.tf_track import TFCycleGAN
    from gencourse.cyclegan.torch_track import TorchCycleGAN

    config = CycleGANConfig(**{**TINY, "pool_size": 0, "semantic_weight": 2.0})
    pt, kt = TorchCycleGAN(config, "cpu"), TFCycleGAN(config, "cpu", jit=False)
    for k in pt.nets:
        torch_to_keras(pt.nets[k], kt.nets[k])
    rng = np.random.default_rng(5)
    for side in "AB":
        w, c = rng.normal(0, 0.3, (144, 10)).astype(np.float32), rng.normal(0, 0.1, 10).astype(np.float32)
        linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 10))
        linear[1].weight.data, linear[1].bias.data = torch.from_numpy(w.T.copy()), torch.from_numpy(c)
        dense = keras.Sequential([keras.Input((12, 12, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        dense.layers[-1].set_weights([w, c])
        pt.classifiers[side], kt.classifiers[side] = linear.requires_grad_(False), dense
    a, b, la, lb = _batch(2), _batch(3), np.array([0, 1, 2, 3]), np.array([9, 8, 7, 6])
    lt, lk = pt.train_step(a, b, la, lb), kt.train_step(a, b, la, lb)
    assert {"semantic_A", "semantic_B"} <= set(lt) and lt["semantic_A"] > 0
    for k in lt:
        assert lk[k] == pytest.approx(lt[k], rel=1e-4, abs=1e-6), k
    with pytest.raises(ValueError, match="labels of both batches"):
        pt.train_step(a, b)


def test_tf_checkpoint_restores_weights_optimizers_and_pools(tmp_path):
    """A Keras run saved after two steps and loaded into a fresh model takes the same third step."""
    pytest.importorskip("tensorflow")
    from gencourse.cyclegan.tf_track import TFCycleGAN

    config = CycleGANConfig(**{**TINY, "pool_size": 3})
    first = TFCycleGAN(config, "cpu", jit=False)
    for i in range(2):
        first.train_step(_batch(i), _batch(i + 5))
    first.save(tmp_path)
    second = TFCycleGAN(CycleGANConfig(**{**TINY, "pool_size": 3, "seed": 7}), "cpu", jit=False)
    second.load(tmp_path)
    assert len(second.pool_a.images) == 3
    a, b = _batch(20), _batch(21)
    l1, l2 = first.train_step(a, b), second.train_step(a, b)
    for k in l1:
        assert l2[k] == pytest.approx(l1[k], rel=1e-5), k


def test_tf_steps_leave_xla_off_on_the_cpu():
    """On the CPU plain tf.function was the faster step at the digits size and at 128² (benchmarks/cyclegan.py,
    docs/results.md): XLA stays off there by default at every size, and jit= still decides."""
    pytest.importorskip("tensorflow")
    from gencourse.cyclegan.tf_track import TFCycleGAN

    for size in (28, 128):
        assert not TFCycleGAN(CycleGANConfig(**dict(TINY, image_size=size)), "cpu").jit
    assert TFCycleGAN(CycleGANConfig(**TINY), "cpu", jit=True).jit


# ---------------------------------------------------------------- runs

@pytest.fixture(scope="module")
def tiny_digits():
    rng = np.random.default_rng(0)
    a = ArrayDomain((rng.random((24, 12, 12)) * 255).astype(np.uint8), rng.integers(0, 10, 24), "A")
    b = ArrayDomain((rng.random((40, 12, 12)) * 255).astype(np.uint8), rng.integers(0, 10, 40), "B")
    return CycleData(a, b, a, b, "random test images", digits=True)


def _history(m):
    return [{k: v for k, v in h.items()} for h in m["history"]]


def test_resume_continues_where_it_stopped(tiny_digits, tmp_path):
    """Two epochs in one go and 1 + 1 with a resume give the same losses and learning rates."""
    kw = dict(data=tiny_digits, progress=False, steps_per_epoch=3, decay_epochs=1, **TINY)
    straight = train("torch", out=tmp_path / "a", epochs=1, **kw)
    train("torch", out=tmp_path / "b", epochs=1, decay_epochs=0,
          **{k: v for k, v in kw.items() if k != "decay_epochs"})
    resumed = train("torch", out=tmp_path / "b", epochs=1, resume=True, **kw)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert [h["lr"] for h in resumed["history"]] == pytest.approx([2e-4, 1e-4])
    for h1, h2 in zip(_history(straight), _history(resumed)):
        for k in h1:
            assert h2[k] == pytest.approx(h1[k], rel=1e-5), k


def test_resume_refuses_other_networks(tiny_digits, tmp_path):
    kw = dict(data=tiny_digits, progress=False, steps_per_epoch=1, epochs=1, decay_epochs=0)
    train("torch", out=tmp_path, **kw, **TINY)
    with pytest.raises(ValueError, match="ngf 4 there, 8 now"):
        train("torch", out=tmp_path, resume=True, **kw, **{**TINY, "ngf": 8})


def test_run_writes_figures_and_metrics(tiny_digits, tmp_path):
    m = train("torch", data=tiny_digits, out=tmp_path, progress=False, steps_per_epoch=2,
              epochs=1, decay_epochs=0, **TINY)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("cycle_error_A", "cycle_error_B", "label_preservation_AB", "label_preservation_BA",
                "untranslated_AB", "classifier_accuracy_B", "params", "train_seconds"):
        assert key in saved
    assert 0 <= saved["label_preservation_AB"] <= 1 and 0 < saved["cycle_error_A"] < 2
    assert saved["history"] == m["history"] and saved["config"]["ngf"] == 4
    assert (tmp_path / "translations.png").stat().st_size > 1000
    assert (tmp_path / "loss_curves.png").stat().st_size > 1000


@pytest.mark.parametrize("track", ["torch", "tf"])
def test_a_semantic_run_trains_its_classifier_first(tiny_digits, tmp_path, track):
    if track == "tf":
        pytest.importorskip("tensorflow")
    m = train(track, data=tiny_digits, out=tmp_path, progress=False, steps_per_epoch=2, epochs=1,
              decay_epochs=0, semantic_weight=1.0, **TINY)
    assert 0 <= m["semantic_classifier_accuracy_A"] <= 1 and 0 <= m["pseudo_label_accuracy_A"] <= 1
    assert m["history"][0]["semantic_A"] > 0 and m["config"]["semantic_weight"] == 1.0
    assert m["semantic_source"] == "B" and m["config"]["semantic_mode"] == "cycada"


def test_cycada_reads_both_translations_with_the_source_classifier_and_its_own_labels(tiny_digits):
    """CyCADA's setting (eq. 3): one classifier, trained on the source's labels, reads both sides, and the
    labels are its predictions on the untranslated images; the oracle gives each side its own classifier
    and the true labels."""
    from gencourse.cyclegan.run import make_trainer, semantic_classifiers

    cfg = CycleGANConfig(**TINY, semantic_weight=1.0, semantic_source="A")
    t = make_trainer("torch", cfg)
    _, (labels_a, labels_b) = semantic_classifiers("torch", t, tiny_digits, cfg)
    f_s = t.classifiers["A"]
    assert t.classifiers["B"] is f_s
    for labels, domain in ((labels_a, tiny_digits.train_a), (labels_b, tiny_digits.train_b)):
        assert np.array_equal(labels, t.classify(f_s, domain.array(12)).argmax(1))
    assert not np.array_equal(labels_b, tiny_digits.train_b.labels)    # random images: f_S cannot know B's
    oracle = CycleGANConfig(**TINY, semantic_weight=1.0, semantic_mode="oracle")
    t = make_trainer("torch", oracle)
    _, (labels_a, labels_b) = semantic_classifiers("torch", t, tiny_digits, oracle)
    assert t.classifiers["A"] is not t.classifiers["B"]
    assert np.array_equal(labels_b, tiny_digits.train_b.labels) and np.array_equal(labels_a, tiny_digits.train_a.labels)


def test_a_semantic_run_needs_labels(tmp_path):
    a = ArrayDomain(np.zeros((4, 12, 12), np.uint8), name="A")
    with pytest.raises(ValueError, match="labelled domains"):
        train("torch", data=CycleData(a, a, a, a, "no labels"), out=tmp_path, progress=False, steps_per_epoch=1,
              epochs=1, decay_epochs=0, semantic_weight=1.0, **TINY)


def test_digits_defaults_shrink_the_patchgan_to_fit_the_digit():
    from gencourse.cyclegan.common import patch_map_size, patchgan_layers, receptive_field

    n = DIGITS_DEFAULTS["d_layers"]
    assert patch_map_size(28, patchgan_layers(n)) == 5
    assert receptive_field(patchgan_layers(n))[0] == 34


# ---------------------------------------------------------------- the command

@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("trainA", 3), ("trainB", 5), ("testA", 2), ("testB", 2)):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((20, 24, 3)) * 255).astype(np.uint8)).save(
                tmp_path / "data" / split / f"{i}.png")
    return tmp_path / "data"


def test_command_trains_on_an_image_folder(image_folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "cyclegan", "--track", "torch", "--dataset", f"folder:{image_folder}",
                 "--image-size", "32", "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--epochs", "1",
                 "--decay-epochs", "0", "--out", str(out), "--no-progress"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps_per_epoch"] == 5 and m["config"]["channels"] == 3      # the larger domain, batch 1
    assert m["n_eval"] == [2, 2] and "label_preservation_AB" not in m
    assert "cycle error A" in capsys.readouterr().out


def test_command_trains_on_kaggles_jpg_layout(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for folder, n in (("monet_jpg", 2), ("photo_jpg", 3)):
        (tmp_path / "kaggle" / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray((rng.random((36, 36, 3)) * 255).astype(np.uint8)).save(
                tmp_path / "kaggle" / folder / f"{i}.jpg")
    out = tmp_path / "run"
    assert main(["train", "cyclegan", "--track", "torch", "--dataset", f"kaggle:{tmp_path / 'kaggle'}",
                 "--image-size", "32", "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--epochs", "1",
                 "--decay-epochs", "0", "--out", str(out), "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps_per_epoch"] == 3 and m["n_eval"] == [2, 3] and "no test split" in m["data"]


@pytest.mark.parametrize("dataset, message", [
    ("folder:{missing}", "no such folder"),
    ("kaggle:{missing}", "monet_tfrec"),
    ("folder:", "give the folder"),
    ("horses", "digits, folder:PATH or kaggle:PATH"),
])
def test_command_names_bad_datasets(tmp_path, capsys, dataset, message):
    spec = dataset.format(missing=tmp_path / "nowhere")
    assert main(["train", "cyclegan", "--track", "torch", "--dataset", spec,
                 "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_command_rejects_a_size_the_generator_cannot_take(image_folder, tmp_path, capsys):
    assert main(["train", "cyclegan", "--track", "torch", "--dataset", f"folder:{image_folder}",
                 "--image-size", "30", "--out", str(tmp_path / "o")]) == 2
    assert "divisible by 4" in capsys.readouterr().err


def test_history_pool_on_tensors_keeps_the_graph_of_the_fakes_it_hands_back():
    """The notebook's pool (the reference's ImagePool on tensors): a kept fake is the fake itself, graph and all
    (D's step must detach it); a swapped one is an older image, detached; the swaps are those of ImagePool."""
    from gencourse.cyclegan.torch_track import HistoryPool

    pool = HistoryPool(2, seed=3)
    first = torch.zeros(2, 1, 2, 2, requires_grad=True) + 1.0
    assert torch.equal(pool.query(first), first)                    # filling: returned as they came
    fakes = (torch.arange(8.0).reshape(8, 1, 1, 1) + 10).expand(8, 1, 2, 2).clone().requires_grad_() * 1.0
    out = pool.query(fakes)
    swapped = torch.from_numpy(pool.pool.swapped)
    assert swapped.any() and not swapped.all()
    assert torch.all(out[swapped] != fakes[swapped]) and torch.equal(out[~swapped], fakes[~swapped])
    assert out.requires_grad and out[~swapped].grad_fn is not None
