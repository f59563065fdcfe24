"""The notebook's training run (stylegan/student_run.py): what it hands the student's step, that a run repeats,
the moving average's ramp-up, and the message when the step's losses turn non-finite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gencourse.data.mnist import embedded_subset
from gencourse.stylegan import common, student_run


class Recorder:
    """A training_step that trains nothing: it keeps what it was given and returns fixed or scripted losses."""

    def __init__(self, losses=None):
        self.calls, self.losses = [], losses or {}

    def __call__(self, G, D, Gs, g_opt, d_opt, reals, d_draw, g_draw, step, gamma, r1_every, ema_beta):
        self.calls.append(dict(reals=reals.clone(), d_draw=d_draw, g_draw=g_draw, step=step, gamma=gamma,
                               r1_every=r1_every, ema_beta=ema_beta, D=D, opts=(g_opt, d_opt)))
        return self.losses.get(step, {"d_loss": 0.5, "g_loss": 1.0, "r1": 0.0})


def nets():
    torch.manual_seed(3)
    return torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)


DIGITS = embedded_subset().x_train[:256]


def test_the_step_gets_what_the_trainer_gives():
    step, (G, Gs) = Recorder(), nets()
    run = student_run.train("torch", step, G, Gs, DIGITS, student_run.Budget(steps=3, batch_size=8), progress=False)
    assert [c["step"] for c in step.calls] == [1, 2, 3] and [h["step"] for h in run.history] == [1, 2, 3]
    first = step.calls[0]
    assert first["reals"].shape == (8, 1, 32, 32) and first["reals"].dtype == torch.float32
    assert float(first["reals"].min()) == -1.0 and float(first["reals"].max()) <= 1.0   # the 2-pixel border is -1
    z1, z2, crossover, noise = first["d_draw"]
    assert z1.shape == z2.shape == (8, 64) and not torch.equal(z1, z2) and 1 <= crossover <= 8
    assert [tuple(n.shape) for n in noise] == [(8, 1, r, r) for r in (4, 4, 8, 8, 16, 16, 32, 32)]
    assert not torch.equal(first["d_draw"][0], first["g_draw"][0])          # each phase draws its own latents
    assert (first["gamma"], first["r1_every"]) == (10.0, 16)
    assert first["D"] is run.discriminator and isinstance(first["opts"][0], torch.optim.Adam)
    assert all(torch.equal(e, p) for e, p in zip(Gs.parameters(), G.parameters()))   # Gs starts as G
    assert not any(e.requires_grad for e in Gs.parameters())


def test_a_run_repeats_and_the_seed_changes_it():
    def draws(seed):
        step, (G, Gs) = Recorder(), nets()
        student_run.train("torch", step, G, Gs, DIGITS, student_run.Budget(steps=2, batch_size=4, seed=seed),
                          progress=False)
        return [np.concatenate([c["reals"].numpy().ravel(), c["d_draw"][0].numpy().ravel()]) for c in step.calls]

    a, b, c = draws(0), draws(0), draws(1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_crossovers_mix_at_the_given_rate():
    rng = np.random.default_rng(0)
    crossovers = np.array([student_run.draw(rng, 1, 8, 8, 0.9)[2] for _ in range(4000)])
    assert set(crossovers) == set(range(1, 9))
    assert abs((crossovers < 8).mean() - 0.9) < 0.02


def test_the_moving_average_ramps_up():
    flat, ramp = student_run.Budget(ema_rampup=0.0), student_run.Budget()
    assert flat.ema_beta(1) == flat.ema_beta(500) == pytest.approx(0.5 ** (32 / 10_000))
    assert ramp.ema_beta(1) == 0.0                                      # Gs takes G's weights at the first step
    # half-life 0.05 x images seen: 1,600 images after 1,000 steps of 32
    assert ramp.ema_beta(1001) == pytest.approx(0.5 ** (32 / 1600))
    assert ramp.ema_beta(10 ** 5) == pytest.approx(flat.ema_beta(10 ** 5))   # capped at 10,000 images
    assert common.ema_beta(32) == flat.ema_beta(7)


@pytest.mark.parametrize("losses, says", [
    ({2: {"d_loss": float("nan"), "g_loss": 1.0, "r1": 0.0}}, "step 2: training_step returned d_loss = nan"),
    ({1: {"d_loss": 0.5, "g_loss": 1.0}}, "step 1: training_step's dict has no r1"),
    ({1: {"d_loss": 0.5, "g_loss": "x", "r1": 0.0}}, "step 1: training_step's g_loss is 'x', not a number"),
    ({3: None}, "step 3: training_step returned NoneType"),
])
def test_a_failing_step_stops_the_run_with_its_step_named(losses, says):
    step, (G, Gs) = Recorder(losses), nets()
    with pytest.raises(student_run.StepFailed) as e:
        student_run.train("torch", step, G, Gs, DIGITS, student_run.Budget(steps=4, batch_size=4), progress=False)
    assert says in str(e.value)


def test_a_wrong_track_is_named():
    with pytest.raises(ValueError, match="track must be 'tf' or 'torch', got 'jax'"):
        student_run.train("jax", Recorder(), *nets(), DIGITS, progress=False)


def test_a_smaller_run_gets_digits_and_noise_at_its_size():
    """The grader's short training: 16x16 reals (each the mean of a 2x2 block of the padded digit), noise at 16."""
    step, (G, Gs) = Recorder(), nets()
    D = torch.nn.Linear(1, 1)
    run = student_run.train("torch", step, G, Gs, DIGITS, student_run.Budget(steps=1, batch_size=4), z_dim=8,
                            progress=False, discriminator=D, resolution=16)
    first = step.calls[0]
    assert first["reals"].shape == (4, 1, 16, 16) and run.discriminator is D and first["D"] is D
    assert [tuple(n.shape) for n in first["d_draw"][3]] == [(4, 1, r, r) for r in (4, 4, 8, 8, 16, 16)]
    padded = student_run.model_images(DIGITS[:3])
    assert np.allclose(student_run.model_images(DIGITS[:3], 16), padded.reshape(3, 16, 2, 16, 2).mean(axis=(2, 4)))
    with pytest.raises(ValueError, match="resolution must divide 32, got 12"):
        student_run.model_images(DIGITS[:3], 12)



def test_tf_graphs_train_the_same_weights_as_eager_keras():
    """`graphs` (the notebook's default): the Adam updates as TF graphs, the student's G and step eager; after
    three steps (R1 on the first) every weight of G, Gs and D is eager Keras's."""
    tf = pytest.importorskip("tensorflow")
    from gencourse.stylegan import run as stylegan_run
    from gencourse.stylegan import tf_models as km

    def step_fn(G, D, Gs, g_opt, d_opt, reals, d_draw, g_draw, step, gamma, r1_every, ema_beta):
        z1, z2, crossover, noise = d_draw
        fakes = tf.stop_gradient(G(z1, z2, crossover=crossover, noise=noise))
        with tf.GradientTape() as tape:
            d_loss = km.discriminator_loss(D(reals), D(fakes))
            r1 = km.r1_penalty(D, reals, gamma * r1_every) if (step - 1) % r1_every == 0 else tf.zeros(())
            total = d_loss + r1
        d_opt.apply_gradients(zip(tape.gradient(total, D.trainable_variables), D.trainable_variables))
        z1, z2, crossover, noise = g_draw
        with tf.GradientTape() as tape:
            g_loss = km.generator_loss(D(G(z1, z2, crossover=crossover, noise=noise)))
        g_opt.apply_gradients(zip(tape.gradient(g_loss, G.trainable_variables), G.trainable_variables))
        for e, p in zip(Gs.trainable_variables, G.trainable_variables):
            e.assign(ema_beta * e + (1 - ema_beta) * p)
        opts.append((g_opt, d_opt))
        return {"d_loss": float(d_loss), "g_loss": float(g_loss), "r1": float(r1)}

    def trained(graphs):
        tf.keras.utils.set_random_seed(4)
        cfg = stylegan_run.make_config()
        G, Gs = km.build_generator(cfg), km.build_generator(cfg)
        tf.keras.utils.set_random_seed(5)
        out = student_run.train("tf", step_fn, G, Gs, DIGITS, student_run.Budget(steps=3, batch_size=4),
                                z_dim=cfg.z_dim, progress=False, graphs=graphs)
        return [v.numpy() for net in (G, Gs, out.discriminator) for v in net.trainable_variables], out

    opts = []
    eager, _ = trained(False)
    assert not any(hasattr(o, "_graph") for o in opts[-1])
    graph, run = trained(True)
    assert all(o._graph_vars is not None for o in opts[-1])     # the updates after the first ran as graphs
    assert [h["r1"] > 0 for h in run.history] == [True, False, False]
    assert len(eager) == len(graph)
    for a, b in zip(eager, graph):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
