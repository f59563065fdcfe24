"""A toy assignment for the grader's own tests: numpy only, three parts, small limits.

Parts: `square(x)`, `normalize(x)` (rows to mean 0, std 1) and `scale(x)`
(times SCALE from the locked setup cell). `make_notebook` writes a notebook
with nbgrader metadata and the given part sources, as a student would submit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gencourse.grading import Assignment, Call, Check, Verdict, as_array, register

HERE = Path(__file__).resolve().parent
SOLUTIONS = HERE / "solutions"
KEY = "toy-np"

SETUP = "import numpy as np\nSCALE = 3.0\n"
SOLUTION = {
    "square": "def square(x):\n    return x ** 2\n",
    "normalize": "def normalize(x):\n    x = np.asarray(x, dtype=float)\n"
                 "    return (x - x.mean(axis=-1, keepdims=True)) / x.std(axis=-1, keepdims=True)\n",
    "scale": "def scale(x):\n    return SCALE * x\n",
}
TODO = {name: f"def {name}(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n" for name in SOLUTION}

ORACLES = {
    "square": lambda x: x ** 2,
    "normalize": lambda x: (x - x.mean(axis=-1, keepdims=True)) / x.std(axis=-1, keepdims=True),
    "scale": lambda x: 3.0 * x,
}


def toy_check(name: str, part: str, points: float, shape: tuple, seed: int, visible: bool = True) -> Check:
    key = f"{part}-{seed}"

    def calls():
        x = np.random.default_rng(seed).normal(size=shape)
        return [Call(key=key, probe=part, inputs={"x": x})]

    def judge(replies):
        reply = replies[key]
        if reply.error and "NotImplementedError" in reply.error:
            return Verdict(0.0, "not implemented yet: the cell still raises NotImplementedError")
        if reply.error:
            return Verdict(0.0, f"your code raised an error: {reply.error}")
        try:
            y = as_array(reply, "y", shape)
        except ValueError as e:
            return Verdict(0.0, str(e))
        expected = ORACLES[part](calls()[0].inputs["x"])
        err = float(np.max(np.abs(y - expected)) / max(1.0, float(np.max(np.abs(expected)))))
        if err < 1e-6:
            return Verdict(float(points), "correct")
        return Verdict(0.0, f"wrong values: expected {expected.ravel()[:3]}, got {y.ravel()[:3]}")

    return Check(name=name, part=part, points=points, calls=calls, judge=judge, visible=visible)


def make_assignment() -> Assignment:
    return Assignment(
        name="toy", track="np", notebook="toy/toy.ipynb", probes="grading_toy_probes",
        setup_cells=["setup"], parts=["square", "normalize", "scale"],
        checks=[toy_check("square of a vector", "square", 2, (5,), 1),
                toy_check("normalize rows", "normalize", 3, (4, 6), 2),
                toy_check("scale by SCALE", "scale", 1, (3,), 3)],
        cpu_seconds=2, memory_mb=512,
    )


ASSIGNMENT = register(make_assignment())

HIDDEN_CHECKS = '''
from grading_toy import toy_check


def checks(assignment):
    return [toy_check("square of a matrix (hidden)", "square", 1, (3, 3), 11, visible=False),
            toy_check("normalize a long row (hidden)", "normalize", 1, (1, 50), 12, visible=False)]
'''


def cell(grade_id: str, source: str, *, solution: bool, cell_type: str = "code") -> dict:
    c = {"cell_type": cell_type, "metadata": {"nbgrader": {
        "grade_id": grade_id, "solution": solution, "locked": not solution, "grade": False,
        "schema_version": 3}}, "source": source}
    if cell_type == "code":
        c.update(execution_count=None, outputs=[])
    return c


def make_notebook(path, parts: dict | None = None, *, setup: str = SETUP, drop=(), retype=(), extra=()) -> Path:
    """Write a toy notebook: the given part sources (default: the solution), minus `drop`."""
    parts = {**SOLUTION, **(parts or {})}
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "# Toy assignment"},
             cell("setup", setup, solution=False)]
    for name in ("square", "normalize", "scale"):
        if name in drop:
            continue
        cells.append(cell(name, parts[name], solution=True,
                          cell_type="markdown" if name in retype else "code"))
    cells += list(extra)
    nb = {"nbformat": 4, "nbformat_minor": 5, "cells": cells,
          "metadata": {"gencourse": {"assignment": KEY},
                       "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


if __name__ == "__main__":
    make_notebook(SOLUTIONS / "toy" / "toy.ipynb")
