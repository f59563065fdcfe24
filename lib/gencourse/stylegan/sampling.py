"""Framework-neutral generation and measurement on a trained StyleGAN (either track).

A trainer (torch_track.TorchStyleGAN or tf_track.TFStyleGAN) exposes
`mapping(z) -> w`, `synthesize(styles, noise) -> images`, `w_avg` and `config`;
everything here works on those numpy arrays, so both tracks share the figures,
the Fréchet scores, the noise measure and the editing directions.
"""

from __future__ import annotations

import numpy as np

from ..metrics.frechet import feature_statistics, gaussian_frechet_distance
from . import common

PAD = 2     # MNIST 28x28 zero-padded to 32x32 (the resolution must be a power of two)


def make_trainer(track: str, config: common.StyleGANConfig, device: str = "auto"):
    """The training loop of `track` ("tf" or "torch"), imported only when asked for."""
    if track == "torch":
        from .torch_track import TorchStyleGAN

        return TorchStyleGAN(config, device)
    if track == "tf":
        from .tf_track import TFStyleGAN

        return TFStyleGAN(config, device)
    raise ValueError(f"track must be 'tf' or 'torch', got {track!r}")


def to_model_images(x_uint8: np.ndarray, resolution: int = 32) -> np.ndarray:
    """MNIST uint8 [n, 28, 28] -> float32 [n, res, res] in [-1, 1], zero (-1) padded, centred."""
    x = np.asarray(x_uint8, np.float32) / 127.5 - 1.0
    pad = (resolution - x.shape[1]) // 2
    if pad < 0:
        raise ValueError(f"resolution {resolution} is smaller than the {x.shape[1]}-pixel digits")
    return np.pad(x, ((0, 0), (pad, resolution - x.shape[1] - pad),
                      (pad, resolution - x.shape[2] - pad)), constant_values=-1.0)


def to_digits(images: np.ndarray) -> np.ndarray:
    """Generated [n, 32, 32] in [-1, 1] -> [n, 28, 28] in [0, 1] (the classifier's input)."""
    x = np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    crop = (x.shape[1] - 28) // 2
    return x[:, crop:crop + 28, crop:crop + 28]


def latents(rng: np.random.Generator, n: int, z_dim: int) -> np.ndarray:
    return rng.standard_normal((n, z_dim)).astype(np.float32)


def noise(trainer, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    return common.sample_noise(rng, trainer.config.resolution, n)


def broadcast(w: np.ndarray, n_layers: int) -> np.ndarray:
    """w [n, w_dim] -> styles [n, layers, w_dim] (every layer the same w)."""
    return np.repeat(np.asarray(w, np.float32)[:, None, :], n_layers, axis=1)


def truncated(trainer, ws: np.ndarray, psi: float, cutoff: int | None = None) -> np.ndarray:
    """w_avg + psi (w - w_avg) on the layers below `cutoff` (the truncation trick)."""
    return common.truncate(ws, trainer.w_avg, psi, cutoff).astype(np.float32)


def generate(trainer, rng: np.random.Generator, n: int, psi: float = 1.0,
             n_latents: int = 1) -> np.ndarray:
    """n images, each mixing `n_latents` latents at random crossover layers (Table 2's
    "number of latents during testing"; 1: no mixing), optionally truncated."""
    c = trainer.config
    layers = common.num_layers(c.resolution)
    ws = np.stack([trainer.mapping(latents(rng, n, c.z_dim)) for _ in range(n_latents)])
    styles = ws[mixing_sources(rng, n, layers, n_latents), np.arange(n)[:, None]]
    if psi != 1.0:
        styles = truncated(trainer, styles, psi)
    return trainer.synthesize(styles, noise(trainer, rng, n))


def mixing_sources(rng: np.random.Generator, n: int, n_layers: int, k: int) -> np.ndarray:
    """[n, layers] index of the latent each layer takes: k - 1 distinct crossover layers
    drawn from 1 .. layers - 1 per example, latent j from the j-th crossover on."""
    if not 1 <= k <= n_layers:
        raise ValueError(f"can mix 1 .. {n_layers} latents, got {k}")
    cuts = np.sort(np.stack([rng.choice(np.arange(1, n_layers), k - 1, replace=False)
                             for _ in range(n)]), axis=1)
    return (np.arange(n_layers)[None, :, None] >= cuts[:, None, :]).sum(axis=2)


class FrechetScorer:
    """Fréchet distance to a reference set in the DigitClassifier's feature space.

    The reference statistics are computed once; `score` takes generated images in
    the model's scale ([n, 32, 32], [-1, 1]) or digits [n, 28, 28] in [0, 1].
    """

    def __init__(self, classifier, reference_digits: np.ndarray):
        self.classifier = classifier
        self.reference = feature_statistics(classifier.features(reference_digits))

    def score(self, images: np.ndarray) -> float:
        digits = to_digits(images) if images.shape[1] != 28 else images
        return gaussian_frechet_distance(*feature_statistics(self.classifier.features(digits)),
                                         *self.reference)


def high_frequency_fraction(images: np.ndarray, cutoff: float = 0.25) -> float:
    """Share of the power spectrum of [n, H, W] images above `cutoff` cycles per pixel
    (radially; 0.5 is Nyquist). Mean-free images: pass differences, not raw images."""
    power = np.abs(np.fft.fft2(np.asarray(images, np.float64))) ** 2
    fy = np.fft.fftfreq(images.shape[1])[:, None]
    fx = np.fft.fftfreq(images.shape[2])[None, :]
    high = np.hypot(fy, fx) > cutoff
    total = power.sum()
    return float(power[:, high].sum() / total) if total > 0 else 0.0


def noise_effect(images: np.ndarray) -> dict:
    """What noise changes versus what w changes, from images [n_w, n_noise, H, W]
    (row i: one w, column j: noise draw j, the same draws for every w).

    noise_std: mean over pixels and w of the std across noise draws;
    style_std: mean over pixels and draws of the std across w;
    ratio = noise_std / style_std (paper, section 3.2: noise changes only stochastic
    detail), and the high-frequency share of each kind of difference.
    """
    x = np.asarray(images, np.float64)
    noise_diff = x - x.mean(axis=1, keepdims=True)
    style_diff = x - x.mean(axis=0, keepdims=True)
    noise_std, style_std = float(x.std(axis=1).mean()), float(x.std(axis=0).mean())
    flat = lambda d: d.reshape(-1, *x.shape[2:])  # noqa: E731
    return {"noise_std": noise_std, "style_std": style_std,
            "ratio": noise_std / style_std if style_std > 0 else float("inf"),
            "noise_high_freq": high_frequency_fraction(flat(noise_diff)),
            "style_high_freq": high_frequency_fraction(flat(style_diff))}


def noise_images(trainer, rng: np.random.Generator, n_w: int = 6, n_noise: int = 6) -> np.ndarray:
    """[n_w, n_noise, H, W]: each of n_w styles rendered with the same n_noise noise draws."""
    c = trainer.config
    ws = broadcast(trainer.mapping(latents(rng, n_w, c.z_dim)), common.num_layers(c.resolution))
    out = []
    for _ in range(n_noise):
        draw = [np.repeat(layer, n_w, axis=0) for layer in noise(trainer, rng, 1)]
        out.append(trainer.synthesize(ws, draw))
    return np.stack(out, axis=1)


# Style ranges of figure 3 at 32x32 (8 layers): coarse 4²-8², middle 16², fine 32².
STYLE_RANGES = {"coarse": (0, 4), "middle": (4, 6), "fine": (6, 8)}


def style_mixing_table(trainer, rng: np.random.Generator, layers: tuple[int, int],
                       n_a: int = 5, n_b: int = 5) -> np.ndarray:
    """Figure 3's grid as [n_a + 1, n_b + 1, H, W]: row 0 the B sources, column 0 the A
    sources (corner blank), cell (i, j) A_i with B_j's styles on layers[0] .. layers[1] - 1."""
    c = trainer.config
    n_layers = common.num_layers(c.resolution)
    wa = broadcast(trainer.mapping(latents(rng, n_a, c.z_dim)), n_layers)
    wb = broadcast(trainer.mapping(latents(rng, n_b, c.z_dim)), n_layers)
    fixed = [np.repeat(layer, n_a * n_b, axis=0)
             for layer in noise(trainer, rng, 1)]
    mixed = np.repeat(wa, n_b, axis=0)
    mixed[:, layers[0]:layers[1]] = np.tile(wb, (n_a, 1, 1))[:, layers[0]:layers[1]]
    size = c.resolution
    table = np.full((n_a + 1, n_b + 1, size, size), -1.0, np.float32)
    table[0, 1:] = trainer.synthesize(wb, [f[:n_b] for f in fixed])
    table[1:, 0] = trainer.synthesize(wa, [f[:n_a] for f in fixed])
    table[1:, 1:] = trainer.synthesize(mixed, [f[:n_a * n_b] for f in fixed]).reshape(
        n_a, n_b, size, size)
    return table


TRUNCATION_PSIS = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)     # figure 8's columns


def truncation_table(trainer, rng: np.random.Generator, n: int = 6,
                     psis=TRUNCATION_PSIS) -> np.ndarray:
    """[n, len(psis), H, W]: n latents (rows) truncated with each psi (columns), same noise."""
    c = trainer.config
    ws = broadcast(trainer.mapping(latents(rng, n, c.z_dim)), common.num_layers(c.resolution))
    fixed = noise(trainer, rng, n)
    return np.stack([trainer.synthesize(truncated(trainer, ws, psi), fixed) for psi in psis],
                    axis=1)
