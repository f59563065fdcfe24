"""The PyTorch track of the VAE and conditional VAE, with a plain training loop.

The model is the report's Keras model (the Keras VAE example, F. Chollet,
keras.io/examples/generative/vae, after Kingma & Welling, "Auto-Encoding
Variational Bayes", 2014; vae/common.py spells it out) written as a PyTorch
user writes it: `padding=1` convolutions, `output_padding=1` transposed ones,
channels-first flatten and reshape. Keras' stride-2 "same" padding sits one
pixel off PyTorch's (bottom/right only against both sides), so the two tracks
have the same layers, parameter counts and initialization, not the same
function of the same weights.

Glorot-uniform weights and zero biases (`init_like_keras`) and Adam's epsilon
1e-7, Keras' defaults: with PyTorch's own initialization the same model ends
near neg-ELBO 190 instead of 166 (docs/design.md, "Two tracks, one number").

`TorchVAE` implements `gencourse.vae.common.Trainer`; the grader and the
notebooks plug a student's networks, `Sampling`, conditioning and step function
into it (`encoder=`, `decoder=`, `sampling=`, `conditioning=`, `step=`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..devices import torch_setup
from ..reference.vae import EPS
from .common import VAEConfig


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
        h = F.relu(self.dense(h)).view(-1, 64, 7, 7)
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


def _batches(x: torch.Tensor, y: torch.Tensor | None, size: int):
    """Consecutive (x, y) batches; y stays None for an unconditional model."""
    for i in range(0, len(x), size):
        yield x[i:i + size], None if y is None else y[i:i + size]


TERMS = ("loss", "recon", "kl")


class TorchVAE:
    """The `Trainer` of vae/common.py in PyTorch: CPU, CUDA, or DDP under torchrun.

    Seeded by `config.seed`: weights, the sampling noise (own generator per
    rank) and torch's global RNG, for parts that draw from it. `step` (default
    `train_step`) trains one batch. Under DDP, encoder and decoder are wrapped
    each, and `batch_size` stays the global batch: each rank takes its equal
    share of every epoch's permutation in batches of batch_size // world.
    """

    name = "torch"
    NETS = ("encoder", "decoder")

    def __init__(self, config: VAEConfig, device: str = "auto", *, encoder: nn.Module | None = None,
                 decoder: nn.Module | None = None, sampling: nn.Module | None = None,
                 conditioning: Callable | None = None, step: Callable | None = None):
        self.config = config
        self.device, self.rank, self.world = torch_setup(device)
        self.is_main = self.rank == 0
        torch.manual_seed(config.seed + self.rank)
        self.generator = torch.Generator(self.device).manual_seed(config.seed + self.rank)
        n_classes = config.n_classes if config.conditional else 0
        encoder = encoder if encoder is not None else Encoder(
            config.latent_dim, n_classes, sampling if sampling is not None else Sampling(self.generator),
            conditioning)
        decoder = decoder if decoder is not None else Decoder(config.latent_dim, n_classes, conditioning)
        self.model = VAE(encoder, decoder)
        init_like_keras(self.model, torch.Generator().manual_seed(config.seed))
        self.model.to(self.device)
        self.nets = (self.model.encoder, self.model.decoder)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.nets = tuple(nn.parallel.DistributedDataParallel(n, device_ids=ids) for n in self.nets)
        self.step = step or train_step
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate,
                                          eps=1e-7)

    def _tensors(self, x, y):
        """x as float32 on the device; labels as int64 there (None unless conditional)."""
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device)
        if not self.config.conditional:
            return xt, None
        return xt, torch.as_tensor(np.asarray(y, dtype=np.int64), device=self.device)

    @contextlib.contextmanager
    def _fixed_noise(self):
        """The same noise on every call, leaving training's RNG streams where they were."""
        state = self.generator.get_state()
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.config.seed)
            self.generator.manual_seed(self.config.seed)
            try:
                yield
            finally:
                self.generator.set_state(state)

    def train_epoch(self, x, y, batch_size, seed, on_batch=None) -> dict:
        xt, yt = self._tensors(x, y)
        order = torch.from_numpy(np.random.default_rng(seed).permutation(len(xt)))
        order = order[: len(order) // self.world * self.world][self.rank::self.world]
        order = order.to(self.device)
        xt, yt = xt[order].unsqueeze(1), None if yt is None else yt[order]
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        self.model.train()
        for xb, yb in _batches(xt, yt, max(1, batch_size // self.world)):
            logs = self.step(*self.nets, self.optimizer, xb, yb)
            sums += torch.stack([torch.as_tensor(logs[k], dtype=torch.float64, device=self.device).detach()
                                 for k in TERMS]) * len(xb)
            if on_batch is not None:
                on_batch(len(xb) * self.world)
        if self.world > 1:
            torch.distributed.all_reduce(sums)
        return dict(zip(TERMS, (sums / (len(xt) * self.world)).tolist()))

    @torch.no_grad()
    def evaluate(self, x, y, batch_size=500) -> dict:
        """Per-image means of the trusted terms on held-out data, one z per image, the same noise every call."""
        xt, yt = self._tensors(x, y)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        with self._fixed_noise():
            for xb, yb in _batches(xt.unsqueeze(1), yt, batch_size):
                sums += torch.stack(self.model(xb, yb)) * len(xb)
        return dict(zip(TERMS, (sums / len(xt)).tolist()))

    @torch.no_grad()
    def encode(self, x, y, batch_size=1000):
        xt, yt = self._tensors(x, y)
        with self._fixed_noise():
            out = [self.model.encoder(xb, yb)[:2]
                   for xb, yb in _batches(xt.unsqueeze(1), yt, batch_size)]
        return tuple(torch.cat(parts).cpu().numpy() for parts in zip(*out))

    @torch.no_grad()
    def decode(self, z, y, batch_size=1000) -> np.ndarray:
        zt, yt = self._tensors(z, y)
        out = [self.model.decoder(zb, yb) for zb, yb in _batches(zt, yt, batch_size)]
        return torch.cat(out)[:, 0].cpu().numpy()

    def param_counts(self) -> dict:
        return {part: sum(p.numel() for p in getattr(self.model, part).parameters())
                for part in ("encoder", "decoder")}

    def weight_tensors(self, net: str) -> list:
        return weight_tensors(getattr(self.model, net))

    def save(self, directory) -> None:
        """Model, optimizer and RNG states into torch_vae.pt: `load` then continues exactly.

        Only the main rank writes; under DDP the other ranks' noise restarts from their seeds.
        """
        if not self.is_main:
            return
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        rng = {"generator": self.generator.get_state(), "global": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "rng": rng}, directory / "torch_vae.pt")

    def load(self, directory) -> None:
        state = torch.load(Path(directory) / "torch_vae.pt", map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.is_main:
            self.generator.set_state(state["rng"]["generator"])
            torch.set_rng_state(state["rng"]["global"])
            if self.device.type == "cuda" and "cuda" in state["rng"]:
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
