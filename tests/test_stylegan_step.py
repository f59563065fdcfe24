"""The StyleGAN training step (`training_step`): planted mistakes lose exactly its checks, named; a correct
step written another way keeps every point; the judge replays each known wrong step and names it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import assignment_helpers as helpers
from gencourse.grading import Mistake, Reply
from gencourse.grading.grade import grade_notebook
from gencourse.stylegan.assignment import step_checks as stc

ROOT = Path(__file__).resolve().parents[1]
STEP = "training_step: D with lazy R1, G on mixed styles, then the moving average Gs (two steps)"
STEP_H = "training_step (hidden): other weights and draws, r1_every 3, gamma 5, ema_beta 0.9"


def source(track: str) -> Path:
    return ROOT / "solutions" / "stylegan" / f"stylegan_{track}.ipynb"


D_TORCH = ("z1, z2, crossover, noise = d_draw\nfakes = G(z1, z2, crossover=crossover, noise=noise).detach()\n"
           "d_loss = discriminator_loss(D(reals), D(fakes))\n"
           "r1 = {r1}\n{zero_d}(d_loss + r1).backward()\nd_opt.step()\n")
G_TORCH = ("z1, z2, crossover, noise = g_draw\nD.requires_grad_(False)\n"
           "g_loss = generator_loss(D(G({g_args}, noise=noise)))\ng_opt.zero_grad()\ng_loss.backward()\n"
           "g_opt.step()\nD.requires_grad_(True)\nfor e, p in zip(Gs.parameters(), G.parameters()):\n"
           "    e.copy_({ema})\n"
           "return {{'d_loss': d_loss.item(), 'g_loss': g_loss.item(), 'r1': r1.item()}}")
D_TF = ("z1, z2, crossover, noise = d_draw\nfakes = tf.stop_gradient(G(z1, z2, crossover=crossover, noise=noise))\n"
        "with tf.GradientTape() as tape:\n    d_loss = discriminator_loss(D(reals), D(fakes))\n"
        "    r1 = {r1}\n    total = d_loss + r1\n"
        "d_opt.apply_gradients(zip(tape.gradient(total, D.trainable_variables), D.trainable_variables))\n")
G_TF = ("z1, z2, crossover, noise = g_draw\nwith tf.GradientTape() as tape:\n"
        "    g_loss = generator_loss(D(G({g_args}, noise=noise)))\n{g_update}"
        "for e, p in zip(Gs.trainable_variables, G.trainable_variables):\n    e.assign({ema})\n"
        "return {{'d_loss': float(d_loss), 'g_loss': float(g_loss), 'r1': float(r1)}}")
G_TF_UPDATE = "g_opt.apply_gradients(zip(tape.gradient(g_loss, G.trainable_variables), G.trainable_variables))\n"
LAZY = {"torch": "r1_penalty(D, reals, gamma * r1_every) if (step - 1) % r1_every == 0 else torch.zeros(())",
        "tf": "r1_penalty(D, reals, gamma * r1_every) if (step - 1) % r1_every == 0 else tf.zeros(())"}
EMA = {"torch": "ema_beta * e + (1 - ema_beta) * p.detach()", "tf": "ema_beta * e + (1 - ema_beta) * p"}
RIGHT = dict(zero_d="d_opt.zero_grad()\n", g_args="z1, z2, crossover=crossover", g_update=G_TF_UPDATE)


def step_body(track: str, **changes) -> str:
    parts = {**RIGHT, "r1": LAZY[track], "ema": EMA[track], **changes}
    d, g = (D_TORCH, G_TORCH) if track == "torch" else (D_TF, G_TF)
    return d.format(**parts) + "\n" + g.format(**parts)


# plant id -> (track, {step body's changes}, the hint both step checks' messages hold, or (visible's, hidden's))
STEP_PLANTS = {
    "every_step": ("torch", dict(r1="r1_penalty(D, reals, gamma * r1_every)"), "R1 is added on every step"),
    "no_mixing": ("torch", dict(g_args="z1, crossover=crossover"), "G's step has no style mixing"),
    "ema_inverted": ("torch", dict(ema="(1 - ema_beta) * e + ema_beta * p.detach()"),
                     "the moving average is inverted"),
    "d_not_zeroed": ("torch", dict(zero_d=""), "D's gradients are never zeroed, so"),
    # r1_every 3 in the hidden case: R1 on shifted steps (3, 6, ...) and no R1 leave the same weights there
    "r1_shifted": ("torch", dict(r1="r1_penalty(D, reals, gamma * r1_every) if step % r1_every == 0 else torch.zeros(())"),
                   ("R1 is added on the wrong steps", "match more than one known mistake")),
    "not_times_k": ("tf", dict(r1="r1_penalty(D, reals, gamma) if (step - 1) % r1_every == 0 else tf.zeros(())"),
                    "weighted gamma: on the steps it applies"),
    "gs_copied": ("tf", dict(ema="p"), "Gs was set to G's weights"),
    "g_moves_d": ("tf", dict(g_update="weights = G.trainable_variables + D.trainable_variables\n"
                                      "g_opt.apply_gradients(zip(tape.gradient(g_loss, weights), weights))\n"),
                  "G's step also moved D"),
    "no_r1": ("tf", dict(r1="tf.zeros(())"), "D's step has no R1 penalty"),
}


def test_step_bodies_are_the_solution_when_unchanged():
    """The plants edit the solution's own step: unchanged, the bodies are the notebooks' solution regions."""
    for track in ("torch", "tf"):
        text = source(track).read_text(encoding="utf-8")
        for line in step_body(track).replace("'", '"').splitlines():
            assert line.strip().replace('"', '\\"') in text, (track, line)


@pytest.mark.parametrize("plant_id", sorted(STEP_PLANTS))
def test_planted_steps_lose_exactly_the_step_checks(plant_id, tmp_path):
    track, changes, hint = STEP_PLANTS[plant_id]
    visible, hidden = hint if isinstance(hint, tuple) else (hint, hint)
    nb = helpers.plant(source(track), tmp_path / f"{plant_id}.ipynb", {"step": step_body(track, **changes)})
    report = grade_notebook(nb, helpers.fast_key(f"stylegan-{track}"), student=plant_id)
    helpers.assert_lost_exactly(report, {STEP: visible, STEP_H: hidden})


OTHER_STEPS = {
    # discriminator_objective on the lazy steps, set_to_none, G's gradients by autograd.grad (D never frozen), lerp_
    "torch": ("z1, z2, crossover, noise = d_draw\nfakes = G(z1, z2, crossover=crossover, noise=noise).detach()\n"
              "d_loss = discriminator_loss(D(reals), D(fakes))\nif step % r1_every == 1 % r1_every:\n"
              "    total = discriminator_objective(D, reals, fakes, r1_every * gamma)\n    r1 = total - d_loss\n"
              "else:\n    total, r1 = d_loss, reals.new_zeros(())\n"
              "d_opt.zero_grad(set_to_none=True)\ntotal.backward()\nd_opt.step()\n\n"
              "z1, z2, crossover, noise = g_draw\n"
              "g_loss = generator_loss(D(G(z1, z2, crossover=crossover, noise=noise)))\n"
              "weights = list(G.parameters())\nfor p, g in zip(weights, torch.autograd.grad(g_loss, weights)):\n"
              "    p.grad = g\ng_opt.step()\nwith torch.no_grad():\n"
              "    for e, p in zip(Gs.parameters(), G.parameters()):\n        e.lerp_(p, 1 - ema_beta)\n"
              "return {'d_loss': float(d_loss), 'g_loss': float(g_loss), 'r1': float(r1)}"),
    # fakes outside the tape, optimizer.apply, a Python 0.0 for R1, the average written as p + beta (e - p)
    "tf": ("z1, z2, crossover, noise = d_draw\nfakes = G(z1, z2, crossover=crossover, noise=noise)\n"
           "lazy = step % r1_every == 1 % r1_every\nwith tf.GradientTape() as tape:\n"
           "    d_loss = discriminator_loss(D(reals), D(fakes))\n"
           "    r1 = r1_penalty(D, reals, r1_every * gamma) if lazy else 0.0\n    objective = d_loss + r1\n"
           "d_opt.apply(tape.gradient(objective, D.trainable_variables), D.trainable_variables)\n"
           "z1, z2, crossover, noise = g_draw\nwith tf.GradientTape() as tape:\n"
           "    g_loss = generator_loss(D(G(z1, z2, crossover=crossover, noise=noise)))\n"
           "g_opt.apply(tape.gradient(g_loss, G.trainable_variables), G.trainable_variables)\n"
           "for e, p in zip(Gs.trainable_variables, G.trainable_variables):\n    e.assign(p + ema_beta * (e - p))\n"
           "return {'d_loss': float(d_loss), 'g_loss': float(g_loss), 'r1': float(r1)}"),
}


@pytest.mark.parametrize("track", ("torch", "tf"))
def test_a_step_written_another_way_keeps_every_point(track, tmp_path):
    nb = helpers.plant(source(track), tmp_path / "other.ipynb", {"step": OTHER_STEPS[track]})
    report = grade_notebook(nb, helpers.fast_key(f"stylegan-{track}"), student="other")
    lost = [(r.name, r.message) for r in report.results if r.score < r.points]
    assert not lost, lost


def test_step_contracts_are_judged_before_the_weights():
    """Reals changed in place, NaN weights, a result without its keys: each named, no replay needed."""
    case = stc.step_case(121)
    base = {"finite": np.ones(1), "reals_kept": np.ones(1), "keys": np.ones(4)}
    for change, words in (({"reals_kept": np.zeros(1)}, "changed the real images"),
                          ({"finite": np.zeros(1)}, "NaN or infinite"),
                          ({"keys": np.array([1.0, 1.0, 0.0, 1.0])}, "'d_loss', 'g_loss' and 'r1'")):
        replies = {"k": Reply(arrays={k: np.asarray(v) for k, v in {**base, **change}.items()})}
        with pytest.raises(Mistake, match=words):
            stc.judge_step("torch")(case.inputs, replies, "k")
