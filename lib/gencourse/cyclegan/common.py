"""The framework-neutral part of CycleGAN: config, loss weights, receptive-field arithmetic.

Sources (facts only): Zhu, Park, Isola & Efros, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks", ICCV 2017 (CycleGAN),
and its reference code github.com/junyanz/pytorch-CycleGAN-and-pix2pix
(models/networks.py, options/); Isola, Zhu, Zhou & Efros, "Image-to-Image
Translation with Conditional Adversarial Networks", CVPR 2017 (pix2pix: U-Net,
PatchGAN); the TensorFlow CycleGAN tutorial and tensorflow_examples'
models/pix2pix/pix2pix.py (the report's TensorFlow code: U-Net generator,
BCE-with-logits losses).

Layouts, in the papers' names (c7s1-k, dk, Rk, uk; Ck):

- ResnetGenerator: reflection pad 3, c7s1-64, d128, d256, N x R256 (9 at 256²,
  6 at 128²), u128, u64, reflection pad 3, c7s1-3, tanh. Convolutions keep their
  bias (the reference drops biases only before batch norm).
- UnetGenerator (the tutorial's): 8 downs C64 (no norm)-C128-C256-C512 x5, 4x4
  stride 2, LeakyReLU, no norm on the 1x1 innermost (see UnetGenerator); 7
  transposed ups 512 x4 (dropout 0.5 in the first three), 256, 128, 64, each
  concatenated with the mirror down; a transposed 4x4 stride-2 conv to 3
  channels with tanh. No biases but the last.
- PatchDiscriminator (70x70 PatchGAN): C64 (no norm)-C128-C256-C512, 4x4
  kernels, strides 2,2,2,1, padding 1, LeakyReLU 0.2, then a 4x4 stride-1 conv to
  one logit per patch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Loss weights (paper section 4 and appendix 7.1, identity: section 5.2; reference
# options lambda_A = lambda_B = 10, lambda_identity 0.5): cycle lambda 10 in each
# direction, identity 0.5 * lambda = 5, here a weight of its own (so that an ablation
# of the cycle loss leaves the identity term as it was).
from ..reference.cyclegan import LAMBDA_CYCLE, LAMBDA_IDENTITY

# Parameter counts of the reference layout (instance norm without affine
# parameters, 3 -> 3 channels), the same in both tracks.
PATCHGAN_PARAMS = 2_764_737
RESNET9_PARAMS = 11_378_179
RESNET6_PARAMS = 7_837_699
UNET_PARAMS = 54_404_099     # the tutorial's batch norm (innermost too) adds 4 x 5,440: 54,425,859

GAN_MODES = ("lsgan", "bce")   # lsgan: the reference default; bce: the report's TF code
SEMANTIC_MODES = ("cycada", "oracle")


def patchgan_layers(n_layers: int = 3) -> tuple[tuple[int, int, int], ...]:
    """(kernel, stride, padding) of a PatchGAN's convolutions: n_layers of stride 2, two of 1.

    n_layers = 3 is the 70x70 PatchGAN; 1 gives pix2pix's 16x16 and 5 its 286x286
    (Isola et al. 2017, section 4.4).
    """
    return ((4, 2, 1),) * n_layers + ((4, 1, 1),) * 2


PATCHGAN_LAYERS = patchgan_layers(3)


@dataclass
class CycleGANConfig:
    """Everything that defines a run; defaults are the paper's (section 4, training details;
    appendix 7.2) and the reference code's options."""

    image_size: int = 256
    channels: int = 3
    generator: str = "resnet"          # "resnet" or "unet"
    n_blocks: int | None = None        # residual blocks; None: 9 at >= 256, else 6
    ngf: int = 64
    ndf: int = 64
    gan_mode: str = "lsgan"
    lambda_cycle: float = LAMBDA_CYCLE
    lambda_identity: float = LAMBDA_IDENTITY
    learning_rate: float = 2e-4        # Adam, beta1 0.5
    beta_1: float = 0.5
    batch_size: int = 1
    pool_size: int = 50                # history of generated images for D
    epochs: int = 100                  # at the constant rate, then
    decay_epochs: int = 100            # linear decay to zero
    d_layers: int = 3                  # stride-2 convolutions of the PatchGAN (3: 70x70)
    semantic_weight: float = 0.0       # CyCADA's semantic-consistency loss (0: the paper's CycleGAN)
    semantic_mode: str = "cycada"      # "cycada": one source classifier, its predictions as labels;
    #                                    "oracle": each output domain's classifier and the true labels
    semantic_source: str = "B"         # CyCADA's labelled source domain: B (MNIST), whose classifier reads A best
    seed: int = 0

    def __post_init__(self):
        if self.generator not in ("resnet", "unet"):
            raise ValueError(f"generator must be 'resnet' or 'unet', got {self.generator!r}")
        if self.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two stride-2 downs), got {self.image_size}")
        normed = patch_map_size(self.image_size, patchgan_layers(self.d_layers)[:-1])
        if normed < 2:
            raise ValueError(f"image_size {self.image_size} is too small for a PatchGAN with "
                             f"{self.d_layers} stride-2 layers (its last instance-normalized map "
                             f"would be {normed}x{normed}); use a larger image size or fewer layers")
        if self.semantic_mode not in SEMANTIC_MODES or self.semantic_source not in ("A", "B"):
            raise ValueError(f"semantic_mode must be one of {SEMANTIC_MODES} and semantic_source A or B, "
                             f"got {self.semantic_mode!r}, {self.semantic_source!r}")
        if self.gan_mode not in GAN_MODES:
            raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {self.gan_mode!r}")

    @property
    def blocks(self) -> int:
        return self.n_blocks if self.n_blocks is not None else default_n_blocks(self.image_size)

    def to_dict(self) -> dict:
        return asdict(self)


def default_n_blocks(image_size: int) -> int:
    """9 residual blocks for 256² and larger, 6 below (paper, appendix 7.2)."""
    return 9 if image_size >= 256 else 6


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution: floor((n + 2p - k) / s) + 1."""
    out = (n + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(f"a {kernel}x{kernel} stride-{stride} convolution with padding "
                         f"{padding} does not fit an input of {n}")
    return out


def patch_map_size(n: int, layers=PATCHGAN_LAYERS) -> int:
    """Side of the PatchGAN's output map for an n x n input (256 -> 30)."""
    for k, s, p in layers:
        n = conv_output_size(n, k, s, p)
    return n


def receptive_field(layers=PATCHGAN_LAYERS) -> tuple[int, int, int]:
    """(size, jump, start) of one output unit of a stack of convolutions.

    `layers` holds (kernel, stride) or (kernel, stride, padding). Walking from the
    input: the field grows by (k - 1) * jump, the jump (input pixels between
    neighbouring units) multiplies by s, and padding moves the first unit's window
    by p * jump. Output unit i sees input rows start + i * jump ...
    start + i * jump + size - 1. For the PatchGAN: (70, 8, -23).
    """
    size, jump, start = 1, 1, 0
    for layer in layers:
        k, s = layer[0], layer[1]
        p = layer[2] if len(layer) > 2 else 0
        size += (k - 1) * jump
        start -= p * jump
        jump *= s
    return size, jump, start


def unet_filters(ngf: int = 64, n_downs: int = 8) -> tuple[list[int], list[int]]:
    """Channels of the U-Net's downs and ups: 64,128,256,512,512,... and the mirror.

    n_downs = 8 is the tutorial's network for 256² (its bottleneck is 1x1); sides
    must be divisible by 2**n_downs. Dropout goes to the n_downs - 5 innermost ups
    (pix2pix's num_downs rule; the tutorial's first three ups at n_downs = 8).
    """
    if n_downs < 4:
        raise ValueError(f"the U-Net needs at least 4 downs, got {n_downs}")
    downs = [ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * (n_downs - 3)
    return downs, downs[-2::-1]


def lr_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """The learning rate's multiplier in 0-based `epoch`: 1 for `epochs`, then linearly to ~0.

    The reference's "linear" policy (networks.get_scheduler): 1 - max(0, e + 1 - epochs)
    / (decay_epochs + 1), so the last decay epoch still takes a small step.
    """
    return 1.0 - max(0, epoch + 1 - epochs) / float(decay_epochs + 1)


class ImagePool:
    """The history of generated images that D is shown (Shrivastava et al. 2017; paper section 4).

    While fewer than `size` are stored, each new fake is stored and returned.
    Then each new fake is, with probability 1/2, swapped for a random stored one
    (the old one goes to D), else returned as it is: D sees the generators' past
    as well as their present, which damps oscillation. Size 0 passes fakes through.
    Works on numpy arrays [B, ...], so both tracks share it.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        self.size, self.images = size, []
        self.rng = np.random.default_rng(seed)
        self.swapped = np.zeros(0, bool)     # which images of the last query were older ones

    def query(self, fakes: np.ndarray) -> np.ndarray:
        self.swapped = np.zeros(len(fakes), bool)
        if self.size == 0:
            return fakes
        out = []
        for i, image in enumerate(fakes):
            if len(self.images) < self.size:
                self.images.append(image.copy())
                out.append(image)
            elif self.rng.random() < 0.5:
                k = int(self.rng.integers(self.size))
                out.append(self.images[k])
                self.images[k] = image.copy()
                self.swapped[i] = True
            else:
                out.append(image)
        return np.stack(out)

    def state(self) -> dict:
        return {"images": np.stack(self.images) if self.images else np.zeros((0,)),
                "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        self.images = list(state["images"])
        self.rng.bit_generator.state = state["rng"]


def generator_terms(part, d_b_fake_b, d_a_fake_a, real_a, rec_a, real_b, rec_b, *, gan_mode: str,
                    lambda_cycle: float, lambda_identity: float, same_a=None, same_b=None,
                    semantic_weight: float = 0.0, semantic_a=None, semantic_b=None) -> dict:
    """What G and F minimize together, term by term: the paper's equation (3) plus the identity terms
    (gencourse.reference.cyclegan.generator_objective is their sum). `part(name)` is a track's loss
    function of that name (or a student's); `same_a` / `same_b` are called for F(a) and G(b) only
    when lambda_identity is not 0. Both tracks' generator steps take their losses from here."""
    adv, cyc, idt = (part(k) for k in ("generator_adversarial_loss", "cycle_consistency_loss", "identity_loss"))
    terms = {"G_adv": adv(d_b_fake_b, gan_mode), "F_adv": adv(d_a_fake_a, gan_mode),
             "cycle_A": cyc(real_a, rec_a, lambda_cycle), "cycle_B": cyc(real_b, rec_b, lambda_cycle)}
    if lambda_identity and same_a is not None and same_b is not None:
        terms["identity_A"] = idt(real_a, same_a(), lambda_identity)
        terms["identity_B"] = idt(real_b, same_b(), lambda_identity)
    if semantic_weight and semantic_a is not None and semantic_b is not None:
        sem = part("semantic_consistency_loss")
        terms["semantic_A"] = sem(*semantic_a(), semantic_weight)
        terms["semantic_B"] = sem(*semantic_b(), semantic_weight)
    return terms
