"""The StyleGAN assignment in both tracks: source notebooks, checks, planted mistakes, notebook runs.

Each solution notebook is graded once per module (a fixture) and the report
reused. The solutions must earn every point through the isolated grader, the
untouched releases none (each message "not implemented yet", no grader error).
Planted mistakes are graded without the slow check of the shipped generator (a
copy of the assignment without it), one mistake per part in each notebook, and must lose
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
QUICK_ENV = {"GENCOURSE_SAMPLES": "200", "GENCOURSE_STEPS": "20", **{k: "1" for k in (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}}
SHIPPED = "Your AdaIN and noise in the shipped generator: it draws digits (Fréchet distance)"
POINTS = 61         # autograded: 21 of the first release, and the equalized layer, the mapping network, the losses
#                     with R1, the Fréchet distance, the generator, editing and the step (4 + 5 + 6 + 4 + 11 + 5 + 5)
ANSWERS = ("mapping_answer", "adain_answer", "r1_answer", "ema_answer", "editing_answer", "mixing_answer", "truncation_answer",
           "fid_answer")


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
    # the affine map A is given, outside the student's region: the grader loads its weights; it is the
    # student's own equalized layer of section 1, never the package's answer to that TODO (issue 20)
    layer = "EqualizedDense" if track == "tf" else "EqualizedLinear"
    assert f"self.style = {layer}(" in cells["adain"].source.split("### BEGIN SOLUTION")[0]
    assert "_models" not in cells["setup"].source


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
            sc.judge_mixing(case.inputs, _reply(ws=ws, changed=[0, 0]), "k")
    with pytest.raises(sc.Mistake, match="changed `w2` in place"):     # a right answer written into an input
        sc.judge_mixing(case.inputs, _reply(ws=np.concatenate([w1[:, :2], w2[:, 2:]], 1), changed=[0, 1]), "k")
    case = sc.truncation_case(8, 2, 6, 3, 0.7, 3)
    ws, avg = case.inputs["ws"].astype(np.float64), case.inputs["w_avg"].astype(np.float64)
    low = np.arange(6)[None, :, None] < 3
    for got, hint in [(np.where(low, avg - 0.7 * (ws - avg), ws), "wrong direction"),
                      (avg + 0.7 * (ws - avg), "cutoff is ignored"), (np.where(low, 0.7 * ws, ws), "around zero"),
                      (np.where(low, avg + 0.3 * (ws - avg), ws), "1 - psi")]:
        with pytest.raises(sc.Mistake, match=hint):
            sc.judge_truncation(case.inputs, _reply(ws=got, changed=[0, 0]), "k")


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
        sc.judge_noise_init(case.inputs, _reply(sizes=[4], values=np.ones(4), y=x, shapes=[[1, 4, 0, 0, 0]]), "k")
    with pytest.raises(sc.Mistake, match=r"has the shape \[1, 1, 1, 4\]; the TODO names \[4\]"):
        sc.judge_noise_init(case.inputs, _reply(sizes=[4], values=np.zeros(4), y=x, shapes=[[4, 1, 1, 1, 4]]), "k")
    with pytest.raises(sc.Mistake, match="one learned scale per channel"):
        sc.judge_noise_init(case.inputs, _reply(sizes=[1], values=np.zeros(1), y=x), "k")
    with pytest.raises(sc.Mistake, match="scale is not applied"):
        sc.judge_noise_given(case.inputs, _reply(y=x + case.inputs["noise"]), "k")


def test_generator_oracle_is_the_package_generator():
    """The numpy oracle of the Generator checks draws what the package's torch generator draws with the shipped
    weights (mixed and truncated), and lists its weights in the order the package's layers run."""
    import torch

    from gencourse.grading.networks import trusted_network
    from gencourse.stylegan.assignment import generator_checks as gc, generator_oracle as oracle
    from gencourse.stylegan.plugging import drive_inputs, driven

    z, *noise = drive_inputs("torch", np.random.default_rng(3).standard_normal((2, 64)), 4)
    z2 = np.random.default_rng(4).standard_normal((2, 64)).astype(np.float32)
    with torch.no_grad():
        want = gc.trusted("torch")(torch.from_numpy(z), z2=torch.from_numpy(z2), crossover=5, psi=0.5, cutoff=3,
                                   noise=[torch.from_numpy(a) for a in noise]).numpy()
    got, _ = oracle.run("torch", z, noise, z2=z2, crossover=5, psi=0.5, cutoff=3)
    assert np.abs(got - want).max() < 1e-4
    traced = trusted_network(driven(gc.trusted("torch"), "torch"), [z, *noise])
    assert [w.shape for w in traced.weights] == [w.shape for _, ws in oracle.groups("torch") for w in ws]
    assert all(np.array_equal(a, b) for a, b in zip(traced.weights, [w for _, ws in oracle.groups("torch") for w in ws]))


# ----------------------------------------------------------------------------- graded through the isolated grader

@pytest.fixture(scope="module")
def solution_reports():
    """Each solution notebook graded once, visible and hidden checks, the fit included."""
    return helpers.grade_solutions({t: source(t) for t in TRACKS}, "stylegan")


@pytest.mark.slow
@pytest.mark.parametrize("track", TRACKS)
def test_solution_gets_full_marks(track, solution_reports):
    report = solution_reports[track]
    helpers.assert_full_marks(report, POINTS, {*PARTS, sc.TRAINING_PART})
    fd = float(re.search(r"Fréchet distance ([0-9.]+)", by_name(report)[SHIPPED].message).group(1))
    assert fd < sc.VISIBLE_SHIPPED.threshold - sc.SHIPPED_MARGIN     # the margin the pass mark was chosen with


@pytest.mark.parametrize("track", TRACKS)
def test_untouched_release_scores_zero(track):
    release = RELEASE / "stylegan" / f"stylegan_{track}.ipynb"
    report = grade_notebook(release, f"stylegan-{track}", student="untouched")
    helpers.assert_untouched(report, POINTS)


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
              "ones": "self.weight = nn.Parameter(torch.ones(channels))",
              "broadcast_shape": "self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))"},
    "tf": {"per_channel": "if noise is None:\n    noise = keras.random.normal(ops.shape(x), seed=self.seed_generator)\n"
                          "return x + self.weight * noise",
           "uniform": "if noise is None:\n    shape = ops.shape(x)\n"
                      "    noise = keras.random.uniform((shape[0], shape[1], shape[2], 1), seed=self.seed_generator)\n"
                      "return x + self.weight * noise",
           "ones": 'self.weight = self.add_weight(shape=(channels,), name="weight", initializer="ones")',
           "broadcast_shape": 'self.weight = self.add_weight(shape=(1, 1, 1, channels), name="weight", initializer="zeros")'},
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
    "p4": (lambda t: {"adain": adain_body(t, unbiased=True), "truncation": truncation_body(t, "<= cutoff"),
                      "noise": {0: NOISE_BODIES[t]["broadcast_shape"]}},
           {ADAIN: "unbiased", ADAIN_EPS: "unbiased", ADAIN_H: "unbiased", TRUNC: "off by one",
            TRUNC_H: "off by one", NOISE_INIT: "the TODO names [6]"}),
    "p5": (lambda t: {"adain": adain_body(t, out="s * n + b"),       # PyTorch only: a Keras tensor is immutable
                      "mixing": "w1[:, crossover:] = w2[:, crossover:]\nreturn w1"},
           {ADAIN: "no +1", ADAIN_EPS: "no +1", ADAIN_H: "no +1", MIX: "changed `w1` in place",
            MIX_H: "changed `w1` in place"}),
    "p6": (lambda t: {"adain": adain_body(t, before=True, out="n")},
           {ADAIN: "before the normalization", ADAIN_EPS: "before the normalization",
            ADAIN_H: "before the normalization"}),
}


EQ_INIT = "Equalized dense layer: the stored weights start N(0, 1/lr_mul^2), the bias at zero"
EQ = "Equalized dense layer: y = x (W lr_mul gain / sqrt(in))^T + b lr_mul, and the stored weight's gradient"
EQ_H = "Equalized dense (hidden): one input feature, lr_mul 0.1, gain 1"
MAP = "MappingNetwork: pixel norm, then n_layers x (equalized dense with lr_mul 0.01, LeakyReLU 0.2)"
MAP_H = "MappingNetwork (hidden): one layer, w_dim narrower than z_dim"
G_LOSS = "generator_loss: the non-saturating loss, mean softplus(-D(G(z)))"
D_LOSS = "discriminator_loss: the logistic loss on logits"
R1 = "r1_penalty: gamma / 2 * E |grad_x D(x)|^2 on the reals, differentiable for D's weights"
R1_H = "Losses and R1 (hidden): a batch of one, gamma 0.5, non-square images"
OBJ = "discriminator_objective: the logistic loss plus R1 on the reals"
FD = "frechet_distance: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))"
FD_H = "frechet_distance (hidden): dimension 1, covariances of rank 1"


def equalized_body(track, kind):
    """{region: body} of the equalized layer's cell: region 0 the constructor, 1 the forward."""
    if track == "torch":
        init = ("self.weight = nn.Parameter(torch.randn(out_features, in_features){std})\n"
                "self.bias = nn.Parameter(torch.zeros(out_features))\n"
                "self.scale = lr_mul * gain / {fan} ** 0.5\nself.lr_mul = lr_mul")
        fwd = "return x @ ({w} * self.scale{extra}).t() + self.bias{bias}"
        w, detached = "self.weight", "self.weight.detach()"
    else:
        init = ('self.kernel = self.add_weight(shape=(in_features, units), name="kernel",\n'
                "    initializer=keras.initializers.RandomNormal(0.0, 1.0{std}))\n"
                'self.bias = self.add_weight(shape=(units,), name="bias", initializer="zeros")\n'
                "self.scale = lr_mul * gain / {fan} ** 0.5\nself.lr_mul = lr_mul")
        fwd = "return ops.matmul(x, {w} * self.scale{extra}) + self.bias{bias}"
        w, detached = "self.kernel", "ops.stop_gradient(self.kernel)"
    out_name = "out_features" if track == "torch" else "units"
    std = " / lr_mul"
    return {
        "init_n01": {0: init.format(std="", fan="in_features")},
        "no_lr_on_w": {1: fwd.format(w=w, extra=" / self.lr_mul", bias=" * self.lr_mul")},
        "bias_no_lr": {1: fwd.format(w=w, extra="", bias="")},
        "fan_out": {0: init.format(std=std, fan=out_name)},
        "detached": {1: fwd.format(w=detached, extra="", bias=" * self.lr_mul")},
    }[kind]


def mapping_body(track, kind):
    """{region: body} of the mapping network's cell: region 0 the constructor, 1 the forward."""
    if track == "torch":
        init = ("dims = [z_dim] + [w_dim] * {n}\n"
                "self.layers = nn.ModuleList(EqualizedLinear(a, b{lr}) for a, b in zip(dims[:-1], dims[1:]))")
        norm = "x = z * torch.rsqrt(z.pow(2).mean(dim=-1, keepdim=True) + 1e-8)\n"
        loop = "for layer in self.layers:\n    x = {act}\nreturn x"
        lrelu, relu = "nn.functional.leaky_relu(layer(x), 0.2)", "torch.relu(layer(x))"
    else:
        init = ("dims = [z_dim] + [w_dim] * {n}\n"
                "self.dense_layers = [EqualizedDense(a, b{lr}) for a, b in zip(dims[:-1], dims[1:])]")
        norm = "x = z * ops.rsqrt(ops.mean(ops.square(z), axis=-1, keepdims=True) + 1e-8)\n"
        loop = "for layer in self.dense_layers:\n    x = {act}\nreturn x"
        lrelu, relu = "ops.leaky_relu(layer(x), negative_slope=0.2)", "ops.relu(layer(x))"
    return {
        "no_norm": {1: "x = z\n" + loop.format(act=lrelu)},
        "relu": {1: norm + loop.format(act=relu)},
        "no_lr_mul": {0: init.format(n="n_layers", lr="")},
        "eight": {0: init.format(n="8", lr=", lr_mul=lr_mul")},
    }[kind]


def losses_body(track, kind):
    """{region: body} of the losses cell: 0 generator_loss, 1 discriminator_loss, 2 r1_penalty, 3 the objective."""
    t = track == "torch"
    sp = "nn.functional.softplus" if t else "ops.softplus"
    mean = (lambda e: f"({e}).mean()") if t else (lambda e: f"ops.mean({e})")

    def r1(norm="sq", half="0.5 * ", graph=True):
        if t:
            per = "grad.pow(2).flatten(1).sum(dim=1)" + (".sqrt()" if norm == "sqrt" else "")
            return ("reals = reals.detach().requires_grad_(True)\n"
                    f"(grad,) = torch.autograd.grad(discriminator(reals).sum(), reals, create_graph={graph})\n"
                    f"return {half}gamma * {per}.mean()")
        per = "tf.reduce_sum(tf.square(grad), axis=[1, 2, 3])"
        per = f"tf.sqrt({per})" if norm == "sqrt" else per
        grad = "tape.gradient(logits, reals)" if graph else "tf.stop_gradient(tape.gradient(logits, reals))"
        return ("with tf.GradientTape() as tape:\n    tape.watch(reals)\n    logits = discriminator(reals)\n"
                f"grad = {grad}\nreturn {half}gamma * tf.reduce_mean({per})")  # the tape's name is free
    log_sig = "torch.log(torch.sigmoid(d_fake))" if t else "ops.log(ops.sigmoid(d_fake))"
    return {
        "saturating": {0: f"return -{mean(sp + '(d_fake)')}"},
        "log_sigmoid": {0: f"return -{mean(log_sig)}"},
        "swapped_d": {1: f"return {mean(sp + '(d_real)')} + {mean(sp + '(-d_fake)')}"},
        "not_squared": {2: r1(norm="sqrt")},
        "no_half": {2: r1(half="")},
        "no_graph": {2: r1(graph=False)},
        "bce_swapped": {0: "return nn.functional.binary_cross_entropy_with_logits(torch.ones_like(d_fake), d_fake)"
                        if t else "return keras.losses.BinaryCrossentropy(from_logits=True)(d_fake, ops.ones_like(d_fake))"},
        "sigmoid_then": {1: "bce = nn.functional.binary_cross_entropy\n"
                            "return bce(torch.sigmoid(d_real), torch.ones_like(d_real)) + "
                            "bce(torch.sigmoid(d_fake), torch.zeros_like(d_fake))" if t else
                         "bce = keras.losses.BinaryCrossentropy()\n"
                         "return bce(ops.ones_like(d_real), tf.sigmoid(d_real)) + "
                         "bce(ops.zeros_like(d_fake), tf.sigmoid(d_fake))"},
        "r1_sigmoid": {2: r1(graph=True).replace("discriminator(reals).sum()", "torch.sigmoid(discriminator(reals)).sum()")
                       if t else r1().replace("logits = discriminator(reals)", "logits = tf.sigmoid(discriminator(reals))")},
        "r1_fakes": {3: "return discriminator_loss(discriminator(reals), discriminator(fakes)) + "
                        "r1_penalty(discriminator, fakes, gamma)"},
        "no_r1": {3: "return discriminator_loss(discriminator(reals), discriminator(fakes))"},
    }[kind]


FRECHET = {
    "entrywise": "root = np.sqrt(np.abs(sigma1 * sigma2))",
    "product_of_roots": "from scipy import linalg\nroot = np.real(linalg.sqrtm(sigma1) @ linalg.sqrtm(sigma2))",
    "no_two": "from scipy import linalg\nroot = np.real(linalg.sqrtm(sigma1 @ sigma2)) / 2",
}


def frechet_body(kind):
    return (FRECHET[kind] + "\ndiff = mu1 - mu2\n"
            "return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root))")


GEN_NET = "Generator: the shipped weights load in run order and every layer computes StyleGAN's"
GEN_NET_H = "Generator (hidden): a batch of one, other latents and noise"
GEN_STY = "Generator: style mixing at the crossover and truncation below the cutoff, inside it"
GEN_STY_H = "Generator (hidden): crossover 1, psi 0.3 on every layer"


def generator_body(track, kind):
    """{region: body} of the Generator cell: 0 the convolution's constructor, 7 the synthesis' forward,
    9 the generator's forward."""
    t = track == "torch"
    styled, tanh = ("self.layers", "torch.tanh") if t else ("self.styled", "ops.tanh")
    loop = (f"noise = [None] * len({styled}) if noise is None else noise\nx = self.const(ws)\n"
            f"for i, layer in enumerate({styled}):\n    x = layer(x, ws[:, i]{{noise}})\nreturn {{out}}")
    if t:
        conv = ("self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))\n"
                "self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None\n")
        rep = "self.mapping({z})[:, None].repeat(1, self.num_layers, 1)"
    else:
        conv = ('self.kernel = self.add_weight(shape=(kernel, kernel, in_channels, filters), name="kernel",\n'
                "    initializer=keras.initializers.RandomNormal(0.0, 1.0))\n"
                'self.bias = self.add_weight(shape=(filters,), name="bias", initializer="zeros") if use_bias else None\n')
        rep = "ops.repeat(self.mapping({z})[:, None], self.num_layers, axis=1)"
    ws = f"ws = {rep.format(z='z')}\n"
    mix = "if z2 is not None:\n    ws = mix_styles({a}, {b}, crossover)\n"
    trunc = "if psi != 1:\n    ws = truncate(ws, self.w_avg, psi, cutoff)\n"
    return {
        "no_tanh": {7: loop.format(noise=", noise[i]", out="self.to_rgb(x)")},
        "fan_in": {0: conv + "self.scale = gain / in_channels ** 0.5"},
        "mix_swapped": {9: ws + mix.format(a=rep.format(z="z2"), b="ws") + trunc + "return self.synthesis(ws, noise)"},
        "no_truncation": {9: ws + mix.format(a="ws", b=rep.format(z="z2")) + "return self.synthesis(ws, noise)"},
        "noise_ignored": {7: loop.format(noise="", out=f"{tanh}(self.to_rgb(x))")},
    }[kind]


def merged(*parts):
    """Several mistakes' {cell: {region: body}} in one notebook."""
    out = {}
    for cell, bodies in parts:
        out.setdefault(cell, {}).update(bodies)
    return out


# plant id -> (bodies per track, {check name: hint}) for the parts the first release did not have
NEW_PLANTS = {
    "p1": (lambda t: merged(("equalized", equalized_body(t, "init_n01")), ("mapping", mapping_body(t, "no_norm")),
                            ("losses", losses_body(t, "saturating")), ("losses", losses_body(t, "not_squared")),
                            ("frechet", {0: frechet_body("entrywise")})),
           {EQ_INIT: "N(0, 1)", MAP: "'pixel norm'", MAP_H: "'pixel norm'", G_LOSS: "the saturating loss",
            R1: "not squared", R1_H: "not squared", FD: "entry by entry", FD_H: "entry by entry"}),
    "p2": (lambda t: merged(("equalized", equalized_body(t, "no_lr_on_w")), ("mapping", mapping_body(t, "relu")),
                            ("losses", losses_body(t, "swapped_d")), ("losses", losses_body(t, "r1_fakes")),
                            ("losses", losses_body(t, "r1_sigmoid")),
                            ("frechet", {0: frechet_body("product_of_roots")})),
           {EQ: "not multiplied by lr_mul", EQ_H: "not multiplied by lr_mul", MAP: "zero where the reference is negative",
            MAP_H: "zero where the reference is negative", D_LOSS: "swapped", OBJ: "computed on the fakes",
            R1: "the gradient of sigmoid(D(x))", R1_H: "the gradient of sigmoid(D(x))",
            FD: "do not commute", FD_H: "do not commute"}),
    "p3": (lambda t: merged(("equalized", equalized_body(t, "bias_no_lr")), ("mapping", mapping_body(t, "no_lr_mul")),
                            ("losses", losses_body(t, "log_sigmoid")), ("losses", losses_body(t, "no_half")),
                            ("frechet", {0: frechet_body("no_two")})),
           {EQ: "bias is not multiplied by lr_mul", EQ_H: "bias is not multiplied by lr_mul", MAP: "times 100",
            MAP_H: "times 100", G_LOSS: "not finite", R1: "missing its / 2", R1_H: "missing its / 2",
            FD: "factor 2", FD_H: "factor 2"}),
    "p4": (lambda t: merged(("equalized", equalized_body(t, "fan_out")), ("mapping", mapping_body(t, "eight")),
                            ("losses", losses_body(t, "no_graph")), ("losses", losses_body(t, "no_r1")),
                            ("losses", losses_body(t, "bce_swapped")), ("losses", losses_body(t, "sigmoid_then"))),
           {EQ: "sqrt(out_features)", EQ_H: "sqrt(out_features)", MAP: "8 layers with weights, the reference 3",
            MAP_H: "8 layers with weights, the reference 1", R1: "no gradient reaches the discriminator's weights",
            R1_H: "no gradient reaches the discriminator's weights", OBJ: "R1 is missing",
            G_LOSS: "arguments are swapped", D_LOSS: "a sigmoid, then the cross-entropy of probabilities"}),
    "p5": (lambda t: {"equalized": equalized_body(t, "detached")},
           {EQ: "no gradient reaches the stored weight", EQ_H: "no gradient reaches the stored weight"}),
}


# the Generator cell's mistakes ride along: its checks put the package's earlier parts in it (judged alone)
GENERATOR_PLANTS = {
    "p1": ("no_tanh", {GEN_NET: "the reference applies a tanh there", GEN_NET_H: "the reference applies a tanh there",
                       GEN_STY: "differ from StyleGAN's", GEN_STY_H: "differ from StyleGAN's"}),
    "p2": ("fan_in", {GEN_NET: "times 3", GEN_NET_H: "times 3", GEN_STY: "differ from StyleGAN's",
                      GEN_STY_H: "differ from StyleGAN's"}),
    "p3": ("mix_swapped", {GEN_STY: "latents are swapped", GEN_STY_H: "latents are swapped"}),
    "p4": ("no_truncation", {GEN_STY: "no truncation", GEN_STY_H: "no truncation"}),
    "p5": ("noise_ignored", {GEN_NET: "departs from it at the reference's layer 'styled layer 0 noise'",
                             GEN_NET_H: "departs from it at the reference's layer 'styled layer 0 noise'",
                             GEN_STY: "differ from StyleGAN's", GEN_STY_H: "differ from StyleGAN's"}),
}
FIND = "find_direction: the top quantile's mean code minus the bottom quantile's"
FIND_H = "find_direction (hidden): 7 codes, quantile 0.1 (one sample a side), quantile 0.5"
CLASS = "class_direction: the mean code of one digit minus the others'"
CLASS_H = "class_direction (hidden): three samples of the digit (None), target 0"
SPLIT = "order = np.argsort(values)\nk = max(1, int(len(values) * quantile))\n"
CLASS_HEAD = "hit = np.asarray(predicted) == target\n"
# the editing cell's mistakes (numpy, the same in both tracks): {region: body}, {check: hint}
EDITING_PLANTS = {
    "p1": ({0: SPLIT + "return ws[order[:k]].mean(axis=0) - ws[order[-k:]].mean(axis=0)"},
           {FIND: "sign is flipped", FIND_H: "sign is flipped"}),
    "p2": ({0: "order = np.argsort(values)\nh = len(values) // 2\n"
               "return ws[order[h:]].mean(axis=0) - ws[order[:h]].mean(axis=0)"},
           {FIND: "split at the median", FIND_H: "with the largest attribute"}),
    "p3": ({1: CLASS_HEAD + "if min(hit.sum(), (~hit).sum()) < 5:\n    return None\n"
               "return ws[hit].mean(axis=0) - ws.mean(axis=0)"},
           {CLASS: "minus the mean of all", CLASS_H: "minus the mean of all"}),
    "p4": ({0: SPLIT + "return ws[order[-k:]].mean(axis=0) - ws.mean(axis=0)",
            1: CLASS_HEAD + "return ws[hit].mean(axis=0) - ws[~hit].mean(axis=0)"},
           {FIND: "minus the mean of all samples", FIND_H: "minus the mean of all samples",
            CLASS_H: "return None when fewer"}),
}
for _id, (_kind, _hints) in GENERATOR_PLANTS.items():
    _bodies, _old_hints = NEW_PLANTS[_id]
    _editing, _editing_hints = EDITING_PLANTS.get(_id, ({}, {}))
    NEW_PLANTS[_id] = ((lambda t, _b=_bodies, _k=_kind, _e=_editing: {**_b(t), "generator": generator_body(t, _k),
                                                                       **({"editing": _e} if _e else {})}),
                       {**_old_hints, **_hints, **_editing_hints})


for _id, (_new, _hints) in NEW_PLANTS.items():
    _old, _old_hints = PLANTS[_id]
    PLANTS[_id] = ((lambda t, _old=_old, _new=_new: {**_old(t), **_new(t)}), {**_old_hints, **_hints})


# The judges see arrays, the same in both tracks; the Keras track (a notebook graded in 17 s against 6 s) plants
# the four notebooks that cover every part, the PyTorch track all six.
PLANTED = [("torch", p) for p in sorted(PLANTS)] + [("tf", p) for p in ("p1", "p2", "p3", "p4")]


@pytest.mark.parametrize("track, plant_id", PLANTED)
def test_planted_mistakes_lose_exactly_their_checks(track, plant_id, tmp_path):
    bodies, expected = PLANTS[plant_id]
    report = grade_notebook(plant(track, tmp_path / f"{plant_id}.ipynb", bodies(track)), fast_key(track),
                            student=plant_id)
    helpers.assert_lost_exactly(report, expected)


OTHER_STYLES = {
    "torch": {
        "equalized": {0: "self.lr_mul, self.gain = lr_mul, gain\n"
                         "self.bias = nn.Parameter(torch.zeros(out_features))          # declared first\n"
                         "self.weight = nn.Parameter(torch.empty(out_features, in_features).normal_(0, 1 / lr_mul))",
                      1: "w = self.weight * (self.lr_mul * self.gain / self.weight.shape[1] ** 0.5)\n"
                         "return nn.functional.linear(x, w, self.bias * self.lr_mul)"},
        "mapping": {0: "blocks = []\nfor i in range(n_layers):\n"
                       "    blocks += [EqualizedLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul), nn.LeakyReLU(0.2)]\n"
                       "self.net = nn.Sequential(*blocks)",
                    1: "return self.net(z / z.pow(2).mean(-1, keepdim=True).add(1e-8).sqrt())"},
        "losses": {0: "return -nn.functional.logsigmoid(d_fake).mean()",
                   1: "return -(nn.functional.logsigmoid(-d_fake) + nn.functional.logsigmoid(d_real)).mean()",
                   2: "x = reals.clone().requires_grad_()\n"
                      "g = torch.autograd.grad(discriminator(x), x, torch.ones(len(x), 1), create_graph=True)[0]\n"
                      "return gamma / 2 * (g ** 2).sum(dim=(1, 2, 3)).mean()"},
        "generator": {1: "return nn.functional.conv2d(x, self.weight * self.scale, self.bias, padding='same')",
                      3: "return self.const.repeat(len(ws), 1, 1, 1)",
                      4: "self.up = nn.Upsample(scale_factor=2) if upsample else nn.Identity()\n"
                         "self.conv = EqualizedConv2d(in_channels, out_channels, bias=False) if conv else nn.Identity()\n"
                         "self.noise = NoiseInjection(out_channels)\n"
                         "self.bias = nn.Parameter(torch.zeros(out_channels))\n"
                         "self.act = nn.LeakyReLU(0.2)\n"
                         "self.adain = AdaptiveInstanceNorm(out_channels, w_dim)",
                      5: "x = self.noise(self.conv(self.up(x)), noise) + self.bias[:, None, None]\n"
                         "return self.adain(self.act(x), w)",
                      9: "w = self.mapping(z)\nws = torch.stack([w] * self.num_layers, dim=1)\n"
                         "if z2 is not None:\n"
                         "    ws = mix_styles(ws, self.mapping(z2).unsqueeze(1).expand_as(ws), crossover)\n"
                         "return self.synthesis(ws if psi == 1 else truncate(ws, self.w_avg, psi, cutoff), noise)"},
        "frechet": {0: "eig = np.linalg.eigvals(sigma1 @ sigma2)          # Tr sqrt(A) = sum sqrt(eigenvalues)\n"
                       "return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2)"
                       " - 2 * np.sqrt(np.clip(eig.real, 0, None)).sum())"},
    },
    "tf": {
        "adain": "y_s, y_b = ops.split(self.style(w)[:, None, None, :], 2, axis=-1)\n"
                 "mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)\n"
                 "return (1 + y_s) * tf.nn.batch_normalization(x, mean, var, None, None, self.eps) + y_b",
        "noise": {1: "if noise is None:\n"
                     "    noise = keras.random.normal(ops.shape(x)[:3] + (1,), seed=self.seed_generator)\n"
                     "return ops.add(x, ops.multiply(ops.cast(noise, x.dtype), self.weight))"},
        "mixing": "mask = tf.cast(tf.range(tf.shape(w1)[1]) < crossover, w1.dtype)[None, :, None]\n"
                  "return w2 + mask * (w1 - w2)",
        "truncation": "n = ws.shape[1]\npsis = [psi if cutoff is None or i < cutoff else 1.0 for i in range(n)]\n"
                      "coef = tf.constant(psis, ws.dtype)[None, :, None]\n"
                      "return coef * ws + (1 - coef) * w_avg",
        "editing": {0: "ranked = ws[np.argsort(values, kind='stable')]\nk = max(1, int(len(values) * quantile))\n"
                       "return np.mean(ranked[len(ranked) - k:], axis=0) - np.mean(ranked[:k], axis=0)",
                    1: "hit = np.equal(predicted, target)\nif hit.sum() < 5 or (~hit).sum() < 5:\n    return None\n"
                       "return np.mean(ws[hit], axis=0) - np.mean(ws[~hit], axis=0)"},
        "equalized": {0: "self.lr_mul, self.gain = lr_mul, gain\n"
                         "self.bias = self.add_weight(shape=(units,), name=\"bias\",\n"
                         "                            initializer=keras.initializers.Zeros())          # declared first\n"
                         "self.kernel = self.add_weight(shape=(in_features, units), name=\"kernel\",\n"
                         "                              initializer=keras.initializers.RandomNormal(stddev=1 / lr_mul))",
                      1: "w = self.kernel * (self.lr_mul * self.gain / tf.sqrt(float(self.kernel.shape[0])))\n"
                         "return tf.matmul(tf.convert_to_tensor(x, tf.float32), w) + self.lr_mul * self.bias"},
        "mapping": {0: "self.net = keras.Sequential(sum(([EqualizedDense(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul),\n"
                       "                                   layers.LeakyReLU(negative_slope=0.2)] for i in range(n_layers)), []))",
                    1: "return self.net(z / ops.sqrt(ops.mean(z ** 2, axis=-1, keepdims=True) + 1e-8))"},
        "losses": {0: "return -tf.reduce_mean(tf.math.log_sigmoid(d_fake))",
                   1: "return ops.mean(ops.logaddexp(0.0, d_fake)) + ops.mean(ops.logaddexp(0.0, -d_real))",
                   2: "x = tf.convert_to_tensor(reals, tf.float32)\n"
                      "with tf.GradientTape(persistent=True) as tape:\n"
                      "    tape.watch(x)\n"
                      "    total = tf.reduce_sum(discriminator(x))\n"
                      "(g,) = tape.gradient(total, [x])\n"
                      "del tape\n"
                      "return gamma / 2 * tf.reduce_mean(tf.reduce_sum(g * g, axis=[1, 2, 3]))",
                   3: "loss = discriminator_loss(discriminator(reals), discriminator(fakes))\n"
                      "return ops.add(loss, r1_penalty(discriminator, reals, gamma))"},
        "generator": {0: "self.bias = (self.add_weight(shape=(filters,), name=\"bias\", initializer=keras.initializers.Zeros())\n"
                         "             if use_bias else None)                               # declared first\n"
                         "self.kernel = self.add_weight(shape=(kernel, kernel, in_channels, filters), name=\"kernel\",\n"
                         "                              initializer=keras.initializers.RandomNormal(stddev=1.0))\n"
                         "self.scale = gain * (in_channels * kernel ** 2) ** -0.5",
                      1: "y = tf.nn.conv2d(x, self.kernel * self.scale, strides=1, padding=\"SAME\")\n"
                         "return y if self.bias is None else tf.nn.bias_add(y, self.bias)",
                      2: "self.const = self.add_weight(shape=(1, 4, 4, channels), name=\"const\",\n"
                         "                             initializer=keras.initializers.Ones())",
                      3: "return tf.tile(self.const, [tf.shape(ws)[0], 1, 1, 1])",
                      4: "self.up = layers.UpSampling2D(2) if upsample else None\n"
                         "self.conv = EqualizedConv2D(in_channels, filters, use_bias=False) if conv else None\n"
                         "self.adain = AdaptiveInstanceNorm(filters, w_dim)                  # before the noise\n"
                         "self.noise = NoiseInjection(filters)\n"
                         "self.bias = self.add_weight(shape=(filters,), name=\"bias\", initializer=\"zeros\")\n"
                         "self.act = layers.LeakyReLU(negative_slope=0.2)",
                      5: "for step in (self.up, self.conv):\n"
                         "    x = x if step is None else step(x)\n"
                         "return self.adain(self.act(tf.nn.bias_add(self.noise(x, noise), self.bias)), w)",
                      6: "self.const = ConstantInput(channels[0])\nself.styled = []\n"
                         "for k, c in enumerate(channels):\n"
                         "    first = (StyledLayer(c, c, w_dim, conv=False) if k == 0\n"
                         "             else StyledLayer(channels[k - 1], c, w_dim, upsample=True))\n"
                         "    self.styled += [first, StyledLayer(c, c, w_dim)]\n"
                         "self.to_rgb = EqualizedConv2D(channels[-1], 1, kernel=1, gain=1.0)",
                      7: "ws = tf.cast(ws, tf.float32)\nx = self.const(ws)\n"
                         "for i in range(len(self.styled)):\n"
                         "    x = self.styled[i](x, ws[:, i], None if noise is None else noise[i])\n"
                         "return tf.tanh(self.to_rgb(x))",
                      8: "self.num_layers = len(channels) * 2\n"
                         "self.w_avg = self.add_weight(shape=(w_dim,), name=\"w_avg\", initializer=keras.initializers.Zeros(),\n"
                         "                             trainable=False)                     # declared first\n"
                         "self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers)\n"
                         "self.synthesis = SynthesisNetwork(w_dim, channels)",
                      9: "w = self.mapping(z)\nws = tf.stack([w] * self.num_layers, axis=1)\n"
                         "if z2 is not None:\n"
                         "    ws = mix_styles(ws, tf.broadcast_to(self.mapping(z2)[:, None], tf.shape(ws)), crossover)\n"
                         "return self.synthesis(ws if psi == 1 else truncate(ws, self.w_avg, psi, cutoff), noise)"},
        "frechet": {0: "vals, vecs = np.linalg.eigh(sigma1)                # Tr sqrt(s1 s2) = Tr sqrt(s1^1/2 s2 s1^1/2)\n"
                       "half = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T\n"
                       "inner = np.linalg.eigvalsh(half @ sigma2 @ half)\n"
                       "return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2)"
                       " - 2 * np.sqrt(np.clip(inner, 0, None)).sum())"},
    },
}


@pytest.mark.parametrize("track", TRACKS)
def test_correct_parts_written_another_way_keep_every_point(track, tmp_path):
    """Another declaration order (bias first, w_avg first, AdaIN before noise) and API for the layers, a
    Sequential with activation layers, log-sigmoid or softplus-by-logaddexp losses, another gradient call for R1
    (grad_outputs; a persistent tape over a list), the trace of the square root from eigenvalues, and a generator
    of upsampling and activation layers, stacked styles (PyTorch; Keras also AdaIN, noise, mixing, truncation
    and editing in tf or numpy): every check keeps its points."""
    nb = plant(track, tmp_path / "styles.ipynb", OTHER_STYLES[track])
    report = grade_notebook(nb, fast_key(track), student="styles")
    lost = [(r.name, r.message) for r in report.results if r.score < r.points]
    assert not lost, "\n".join(f"{name}: {message}" for name, message in lost)


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
@pytest.mark.parametrize("track, layer, bodies, cause", [
    ("torch", "AdaptiveInstanceNorm", lambda t: {"adain": adain_body(t, out="(1 + s) * x + b")}, "your AdaptiveInstanceNorm"),
    ("tf", "NoiseInjection", lambda t: {"noise": {1: "return x + noise"}}, "your NoiseInjection"),
])
def test_a_wrong_layer_breaks_the_shipped_generator_and_is_named(track, layer, bodies, cause, tmp_path):
    """No normalization in AdaIN (torch), the noise's scale not applied (tf): the shipped generator with them draws
    far above the pass mark, and the drawings with each layer alone name the one that breaks it."""
    nb = plant(track, tmp_path / f"{layer}.ipynb", bodies(track))
    report = grade_notebook(nb, f"stylegan-{track}", student=layer, visible_only=True)
    result = by_name(report)[SHIPPED]
    assert result.score == 0 and f"the cause is {cause}" in result.message, result.message
    other = "NoiseInjection" if layer == "AdaptiveInstanceNorm" else "AdaptiveInstanceNorm"
    assert f"the cause is your {other}" not in result.message and "and your" not in result.message


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
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert figures >= 8, figures    # losses, the three models, shipped samples, mixing, noise, truncation, 2 edits
    assert re.search(r"20 steps of your training_step in [0-9.]+ minutes", outputs)
    for model in (r"your G \(20 steps\)", r"your Gs \(20 steps\)", r"shipped Gs \(3000 steps\)"):
        assert re.search(model + r": Fréchet distance [0-9.]+; digits read: 0: [0-9]+%", outputs), model
    assert re.search(r"middle from B: Fréchet distance of 200 such mixes [0-9.]+", outputs)
    assert re.search(r"psi 0.5: Fréchet distance [0-9.]+, the most common digit", outputs)
    assert re.search(r"0\.,? 0\.,? 1\.,? 1\.,? 1\.,? 1\.", outputs)    # mix_styles(zeros, ones, 2)
