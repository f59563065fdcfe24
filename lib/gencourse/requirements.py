"""The package's declared requirements, read from a source tree's pyproject.toml.

pyproject.toml is the one source of truth for pins: the Gradescope image installs the
torch extra's pin from it, and benchmarks/platforms.py asks pip to resolve its extras
for students' platforms. Python 3.10 has no tomllib: the `tomli` backport (declared
for it in the grading extra) reads the file there.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:                                    # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def project(pyproject) -> dict:
    """The [project] table of `pyproject` (a path to pyproject.toml)."""
    return tomllib.loads(Path(pyproject).read_text())["project"]


def name_of(requirement: str) -> str:
    """The distribution a requirement string names ("torch==2.13.0; ..." -> "torch")."""
    return NAME.match(requirement).group(1).lower().replace("_", "-")


def requirements(pyproject, extras=()) -> list[str]:
    """The base dependencies and those of `extras`, the package's references to its own extras
    (gencourse[tf,torch]) expanded; KeyError naming the extras there are for an unknown one."""
    meta = project(pyproject)
    optional = meta.get("optional-dependencies", {})
    own = re.compile(rf"{re.escape(meta['name'])}\[([^\]]+)\]$")
    out, todo, seen = list(meta.get("dependencies", [])), list(extras), set()
    while todo:
        extra = todo.pop(0).strip()
        if extra in seen:
            continue
        if extra not in optional:
            raise KeyError(f"{pyproject}: no extra {extra!r} (there are {', '.join(sorted(optional))})")
        seen.add(extra)
        for req in optional[extra]:
            nested = own.match(req.replace(" ", ""))
            if nested:
                todo += nested.group(1).split(",")
            elif req not in out:
                out.append(req)
    return out


def pin(pyproject, extra: str, name: str) -> str:
    """The requirement of `extra` that names `name` (the torch extra's "torch==2.13.0")."""
    found = [r for r in project(pyproject).get("optional-dependencies", {}).get(extra, [])
             if name_of(r) == name]
    if len(found) != 1:
        raise KeyError(f"{pyproject}: the {extra!r} extra has {len(found)} requirements of {name}, not one")
    return found[0]
