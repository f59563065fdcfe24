"""StyleGAN formulas (Karras, Laine & Aila 2019), numpy only.

Pixel norm of z, AdaIN, the layer-wise style mixing and truncation of w, the
tracked average of w, the minibatch standard deviation of the discriminator,
and the non-saturating logistic losses with the R1 penalty. Image tensors are
NHWC by default (`channel_axis=1` for NCHW); styles are [batch, layers, w_dim].

Sources (facts only): the paper (section 2: AdaIN, equation 1; section 3.1:
style mixing; section 3.2: noise; appendix B: truncation; appendix C: training
details) and its official code, github.com/NVlabs/stylegan
(training/networks_stylegan.py: pixel_norm, instance_norm, style_mod,
minibatch_stddev_layer, G_style; training/loss.py: G_logistic_nonsaturating,
D_logistic_simplegp).
"""

from __future__ import annotations

import numpy as np

EPS_PIXEL_NORM = 1e-8    # official pixel_norm
EPS_ADAIN = 1e-8         # official instance_norm (torch's InstanceNorm2d would use 1e-5)
R1_GAMMA = 10.0          # official FFHQ config, D_logistic_simplegp(r1_gamma=10)
W_AVG_DECAY = 0.995      # official G_style(dlatent_avg_beta=0.995)


def pixel_norm(z, eps: float = EPS_PIXEL_NORM, axis: int = -1):
    """z / sqrt(mean(z^2) + eps) along `axis`: every latent gets unit mean square.

    The mapping network's first step (paper, figure 1b: "Normalize"); it puts all
    z on a sphere of radius sqrt(z_dim), whatever their sampled length.
    """
    z = np.asarray(z, dtype=np.float64)
    return z / np.sqrt(np.mean(z**2, axis=axis, keepdims=True) + eps)


def adaptive_instance_norm(x, scale, bias, eps: float = EPS_ADAIN, channel_axis: int = -1):
    """AdaIN(x, y) = (1 + y_s) * (x - mean) / sqrt(var + eps) + y_b (paper, equation 1).

    Mean and biased variance per example and channel over the spatial axes.
    `scale` and `bias` are [batch, channels], the two halves of the style A(w).
    The paper writes y_s * norm(x) + y_b; the official style_mod multiplies by
    (y_s + 1) so that a zero-initialized affine map starts at the identity
    scale. Both tracks and this oracle use the (1 + y_s) form.
    """
    x = np.asarray(x, dtype=np.float64)
    channel_axis = channel_axis % x.ndim
    spatial = tuple(a for a in range(1, x.ndim) if a != channel_axis)
    mean = x.mean(axis=spatial, keepdims=True)
    var = x.var(axis=spatial, keepdims=True)
    shape = [x.shape[0]] + [1] * (x.ndim - 1)
    shape[channel_axis] = x.shape[channel_axis]
    s = np.asarray(scale, dtype=np.float64).reshape(shape)
    b = np.asarray(bias, dtype=np.float64).reshape(shape)
    return (1.0 + s) * (x - mean) / np.sqrt(var + eps) + b


def broadcast_w(w, num_layers: int):
    """[batch, w_dim] -> [batch, num_layers, w_dim]: the same w for every AdaIN layer."""
    w = np.asarray(w, dtype=np.float64)
    return np.repeat(w[:, None, :], num_layers, axis=1)


def crossover_mask(num_layers: int, crossover, batch: int | None = None):
    """Boolean [batch, num_layers]: True where a layer takes w1 (layer index < crossover).

    `crossover` is one layer index for the whole batch (the official code draws
    one per minibatch) or one per example. crossover = num_layers: all w1;
    crossover = 0: all w2.
    """
    c = np.asarray(crossover)
    layers = np.arange(num_layers)
    if c.ndim == 0:
        mask = layers[None, :] < int(c)
        return np.repeat(mask, batch, axis=0) if batch is not None else mask
    return layers[None, :] < c.reshape(-1, 1)


def mix_styles(w1, w2, crossover):
    """Style mixing (paper, section 3.1): layers before `crossover` take w1, the rest w2.

    w1, w2: [batch, layers, w_dim]. `crossover`: an int or one per example.
    """
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    mask = crossover_mask(w1.shape[1], crossover, w1.shape[0])
    return np.where(mask[:, :, None], w1, w2)


def truncation_coefficients(num_layers: int, psi: float, cutoff: int | None = None):
    """Per-layer psi: psi on layers below `cutoff` (None: all), 1 above."""
    cutoff = num_layers if cutoff is None else cutoff
    return np.where(np.arange(num_layers) < cutoff, float(psi), 1.0)


def truncate(w, w_avg, psi: float, cutoff: int | None = None):
    """The truncation trick in W (paper, appendix B): w' = w_avg + psi (w - w_avg).

    w: [batch, layers, w_dim]; only layers below `cutoff` are pulled toward the
    average (the official default: the first 8, i.e. 4²-32²). psi = 1 changes
    nothing; psi = 0 gives w_avg.
    """
    w = np.asarray(w, dtype=np.float64)
    w_avg = np.asarray(w_avg, dtype=np.float64)
    coef = truncation_coefficients(w.shape[1], psi, cutoff)[None, :, None]
    return w_avg + coef * (w - w_avg)


def update_w_avg(w_avg, w, decay: float = W_AVG_DECAY):
    """One step of the tracked average of w: decay * w_avg + (1 - decay) * batch mean of w.

    w: [batch, w_dim] (or [batch, layers, w_dim], whose first layer is used, as
    the official code does).
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 3:
        w = w[:, 0]
    return decay * np.asarray(w_avg, dtype=np.float64) + (1.0 - decay) * w.mean(axis=0)


def minibatch_stddev(x, group_size: int = 4, eps: float = 1e-8, channel_axis: int = -1):
    """Append the mean over features of the stddev over a group (Karras et al. 2018, ProGAN).

    Example n belongs to group n % (batch / G), G = the largest divisor of the
    batch not above `group_size` (the official code asks for divisibility).
    Per group: biased variance over its G examples, sqrt(var + eps), averaged
    over channels and pixels; the value is appended as one extra channel.
    """
    x = np.asarray(x, dtype=np.float64)
    if channel_axis % x.ndim != x.ndim - 1:
        x = np.moveaxis(x, channel_axis, -1)
    g = stddev_group(x.shape[0], group_size)
    y = x.reshape(g, -1, *x.shape[1:])                       # [G, M, H, W, C]
    std = np.sqrt(y.var(axis=0) + eps)                       # [M, H, W, C]
    feat = std.mean(axis=(1, 2, 3))                          # [M]
    feat = np.tile(feat, g)                                  # example n -> group n % M
    extra = np.broadcast_to(feat[:, None, None, None], (*x.shape[:3], 1))
    out = np.concatenate([x, extra], axis=-1)
    return np.moveaxis(out, -1, channel_axis) if channel_axis % out.ndim != out.ndim - 1 else out


def stddev_group(batch: int, group_size: int) -> int:
    """The largest divisor of `batch` that is at most `group_size` (1 if none)."""
    return max(g for g in range(1, min(group_size, batch) + 1) if batch % g == 0)


def softplus(x):
    """log(1 + e^x), computed stably."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def generator_loss(d_fake) -> float:
    """Non-saturating G loss: mean -log sigmoid(D(G(z))) = mean softplus(-D(G(z)))."""
    return float(np.mean(softplus(-np.asarray(d_fake, dtype=np.float64))))


def discriminator_loss(d_real, d_fake) -> float:
    """Logistic D loss: mean softplus(D(G(z))) + mean softplus(-D(x)) (logits in, no R1)."""
    return float(np.mean(softplus(d_fake)) + np.mean(softplus(-np.asarray(d_real, np.float64))))


def r1_penalty(grad_real, gamma: float = R1_GAMMA) -> float:
    """R1 = gamma / 2 * E_x |grad_x D(x)|^2 on real images (Mescheder et al. 2018).

    `grad_real` holds the gradient of D's logit for each real image, [batch, ...];
    the squared norm is summed per image and averaged over the batch.
    """
    g = np.asarray(grad_real, dtype=np.float64)
    return float(0.5 * gamma * np.mean(np.sum(g.reshape(len(g), -1) ** 2, axis=1)))
