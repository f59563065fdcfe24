"""StyleGAN's networks and losses in PyTorch (NCHW).

The layout and the equalized learning rate are described in stylegan/common.py;
the formulas are those of gencourse.reference.stylegan. Weights are drawn
N(0, 1/lr_mul) when a module is built (seed with torch.manual_seed) and scaled
at run time. `tf_models` builds the same networks in Keras with the same
parameters in the same order; the tests copy weights across and compare.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import common
from .common import EPS_ADAIN, EPS_PIXEL_NORM, GAIN_LRELU, LEAKY_SLOPE, R1_GAMMA


# ---------------------------------------------------------------- equalized learning rate

class EqualizedLinear(nn.Module):
    """y = x (W * lr_mul * gain / sqrt(fan_in))^T + b * lr_mul, W stored N(0, 1/lr_mul).

    Storing unit-variance weights and scaling at run time gives every layer the
    same effective learning rate under Adam (Karras et al. 2018, section 4.1);
    lr_mul < 1 slows a layer down further (the mapping network's 0.01).
    """

    def __init__(self, in_features: int, out_features: int, gain: float = GAIN_LRELU,
                 lr_mul: float = 1.0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = lr_mul * gain / math.sqrt(in_features)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, bias)


class EqualizedConv2d(nn.Module):
    """A k x k convolution, stride 1, zero padding k // 2, with the equalized learning rate."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3,
                 gain: float = GAIN_LRELU, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """x / sqrt(mean(x^2 over features) + eps): unit mean square per example."""

    def __init__(self, eps: float = EPS_PIXEL_NORM):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


# ---------------------------------------------------------------- generator parts

class MappingNetwork(nn.Module):
    """f: Z -> W. Pixel norm, then `n_layers` x (dense, leaky ReLU 0.2), lr_mul 0.01 (figure 1b)."""

    def __init__(self, z_dim: int = 128, w_dim: int = 128, n_layers: int = 8,
                 lr_mul: float = common.MAPPING_LR_MUL):
        super().__init__()
        self.norm = PixelNorm()
        dims = [z_dim] + [w_dim] * n_layers
        self.layers = nn.ModuleList(EqualizedLinear(a, b, lr_mul=lr_mul)
                                    for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.norm(z)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LEAKY_SLOPE)
        return x


class ConstantInput(nn.Module):
    """The learned 4x4 constant the synthesis starts from (ones at init, as the official code),

    repeated for each example of `like` (any tensor whose first axis is the batch).
    """

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.const = nn.Parameter(torch.ones(1, channels, size, size))

    def forward(self, like: torch.Tensor) -> torch.Tensor:
        return self.const.expand(like.shape[0], -1, -1, -1)


class NoiseInjection(nn.Module):
    """x + weight * noise: one N(0, 1) image per example, broadcast over channels (section 3.2).

    The per-channel weight starts at zero, so noise has no effect until training
    (or a test) sets it. Pass `noise` [batch, 1, H, W] to fix it; None draws it.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device,
                                dtype=x.dtype)
        return x + self.weight.view(1, -1, 1, 1) * noise


class AdaptiveInstanceNorm(nn.Module):
    """AdaIN(x, w) = (1 + y_s) * instance_norm(x) + y_b, (y_s, y_b) = A(w) (equation 1).

    A is an equalized dense map w_dim -> 2 x channels (gain 1, zero bias), so at
    init the style is about (1, 0) around the identity. Instance norm: biased
    variance over H, W, per example and channel, plus `eps`.
    """

    def __init__(self, channels: int, w_dim: int, eps: float = EPS_ADAIN):
        super().__init__()
        self.style = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        self.channels, self.eps = channels, eps

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.style(w)
        scale = style[:, :self.channels, None, None]
        bias = style[:, self.channels:, None, None]
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + self.eps)
        return (1.0 + scale) * x + bias


class LayerEpilogue(nn.Module):
    """What follows every convolution of the synthesis (the official layer_epilogue):

    noise injection, bias, leaky ReLU 0.2, AdaIN with this layer's w.
    """

    def __init__(self, channels: int, w_dim: int, eps: float = EPS_ADAIN):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.noise = NoiseInjection(channels)
        self.adain = AdaptiveInstanceNorm(channels, w_dim, eps)

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        x = self.noise(x, noise) + self.bias.view(1, -1, 1, 1)
        return self.adain(F.leaky_relu(x, LEAKY_SLOPE), w)


class StyledConv(nn.Module):
    """[nearest x2 upsampling,] conv 3x3 (no bias: the epilogue adds it), LayerEpilogue."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int,
                 upsample: bool = False, eps: float = EPS_ADAIN):
        super().__init__()
        self.upsample = upsample
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False)
        self.epilogue = LayerEpilogue(out_channels, w_dim, eps)

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.epilogue(self.conv(x), w, noise)


class SynthesisNetwork(nn.Module):
    """g: styles [batch, num_layers, w_dim] (+ noise) -> images [batch, channels, res, res].

    Styles 2k and 2k + 1 act at 4 * 2^k (style 0 on the constant, 1 on the 4x4
    convolution, 2 on the upsampling one at 8x8, ...; common.layer_resolution).
    `noise`: None (drawn) or one [batch, 1, r, r] tensor per layer.
    """

    def __init__(self, resolution: int = 32, w_dim: int = 128, channels: int = 1,
                 fmap_base: int = 2048, fmap_max: int = 128, eps: float = EPS_ADAIN,
                 output: str = common.OUTPUT):
        super().__init__()
        nf = lambda r: common.feature_maps(r, fmap_base, fmap_max)  # noqa: E731
        self.resolution, self.num_layers = resolution, common.num_layers(resolution)
        self.out_activation = common.check_output(output)
        self.const_input = ConstantInput(nf(4))
        self.input_epilogue = LayerEpilogue(nf(4), w_dim, eps)
        convs = [StyledConv(nf(4), nf(4), w_dim, eps=eps)]
        for res in common.resolutions(resolution)[1:]:
            convs += [StyledConv(nf(res // 2), nf(res), w_dim, upsample=True, eps=eps),
                      StyledConv(nf(res), nf(res), w_dim, eps=eps)]
        self.convs = nn.ModuleList(convs)
        self.to_rgb = EqualizedConv2d(nf(resolution), channels, 1, gain=1.0)

    def forward(self, ws: torch.Tensor, noise=None) -> torch.Tensor:
        if ws.shape[1] != self.num_layers:
            raise ValueError(f"expected styles [batch, {self.num_layers}, w_dim], "
                             f"got {tuple(ws.shape)}")
        noise = [None] * self.num_layers if noise is None else list(noise)
        x = self.input_epilogue(self.const_input(ws), ws[:, 0], noise[0])
        for i, conv in enumerate(self.convs, start=1):
            x = conv(x, ws[:, i], noise[i])
        x = self.to_rgb(x)
        return torch.tanh(x) if self.out_activation == "tanh" else x


def mix_styles(w1: torch.Tensor, w2: torch.Tensor, crossover) -> torch.Tensor:
    """Layers before `crossover` (an int or one per example) take w1, the rest w2."""
    mask = common.crossover_mask(w1.shape[1], crossover)     # [1, L] or [batch, L]
    return torch.where(torch.from_numpy(mask).to(w1.device)[:, :, None], w1, w2)


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float,
             cutoff: int | None = None) -> torch.Tensor:
    """w_avg + psi (w - w_avg) on the layers below `cutoff` (None: all)."""
    coef = common.truncation_coefficients(ws.shape[1], psi, cutoff)
    coef = torch.as_tensor(coef, dtype=ws.dtype, device=ws.device)[None, :, None]
    return w_avg + coef * (ws - w_avg)


class Generator(nn.Module):
    """Mapping + synthesis, with the tracked average of w, style mixing and truncation.

    forward(z) gives images; z2 and crossover mix two latents (layers before the
    crossover take w(z), the rest w(z2)); psi < 1 truncates toward w_avg on the
    layers below `cutoff`; update_w_avg=True moves w_avg (decay 0.995) toward
    this batch's mean w, as during training.
    """

    def __init__(self, resolution: int = 32, channels: int = 1, z_dim: int = 128,
                 w_dim: int = 128, mapping_layers: int = 8,
                 mapping_lr_mul: float = common.MAPPING_LR_MUL, fmap_base: int = 2048,
                 fmap_max: int = 128, adain_eps: float = EPS_ADAIN,
                 w_avg_decay: float = common.W_AVG_DECAY, output: str = common.OUTPUT):
        super().__init__()
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul)
        self.synthesis = SynthesisNetwork(resolution, w_dim, channels, fmap_base, fmap_max,
                                          adain_eps, output)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_decay, self.z_dim = w_avg_decay, z_dim

    @property
    def num_layers(self) -> int:
        return self.synthesis.num_layers

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor) -> None:
        """w_avg <- decay * w_avg + (1 - decay) * mean of this batch's w."""
        self.w_avg.lerp_(w.detach().mean(dim=0), 1.0 - self.w_avg_decay)

    def styles(self, z: torch.Tensor, z2: torch.Tensor | None = None, crossover=None,
               psi: float = 1.0, cutoff: int | None = None,
               update_w_avg: bool = False) -> torch.Tensor:
        """Latents -> styles [batch, num_layers, w_dim] (mixed and truncated as asked)."""
        w = self.mapping(z)
        if update_w_avg:
            self.update_w_avg(w)
        ws = w[:, None, :].expand(-1, self.num_layers, -1)
        if z2 is not None:
            ws2 = self.mapping(z2)[:, None, :].expand(-1, self.num_layers, -1)
            ws = mix_styles(ws, ws2, self.num_layers if crossover is None else crossover)
        if psi != 1.0:
            ws = truncate(ws, self.w_avg, psi, cutoff)
        return ws

    def forward(self, z: torch.Tensor, z2: torch.Tensor | None = None, crossover=None,
                psi: float = 1.0, cutoff: int | None = None, noise=None,
                update_w_avg: bool = False) -> torch.Tensor:
        return self.synthesis(self.styles(z, z2, crossover, psi, cutoff, update_w_avg), noise)


# ---------------------------------------------------------------- discriminator

class MinibatchStdDev(nn.Module):
    """Appends one channel: the mean over features of the stddev over a group of examples.

    Groups of G = the largest divisor of the batch up to `group_size`; example n
    is in group n % (batch / G), as the official minibatch_stddev_layer.
    """

    def __init__(self, group_size: int = common.MBSTD_GROUP, eps: float = 1e-8):
        super().__init__()
        self.group_size, self.eps = group_size, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        g = common.stddev_group(b, self.group_size)
        y = x.reshape(g, -1, *x.shape[1:])
        y = y - y.mean(dim=0, keepdim=True)
        std = torch.sqrt(y.pow(2).mean(dim=0) + self.eps)    # [M, C, H, W]
        feat = std.mean(dim=(1, 2, 3)).repeat(g)             # [B]: example n -> group n % M
        return torch.cat([x, feat.view(b, 1, 1, 1).expand(b, 1, h, w)], dim=1)


class DiscriminatorBlock(nn.Module):
    """conv 3x3, leaky ReLU, conv 3x3, leaky ReLU, 2x2 average pooling (ProGAN's D block)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv0(x), LEAKY_SLOPE)
        x = F.leaky_relu(self.conv1(x), LEAKY_SLOPE)
        return F.avg_pool2d(x, 2)


class Discriminator(nn.Module):
    """FromRGB 1x1, blocks down to 4x4, [minibatch stddev], conv 3x3, dense, dense -> one logit.

    The 4x4 maps are flattened in NHWC order, as Keras does, so that the dense
    weights copy across tracks unchanged.
    """

    def __init__(self, resolution: int = 32, channels: int = 1, fmap_base: int = 2048,
                 fmap_max: int = 128, mbstd_group: int = common.MBSTD_GROUP):
        super().__init__()
        nf = lambda r: common.feature_maps(r, fmap_base, fmap_max)  # noqa: E731
        self.from_rgb = EqualizedConv2d(channels, nf(resolution), 1)
        self.blocks = nn.ModuleList(DiscriminatorBlock(nf(res), nf(res // 2))
                                    for res in reversed(common.resolutions(resolution)[1:]))
        self.mbstd = MinibatchStdDev(mbstd_group) if mbstd_group > 1 else None
        self.conv = EqualizedConv2d(nf(4) + (self.mbstd is not None), nf(4), 3)
        self.dense = EqualizedLinear(nf(4) * 16, nf(4))
        self.out = EqualizedLinear(nf(4), 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(x), LEAKY_SLOPE)
        for block in self.blocks:
            x = block(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = F.leaky_relu(self.conv(x), LEAKY_SLOPE)
        x = F.leaky_relu(self.dense(x.permute(0, 2, 3, 1).flatten(1)), LEAKY_SLOPE)
        return self.out(x)


def build_generator(config: common.StyleGANConfig | None = None) -> Generator:
    return Generator(**common.generator_args(config or common.StyleGANConfig()))


def build_discriminator(config: common.StyleGANConfig | None = None) -> Discriminator:
    return Discriminator(**common.discriminator_args(config or common.StyleGANConfig()))


def count_params(module: nn.Module) -> int:
    """Trainable parameters (w_avg is a buffer, not counted)."""
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- losses (reference.stylegan's)

def generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating: mean softplus(-D(G(z))) = mean -log sigmoid(D(G(z)))."""
    return F.softplus(-d_fake).mean()


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Logistic: mean softplus(D(G(z))) + mean softplus(-D(x)); pass G(z) detached."""
    return F.softplus(d_fake).mean() + F.softplus(-d_real).mean()


def r1_penalty(discriminator, reals: torch.Tensor, gamma: float = R1_GAMMA,
               return_logits: bool = False):
    """gamma / 2 * mean over reals of |grad_x D(x)|^2 (Mescheder et al. 2018).

    R1 rather than the paper's WGAN-GP: the official FFHQ setup (paper, appendix C;
    training/loss.py D_logistic_simplegp) trains with the non-saturating logistic
    loss and R1, gamma = 10, which penalizes D's gradient on real data only and
    lets FID keep improving longer. The graph is kept (create_graph), so the
    penalty can be backpropagated into D's weights. With `return_logits`, also
    returns D(reals) for the logistic term, saving a second forward pass.
    """
    reals = reals.detach().requires_grad_(True)
    logits = discriminator(reals)
    (grad,) = torch.autograd.grad(logits.sum(), reals, create_graph=True)
    penalty = 0.5 * gamma * grad.pow(2).flatten(1).sum(dim=1).mean()
    return (penalty, logits) if return_logits else penalty


def sample_styles_for_training(generator: Generator, batch: int, rng: np.random.Generator,
                               mixing_prob: float = common.MIXING_PROB,
                               device: torch.device | str = "cpu") -> torch.Tensor:
    """One training batch of styles: two latents, a crossover from common.sample_crossover
    (mixing with probability `mixing_prob`), and the w_avg update."""
    z1 = torch.from_numpy(rng.standard_normal((batch, generator.z_dim)).astype(np.float32))
    z2 = torch.from_numpy(rng.standard_normal((batch, generator.z_dim)).astype(np.float32))
    crossover = common.sample_crossover(rng, generator.num_layers, mixing_prob)
    z2 = z2.to(device) if crossover < generator.num_layers else None    # no mixing: skip f(z2)
    return generator.styles(z1.to(device), z2, crossover, update_w_avg=True)
