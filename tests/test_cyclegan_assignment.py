"""The CycleGAN assignment in both tracks: source notebooks, checks, planted mistakes, notebook runs.

Each notebook is graded once per module (fixtures) and the results reused. The
solutions must earn every point through the isolated grader, the untouched
releases none (each message "not implemented yet", no grader error). Planted
mistakes are graded without the slow training check (a copy of the assignment
without it), all of one track's in one notebook where they touch different
parts, and must lose exactly the checks that judge them, with their hints.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

import assignment_helpers as helpers
from gencourse.cyclegan.common import PATCHGAN_PARAMS
from gencourse.cyclegan.assignment import PARTS
from gencourse.cyclegan.assignment import checks as cc
from gencourse.grading import Reply
from gencourse.grading.grade import grade_notebook
from test_vae_assignment import by_name

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, RELEASE = ROOT / "solutions", ROOT / "assignments"
TRACKS = ("tf", "torch")
# The demo's quick setting, and one thread per library as in the grader's worker: on a shared 2-core
# machine, torch's default two threads made one demo iteration 9 s instead of about 1 s.
QUICK_ENV = {"GENCOURSE_ITERATIONS": "3", **{k: "1" for k in (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}}
TRAINING = "Training with your parts lowers the held-out cycle error (digits task)"


def source(track: str) -> Path:
    return SOLUTIONS / "cyclegan" / f"cyclegan_{track}.ipynb"


def fast_key(track: str) -> str:
    return helpers.fast_key(f"cyclegan-{track}")


def plant(track: str, path: Path, mistakes: dict[str, str]) -> Path:
    """A copy of the solution notebook with the (first) solution region of some cells replaced."""
    return helpers.plant(source(track), path, mistakes)


grader_errors = helpers.grader_errors


# ----------------------------------------------------------------------------- fast: structure and judges

@pytest.mark.parametrize("track", TRACKS)
def test_source_notebook_markup(track):
    helpers.check_markup(source(track), f"cyclegan-{track}", PARTS, ("cycle_answer", "patchgan_answer"),
                         cc.TRAINING_PART)


@pytest.mark.parametrize("track", TRACKS)
def test_hidden_checks_use_other_inputs(track):
    helpers.check_hidden_inputs(f"cyclegan-{track}", PARTS, "cyclegan.py")


def test_param_count_formula_is_the_reference_layout():
    assert cc.patchgan_param_count(3, 64, 3) == PATCHGAN_PARAMS


def _loss_reply(value, n_grads=2):
    grads = {"grad_a": np.zeros(1), "grad_b": np.zeros(1)} if n_grads == 2 else {"grad": np.zeros(1)}
    return {"k": Reply(arrays={"loss": np.array(value), "missing": np.ones(n_grads), **grads})}


def test_cycle_judge_names_each_mistake():
    case = cc.cycle_case(5, (2, 6, 6, 1), 3.0)
    a, ra = case.inputs["real_a"].astype(np.float64), case.inputs["reconstructed_a"].astype(np.float64)
    b, rb = case.inputs["real_b"].astype(np.float64), case.inputs["reconstructed_b"].astype(np.float64)
    l1a, l1b = np.abs(a - ra).mean(), np.abs(b - rb).mean()
    for value, hint in [(3 * (np.square(a - ra).mean() + np.square(b - rb).mean()), "L2 instead of L1"),
                        (l1a + l1b, "lambda_cycle is missing"), (10 * (l1a + l1b), "fixed at 10"),
                        (3 * l1a, "only one direction"), (3 * l1b, "only one direction"),
                        (1.5 * (l1a + l1b), "averaged"), (-3 * (l1a + l1b), "wrong sign"), (0.123, "expected")]:
        with pytest.raises(cc.Mistake, match=hint):
            cc.judge_cycle(case.inputs, _loss_reply(value), "k")
    with pytest.raises(cc.Mistake, match="no gradient reaches reconstructed_a"):   # right value, numpy
        cc.judge_cycle(case.inputs, _loss_reply(3 * (l1a + l1b)), "k")


def test_identity_judge_names_the_weight():
    case = cc.identity_case(6, (2, 5, 5, 1), 10.0, 0.5)
    l1 = np.abs(case.inputs["real"].astype(np.float64) - case.inputs["same"]).mean()
    for value, hint in [(0.5 * l1, "lambda_identity alone"), (10 * l1, "lambda_cycle alone"),
                        (l1, "weight is missing")]:
        with pytest.raises(cc.Mistake, match=hint):
            cc.judge_identity(case.inputs, _loss_reply(value, 1), "k")


def test_map_and_field_judges():
    case = cc.maps_case(1, [256, 128])
    pooled = {"k": Reply(arrays={"shape0": np.array([2, 1]), "shape1": np.array([2, 1])})}
    with pytest.raises(cc.Mistake, match="one number per image"):
        cc.judge_maps("tf")(case.inputs, pooled, "k")
    one = {"k": Reply(arrays={"shape0": np.array([2, 1, 1, 1]), "shape1": np.array([2, 1, 1, 1])})}
    with pytest.raises(cc.Mistake, match="1x1 for every input size"):
        cc.judge_maps("tf")(case.inputs, one, "k")
    field = cc.field_case(2, 96, 5)
    everything = {"k": Reply(arrays={"rows": np.ones(96), "cols": np.ones(96), "switched": np.array(3)})}
    with pytest.raises(cc.Mistake, match="every pixel"):
        cc.judge_field(field.inputs, everything, "k")
    narrow = np.zeros(96)
    narrow[20:66] = 1
    with pytest.raises(cc.Mistake, match="46 pixels wide"):
        cc.judge_field(field.inputs, {"k": Reply(arrays={"rows": narrow, "cols": narrow,
                                                         "switched": np.array(3)})}, "k")


# ----------------------------------------------------------------------------- graded through the isolated grader

@pytest.fixture(scope="module")
def solution_reports():
    """Each solution notebook graded once, visible and hidden checks, the training included."""
    return helpers.grade_solutions({t: source(t) for t in TRACKS}, "cyclegan")


@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_gets_full_marks(track, solution_reports):
    report = solution_reports[track]
    helpers.assert_full_marks(report, 21, {*PARTS, cc.TRAINING_PART})
    helpers.assert_as_recorded(report, f"cyclegan-{track}", "solution")
    assert "held-out cycle error" in by_name(report)[TRAINING].message


@pytest.mark.parametrize("track", TRACKS)
def test_untouched_release_scores_zero(track):
    release = RELEASE / "cyclegan" / f"cyclegan_{track}.ipynb"
    report = grade_notebook(release, f"cyclegan-{track}", student="untouched")
    helpers.assert_untouched(report, 21)
    helpers.assert_as_recorded(report, f"cyclegan-{track}", "release")


CYCLE = "Cycle-consistency loss: lambda * (mean |F(G(a)) - a| + mean |G(F(b)) - b|)"
CYCLE_H = "Cycle-consistency loss (hidden): a batch of one, non-square images, a perfect A side"
IDENTITY = "Identity loss: lambda_identity * lambda_cycle * mean |G(y) - y|"
IDENTITY_H = "Identity loss (hidden): other weights and shapes"
MAPS = "PatchGAN: map sizes (256 -> 30x30, 128 -> 14x14, 64 -> 6x6; n_layers=2)"
MAPS_H = "PatchGAN (hidden): map sizes 70, 200 and 32, one and four channels"
FIELD = "PatchGAN: each output unit sees a 70x70 patch (gradient of one unit)"
FIELD_H = "PatchGAN (hidden): receptive field at another unit, and with n_layers=2"
PARAMS = f"PatchGAN: {PATCHGAN_PARAMS:,} parameters in the reference layout"
PARAMS_H = "PatchGAN (hidden): parameter counts of other widths"
LOGITS = "PatchGAN: raw scores (logits), no sigmoid at the end"

CYCLE_BODIES = {
    "torch": {
        "l2": "return lambda_cycle * (((reconstructed_a - real_a) ** 2).mean() + ((reconstructed_b - real_b) ** 2).mean())",
        "no_lambda": "return (reconstructed_a - real_a).abs().mean() + (reconstructed_b - real_b).abs().mean()",
        "one_direction": "return lambda_cycle * (reconstructed_a - real_a).abs().mean()",
    },
    "tf": {
        "l2": "return lambda_cycle * (ops.mean(ops.square(reconstructed_a - real_a)) + ops.mean(ops.square(reconstructed_b - real_b)))",
        "no_lambda": "return ops.mean(ops.abs(reconstructed_a - real_a)) + ops.mean(ops.abs(reconstructed_b - real_b))",
        "one_direction": "return lambda_cycle * ops.mean(ops.abs(reconstructed_a - real_a))",
    },
}
IDENTITY_BODIES = {
    "torch": {"weight": "return lambda_identity * (same - real).abs().mean()"},
    "tf": {"weight": "return lambda_identity * ops.mean(ops.abs(same - real))"},
}
# Discriminator bodies replace the first solution region (torch: __init__, keeping the solution's forward).
D_BODIES = {
    "torch": {
        "pooled": "self.layers = nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2),\n"
                  "                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ndf, 1))",
        "small_field": "blocks = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]\n"
                       "for i in range(1, n_layers + 1):\n"
                       "    blocks += [nn.Conv2d(ndf, ndf, 3, 1 if i == n_layers else 2, 1), nn.LeakyReLU(0.2)]\n"
                       "blocks.append(nn.Conv2d(ndf, 1, 3, 1, 1))\n"
                       "self.layers = nn.Sequential(*blocks)",
        "affine_sigmoid": "blocks = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]\n"
                          "width = ndf\n"
                          "for i in range(1, n_layers + 1):\n"
                          "    out = ndf * min(2 ** i, 8)\n"
                          "    blocks += [nn.Conv2d(width, out, 4, 1 if i == n_layers else 2, 1),\n"
                          "               nn.InstanceNorm2d(out, affine=True), nn.LeakyReLU(0.2)]\n"
                          "    width = out\n"
                          "blocks += [nn.Conv2d(width, 1, 4, 1, 1), nn.Sigmoid()]\n"
                          "self.layers = nn.Sequential(*blocks)",
    },
    "tf": {
        "pooled": "inputs = keras.Input((None, None, in_channels))\n"
                  "x = layers.Conv2D(ndf, 4, strides=2, padding='same')(inputs)\n"
                  "x = layers.GlobalAveragePooling2D()(layers.LeakyReLU(0.2)(x))\n"
                  "return keras.Model(inputs, layers.Dense(1)(x))",
        "small_field": "inputs = keras.Input((None, None, in_channels))\n"
                       "x = layers.LeakyReLU(0.2)(layers.Conv2D(ndf, 4, 2)(layers.ZeroPadding2D(1)(inputs)))\n"
                       "for i in range(1, n_layers + 1):\n"
                       "    x = layers.Conv2D(ndf, 3, 1 if i == n_layers else 2, padding='same')(x)\n"
                       "    x = layers.LeakyReLU(0.2)(x)\n"
                       "return keras.Model(inputs, layers.Conv2D(1, 3, padding='same')(x))",
        "affine_sigmoid": "inputs = keras.Input((None, None, in_channels))\n"
                          "x = layers.LeakyReLU(0.2)(layers.Conv2D(ndf, 4, 2)(layers.ZeroPadding2D(1)(inputs)))\n"
                          "for i in range(1, n_layers + 1):\n"
                          "    x = layers.Conv2D(ndf * min(2 ** i, 8), 4, 1 if i == n_layers else 2)(layers.ZeroPadding2D(1)(x))\n"
                          "    x = layers.LeakyReLU(0.2)(InstanceNormalization(affine=True)(x))\n"
                          "x = layers.Conv2D(1, 4, activation='sigmoid')(layers.ZeroPadding2D(1)(x))\n"
                          "return keras.Model(inputs, x)",
    },
}

# plant id -> ({cell: (table, body name)}, {check name: hint its message must contain})
PLANTS = {
    "p1": ({"cycle_loss": (CYCLE_BODIES, "l2"), "identity_loss": (IDENTITY_BODIES, "weight"),
            "discriminator": (D_BODIES, "pooled")},
           {CYCLE: "L2 instead of L1", CYCLE_H: "L2 instead of L1", IDENTITY: "lambda_identity alone",
            IDENTITY_H: "lambda_identity alone", MAPS: "one number per image", MAPS_H: "one number per image",
            FIELD: "no unit", FIELD_H: "no unit", PARAMS: "parameters", PARAMS_H: "parameters"}),
    "p2": ({"cycle_loss": (CYCLE_BODIES, "no_lambda"), "discriminator": (D_BODIES, "small_field")},
           {CYCLE: "lambda_cycle is missing", CYCLE_H: "lambda_cycle is missing", MAPS: "map sizes",
            MAPS_H: "map sizes", FIELD: "pixels wide", FIELD_H: "pixels wide", PARAMS: "parameters",
            PARAMS_H: "parameters"}),
    "p3": ({"cycle_loss": (CYCLE_BODIES, "one_direction"), "discriminator": (D_BODIES, "affine_sigmoid")},
           {CYCLE: "only one direction", CYCLE_H: "only one direction", PARAMS: "affine normalization",
            PARAMS_H: "affine normalization", LOGITS: "sigmoid"}),
}


@pytest.mark.parametrize("plant_id", sorted(PLANTS))
@pytest.mark.parametrize("track", TRACKS)
def test_planted_mistakes_lose_exactly_their_checks(track, plant_id, tmp_path):
    plants, expected = PLANTS[plant_id]
    bodies = {cell: table[track][name] for cell, (table, name) in plants.items()}
    report = grade_notebook(plant(track, tmp_path / f"{plant_id}.ipynb", bodies), fast_key(track), student=plant_id)
    helpers.assert_lost_exactly(report, expected)


# ----------------------------------------------------------------------------- hostile submissions

HOSTILE = {
    # patches numpy and torch in the worker, and returns a made-up loss
    "cycle_loss": (
        "import numpy, torch\n"
        "numpy.allclose = lambda *a, **k: True\nnumpy.isclose = lambda *a, **k: True\n"
        "numpy.array_equal = lambda *a, **k: True\nnumpy.abs = lambda x: x * 0\n"
        "torch.allclose = lambda *a, **k: True\ntorch.Tensor.__eq__ = lambda self, other: True\n"
        "return torch.tensor(3.0, requires_grad=True)"),
    # an object equal to everything
    "identity_loss": (
        "class Same(float):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = float.__hash__\n"
        "    def __array__(self, *a, **k):\n        raise TypeError('no')\n"
        "return Same(1.0)"),
}


def test_hostile_losses_lose_only_their_checks(tmp_path):
    """A cycle loss that patches numpy/torch and an identity loss that returns an always-equal object:
    their checks are judged in the grader's process on plain arrays and score 0; the discriminator keeps
    its points and the grader reports no error of its own."""
    report = grade_notebook(plant("torch", tmp_path / "hostile.ipynb", HOSTILE), fast_key("torch"), student="hostile")
    results = by_name(report)
    lost = {name for name, r in results.items() if r.score < r.points}
    assert lost == {CYCLE, CYCLE_H, IDENTITY, IDENTITY_H}, {n: results[n].message for n in lost}
    assert report.score == report.max_score - 9
    assert not grader_errors(report), report.notes


# ----------------------------------------------------------------------------- the notebooks run

@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_notebook_runs_top_to_bottom(track, tmp_path, monkeypatch):
    """Quick setting; the test cells (visible and hidden checks, the training check) pass in the kernel too."""
    from nbclient import NotebookClient

    from conftest import SHARED_MNIST

    for name, value in {**QUICK_ENV, "GENCOURSE_DATA": str(SHARED_MNIST)}.items():
        monkeypatch.setenv(name, value)       # the kernel inherits this process's environment
    nb = nbformat.read(source(track), as_version=4)
    start = time.time()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"cyclegan_{track}.ipynb ran in {time.time() - start:.0f} s")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "after 3 iterations: held-out cycle error" in outputs
    assert "2764737" in outputs and "(70, 8, -23)" in outputs


@pytest.mark.slow
def test_a_dead_cycle_loss_does_not_train(tmp_path):
    """The closest calibrated failure (held-out cycle error 0.45 against the pass mark 0.36)."""
    nb = plant("torch", tmp_path / "zero.ipynb",
               {"cycle_loss": "return 0.0 * (reconstructed_a - real_a).abs().mean()"})
    report = grade_notebook(nb, "cyclegan-torch", student="zero", visible_only=True)
    training = by_name(report)[TRAINING]
    assert training.score == 0 and "held-out cycle error" in training.message, training.message
