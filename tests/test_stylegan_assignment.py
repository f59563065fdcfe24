"""The StyleGAN assignment in both tracks: source notebooks, checks, planted mistakes, notebook runs.

Each solution notebook is graded once per module (a fixture) and the report
reused. The solutions must earn every point through the isolated grader, the
untouched releases none (each message "not implemented yet", no grader error).
Planted mistakes are graded without the slow fit check (a copy of the
assignment without it), one mistake per part in each notebook, and must lose
exactly the checks that judge them, with their hints.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

import assignment_helpers as helpers
from gencourse.stylegan.assignment import PARTS
from gencourse.stylegan.assignment import checks as sc
from gencourse.grading import Reply
from gencourse.grading.grade import grade_notebook
from gencourse.reference import stylegan as ref
from test_vae_assignment import by_name

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, RELEASE = ROOT / "solutions", ROOT / "assignments"
TRACKS = ("tf", "torch")
QUICK_ENV = {"GENCOURSE_ITERATIONS": "3", **{k: "1" for k in (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}}
FIT = "Fitting with your AdaIN and noise: the synthesis network learns 16 digits"
ANSWERS = ("adain_answer", "mapping_answer", "mixing_answer", "fid_answer")


def source(track: str) -> Path:
    return SOLUTIONS / "stylegan" / f"stylegan_{track}.ipynb"


def fast_key(track: str) -> str:
    return helpers.fast_key(f"stylegan-{track}")


def plant(track: str, path: Path, mistakes: dict) -> Path:
    return helpers.plant(source(track), path, mistakes)


grader_errors = helpers.grader_errors


# ----------------------------------------------------------------------------- fast: structure and judges

@pytest.mark.parametrize("track", TRACKS)
def test_source_notebook_markup(track):
    cells = helpers.check_markup(source(track), f"stylegan-{track}", PARTS, ANSWERS, sc.TRAINING_PART)
    # the affine map A is given, outside the student's region: the grader loads its weights
    assert "self.style = Equalized" in cells["adain"].source.split("### BEGIN SOLUTION")[0]


@pytest.mark.parametrize("track", TRACKS)
def test_hidden_checks_use_other_inputs(track):
    helpers.check_hidden_inputs(f"stylegan-{track}", PARTS, "stylegan.py")


def _reply(**arrays):
    return {"k": Reply(arrays={k: np.asarray(v) for k, v in arrays.items()})}


def test_adain_judge_names_each_mistake():
    """Wrong answers computed here by hand (not with the judge's helpers) get their hints."""
    case = sc.adain_case(5, (3, 4, 4, 2), 6)
    x, eps = case.inputs["x"].astype(np.float64), 1e-8
    style = case.inputs["w"] @ case.inputs["kernel"].astype(np.float64) / np.sqrt(6) + case.inputs["bias"]
    s, b = style[:, None, None, :2], style[:, None, None, 2:]
    inst = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + eps)
    right = ref.adaptive_instance_norm(x, style[:, :2], style[:, 2:])
    assert np.allclose(right, (1 + s) * inst + b)
    batch = (x - x.mean(axis=(0, 1, 2), keepdims=True)) / np.sqrt(x.var(axis=(0, 1, 2), keepdims=True) + eps)
    layer = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / np.sqrt(x.var(axis=(1, 2, 3), keepdims=True) + eps)
    unbiased = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True, ddof=1) + eps)
    styled = (1 + s) * x + b
    before = (styled - styled.mean(axis=(1, 2), keepdims=True)) / np.sqrt(styled.var(axis=(1, 2), keepdims=True) + eps)
    for y, hint in [((1 + s) * batch + b, "over the batch"), ((1 + s) * layer + b, "all channels"),
                    ((1 + s) * unbiased + b, "unbiased"), (s * inst + b, "no \\+1"),
                    (before, "before the normalization"), ((1 + b) * inst + s, "swapped"),
                    (styled, "no normalization"), (right + 0.1, "expected")]:
        with pytest.raises(sc.Mistake, match=hint):
            sc.judge_adain(case.inputs, _reply(y=y, grad_w=np.zeros((3, 6)), missing=0.0), "k")
    with pytest.raises(sc.Mistake, match="no gradient reaches w"):
        sc.judge_adain(case.inputs, _reply(y=right, grad_w=np.zeros((3, 6)), missing=1.0), "k")
    with pytest.raises(sc.Mistake, match="its gradient for w is not"):
        sc.judge_adain(case.inputs, _reply(y=right, grad_w=np.ones((3, 6)), missing=0.0), "k")
    flat = sc.adain_case(6, (2, 3, 3, 3), 4, eps=1e-3, flat_channels=True)
    with pytest.raises(sc.Mistake, match="epsilon is missing"):
        sc.judge_adain(flat.inputs, _reply(y=np.full(flat.inputs["x"].shape, np.nan), grad_w=np.zeros((2, 4)),
                                           missing=0.0), "k")


def test_mixing_and_truncation_judges():
    case = sc.mixing_case(7, 2, 6, 3, 2)
    w1, w2 = case.inputs["w1"], case.inputs["w2"]
    for ws, hint in [(np.concatenate([w2[:, :2], w1[:, 2:]], 1), "swapped"),
                     (np.concatenate([w1[:, :3], w2[:, 3:]], 1), "off by one"),
                     (np.concatenate([w1[:, :1], w2[:, 1:]], 1), "off by one")]:
        with pytest.raises(sc.Mistake, match=hint):
            sc.judge_mixing(case.inputs, _reply(ws=ws), "k")
    case = sc.truncation_case(8, 2, 6, 3, 0.7, 3)
    ws, avg = case.inputs["ws"].astype(np.float64), case.inputs["w_avg"].astype(np.float64)
    low = np.arange(6)[None, :, None] < 3
    for got, hint in [(np.where(low, avg - 0.7 * (ws - avg), ws), "wrong direction"),
                      (avg + 0.7 * (ws - avg), "cutoff is ignored"), (np.where(low, 0.7 * ws, ws), "around zero"),
                      (np.where(low, avg + 0.3 * (ws - avg), ws), "1 - psi")]:
        with pytest.raises(sc.Mistake, match=hint):
            sc.judge_truncation(case.inputs, _reply(ws=got), "k")


def test_noise_judges():
    case = sc.noise_case(9, (3, 6, 6, 4))
    x = case.inputs["x"].astype(np.float64)
    rng = np.random.default_rng(0)
    one = rng.standard_normal((3, 6, 6, 1))
    with pytest.raises(sc.Mistake, match="differs between channels"):
        sc.judge_noise_drawn(case.inputs, _reply(first=rng.standard_normal(x.shape),
                                                 second=rng.standard_normal(x.shape)), "k")
    same = np.broadcast_to(one, x.shape)
    with pytest.raises(sc.Mistake, match="same noise on every call"):
        sc.judge_noise_drawn(case.inputs, _reply(first=same, second=same), "k")
    with pytest.raises(sc.Mistake, match="standard normal"):
        sc.judge_noise_drawn(case.inputs, _reply(first=same + 0.5, second=same * 0.9 + 0.5), "k")
    assert sc.judge_noise_drawn(case.inputs, _reply(first=same, second=-same), "k") is None
    with pytest.raises(sc.Mistake, match="does not start at zero"):
        sc.judge_noise_init(case.inputs, _reply(sizes=[4], values=np.ones(4), y=x), "k")
    with pytest.raises(sc.Mistake, match="one learned scale per channel"):
        sc.judge_noise_init(case.inputs, _reply(sizes=[1], values=np.zeros(1), y=x), "k")
    with pytest.raises(sc.Mistake, match="scale is not applied"):
        sc.judge_noise_given(case.inputs, _reply(y=x + case.inputs["noise"]), "k")


def test_fit_data_are_digits_and_codes():
    ws, x = sc.fit_data(16, 0)
    assert ws.shape == (16, 32) and x.shape == (16, 16, 16, 1)
    assert x.min() >= -1 and x.max() <= 1 and x.max() > 0.5          # ink on a background of -1
    assert np.abs(x - x[:1]).mean() > 0.1                           # different digits


# ----------------------------------------------------------------------------- graded through the isolated grader

@pytest.fixture(scope="module")
def solution_reports():
    """Each solution notebook graded once, visible and hidden checks, the fit included."""
    return helpers.grade_solutions({t: source(t) for t in TRACKS}, "stylegan")


@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_gets_full_marks(track, solution_reports):
    report = solution_reports[track]
    helpers.assert_full_marks(report, 21, {*PARTS, sc.TRAINING_PART})
    helpers.assert_as_recorded(report, f"stylegan-{track}", "solution")
    error = float(re.search(r"mean squared error ([0-9.]+)", by_name(report)[FIT].message).group(1))
    assert error < sc.VISIBLE_FIT.threshold / 2       # the margin the pass mark was chosen with


@pytest.mark.parametrize("track", TRACKS)
def test_untouched_release_scores_zero(track):
    release = RELEASE / "stylegan" / f"stylegan_{track}.ipynb"
    report = grade_notebook(release, f"stylegan-{track}", student="untouched")
    helpers.assert_untouched(report, 21)
    helpers.assert_as_recorded(report, f"stylegan-{track}", "release")


ADAIN = "AdaIN: (1 + y_s) * instance_norm(x) + y_b, and gradients reaching w"
ADAIN_EPS = "AdaIN: the epsilon, on a constant channel and one of tiny variance (eps=1e-3)"
ADAIN_H = "AdaIN (hidden): a batch of one, non-square maps, one channel, another eps"
NOISE_INIT = "NoiseInjection: one learned scale per channel, starting at zero"
NOISE_DRAWN = "NoiseInjection: drawn noise is one N(0, 1) image per example, broadcast over channels"
MIX = "Style mixing: layers before the crossover take w1, the rest w2"
MIX_H = "Style mixing (hidden): crossover 0 (all w2), at the last layer (all w1) and 1"
TRUNC = "Truncation: w_avg + psi (w - w_avg) on the layers below the cutoff"
TRUNC_H = "Truncation (hidden): psi 0 (all w_avg), psi above 1, a cutoff of 1"


def adain_body(track, axes="spatial", unbiased=False, eps=True, out="(1 + s) * n + b", before=False):
    """A forward body: the style, mean and variance over `axes`, then `out` (n: the normalized x)."""
    if track == "torch":
        dims = {"spatial": "(2, 3)", "batch": "(0, 2, 3)", "layer": "(1, 2, 3)"}[axes]
        head = ("style = self.style(w)\n"
                "s, b = style[:, :self.channels, None, None], style[:, self.channels:, None, None]\n")
        stats = (f"mean = x.mean(dim={dims}, keepdim=True)\n"
                 f"var = x.var(dim={dims}, keepdim=True, unbiased={unbiased})\n")
        sqrt = "torch.sqrt"
    else:
        dims = {"spatial": "(1, 2)", "batch": "(0, 1, 2)", "layer": "(1, 2, 3)"}[axes]
        head = ("style = self.style(w)\n"
                "s, b = style[:, None, None, :self.channels], style[:, None, None, self.channels:]\n")
        stats = (f"mean = ops.mean(x, axis={dims}, keepdims=True)\n"
                 f"var = ops.var(x, axis={dims}, keepdims=True)\n")
        if unbiased:
            stats += "var = var * (x.shape[1] * x.shape[2]) / (x.shape[1] * x.shape[2] - 1)\n"
        sqrt = "ops.sqrt"
    if before:
        head += "x = (1 + s) * x + b\n"
    norm = f"n = (x - mean) / {sqrt}(var{' + self.eps' if eps else ''})\n"
    return head + stats + norm + f"return {out}"


NOISE_BODIES = {
    "torch": {"per_channel": "if noise is None:\n    noise = torch.randn_like(x)\n"
                             "return x + self.weight.view(1, -1, 1, 1) * noise",
              "uniform": "if noise is None:\n    noise = torch.rand(x.shape[0], 1, x.shape[2], x.shape[3])\n"
                         "return x + self.weight.view(1, -1, 1, 1) * noise",
              "ones": "self.weight = nn.Parameter(torch.ones(channels))"},
    "tf": {"per_channel": "if noise is None:\n    noise = keras.random.normal(ops.shape(x), seed=self.seed_generator)\n"
                          "return x + self.weight * noise",
           "uniform": "if noise is None:\n    shape = ops.shape(x)\n"
                      "    noise = keras.random.uniform((shape[0], shape[1], shape[2], 1), seed=self.seed_generator)\n"
                      "return x + self.weight * noise",
           "ones": 'self.weight = self.add_weight(shape=(channels,), name="weight", initializer="ones")'},
}


def mixing_body(track, compare="<", swapped=False):
    a, b = ("w2", "w1") if swapped else ("w1", "w2")
    if track == "torch":
        return (f"take_w1 = (torch.arange(w1.shape[1]) {compare}).view(1, -1, 1)\n"
                f"return torch.where(take_w1, {a}, {b})")
    return (f"take_w1 = ops.reshape(ops.arange(ops.shape(w1)[1]) {compare}, (1, -1, 1))\n"
            f"return ops.where(take_w1, {a}, {b})")


def truncation_body(track, compare="< cutoff", value="w_avg + psi * (ws - w_avg)"):
    mod = "torch" if track == "torch" else "ops"
    shape = "ws.shape[1]" if track == "torch" else "ops.shape(ws)[1]"
    view = ".view(1, -1, 1)" if track == "torch" else ""
    mask = (f"mask = ({mod}.arange(n) {compare}){view}\n" if track == "torch"
            else f"mask = ops.reshape({mod}.arange(n) {compare}, (1, -1, 1))\n")
    return (f"n = {shape}\ncutoff = n if cutoff is None else cutoff\n" + mask
            + f"return {mod}.where(mask, {value}, ws)")


# plant id -> (bodies per track, {check name: hint its message must contain})
PLANTS = {
    "p1": (lambda t: {"adain": adain_body(t, axes="batch"), "noise": {1: NOISE_BODIES[t]["per_channel"]},
                      "mixing": mixing_body(t, "<= crossover"),
                      "truncation": truncation_body(t, value="w_avg - psi * (ws - w_avg)")},
           {ADAIN: "over the batch", ADAIN_EPS: "over the batch", ADAIN_H: "over the batch",
            NOISE_DRAWN: "differs between channels", MIX: "off by one", MIX_H: "off by one",
            TRUNC: "wrong direction", TRUNC_H: "wrong direction"}),
    "p2": (lambda t: {"adain": adain_body(t, axes="layer"), "noise": {0: NOISE_BODIES[t]["ones"]},
                      "mixing": mixing_body(t, "< crossover", swapped=True),
                      "truncation": "return w_avg + psi * (ws - w_avg)"},
           {ADAIN: "all channels", ADAIN_EPS: "all channels", ADAIN_H: "all channels",
            NOISE_INIT: "does not start at zero", MIX: "swapped", MIX_H: "swapped",
            TRUNC: "cutoff is ignored", TRUNC_H: "cutoff is ignored"}),
    "p3": (lambda t: {"adain": adain_body(t, eps=False), "noise": {1: NOISE_BODIES[t]["uniform"]},
                      "mixing": mixing_body(t, "< crossover - 1"),
                      "truncation": truncation_body(t, value="psi * ws")},
           {ADAIN_EPS: "epsilon is missing", ADAIN_H: "epsilon is missing", NOISE_DRAWN: "standard normal",
            MIX: "off by one", MIX_H: "off by one", TRUNC: "around zero", TRUNC_H: "around zero"}),
    "p4": (lambda t: {"adain": adain_body(t, unbiased=True), "truncation": truncation_body(t, "<= cutoff")},
           {ADAIN: "unbiased", ADAIN_EPS: "unbiased", ADAIN_H: "unbiased", TRUNC: "off by one",
            TRUNC_H: "off by one"}),
    "p5": (lambda t: {"adain": adain_body(t, out="s * n + b")},
           {ADAIN: "no +1", ADAIN_EPS: "no +1", ADAIN_H: "no +1"}),
    "p6": (lambda t: {"adain": adain_body(t, before=True, out="n")},
           {ADAIN: "before the normalization", ADAIN_EPS: "before the normalization",
            ADAIN_H: "before the normalization"}),
}


# The judges see arrays, the same in both tracks; the Keras track (a notebook graded in 17 s against 6 s) plants
# the four notebooks that cover every part, the PyTorch track all six.
PLANTED = [("torch", p) for p in sorted(PLANTS)] + [("tf", p) for p in ("p1", "p2", "p3", "p4")]


@pytest.mark.parametrize("track, plant_id", PLANTED)
def test_planted_mistakes_lose_exactly_their_checks(track, plant_id, tmp_path):
    bodies, expected = PLANTS[plant_id]
    report = grade_notebook(plant(track, tmp_path / f"{plant_id}.ipynb", bodies(track)), fast_key(track),
                            student=plant_id)
    helpers.assert_lost_exactly(report, expected)


# ----------------------------------------------------------------------------- hostile submissions

HOSTILE = {
    # patches numpy and torch in the worker, and returns its input
    "adain": (
        "import numpy, torch\n"
        "numpy.allclose = lambda *a, **k: True\nnumpy.isclose = lambda *a, **k: True\n"
        "numpy.isfinite = lambda x: numpy.ones(numpy.shape(x), bool)\n"
        "torch.allclose = lambda *a, **k: True\ntorch.Tensor.__eq__ = lambda self, other: True\n"
        "return x"),
    # an object equal to everything that refuses to become an array
    "mixing": (
        "class Same:\n    def __eq__(self, other):\n        return True\n"
        "    def __array__(self, *a, **k):\n        raise TypeError('no')\n"
        "return Same()"),
}


def test_hostile_parts_lose_only_their_checks(tmp_path):
    """An AdaIN that patches numpy/torch in the worker and a mixing that returns an always-equal object:
    judged in the grader's process on plain arrays, they score 0; noise and truncation keep their points."""
    report = grade_notebook(plant("torch", tmp_path / "hostile.ipynb", HOSTILE), fast_key("torch"),
                            student="hostile")
    results = by_name(report)
    lost = {name for name, r in results.items() if r.score < r.points}
    assert lost == {ADAIN, ADAIN_EPS, ADAIN_H, MIX, MIX_H}, {n: results[n].message for n in lost}
    assert report.score == report.max_score - 10
    assert not grader_errors(report), report.notes


# ----------------------------------------------------------------------------- the fit and the notebooks

@pytest.mark.slow
def test_a_detached_style_does_not_fit(tmp_path):
    """Right values, but the style cut from the graph: A never learns, and the fit misses the pass mark
    (measured 0.36 against 0.10; the value check names the mistake too)."""
    body = adain_body("torch").replace("style = self.style(w)", "style = self.style(w).detach()")
    nb = plant("torch", tmp_path / "detached.ipynb", {"adain": body})
    report = grade_notebook(nb, "stylegan-torch", student="detached", visible_only=True)
    results = by_name(report)
    assert results[FIT].score == 0 and "mean squared error" in results[FIT].message, results[FIT].message
    assert results[ADAIN].score == 0 and "no gradient reaches w" in results[ADAIN].message


@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_notebook_runs_top_to_bottom(track, tmp_path, monkeypatch):
    """Quick setting; the test cells (visible and hidden checks, the fit check) pass in the kernel too."""
    from nbclient import NotebookClient

    for name, value in QUICK_ENV.items():
        monkeypatch.setenv(name, value)       # the kernel inherits this process's environment
    nb = nbformat.read(source(track), as_version=4)
    start = time.time()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"stylegan_{track}.ipynb ran in {time.time() - start:.0f} s")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "after 3 steps: mean squared error" in outputs
    assert re.search(r"0\.,? 0\.,? 1\.,? 1\.,? 1\.,? 1\.", outputs)    # mix_styles(zeros, ones, 2)
