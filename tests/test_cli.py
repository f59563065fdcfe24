"""The `gencourse` command as a user types it: a real training run, and clear errors for bad input."""

import json

import numpy as np
import pytest

from gencourse.cli import main


@pytest.fixture
def tiny_npz(tmp_path, mnist):
    """A small mnist.npz cut from the shared test set (Keras' layout)."""
    folder = tmp_path / "data"
    folder.mkdir()
    np.savez(folder / "mnist.npz", x_train=mnist.x_train[:600], y_train=mnist.y_train[:600],
             x_test=mnist.x_test[:200], y_test=mnist.y_test[:200])
    return folder


def test_train_writes_figures_and_metrics(tiny_npz, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "vae", "--track", "torch", "--epochs", "2", "--data-dir", str(tiny_npz),
                 "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 2
    assert np.isfinite(metrics["test_neg_elbo"]) and metrics["test_neg_elbo"] < 543   # untrained: about 543
    for png in ["loss_curves", "reconstructions", "latent_scatter", "manifold", "inputs_vs_outputs"]:
        assert (out / f"{png}.png").stat().st_size > 1000, png
    assert metrics["test_neg_iwae"] <= metrics["test_neg_elbo_k_samples"] and metrics["iwae_k"] == 50
    assert "held-out neg-ELBO" in capsys.readouterr().out

    # --resume with one more epoch continues the same history; --threads reaches torch
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(["train", "vae", "--track", "torch", "--epochs", "3", "--data-dir", str(tiny_npz),
                     "--out", str(out), "--no-progress", "--device", "cpu", "--resume",
                     "--threads", str(threads + 1)]) == 0
        assert torch.get_num_threads() == threads + 1
    finally:
        torch.set_num_threads(threads)
    resumed = json.loads((out / "metrics.json").read_text())
    assert len(resumed["history"]) == 3
    assert resumed["history"][:2] == metrics["history"]


def test_a_folder_without_mnist_is_named(tmp_path, capsys):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    assert main(["train", "vae", "--data-dir", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nothing-here" in err and "mnist.npz" in err


def test_a_corrupt_file_is_named(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "mnist.npz").write_bytes(b"this is not an npz archive")
    assert main(["train", "cvae", "--data-dir", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "mnist.npz" in err and "npz" in err


def test_missing_device_is_a_clear_error(tiny_npz, tmp_path, capsys):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["train", "vae", "--track", "torch", "--device", "gpu", "--data-dir", str(tiny_npz),
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "gpu" in capsys.readouterr().err.lower()


@pytest.mark.parametrize("argv", [["train", "vae", "--epochs", "0"], ["train", "gan"],
                                  ["train", "vae", "--track", "jax"],
                                  ["train", "cyclegan", "--threads", "0"]])
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "usage: gencourse" in capsys.readouterr().err
