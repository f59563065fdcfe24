"""The VAE assignment in both tracks: source notebooks, checks, planted mistakes, notebook runs.

The solution notebooks must earn every point through the isolated grader, an
untouched release none (with "not implemented yet" and no grader error), and
each common mistake, planted in a copy of the solution, must lose exactly the
points of the checks that judge it, with its hint. Mistakes are graded without
the slow training check (a copy of the assignment without it) except for the
one mistake that check exists to catch.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from gencourse.grading import REGISTRY, register
from gencourse.grading import get_assignment
from gencourse.grading.grade import grade_notebook
from gencourse.grading.checklist import collect_checks

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
RELEASE = ROOT / "assignments"
TRACKS = ("tf", "torch")
TODO_PARTS = ["sampling", "kl", "latent_ranges", "condition"]
QUICK_ENV = {"GENCOURSE_EPOCHS": "1", "GENCOURSE_TRAIN_SIZE": "500"}


def source(track: str) -> Path:
    return SOLUTIONS / "vae" / f"vae_{track}.ipynb"


def grade_ids(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def fast_key(track: str) -> str:
    """The assignment without its slow training check, registered for these tests only."""
    key = f"vae-{track}fast"
    if key not in REGISTRY:
        full = get_assignment(f"vae-{track}")
        register(dataclasses.replace(full, track=f"{track}fast", checks=[c for c in full.checks if not c.slow]))
    return key


def plant(track: str, path: Path, mistakes: dict[str, str]) -> Path:
    """A copy of the solution notebook with the solution region of some cells replaced."""
    nb = nbformat.read(source(track), as_version=4)
    cells = grade_ids(nb)
    for gid, body in mistakes.items():
        src = cells[gid].source
        begin = re.search(r"^( *)### BEGIN SOLUTION\n", src, flags=re.M)
        end = re.search(r"^ *### END SOLUTION\n?", src, flags=re.M)
        indent = begin.group(1)
        new = "".join(indent + line + "\n" for line in body.strip("\n").splitlines())
        cells[gid].source = src[:begin.start()] + new + src[end.end():]
    nbformat.write(nb, path)
    return path


def by_name(report) -> dict:
    return {r.name: r for r in report.results}


# ----------------------------------------------------------------------------- fast: structure

@pytest.mark.parametrize("track", TRACKS)
def test_source_notebook_markup(track):
    nb = nbformat.read(source(track), as_version=4)
    assert nb.metadata["gencourse"]["assignment"] == f"vae-{track}"
    cells = grade_ids(nb)
    assignment = get_assignment(f"vae-{track}")
    assert assignment.parts == TODO_PARTS
    for gid in assignment.setup_cells:
        assert cells[gid].metadata["nbgrader"]["locked"] and cells[gid].cell_type == "code"
    for part in assignment.parts:
        meta = cells[part].metadata["nbgrader"]
        assert meta["solution"] and not meta["grade"] and cells[part].cell_type == "code"
        assert "### BEGIN SOLUTION" in cells[part].source
    for answer in ("reparam_answer", "kl_answer"):
        meta = cells[answer].metadata["nbgrader"]
        assert cells[answer].cell_type == "markdown" and meta["grade"] and meta["solution"]
        assert "Rubric" in cells[answer].source and "### BEGIN SOLUTION" in cells[answer].source
    # The order of the notebook follows the report; every part is tested after its cell.
    order = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    for part in assignment.parts:
        assert order.index(part) < order.index(f"test_{part}")
    # A test cell is worth what its checks are worth, visible and hidden.
    checks, notes, _ = collect_checks(assignment)
    assert not notes
    for part in assignment.parts:
        meta = cells[f"test_{part}"].metadata["nbgrader"]
        assert meta["grade"] and meta["locked"] and not meta["solution"]
        assert meta["points"] == sum(c.points for c in checks if c.part == part)
        src = cells[f"test_{part}"].source
        assert f'run_visible("vae-{track}", "{part}", globals())' in src
        assert f'run_hidden("vae-{track}", "{part}", globals())' in src.split("### BEGIN HIDDEN TESTS")[1]


@pytest.mark.parametrize("track", TRACKS)
def test_hidden_checks_use_other_inputs(track):
    """Hidden checks are hidden, cover every part, and never repeat a visible input."""
    assignment = get_assignment(f"vae-{track}")
    checks, _, path = collect_checks(assignment)
    assert path is not None and path.name == "vae.py"
    hidden = [c for c in checks if not c.visible]
    assert {c.part for c in hidden} == set(TODO_PARTS)
    visible_inputs = [call.inputs for c in assignment.checks for call in c.calls()]
    for check in hidden:
        for call in check.calls():
            for seen in visible_inputs:
                assert not all(k in seen and seen[k].shape == v.shape and (seen[k] == v).all()
                               for k, v in call.inputs.items())


# ----------------------------------------------------------------------------- judges on replies

def test_judges_name_the_stub_and_other_errors():
    from gencourse.grading import Reply, failure

    stub = Reply(error="NotImplementedError (cell 'kl', line 4)")
    assert failure(stub).startswith("not implemented yet")
    framework = Reply(error="NotImplementedError: Cannot convert a symbolic tf.Tensor to a numpy array (cell 'sampling', line 3)")
    assert "raised an error" in failure(framework)


# ----------------------------------------------------------------------------- graded through the isolated grader

@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_gets_full_marks(track):
    start = time.time()
    report = grade_notebook(source(track), f"vae-{track}", student="solution")
    lost = [(r.name, r.message) for r in report.results if r.score < r.points]
    assert not lost, lost
    assert report.score == report.max_score == 21
    assert {r.part for r in report.results} == set(TODO_PARTS)
    assert not [n for n in report.notes if "grader error" in n], report.notes
    print(f"grading the {track} solution: {time.time() - start:.0f} s")
    import assignment_helpers as helpers

    helpers.assert_as_recorded(report, f"vae-{track}", "solution")


@pytest.mark.parametrize("track", TRACKS)
def test_untouched_release_scores_zero(track):
    release = RELEASE / "vae" / f"vae_{track}.ipynb"
    report = grade_notebook(release, f"vae-{track}", student="untouched")
    assert report.score == 0
    for r in report.results:
        assert r.message.startswith("not implemented yet"), (r.name, r.message)
    assert not [n for n in report.notes if "grader error" in n], report.notes
    import assignment_helpers as helpers

    helpers.assert_as_recorded(report, f"vae-{track}", "release")


SAMPLING = {
    "tf": {
        "deterministic": "return z_mean",
        "variance": "eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)\n"
                    "return z_mean + ops.exp(z_log_var) * eps",
        "uniform": "eps = keras.random.uniform(ops.shape(z_mean), seed=self.seed_generator)\n"
                   "return z_mean + ops.exp(0.5 * z_log_var) * eps",
        "numpy": "eps = np.random.normal(size=tuple(z_mean.shape))\n"
                 "return np.asarray(z_mean) + np.exp(0.5 * np.asarray(z_log_var)) * eps",
        "fixed_seed": "eps = keras.random.normal(ops.shape(z_mean), seed=42)\n"
                      "return z_mean + ops.exp(0.5 * z_log_var) * eps",
    },
    "torch": {
        "deterministic": "return z_mean",
        "variance": "return z_mean + torch.exp(z_log_var) * torch.randn_like(z_mean)",
        "uniform": "return z_mean + torch.exp(0.5 * z_log_var) * torch.rand_like(z_mean)",
        "numpy": "eps = np.random.normal(size=tuple(z_mean.shape))\n"
                 "z = z_mean.detach().numpy() + np.exp(0.5 * z_log_var.detach().numpy()) * eps\n"
                 "return torch.as_tensor(z, dtype=torch.float32)",
        "fixed_seed": "g = torch.Generator().manual_seed(0)\n"
                      "return z_mean + torch.exp(0.5 * z_log_var) * torch.randn(z_mean.shape, generator=g)",
    },
}
KL = {
    "tf": {
        "no_half": "return -ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)",
        "sign": "return 0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)",
        "batch_sum": "return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))",
        "batch_mean": "return ops.mean(-0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1))",
    },
    "torch": {
        "no_half": "return -torch.sum(1 + z_log_var - z_mean.square() - z_log_var.exp(), dim=-1)",
        "sign": "return 0.5 * torch.sum(1 + z_log_var - z_mean.square() - z_log_var.exp(), dim=-1)",
        "batch_sum": "return -0.5 * torch.sum(1 + z_log_var - z_mean.square() - z_log_var.exp())",
        "batch_mean": "return (-0.5 * torch.sum(1 + z_log_var - z_mean.square() - z_log_var.exp(), dim=-1)).mean()",
    },
}
RANGES = {
    "dims_first": "from gencourse.reference import latent_ranges as oracle\n"
                  "return oracle(z, labels, n_classes).transpose(1, 0, 2)",
    "max_min": "from gencourse.reference import latent_ranges as oracle\n"
               "return oracle(z, labels, n_classes)[..., ::-1]",
}
CONDITION = {
    "tf": {
        "raw_label": "return ops.concatenate([h, ops.cast(ops.expand_dims(labels, -1), h.dtype)], axis=-1)",
        "onehot_first": "return ops.concatenate([ops.cast(ops.one_hot(labels, n_classes), h.dtype), h], axis=-1)",
    },
    "torch": {
        "raw_label": "return torch.cat([h, labels[:, None].to(h.dtype)], dim=-1)",
        "onehot_first": "return torch.cat([F.one_hot(labels, n_classes).to(h.dtype), h], dim=-1)",
    },
}
S_STATS = ["Sampling: z = z_mean + exp(0.5 * z_log_var) * eps with eps ~ N(0, 1)",
           "Sampling (hidden): other shapes, log-variances per entry, tiny and large sigma"]
S_GRAD = ["Sampling: gradients reach z_mean and z_log_var (reparameterization trick)",
          "Sampling gradients (hidden): other shapes and scales"]
KL_VALUES = ["KL divergence: one value per example, equal to the formula",
             "KL divergence (hidden): a batch of one, all zeros, wide latents, large values"]
RANGES_CHECKS = ["Latent ranges: per digit and dimension, (min, max)",
                 "Latent ranges (hidden): a digit seen once, codes below zero, wider latents"]
CONDITION_CHECKS = ["CVAE conditioning: features followed by the one-hot digit",
                    "CVAE conditioning (hidden): one example, another number of classes"]

# (planted mistakes by part, {check name: hint every lost check's message contains})
PLANTS = {
    "m1": ({"sampling": ("deterministic", SAMPLING), "kl": ("no_half", KL), "latent_ranges": "dims_first",
            "condition": ("raw_label", CONDITION)},
           {**dict.fromkeys(S_STATS, "noise is missing"), **dict.fromkeys(S_GRAD, "does not depend on z_log_var"),
            **dict.fromkeys(KL_VALUES, "twice too large"), **dict.fromkeys(RANGES_CHECKS, "another order"),
            **dict.fromkeys(CONDITION_CHECKS, "as a number")}),
    "m2": ({"sampling": ("variance", SAMPLING), "kl": ("sign", KL), "latent_ranges": "max_min",
            "condition": ("onehot_first", CONDITION)},
           {**dict.fromkeys(S_STATS, "exp(z_log_var) = sigma^2"), **dict.fromkeys(S_GRAD, "exp(z_log_var) where"),
            **dict.fromkeys(KL_VALUES, "wrong sign"), **dict.fromkeys(RANGES_CHECKS, "min and max are swapped"),
            **dict.fromkeys(CONDITION_CHECKS, "comes first")}),
    "m3": ({"sampling": ("uniform", SAMPLING), "kl": ("batch_sum", KL)},
           {**dict.fromkeys(S_STATS, "uniform"), **dict.fromkeys(KL_VALUES, "its sum")}),
    "m4": ({"sampling": ("numpy", SAMPLING), "kl": ("batch_mean", KL)},
           {**dict.fromkeys(S_GRAD, "outside the framework's graph"), **dict.fromkeys(KL_VALUES, "its mean")}),
    "m5": ({"sampling": ("fixed_seed", SAMPLING)},
           dict.fromkeys(S_STATS, "new on every call")),
}


def _bodies(track, plants):
    out = {}
    for part, what in plants.items():
        if isinstance(what, tuple):
            name, table = what
            out[part] = table[track][name]
        else:
            out[part] = RANGES[what]
    return out


@pytest.mark.parametrize("plant_id", sorted(PLANTS))
@pytest.mark.parametrize("track", TRACKS)
def test_planted_mistakes_lose_exactly_their_checks(track, plant_id, tmp_path):
    plants, expected = PLANTS[plant_id]
    nb = plant(track, tmp_path / f"{plant_id}.ipynb", _bodies(track, plants))
    report = grade_notebook(nb, fast_key(track), student=plant_id)
    results = by_name(report)
    lost = {name for name, r in results.items() if r.score < r.points}
    assert lost == set(expected), {n: results[n].message for n in lost ^ set(expected) if n in results}
    for name, hint in expected.items():
        assert results[name].score == 0
        assert hint in results[name].message, (name, results[name].message)
    assert report.score == report.max_score - sum(results[n].points for n in expected)
    assert not [n for n in report.notes if "grader error" in n], report.notes


@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_kl_with_the_wrong_sign_does_not_train(track, tmp_path):
    nb = plant(track, tmp_path / "sign.ipynb", {"kl": KL[track]["sign"]})
    report = grade_notebook(nb, f"vae-{track}", student="sign", visible_only=True)
    training = by_name(report)["Training with your Sampling and KL lowers the held-out neg-ELBO"]
    assert training.score == 0 and ("diverged" in training.message or "neg-ELBO is" in training.message)


# ----------------------------------------------------------------------------- the notebooks run

@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_notebook_runs_top_to_bottom(track, tmp_path):
    """Quick setting; the test cells (visible and hidden checks) must pass in the kernel too."""
    from nbclient import NotebookClient

    from conftest import SHARED_MNIST

    nb = nbformat.read(source(track), as_version=4)
    env = {**QUICK_ENV, "GENCOURSE_DATA": str(SHARED_MNIST)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    start = time.time()
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    elapsed = time.time() - start
    print(f"vae_{track}.ipynb ran in {elapsed:.0f} s")
    assert elapsed < 300
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "epoch   1" in outputs and "CVAE after 1 epoch" in outputs


HOSTILE_KL = {
    "patches_numpy_and_torch": (
        "import numpy, torch\n"
        "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True\n"
        "numpy.isclose = lambda *a, **k: True\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
        "torch.allclose = lambda *a, **k: True\ntorch.testing.assert_close = lambda *a, **k: None\n"
        "torch.Tensor.__eq__ = lambda self, other: True\n"
        "return torch.zeros(z_mean.shape[0]) + 7.0"),
    "always_equal_object": (
        "class Same:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
        "    def __array__(self, *a, **k):\n        raise TypeError('no')\n"
        "return Same()"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_KL))
def test_hostile_kl_earns_nothing_and_costs_nothing_else(case, tmp_path):
    """A KL that patches numpy/torch or returns an always-equal object: the KL checks
    are judged in the grader's process on plain arrays, so they score 0; every other part
    keeps its points and the grader reports no error of its own."""
    nb = plant("torch", tmp_path / f"{case}.ipynb", {"kl": HOSTILE_KL[case]})
    report = grade_notebook(nb, fast_key("torch"), student=case)
    results = by_name(report)
    lost = {name for name, r in results.items() if r.score < r.points}
    assert lost == set(KL_VALUES), {n: results[n].message for n in lost}
    assert report.score == report.max_score - sum(results[n].points for n in KL_VALUES)
    assert not [n for n in report.notes if "grader error" in n], report.notes
