"""The Keras track of the VAE and CVAE: formulas against the numpy oracle, then training."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from gencourse.reference import vae as ref  # noqa: E402
from gencourse.devices import DeviceError  # noqa: E402
from gencourse.vae.common import DECODER_PARAMS, ENCODER_PARAMS, VAEConfig  # noqa: E402
from gencourse.vae.tf_track import TFVAE  # noqa: E402  (sets KERAS_BACKEND before keras loads)
from gencourse.vae.tf_models import (  # noqa: E402
    VAE, Sampling, build_decoder, build_encoder, kl_divergence, reconstruction_loss, term_gradients,
    weight_tensors,
)

import keras  # noqa: E402

RTOL = 1e-5   # float32 against the float64 oracle


class MeanSampling(keras.layers.Layer):
    """A deterministic stand-in (z = z_mean) that makes the loss comparable with the oracle."""

    def call(self, inputs):
        return inputs[0]


def images(mnist, n):
    return mnist.x_train[:n].astype(np.float32) / 255.0, mnist.y_train[:n]


# --- formulas against the oracle and hand-derived values -------------------------------------

def test_kl_matches_oracle(rng):
    mu = rng.normal(0, 2, (64, 5)).astype(np.float32)
    log_var = rng.normal(0, 1.5, (64, 5)).astype(np.float32)
    ours = np.asarray(kl_divergence(mu, log_var))
    assert ours.shape == (64,)
    np.testing.assert_allclose(ours, ref.gaussian_kl(mu, log_var, reduce="none"), rtol=RTOL)


def test_kl_analytic_values():
    zeros = np.zeros((3, 4), np.float32)
    np.testing.assert_allclose(np.asarray(kl_divergence(zeros, zeros)), 0.0, atol=1e-7)
    # mu = 2, sigma = 1: -1/2 (1 + 0 - 4 - 1) = 2 nats per dimension.
    np.testing.assert_allclose(np.asarray(kl_divergence(zeros + 2, zeros)), 2.0 * 4, rtol=RTOL)
    # mu = 0, sigma^2 = 2: -1/2 (1 + ln 2 - 0 - 2) = (1 - ln 2) / 2 per dimension.
    log2 = np.full((3, 4), np.log(2.0), np.float32)
    np.testing.assert_allclose(np.asarray(kl_divergence(zeros, log2)), 4 * (1 - np.log(2.0)) / 2,
                               rtol=RTOL)


@pytest.mark.parametrize("binary", [True, False])
def test_reconstruction_matches_oracle(rng, binary):
    x = rng.uniform(size=(16, 28, 28, 1)).astype(np.float32)
    if binary:
        x = (x > 0.5).astype(np.float32)
    p = rng.uniform(size=x.shape).astype(np.float32)
    p[:, :3] = 0.0     # saturated pixels: only the clipping at 1e-7 keeps these finite
    p[:, 3:6] = 1.0
    ours = np.asarray(reconstruction_loss(x, p))
    assert ours.shape == (16,) and np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, ref.bernoulli_reconstruction(x, p, reduce="none"),
                               rtol=RTOL)


def test_reparameterization_gradients(rng):
    mu = tf.Variable(rng.normal(size=(256, 3)).astype(np.float32))
    log_var = tf.Variable(rng.normal(size=(256, 3)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        z = Sampling(seed=7)([mu, log_var])
    sigma = np.exp(0.5 * log_var.numpy())
    eps = (z.numpy() - mu.numpy()) / sigma          # the noise the layer drew
    assert 0.5 < eps.std() < 1.5                    # noise was drawn at all
    # z_i depends on mu_i and log_var_i only, so the gradient of sum(z) is the diagonal.
    np.testing.assert_allclose(tape.gradient(z, mu).numpy(), 1.0, rtol=RTOL)
    np.testing.assert_allclose(tape.gradient(z, log_var).numpy(), 0.5 * sigma * eps, rtol=1e-4, atol=1e-6)


def test_sampling_statistics():
    n, mu, sigma = 20_000, 1.5, 0.5
    z_mean = np.full((n, 2), mu, np.float32)
    z_log_var = np.full((n, 2), np.log(sigma**2), np.float32)
    layer = Sampling(seed=3)
    z = np.asarray(layer([z_mean, z_log_var]))
    # 5 standard errors: the mean's is sigma/sqrt(n), the standard deviation's sigma/sqrt(2n).
    np.testing.assert_allclose(z.mean(axis=0), mu, atol=5 * sigma / np.sqrt(n))
    np.testing.assert_allclose(z.std(axis=0), sigma, atol=5 * sigma / np.sqrt(2 * n))
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 5 / np.sqrt(n)
    again = np.asarray(layer([z_mean, z_log_var]))
    assert not np.allclose(again, z), "each call must draw fresh noise"
    np.testing.assert_array_equal(np.asarray(Sampling(seed=3)([z_mean, z_log_var])), z)


# --- architecture -------------------------------------------------------------------------------

@pytest.mark.parametrize("conditional", [False, True])
def test_param_counts(conditional):
    n = 10 if conditional else 0
    counts = TFVAE(VAEConfig(conditional=conditional)).param_counts()
    # The one-hot digit adds input rows to the first Dense of each network.
    assert counts == {"encoder": ENCODER_PARAMS + n * 16, "decoder": DECODER_PARAMS + n * 7 * 7 * 64}


@pytest.mark.parametrize("latent_dim,n_classes", [(2, 0), (2, 10), (5, 0)])
def test_output_shapes(rng, latent_dim, n_classes):
    encoder = build_encoder(latent_dim, n_classes)
    decoder = build_decoder(latent_dim, n_classes)
    x = rng.uniform(size=(6, 28, 28, 1)).astype(np.float32)
    c = rng.integers(0, 10, 6)                  # the CVAE takes the digits as integers
    outputs = encoder([x, c] if n_classes else x)
    assert [tuple(o.shape) for o in outputs] == [(6, latent_dim)] * 3
    z = np.asarray(outputs[2])
    p = np.asarray(decoder([z, c] if n_classes else z))
    assert p.shape == (6, 28, 28, 1) and p.min() >= 0 and p.max() <= 1


@pytest.mark.parametrize("conditional", [False, True])
def test_track_encode_decode_shapes(rng, conditional):
    track = TFVAE(VAEConfig(latent_dim=3, conditional=conditional))
    x = rng.uniform(size=(7, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 7)
    z_mean, z_log_var = track.encode(x, y)
    assert z_mean.shape == z_log_var.shape == (7, 3)
    assert track.decode(z_mean, y).shape == (7, 28, 28)


# --- the training loop ---------------------------------------------------------------------------

@pytest.mark.parametrize("conditional", [False, True])
def test_vae_loss_is_the_oracle_neg_elbo(rng, conditional):
    n = 10 if conditional else 0
    encoder, decoder = build_encoder(2, n, sampling=MeanSampling()), build_decoder(2, n)
    vae = VAE(encoder, decoder)
    x = (rng.uniform(size=(32, 28, 28, 1)) > 0.7).astype(np.float32)
    c = rng.integers(0, 10, 32).astype(np.int32)
    data = (tf.constant(x), tf.constant(c)) if conditional else tf.constant(x)
    logs = {k: float(v) for k, v in vae.test_step(data).items()}
    z_mean, z_log_var, z = (np.asarray(o) for o in encoder(data))
    np.testing.assert_array_equal(z, z_mean)
    x_prob = np.asarray(decoder([z, c] if conditional else z))
    np.testing.assert_allclose(logs["loss"], ref.neg_elbo(x, x_prob, z_mean, z_log_var), rtol=RTOL)
    np.testing.assert_allclose(logs["recon"], ref.bernoulli_reconstruction(x, x_prob), rtol=RTOL)
    np.testing.assert_allclose(logs["kl"], ref.gaussian_kl(z_mean, z_log_var), rtol=RTOL)


def test_a_model_class_trains_and_the_terms_are_measured_by_the_trusted_formulas(rng):
    """The notebook's and the grader's way in: another model class's train_step runs in fit(); evaluate()
    and the term gradients use the trusted losses whatever the class computes."""
    calls = []

    class Counting(VAE):
        def train_step(self, data):
            calls.append(1)
            return super().train_step(data)

    x = (rng.uniform(size=(64, 28, 28)) > 0.7).astype(np.float32)
    track = TFVAE(VAEConfig(), model_class=Counting)
    track.train_epoch(x, None, 32, seed=0)
    assert calls and isinstance(track.model, Counting)
    encoder, decoder = build_encoder(sampling=MeanSampling()), build_decoder()
    data = tf.constant(x[:8, ..., None])
    g_recon, g_kl = term_gradients(encoder, decoder, data)
    sizes = sum(int(np.prod(v.shape)) for v in weight_tensors(encoder) + weight_tensors(decoder))
    assert g_recon.shape == g_kl.shape == (sizes,)
    n_encoder = sum(int(np.prod(v.shape)) for v in weight_tensors(encoder))
    assert np.abs(g_kl[n_encoder:]).max() == 0 and np.abs(g_kl[:n_encoder]).max() > 0   # KL: encoder only


def test_save_load_resumes_exactly(mnist, tmp_path):
    x, y = images(mnist, 512)
    first = TFVAE(VAEConfig(seed=0))
    first.train_epoch(x, y, 128, seed=0)
    first.save(tmp_path)
    z = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    second = TFVAE(VAEConfig(seed=1))            # a different initialization
    assert not np.allclose(second.decode(z, y[:5]), first.decode(z, y[:5]))
    second.load(tmp_path)
    np.testing.assert_array_equal(first.decode(z, y[:5]), second.decode(z, y[:5]))
    for a, b in zip(first.encode(x[:20], y[:20]), second.encode(x[:20], y[:20])):
        np.testing.assert_array_equal(a, b)
    assert int(second.model.optimizer.iterations) == int(first.model.optimizer.iterations) == 4
    # Resuming continues the same run: Adam's moments and the sampler's seed were restored.
    np.testing.assert_allclose(list(second.train_epoch(x, y, 128, seed=1).values()),
                               list(first.train_epoch(x, y, 128, seed=1).values()), rtol=1e-6)
    np.testing.assert_allclose(second.decode(z, y[:5]), first.decode(z, y[:5]), rtol=1e-5, atol=1e-6)


def test_load_rejects_another_configuration(tmp_path):
    TFVAE(VAEConfig(conditional=True)).save(tmp_path)
    with pytest.raises(ValueError, match="does not match"):
        TFVAE(VAEConfig()).load(tmp_path)


def test_train_epoch_reports_progress(mnist):
    x, y = images(mnist, 300)
    seen = []
    logs = TFVAE(VAEConfig()).train_epoch(x, y, 128, seed=0, on_batch=seen.append)
    assert seen == [128, 128, 44]
    assert set(logs) == {"loss", "recon", "kl"}
    np.testing.assert_allclose(logs["loss"], logs["recon"] + logs["kl"], rtol=1e-5)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="this machine has a GPU")
def test_gpu_request_without_gpu_fails_clearly():
    with pytest.raises(DeviceError, match="gpu"):
        TFVAE(VAEConfig(), device="gpu")


@pytest.mark.slow
def test_vae_converges(mnist):
    x, y = images(mnist, 8000)
    x_test = mnist.x_test.astype(np.float32) / 255.0
    track = TFVAE(VAEConfig())
    before = track.evaluate(x_test, mnist.y_test)["loss"]
    for epoch in range(4):                 # batch 32: four times the steps of batch 128
        track.train_epoch(x, y, 32, seed=epoch)
    after = track.evaluate(x_test, mnist.y_test)["loss"]
    # Untrained: ~543 nats. Drawing the mean training image for every input scores 206,
    # so staying under 200 needs an informative z. Measured on this split (seeds 0-1):
    # 181-192 after 3 epochs, 176-190 after 4; converged (30 epochs, batch 128) ~165.
    assert before > 500 and after < 200, (before, after)


@pytest.mark.slow
def test_cvae_draws_the_requested_digit(mnist, classifier):
    x, y = images(mnist, 8000)
    track = TFVAE(VAEConfig(conditional=True))
    for epoch in range(2):
        track.train_epoch(x, y, 32, seed=epoch)
    digits = np.repeat(np.arange(10), 50)
    z = np.random.default_rng(0).standard_normal((len(digits), 2)).astype(np.float32)
    predicted = classifier.predict(track.decode(z, digits))
    per_digit = [np.mean(predicted[digits == d] == d) for d in range(10)]
    # Measured (seeds 0-1): 99-100 % after 1-2 epochs; the classifier itself is 95.6 % right.
    assert np.mean(predicted == digits) >= 0.9, np.round(per_digit, 2)
