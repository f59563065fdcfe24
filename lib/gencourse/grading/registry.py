"""The assignments the grader knows, by key "NAME-TRACK".

The package's assignments are listed in one explicit table,
`gencourse.assignments.TABLE` (name -> module); each module's
`assignments()` gives one `Assignment` per track. Other assignments (an
instructor's own, the tests' toys) come from modules named in
`$GENCOURSE_ASSIGNMENT_MODULES` (comma-separated) or passed in, which
`register` theirs when imported or define `assignments()` too.
"""

from __future__ import annotations

import importlib
import os

from .contract import Assignment

REGISTRY: dict[str, Assignment] = {}


def register(assignment: Assignment) -> Assignment:
    REGISTRY[assignment.key] = assignment
    return assignment


def _load(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for a in getattr(module, "assignments", lambda: [])():
        REGISTRY.setdefault(a.key, a)


def _table() -> dict[str, str]:
    from .. import assignments

    return dict(assignments.TABLE)


def get_assignment(key: str, modules=()) -> Assignment:
    """The assignment `key`, loading the table's module of its name or the extra modules."""
    if key in REGISTRY:
        return REGISTRY[key]
    table = _table()
    name = key.rsplit("-", 1)[0]
    if name in table:
        _load(table[name])
    extra = [*modules, *[m for m in os.environ.get("GENCOURSE_ASSIGNMENT_MODULES", "").split(",") if m]]
    for module in extra:
        if key in REGISTRY:
            break
        _load(module)
    if key not in REGISTRY:
        known = ", ".join(known_keys()) or "none"
        raise ValueError(f"unknown assignment {key!r} (known: {known})")
    return REGISTRY[key]


def known_keys() -> list[str]:
    """Every assignment key of the table (and any registered), sorted."""
    for module in _table().values():
        _load(module)
    return sorted(REGISTRY)


def defining_modules(assignment: Assignment) -> list[str]:
    """Modules that define the assignment's checks, for a fresh process (the supervisor) to import."""
    mods = []
    for c in assignment.checks:
        for fn in (c.calls, c.judge):
            m = getattr(fn, "__module__", None)
            if m and m != "__main__" and m not in mods:
                mods.append(m)
    return mods
