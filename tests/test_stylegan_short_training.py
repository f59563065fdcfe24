"""The grader's short training of the StyleGAN step (training_checks): the solution's step trains the package's
16x16 StyleGAN under the pass mark in both tracks; a step that trains nothing, and one whose Gs never follows G,
lose the point with the cause their evidence shows; weights that do not fit or are not finite are named."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gencourse.grading import Mistake, Reply
from gencourse.grading.checklist import collect_checks
from gencourse.grading.inprocess import judge_in_process
from gencourse.grading.registry import get_assignment
from gencourse.stylegan.assignment import training_checks as tc
from test_stylegan_step import OTHER_STEPS, step_body

SIGNATURE = "def training_step(G, D, Gs, g_opt, d_opt, reals, d_draw, g_draw, step, gamma, r1_every, ema_beta):\n"
NOTHING = "return {'d_loss': 0.5, 'g_loss': 0.7, 'r1': 0.0}"


def namespace(track: str, body: str) -> dict:
    """A student's namespace: the framework, losses that raise (the probe must put the package's in), the step."""
    ns = {}
    exec("import torch\n" if track == "torch" else "import tensorflow as tf\n", ns)
    for name in ("generator_loss", "discriminator_loss", "r1_penalty"):
        exec(f"def {name}(*args, **kwargs):\n    raise NotImplementedError\n", ns)
    exec(SIGNATURE + "".join(f"    {line}\n" for line in body.splitlines()), ns)
    return ns


def run(track: str, body: str) -> tuple:
    """The hidden short-training check, as the grader and nbgrader's hidden tests load it, on the step `body`."""
    assignment = get_assignment(f"stylegan-{track}")
    [check] = [c for c in collect_checks(assignment)[0] if c.calls()[0].probe == "short_training"]
    [(_, score, message)] = judge_in_process(assignment, [check], namespace(track, body))
    return score, message


@pytest.mark.parametrize("track", ("torch", "tf"))
@pytest.mark.parametrize("step", ("solution", "written another way"))
def test_a_right_step_trains_the_small_stylegan(track, step):
    score, message = run(track, step_body(track) if step == "solution" else OTHER_STEPS[track])
    assert score == 1, message
    fd = float(re.search(r"Gs draws digits at a Fréchet distance of (\d+)", message).group(1))
    assert fd < tc.SETTINGS[track].threshold / 1.3, message       # not at the edge of the pass mark


def test_a_step_that_trains_nothing_loses_the_point():
    score, message = run("torch", NOTHING)
    assert score == 0
    assert "G itself does not learn" in message


def test_a_gs_that_never_follows_g_is_named():
    score, message = run("torch", step_body("torch", ema="e.clone()"))
    assert score == 0
    assert "G learns but Gs does not follow it" in message


def test_weights_that_do_not_fit_or_are_not_finite_are_named():
    setup = tc.SETTINGS["torch"]
    judge = tc.judge_short("torch", setup)
    with pytest.raises(Mistake, match="Gs's weights came back with 3 numbers"):
        judge({}, {"k": Reply(arrays={"Gs": np.zeros(3, np.float32), "G": np.zeros(3, np.float32)})}, "k")
    from gencourse.stylegan.assignment import torch_step

    size = sum(int(np.prod(t.shape)) for t in torch_step.tensors(torch_step.short_generator(tc.SHORT)))
    with pytest.raises(Mistake, match="Gs draws NaN or infinite pixels"):
        judge({}, {"k": Reply(arrays={"Gs": np.full(size, np.nan, np.float32),
                                      "G": np.zeros(size, np.float32)})}, "k")


def test_a_copy_without_slow_checks_skips_the_hidden_short_training():
    """What the planted-step tests grade with (assignment_helpers.fast_key): the hidden step check stays."""
    import assignment_helpers as helpers

    def names(key):
        return {c.name for c in collect_checks(get_assignment(key))[0]}

    full, quick = names("stylegan-tf"), names(helpers.fast_key("stylegan-tf"))
    short = {n for n in full if "train the package's 16x16 StyleGAN" in n}
    assert len(short) == 1 and not short & quick
    assert any(n.startswith("training_step (hidden)") for n in quick)
