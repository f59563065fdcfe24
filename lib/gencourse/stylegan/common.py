"""The framework-neutral part of StyleGAN: config, layer arithmetic, mixing and truncation.

Sources (facts only): Karras, Laine & Aila, "A Style-Based Generator
Architecture for Generative Adversarial Networks", CVPR 2019, and its official
code github.com/NVlabs/stylegan (training/networks_stylegan.py: G_style,
G_mapping, G_synthesis, D_basic; training/loss.py).

Layout, in the paper's names (figure 1b):

- MappingNetwork: pixel norm of z, then `mapping_layers` fully connected layers
  with leaky ReLU 0.2, learning-rate multiplier 0.01.
- SynthesisNetwork: a ConstantInput 4x4 (ones), then per resolution two
  layers, each a convolution (3x3; the first of a block after a nearest x2
  upsampling; none on the constant) followed by the official "layer epilogue":
  NoiseInjection, bias, leaky ReLU, AdaptiveInstanceNorm with its own style
  A(w). So 2 log2(resolution) - 2 AdaIN layers (8 at 32², 10 at 64², 18 at
  1024²), each taking its own w: styles are [batch, num_layers, w_dim].
  A 1x1 ToRGB at the last resolution, then tanh (`output`; the official code's ToRGB
  is linear, `output="linear"`). Digits are nearly binary: 85 % of the pixels of a
  padded 32x32 digit sit at -1 exactly, which a linear output only ever approximates, and the
  discriminator reads the grey left over. Measured on the CPU network (torch, 1,000
  steps against the same discriminator; docs/results.md): linear output Fréchet
  distance 60-110 with gray, collapsing samples; tanh, everything else equal, far lower.
  Left out for a small CPU model: progressive growing and the [1, 2, 1] blur
  after each upsampling (the paper's "bilinear" resampling).
- Discriminator (the ProGAN discriminator the paper keeps): FromRGB 1x1, per
  resolution conv 3x3 then conv 3x3 and 2x2 average pooling, down to 4x4; there
  the minibatch stddev (optional), a conv 3x3, a dense and a dense to one logit.

Every weight uses the equalized learning rate (Karras et al. 2018): stored as
N(0, 1/lr_mul), multiplied at run time by lr_mul * gain / sqrt(fan_in), the He
constant with gain sqrt(2) before a leaky ReLU and gain 1 for the style affine
maps, ToRGB and the last dense (the official get_weight). Biases start at 0 and
are multiplied by lr_mul.

Mixing and truncation act on the [batch, layers, w_dim] styles through the
numpy masks and coefficients below, shared by both tracks; the arithmetic
itself is the oracle's (gencourse.reference.stylegan).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .augment import parse_policy
from ..reference.stylegan import (  # noqa: F401  (re-exported: one definition for all)
    EPS_ADAIN,
    EPS_PIXEL_NORM,
    R1_GAMMA,
    W_AVG_DECAY,
    crossover_mask,
    mix_styles,
    stddev_group,
    truncate,
    truncation_coefficients,
)

LEAKY_SLOPE = 0.2
MAPPING_LR_MUL = 0.01
MIXING_PROB = 0.9
TRUNCATION_PSI = 0.7
TRUNCATION_CUTOFF = 8     # official G_style default: layers 0-7, i.e. 4² to 32²
MBSTD_GROUP = 4
EMA_KIMG = 10.0           # official training_loop.py G_smoothing_kimg: Gs's half-life in 1,000s of images
R1_INTERVAL = 16          # StyleGAN2 (Karras et al. 2020, section 3.1): lazy R1 every 16 minibatches
GAIN_LRELU = math.sqrt(2.0)
OUTPUTS = ("tanh", "linear")
OUTPUT = "tanh"           # the synthesis network's last activation; "linear" is the official code's

# Parameter counts of the default networks (1 channel, z_dim = w_dim = 128,
# fmap_base 2048, fmap_max 128, minibatch stddev on), the same in both tracks;
# w_avg is a buffer, not a parameter.
MAPPING_PARAMS = 132_096                             # 8 x (128 x 128 + 128)
GENERATOR_PARAMS = {32: 1_215_041, 64: 1_259_297}    # mapping included
DISCRIMINATOR_PARAMS = {32: 1_112_385, 64: 1_140_065}


@dataclass
class StyleGANConfig:
    """What defines a StyleGAN; defaults fit 32x32 MNIST on a CPU.

    z_dim = w_dim = 128 rather than the paper's 512: the eight 512-wide mapping
    layers alone would hold 2.1M weights, more than the whole 32x32 synthesis
    network needs for digits, and the style affine maps grow with w_dim too.
    Feature maps per resolution: min(fmap_base // res, fmap_max), 128 at 4²-16²,
    64 at 32², 32 at 64² (the paper's 1024² network: fmap_base 16384, fmap_max 512).
    The training values are the official FFHQ ones: Adam lr 1e-3, betas (0, 0.99),
    non-saturating logistic loss with R1 gamma 10, mixing 0.9, w_avg decay 0.995, and
    samples drawn from Gs, a moving average of G's weights with a half-life of 10,000
    images (`ema_kimg`).

    Options of later papers, off by default (the 2019 paper's setup):
    `r1_interval` k > 1 is StyleGAN2's lazy regularization (R1 on one minibatch in k,
    weighted k gamma, added to that step's D loss); `augment` a DiffAugment policy
    ("translation,cutout", see augment.py); `ema_rampup` r > 0 StyleGAN2-ADA's Gs ramp-up
    (half-life min(ema_kimg, r x images seen)); `d_fmap_base` / `d_fmap_max` widen D alone.
    """

    resolution: int = 32
    channels: int = 1              # 1 for MNIST, 3 for RGB
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 8
    mapping_lr_mul: float = MAPPING_LR_MUL
    fmap_base: int = 2048
    fmap_max: int = 128
    adain_eps: float = EPS_ADAIN
    output: str = OUTPUT               # "tanh" or "linear" (the official ToRGB)
    mbstd_group: int = MBSTD_GROUP     # 0: no minibatch stddev
    mixing_prob: float = MIXING_PROB
    w_avg_decay: float = W_AVG_DECAY
    ema_kimg: float = EMA_KIMG         # 0: sample from G itself
    truncation_psi: float = TRUNCATION_PSI
    truncation_cutoff: int | None = TRUNCATION_CUTOFF
    r1_gamma: float = R1_GAMMA
    r1_interval: int = 1               # lazy R1: one step in r1_interval, weighted by it
    augment: str = ""                  # DiffAugment policy, "" for none
    ema_rampup: float = 0.0            # 0: Gs's half-life is ema_kimg throughout
    d_fmap_base: int | None = None     # None: D as wide as G
    d_fmap_max: int | None = None
    learning_rate: float = 1e-3
    d_learning_rate: float | None = None   # None: learning_rate (TTUR: a rate of D's own)
    beta_1: float = 0.0
    beta_2: float = 0.99
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self):
        log2 = int(round(math.log2(self.resolution))) if self.resolution > 0 else 0
        if self.resolution < 4 or 2**log2 != self.resolution:
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        if self.r1_interval < 1:
            raise ValueError(f"r1_interval must be >= 1, got {self.r1_interval}")
        parse_policy(self.augment)
        check_output(self.output)

    @property
    def num_layers(self) -> int:
        return num_layers(self.resolution)

    def fmaps(self, res: int) -> int:
        return feature_maps(res, self.fmap_base, self.fmap_max)

    def to_dict(self) -> dict:
        return asdict(self)

    def applies_r1(self, step: int) -> bool:
        """Lazy R1 on steps 1, 1 + k, 1 + 2k, ... (stylegan2-ada-pytorch: batch_idx % k == 0)."""
        return (step - 1) % self.r1_interval == 0


def ema_beta(batch_size: int, ema_kimg: float = EMA_KIMG, rampup: float = 0.0,
             images_seen: int | None = None) -> float:
    """Gs <- beta Gs + (1 - beta) G after each step: a half-life of `ema_kimg` thousand images,
    beta = 0.5 ** (batch / (1000 ema_kimg)) (official training_loop.py Gs_beta); 0 when off.
    With `rampup` r > 0 the half-life is min(1000 ema_kimg, r x images_seen) images
    (stylegan2-ada-pytorch training_loop.py ema_rampup), so early Gs does not lag far behind G."""
    if ema_kimg <= 0:
        return 0.0
    half_life = 1000.0 * ema_kimg
    if rampup > 0 and images_seen is not None:
        half_life = min(half_life, rampup * images_seen)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


def check_output(output: str) -> str:
    """The synthesis network's output activation, checked: one of OUTPUTS."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    return output


def num_layers(resolution: int) -> int:
    """AdaIN layers of a synthesis network: two per resolution from 4² on (2 log2 res - 2)."""
    return 2 * int(round(math.log2(resolution))) - 2


def resolutions(resolution: int) -> list[int]:
    """4, 8, ..., resolution."""
    return [2**k for k in range(2, int(round(math.log2(resolution))) + 1)]


def feature_maps(res: int, fmap_base: int = 2048, fmap_max: int = 128) -> int:
    """Channels at a resolution: min(fmap_base // res, fmap_max), at least 1."""
    return max(1, min(fmap_base // res, fmap_max))


def layer_resolution(layer: int) -> int:
    """Side of the feature maps that AdaIN layer `layer` styles (0, 1: 4; 2, 3: 8; ...)."""
    return 2 ** (layer // 2 + 2)


def sample_crossover(rng: np.random.Generator, n_layers: int, prob: float = MIXING_PROB) -> int:
    """The crossover layer of one minibatch (official G_style).

    With probability `prob` a layer drawn uniformly from 1 ... n_layers - 1 (both
    latents reach the image), otherwise n_layers (no mixing: every layer takes w1).
    """
    if n_layers > 1 and rng.random() < prob:
        return int(rng.integers(1, n_layers))
    return n_layers


def noise_shapes(resolution: int, batch: int, channels_last: bool = True) -> list[tuple]:
    """Shapes of the per-layer noise images: [batch, res, res, 1] (or [batch, 1, res, res])."""
    shapes = []
    for layer in range(num_layers(resolution)):
        r = layer_resolution(layer)
        shapes.append((batch, r, r, 1) if channels_last else (batch, 1, r, r))
    return shapes


def sample_noise(rng: np.random.Generator, resolution: int, batch: int,
                 channels_last: bool = True) -> list[np.ndarray]:
    """One N(0, 1) noise image per AdaIN layer, float32, for feeding both tracks the same noise."""
    return [rng.standard_normal(s).astype(np.float32)
            for s in noise_shapes(resolution, batch, channels_last)]


def generator_args(c: "StyleGANConfig") -> dict:
    """The Generator's constructor arguments from a config (the same in both tracks)."""
    return dict(resolution=c.resolution, channels=c.channels, z_dim=c.z_dim, w_dim=c.w_dim,
                mapping_layers=c.mapping_layers, mapping_lr_mul=c.mapping_lr_mul, fmap_base=c.fmap_base,
                fmap_max=c.fmap_max, adain_eps=c.adain_eps, w_avg_decay=c.w_avg_decay,
                output=c.output)


def discriminator_args(c: "StyleGANConfig") -> dict:
    """The Discriminator's constructor arguments from a config (the same in both tracks)."""
    return dict(resolution=c.resolution, channels=c.channels, fmap_base=c.d_fmap_base or c.fmap_base,
                fmap_max=c.d_fmap_max or c.fmap_max, mbstd_group=c.mbstd_group)
