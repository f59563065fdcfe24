"""Probes of the StyleGAN assignment, PyTorch track (run in the worker).

Student parts: `AdaptiveInstanceNorm(channels, w_dim, eps)` (an nn.Module whose
given `self.style` is the affine map A, called as `adain(x, w)`),
`NoiseInjection(channels)` (called as `noise(x, noise=None)`),
`mix_styles(w1, w2, crossover)` and `truncate(ws, w_avg, psi, cutoff)`. Images
come from the grader as NHWC arrays and go to the student as NCHW tensors;
they go back NHWC. Noise images come as [N, H, W, 1] and go in as [N, 1, H, W].
"""

from __future__ import annotations

import numpy as np
import torch

from ...grading.probing import keeping, part, plain, reseeded, scalar, shape_table, substituted
from . import common_probes as cp
from .common_probes import class_direction, direction, frechet, losses, shipped  # noqa: F401 (probes)


def _nchw(a, grad=False):
    return torch.tensor(np.asarray(a, np.float32).transpose(0, 3, 1, 2), requires_grad=grad)


def _nhwc(t) -> np.ndarray:
    return plain(t).transpose(0, 2, 3, 1) if plain(t).ndim == 4 else plain(t)


def _set_style(layer, kernel, bias) -> None:
    """Load the grader's A into the layer's `style` (an EqualizedLinear: weight [2C, w_dim], bias [2C])."""
    style = getattr(layer, "style", None)
    if style is None or not hasattr(style, "weight") or not hasattr(style, "bias"):
        raise AttributeError("AdaptiveInstanceNorm has no `self.style` with a weight and a bias: keep the given "
                             "line self.style = EqualizedLinear(w_dim, 2 * channels, gain=1.0)")
    with torch.no_grad():
        style.weight.copy_(torch.from_numpy(np.asarray(kernel, np.float32).T))
        style.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))


def adain(ns, x, w, kernel, bias, eps, weights):
    """AdaIN's output for x and w with the grader's A, and the gradient of sum(weights * output) for w."""
    from ..torch_models import EqualizedLinear

    with substituted(ns, EqualizedLinear=EqualizedLinear):     # the package's A: this check judges AdaIN alone
        layer = part(ns, "AdaptiveInstanceNorm")(int(np.shape(x)[-1]), int(np.shape(w)[-1]), eps=scalar(eps, float))
    _set_style(layer, kernel, bias)
    xt, wt = _nchw(x), torch.tensor(np.asarray(w, np.float32), requires_grad=True)
    y = layer(xt, wt)
    grad = None
    if isinstance(y, torch.Tensor) and y.requires_grad:
        (grad,) = torch.autograd.grad((y * _nchw(weights)).sum(), [wt], allow_unused=True)
    return {"y": _nhwc(y), "grad_w": np.zeros(np.shape(w)) if grad is None else plain(grad),
            "missing": np.array(float(grad is None))}


def _noise_layer(ns, channels):
    return part(ns, "NoiseInjection")(scalar(channels))


def _params(layer) -> list:
    return [p for p in layer.parameters()]


def noise_init(ns, x, seed):
    """The new layer's parameters (shapes and values) and its output for x with drawn noise."""
    torch.manual_seed(scalar(seed))
    layer = _noise_layer(ns, np.shape(x)[-1])
    params = _params(layer)
    out = {"sizes": np.array([p.numel() for p in params], np.int64), "shapes": shape_table(params)}
    if params:
        out["values"] = np.concatenate([plain(p).ravel() for p in params])
    with torch.no_grad():
        out["y"] = _nhwc(layer(_nchw(x)))
    return out


def _set_scale(layer, scale) -> None:
    params = _params(layer)
    scale = np.asarray(scale, np.float32)
    if len(params) != 1 or params[0].numel() != scale.size:
        raise ValueError(f"NoiseInjection holds parameters of sizes {[p.numel() for p in params]}: expected one "
                         f"learned scale per channel ({scale.size} numbers)")
    with torch.no_grad():
        params[0].copy_(torch.from_numpy(scale).reshape(params[0].shape))


def noise_given(ns, x, noise, scale):
    """x + scale * noise for a given noise image [N, H, W, 1]."""
    layer = _noise_layer(ns, np.shape(x)[-1])
    _set_scale(layer, scale)
    with torch.no_grad():
        return {"y": _nhwc(layer(_nchw(x), _nchw(noise)))}


def noise_drawn(ns, x, scale, seed):
    """Two calls with noise=None; what each added, per channel, divided by that channel's scale."""
    torch.manual_seed(scalar(seed))
    layer = _noise_layer(ns, np.shape(x)[-1])
    _set_scale(layer, scale)
    xt, s = _nchw(x), np.asarray(scale, np.float64)
    with torch.no_grad():
        first, second = _nhwc(layer(xt)), _nhwc(layer(xt))
    x = np.asarray(x, np.float64)
    return {"first": (first - x) / s, "second": (second - x) / s}


def mix(ns, w1, w2, crossover):
    ws, changed = keeping(part(ns, "mix_styles"), torch.tensor(np.asarray(w1, np.float32)),
                          torch.tensor(np.asarray(w2, np.float32)), scalar(crossover))
    return {"ws": plain(ws), "changed": changed[:2]}


def trunc(ns, ws, w_avg, psi, cutoff):
    c = scalar(cutoff)
    out, changed = keeping(part(ns, "truncate"), torch.tensor(np.asarray(ws, np.float32)),
                           torch.tensor(np.asarray(w_avg, np.float32)), scalar(psi, float), None if c < 0 else c)
    return {"ws": plain(out), "changed": changed[:2]}


def pretrained(ns, z, noise_seed):
    """The shipped generator drawing with the student's AdaIN and noise (common_probes.shipped)."""
    from ..torch_models import EqualizedLinear

    with substituted(ns, EqualizedLinear=EqualizedLinear):     # the package's A inside the student's AdaIN
        return shipped(ns, "torch", z, noise_seed)


# --------------------------------------------------------------------- equalized lr, mapping, losses

def equalized(ns, x, weight, bias, r, gain, lr_mul, seed):
    """A fresh EqualizedLinear's stored weights, then its output and gradients with the grader's W and b."""
    cls = part(ns, "EqualizedLinear")
    out_f, in_f = np.shape(weight)
    torch.manual_seed(scalar(seed))
    layer = cls(in_f, out_f, gain=scalar(gain, float), lr_mul=scalar(lr_mul, float))
    out = {"init_weight": plain(layer.weight), "init_bias": plain(layer.bias)}
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(weight, np.float32)))
        layer.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))
    y = layer(torch.from_numpy(np.asarray(x, np.float32)))
    grads = [None, None]
    if isinstance(y, torch.Tensor) and y.requires_grad:
        grads = torch.autograd.grad((y * torch.from_numpy(np.asarray(r, np.float32))).sum(),
                                    [layer.weight, layer.bias], allow_unused=True)
    out.update(y=plain(y), missing=np.array([g is None for g in grads], np.float64),
               grad_w=np.zeros(np.shape(weight)) if grads[0] is None else plain(grads[0]),
               grad_b=np.zeros(np.shape(bias)) if grads[1] is None else plain(grads[1]))
    return out


def mapping(ns, z, z_dim, w_dim, n_layers, seed, x, weights_flat, weights_table, structure):
    """The student's MappingNetwork, built with the package's equalized layer, with the package's weights
    loaded in run order (grading.networks)."""
    from ...grading.tracing import probe_network

    from ..torch_models import EqualizedLinear

    torch.manual_seed(scalar(seed))
    with substituted(ns, EqualizedLinear=EqualizedLinear):     # the package's layer: this check judges the network
        net = part(ns, "MappingNetwork")(scalar(z_dim), scalar(w_dim), scalar(n_layers))
    return probe_network(net, x, weights_flat, weights_table, structure)


def _with_grads(fn, *arrays):
    """fn on float32 tensors of `arrays`: its value, its gradient for each (zeros where none reached it) and a
    0/1 flag per input that got none."""
    ts = [torch.tensor(np.asarray(a, np.float32), requires_grad=True) for a in arrays]
    value = fn(*ts)
    grads = [None] * len(ts)
    if isinstance(value, torch.Tensor) and value.requires_grad:
        grads = torch.autograd.grad(value.sum(), ts, allow_unused=True)
    return (value, [np.zeros(np.shape(a)) if g is None else plain(g) for g, a in zip(grads, arrays)],
            np.array([g is None for g in grads], np.float64))


def loss_values(ns, d_real, d_fake):
    return losses(ns, _with_grads, d_real, d_fake)


class QuadraticD(torch.nn.Module):
    """D(x) = sum_p (a x^2 + c x) + b per image of [N, 1, H, W]: its input gradient is 2 a x + c."""

    def __init__(self, a, c, b):
        super().__init__()
        self.a = torch.nn.Parameter(torch.from_numpy(np.asarray(a, np.float32)))
        self.c = torch.nn.Parameter(torch.from_numpy(np.asarray(c, np.float32)))
        self.b = torch.nn.Parameter(torch.tensor(float(np.asarray(b))))

    def forward(self, x):
        return (self.a * x[:, 0] ** 2 + self.c * x[:, 0]).sum(dim=(1, 2)).unsqueeze(1) + self.b


def _images(a):
    return torch.from_numpy(np.asarray(a, np.float32))[:, None]


def r1(ns, reals, fakes, a, c, b, gamma):
    """The student's r1_penalty(D, reals, gamma), and its gradient for D's weight a (None: cut from the graph)."""
    d = QuadraticD(a, c, b)
    value = part(ns, "r1_penalty")(d, _images(reals), scalar(gamma, float))
    grad = None
    if isinstance(value, torch.Tensor) and value.requires_grad:
        (grad,) = torch.autograd.grad(value.sum(), [d.a], allow_unused=True)
    return {"r1": plain(value), "missing": np.array(float(grad is None)),
            "grad_a": np.zeros(np.shape(a)) if grad is None else plain(grad)}


def d_objective(ns, reals, fakes, a, c, b, gamma):
    """The student's discriminator_objective, with the package's loss and R1 in its namespace: this check
    judges what the objective is made of."""
    from ..torch_models import discriminator_loss, r1_penalty

    with substituted(ns, discriminator_loss=discriminator_loss, r1_penalty=r1_penalty):
        value = part(ns, "discriminator_objective")(QuadraticD(a, c, b), _images(reals), _images(fakes),
                                                    scalar(gamma, float))
    return {"objective": plain(value)}


def step(ns, **inputs):
    """Two steps of the student's training_step (common_probes.step), torch.optim.SGD, the package's losses."""
    from .. import torch_models as tm
    from . import torch_step

    return cp.step(torch_step, tm, ns, inputs, sgd=lambda params, lr: torch.optim.SGD(params, lr=lr))



def short_training(ns, **inputs):
    """The grader's short training with the student's training_step (common_probes.short_training)."""
    from .. import torch_models as tm
    from . import torch_step

    return cp.short_training("torch", torch_step, tm, ns, inputs)

globals().update(cp.generator_probes("torch"))   # generator_net, generator_styles, generator_draw

reseeded(globals())   # every probe above starts from the same random state in every run
