"""Whether a graded part is the student's own: the grader's reading of each cell (trusted).

The package ships the answers to its assignments (`gencourse train` is the solution run),
so the grader grades around them (docs/design.md, "Integrity"). An assignment declares its
`solution_modules`, the modules that implement graded parts; the *surface* is what the
notebook's locked cells import. A part cell that reaches a solution module by any route this
reader can see (an import, an alias, an attribute chain through a module of the surface that
re-exports it, a name built for `importlib`, `sys.modules`, `getattr` on a module, code run
from text) is a `Finding` that zeroes its part; one whose definition of 8 lines or more has the
syntax tree of the package's (names and formatting aside) is a copy, flagged for a person.
The worker adds what it saw at run time (`guard`); that evidence can only take points away.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .copies import copies
from .package_source import ROOT, bindings, resolve
# Names that reach modules, frames or code objects behind the notebook's back.
REFLECTION = {"__import__", "exec", "eval", "compile", "globals", "vars", "__builtins__"}
DUNDERS = {"__globals__", "__subclasses__", "__closure__", "__code__", "__dict__", "__loader__", "__spec__",
           "__file__", "__builtins__", "f_globals", "f_locals", "f_back", "tb_frame", "gi_frame", "cr_frame",
           "_getframe", "getsource"}
SYS = {"modules", "meta_path", "path_hooks", "settrace", "setprofile", "_getframe"}
BANNED_IMPORTS = {"importlib", "imp", "runpy", "pkgutil", "gc", "ctypes", "marshal", "zipimport", "builtins",
                  "code", "codeop", "types"}


@dataclass(frozen=True)
class Finding:
    part: str           # grade_id
    subject: str        # "the cell 'kl' (`kl_divergence`)"
    route: str          # "imports `gencourse.TOPIC.torch_models.loss`"
    copy: bool = False  # True: flagged for a person, points kept

    def message(self) -> str:
        if self.copy:
            return f"{self.subject} {self.route}: flagged for your instructor to read (points kept)"
        return f"{self.subject} {self.route}: write your own (0 points for this part)"


# --------------------------------------------------------------------------- the surface

def locked_imports(notebook_path) -> set[str]:
    """The package modules that a notebook's non-solution code cells import (and their packages)."""
    try:
        cells = json.loads(Path(notebook_path).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return set()
    found: set[str] = set()
    for cell in cells:
        nbg = (cell.get("metadata") or {}).get("nbgrader") or {}
        if cell.get("cell_type") != "code" or nbg.get("solution"):
            continue
        src = "".join(cell.get("source", "")) if isinstance(cell.get("source"), list) else cell.get("source", "")
        try:
            tree = ast.parse(_strip_magics(src))
        except SyntaxError:
            continue
        for target in bindings([n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))],
                                ROOT).values():
            hit = resolve(target)
            if hit:
                found.add(hit[0])
    return found | {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}


def _strip_magics(src: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines())


# --------------------------------------------------------------------------- reading one cell

class _Reader(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str], solution: tuple[str, ...], surface: set[str]):
        self.aliases, self.solution, self.surface = dict(aliases), solution, surface
        self.routes: list[str] = []

    def add(self, route: str):
        if route not in self.routes:
            self.routes.append(route)

    def judge_target(self, dotted: str, verb: str):
        hit = resolve(dotted)
        if hit is None:
            return
        module, name = hit
        if any(module == s or module.startswith(s + ".") for s in self.solution):
            self.add(f"{verb} `{name}`, the package's solution")
        elif module not in self.surface:
            self.add(f"{verb} `{name}`, outside what the notebook's locked cells use")

    def visit_Import(self, node):
        for a in node.names:
            self.judge_target(a.name, "imports")
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            if a.name.split(".")[0] in BANNED_IMPORTS:
                self.add(f"imports `{a.name}`, which can reach the package's modules by name")

    def visit_ImportFrom(self, node):
        if node.level:
            return
        mod = node.module or ""
        if mod.split(".")[0] in BANNED_IMPORTS:
            self.add(f"imports from `{mod}`, which can reach the package's modules by name")
        for a in node.names:
            target = f"{mod}.{a.name}"
            self.judge_target(target if a.name != "*" else mod, "imports")
            if mod == "sys" and a.name in SYS:
                self.add(f"imports `sys.{a.name}`")
            self.aliases[a.asname or a.name] = target

    def dotted(self, node) -> str | None:
        names = []
        while isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id]] + names[::-1])
        return None

    def visit_Attribute(self, node):
        full = self.dotted(node)
        if full and full.startswith(ROOT + "."):
            self.judge_target(full, "uses")
        if full and full.split(".")[:1] == ["sys"] and node.attr in SYS:
            self.add(f"reads `{full}`, where the package's modules are")
        if node.attr in DUNDERS and not (node.attr == "__dict__" and not full):
            self.add(f"reads `.{node.attr}`, which can reach the package's code behind the notebook")
        elif node.attr == "__dict__" and full:
            self.add(f"reads `{full}`")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in REFLECTION:
            self.add(f"uses `{node.id}`, which can run the package's source or reach its modules")
        elif node.id in self.aliases and self.aliases[node.id].startswith(ROOT):
            self.judge_target(self.aliases[node.id], "uses")

    def visit_Call(self, node):
        fn = node.func
        if isinstance(fn, ast.Name) and fn.id in ("getattr", "setattr", "hasattr") and node.args:
            owner = self.dotted(node.args[0]) if isinstance(node.args[0], (ast.Name, ast.Attribute)) else None
            if owner and owner.split(".")[0] in (ROOT, "sys"):
                self.add(f"calls `{fn.id}` on the module `{owner}`")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and re.search(r"gencourse|_models\b|_probes\b|_track\b", node.value):
            self.add(f"names the package's modules in the text {node.value[:60]!r}")


def _subject(gid: str, tree) -> str:
    """How a message names a part: its cell, and the (first three) names the cell binds."""
    names = ", ".join(f"`{n}`" for n in _names(tree)[:3])
    return f"the cell {gid!r}" + (f" ({names})" if names else "")


def defined_names(source: str) -> list[str]:
    """The names a cell binds at its top level (defs, classes, assignments, imports)."""
    try:
        return _names(ast.parse(_strip_magics(source)))
    except (SyntaxError, ValueError):
        return []


def _names(tree) -> list[str]:
    out = []
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(n.name)
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                out += [x.id for x in ast.walk(t) if isinstance(x, ast.Name)]
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            out += [a.asname or a.name.split(".")[0] for a in n.names if a.name != "*"]
    return list(dict.fromkeys(out))


def read_parts(parts: dict[str, str], setup: dict[str, str], solution: tuple[str, ...],
               surface: set[str], skeletons: dict[str, set[str]] | None = None) -> list[Finding]:
    """Every route to a solution module in the part cells `parts` {grade_id: source}; `skeletons`: the
    lines the release gives in each cell (not the student's, so not counted toward a copy's length;
    None, as in `gencourse check` away from the source notebooks: copies are not looked for)."""
    aliases: dict[str, str] = {}
    for src in setup.values():
        try:
            body = ast.parse(_strip_magics(src)).body
        except (SyntaxError, ValueError):
            continue
        aliases.update(bindings(body, ROOT))
    findings = []
    for gid, src in parts.items():
        try:
            tree = ast.parse(_strip_magics(src))
        except (SyntaxError, ValueError):
            continue
        reader = _Reader(aliases, solution, surface)
        reader.visit(tree)
        subject = _subject(gid, tree)
        findings += [Finding(gid, subject, r) for r in reader.routes]
        if skeletons is not None and gid in skeletons:     # without the release's skeleton, no copy is told
            findings += [Finding(gid, subject, r, copy=True) for r in copies(tree, solution, src, skeletons[gid])]
    return findings


# --------------------------------------------------------------------------- one grading run

INTEGRITY_KEY = "integrity"
INTEGRITY_PROBE = "__integrity__"       # answered by the worker itself (worker.py)


def worker_config(solution: tuple[str, ...], parts: dict[str, str], call_parts: dict[str, str],
                  expected: dict[str, str]) -> bytes:
    """What the worker's guard needs, as the integrity call's one input (JSON in a uint8 array): each part's
    names are those its cell binds and those the source notebook's cell binds (what the probes look up,
    even where the student's cell binds them behind exec)."""
    names = {gid: list(dict.fromkeys(defined_names(expected.get(gid, "")) + defined_names(src)))
             for gid, src in parts.items()}
    return json.dumps({"solution": list(solution), "calls": call_parts, "parts": names}).encode("utf-8")


def worker_findings(evidence, parts, sources: dict[str, str]) -> list[Finding]:
    """The worker's lines "grade_id<TAB>route", kept only for the assignment's parts (untrusted text:
    it can only take points away, and it is cut short and stripped of control characters)."""
    try:
        text = bytes(evidence).decode("utf-8", "replace")[:40000]
    except (TypeError, ValueError):
        return []
    out = []
    for line in text.splitlines()[:200]:
        gid, _, route = line.partition("\t")
        if gid in parts and route:
            route = re.sub(r"[\x00-\x1f\x7f]", " ", route)[:300] + " (seen while your code ran), the package's solution"
            out.append(Finding(gid, _subject_of(gid, sources.get(gid, "")), route))
    return out


def _subject_of(gid: str, source: str) -> str:
    try:
        return _subject(gid, ast.parse(_strip_magics(source)))
    except (SyntaxError, ValueError):
        return f"the cell {gid!r}"


def outcome(findings: list[Finding]) -> tuple[dict[str, str], list[dict]]:
    """({part: the message its checks show}, the report's integrity entries), each route once."""
    zeroed: dict[str, list[str]] = {}
    entries, seen = [], set()
    for f in findings:
        if (f.part, f.route) in seen:
            continue
        seen.add((f.part, f.route))
        entries.append({"part": f.part, "action": "flagged" if f.copy else "zeroed", "message": f.message()})
        if not f.copy:
            zeroed.setdefault(f.part, []).append(f.message())
    return {p: ms[0] + (f" (and {len(ms) - 1} more route(s): see the integrity notes)" if len(ms) > 1 else "")
            for p, ms in zeroed.items()}, entries


def csv_cell(entries: list[dict]) -> str:
    """grades.csv's integrity column: empty, or 'zeroed: a, b; flagged: c' (sortable, readable)."""
    out = []
    for action in ("zeroed", "flagged"):
        parts = sorted({str(e.get("part")) for e in entries if e.get("action") == action})
        if parts:
            out.append(f"{action}: {', '.join(parts)}")
    return "; ".join(out)
