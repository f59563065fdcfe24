"""The PyTorch track of the VAE and conditional VAE, with a plain training loop.

The model is the report's Keras model (the Keras VAE example, F. Chollet,
keras.io/examples/generative/vae, after Kingma & Welling, "Auto-Encoding
Variational Bayes", 2014); vae/common.py spells it out. It matches Keras, not
only in shapes:

- Keras' "same" padding with stride 2 pads the bottom/right only (28 -> 14 ->
  7), PyTorch's `padding=1` both sides, so the same windows would sit one
  pixel apart; likewise Keras' stride-2 transposed convolutions crop their
  last row and column, PyTorch's (`padding=1, output_padding=1`) their first.
  Turned by 180 degrees, Keras' alignment is exactly PyTorch's, so the conv
  stacks run on the flipped image (`flip(-2, -1)`, a cheap copy) with
  PyTorch's native, fast padding (measured: explicit `F.pad` and cropping
  made a training step 10-15 % slower).
- Flatten and Reshape use Keras' channels-last order (h, w, c) in Keras'
  orientation: Keras weights copy in one to one, kernels transposed to
  PyTorch's layout and flipped spatially (tests/test_vae_torch.py does it).
- Glorot-uniform weights and zero biases (`init_like_keras`) and Adam's
  epsilon 1e-7, Keras' defaults: with PyTorch's own initialization the same
  model ends near neg-ELBO 190 instead of 166 (docs/design.md, "Two tracks, one number").

`TorchVAE` implements `gencourse.vae.common.Trainer`; the grader plugs a
student's `Sampling` and KL function into it (`sampling=`, `kl_fn=`).
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


def _with_label(h: torch.Tensor, y: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    """Append the one-hot digit to `h` for a conditional model (n_classes > 0)."""
    if not n_classes:
        return h
    if y is None:
        raise ValueError("a conditional model needs the digit labels y")
    return torch.cat([h, F.one_hot(y, n_classes).to(h.dtype)], dim=1)


class Encoder(nn.Module):
    """x [B, 1, 28, 28] (and digit y [B] if n_classes) -> (z_mean, z_log_var, z)."""

    def __init__(self, latent_dim: int = 2, n_classes: int = 0, sampling: nn.Module | None = None):
        super().__init__()
        self.n_classes = n_classes
        self.conv1 = nn.Conv2d(1, 32, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.dense = nn.Linear(7 * 7 * 64 + n_classes, 16)
        self.z_mean = nn.Linear(16, latent_dim)
        self.z_log_var = nn.Linear(16, latent_dim)
        self.sampling = sampling if sampling is not None else Sampling()

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        h = F.relu(self.conv1(x.flip(-2, -1)))
        h = F.relu(self.conv2(h))
        h = h.flip(-2, -1).permute(0, 2, 3, 1).flatten(1)   # Keras' Flatten of NHWC
        h = F.relu(self.dense(_with_label(h, y, self.n_classes)))
        z_mean, z_log_var = self.z_mean(h), self.z_log_var(h)
        return z_mean, z_log_var, self.sampling(z_mean, z_log_var)


class Decoder(nn.Module):
    """z [B, latent] (and digit y [B] if n_classes) -> pixel probabilities [B, 1, 28, 28]."""

    def __init__(self, latent_dim: int = 2, n_classes: int = 0):
        super().__init__()
        self.n_classes = n_classes
        self.dense = nn.Linear(latent_dim + n_classes, 7 * 7 * 64)
        self.deconv1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        self.deconv3 = nn.ConvTranspose2d(32, 1, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.dense(_with_label(z, y, self.n_classes)))
        h = h.view(-1, 7, 7, 64).permute(0, 3, 1, 2).flip(-2, -1)   # Keras' Reshape((7, 7, 64))
        h = F.relu(self.deconv1(h))
        h = F.relu(self.deconv2(h))
        return torch.sigmoid(self.deconv3(h)).flip(-2, -1)


class VAE(nn.Module):
    """Encoder + decoder; forward gives the batch means (neg-ELBO, reconstruction, KL).

    `kl_fn(z_mean, z_log_var)` returns the per-example KL; it is injectable so
    that a student's formula trains in this loop.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module,
                 kl_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = kl_divergence):
        super().__init__()
        self.encoder, self.decoder, self.kl_fn = encoder, decoder, kl_fn

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        z_mean, z_log_var, z = self.encoder(x, y)
        recon = reconstruction_loss(x, self.decoder(z, y)).mean()
        kl = self.kl_fn(z_mean, z_log_var).mean()
        return recon + kl, recon, kl


def init_like_keras(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Glorot-uniform weights and zero biases for every Linear and (transposed) convolution.

    torch's fan computation gives Keras' bound sqrt(6 / (fan_in + fan_out)) for
    all three (a transposed kernel swaps fan_in and fan_out, not their sum).
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight, generator=generator)
            nn.init.zeros_(m.bias)
    return module


def _batches(x: torch.Tensor, y: torch.Tensor | None, size: int):
    """Consecutive (x, y) batches; y stays None for an unconditional model."""
    for i in range(0, len(x), size):
        yield x[i:i + size], None if y is None else y[i:i + size]


class TorchVAE:
    """The `Trainer` of vae/common.py in PyTorch: CPU, CUDA, or DDP under torchrun.

    Seeded by `config.seed`: weights, the sampling noise (own generator per
    rank) and torch's global RNG, for injected parts that draw from it.
    Under DDP `batch_size` stays the global batch: each rank takes its
    equal share of every epoch's permutation in batches of batch_size // world.
    """

    name = "torch"
    NETS = ("encoder", "decoder")

    def __init__(self, config: VAEConfig, device: str = "auto",
                 sampling: nn.Module | None = None, kl_fn: Callable | None = None):
        self.config = config
        self.device, self.rank, self.world = torch_setup(device)
        self.is_main = self.rank == 0
        torch.manual_seed(config.seed + self.rank)
        self.generator = torch.Generator(self.device).manual_seed(config.seed + self.rank)
        n_classes = config.n_classes if config.conditional else 0
        encoder = Encoder(config.latent_dim, n_classes,
                          sampling if sampling is not None else Sampling(self.generator))
        self.model = VAE(encoder, Decoder(config.latent_dim, n_classes), kl_fn or kl_divergence)
        init_like_keras(self.model, torch.Generator().manual_seed(config.seed))
        self.model.to(self.device)
        self.trained = self.model
        if self.world > 1:
            self.trained = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
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
        for xb, yb in _batches(xt, yt, max(1, batch_size // self.world)):
            terms = self.trained(xb, yb)
            self.optimizer.zero_grad(set_to_none=True)
            terms[0].backward()
            self.optimizer.step()
            sums += torch.stack(terms).detach() * len(xb)
            if on_batch is not None:
                on_batch(len(xb) * self.world)
        if self.world > 1:
            torch.distributed.all_reduce(sums)
        return dict(zip(("loss", "recon", "kl"), (sums / (len(xt) * self.world)).tolist()))

    @torch.no_grad()
    def evaluate(self, x, y, batch_size=500) -> dict:
        """Per-image means on held-out data with one z per image, the same noise every call."""
        xt, yt = self._tensors(x, y)
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        with self._fixed_noise():
            for xb, yb in _batches(xt.unsqueeze(1), yt, batch_size):
                sums += torch.stack(self.model(xb, yb)) * len(xb)
        return dict(zip(("loss", "recon", "kl"), (sums / len(xt)).tolist()))

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
        """The parameters and buffers of `net` in state_dict order, the sampling module's left out."""
        state = getattr(self.model, net).state_dict(keep_vars=True)
        return [v for k, v in state.items() if not k.startswith("sampling.")]

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
