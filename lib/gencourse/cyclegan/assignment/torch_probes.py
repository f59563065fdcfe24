"""Probes of the CycleGAN assignment, PyTorch track (run in the worker).

Student parts: `cycle_consistency_loss(real_a, reconstructed_a, real_b,
reconstructed_b, lambda_cycle)`, `identity_loss(real, same, lambda_cycle,
lambda_identity)` and `PatchDiscriminator(in_channels, ndf, n_layers)` (an
nn.Module). Images come from the grader as NHWC arrays and go to the student
as NCHW tensors; shapes go back in the grader's NHWC order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...grading.probing import part, plain, scalar
from .common_probes import train_with_parts

NORMS = (nn.modules.instancenorm._InstanceNorm, nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def _images(a, grad=False):
    return torch.tensor(np.asarray(a, np.float32).transpose(0, 3, 1, 2), requires_grad=grad)


def _grad_back(loss, tensors):
    """Gradients of `loss` for `tensors` as NHWC arrays, and a 0/1 flag per tensor that got none."""
    grads = [None] * len(tensors)
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        grads = torch.autograd.grad(loss.sum(), tensors, allow_unused=True)
    missing = np.array([g is None for g in grads], dtype=np.float64)
    arrays = [np.zeros(tuple(t.permute(0, 2, 3, 1).shape)) if g is None else plain(g.permute(0, 2, 3, 1))
              for g, t in zip(grads, tensors)]
    return arrays, missing


def cycle(ns, real_a, reconstructed_a, real_b, reconstructed_b, lambda_cycle):
    fn = part(ns, "cycle_consistency_loss")
    ra, rb = _images(real_a), _images(real_b)
    ca, cb = _images(reconstructed_a, True), _images(reconstructed_b, True)
    loss = fn(ra, ca, rb, cb, scalar(lambda_cycle, float))
    (ga, gb), missing = _grad_back(loss, [ca, cb])
    return {"loss": plain(loss), "grad_a": ga, "grad_b": gb, "missing": missing}


def identity(ns, real, same, lambda_cycle, lambda_identity):
    fn = part(ns, "identity_loss")
    s = _images(same, True)
    loss = fn(_images(real), s, scalar(lambda_cycle, float), scalar(lambda_identity, float))
    (grad,), missing = _grad_back(loss, [s])
    return {"loss": plain(loss), "grad": grad, "missing": missing}


def _discriminator(ns, in_channels, ndf, n_layers):
    cls = part(ns, "PatchDiscriminator")
    return cls(in_channels=scalar(in_channels), ndf=scalar(ndf), n_layers=scalar(n_layers))


def d_maps(ns, sizes, in_channels, ndf, n_layers, seed):
    """Output shapes (as NHWC) for square inputs of each size."""
    d = _discriminator(ns, in_channels, ndf, n_layers)
    rng = np.random.default_rng(scalar(seed))
    out = {}
    with torch.no_grad():
        for i, n in enumerate(np.asarray(sizes).ravel()):
            x = rng.uniform(-1, 1, (2, int(n), int(n), scalar(in_channels)))
            y = d(_images(x))
            shape = tuple(y.shape)
            out[f"shape{i}"] = np.array(shape[:1] + shape[2:] + shape[1:2] if len(shape) == 4 else shape)
        return out


def d_logits(ns, size, in_channels, ndf, n_layers, seed):
    """The scores for random images, then again with the last layer's weights times 1000.

    Raw scores grow with that layer's weights; a sigmoid after it keeps them in [0, 1].
    """
    d = _discriminator(ns, in_channels, ndf, n_layers)
    x = _images(np.random.default_rng(scalar(seed)).uniform(-1, 1, (2, scalar(size), scalar(size),
                                                                      scalar(in_channels))))
    with torch.no_grad():
        values = plain(d(x))
        last = [m for m in d.modules() if list(m.parameters(recurse=False))][-1]
        for p in last.parameters(recurse=False):
            p.mul_(1000.0)
        return {"values": values, "scaled": plain(d(x))}


def d_receptive_field(ns, size, unit, in_channels, ndf, n_layers, seed):
    """Which input rows and columns the gradient of output unit (unit, unit) reaches.

    Normalization layers are switched off (a forward hook hands their input on):
    their statistics couple every pixel, which would hide the convolutions' field.
    """
    d = _discriminator(ns, in_channels, ndf, n_layers).double()
    switched = 0
    for m in d.modules():
        if isinstance(m, NORMS):
            m.register_forward_hook(lambda module, args, output: args[0])
            switched += 1
    rng = np.random.default_rng(scalar(seed))
    x = _images(rng.normal(size=(1, scalar(size), scalar(size), scalar(in_channels)))).double().requires_grad_()
    y = d(x)
    u = scalar(unit)
    if y.dim() != 4 or y.shape[2] <= u or y.shape[3] <= u:
        raise ValueError(f"the output has shape {list(y.shape)}: it has no unit ({u}, {u}) to follow "
                         f"for a {scalar(size)}x{scalar(size)} input (expected a map [N, 1, H, W])")
    (grad,) = torch.autograd.grad(y[0, 0, u, u], x)
    mask = grad[0].abs().sum(dim=0) > 0
    return {"rows": plain(mask.any(dim=1)), "cols": plain(mask.any(dim=0)), "switched": np.array(switched)}


def d_params(ns, in_channels, ndf, n_layers):
    d = _discriminator(ns, in_channels, ndf, n_layers)
    return {"count": np.array(sum(p.numel() for p in d.parameters() if p.requires_grad), dtype=np.int64)}


def train(ns, a, b, iterations, batch_size, seed, lambda_identity):
    """The student's losses and PatchGAN in the trusted loop (see `common_probes.train_with_parts`)."""
    return train_with_parts("torch", ns, "PatchDiscriminator", lambda: torch.zeros(()), a, b, iterations, batch_size, seed,
                            lambda_identity)
