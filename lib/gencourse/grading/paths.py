"""Where a course's files are: the project root, its source notebooks and its hidden checks.

The project root is `$GENCOURSE_ROOT`, or else the checkout the package was
installed from (the folder above `lib/` when it holds `pyproject.toml` and
`solutions/`). An installed wheel (Gradescope's container) has no root: the
grader is then told where the notebooks and hidden checks are.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def project_root() -> Path | None:
    env = os.environ.get("GENCOURSE_ROOT")
    if env:
        return Path(env)
    root = _PACKAGE.parents[1]
    if (root / "pyproject.toml").is_file() and (root / "solutions").is_dir():
        return root
    return None


def default_hidden_dir() -> Path | None:
    """$GENCOURSE_HIDDEN_DIR, or the project's autograder/hidden/ (None when neither exists)."""
    env = os.environ.get("GENCOURSE_HIDDEN_DIR")
    root = project_root()
    d = Path(env) if env else (root / "autograder" / "hidden" if root else None)
    return d if d is not None and d.is_dir() else None


def solutions_candidates(explicit=None) -> list[Path]:
    """Folders to look for source notebooks in, first to last."""
    root = project_root()
    found = [explicit, os.environ.get("GENCOURSE_SOLUTIONS"), root / "solutions" if root else None,
             Path.cwd() / "solutions"]
    return [Path(d) for d in found if d]


def find_source_notebook(notebook: str, explicit=None) -> Path | None:
    """solutions/<notebook> (e.g. "NAME/NAME_TRACK.ipynb") in the first folder that has it."""
    for d in solutions_candidates(explicit):
        if (d / notebook).is_file():
            return d / notebook
    return None


def private_folders() -> list[Path]:
    """What the worker must never see of the project: its hidden checks and source notebooks."""
    root = project_root()
    return [root / "autograder", root / "solutions"] if root else []
