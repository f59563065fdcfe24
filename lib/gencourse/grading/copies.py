"""Copies of the package's text: a student's definition whose syntax tree equals one of a solution module
(names, argument names, docstrings and annotations aside), with 8 or more lines of the student's own;
flagged for a person, never zeroed: short correct answers coincide by nature (grading/integrity.py)."""

from __future__ import annotations

import ast
from functools import lru_cache

from .package_source import module_file, package_dir

COPY_LINES = 8


def skeleton_lines(source: str) -> set[str]:
    """The lines of a source notebook's solution cell that the release gives (outside BEGIN/END SOLUTION)."""
    given, inside = set(), False
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("### BEGIN SOLUTION"):
            inside = True
        elif text.startswith("### END SOLUTION"):
            inside = False
        elif not inside and text:
            given.add(text)
    return given


class _Anonymous(ast.NodeTransformer):
    """Names, argument names and docstrings out; what the code does stays."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id="_", ctx=node.ctx), node)

    def visit_arg(self, node):
        return ast.copy_location(ast.arg(arg="_"), node)

    def _body(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        node.name = "_"
        node.decorator_list = []
        if hasattr(node, "returns"):
            node.returns = None
        return self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _body

    def visit_AnnAssign(self, node):
        node.annotation = ast.Constant(None)
        return self.generic_visit(node)


def _shape(node) -> str:
    tree = _Anonymous().visit(ast.parse(ast.unparse(node)))
    for n in ast.walk(tree):
        if isinstance(n, ast.arguments):
            for a in n.args + n.kwonlyargs + n.posonlyargs:
                a.annotation = None
    return ast.dump(tree, annotate_fields=False)


def _definitions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


@lru_cache(maxsize=32)
def _package_shapes(module: str) -> dict[str, str]:
    f = module_file(module)
    if f is None:
        return {}
    try:
        tree = ast.parse(f.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    rel = f.relative_to(package_dir().parent).as_posix()
    return {_shape(n): f"{rel}:{n.lineno}" for n in _definitions(tree)
            if n.end_lineno - n.lineno + 1 >= COPY_LINES}


def copies(tree, solution: tuple[str, ...], source: str, given: set[str]) -> list[str]:
    """'matches gencourse/...:LINE' for each top-level definition equal to a package one with >= 8 lines
    of its own (lines the release gives not counted)."""
    shapes = {}
    for m in solution:
        shapes.update(_package_shapes(m))
    lines = source.splitlines()
    out = []
    for n in tree.body:
        own = [t for t in (x.strip() for x in lines[n.lineno - 1:n.end_lineno])
               if t and not t.startswith("#") and t not in given]
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and len(own) >= COPY_LINES:
            where = shapes.get(_shape(n))
            if where:
                out.append(f"matches {where} (names and formatting aside)")
    return out
