"""Copy a network's weights from the PyTorch track into its Keras twin.

The two tracks build the same layers in the same order (cyclegan/common.py),
so convolutions (and affine instance norms) pair up one to one; only the kernel
layout differs: torch (out, in, kh, kw), transposed (in, out, kh, kw) -> Keras
(kh, kw, in, out), (kh, kw, out, in). Used to check that both tracks compute
the same thing, and to move a trained model across.
"""

from __future__ import annotations

import keras
from torch import nn

from .tf_layers import InstanceNormalization


def torch_to_keras(tmodel: nn.Module, kmodel) -> None:
    """Set every convolution and affine instance norm of `kmodel` from `tmodel`."""
    src = [m for m in tmodel.modules()
           if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
           or (isinstance(m, nn.InstanceNorm2d) and m.affine)]
    dst = [layer for layer in kmodel.layers
           if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
           or (isinstance(layer, InstanceNormalization) and layer.affine)]
    if len(src) != len(dst):
        raise ValueError(f"the networks differ: {len(src)} weighted layers in torch, {len(dst)} in Keras")
    for t, k in zip(src, dst):
        if isinstance(t, nn.InstanceNorm2d):
            k.set_weights([t.weight.detach().cpu().numpy(), t.bias.detach().cpu().numpy()])
            continue
        weights = [t.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)]
        if t.bias is not None:
            weights.append(t.bias.detach().cpu().numpy())
        if [w.shape for w in weights] != [tuple(w.shape) for w in k.get_weights()]:
            raise ValueError(f"{k.name}: shapes {[tuple(w.shape) for w in k.get_weights()]} in Keras, "
                             f"{[w.shape for w in weights]} from torch")
        k.set_weights(weights)
