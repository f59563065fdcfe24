"""A network's weights as one flat float32 array, in a fixed order, for both frameworks.

The convention for trained weights coming back from the grader's worker: the
probe sends each network as `to_flat(trainer.weight_tensors(net))`, and the
grader cuts it by its own trusted network's shapes (`grading.unflatten`) and
`assign`s the pieces. Tensors are Keras variables or torch parameters and
buffers (`state_dict(keep_vars=True)`); no framework is imported here.
"""

from __future__ import annotations

import numpy as np


def as_numpy(t) -> np.ndarray:
    if hasattr(t, "detach"):                  # torch
        return t.detach().cpu().numpy()
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def to_flat(tensors) -> np.ndarray:
    tensors = list(tensors)
    if not tensors:
        return np.zeros(0, np.float32)
    return np.concatenate([as_numpy(t).astype(np.float32).ravel() for t in tensors])


def shapes(tensors) -> list[tuple]:
    return [tuple(int(d) for d in t.shape) for t in tensors]


def assign(tensors, arrays) -> None:
    """Copy numpy `arrays` into `tensors` (same order and shapes)."""
    for t, a in zip(tensors, arrays, strict=True):
        if hasattr(t, "assign"):              # a Keras / TF variable
            t.assign(np.asarray(a, dtype=t.dtype.name if hasattr(t.dtype, "name") else None))
        else:                                  # a torch parameter or buffer
            import torch

            with torch.no_grad():
                t.copy_(torch.as_tensor(np.asarray(a)).to(t.dtype))
