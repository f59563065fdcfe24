"""`gencourse train stylegan` on a tiny budget: figures, metrics.json, resume, both tracks alike."""

import json

import numpy as np
import pytest
import torch

from gencourse.cli import main
from gencourse.data.mnist import MNIST
from gencourse.devices import set_threads
from gencourse.stylegan import common, run, sampling

# A network small enough to train a few steps in seconds (the run's default is CPU_SIZE).
TINY = dict(z_dim=16, w_dim=16, mapping_layers=2, fmap_base=64, fmap_max=32)
FIGURES = ["samples.png", "noise.png", "style_mixing_coarse.png", "style_mixing_middle.png",
           "style_mixing_fine.png", "truncation.png", "loss_curves.png", "editing.png",
           "progress/epoch_001.png", "progress/epoch_002.png"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from a second thread, and on a busy 2-core machine torch's
    threads wait on each other (measured here: a tiny run took 69 s with 2 threads, 12 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_mnist(mnist):
    return MNIST(mnist.x_train[:1500], mnist.y_train[:1500], mnist.x_test[:600],
                 mnist.y_test[:600], "shared MNIST test set, subset")


def quick_classifier(data):
    """The package classifier on a small budget (64 hidden units, 10 epochs): ~90 % held-out
    in seconds, and 64-dim features keep each Fréchet distance's matrix root cheap."""
    from gencourse.metrics import DigitClassifier

    return DigitClassifier(hidden=64, epochs=10).fit(data.x_train, data.y_train, data.x_test, data.y_test)


@pytest.fixture(scope="module")
def tiny_run(small_mnist, tmp_path_factory):
    out = tmp_path_factory.mktemp("stylegan")
    metrics = run.train("torch", epochs=2, steps_per_epoch=3, batch_size=8, fid_samples=200,
                        data=small_mnist, out=out, device="cpu", progress=False,
                        classifier=quick_classifier(small_mnist), **TINY)
    return out, metrics


def test_run_writes_every_figure_and_the_metrics(tiny_run):
    out, metrics = tiny_run
    for name in FIGURES:
        assert (out / name).stat().st_size > 1000, name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["steps"] == 6 and [h["epoch"] for h in saved["history"]] == [1, 2]
    assert saved["config"]["mixing_prob"] == 0.9 and saved["config"]["w_dim"] == 16
    assert saved["classifier_accuracy"] > 0.85
    # six steps of training cannot draw digits: farther from the test digits than real ones
    assert saved["frechet_distance"] > 2 * saved["frechet_floor"] > 0
    assert abs(sum(saved["class_fractions"]) - 1) < 1e-9
    assert set(saved["noise"]) == {"noise_std", "style_std", "ratio", "noise_high_freq",
                                   "style_high_freq"}
    assert saved["params"]["generator"] > 0


def test_editing_moves_thickness_monotonically(tiny_run):
    """Directions are found on one set of latents and measured on fresh ones."""
    edit = tiny_run[1]["editing"]["thickness"]
    assert edit["monotonic"], edit["mean_attribute"]
    assert edit["mean_attribute"][-1] > 1.5 * edit["mean_attribute"][0]


def _weights(trainer):
    return [p.detach().clone() for g in (trainer.generator, trainer.generator_ema)
            for p in g.parameters()] + [trainer.generator.w_avg.clone()]


def test_resume_continues_where_it_stopped(small_mnist, tmp_path):
    x = sampling.to_model_images(small_mnist.x_train)
    config = run.make_config(batch_size=8, **TINY)
    straight = sampling.make_trainer("torch", config, "cpu")
    h_straight = run.fit(straight, x, epochs=2, steps_per_epoch=2, out=tmp_path / "a",
                         progress=False)
    run.fit(sampling.make_trainer("torch", config, "cpu"), x, epochs=1, steps_per_epoch=2,
            out=tmp_path / "b", progress=False)
    resumed = sampling.make_trainer("torch", config, "cpu")
    h_resumed = run.fit(resumed, x, epochs=2, steps_per_epoch=2, out=tmp_path / "b",
                        resume=True, progress=False)
    assert [h["step"] for h in h_resumed] == [1, 2, 3, 4]
    for key in ("g_loss", "d_loss", "r1"):
        assert [h[key] for h in h_resumed] == pytest.approx([h[key] for h in h_straight])
    for a, b in zip(_weights(straight), _weights(resumed)):
        torch.testing.assert_close(a, b)
    assert json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())["epoch"] == 2


# the later papers' options: DiffAugment, lazy R1 (R1 at step 1, not at step 2), Gs ramp-up, and
# D's own Adam rate (TTUR), here below G's: a larger one turns round-off in near-zero gradients
# into weight differences of that rate after one Adam step, which G's next step then amplifies
# Measured before issue 14's second session with R1 gamma 1 and the linear ToRGB, and kept so: gamma 10
# makes D's steps larger, and tanh's saturated pixels give many near-zero gradients, whose round-off
# Adam turns into full steps as well (images apart by up to 1.2e-2 with tanh, 3.5e-3 on average with
# gamma 10). The default network's loop (tanh) is compared by its losses in the "paper" case.
LATER = dict(augment="translation,cutout", r1_interval=2, ema_rampup=0.05, d_learning_rate=5e-4,
             learning_rate=1e-3, r1_gamma=1.0, output="linear")
PAPER = dict(r1_interval=1, d_learning_rate=None, learning_rate=1e-3, r1_gamma=1.0)   # the 2019 loop


@pytest.mark.parametrize("options", [PAPER, LATER], ids=["paper", "diffaugment-lazy-r1-rampup"])
def test_both_tracks_take_the_same_steps(small_mnist, tmp_path, options):
    """Same weights, same draws: the Keras loop gives torch's losses, and resumes exactly."""
    from test_stylegan_models import copy_torch_to_keras

    try:
        set_threads("tf", 1)          # as one_thread (possible before TF starts)
    except RuntimeError:
        pass
    x = sampling.to_model_images(small_mnist.x_train)
    config = run.make_config(batch_size=8, **TINY, **options)
    tt = sampling.make_trainer("torch", config, "cpu")
    kt = sampling.make_trainer("tf", config, "cpu")
    copy_torch_to_keras(tt.generator, kt.generator)
    copy_torch_to_keras(tt.discriminator, kt.discriminator)
    copy_torch_to_keras(tt.generator_ema, kt.generator_ema)
    h_torch = run.fit(tt, x, epochs=1, steps_per_epoch=2, out=None, progress=False)
    h_tf = run.fit(kt, x, epochs=1, steps_per_epoch=1, out=tmp_path, progress=False)
    kt2 = sampling.make_trainer("tf", config, "cpu")
    h_tf = run.fit(kt2, x, epochs=2, steps_per_epoch=1, out=tmp_path, resume=True,
                   progress=False)
    assert [h["step"] for h in h_tf] == [h["step"] for h in h_torch] == [1, 2]
    for a, b in zip(h_torch, h_tf):
        for key in ("g_loss", "d_loss", "r1"):
            assert b[key] == pytest.approx(a[key], rel=2e-3, abs=1e-5), (a["step"], key)
    np.testing.assert_allclose(kt2.w_avg, tt.w_avg, rtol=1e-3, atol=1e-6)
    # the averaged generators the samples come from agree too
    z = np.random.default_rng(3).standard_normal((4, config.z_dim)).astype(np.float32)
    np.testing.assert_allclose(kt2.mapping(z), tt.mapping(z), rtol=1e-3, atol=1e-5)
    if options is LATER:
        assert tt.d_opt.param_groups[0]["lr"] == pytest.approx(float(kt2.d_opt.learning_rate)) == 5e-4
        assert tt.g_opt.param_groups[0]["lr"] == pytest.approx(float(kt2.g_opt.learning_rate)) == 1e-3
        assert h_torch[0]["r1"] > 0 and h_torch[1]["r1"] == h_tf[1]["r1"] == 0.0
        ws = sampling.broadcast(tt.mapping(z), config.num_layers)
        noise = sampling.noise(tt, np.random.default_rng(4), 4)
        # Gs took both Adam steps in full (ramp-up). Adam moves a weight by about its rate
        # whatever the gradient's size, so round-off in near-zero gradients becomes weight
        # differences of that order, which the next step amplifies: the images agree to
        # round-off on average and within 1e-2 everywhere, far below what the steps changed
        diff = np.abs(kt2.synthesize(ws, noise) - tt.synthesize(ws, noise))
        assert diff.mean() < 1e-3 and diff.max() < 1e-2, (diff.mean(), diff.max())
        untrained = sampling.make_trainer("torch", config, "cpu")
        change = np.abs(tt.synthesize(ws, noise) - untrained.synthesize(ws, noise)).mean()
        assert change > 20 * diff.mean(), (change, diff.mean())


def test_lazy_r1_weights_the_penalty_by_its_interval(small_mnist):
    """StyleGAN2's lazy regularization: R1 on steps 1, 1 + k, ..., weighted k gamma, so
    the per-step average stays gamma's; the steps between add none."""
    x = sampling.to_model_images(small_mnist.x_train)
    every = run.fit(sampling.make_trainer("torch", run.make_config(batch_size=8, r1_interval=1, **TINY),
                                          "cpu"),
                    x, epochs=1, steps_per_epoch=1, out=None, progress=False)
    lazy = run.fit(sampling.make_trainer("torch", run.make_config(batch_size=8, r1_interval=3,
                                                                 **TINY), "cpu"),
                   x, epochs=1, steps_per_epoch=5, out=None, progress=False)
    assert lazy[0]["r1"] == pytest.approx(3 * every[0]["r1"], rel=1e-5) and every[0]["r1"] > 0
    assert lazy[0]["d_loss"] == pytest.approx(every[0]["d_loss"], rel=1e-6)
    assert [h["r1"] > 0 for h in lazy] == [True, False, False, True, False]


def test_gs_ramp_up_shortens_the_half_life_early_only():
    """stylegan2-ada-pytorch's ema_rampup: half-life min(ema_kimg, r x images seen)."""
    assert common.ema_beta(32, 10.0, 0.05, 0) == 0.0               # step 1: Gs = G
    assert common.ema_beta(32, 10.0, 0.05, 32_000) == pytest.approx(0.5 ** (32 / 1600))
    assert common.ema_beta(32, 10.0, 0.05, 10**7) == common.ema_beta(32, 10.0)


def test_samples_come_from_the_moving_average_of_g(small_mnist):
    """Gs <- beta Gs + (1 - beta) G after each step (official G_smoothing_kimg = 10)."""
    config = run.make_config(batch_size=8, **TINY)
    beta = common.ema_beta(8, config.ema_kimg)
    assert beta == pytest.approx(0.5 ** (8 / 10_000))
    assert common.ema_beta(8, 0.0) == 0.0              # off: Gs is G
    trainer = sampling.make_trainer("torch", config, "cpu")
    before = [p.detach().clone() for p in trainer.generator_ema.parameters()]
    run.fit(trainer, sampling.to_model_images(small_mnist.x_train), epochs=1, steps_per_epoch=1,
            out=None, progress=False)
    for b, e, g in zip(before, trainer.generator_ema.parameters(), trainer.generator.parameters()):
        torch.testing.assert_close(e, beta * b + (1 - beta) * g)
    assert not torch.equal(trainer.generator_ema.mapping.layers[0].weight,
                           trainer.generator.mapping.layers[0].weight)
    torch.testing.assert_close(trainer.generator_ema.w_avg, trainer.generator.w_avg)
    z = np.zeros((2, config.z_dim), np.float32)
    with torch.no_grad():
        expected = trainer.generator_ema.mapping(torch.from_numpy(z)).numpy()
    np.testing.assert_array_equal(trainer.mapping(z), expected)


@pytest.mark.parametrize("argv, name", [
    (["--mixing-prob", "1.5"], "--mixing-prob"),
    (["--r1-gamma", "-1"], "--r1-gamma"),
    (["--batch-size", "0"], "--batch-size"),
    (["--track", "jax"], "--track"),
])
def test_bad_train_arguments_exit_2_naming_the_argument(argv, name, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "stylegan", *argv])
    assert e.value.code == 2
    assert name in capsys.readouterr().err


def test_missing_gpu_is_a_clear_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["train", "stylegan", "--track", "torch", "--device", "gpu",
                 "--out", str(tmp_path)]) == 2
    assert "--device gpu" in capsys.readouterr().err


@pytest.mark.gpu
def test_default_budget_draws_digits(tmp_path):
    """The default run (real MNIST if GENCOURSE_DATA is set, else the embedded subset)."""
    m = run.train("torch", out=tmp_path, device="gpu", progress=False)
    assert max(m["class_fractions"]) < 0.3                  # no collapse onto one digit
    assert m["frechet_distance"] < 10 * m["frechet_floor"]
    assert m["noise"]["ratio"] < 0.5
    assert m["noise"]["noise_high_freq"] > m["noise"]["style_high_freq"]
    assert m["editing"]["thickness"]["monotonic"]


@pytest.mark.gpu
def test_full_budget_reaches_three_times_the_floor(tmp_path):
    """Issue 14's GPU target: the default network and settings at 20,000 steps (about 20x the CPU run's
    images) reach a Fréchet distance of at most 3x the real-vs-real floor with every digit 4-18 % of the
    samples. Not run yet: no GPU was lent to the sessions that wrote it (the CPU run at 3,000 steps: 3.9x)."""
    m = run.train("torch", out=tmp_path, device="gpu", epochs=20, steps_per_epoch=1000, progress=False)
    assert m["frechet_distance"] <= 3 * m["frechet_floor"], m["frechet_distance"]
    assert 0.04 <= min(m["class_fractions"]) and max(m["class_fractions"]) <= 0.18, m["class_fractions"]


def test_the_default_run_is_the_setting_that_drew_digits():
    """The defaults docs/results.md measured (Fréchet distance 9.5 torch / 13.7 TF at 3,000 steps): R1
    gamma 10 every 16 steps, Adam 5e-4 for G and 2e-3 for D, no augmentation, tanh output, 15 x 200 steps."""
    c = run.make_config()
    assert (c.r1_gamma, c.r1_interval, c.learning_rate, c.d_learning_rate) == (10.0, 16, 5e-4, 2e-3)
    assert c.augment == "" and c.output == "tanh" and c.mixing_prob == 0.9
    assert run.DEFAULTS["epochs"] * run.DEFAULTS["steps_per_epoch"] == 3000
    assert run.make_config(r1_interval=1, d_learning_rate=None).d_learning_rate is None
