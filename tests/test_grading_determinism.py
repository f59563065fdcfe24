"""The same notebook gets the same report: every probe starts from the same random state.

A part that draws random numbers without a seed of its own (Python's `random`,
numpy's global generator, a Keras SeedGenerator(None), torch.randn) draws the
same ones in every grading, in fresh workers, and whatever the probes before it
drew in the same worker.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "grading_fixtures"
sys.path.insert(0, str(FIXTURES))

import grading_toy as toy  # noqa: E402

from gencourse.grading.grade import grade_notebook  # noqa: E402
from gencourse.grading.inprocess import graded_namespace  # noqa: E402
from gencourse.grading.report import report_to_dict  # noqa: E402
from gencourse.grading.sandbox import Limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Unseeded draws from every source a numpy-only part has; the answer is wrong by a random amount.
NOISY = {"square": "import random\n\ndef square(x):\n"
                   "    return x ** 2 + 1e-3 * np.random.normal(size=np.shape(x)) + 1e-3 * random.random()\n"}


def _graded(path):
    limits = Limits(cpu_seconds=5, step_seconds=10, startup_seconds=60, total_seconds=120, processes=64,
                    memory_mb=512, file_mb=16, max_workers=6)
    report = report_to_dict(grade_notebook(path, toy.KEY, solutions_dir=toy.SOLUTIONS, limits=limits))
    return [(r["name"], r["score"], r["message"]) for r in report["results"]] + report["notes"]


def test_two_gradings_in_fresh_workers_give_the_same_report(tmp_path):
    path = toy.make_notebook(tmp_path / "noisy.ipynb", NOISY)
    first, second = _graded(path), _graded(path)
    assert first == second
    square = [r for r in first if isinstance(r, tuple) and r[0].startswith("square")]
    assert square and all(score == 0 for _, score, _ in square)       # the noise makes it wrong, the same way


@pytest.mark.parametrize("track", ["tf", "torch"])
def test_a_training_probe_trains_the_same_whatever_ran_before(track):
    """The VAE's training probe with the solution's parts, twice in one process with random draws between
    (a Keras SeedGenerator(None) in the student's Sampling takes Python's state when it is built)."""
    import importlib

    from gencourse.vae.assignment.step_checks import TrainingSetup, training_case

    ns = graded_namespace(f"vae-{track}", ROOT / "solutions" / "vae" / f"vae_{track}.ipynb", ROOT / "solutions")
    probes = importlib.import_module(f"gencourse.vae.assignment.{track}_probes")
    inputs = training_case(TrainingSetup(n_train=192, epochs=1)).inputs
    first = probes.train(ns, **inputs)
    random.random(), np.random.normal(), probes.sampling(ns, np.zeros((3, 2)), np.zeros((3, 2)))
    second = probes.train(ns, **inputs)
    assert set(first) == set(second)
    for name in first:
        np.testing.assert_array_equal(np.asarray(first[name]), np.asarray(second[name]), err_msg=name)


def test_keras_layer_names_do_not_count_the_networks_built_before():
    """Keras numbers automatic layer names over the whole process (conv2d_76 in the grader's tenth network):
    a trace numbers them within its network, so the layer a message names is the same in every grading."""
    keras = pytest.importorskip("keras")
    from gencourse.grading.tracing import trace

    def build():
        x = keras.Input((8, 8, 1))
        h = keras.layers.Conv2D(2, 3, name="mine_1")(keras.layers.Conv2D(2, 3)(x))
        return keras.Model(x, keras.layers.Conv2D(1, 3)(keras.layers.ZeroPadding2D(1)(h)))

    x = np.zeros((1, 8, 8, 1), np.float32)
    first, again = ([name for name, _ in trace(build(), x).outputs] for _ in range(2))
    assert first == again == ["conv2d", "mine_1", "zero_padding2d", "conv2d_1"]
