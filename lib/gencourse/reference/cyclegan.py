"""CycleGAN formulas (Zhu et al. 2017), numpy only: instance norm and the losses.

Names follow the paper: G maps A -> B, F maps B -> A; D_A judges domain A and
D_B domain B. Adversarial losses come in two forms: "lsgan" (least squares,
Mao et al. 2017; the paper's choice, section 4, and the reference code's
default) and "bce" (sigmoid cross-entropy on logits, the TensorFlow tutorial's
`BinaryCrossentropy(from_logits=True)`). Every loss is a mean over all elements
(every patch of a PatchGAN map, every pixel), as both reference codes compute it.
"""

from __future__ import annotations

import numpy as np

EPS_INSTANCE_NORM = 1e-5
LAMBDA_CYCLE = 10.0      # lambda of the paper's equation (3), both directions
LAMBDA_IDENTITY = 5.0    # the identity loss's own weight: the paper's 0.5 * lambda (section 5.2)


def instance_norm(x, *, eps: float = EPS_INSTANCE_NORM, scale=None, offset=None,
                  channel_axis: int = -1):
    """(x - mean) / sqrt(var + eps) per example and channel, over the spatial axes.

    Ulyanov et al. 2016. The variance is the biased one (divide by H*W), as in
    torch.nn.InstanceNorm2d. `scale` and `offset` (one value per channel) give the
    affine form; the reference layout has none. `channel_axis`: -1 for NHWC
    (Keras), 1 for NCHW (PyTorch).
    """
    x = np.asarray(x, dtype=np.float64)
    channel_axis = channel_axis % x.ndim
    spatial = tuple(a for a in range(1, x.ndim) if a != channel_axis)
    mean = x.mean(axis=spatial, keepdims=True)
    var = x.var(axis=spatial, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    shape = [1] * x.ndim
    shape[channel_axis] = x.shape[channel_axis]
    if scale is not None:
        y = y * np.asarray(scale, dtype=np.float64).reshape(shape)
    if offset is not None:
        y = y + np.asarray(offset, dtype=np.float64).reshape(shape)
    return y


def bce_with_logits(logits, targets):
    """Elementwise -[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))], computed stably."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    return np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))


def _adversarial(d_out, target: float, gan_mode: str) -> float:
    d = np.asarray(d_out, dtype=np.float64)
    if gan_mode == "lsgan":
        return float(np.mean((d - target) ** 2))
    if gan_mode == "bce":
        return float(np.mean(bce_with_logits(d, np.full_like(d, target))))
    raise ValueError(f"gan_mode must be 'lsgan' or 'bce', got {gan_mode!r}")


def generator_adversarial_loss(d_fake, gan_mode: str = "lsgan") -> float:
    """The generator's side of L_GAN: make D call its fakes real (target 1).

    lsgan: mean (D(G(x)) - 1)^2; bce: mean BCE(1, D(G(x))) on logits.
    """
    return _adversarial(d_fake, 1.0, gan_mode)


def discriminator_loss(d_real, d_fake, gan_mode: str = "lsgan") -> float:
    """D's loss, halved to slow D down relative to G (paper, section 4, training details):

    1/2 [loss(D(y), 1) + loss(D(G(x)), 0)].
    """
    return 0.5 * (_adversarial(d_real, 1.0, gan_mode) + _adversarial(d_fake, 0.0, gan_mode))


def cycle_consistency_loss(real, reconstructed, lambda_cycle: float = LAMBDA_CYCLE) -> float:
    """lambda * mean |F(G(x)) - x|: one direction of the paper's L_cyc (equation 2)."""
    diff = np.asarray(real, dtype=np.float64) - np.asarray(reconstructed, dtype=np.float64)
    return float(lambda_cycle * np.mean(np.abs(diff)))


def identity_loss(real, same, lambda_identity: float = LAMBDA_IDENTITY) -> float:
    """lambda_identity * mean |G(y) - y|: a generator fed its own target domain should leave the
    image alone (paper section 5.2, after Taigman et al. 2017). The paper writes the weight as
    0.5 * lambda; here it is its own, so that turning the cycle loss off leaves it as it was."""
    diff = np.asarray(real, dtype=np.float64) - np.asarray(same, dtype=np.float64)
    return float(lambda_identity * np.mean(np.abs(diff)))


def generator_objective(d_b_fake_b, d_a_fake_a, real_a, rec_a, real_b, rec_b,
                        same_a=None, same_b=None, *, gan_mode: str = "lsgan",
                        lambda_cycle: float = LAMBDA_CYCLE,
                        lambda_identity: float = LAMBDA_IDENTITY) -> float:
    """What G and F minimize together: the paper's equation (3) plus the identity terms.

    L_GAN(G, D_B) + L_GAN(F, D_A) + L_cyc(A) + L_cyc(B) [+ L_idt(A) + L_idt(B)],
    with d_b_fake_b = D_B(G(a)), d_a_fake_a = D_A(F(b)), rec_a = F(G(a)),
    rec_b = G(F(b)), same_a = F(a), same_b = G(b). The identity terms are left
    out when same_a and same_b are None or lambda_identity is 0.
    """
    total = (generator_adversarial_loss(d_b_fake_b, gan_mode)
             + generator_adversarial_loss(d_a_fake_a, gan_mode)
             + cycle_consistency_loss(real_a, rec_a, lambda_cycle)
             + cycle_consistency_loss(real_b, rec_b, lambda_cycle))
    if lambda_identity and same_a is not None and same_b is not None:
        total += identity_loss(real_a, same_a, lambda_identity) + identity_loss(real_b, same_b, lambda_identity)
    return float(total)


def log_softmax(logits) -> np.ndarray:
    """log softmax over the last axis, computed stably (the max subtracted first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def semantic_consistency_loss(logits, labels, weight: float = 1.0) -> float:
    """CyCADA's L_sem (Hoffman et al. 2018, equation 4), for one direction: weight times the mean
    cross-entropy of a frozen classifier's logits [N, C] on translated images against the labels [N]
    of the images they came from."""
    labels = np.asarray(labels, dtype=np.int64)
    return float(-weight * log_softmax(logits)[np.arange(len(labels)), labels].mean())
