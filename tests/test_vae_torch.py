"""The PyTorch track of the VAE/CVAE: formulas against the numpy oracle, the
architecture (the Keras model's layers and counts in PyTorch's layout), initialization,
checkpoints, devices, and short trainings on the shared MNIST test set."""

import math

import numpy as np
import pytest
import torch

from gencourse import reference
from gencourse.devices import DeviceError
from gencourse.vae.common import DECODER_PARAMS, ENCODER_PARAMS, VAEConfig
from gencourse.vae.torch_track import TorchVAE
from gencourse.vae.torch_models import (
    VAE, Decoder, Encoder, Sampling, init_like_keras, kl_divergence,
    reconstruction_loss,
)


def floats(images) -> np.ndarray:
    return images.astype(np.float32) / 255.0


def test_parameter_counts_match_the_keras_model():
    assert TorchVAE(VAEConfig(), "cpu").param_counts() == {
        "encoder": ENCODER_PARAMS, "decoder": DECODER_PARAMS}
    # the one-hot digit adds 10 inputs to Dense(16) and to Dense(7*7*64)
    assert TorchVAE(VAEConfig(conditional=True), "cpu").param_counts() == {
        "encoder": ENCODER_PARAMS + 10 * 16, "decoder": DECODER_PARAMS + 10 * 7 * 7 * 64}


@pytest.mark.parametrize("latent, conditional", [(2, False), (2, True), (5, False), (3, True)])
def test_shapes(latent, conditional, rng):
    t = TorchVAE(VAEConfig(latent_dim=latent, conditional=conditional), "cpu")
    x = rng.random((7, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 7)
    z_mean, z_log_var = t.encode(x, y)
    assert z_mean.shape == z_log_var.shape == (7, latent)
    z = rng.normal(size=(7, latent))
    images = t.decode(z, y)
    assert images.shape == (7, 28, 28) and images.dtype == np.float32
    assert np.all((images > 0) & (images < 1))
    assert np.allclose(t.decode(z, (y + 1) % 10), images) != conditional   # the digit matters
    n_classes = 10 if conditional else 0
    yt = torch.as_tensor(y) if conditional else None
    mu, log_var, z = Encoder(latent, n_classes)(torch.as_tensor(x)[:, None], yt)
    assert mu.shape == log_var.shape == z.shape == (7, latent)
    assert Decoder(latent, n_classes)(z, yt).shape == (7, 1, 28, 28)


def test_conditional_model_needs_labels():
    with pytest.raises(ValueError, match="labels"):
        Decoder(2, 10)(torch.zeros(3, 2))


def test_losses_match_the_oracle(rng):
    mu, log_var = rng.normal(size=(2, 64, 8)).astype(np.float32)
    x = (rng.random((64, 28, 28)) > 0.7).astype(np.float32)
    p = rng.random((64, 28, 28), dtype=np.float32)
    kl = kl_divergence(torch.as_tensor(mu), torch.as_tensor(log_var)).numpy()
    rec = reconstruction_loss(torch.as_tensor(x), torch.as_tensor(p)).numpy()
    assert kl.shape == rec.shape == (64,)
    np.testing.assert_allclose(kl, reference.gaussian_kl(mu, log_var, reduce="none"), rtol=1e-5)
    np.testing.assert_allclose(rec, reference.bernoulli_reconstruction(x, p, reduce="none"), rtol=1e-5)
    # probabilities of exactly 0 and 1 are clipped as in the oracle (float64: clip bounds exact)
    x64, p64 = np.array([[1.0, 0.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 1.0, 0.0]])
    extreme = reconstruction_loss(torch.as_tensor(x64), torch.as_tensor(p64)).numpy()
    np.testing.assert_allclose(extreme, reference.bernoulli_reconstruction(x64, p64, reduce="none"),
                               rtol=1e-6)


def test_kl_analytic_values():
    zeros = torch.zeros(4, 3)
    assert torch.allclose(kl_divergence(zeros, zeros), torch.zeros(4))
    # mu = 2, sigma = 1: KL = mu^2 / 2 = 2 per dimension
    assert torch.allclose(kl_divergence(torch.full((4, 3), 2.0), zeros), torch.full((4,), 6.0))


def test_reparameterization_gradients(rng):
    mu = torch.tensor(rng.normal(size=(16, 4)), requires_grad=True)
    log_var = torch.tensor(rng.normal(size=(16, 4)), requires_grad=True)
    z = Sampling(torch.Generator().manual_seed(0))(mu, log_var)
    sigma = torch.exp(0.5 * log_var).detach()
    eps = (z.detach() - mu.detach()) / sigma
    np.testing.assert_allclose(z.detach().numpy(), reference.reparameterize(
        mu.detach().numpy(), log_var.detach().numpy(), eps.numpy()), rtol=1e-12)
    d_mu, d_log_var = torch.autograd.grad(z.sum(), [mu, log_var])
    assert torch.allclose(d_mu, torch.ones_like(d_mu))
    assert torch.allclose(d_log_var, 0.5 * sigma * eps)


def test_sampling_statistics_and_seeding():
    n, mu, sigma = 200_000, 1.5, 0.5
    args = torch.full((n, 1), mu), torch.full((n, 1), 2 * math.log(sigma))
    z = Sampling(torch.Generator().manual_seed(1))(*args)
    # five standard errors of the sample mean and of the sample standard deviation
    assert abs(z.mean().item() - mu) < 5 * sigma / math.sqrt(n)
    assert abs(z.std().item() - sigma) < 5 * sigma / math.sqrt(2 * n)
    assert torch.equal(z, Sampling(torch.Generator().manual_seed(1))(*args))
    assert not torch.equal(z, Sampling(torch.Generator().manual_seed(2))(*args))


@pytest.mark.parametrize("n_classes", [0, 10])
def test_vae_loss_is_the_oracle_neg_elbo(n_classes, rng):
    g = torch.Generator().manual_seed(5)
    vae = init_like_keras(VAE(Encoder(2, n_classes, Sampling(g)), Decoder(2, n_classes)))
    x = torch.as_tensor(rng.random((32, 1, 28, 28), dtype=np.float32))
    y = torch.as_tensor(rng.integers(0, 10, 32)) if n_classes else None
    state = g.get_state()
    with torch.no_grad():
        z_mean, z_log_var, z = vae.encoder(x, y)
        x_prob = vae.decoder(z, y)
        g.set_state(state)
        loss, recon, kl = vae(x, y)
    args = x.numpy(), x_prob.numpy(), z_mean.numpy(), z_log_var.numpy()
    assert loss.item() == pytest.approx(reference.neg_elbo(*args), rel=1e-5)
    assert recon.item() == pytest.approx(reference.bernoulli_reconstruction(*args[:2]), rel=1e-5)
    assert kl.item() == pytest.approx(reference.gaussian_kl(*args[2:]), rel=1e-5)


def test_an_injected_step_trains_and_evaluate_uses_the_trusted_terms(rng):
    x = rng.random((16, 28, 28), dtype=np.float32)
    steps = []

    def step(encoder, decoder, optimizer, xb, yb=None):
        steps.append(len(xb))
        return {"loss": 1.0, "recon": 0.75, "kl": 0.25}

    t = TorchVAE(VAEConfig(), "cpu", step=step)
    before = t.evaluate(x, None)
    assert t.train_epoch(x, None, 8, seed=0) == {"loss": 1.0, "recon": 0.75, "kl": 0.25} and steps == [8, 8]
    assert t.evaluate(x, None) == before             # this step trained nothing
    assert before["loss"] == pytest.approx(before["recon"] + before["kl"])


def test_glorot_uniform_init():
    t = TorchVAE(VAEConfig(conditional=True), "cpu")
    layers = [m for m in t.model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d,
                                                             torch.nn.ConvTranspose2d))]
    assert len(layers) == 9
    for m in layers:
        w = m.weight.detach()
        receptive = w[0, 0].numel()
        fan_sum = (w.shape[0] + w.shape[1]) * receptive
        bound = math.sqrt(6 / fan_sum)
        assert torch.all(m.bias == 0)
        assert w.abs().max() <= bound * (1 + 1e-6)   # float32 rounding of the bound
        if w.numel() >= 288:   # the smallest kernel, conv1's 32*9: all |w| < 0.9 bound has p < 1e-13
            assert w.abs().max() > 0.9 * bound
            assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15)


def test_plain_pytorch_layout():
    """The layers a PyTorch user writes: padding=1, channels-first flatten, no flips; 28 -> 14 -> 7 -> 28."""
    encoder, decoder = Encoder(), Decoder()
    x = torch.zeros(2, 1, 28, 28)
    assert encoder.conv2(encoder.conv1(x)).shape == (2, 64, 7, 7)
    assert decoder(torch.zeros(2, 2)).shape == (2, 1, 28, 28)
    assert [name for name, _ in encoder.named_children()] == ["conv1", "conv2", "dense", "z_mean", "z_log_var",
                                                              "sampling"]


def test_save_load_resumes_exactly(mnist, tmp_path):
    x, y = floats(mnist.x_train[:384]), mnist.y_train[:384]
    config = VAEConfig(conditional=True)
    a = TorchVAE(config, "cpu")
    calls = []
    first = a.train_epoch(x, y, batch_size=100, seed=1, on_batch=calls.append)
    assert calls == [100, 100, 100, 84]
    assert first["loss"] == pytest.approx(first["recon"] + first["kl"])
    a.save(tmp_path)
    z = np.random.default_rng(0).normal(size=(5, 2))
    images = a.decode(z, np.arange(5))
    # another seed, so that only the checkpoint can make it continue like `a`
    b = TorchVAE(VAEConfig(conditional=True, seed=99), "cpu")
    assert not np.allclose(b.decode(z, np.arange(5)), images)
    b.load(tmp_path)
    np.testing.assert_array_equal(b.decode(z, np.arange(5)), images)
    assert b.optimizer.state_dict()["state"][0]["step"] == a.optimizer.state_dict()["state"][0]["step"] == 4
    assert b.train_epoch(x, y, 100, seed=2) == a.train_epoch(x, y, 100, seed=2)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def test_evaluate_is_repeatable_and_leaves_training_noise_alone(mnist):
    x, y = floats(mnist.x_train[:256]), mnist.y_train[:256]
    a, b = TorchVAE(VAEConfig(), "cpu"), TorchVAE(VAEConfig(), "cpu")
    assert a.evaluate(x, y) == a.evaluate(x, y)
    a.encode(x, y)
    assert a.train_epoch(x, y, 128, seed=0) == b.train_epoch(x, y, 128, seed=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="gpu"):
        TorchVAE(VAEConfig(), "gpu")


def test_tpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="tpu"):
        TorchVAE(VAEConfig(), "tpu")


@pytest.mark.slow
def test_training_lowers_held_out_neg_elbo(mnist):
    """Four epochs on 8,000 digits (about 25 s on 2 cores) must clearly learn.

    Measured on these 2,000 held-out digits: untrained about 544 nats;
    predicting the mean training image for every digit, 205.9; after 4
    epochs 195.5 (seed 0, the same on two machines), 198.3 and 204.4 (seeds
    1 and 2: the second latent dimension can switch on late); after 30 about
    163. So < 210 leaves room for other numerics, and KL > 0.5 (measured
    1.4-3.1) shows the code z carries information about the digit.
    """
    t = TorchVAE(VAEConfig(), "cpu")
    x, xv = floats(mnist.x_train), floats(mnist.x_test)
    assert t.evaluate(xv, mnist.y_test)["loss"] > 400
    for epoch in range(4):
        train = t.train_epoch(x, mnist.y_train, 128, seed=epoch)
    after = t.evaluate(xv, mnist.y_test)
    assert after["loss"] < 210, after
    assert after["kl"] > 0.5, after
    assert abs(train["loss"] - after["loss"]) < 20, (train, after)   # both per-image means


@pytest.mark.slow
def test_cvae_draws_the_requested_digit(mnist, classifier):
    """After 3 epochs (about 20 s), z ~ N(0, I) with digit d decodes to a d.

    The classifier reads 95.6 % of real held-out digits right. Measured on 500
    generated digits (seeds 0 and 1): about 35 % after one epoch, 100 % after
    2 to 6 epochs, 99.4 % at worst after 8.
    """
    t = TorchVAE(VAEConfig(conditional=True), "cpu")
    x = floats(mnist.x_train)
    for epoch in range(3):
        t.train_epoch(x, mnist.y_train, 128, seed=epoch)
    digits = np.repeat(np.arange(10), 50)
    z = np.random.default_rng(0).normal(size=(len(digits), 2))
    accuracy = np.mean(classifier.predict(t.decode(z, digits)) == digits)
    assert accuracy >= 0.9, accuracy


@pytest.mark.gpu
@pytest.mark.slow
def test_full_size_training_on_cuda(mnist):
    """The report's run: 30 epochs on CUDA (about 13 s on an H200).

    Measured: 163.2 on CPU, 179.7 on CUDA (Keras about 165). The 2-d code's
    second dimension switches on somewhere between epochs 12 and 30+
    depending on the noise, a drop from about 180 to 165; 185 accepts both.
    """
    t = TorchVAE(VAEConfig(), "gpu")
    assert t.device.type == "cuda"
    x = floats(mnist.x_train)
    for epoch in range(1, 31):
        t.train_epoch(x, mnist.y_train, 128, seed=epoch)
    assert t.evaluate(floats(mnist.x_test), mnist.y_test)["loss"] < 185
