"""The PyTorch training loop of the small StyleGAN: one D step and one G step per batch.

The loop is the official one (github.com/NVlabs/stylegan, training/training_loop.py
and training/loss.py, facts only): Adam with beta1 = 0, beta2 = 0.99, epsilon 1e-8
for both networks; D on the logistic loss plus R1 on the reals
(D_logistic_simplegp), G on the non-saturating loss (G_logistic_nonsaturating);
every generator forward draws fresh latents, mixes them with probability
`mixing_prob` and moves w_avg, as G_style does while training. Samples come from
`generator_ema` (the official Gs): after every step its weights move toward G's
(common.ema_beta) and it takes G's w_avg. Averaging damps the mode hopping of the
raw generator, which on digits swings from class to class between snapshots. Latents,
crossovers and noise come from the numpy generator passed in, so the Keras track
(tf_track) gets the same draws and a resumed run continues exactly.
Images are [n, res, res] arrays in the generator's scale ([-1, 1] for data).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from ..devices import torch_setup
from . import augment, common, torch_models as tm


def diff_augment(x: torch.Tensor, index: np.ndarray, mask: np.ndarray) -> torch.Tensor:
    """DiffAugment of NCHW images by a drawn (index, mask) (augment.draw): a gather over
    the flattened pixels times the mask, differentiable in x."""
    index, mask = (torch.from_numpy(a).to(x.device)[:, None] for a in (index, mask))
    flat = x.flatten(2)
    return (flat.gather(2, index.expand(-1, flat.shape[1], -1)) * mask).view_as(x)


class TorchSampler:
    """What sampling.py and editing.py use of a trained model: `config`, `mapping`,
    `synthesize` and `w_avg` of `generator_ema` (Gs), as numpy arrays. The trainer is one;
    gencourse.stylegan.pretrained.load gives one without a discriminator or optimizers."""

    def __init__(self, config: common.StyleGANConfig, generator: tm.Generator,
                 device: torch.device | str = "cpu"):
        self.config, self.device = config, torch.device(device)
        self.generator_ema = generator.to(self.device).requires_grad_(False).eval()

    def _noise(self, noise) -> list[torch.Tensor]:
        """Neutral [n, r, r, 1] noise images -> [n, 1, r, r] tensors (one channel: a reshape)."""
        return [torch.from_numpy(n).reshape(n.shape[0], 1, *n.shape[1:3]).to(self.device)
                for n in noise]

    @torch.no_grad()
    def mapping(self, z: np.ndarray) -> np.ndarray:
        """w = f(z) for [n, z_dim] latents (the averaged generator, as every sampling call)."""
        z = torch.from_numpy(np.asarray(z, np.float32)).to(self.device)
        return self.generator_ema.mapping(z).cpu().numpy()

    @torch.no_grad()
    def synthesize(self, ws: np.ndarray, noise: list[np.ndarray], chunk: int = 256) -> np.ndarray:
        """Images [n, res, res] from styles [n, layers, w_dim] and noise [n, r, r, 1] per layer."""
        out = []
        for i in range(0, len(ws), chunk):
            w = torch.from_numpy(np.asarray(ws[i:i + chunk], np.float32)).to(self.device)
            img = self.generator_ema.synthesis(w, self._noise([n[i:i + chunk] for n in noise]))
            out.append(img[:, 0].cpu().numpy())
        return np.concatenate(out)

    @property
    def w_avg(self) -> np.ndarray:
        return self.generator_ema.w_avg.cpu().numpy()


class TorchStyleGAN(TorchSampler):
    """Generator, discriminator and their Adam optimizers on one device."""

    def __init__(self, config: common.StyleGANConfig, device: str = "auto",
                 channels_last: bool | None = None):
        self.config = config
        self.device, rank, _ = torch_setup(device)
        self.is_main = rank == 0
        torch.manual_seed(config.seed)
        self.generator = tm.build_generator(config).to(self.device)
        self.discriminator = tm.build_discriminator(config).to(self.device)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        if self.device.type == "cpu" if channels_last is None else channels_last:
            # channels-last activations (the default on a CPU): oneDNN's convolutions then skip
            # the reorders to and from its blocked layout (measured: benchmarks/stylegan.py)
            for net in (self.generator, self.discriminator, self.generator_ema):
                net.to(memory_format=torch.channels_last)
        adam = dict(betas=(config.beta_1, config.beta_2), eps=1e-8)
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=config.learning_rate, **adam)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(),
                                      lr=config.d_learning_rate or config.learning_rate, **adam)

    def _augment(self, x: torch.Tensor, aug) -> torch.Tensor:
        return x if aug is None else diff_augment(x, *aug)

    def _draw_augment(self, rng: np.random.Generator, b: int):
        c = self.config
        return augment.draw(rng, b, c.resolution, c.augment) if c.augment else None

    def train_step(self, reals: np.ndarray, rng: np.random.Generator, step: int = 1) -> dict:
        """One D step and one G step on `reals` [b, res, res]; `step` (from 1) decides
        lazy R1 and the Gs ramp-up. Draws from rng, in this order: D's z1, z2, crossover,
        noise, the reals' and the fakes' augmentations; then G's, with its fakes'."""
        g, d, c = self.generator, self.discriminator, self.config
        b = len(reals)
        x = torch.from_numpy(np.asarray(reals, np.float32)).reshape(b, 1, *reals.shape[1:])
        x = x.to(self.device)
        with torch.no_grad():
            ws = tm.sample_styles_for_training(g, b, rng, c.mixing_prob, self.device)
            fake = g.synthesis(ws, self._noise(common.sample_noise(rng, c.resolution, b)))
        aug_real, aug_fake = self._draw_augment(rng, b), self._draw_augment(rng, b)
        if c.r1_gamma > 0 and c.applies_r1(step):     # lazy R1 (StyleGAN2, section 3.1)
            r1, d_real = tm.r1_penalty(lambda v: d(self._augment(v, aug_real)), x,
                                       c.r1_gamma * c.r1_interval, return_logits=True)
        else:
            r1, d_real = torch.zeros(()), d(self._augment(x, aug_real))
        d_loss = tm.discriminator_loss(d_real, d(self._augment(fake, aug_fake)))
        self.d_opt.zero_grad(set_to_none=True)
        (d_loss + r1).backward()
        self.d_opt.step()

        ws = tm.sample_styles_for_training(g, b, rng, c.mixing_prob, self.device)
        fake = g.synthesis(ws, self._noise(common.sample_noise(rng, c.resolution, b)))
        aug_fake = self._draw_augment(rng, b)
        d.requires_grad_(False)     # G's step needs no gradients of D's weights
        g_loss = tm.generator_loss(d(self._augment(fake, aug_fake)))
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        d.requires_grad_(True)
        self.g_opt.step()
        self._update_ema(common.ema_beta(b, c.ema_kimg, c.ema_rampup, (step - 1) * b))
        return {"g_loss": g_loss.item(), "d_loss": d_loss.item(), "r1": r1.item()}

    @torch.no_grad()
    def _update_ema(self, beta: float) -> None:
        for e, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            e.lerp_(p, 1.0 - beta)
        self.generator_ema.w_avg.copy_(self.generator.w_avg)

    def param_counts(self) -> dict:
        return {"generator": tm.count_params(self.generator),
                "discriminator": tm.count_params(self.discriminator)}

    def save(self, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        torch.save({"generator": self.generator.state_dict(),
                    "generator_ema": self.generator_ema.state_dict(),
                    "discriminator": self.discriminator.state_dict(),
                    "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict()},
                   directory / "torch_stylegan.pt")

    def load(self, directory) -> None:
        state = torch.load(Path(directory) / "torch_stylegan.pt", map_location=self.device,
                           weights_only=True)
        self.generator.load_state_dict(state["generator"])
        self.generator_ema.load_state_dict(state["generator_ema"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
