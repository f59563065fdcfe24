"""The checks of one grading run: the assignment's visible ones and its hidden ones.

Hidden checks are `autograder/hidden/<key>.py` or `<name>.py` (a function
`checks(assignment)`), loaded by path in the grader's process only; the file
and its folder are made unreadable for other users before it is imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .contract import Assignment, Check
from .paths import default_hidden_dir
from .sandbox import protect


def hidden_file(assignment: Assignment, hidden_dir) -> Path | None:
    if hidden_dir is None:
        return None
    for name in (f"{assignment.key}.py", f"{assignment.name}.py"):
        p = Path(hidden_dir) / name
        if p.is_file():
            return p
    return None


def load_hidden_checks(assignment: Assignment, path: Path) -> list[Check]:
    """`checks(assignment)` of the hidden-checks file, loaded by path; only its hidden checks."""
    protect(path)
    protect(path.parent)
    spec = importlib.util.spec_from_file_location(f"gencourse_hidden_{assignment.name}_{assignment.track}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [c for c in module.checks(assignment) if not c.visible]


def collect_checks(assignment: Assignment, *, visible_only=False, hidden_dir=None) -> tuple[list[Check], list[str], Path | None]:
    """The visible checks and (unless visible_only) the hidden ones; notes on what went wrong."""
    checks = [c for c in assignment.checks if c.visible]
    notes: list[str] = []
    path = None
    if not visible_only:
        hdir = hidden_dir if hidden_dir is not None else default_hidden_dir()
        path = hidden_file(assignment, hdir)
        if path is not None:
            try:
                checks += load_hidden_checks(assignment, path)
            except Exception as e:  # noqa: BLE001 - an instructor's bug, reported, not raised
                notes.append(f"grader error: the hidden checks in {path.name} could not be loaded "
                             f"({type(e).__name__}: {e}); only the visible checks were run")
        elif hidden_dir is not None:
            notes.append(f"grader note: no hidden checks for {assignment.key} in {hidden_dir}")
    if not assignment.slow_checks:
        checks = [c for c in checks if not c.slow]
    return checks, notes, path
