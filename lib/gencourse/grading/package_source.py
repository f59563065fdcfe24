"""The package's own modules read from disk, never imported: where a dotted name lives, what a module
re-exports (its top-level imports), so that the grader can follow `trainer.tm.Net` to the module
that implements it (grading/integrity.py)."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = "gencourse"


@lru_cache(maxsize=1)
def package_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def module_file(name: str) -> Path | None:
    """The file of the package module `name` (gencourse.a.b), found on disk without importing it."""
    if name != ROOT and not name.startswith(ROOT + "."):
        return None
    base = package_dir().joinpath(*name.split(".")[1:])
    for f in (base / "__init__.py", base.with_suffix(".py")):
        if f.is_file():
            return f
    return None


@lru_cache(maxsize=256)
def module_bindings(name: str) -> dict[str, str]:
    """A package module's top-level imports: local name -> dotted target ("gencourse.x.y[.attr]")."""
    f = module_file(name)
    if f is None:
        return {}
    is_pkg = f.name == "__init__.py"
    try:
        tree = ast.parse(f.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    return bindings(tree.body, name if is_pkg else name.rpartition(".")[0])


def bindings(body, package: str) -> dict[str, str]:
    """Import statements `body` (of a module in `package`) as local name -> dotted target."""
    out: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for a in node.names:
                if a.name != "*":
                    out[a.asname or a.name] = f"{base}.{a.name}"
    return out


def resolve(dotted: str, depth: int = 0) -> tuple[str, str] | None:
    """(module, what dotted names in it) for a package name, following the modules' re-exports:
    gencourse.T.torch_track.tm.Net -> ("gencourse.T.torch_models", "gencourse.T.torch_models.Net")."""
    parts = dotted.split(".")
    if parts[0] != ROOT or depth > 8:
        return None
    module = ROOT
    for i, p in enumerate(parts[1:], start=1):
        sub = f"{module}.{p}"
        if module_file(sub) is not None:
            module = sub
            continue
        target = module_bindings(module).get(p)
        if target and target.startswith(ROOT):
            rest = ".".join([target] + parts[i + 1:])
            return resolve(rest, depth + 1) or (module, dotted)
        return module, dotted
    return module, dotted
