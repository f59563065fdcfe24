"""A network's weights as one flat float32 array, in a fixed order, for both frameworks.

The convention for trained weights coming back from the grader's worker: the
probe sends each network as `to_flat(trainer.weight_tensors(net))`, and the
grader cuts it by its own trusted network's shapes (`grading.unflatten`) and
`assign`s the pieces. Tensors are Keras variables or torch parameters and
buffers (`state_dict(keep_vars=True)`); no framework is imported here.
"""

from __future__ import annotations

import numpy as np


# Bound at import (the worker imports this before any student code runs), so that a notebook cell that
# patches builtins or numpy does not change what a tensor reads back as.
_hasattr, _getattr, _callable, _type, _isinstance = hasattr, getattr, callable, type, isinstance
_asarray, _ndarray = np.asarray, np.ndarray


def as_numpy(t) -> np.ndarray:
    """Any tensor (torch: detached, on the CPU; TensorFlow/Keras: .numpy()) or array-like as a numpy array:
    the one converter of the grader's probes, its worker and the trainers."""
    v = t
    if _type(v).__module__.startswith("torch"):
        for attr in ("detach", "cpu"):
            if _hasattr(v, attr) and _callable(_getattr(v, attr)):
                v = _getattr(v, attr)()
    if _hasattr(v, "numpy") and _callable(_getattr(v, "numpy")) and not _isinstance(v, _ndarray):
        try:
            v = _getattr(v, "numpy")()
        except Exception:  # noqa: BLE001 - a value without a concrete array (symbolic): asarray says what it is
            pass
    return _asarray(v)


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
