"""Probes of the CycleGAN assignment, PyTorch track (run in the worker).

Student parts: `ResnetGenerator(in_channels, out_channels, ngf, n_blocks)` and `PatchDiscriminator(in_channels,
ndf, n_layers)` (nn.Modules), `generator_adversarial_loss(d_fake, gan_mode)`, `discriminator_loss(d_real,
d_fake, gan_mode)`, `cycle_consistency_loss(real_a, reconstructed_a, real_b, reconstructed_b, lambda_cycle)`,
`identity_loss(real, same, lambda_identity)`, `training_step(...)` and
`semantic_consistency_loss(logits, labels, weight)`. Images come from the grader as NHWC arrays and go to the
student as NCHW tensors; shapes go back in the grader's NHWC order.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch.nn import functional as F

from ...grading.tracing import probe_network
from ...grading.probing import part, plain, scalar, reseeded
from .. import torch_models as tm
from ..torch_track import HistoryPool
from . import torch_step
from .common_probes import finite, step_probe, train_probe
from .loss_checks import GAN_MODES

def _images(a, grad=False):
    return torch.tensor(np.asarray(a, np.float32).transpose(0, 3, 1, 2), requires_grad=grad)


def _grad_back(loss, tensors, layout=True):
    """Gradients of `loss` for `tensors` (as NHWC arrays when `layout`), and a 0/1 flag per tensor that got none."""
    grads = [None] * len(tensors)
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        grads = torch.autograd.grad(loss.sum(), tensors, allow_unused=True, retain_graph=True)
    missing = np.array([g is None for g in grads], dtype=np.float64)
    back = (lambda t: t.permute(0, 2, 3, 1)) if layout else (lambda t: t)
    arrays = [np.zeros(tuple(back(t).shape)) if g is None else plain(back(g)) for g, t in zip(grads, tensors)]
    return arrays, missing


def _float32(loss) -> np.ndarray:
    return np.array(float(isinstance(loss, torch.Tensor) and loss.dtype == torch.float32))


def cycle(ns, real_a, reconstructed_a, real_b, reconstructed_b, lambda_cycle):
    fn = part(ns, "cycle_consistency_loss")
    ra, rb = _images(real_a), _images(real_b)
    ca, cb = _images(reconstructed_a, True), _images(reconstructed_b, True)
    loss = fn(ra, ca, rb, cb, scalar(lambda_cycle, float))
    (ga, gb), missing = _grad_back(loss, [ca, cb])
    return {"loss": plain(loss), "grad_a": ga, "grad_b": gb, "missing": missing}


def identity(ns, real, same, lambda_identity):
    fn = part(ns, "identity_loss")
    s = _images(same, True)
    loss = fn(_images(real), s, scalar(lambda_identity, float))
    (grad,), missing = _grad_back(loss, [s])
    return {"loss": plain(loss), "grad": grad, "missing": missing}


def adversarial(ns, d_real, d_fake, gan_mode):
    mode = GAN_MODES[scalar(gan_mode)]
    real, fake = _images(d_real, True), _images(d_fake, True)
    g = part(ns, "generator_adversarial_loss")(fake, mode)
    (g_grad,), missing = _grad_back(g, [fake])
    d = part(ns, "discriminator_loss")(real, fake, mode)
    (d_grad_real, d_grad_fake), d_missing = _grad_back(d, [real, fake])
    return finite({"g_loss": plain(g), "g_grad": g_grad, "missing": missing, "d_loss": plain(d),
                   "d_grad_real": d_grad_real, "d_grad_fake": d_grad_fake, "d_missing": d_missing,
                   "float32": np.array(float(_float32(g) and _float32(d)))}, "g_loss", "d_loss")


def semantic(ns, logits, labels, weight):
    z = torch.tensor(np.asarray(logits, np.float32), requires_grad=True)
    loss = part(ns, "semantic_consistency_loss")(z, torch.from_numpy(np.asarray(labels, np.int64)),
                                                 scalar(weight, float))
    (grad,), missing = _grad_back(loss, [z], layout=False)
    return finite({"loss": plain(loss), "grad": grad, "missing": missing, "float32": _float32(loss)}, "loss")


def _generator(ns, in_channels, out_channels, ngf, n_blocks):
    cls = part(ns, "ResnetGenerator")
    return cls(in_channels=scalar(in_channels), out_channels=scalar(out_channels), ngf=scalar(ngf),
               n_blocks=scalar(n_blocks))


def g_shapes(ns, shapes, in_channels, out_channels, ngf, n_blocks, seed):
    """Output shapes (as NHWC) and ranges for batches of each (N, H, W), and whether they are float32."""
    torch.manual_seed(scalar(seed))
    g = _generator(ns, in_channels, out_channels, ngf, n_blocks)
    rng, out, dtypes = np.random.default_rng(scalar(seed)), {}, []
    with torch.no_grad():
        for i, (n, h, w) in enumerate(np.asarray(shapes)):
            y = g(_images(rng.uniform(-1, 1, (int(n), int(h), int(w), scalar(in_channels)))))
            shape = tuple(y.shape)
            out[f"shape{i}"] = np.array(shape[:1] + shape[2:] + shape[1:2] if len(shape) == 4 else shape)
            out[f"range{i}"] = np.array([float(y.min()), float(y.max())])
            dtypes.append(y.dtype == torch.float32)
    out["float32"] = np.array(float(all(dtypes)))
    return out


def g_params(ns, in_channels, out_channels, ngf, n_blocks):
    g = _generator(ns, in_channels, out_channels, ngf, n_blocks)
    return {"count": np.array(sum(p.numel() for p in g.parameters() if p.requires_grad), dtype=np.int64)}


def g_network(ns, x, weights_flat, weights_table, structure, in_channels, out_channels, ngf, n_blocks, **_):
    return probe_network(_generator(ns, in_channels, out_channels, ngf, n_blocks), x, weights_flat, weights_table,
                         structure)


def _discriminator(ns, in_channels, ndf, n_layers):
    cls = part(ns, "PatchDiscriminator")
    return cls(in_channels=scalar(in_channels), ndf=scalar(ndf), n_layers=scalar(n_layers))


def d_network(ns, x, weights_flat, weights_table, structure, in_channels, ndf, n_layers, **_):
    return probe_network(_discriminator(ns, in_channels, ndf, n_layers), x, weights_flat, weights_table, structure)


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


FUNCTIONAL_NORMS = ("instance_norm", "batch_norm", "group_norm", "layer_norm")


@contextlib.contextmanager
def _norms_off(calls: list):
    """torch.nn.functional's normalizations pass their input on (and count in `calls`) while the block runs:
    the norm modules call them, and so does a forward that normalizes with F.instance_norm itself."""
    saved = {name: getattr(F, name) for name in FUNCTIONAL_NORMS}
    for name in FUNCTIONAL_NORMS:
        setattr(F, name, lambda input, *args, **kwargs: calls.append(1) or input)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(F, name, fn)


def d_receptive_field(ns, size, unit, in_channels, ndf, n_layers, seed):
    """Which input rows and columns the gradient of output unit (unit, unit) reaches.

    Normalizations are switched off (modules and functional calls alike, `_norms_off`):
    their statistics couple every pixel, which would hide the convolutions' field.
    """
    d = _discriminator(ns, in_channels, ndf, n_layers).double()
    calls: list = []
    rng = np.random.default_rng(scalar(seed))
    x = _images(rng.normal(size=(1, scalar(size), scalar(size), scalar(in_channels)))).double().requires_grad_()
    with _norms_off(calls):
        y = d(x)
    u = scalar(unit)
    if y.dim() != 4 or y.shape[2] <= u or y.shape[3] <= u:
        return {"no_unit": np.array([y.shape[0], *y.shape[2:], y.shape[1]] if y.dim() == 4 else list(y.shape),
                                    np.float64)}                    # NHWC, as the grader speaks
    (grad,) = torch.autograd.grad(y[0, 0, u, u], x)
    mask = grad[0].abs().sum(dim=0) > 0
    return {"rows": plain(mask.any(dim=1)), "cols": plain(mask.any(dim=0)), "switched": np.array(len(calls))}


def d_params(ns, in_channels, ndf, n_layers):
    d = _discriminator(ns, in_channels, ndf, n_layers)
    return {"count": np.array(sum(p.numel() for p in d.parameters() if p.requires_grad), dtype=np.int64)}


def _two_way_cycle(real_a, rec_a, real_b, rec_b, lambda_cycle=10.0):
    return tm.cycle_consistency_loss(real_a, rec_a, lambda_cycle) + tm.cycle_consistency_loss(real_b, rec_b, lambda_cycle)


TRUSTED_LOSSES = {"generator_adversarial_loss": tm.generator_adversarial_loss,
                  "discriminator_loss": tm.discriminator_loss, "cycle_consistency_loss": _two_way_cycle,
                  "identity_loss": tm.identity_loss, "semantic_consistency_loss": tm.semantic_consistency_loss}


def step(ns, **inputs):
    """Two iterations of the student's training_step with the package's losses (see common_probes.step_probe)."""
    return step_probe(torch_step, ns, inputs, losses=TRUSTED_LOSSES,
                      sgd=lambda params, lr: torch.optim.SGD(params, lr=lr), pool_cls=HistoryPool,
                      graph_error=(RuntimeError,))


def train(ns, a, b, iterations, batch_size, seed, lambda_identity):
    """The student's losses and training_step on the package's networks (see common_probes.train_probe)."""
    return train_probe(torch_step, ns, a, b, iterations, batch_size, seed, lambda_identity,
                       adam=lambda params: torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999)),
                       pool_cls=HistoryPool)


reseeded(globals())   # every probe above starts from the same random state in every run
