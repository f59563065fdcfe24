"""What every assignment's probes use; probes run inside the isolated worker, against a student's namespace.

A probe turns grader-chosen numpy arrays into framework tensors, calls the
student's function or layer, and returns plain numpy arrays. It judges
nothing: the checks in the grader's process compare what comes back with the
oracles. A probe that cannot find a part raises NameError with a message a
student understands; anything the student's code raises passes through as is.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import random
import sys

import numpy as np

from ..weights import as_numpy


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
    """Whatever a student's code returned, as a numpy array (tensors included: weights.as_numpy)."""
    return np.asarray(as_numpy(value), dtype=dtype)


def keeping(fn, *args, **kwargs):
    """fn(*args, **kwargs), and one flag per positional argument: 1 where fn changed that argument's values in place (a torch
    tensor or numpy array written into), for a part whose inputs the notebook uses again."""
    tensor = lambda a: hasattr(a, "detach") or hasattr(a, "numpy") or isinstance(a, np.ndarray)  # noqa: E731
    before = [plain(a).copy() if tensor(a) else None for a in args]
    result = fn(*args, **kwargs)
    changed = [0.0 if b is None else float(not np.array_equal(b, plain(a), equal_nan=True))
               for a, b in zip(args, before)]
    return result, np.array(changed, np.float64)


def shape_table(values, rank: int = 4) -> np.ndarray:
    """[n, 1 + rank]: the number of dimensions and the dimensions (zero-padded) of each value (a tuple, a
    list or one value), for the judges of shapes a TODO names."""
    values = values if isinstance(values, (tuple, list)) else [values]
    rows = []
    for v in values:
        dims = [int(d) for d in (v.shape if hasattr(v, "shape") else np.shape(v))][:rank]
        rows.append([len(dims), *dims, *[0] * (rank - len(dims))])
    return np.array(rows, np.int64).reshape(-1, 1 + rank)


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


def reseed(seed: int = 0) -> None:
    """Every random source a probe's run can draw from, reset to `seed`: Python's, numpy's global
    generator, PyTorch's and Keras/TensorFlow's (with TensorFlow's op determinism) where loaded.
    A part that draws without a seed of its own (a Keras SeedGenerator(None) takes Python's random
    state; torch.randn the global generator) then draws the same numbers in every grading."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "tensorflow" in sys.modules:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()


def reseeded(probes: dict) -> None:
    """Each probe (a public function whose first parameter is `ns`) of a probe module's globals starts
    from `reseed(its "seed" input, else 0)`: what one call draws then depends neither on the calls
    before it nor on the run."""
    for name, fn in list(probes.items()):
        if name.startswith("_") or not inspect.isfunction(fn) or getattr(fn, "reseeds", False):
            continue
        params = list(inspect.signature(fn).parameters)
        if not params or params[0] != "ns":
            continue

        @functools.wraps(fn)
        def probe(ns, *args, _fn=fn, **kwargs):
            reseed(scalar(kwargs["seed"]) if "seed" in kwargs else 0)
            return _fn(ns, *args, **kwargs)

        probe.reseeds = True
        probes[name] = probe
