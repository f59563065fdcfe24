"""Probes of the toy assignment (run inside the worker): call the student's function, return arrays."""

from gencourse.grading.probing import reseeded


def _part(ns, name):
    if name not in ns:
        raise NameError(f"`{name}` is not defined: run the cell that defines it")
    return ns[name]


def square(ns, x):
    return {"y": _part(ns, "square")(x)}


def normalize(ns, x):
    return {"y": _part(ns, "normalize")(x)}


def scale(ns, x):
    return {"y": _part(ns, "scale")(x)}


reseeded(globals())
