"""What every assignment's probes use; probes run inside the isolated worker, against a student's namespace.

A probe turns grader-chosen numpy arrays into framework tensors, calls the
student's function or layer, and returns plain numpy arrays. It judges
nothing: the checks in the grader's process compare what comes back with the
oracles. A probe that cannot find a part raises NameError with a message a
student understands; anything the student's code raises passes through as is.
"""

from __future__ import annotations

import contextlib

import numpy as np


def part(namespace: dict, name: str):
    """The object `name` defined by the student's cells, or a clear NameError."""
    if name not in namespace:
        raise NameError(f"`{name}` is not defined: run the cell that defines it "
                        f"(and keep its name `{name}`)")
    return namespace[name]


def scalar(value, kind=int):
    """A plain Python number from a 0-d array input."""
    return kind(np.asarray(value).reshape(()))


def plain(value, dtype=np.float64) -> np.ndarray:
    """Whatever a student's code returned, as a numpy array (tensors included)."""
    if hasattr(value, "detach"):            # torch.Tensor
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy"):           # tf.Tensor, keras variables
        value = value.numpy()
    return np.asarray(value, dtype=dtype)


HANDED: list[int] = []   # ids of the package's objects a probe put in the namespace now (grading/guard.py)


@contextlib.contextmanager
def substituted(namespace: dict, **parts):
    """The student's names replaced by the package's own while a probe runs: for a check that judges how
    one part composes others (so a mistake in those costs their checks only), restored afterwards."""
    missing = object()
    saved = {name: namespace.get(name, missing) for name in parts}
    namespace.update(parts)
    handed = [id(v) for v in parts.values()]
    HANDED.extend(handed)
    try:
        yield
    finally:
        for i in handed:
            HANDED.remove(i)
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value
