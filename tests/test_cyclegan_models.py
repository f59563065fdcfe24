"""CycleGAN's networks in both tracks: sizes, receptive field, parameter counts, same outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gencourse.cyclegan import common
from gencourse.cyclegan import torch_models as tm
from gencourse.reference.cyclegan import instance_norm

keras = pytest.importorskip("keras")
tfm = pytest.importorskip("gencourse.cyclegan.tf_models")
tf = pytest.importorskip("tensorflow")
from gencourse.cyclegan.convert import torch_to_keras as copy_torch_to_keras  # noqa: E402


# ---------------------------------------------------------------- helpers

def torch_out(model: nn.Module, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        y = model(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).copy()))
    return y.numpy().transpose(0, 2, 3, 1)


def assert_close(a, b, rtol=1e-4):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
    assert err < rtol, f"relative error {err:.2e}"


# ---------------------------------------------------------------- arithmetic (no framework)

def test_patch_map_size_of_the_reference_sizes():
    assert [common.patch_map_size(n) for n in (256, 128, 64)] == [30, 14, 6]


def test_patch_map_size_general_formula():
    # padding 1 makes each 4x4 stride-2 conv give floor(n/2), each stride-1 one n - 1
    for n in range(24, 300):
        assert common.patch_map_size(n) == n // 8 - 2


def test_receptive_field_analytic():
    assert common.receptive_field() == (70, 8, -23)
    assert common.receptive_field([(k, s) for k, s, _ in common.PATCHGAN_LAYERS])[0] == 70
    # pix2pix's 16x16, 70x70 and 286x286 PatchGANs
    assert [common.receptive_field(common.patchgan_layers(n))[0] for n in (1, 3, 5)] == [16, 70, 286]
    assert common.receptive_field([(3, 1)] * 3) == (7, 1, 0)


def test_conv_output_size_rejects_a_too_small_input():
    with pytest.raises(ValueError, match="does not fit"):
        common.conv_output_size(2, 4, 1, 0)


def test_config_defaults():
    cfg = common.CycleGANConfig()
    assert (cfg.blocks, cfg.lambda_cycle, cfg.lambda_identity, cfg.gan_mode) == (9, 10.0, 5.0, "lsgan")
    assert common.CycleGANConfig(image_size=128).blocks == 6
    with pytest.raises(ValueError):
        common.CycleGANConfig(gan_mode="wgan")


# ---------------------------------------------------------------- parameter counts, 256²

@pytest.fixture(scope="module")
def torch_big():
    torch.manual_seed(0)
    return {"patchgan": tm.PatchDiscriminator(), "resnet9": tm.ResnetGenerator(n_blocks=9),
            "resnet6": tm.ResnetGenerator(n_blocks=6), "unet": tm.UnetGenerator()}


@pytest.fixture(scope="module")
def keras_big():
    keras.utils.set_random_seed(0)
    return {"patchgan": tfm.build_patch_discriminator(256), "resnet9": tfm.build_resnet_generator(256),
            "resnet6": tfm.build_resnet_generator(256, n_blocks=6), "unet": tfm.build_unet_generator(256)}


EXPECTED = {"patchgan": 2_764_737, "resnet9": 11_378_179, "resnet6": 7_837_699, "unet": 54_404_099}


def test_reference_constants():
    assert (common.PATCHGAN_PARAMS, common.RESNET9_PARAMS, common.RESNET6_PARAMS,
            common.UNET_PARAMS) == tuple(EXPECTED.values())


@pytest.mark.parametrize("name", list(EXPECTED))
def test_param_counts_torch(torch_big, name):
    assert tm.count_params(torch_big[name]) == EXPECTED[name]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_param_counts_keras(keras_big, name):
    assert keras_big[name].count_params() == EXPECTED[name]


def test_keras_shapes_at_256(keras_big):
    assert tuple(keras_big["patchgan"].output_shape) == (None, 30, 30, 1)
    for name in ("resnet9", "resnet6", "unet"):
        assert tuple(keras_big[name].output_shape) == (None, 256, 256, 3)


def test_unet_dropout_in_the_first_three_ups(torch_big, keras_big):
    drops = [m.p for m in torch_big["unet"].modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.5] * 3
    assert [la.rate for la in keras_big["unet"].layers if isinstance(la, keras.layers.Dropout)] == [0.5] * 3
    # the tutorial's LeakyReLU() has Keras' default slope 0.3
    assert {la.negative_slope for la in keras_big["unet"].layers
            if isinstance(la, keras.layers.LeakyReLU)} == {0.3}


def test_affine_instance_norm_adds_two_per_channel_in_both_tracks():
    # normalized channels: stem 64 + 128 + 256 + 2 per block * 256 + 128 + 64
    extra = 2 * (64 + 128 + 256 + 2 * 2 * 256 + 128 + 64)
    t = tm.count_params(tm.ResnetGenerator(n_blocks=2, affine=True))
    k = tfm.build_resnet_generator(n_blocks=2, affine=True).count_params()
    assert t == k == 11_378_179 - 7 * 1_180_160 + extra


def test_init_is_normal_002_with_zero_biases(torch_big, keras_big):
    tconvs = [m for m in torch_big["patchgan"].modules() if isinstance(m, nn.Conv2d)]
    kconvs = [la for la in keras_big["patchgan"].layers if isinstance(la, keras.layers.Conv2D)]
    for pairs in ([(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in tconvs],
                  [tuple(la.get_weights()) for la in kconvs]):
        w = np.concatenate([kernel.ravel() for kernel, _ in pairs])
        assert abs(w.std() - 0.02) < 0.0005 and abs(w.mean()) < 0.0005
        assert not any(np.any(bias) for _, bias in pairs)


# ---------------------------------------------------------------- shapes at several sizes

@pytest.mark.parametrize("n", [64, 70, 101, 128, 256])
def test_patch_map_size_in_both_tracks(n):
    x = np.zeros((1, n, n, 3), np.float32)
    expected = (1, common.patch_map_size(n), common.patch_map_size(n), 1)
    assert torch_out(tm.PatchDiscriminator(ndf=4), x).shape == expected
    assert tuple(tfm.build_patch_discriminator(ndf=4)(x).shape) == expected


# ---------------------------------------------------------------- receptive field, empirically

# 96² input: map 10x10; unit (5, 5) sees rows and columns 5*8-23 = 17 ... 86, inside the image.
RF_SIZE, RF_UNIT = 96, 5


def _support(grad_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = np.abs(grad_nhwc[0]).sum(axis=-1) > 0
    return np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))


def _expected_window():
    size, jump, start = common.receptive_field()
    first = start + RF_UNIT * jump
    return np.arange(first, first + size)


def test_receptive_field_empirical_torch():
    torch.manual_seed(0)
    d = tm.PatchDiscriminator(ndf=8, norm="none").double()
    x = torch.randn(1, 3, RF_SIZE, RF_SIZE, dtype=torch.float64, requires_grad=True)
    d(x)[0, 0, RF_UNIT, RF_UNIT].backward()
    rows, cols = _support(x.grad.numpy().transpose(0, 2, 3, 1))
    assert len(rows) == len(cols) == 70
    np.testing.assert_array_equal(rows, _expected_window())
    np.testing.assert_array_equal(cols, _expected_window())


def test_instance_norm_statistics_reach_the_whole_image():
    """Why the empirical test uses norm="none": instance norm's mean and variance couple all pixels."""
    torch.manual_seed(0)
    d = tm.PatchDiscriminator(ndf=8).double()
    x = torch.randn(1, 3, RF_SIZE, RF_SIZE, dtype=torch.float64, requires_grad=True)
    d(x)[0, 0, RF_UNIT, RF_UNIT].backward()
    rows, cols = _support(x.grad.numpy().transpose(0, 2, 3, 1))
    assert len(rows) == len(cols) == RF_SIZE


def test_receptive_field_empirical_keras():
    keras.utils.set_random_seed(0)
    d = tfm.build_patch_discriminator(RF_SIZE, ndf=8, norm="none")
    x = tf.Variable(np.random.default_rng(0).normal(size=(1, RF_SIZE, RF_SIZE, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        unit = d(x)[0, RF_UNIT, RF_UNIT, 0]
    rows, cols = _support(tape.gradient(unit, x).numpy())
    np.testing.assert_array_equal(rows, _expected_window())
    np.testing.assert_array_equal(cols, _expected_window())


# ---------------------------------------------------------------- same behaviour in both tracks

def _same_outputs(tmodel, kmodel, x):
    tmodel.eval()
    copy_torch_to_keras(tmodel, kmodel)
    assert_close(kmodel(x, training=False), torch_out(tmodel, x))


def test_resnet_generator_same_in_both_tracks(rng):
    torch.manual_seed(1)
    # 36 -> 18 -> 9 -> 18 -> 36: an odd size inside checks the padding and the crop
    x = rng.uniform(-1, 1, (2, 36, 36, 3)).astype(np.float32)
    _same_outputs(tm.ResnetGenerator(ngf=8, n_blocks=2), tfm.build_resnet_generator(ngf=8, n_blocks=2), x)


def test_resnet_generator_affine_one_channel_same_in_both_tracks(rng):
    torch.manual_seed(2)
    x = rng.uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
    _same_outputs(tm.ResnetGenerator(1, 1, ngf=8, n_blocks=1, affine=True),
                  tfm.build_resnet_generator(in_channels=1, out_channels=1, ngf=8, n_blocks=1,
                                             affine=True), x)


def test_unet_generator_same_in_both_tracks(rng):
    torch.manual_seed(3)
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    # n_downs = 6: one dropout up (off in eval), a 1x1 innermost without norm
    _same_outputs(tm.UnetGenerator(ngf=8, n_downs=6), tfm.build_unet_generator(ngf=8, n_downs=6), x)


def test_patch_discriminator_same_in_both_tracks(rng):
    torch.manual_seed(4)
    x = rng.uniform(-1, 1, (2, 75, 75, 3)).astype(np.float32)   # odd: explicit padding matters
    _same_outputs(tm.PatchDiscriminator(ndf=8), tfm.build_patch_discriminator(ndf=8), x)


def test_generators_end_in_tanh(rng):
    x = rng.normal(0, 50, (1, 32, 32, 3)).astype(np.float32)
    for model in (tm.ResnetGenerator(ngf=4, n_blocks=1), tm.UnetGenerator(ngf=4, n_downs=5)):
        y = torch_out(model.eval(), x)
        assert y.shape == x.shape and np.abs(y).max() <= 1.0


def test_unet_innermost_norm_of_the_tutorial_zeroes_the_bottleneck(rng):
    """With the tutorial's norm on the 1x1 innermost down, that layer's kernel changes nothing."""
    keras.utils.set_random_seed(5)
    x = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    model = tfm.build_unet_generator(ngf=4, n_downs=5, innermost_norm=True)
    assert model.count_params() == tfm.build_unet_generator(ngf=4, n_downs=5).count_params()
    innermost = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)][-1]
    before = np.asarray(model(x, training=False))
    innermost.set_weights([w * 0 + rng.normal(size=w.shape) for w in innermost.get_weights()])
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), before)
    with pytest.raises(ValueError, match="spatial element"):     # torch refuses it in training
        tm.UnetGenerator(ngf=4, n_downs=5, innermost_norm=True)(torch.zeros(1, 3, 32, 32))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")   # inside Keras' saving
def test_keras_models_save_and_load(tmp_path, rng):
    x = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    model = tfm.build_resnet_generator(ngf=4, n_blocks=1, affine=True)   # both custom layers
    model.save(tmp_path / "g.keras")
    np.testing.assert_array_equal(np.asarray(keras.models.load_model(tmp_path / "g.keras")(x)),
                                  np.asarray(model(x)))


def test_gradients_reach_every_parameter(rng):
    """A generator step through D (as in training): no in-place or padding op breaks the graph."""
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    for g in (tm.ResnetGenerator(ngf=4, n_blocks=1), tm.UnetGenerator(ngf=4, n_downs=5)):
        d = tm.PatchDiscriminator(ndf=4)
        fake = g(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        tm.generator_adversarial_loss(d(fake)).backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    g = tfm.build_resnet_generator(ngf=4, n_blocks=1, affine=True)     # both custom layers
    d = tfm.build_patch_discriminator(ndf=4)
    with tf.GradientTape() as tape:
        loss = tfm.generator_adversarial_loss(d(g(x, training=True)))
    grads = tape.gradient(loss, g.trainable_weights)
    assert all(gr is not None and float(tf.reduce_sum(tf.abs(gr))) > 0 for gr in grads)


# ---------------------------------------------------------------- layers against oracles

@pytest.mark.parametrize("batch", [1, 2])    # one image: the fused kernel
@pytest.mark.parametrize("affine", [False, True])
def test_keras_instance_norm_matches_oracle(rng, affine, batch):
    x = rng.normal(3.0, 2.0, (batch, 5, 7, 4)).astype(np.float32)
    layer = tfm.InstanceNormalization(affine=affine)
    layer.build(x.shape)
    kwargs = {}
    if affine:
        scale, offset = rng.normal(1, 0.5, 4).astype(np.float32), rng.normal(0, 1, 4).astype(np.float32)
        layer.set_weights([scale, offset])
        kwargs = {"scale": scale, "offset": offset}
    assert len(layer.trainable_weights) == (2 if affine else 0)
    assert_close(layer(x), instance_norm(x, **kwargs), rtol=1e-5)


def test_torch_instance_norm_matches_oracle(rng):
    x = rng.normal(-1.0, 3.0, (2, 4, 5, 7)).astype(np.float32)
    y = tm.norm_layer(4)(torch.from_numpy(x)).numpy()
    assert_close(y, instance_norm(x, channel_axis=1), rtol=1e-5)


@pytest.mark.parametrize("affine", [False, True])
def test_keras_instance_norm_of_one_image_has_the_gradient_of_a_batch(rng, affine):
    """The fused kernel (one image) against the moments (the same image in a batch of two): outputs and
    the gradients of the input and the affine weights."""
    layer = tfm.InstanceNormalization(affine=affine)
    layer.build((None, 6, 5, 3))
    if affine:
        layer.set_weights([rng.normal(1, 0.5, 3).astype(np.float32), rng.normal(0, 1, 3).astype(np.float32)])
    x = tf.constant(rng.normal(1.0, 2.0, (2, 6, 5, 3)).astype(np.float32))
    dy = tf.constant(rng.normal(size=(2, 6, 5, 3)).astype(np.float32))
    results = []
    for inputs, cotangent in ((x[:1], dy[:1]), (x, dy * tf.constant([1.0, 0.0])[:, None, None, None])):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = layer(inputs)
            loss = tf.reduce_sum(y * cotangent)
        results.append([y[:1]] + [g[:1] if i == 0 else g
                                  for i, g in enumerate(tape.gradient(loss, [inputs] + layer.trainable_weights))])
    for one, batch in zip(*results):
        assert_close(one, batch, rtol=1e-5)


def test_instance_norm_of_a_single_pixel_is_zero():
    x = np.random.default_rng(0).normal(size=(2, 1, 1, 8)).astype(np.float32)
    assert np.all(np.asarray(tfm.InstanceNormalization()(x)) == 0)
    assert np.all(np.asarray(tfm.InstanceNormalization()(x[:1])) == 0)   # the fused kernel
    assert np.all(instance_norm(x) == 0)


def test_reflection_padding_matches_numpy_and_torch(rng):
    x = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    expected = np.pad(x, [(0, 0), (3, 3), (3, 3), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(np.asarray(tfm.ReflectionPadding2D(3)(x)), expected)
    np.testing.assert_array_equal(torch_out(nn.ReflectionPad2d(3), x), expected)
