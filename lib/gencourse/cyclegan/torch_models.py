"""CycleGAN's networks and losses in PyTorch (NCHW).

The layouts are those of cyclegan/common.py: the ResNet generator and the 70x70
PatchGAN of the reference code (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py: ResnetGenerator, NLayerDiscriminator), and the U-Net of the
report's TensorFlow code (tensorflow_examples' pix2pix.unet_generator with
norm_type="instancenorm"). Instance norm is nn.InstanceNorm2d without affine
parameters by default, the reference layout. Every network comes initialized
as the reference's init_net("normal"): weights N(0, 0.02), biases 0
(`init_weights`; seed with torch.manual_seed or pass a generator to re-draw).
`tf_models` builds the same networks in Keras; the tests copy weights across
and compare the outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import LAMBDA_CYCLE, LAMBDA_IDENTITY, unet_filters
from .torch_layers import init_weights


def norm_layer(channels: int, norm: str = "instance", affine: bool = False) -> nn.Module:
    """Instance norm (biased variance, eps 1e-5, no running statistics) or nothing ("none")."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=affine)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'instance' or 'none', got {norm!r}")


class ResnetBlock(nn.Module):
    """x + [reflect pad 1, conv 3x3, norm, ReLU, reflect pad 1, conv 3x3, norm](x) (R256)."""

    def __init__(self, channels: int, norm: str = "instance", affine: bool = False):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
            norm_layer(channels, norm, affine), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
            norm_layer(channels, norm, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """c7s1-64, d128, d256, n_blocks x R256, u128, u64, c7s1-out, tanh (paper appendix 7.2).

    Reflection padding around the 7x7 convolutions and inside the blocks avoids
    border artifacts; the stride-2 convolutions pad 1 with zeros, and the
    transposed ones (padding 1, output_padding 1) exactly double the size.
    Inputs need sides divisible by 4.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_blocks: int = 9, norm: str = "instance", affine: bool = False):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7),
                  norm_layer(ngf, norm, affine), nn.ReLU(inplace=True)]
        ch = ngf
        for _ in range(2):     # d128, d256
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1),
                       norm_layer(2 * ch, norm, affine), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm, affine) for _ in range(n_blocks)]
        for _ in range(2):     # u128, u64
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       norm_layer(ch // 2, norm, affine), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetGenerator(nn.Module):
    """The TensorFlow tutorial's U-Net with instance norm (pix2pix's generator, Isola et al.).

    Down k: conv 4x4 stride 2 (no bias), norm (not on the first), LeakyReLU
    (`leaky_slope`, the tutorial's Keras default 0.3). Up k: transposed conv 4x4
    stride 2 (no bias), norm, dropout 0.5 (innermost ups), ReLU, then the mirror
    down's output concatenated. Last: transposed conv to `out_channels` with bias,
    tanh. The innermost down is 1x1 at 256², where instance norm returns zero (its
    offset) and the bottleneck would carry nothing: the tutorial normalizes it, the
    reference code does not (junyanz/pytorch-CycleGAN-and-pix2pix issue #60), and
    neither does this default; `innermost_norm=True` gives the tutorial's layer
    (torch refuses to instance-normalize 1x1 maps in training mode).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_downs: int = 8, norm: str = "instance", affine: bool = False,
                 dropout: float = 0.5, leaky_slope: float = 0.3, innermost_norm: bool = False):
        super().__init__()
        downs, ups = unet_filters(ngf, n_downs)
        self.downs = nn.ModuleList()
        ch = in_channels
        for i, f in enumerate(downs):
            self.downs.append(nn.Sequential(
                nn.Conv2d(ch, f, 4, stride=2, padding=1, bias=False),
                norm_layer(f, norm, affine) if 0 < i < n_downs - 1 or (i and innermost_norm)
                else nn.Identity(),
                nn.LeakyReLU(leaky_slope)))
            ch = f
        self.ups = nn.ModuleList()
        n_dropout = max(0, n_downs - 5)
        for i, f in enumerate(ups):
            self.ups.append(nn.Sequential(
                nn.ConvTranspose2d(ch, f, 4, stride=2, padding=1, bias=False),
                norm_layer(f, norm, affine),
                nn.Dropout(dropout) if i < n_dropout and dropout else nn.Identity(),
                nn.ReLU()))
            ch = 2 * f     # after concatenating the skip
        self.last = nn.ConvTranspose2d(ch, out_channels, 4, stride=2, padding=1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = torch.cat([up(x), skip], dim=1)
        return torch.tanh(self.last(x))


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN: C64-C128-C256-C512, then a conv to one logit per patch.

    4x4 kernels with zero padding 1, strides 2, 2, 2, 1, 1; LeakyReLU 0.2; no norm
    on C64. A 256² image gives a 30x30 map of logits (no sigmoid: the loss adds
    it, or LSGAN uses them as scores), each unit seeing a 70x70 patch.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance", affine: bool = False, leaky_slope: float = 0.2):
        super().__init__()
        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(leaky_slope)]
        ch = ndf
        for i in range(1, n_layers + 1):
            f = ndf * min(2 ** i, 8)
            layers += [nn.Conv2d(ch, f, 4, stride=2 if i < n_layers else 1, padding=1),
                       norm_layer(f, norm, affine), nn.LeakyReLU(leaky_slope)]
            ch = f
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Losses: the formulas of gencourse.reference.cyclegan, on tensors.

def _adversarial(d_out: torch.Tensor, target: float, gan_mode: str) -> torch.Tensor:
    t = torch.full_like(d_out, target)
    if gan_mode == "lsgan":
        return F.mse_loss(d_out, t)
    if gan_mode == "bce":
        return F.binary_cross_entropy_with_logits(d_out, t)
    raise ValueError(f"gan_mode must be 'lsgan' or 'bce', got {gan_mode!r}")


def generator_adversarial_loss(d_fake: torch.Tensor, gan_mode: str = "lsgan") -> torch.Tensor:
    """Make D call the fakes real: mean (D(G(x)) - 1)^2, or BCE(1, D(G(x))) on logits."""
    return _adversarial(d_fake, 1.0, gan_mode)


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor,
                       gan_mode: str = "lsgan") -> torch.Tensor:
    """1/2 [loss(D(y), 1) + loss(D(G(x)), 0)]; pass G(x) detached to train D alone."""
    return 0.5 * (_adversarial(d_real, 1.0, gan_mode) + _adversarial(d_fake, 0.0, gan_mode))


def cycle_consistency_loss(real: torch.Tensor, reconstructed: torch.Tensor,
                           lambda_cycle: float = LAMBDA_CYCLE) -> torch.Tensor:
    """lambda * mean |F(G(x)) - x|, one direction."""
    return lambda_cycle * (real - reconstructed).abs().mean()


def identity_loss(real: torch.Tensor, same: torch.Tensor, lambda_identity: float = LAMBDA_IDENTITY) -> torch.Tensor:
    """lambda_identity * mean |G(y) - y| (its own weight; the paper's 0.5 * lambda = 5)."""
    return lambda_identity * (real - same).abs().mean()


def semantic_consistency_loss(logits: torch.Tensor, labels: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """weight * mean cross-entropy of a frozen classifier's logits [N, 10] on translated images
    against the labels of the images they came from (CyCADA's L_sem, Hoffman et al. 2018)."""
    return weight * F.cross_entropy(logits, labels.long())
