"""The PyTorch track's VAE and conditional VAE: the networks, losses and step the assignment grades.

The model is the report's Keras model (the Keras VAE example, F. Chollet,
keras.io/examples/generative/vae, after Kingma & Welling, "Auto-Encoding
Variational Bayes", 2014; vae/common.py spells it out) written as a PyTorch
user writes it: `padding=1` convolutions, `output_padding=1` transposed ones,
channels-first flatten and reshape. Keras' stride-2 "same" padding sits one
pixel off PyTorch's (bottom/right only against both sides), so the two tracks
have the same layers, parameter counts and initialization, not the same
function of the same weights.

Glorot-uniform weights and zero biases (`init_like_keras`): with PyTorch's own
initialization the same model ends near neg-ELBO 190 instead of 166
(docs/design.md, "Two tracks, one number"). The package's answers to the
assignment's TODOs live here, apart from the trainer (`torch_track`), so that
the notebook's locked cells never import them (docs/design.md, "Integrity").
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..reference.vae import EPS

def kl_divergence(z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per example, summed over latent dimensions: shape [B]."""
    return -0.5 * torch.sum(1 + z_log_var - z_mean.square() - z_log_var.exp(), dim=-1)


def reconstruction_loss(x: torch.Tensor, x_prob: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per example, summed over pixels: shape [B].

    Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does, so both tracks
    and `gencourse.reference` agree and log(0) never appears.
    """
    p = x_prob.clamp(EPS, 1 - EPS)
    bce = -(x * p.log() + (1 - x) * torch.log1p(-p))
    return bce.flatten(1).sum(dim=1)


class Sampling(nn.Module):
    """The reparameterization trick: z = mu + exp(log_var / 2) * eps, eps ~ N(0, I).

    The noise is drawn from `generator` (torch's global RNG if None), so z stays
    differentiable in mu and log_var.
    """

    def __init__(self, generator: torch.Generator | None = None):
        super().__init__()
        self.generator = generator

    def forward(self, z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
        eps = torch.randn_like(z_mean, generator=self.generator)
        return z_mean + torch.exp(0.5 * z_log_var) * eps


class FixedNoise(nn.Module):
    """z = mu + exp(log_var / 2) * eps for one given eps per latent dimension: the grader's
    deterministic sampling, so that a network's or a step's outputs can be compared exactly."""

    def __init__(self, eps):
        super().__init__()
        self.eps = torch.as_tensor(np.asarray(eps, np.float32))   # no buffer: no weight of the network

    def forward(self, z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
        return z_mean + torch.exp(0.5 * z_log_var) * self.eps


def condition(h: torch.Tensor, labels: torch.Tensor, n_classes: int = 10) -> torch.Tensor:
    """The CVAE's conditioning: the features, then the one-hot digit, [B, width + n_classes]."""
    if labels is None:
        raise ValueError("a conditional model needs the digit labels y")
    return torch.cat([h, F.one_hot(labels, n_classes).to(h.dtype)], dim=-1)


class Encoder(nn.Module):
    """x [B, 1, 28, 28] (and digit y [B] if n_classes) -> (z_mean, z_log_var, z)."""

    def __init__(self, latent_dim: int = 2, n_classes: int = 0, sampling: nn.Module | None = None,
                 conditioning: Callable | None = None):
        super().__init__()
        self.n_classes, self.conditioning = n_classes, conditioning or condition
        self.conv1 = nn.Conv2d(1, 32, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.dense = nn.Linear(7 * 7 * 64 + n_classes, 16)
        self.z_mean = nn.Linear(16, latent_dim)
        self.z_log_var = nn.Linear(16, latent_dim)
        self.sampling = sampling if sampling is not None else Sampling()

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        h = F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1)
        if self.n_classes:
            h = self.conditioning(h, y, self.n_classes)
        h = F.relu(self.dense(h))
        z_mean, z_log_var = self.z_mean(h), self.z_log_var(h)
        return z_mean, z_log_var, self.sampling(z_mean, z_log_var)


class Decoder(nn.Module):
    """z [B, latent] (and digit y [B] if n_classes) -> pixel probabilities [B, 1, 28, 28]."""

    def __init__(self, latent_dim: int = 2, n_classes: int = 0, conditioning: Callable | None = None):
        super().__init__()
        self.n_classes, self.conditioning = n_classes, conditioning or condition
        self.dense = nn.Linear(latent_dim + n_classes, 7 * 7 * 64)
        self.deconv1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        self.deconv3 = nn.ConvTranspose2d(32, 1, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conditioning(z, y, self.n_classes) if self.n_classes else z
        # channels-last memory (the same values): PyTorch's CPU transposed convolutions take oneDNN's faster
        # path, an epoch 1.07x faster in one process (docs/results.md, issue 26); the output, one channel, is
        # contiguous either way
        h = F.relu(self.dense(h)).view(-1, 64, 7, 7).contiguous(memory_format=torch.channels_last)
        h = F.relu(self.deconv2(F.relu(self.deconv1(h))))
        return torch.sigmoid(self.deconv3(h))


def per_example_losses(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, y=None):
    """(reconstruction, KL), each [B], by the trusted formulas."""
    z_mean, z_log_var, z = encoder(x, y)
    return reconstruction_loss(x, decoder(z, y)), kl_divergence(z_mean, z_log_var)


def train_step(encoder: nn.Module, decoder: nn.Module, optimizer, x: torch.Tensor, y=None) -> dict:
    """One step on the batch mean of the negative ELBO; the batch's means (before the step) back."""
    recon, kl = per_example_losses(encoder, decoder, x, y)
    recon, kl = recon.mean(), kl.mean()
    loss = recon + kl
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}


def term_gradients(encoder: nn.Module, decoder: nn.Module, x, y=None) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the batch means of the reconstruction and of the KL, each flat over the
    parameters of `weight_tensors(encoder) + weight_tensors(decoder)`: what one SGD step should follow."""
    params = weight_tensors(encoder) + weight_tensors(decoder)
    recon, kl = per_example_losses(encoder, decoder, x, y)
    flat = []
    for term in (recon.mean(), kl.mean()):
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        flat.append(np.concatenate([np.zeros(p.numel()) if g is None else g.detach().double().numpy().ravel()
                                    for p, g in zip(params, grads)]))
    return flat[0], flat[1]


def weight_tensors(net: nn.Module) -> list:
    """The parameters and buffers of `net` in state_dict order, the sampling module's left out."""
    skip = {name for name, m in net.named_modules() if isinstance(m, (Sampling, FixedNoise))}
    state = net.state_dict(keep_vars=True)
    return [v for k, v in state.items() if k.rsplit(".", 1)[0] not in skip]


class VAE(nn.Module):
    """Encoder + decoder; forward gives the batch means (neg-ELBO, reconstruction, KL)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        recon, kl = (t.mean() for t in per_example_losses(self.encoder, self.decoder, x, y))
        return recon + kl, recon, kl


def init_like_keras(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Glorot-uniform weights and zero biases for every Linear and (transposed) convolution.

    torch's fan computation gives Keras' bound sqrt(6 / (fan_in + fan_out)) for
    all three (a transposed kernel swaps fan_in and fan_out, not their sum).
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
