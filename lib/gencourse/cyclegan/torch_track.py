"""CycleGAN's training in PyTorch: two generators, two PatchGANs, alternate steps.

One iteration (the reference's optimize_parameters): G = A->B and F = B->A
translate and reconstruct both batches; the generators step on the adversarial,
cycle and identity terms with the discriminators frozen; then D_B (real B vs a
fake from the history pool of G's outputs) and D_A (real A vs F's) step on the
halved discriminator loss. Adam(2e-4, beta1 0.5), one optimizer per pair.
Images cross the track's boundary as numpy NHWC in [-1, 1].

`parts` replaces the solution's pieces by a student's (the grader's trusted
loop): "cycle_consistency_loss", "identity_loss", "generator_adversarial_loss",
"discriminator_loss" (functions of torch_models' signatures) and
"PatchDiscriminator" (called as cls(in_channels=, ndf=, n_layers=)).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..devices import torch_setup
from . import torch_models as tm
from .common import CycleGANConfig, ImagePool, generator_terms


class TorchCycleGAN:
    """The CycleGAN of `config` in PyTorch on CPU, CUDA, or DDP under torchrun."""

    def __init__(self, config: CycleGANConfig, device: str = "auto", parts: dict | None = None):
        self.config, self.parts = config, dict(parts or {})
        self.device, self.rank, self.world = torch_setup(device)
        self.is_main = self.rank == 0
        torch.manual_seed(config.seed)      # the same initial weights on every rank
        c = config.channels
        if config.generator == "resnet":
            make_g = lambda: tm.ResnetGenerator(c, c, config.ngf, config.blocks)  # noqa: E731
        else:
            n_downs = int(np.log2(config.image_size))
            make_g = lambda: tm.UnetGenerator(c, c, config.ngf, n_downs)  # noqa: E731
        make_d = self.parts.get("PatchDiscriminator", tm.PatchDiscriminator)
        self.G, self.F = make_g().to(self.device), make_g().to(self.device)
        self.D_A = make_d(in_channels=c, ndf=config.ndf, n_layers=config.d_layers).to(self.device)
        self.D_B = make_d(in_channels=c, ndf=config.ndf, n_layers=config.d_layers).to(self.device)
        self.nets = {"G": self.G, "F": self.F, "D_A": self.D_A, "D_B": self.D_B}
        self.train_nets = self.nets
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_nets = {k: nn.parallel.DistributedDataParallel(m, device_ids=ids)
                               for k, m in self.nets.items()}
        betas = (config.beta_1, 0.999)
        self.opt_g = torch.optim.Adam(itertools.chain(self.G.parameters(), self.F.parameters()),
                                      lr=config.learning_rate, betas=betas)
        self.opt_d = torch.optim.Adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()),
                                      lr=config.learning_rate, betas=betas)
        self.pool_a = ImagePool(config.pool_size, seed=config.seed * 2 + self.rank)
        self.pool_b = ImagePool(config.pool_size, seed=config.seed * 2 + 1 + self.rank)

    def _part(self, name):
        return self.parts.get(name, getattr(tm, name))

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)

    def set_lr_factor(self, factor: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = self.config.learning_rate * factor

    def train_step(self, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        """One iteration on batches a (domain A) and b (domain B), NHWC in [-1, 1]."""
        cfg, n = self.config, self.train_nets
        real_a, real_b = self._tensor(a), self._tensor(b)
        for net in n.values():
            net.train()
        fake_b = n["G"](real_a)
        rec_a = n["F"](fake_b)
        fake_a = n["F"](real_b)
        rec_b = n["G"](fake_a)
        for d in (self.D_A, self.D_B):
            d.requires_grad_(False)
        losses = generator_terms(self._part, n["D_B"](fake_b), n["D_A"](fake_a), real_a, rec_a, real_b, rec_b,
                                 gan_mode=cfg.gan_mode, lambda_cycle=cfg.lambda_cycle,
                                 lambda_identity=cfg.lambda_identity,
                                 same_a=lambda: n["F"](real_a), same_b=lambda: n["G"](real_b))
        self.opt_g.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        self.opt_g.step()
        for d in (self.D_A, self.D_B):
            d.requires_grad_(True)
        d_loss = self._part("discriminator_loss")
        old_b = self._tensor(self.pool_b.query(fake_b.detach().permute(0, 2, 3, 1).cpu().numpy()))
        old_a = self._tensor(self.pool_a.query(fake_a.detach().permute(0, 2, 3, 1).cpu().numpy()))
        losses["D_B"] = d_loss(n["D_B"](real_b), n["D_B"](old_b), cfg.gan_mode)
        losses["D_A"] = d_loss(n["D_A"](real_a), n["D_A"](old_a), cfg.gan_mode)
        self.opt_d.zero_grad(set_to_none=True)
        (losses["D_A"] + losses["D_B"]).backward()
        self.opt_d.step()
        return {k: float(v.detach()) for k, v in losses.items()}

    @torch.no_grad()
    def translate(self, x: np.ndarray, direction: str = "AB", batch: int = 64) -> np.ndarray:
        """G(x) for "AB", F(x) for "BA" (eval mode), numpy NHWC in and out."""
        net = {"AB": self.G, "BA": self.F}[direction]
        net.eval()
        out = [net(self._tensor(x[i:i + batch])).permute(0, 2, 3, 1).cpu().numpy()
               for i in range(0, len(x), batch)]
        return np.concatenate(out)

    def param_counts(self) -> dict[str, int]:
        return {k: tm.count_params(m) for k, m in self.nets.items()}

    def weight_tensors(self, net: str) -> list:
        """The parameters and buffers of network `net` ("G", "F", "D_A", "D_B") in state_dict order."""
        return list(self.nets[net].state_dict(keep_vars=True).values())

    def save(self, folder) -> None:
        """Weights, optimizers and the history pools (main rank only)."""
        if not self.is_main:
            return
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({**{k: m.state_dict() for k, m in self.nets.items()},
                    "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                    "pool_a": self.pool_a.state(), "pool_b": self.pool_b.state()},
                   folder / "cyclegan.pt")

    def load(self, folder) -> None:
        state = torch.load(Path(folder) / "cyclegan.pt", map_location=self.device, weights_only=False)
        for k, m in self.nets.items():
            m.load_state_dict(state[k])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.pool_a.load_state(state["pool_a"])
        self.pool_b.load_state(state["pool_b"])
