"""A StyleGAN generator's weights as named numpy arrays, and their way into either track.

The arrays are the PyTorch generator's state_dict (torch layout: [out, in] dense, [out, in,
kh, kw] convolutions, [1, C, 4, 4] constant) plus the `w_avg` buffer, so a torch
generator loads them as they are; `to_keras` sends each to its Keras twin in
tf_models' weight order (the same order as torch's parameters, see tf_models), with
the kernels transposed to Keras' [in, out] and [kh, kw, in, out] and the constant to
[1, 4, 4, C]. Plain float32 arrays only (an .npz without pickle), nothing else is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def keras_layout(name: str, a: np.ndarray) -> np.ndarray:
    """A torch parameter (or its gradient) in the layout of its Keras twin."""
    if name.endswith("const"):          # [1, C, 4, 4] -> [1, 4, 4, C]
        return a.transpose(0, 2, 3, 1)
    if a.ndim == 4:                     # [out, in, kh, kw] -> [kh, kw, in, out]
        return a.transpose(2, 3, 1, 0)
    if a.ndim == 2:                     # [out, in] -> [in, out]
        return a.T
    return a


def from_torch(module) -> dict[str, np.ndarray]:
    """{state_dict name: float32 array} of a torch module (parameters and buffers)."""
    return {k: np.ascontiguousarray(v.detach().cpu().numpy(), np.float32)
            for k, v in module.state_dict().items()}


def to_torch(arrays: dict[str, np.ndarray], module) -> None:
    """Load named arrays into a torch module; every name and shape must match."""
    import torch

    module.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in arrays.items()})


def to_keras(arrays: dict[str, np.ndarray], model) -> None:
    """Load named torch-layout arrays into the Keras twin (tf_models) of their network.

    The parameters go to `model.trainable_weights` in order; a `w_avg` array goes to
    model.w_avg. Refuses arrays whose count, shape or kind (bias or not) do not match.
    """
    params = [(k, v) for k, v in arrays.items() if k != "w_avg"]
    weights = model.trainable_weights
    if len(params) != len(weights):
        raise ValueError(f"{len(params)} arrays for {len(weights)} Keras weights")
    for (name, a), v in zip(params, weights):
        a = keras_layout(name, np.asarray(a, np.float32))
        if a.shape != tuple(v.shape) or name.endswith("bias") != v.path.endswith("bias"):
            raise ValueError(f"{name} {a.shape} does not fit Keras weight {v.path} {tuple(v.shape)}")
        v.assign(a)
    if "w_avg" in arrays:
        model.w_avg.assign(np.asarray(arrays["w_avg"], np.float32))


def save(path, arrays: dict[str, np.ndarray]) -> Path:
    """Write named float32 arrays to a compressed .npz (no pickled objects)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    return path


def load(path) -> dict[str, np.ndarray]:
    """Named arrays from an .npz written by `save`, in their stored order, never unpickling."""
    with np.load(path, allow_pickle=False) as saved:
        return {k: saved[k] for k in saved.files}
