"""Fitting a small synthesis network to digits from fixed codes (GLO-style), with layers plugged in.

The StyleGAN notebook's demo and its assignment's convergence check share this: the
package's SynthesisNetwork at 16x16 (FIT_NETWORK), every LayerEpilogue's AdaIN and
noise replaced by a student's classes (`plug`), and the fixed codes and digits it is
fitted to (`fit_data`). It lives with the topic, not with the grader, so a notebook
cell imports nothing from the assignment's checks.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# 16x16, 6 styled layers, 32 channels everywhere.
FIT_NETWORK = {"resolution": 16, "w_dim": 32, "channels": 1, "fmap_base": 512, "fmap_max": 32}


def epilogues(net) -> list:
    """The synthesis network's LayerEpilogues, in the order of its styles."""
    return [net.input_epilogue] + [conv.epilogue for conv in net.convs]


def plug(net, adain_cls, noise_cls, w_dim: int) -> list[tuple]:
    """Replace every epilogue's noise and AdaIN with new ones of the given classes; [(old layer, new layer)]."""
    swapped = []
    for epi in epilogues(net):
        channels = int(epi.bias.shape[0])
        new_noise, new_adain = noise_cls(channels), adain_cls(channels, w_dim)
        swapped += [(epi.noise, new_noise), (epi.adain, new_adain)]
        epi.noise, epi.adain = new_noise, new_adain
    return swapped


@lru_cache(maxsize=4)
def fit_data(n_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes w [n, 32], digits [n, 16, 16, 1] in [-1, 1]): the first embedded training digits,
    padded to 32x32 and average-pooled to 16x16; the codes N(0, 1) from `seed + 1`."""
    from ..data.mnist import embedded_subset

    x = embedded_subset().x_train[:n_images].astype(np.float32) / 127.5 - 1.0
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    x = x.reshape(n_images, 16, 2, 16, 2).mean(axis=(2, 4))[..., None]
    ws = np.random.default_rng(seed + 1).standard_normal((n_images, FIT_NETWORK["w_dim"])).astype(np.float32)
    return ws, x.astype(np.float32)
