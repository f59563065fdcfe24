"""StyleGAN's networks in both tracks: oracles, init, parameter counts, shapes, same outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gencourse.reference import stylegan as ref
from gencourse.stylegan import common
from gencourse.stylegan import torch_models as tm
from gencourse.stylegan.convert import keras_layout

keras = pytest.importorskip("keras")
tfm = pytest.importorskip("gencourse.stylegan.tf_models")
tf = pytest.importorskip("tensorflow")

# A small network for most tests: 16², 6 AdaIN layers, 16 -> 8 -> 4 feature maps.
SMALL = dict(resolution=16, channels=1, z_dim=16, w_dim=16, mapping_layers=3, fmap_base=64,
             fmap_max=16)
SMALL_D = dict(resolution=16, channels=1, fmap_base=64, fmap_max=16)


# ---------------------------------------------------------------- helpers

def copy_torch_to_keras(tmodel: torch.nn.Module, kmodel) -> None:
    """Copy every parameter (and w_avg) of a torch network into its Keras twin, in order."""
    src, dst = list(tmodel.named_parameters()), kmodel.trainable_weights
    assert len(src) == len(dst)
    for (name, p), v in zip(src, dst):
        a = keras_layout(name, p.detach().numpy())
        assert a.shape == tuple(v.shape), (name, v.path)
        assert name.endswith("bias") == v.path.endswith("bias"), (name, v.path)
        v.assign(a)
    if hasattr(tmodel, "w_avg"):
        kmodel.w_avg.assign(tmodel.w_avg.numpy())


def perturb(module: torch.nn.Module, seed: int = 0) -> None:
    """Give the parameters that start at 0 or 1 (biases, noise scales, constant) random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(("bias", "noise.weight", "const")):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def to_nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def assert_close(a, b, rtol=1e-4):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
    assert err < rtol, f"relative error {err:.2e}"


def f32(rng, *shape, scale=1.0):
    return (rng.normal(size=shape) * scale).astype(np.float32)


# ---------------------------------------------------------------- default sizes

@pytest.fixture(scope="module")
def default_models():
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    out = {}
    for res in (32, 64):
        cfg = common.StyleGANConfig(resolution=res)
        out[res] = (tm.build_generator(cfg), tm.build_discriminator(cfg),
                    tfm.build_generator(cfg), tfm.build_discriminator(cfg))
    return out


@pytest.mark.parametrize("res", [32, 64])
def test_param_counts_equal_across_tracks(default_models, res):
    tg, td, kg, kd = default_models[res]
    assert tm.count_params(tg) == tfm.count_params(kg) == common.GENERATOR_PARAMS[res]
    assert tm.count_params(td) == tfm.count_params(kd) == common.DISCRIMINATOR_PARAMS[res]
    assert tm.count_params(tg.mapping) == tfm.count_params(kg.mapping) == common.MAPPING_PARAMS
    assert common.MAPPING_PARAMS == 8 * (128 * 128 + 128)
    assert tg.num_layers == kg.num_layers == common.num_layers(res)


@pytest.mark.parametrize("res", [32, 64])
def test_shapes(default_models, res):
    tg, td, kg, kd = default_models[res]
    z = np.random.default_rng(0).normal(size=(2, 128)).astype(np.float32)
    with torch.no_grad():
        x = tg(torch.from_numpy(z))
        assert tuple(x.shape) == (2, 1, res, res) and tuple(td(x).shape) == (2, 1)
        assert tuple(tg.styles(torch.from_numpy(z)).shape) == (2, common.num_layers(res), 128)
    y = kg(z)
    assert tuple(y.shape) == (2, res, res, 1) and tuple(kd(y).shape) == (2, 1)


def test_init(default_models):
    tg, _, kg, _ = default_models[32]
    t_map = torch.cat([layer.weight.detach().ravel() for layer in tg.mapping.layers]).numpy()
    k_map = np.concatenate([layer.kernel.numpy().ravel() for layer in kg.mapping.dense_layers])
    for stored in (t_map, k_map):        # N(0, 1 / lr_mul): the 0.01 is undone at run time
        assert abs(stored.std() / 100.0 - 1) < 0.01 and abs(stored.mean()) < 1.0
    t_conv = tg.synthesis.convs[0].conv.weight.detach().numpy()
    k_conv = kg.synthesis.convs[0].conv.kernel.numpy()
    for stored in (t_conv, k_conv):
        assert abs(stored.std() - 1) < 0.01
    assert tg.synthesis.convs[0].conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(9 * 128))
    assert tg.mapping.layers[0].scale == pytest.approx(0.01 * math.sqrt(2) / math.sqrt(128))
    assert kg.mapping.dense_layers[0].scale == tg.mapping.layers[0].scale
    for name, p in tg.named_parameters():
        if name.endswith(("bias", "noise.weight")):
            assert not p.detach().any(), name
        if name.endswith("const"):
            assert bool((p == 1).all())
    for v in kg.trainable_weights:
        if v.path.endswith(("bias", "weight")):
            assert not np.any(v.numpy()), v.path
        if v.path.endswith("const"):
            assert np.all(v.numpy() == 1)
    assert not tg.w_avg.any() and not np.any(kg.w_avg.numpy())


# ---------------------------------------------------------------- layers against the oracles

def test_equalized_layers_match_numpy(rng):
    x = f32(rng, 4, 6)
    t = tm.EqualizedLinear(6, 3, lr_mul=0.01)
    k = tfm.EqualizedDense(6, 3, lr_mul=0.01)
    perturb(t)
    copy_torch_to_keras(t, k)
    w, b = t.weight.detach().numpy().astype(np.float64), t.bias.detach().numpy()
    expected = x @ (w * 0.01 * math.sqrt(2) / math.sqrt(6)).T + 0.01 * b
    assert_close(t(torch.from_numpy(x)).detach(), expected, 1e-5)
    assert_close(k(x), expected, 1e-5)
    # convolutions: same output in both tracks (3x3 "same" = padding 1; 1x1)
    img = f32(rng, 2, 5, 7, 3)
    for kernel in (3, 1):
        tc, kc = tm.EqualizedConv2d(3, 4, kernel), tfm.EqualizedConv2D(3, 4, kernel)
        perturb(tc)
        copy_torch_to_keras(tc, kc)
        assert_close(kc(img), to_nhwc(tc(nchw(img))), 1e-5)


def test_pixel_norm_matches_oracle(rng):
    z = f32(rng, 5, 16, scale=3.0)
    assert_close(tm.PixelNorm()(torch.from_numpy(z)), ref.pixel_norm(z), 1e-6)
    assert_close(tfm.PixelNorm()(z), ref.pixel_norm(z), 1e-6)


def test_adain_matches_oracle_in_both_tracks(rng):
    x, w = f32(rng, 3, 5, 6, 4, scale=2.0) + 1.0, f32(rng, 3, 8)
    t, k = tm.AdaptiveInstanceNorm(4, 8), tfm.AdaptiveInstanceNorm(4, 8)
    perturb(t)
    copy_torch_to_keras(t, k)
    style = t.style(torch.from_numpy(w)).detach().numpy()
    expected = ref.adaptive_instance_norm(x, style[:, :4], style[:, 4:])
    assert_close(to_nhwc(t(nchw(x), torch.from_numpy(w))), expected, 1e-5)
    assert_close(k(x, w), expected, 1e-5)


def test_adain_starts_near_identity_scale(rng):
    """With the (1 + y_s) form and zero bias in A, the style at init is (1 + small, small)."""
    t = tm.AdaptiveInstanceNorm(64, 128)
    style = t.style(torch.from_numpy(f32(rng, 256, 128))).detach().numpy()
    assert abs(style.std() - 1.0) < 0.05       # gain 1: unit variance for a unit-variance w
    y = t(torch.randn(256, 64, 4, 4), torch.zeros(256, 128))
    # w = 0: the style is exactly (1, 0), the output the plain instance norm
    assert_close(y.std(dim=(2, 3), unbiased=False).detach(), np.ones((256, 64)), 1e-3)


@pytest.mark.parametrize("crossover", [0, 3, 8, np.array([0, 2, 5, 8])])
def test_mixing_matches_oracle(rng, crossover):
    w1, w2 = f32(rng, 4, 8, 5), f32(rng, 4, 8, 5)
    expected = ref.mix_styles(w1, w2, crossover)
    np.testing.assert_array_equal(tm.mix_styles(torch.from_numpy(w1), torch.from_numpy(w2),
                                                crossover).numpy(), expected)
    np.testing.assert_array_equal(np.asarray(tfm.mix_styles(w1, w2, crossover)), expected)


@pytest.mark.parametrize("psi, cutoff", [(0.0, None), (0.7, 3), (1.0, None), (-0.5, 8)])
def test_truncation_matches_oracle(rng, psi, cutoff):
    w, w_avg = f32(rng, 4, 8, 5), f32(rng, 5)
    expected = ref.truncate(w, w_avg, psi, cutoff)
    t = tm.truncate(torch.from_numpy(w), torch.from_numpy(w_avg), psi, cutoff)
    assert_close(t, expected, 1e-6)
    assert_close(tfm.truncate(tf.constant(w), w_avg, psi, cutoff), expected, 1e-6)


@pytest.mark.parametrize("batch", [8, 6, 5])
def test_minibatch_stddev_matches_oracle(rng, batch):
    x = f32(rng, batch, 4, 4, 3)
    expected = ref.minibatch_stddev(x, 4)
    assert_close(to_nhwc(tm.MinibatchStdDev(4)(nchw(x))), expected, 1e-5)
    assert_close(tfm.MinibatchStdDev(4)(x), expected, 1e-5)


def test_w_avg_update_matches_oracle(rng):
    tg, kg = tm.Generator(**SMALL), tfm.Generator(**SMALL)
    copy_torch_to_keras(tg, kg)
    avg = np.zeros(16)
    for _ in range(3):
        z = f32(rng, 8, 16)
        w = tg.mapping(torch.from_numpy(z)).detach().numpy()
        avg = ref.update_w_avg(avg, w, 0.995)
        tg.styles(torch.from_numpy(z), update_w_avg=True)
        kg.styles(z, update_w_avg=True)
    assert_close(tg.w_avg, avg, 1e-5)
    assert_close(kg.w_avg.numpy(), avg, 1e-5)


# ---------------------------------------------------------------- noise

def _synth_torch(g, ws, noise):
    with torch.no_grad():
        return to_nhwc(g.synthesis(torch.from_numpy(ws), [nchw(n) for n in noise]))


def test_noise_has_no_effect_at_init_and_only_changes_the_output_once_scaled(rng):
    tg, kg = tm.Generator(**SMALL), tfm.Generator(**SMALL)
    copy_torch_to_keras(tg, kg)
    ws = f32(rng, 2, 6, 16)
    n1 = common.sample_noise(np.random.default_rng(1), 16, 2)
    n2 = common.sample_noise(np.random.default_rng(2), 16, 2)
    np.testing.assert_array_equal(_synth_torch(tg, ws, n1), _synth_torch(tg, ws, n2))
    np.testing.assert_array_equal(np.asarray(kg.synthesis(ws, n1)),
                                  np.asarray(kg.synthesis(ws, n2)))
    # drawn noise too: two calls agree while the scales are zero
    np.testing.assert_array_equal(np.asarray(kg.synthesis(ws)), np.asarray(kg.synthesis(ws)))
    with torch.no_grad():
        assert torch.equal(tg.synthesis(torch.from_numpy(ws)), tg.synthesis(torch.from_numpy(ws)))
    # set the scales of one layer: now the noise matters, and the styles do not depend on it
    with torch.no_grad():
        tg.synthesis.convs[2].epilogue.noise.weight.fill_(0.3)
    kg.synthesis.convs[2].epilogue.noise.weight.assign(np.full(8, 0.3, np.float32))
    a, b = _synth_torch(tg, ws, n1), _synth_torch(tg, ws, n2)
    assert np.abs(a - b).max() > 1e-3
    assert_close(kg.synthesis(ws, n1), a)
    assert_close(kg.synthesis(ws, n2), b)
    n3 = [n.copy() for n in n1]
    n3[0] = n2[0]                      # noise of another, still unscaled layer: no effect
    np.testing.assert_array_equal(_synth_torch(tg, ws, n3), a)


# ---------------------------------------------------------------- same behaviour in both tracks

@pytest.mark.parametrize("kwargs", [SMALL, dict(resolution=32, channels=3, z_dim=32, w_dim=32,
                                                 mapping_layers=8, fmap_base=128, fmap_max=32)])
def test_synthesis_same_in_both_tracks(rng, kwargs):
    torch.manual_seed(1)
    tg, kg = tm.Generator(**kwargs), tfm.Generator(**kwargs)
    perturb(tg)
    copy_torch_to_keras(tg, kg)
    res, batch = kwargs["resolution"], 3
    ws = f32(rng, batch, common.num_layers(res), kwargs["w_dim"])
    noise = common.sample_noise(rng, res, batch)
    expected = _synth_torch(tg, ws, noise)
    assert expected.shape == (batch, res, res, kwargs["channels"])
    assert_close(kg.synthesis(ws, noise), expected)


def test_generator_mixing_truncation_same_in_both_tracks(rng):
    torch.manual_seed(2)
    tg, kg = tm.Generator(**SMALL), tfm.Generator(**SMALL)
    perturb(tg)
    with torch.no_grad():
        tg.w_avg.normal_()
    copy_torch_to_keras(tg, kg)
    z1, z2 = f32(rng, 4, 16), f32(rng, 4, 16)
    noise = common.sample_noise(rng, 16, 4)
    with torch.no_grad():
        ws = tg.styles(torch.from_numpy(z1), torch.from_numpy(z2), 2, psi=0.5, cutoff=4).numpy()
        w1 = tg.mapping(torch.from_numpy(z1)).numpy()
        w2 = tg.mapping(torch.from_numpy(z2)).numpy()
        img = to_nhwc(tg(torch.from_numpy(z1), torch.from_numpy(z2), crossover=2, psi=0.5,
                         cutoff=4, noise=[nchw(n) for n in noise]))
    expected = ref.truncate(ref.mix_styles(ref.broadcast_w(w1, 6), ref.broadcast_w(w2, 6), 2),
                            tg.w_avg.numpy(), 0.5, 4)
    assert_close(ws, expected, 1e-5)
    assert_close(kg.styles(z1, z2, 2, psi=0.5, cutoff=4), expected, 1e-4)
    assert_close(kg(z1, z2, crossover=2, psi=0.5, cutoff=4, noise=noise), img)


def test_psi_zero_gives_every_latent_the_same_image(rng):
    tg = tm.Generator(**SMALL)
    with torch.no_grad():
        imgs = tg(torch.from_numpy(f32(rng, 3, 16)), psi=0.0)
    assert_close(imgs[1:], imgs[:1].expand(2, -1, -1, -1), 1e-6)


def test_training_styles_same_in_both_tracks():
    torch.manual_seed(3)
    tg, kg = tm.Generator(**SMALL), tfm.Generator(**SMALL)
    copy_torch_to_keras(tg, kg)
    for seed in range(3):
        with torch.no_grad():
            t = tm.sample_styles_for_training(tg, 4, np.random.default_rng(seed))
        k = tfm.sample_styles_for_training(kg, 4, np.random.default_rng(seed))
        assert_close(k, t, 1e-4)
    assert_close(kg.w_avg.numpy(), tg.w_avg, 1e-4)
    assert tg.w_avg.abs().sum() > 0


@pytest.mark.parametrize("mbstd_group, batch", [(4, 4), (4, 6), (0, 3)])
def test_discriminator_same_in_both_tracks(rng, mbstd_group, batch):
    torch.manual_seed(4)
    td = tm.Discriminator(**SMALL_D, mbstd_group=mbstd_group)
    kd = tfm.Discriminator(**SMALL_D, mbstd_group=mbstd_group)
    assert tm.count_params(td) == tfm.count_params(kd)
    perturb(td)
    copy_torch_to_keras(td, kd)
    x = f32(rng, batch, 16, 16, 1)
    with torch.no_grad():
        expected = td(nchw(x)).numpy()
    assert_close(kd(x), expected)


def test_tanh_output_is_tanh_of_the_linear_one_in_both_tracks(rng):
    """The same weights drawn with output="tanh" (the default) and "linear" (the official ToRGB): tanh of
    the linear images, within (-1, 1), the same in both tracks; another name is refused."""
    torch.manual_seed(2)
    tg, tl = tm.Generator(**SMALL), tm.Generator(**SMALL, output="linear")
    perturb(tg)
    tl.load_state_dict(tg.state_dict())
    kg = tfm.Generator(**SMALL)
    copy_torch_to_keras(tg, kg)
    ws = f32(rng, 4, common.num_layers(SMALL["resolution"]), SMALL["w_dim"], scale=3.0)
    noise = common.sample_noise(rng, SMALL["resolution"], 4)
    linear, tanh = _synth_torch(tl, ws, noise), _synth_torch(tg, ws, noise)
    assert np.abs(linear).max() > 1.0                       # the linear output leaves [-1, 1]
    assert_close(tanh, np.tanh(linear))
    assert_close(kg.synthesis(ws, noise), tanh)
    for make in (tm.Generator, tfm.Generator):
        with pytest.raises(ValueError, match="output must be one of tanh, linear"):
            make(**SMALL, output="sigmoid")
    with pytest.raises(ValueError, match="output must be one of"):
        common.StyleGANConfig(output="relu")


def test_synthesis_rejects_a_wrong_number_of_styles():
    with pytest.raises(ValueError, match="styles"):
        tm.SynthesisNetwork(16, 8)(torch.zeros(1, 4, 8))
    with pytest.raises(ValueError, match="styles"):
        tfm.SynthesisNetwork(16, 8)(np.zeros((1, 4, 8), np.float32))


# ---------------------------------------------------------------- losses and R1

def test_losses_match_oracle(rng):
    real, fake = f32(rng, 8, 1, scale=3.0), f32(rng, 8, 1, scale=3.0)
    assert tm.generator_loss(torch.from_numpy(fake)).item() == pytest.approx(
        ref.generator_loss(fake), rel=1e-5)
    assert tm.discriminator_loss(torch.from_numpy(real), torch.from_numpy(fake)).item() == \
        pytest.approx(ref.discriminator_loss(real, fake), rel=1e-5)
    assert float(tfm.generator_loss(fake)) == pytest.approx(ref.generator_loss(fake), rel=1e-5)
    assert float(tfm.discriminator_loss(real, fake)) == pytest.approx(
        ref.discriminator_loss(real, fake), rel=1e-5)


def test_r1_of_a_linear_discriminator_is_gamma_half_norm_squared(rng):
    """D(x) = <a, x>: grad_x D = a for every image, so R1 = gamma / 2 |a|^2."""
    a, x = f32(rng, 1, 6, 6, 2), f32(rng, 5, 6, 6, 2)
    expected = 0.5 * 7.0 * float(np.sum(a.astype(np.float64) ** 2))
    ta = nchw(a)
    t = tm.r1_penalty(lambda v: (v * ta).sum(dim=(1, 2, 3)), nchw(x), gamma=7.0)
    k = tfm.r1_penalty(lambda v: tf.reduce_sum(v * a, axis=[1, 2, 3]), x, gamma=7.0)
    assert t.item() == pytest.approx(expected, rel=1e-5)
    assert float(k) == pytest.approx(expected, rel=1e-5)


def test_r1_same_in_both_tracks_and_reaches_the_weights(rng):
    torch.manual_seed(5)
    td, kd = tm.Discriminator(**SMALL_D), tfm.Discriminator(**SMALL_D)
    perturb(td)
    copy_torch_to_keras(td, kd)
    x = f32(rng, 4, 16, 16, 1)
    penalty, logits = tm.r1_penalty(td, nchw(x), return_logits=True)
    penalty.backward()
    # Leaky ReLU is piecewise linear, so a bias after the last nonlinear step (the
    # minibatch stddev) cannot change grad_x D; every other weight gets a gradient.
    missing = [n for n, p in td.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == ["conv.bias", "dense.bias", "out.bias"]
    with tf.GradientTape() as tape:
        k_penalty, k_logits = tfm.r1_penalty(kd, x, return_logits=True)
    grads = tape.gradient(k_penalty, kd.trainable_weights)
    assert float(k_penalty) == pytest.approx(penalty.item(), rel=1e-4)
    assert_close(k_logits, logits.detach().numpy())
    for (name, p), g in zip(td.named_parameters(), grads):     # second-order gradients agree
        if name in missing:
            assert g is None or float(tf.reduce_max(tf.abs(g))) < 1e-6
            continue
        expected = keras_layout(name, p.grad.numpy())
        assert_close(g.numpy(), expected, 1e-3)


def test_gradients_reach_every_generator_parameter(rng):
    z = f32(rng, 4, 16)
    tg, td = tm.Generator(**SMALL), tm.Discriminator(**SMALL_D)
    tm.generator_loss(td(tg(torch.from_numpy(z)))).backward()
    missing = [n for n, p in tg.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []
    kg, kd = tfm.Generator(**SMALL), tfm.Discriminator(**SMALL_D)
    with tf.GradientTape() as tape:
        loss = tfm.generator_loss(kd(kg(z)))
    grads = tape.gradient(loss, kg.trainable_weights)
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_keras_discriminator_step_with_r1_traces_in_tf_function(rng):
    """The training step's shape: the R1 tape inside the loss tape, compiled by tf.function."""
    kd = tfm.Discriminator(**SMALL_D)
    reals, fakes = tf.constant(f32(rng, 4, 16, 16, 1)), tf.constant(f32(rng, 4, 16, 16, 1))

    def d_loss():
        with tf.GradientTape() as tape:
            r1, d_real = tfm.r1_penalty(kd, reals, gamma=10.0, return_logits=True)
            loss = tfm.discriminator_loss(d_real, kd(fakes)) + r1
        return loss, tape.gradient(loss, kd.trainable_weights)

    eager_loss, eager_grads = d_loss()
    loss, grads = tf.function(d_loss)()
    assert float(loss) == pytest.approx(float(eager_loss), rel=1e-5)
    for g, e in zip(grads, eager_grads):
        assert_close(g, e, 1e-4)


def test_keras_weights_save_and_load(tmp_path, rng):
    kg = tfm.Generator(**SMALL)
    kg.synthesis.to_rgb.bias.assign([0.5])
    kg.w_avg.assign(np.ones(16, np.float32))
    kg.save_weights(tmp_path / "g.weights.h5")
    other = tfm.Generator(**SMALL)
    other.load_weights(tmp_path / "g.weights.h5")
    ws = f32(rng, 2, 6, 16)
    np.testing.assert_array_equal(np.asarray(other.synthesis(ws)), np.asarray(kg.synthesis(ws)))
    np.testing.assert_array_equal(other.w_avg.numpy(), kg.w_avg.numpy())
