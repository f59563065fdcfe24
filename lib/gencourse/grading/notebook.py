"""Graded cells out of a notebook, by nbgrader grade_id, without running anything.

A notebook is read as plain JSON (nbformat 4, and the `worksheets` layout of
nbformat 3), so a broken or hostile file costs notes, never an exception: a
missing cell, a grade_id used twice, a graded cell retyped to markdown and a
file that is not a notebook all become sentences a student can act on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024

_MAGIC = re.compile(r"^(\s*)([%!].*)$")


@dataclass
class NotebookCell:
    grade_id: str
    source: str
    cell_type: str          # "code", "markdown", "raw"
    solution: bool = False
    locked: bool = False
    grade: bool = False
    index: int = 0          # position in the notebook


@dataclass
class Notebook:
    """What was found in one notebook file."""

    path: str
    cells: dict[str, NotebookCell] = field(default_factory=dict)   # first cell of each grade_id
    order: list[str] = field(default_factory=list)                  # grade_ids in notebook order
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    readable: bool = True


def _text(source) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list):
        return "".join(s if isinstance(s, str) else str(s) for s in source)
    return "" if source is None else str(source)


def strip_magics(source: str) -> str:
    """IPython line magics and shell escapes (`%matplotlib`, `!pip`) become `pass`."""
    lines = []
    for line in source.splitlines():
        m = _MAGIC.match(line)
        lines.append(f"{m.group(1)}pass  # {m.group(2)[:60]}" if m else line)
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


def read_notebook(path) -> Notebook:
    """Every cell that carries an nbgrader grade_id, with notes on what is odd."""
    nb = Notebook(path=str(path))
    name = Path(path).name
    try:
        size = os.path.getsize(path)
        if size > MAX_NOTEBOOK_BYTES:
            nb.readable = False
            nb.notes.append(f"{name} is {size / 2**20:.0f} MB, larger than the "
                            f"{MAX_NOTEBOOK_BYTES // 2**20} MB a notebook may have; it was not read")
            return nb
        with open(path, "rb") as f:
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except FileNotFoundError:
        nb.readable = False
        nb.notes.append(f"the notebook {path} does not exist")
        return nb
    except (OSError, ValueError, RecursionError) as e:
        nb.readable = False
        nb.notes.append(f"{name} is not a readable notebook ({type(e).__name__}: {str(e)[:200]}); "
                        "save it from Jupyter and submit the .ipynb file")
        return nb
    if not isinstance(data, dict):
        nb.readable = False
        nb.notes.append(f"{name} is JSON but not a notebook (no cells found)")
        return nb
    meta = data.get("metadata")
    nb.metadata = meta if isinstance(meta, dict) else {}
    cells = data.get("cells")
    if cells is None and isinstance(data.get("worksheets"), list):      # nbformat 3
        cells = []
        for ws in data["worksheets"]:
            if isinstance(ws, dict) and isinstance(ws.get("cells"), list):
                cells.extend(ws["cells"])
    if not isinstance(cells, list):
        nb.readable = False
        nb.notes.append(f"{name} is JSON but not a notebook (no cells found)")
        return nb

    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        cmeta = cell.get("metadata")
        nbg = cmeta.get("nbgrader") if isinstance(cmeta, dict) else None
        if not isinstance(nbg, dict):
            continue
        gid = nbg.get("grade_id")
        if not isinstance(gid, str) or not gid:
            continue
        seen[gid] = seen.get(gid, 0) + 1
        ctype = cell.get("cell_type") if isinstance(cell.get("cell_type"), str) else "unknown"
        entry = NotebookCell(grade_id=gid, source=_text(cell.get("source", cell.get("input"))),
                             cell_type=ctype, solution=bool(nbg.get("solution")),
                             locked=bool(nbg.get("locked")), grade=bool(nbg.get("grade")), index=index)
        previous = nb.cells.get(gid)
        # Of several cells with one grade_id, the first code cell counts.
        if previous is None or (previous.cell_type != "code" and ctype == "code"):
            if previous is None:
                nb.order.append(gid)
            nb.cells[gid] = entry
    for gid, n in seen.items():
        if n > 1:
            nb.notes.append(f"the grade_id {gid!r} is used by {n} cells; the first code cell of them "
                            "was graded (undo the copy, or give the copy a cell of its own without nbgrader metadata)")
    return nb


def graded_sources(nb: Notebook, grade_ids, *, what: str = "your notebook") -> tuple[dict[str, str], list[str]]:
    """{grade_id: source} for the wanted code cells; notes for each one missing or not code."""
    sources: dict[str, str] = {}
    notes: list[str] = []
    for gid in grade_ids:
        cell = nb.cells.get(gid)
        if cell is None:
            if nb.readable:
                notes.append(f"the cell {gid!r} is missing from {what} (deleted, or its nbgrader "
                             "metadata was removed): the checks of that part score 0")
            continue
        if cell.cell_type != "code":
            notes.append(f"the cell {gid!r} is a {cell.cell_type} cell in {what}, not code: it was not run "
                         "(change it back to a code cell)")
            continue
        sources[gid] = strip_magics(cell.source)
    return sources, notes


def extract_cells(path, grade_ids) -> tuple[dict[str, str], list[str]]:
    """Read `path` and return ({grade_id: source}, notes) for the given grade_ids."""
    nb = read_notebook(path)
    sources, notes = graded_sources(nb, grade_ids)
    return sources, nb.notes + notes


def notebook_assignment(path) -> str | None:
    """The assignment key stored in a notebook's metadata (`metadata.gencourse.assignment`)."""
    nb = read_notebook(path)
    g = nb.metadata.get("gencourse")
    if isinstance(g, dict) and isinstance(g.get("assignment"), str):
        return g["assignment"]
    return None
