"""The PyTorch track of the VAE and conditional VAE: the plain training loop.

`TorchVAE` implements `gencourse.vae.common.Trainer` with the networks of
`torch_models` (Adam's epsilon 1e-7, Keras' default); the grader and the
notebooks plug a student's networks, `Sampling`, conditioning and step function
into it (`encoder=`, `decoder=`, `sampling=`, `conditioning=`, `step=`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..devices import torch_setup
from . import torch_models as tm
from .common import VAEConfig

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
        encoder = encoder if encoder is not None else tm.Encoder(
            config.latent_dim, n_classes, sampling if sampling is not None else tm.Sampling(self.generator),
            conditioning)
        decoder = decoder if decoder is not None else tm.Decoder(config.latent_dim, n_classes, conditioning)
        self.model = tm.VAE(encoder, decoder)
        tm.init_like_keras(self.model, torch.Generator().manual_seed(config.seed))
        self.model.to(self.device)
        self.nets = (self.model.encoder, self.model.decoder)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.nets = tuple(nn.parallel.DistributedDataParallel(n, device_ids=ids) for n in self.nets)
        self.step = step or tm.train_step
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
        return tm.weight_tensors(getattr(self.model, net))

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
