"""The training run's bookkeeping (figures, metrics, checkpoint/resume) on a numpy stand-in track.

The real tracks have their own tests; here a tiny deterministic track makes the
run's logic testable in a second.
"""

import json

import numpy as np
import pytest

from gencourse.data.mnist import MNIST
from gencourse.vae import run


class NumpyTrainer:
    """Encodes an image as its mean ink per half; decodes to a constant image."""

    name, is_main = "numpy", True

    def __init__(self, config, device="auto"):
        self.config, self.epochs_seen, self.saved = config, 0, None

    def train_epoch(self, x, y, batch_size, seed, on_batch=None):
        self.seen = getattr(self, "seen", []) + [x]
        for i in range(0, len(x), batch_size):
            if on_batch:
                on_batch(len(x[i:i + batch_size]))
        self.epochs_seen += 1
        return self.evaluate(x, y)

    def evaluate(self, x, y, batch_size=500):
        loss = 200.0 / self.epochs_seen
        return {"loss": loss, "recon": loss - 1.0, "kl": 1.0}

    def encode(self, x, y):
        z = np.stack([x[:, :14].mean(axis=(1, 2)), x[:, 14:].mean(axis=(1, 2))], axis=1)
        z = z[:, : self.config.latent_dim]
        return z, np.zeros_like(z)

    def decode(self, z, y):
        return np.full((len(z), 28, 28), 0.5, dtype=np.float32) * (1 + 0 * z[:, :1, None])

    def param_counts(self):
        return {"encoder": 0, "decoder": 0}

    def save(self, directory):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "fake.json").write_text(json.dumps({"epochs_seen": self.epochs_seen}))

    def load(self, directory):
        self.epochs_seen = json.loads((directory / "fake.json").read_text())["epochs_seen"]


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(run, "make_trainer", lambda track, config, device: NumpyTrainer(config, device))


@pytest.fixture(scope="module")
def tiny(mnist):
    return MNIST(mnist.x_train[:300], mnist.y_train[:300], mnist.x_test[:200], mnist.y_test[:200], "tiny")


def test_snapshot_epochs_are_fifths():
    assert run.snapshot_epochs(50) == [10, 20, 30, 40, 50]
    assert run.snapshot_epochs(3) == [1, 2, 3]


def test_run_writes_figures_and_metrics(fake, tiny, tmp_path, capsys):
    m = run.train("vae", "tf", epochs=5, data=tiny, out=tmp_path, progress=False)
    for name in ("loss_curves", "reconstructions", "latent_scatter", "manifold", "inputs_vs_outputs"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_neg_elbo"] == pytest.approx(200 / 5) == m["test_neg_elbo"]
    assert [h["epoch"] for h in saved["history"]] == [1, 2, 3, 4, 5]
    ranges = np.array([saved["latent_ranges"][str(c)] for c in range(10)])
    assert ranges.shape == (10, 2, 2) and np.all(ranges[..., 0] <= ranges[..., 1])
    assert "digit |" in capsys.readouterr().out
    assert "digit |" in (tmp_path / "latent_ranges.txt").read_text()


def test_binarized_digits_and_the_iwae_bound(fake, tiny, tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(run, "make_trainer", lambda track, config, device: made.append(NumpyTrainer(config)) or made[-1])
    m = run.train("vae", "torch", epochs=2, data=tiny, out=tmp_path, progress=False, iwae_k=20)
    first, second = made[0].seen
    assert set(np.unique(first)) == {0.0, 1.0} and not np.array_equal(first, second)   # a new draw each epoch
    assert abs(first.mean() - tiny.x_train.mean() / 255) < 0.01
    # the stand-in decodes every pixel as 1/2: log p(x|z) = -784 log 2 exactly on binary digits, 1 bit per pixel;
    # q = N(ink, 1) against the prior puts the k-sample ELBO KL above that, the IWAE bound between them
    assert 784 * np.log(2) < m["test_neg_iwae"] < m["test_neg_elbo_k_samples"]
    assert m["test_neg_iwae_bits_per_dim"] == pytest.approx(m["test_neg_iwae"] / (784 * np.log(2)))
    assert m["digits"] == "dynamically binarized" and m["iwae_k"] == 20
    grey = run.train("vae", "torch", epochs=1, data=tiny, out=tmp_path / "grey", progress=False, grey=True, iwae_k=0)
    assert not np.array_equal(np.unique(made[-1].seen[0]), [0.0, 1.0]) and "test_neg_iwae" not in grey


def test_resume_continues_where_it_stopped(fake, tiny, tmp_path):
    run.train("vae", "tf", epochs=2, data=tiny, out=tmp_path, progress=False)
    m = run.train("vae", "tf", epochs=4, data=tiny, out=tmp_path, progress=False, resume=True)
    assert [h["epoch"] for h in m["history"]] == [1, 2, 3, 4]
    # the stand-in's loss is 200 / (epochs trained so far): resume kept its state
    assert m["test_neg_elbo"] == pytest.approx(50.0)


def test_cvae_run_measures_its_generations(fake, tiny, tmp_path):
    m = run.train("cvae", "torch", epochs=1, data=tiny, out=tmp_path, progress=False)
    assert (tmp_path / "digits_by_class.png").is_file()
    # a constant grey image is one class for any classifier: about 10 % of requests met
    assert m["generation_accuracy"] <= 0.2 and len(m["generation_accuracy_by_digit"]) == 10


def test_bad_arguments_are_errors(fake, tiny, tmp_path):
    with pytest.raises(ValueError, match="model must be"):
        run.train("gan", "tf", data=tiny, out=tmp_path)
    with pytest.raises(ValueError, match="positive"):
        run.train("vae", "tf", epochs=0, data=tiny, out=tmp_path)
