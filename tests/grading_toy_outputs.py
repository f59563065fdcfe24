"""A toy assignment (numpy only) shared by the tests of grading outputs and of the Gradescope autograder.

`write_toy_modules()` writes the module that registers "toy-py" and its probes
into a fresh folder that the grader's unprivileged worker can read; `toy_env`
puts it on PYTHONPATH and names it in GENCOURSE_ASSIGNMENT_MODULES for the
grader's processes. `toy_notebook` is a submission (or, with test cells, the
nbgrader source notebook).
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

TOY_ASSIGNMENT = '''
import numpy as np
from gencourse.grading import Assignment, Call, Check, Verdict, as_array, register

X = np.arange(4.0)

def _calls(probe):
    return lambda: [Call("y", probe, {"x": X})]

def _judge(want, points):
    def judge(replies):
        try:
            got = as_array(replies["y"], "y", X.shape)
        except ValueError as e:
            return Verdict(0.0, f"no usable output: {e}")
        if np.allclose(got, want(X)):
            return Verdict(points, "matches")
        return Verdict(0.0, f"expected {want(X).tolist()}, got {got.tolist()}")
    return judge

register(Assignment(
    name="toy", track="py", notebook="toy/toy_py.ipynb", probes="gencourse_toy_probes",
    setup_cells=["setup"], parts=["double", "square"], cpu_seconds=30, memory_mb=1024,
    checks=[Check("double doubles", "double", 2.0, _calls("double"), _judge(lambda x: 2 * x, 2.0)),
            Check("square squares", "square", 3.0, _calls("square"), _judge(lambda x: x * x, 3.0))]))
'''

TOY_PROBES = '''
import numpy as np

def double(namespace, x):
    return {"y": namespace["double"](np.asarray(x))}

def square(namespace, x):
    return {"y": namespace["square"](np.asarray(x))}
'''

TOY_HIDDEN = '''
import numpy as np
from gencourse.grading import Call, Check, Verdict, as_array

def checks(assignment):
    x = np.array([-3.0, 0.5])
    def judge(replies):
        try:
            got = as_array(replies["h"], "y", x.shape)
        except ValueError as e:
            return Verdict(0.0, str(e))
        ok = np.allclose(got, 2 * x)
        return Verdict(1.0 if ok else 0.0, "negative inputs too" if ok else "wrong on negative inputs")
    return [Check("double on hidden inputs", "double", 1.0, lambda: [Call("h", "double", {"x": x})],
                  judge, visible=False)]
'''


def _cell(kind, source, gid, solution=False, points=None):
    meta = {"nbgrader": {"grade": points is not None, "solution": solution, "locked": not solution,
                         "grade_id": gid, "schema_version": 3}}
    if points is not None:
        meta["nbgrader"]["points"] = points
    cell = {"cell_type": kind, "metadata": meta, "source": source}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def toy_notebook(square_body: str, test_cells: bool = False) -> dict:
    """The toy notebook with `square` returning `square_body`; `test_cells`: nbgrader's autograded tests too."""
    cells = [_cell("markdown", "# Toy", "intro"),
             _cell("code", "import numpy as np", "setup"),
             _cell("code", "def double(x):\n    return 2 * x\n", "double", solution=True),
             _cell("code", f"def square(x):\n    {square_body}\n", "square", solution=True)]
    if test_cells:
        cells.insert(3, _cell("code", "assert double(2) == 4", "test_double", points=3))
        cells.append(_cell("code", "assert square(3) == 9", "test_square", points=3))
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": cells}


def write_toy_modules() -> Path:
    """A fresh folder (mode 755, under the system temp dir) with the toy's assignment and probe modules."""
    modules = Path(tempfile.mkdtemp(prefix="gencourse-toy-modules-"))
    modules.chmod(0o755)
    for name, text in (("gencourse_toy_assignment.py", TOY_ASSIGNMENT), ("gencourse_toy_probes.py", TOY_PROBES)):
        (modules / name).write_text(textwrap.dedent(text))
        (modules / name).chmod(0o644)
    return modules


def toy_env(modules: Path, env: dict | None = None) -> dict:
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(modules), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["GENCOURSE_ASSIGNMENT_MODULES"] = "gencourse_toy_assignment"
    return env


