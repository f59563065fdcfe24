"""The run skeleton every `gencourse train` shares: checkpoint, exact resume, changed settings refused."""

from __future__ import annotations

import json

import pytest

from gencourse.runs import RunState


class Counter:
    """A trainer whose whole state is one number, saved as a file of its own."""

    def __init__(self):
        self.steps = 0

    def save(self, folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "counter.json").write_text(json.dumps(self.steps))

    def load(self, folder):
        self.steps = json.loads((folder / "counter.json").read_text())


def test_save_then_resume_gives_the_trainer_and_the_state_back(tmp_path):
    run, t = RunState(tmp_path, {"lr": 1e-3, "epochs": 2}), Counter()
    assert run.resume(t) is None                     # nothing saved yet
    t.steps = 7
    run.save(t, 1, [{"loss": 3.0}], snapshots=[1])
    again = Counter()
    state = RunState(tmp_path, {"lr": 1e-3, "epochs": 5}).resume(again)   # longer: allowed
    assert again.steps == 7 and state["epoch"] == 1 and state["history"] == [{"loss": 3.0}]
    assert state["snapshots"] == [1] and state["settings"] == {"lr": 1e-3, "epochs": 2}


def test_a_changed_setting_is_refused_and_named(tmp_path):
    RunState(tmp_path, {"lr": 1e-3, "latent_dim": 2, "epochs": 2}).save(Counter(), 1, [])
    with pytest.raises(ValueError, match=r"latent_dim 2 there, 3 now") as e:
        RunState(tmp_path, {"lr": 1e-3, "latent_dim": 3, "epochs": 9}).resume(Counter())
    assert "epochs" not in str(e.value) and "state.json" in str(e.value)


def test_unreadable_state_says_what_to_do(tmp_path):
    run = RunState(tmp_path, {})
    run.folder.mkdir(parents=True)
    run.file.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable checkpoint state.*another --out"):
        run.resume(Counter())


def test_a_training_command_refuses_to_resume_another_model(tmp_path, capsys):
    from gencourse.cli import main

    small = ["--track", "torch", "--epochs", "1", "--out", str(tmp_path), "--no-progress", "--threads", "1"]
    assert main(["train", "vae", *small]) == 0
    assert main(["train", "vae", *small, "--latent-dim", "3", "--resume"]) == 2
    assert "latent_dim 2 there, 3 now" in capsys.readouterr().err
