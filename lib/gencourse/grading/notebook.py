"""Graded cells out of a notebook, by nbgrader grade_id, without running anything.

A notebook is read as plain JSON (nbformat 4, and the `worksheets` layout of
nbformat 3), so a broken or hostile file costs notes, never an exception: a
missing cell, a grade_id used twice, a graded cell retyped to markdown and a
file that is not a notebook all become sentences a student can act on.

The grader needs the sources only: cell outputs and attachments are cut out of
the raw bytes first (`strip_outputs`, which skips their strings with a byte
search, so a notebook of large plots is never parsed whole), and the cap
applies to what is left, so a student who printed too much keeps their points.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_BYTES = 1024 * 1024 * 1024      # a file larger than this is not opened at all
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024    # what is left without outputs and attachments
DROPPED_KEYS = (b'"outputs"', b'"attachments"')
_TOKEN = re.compile(rb'["{}\[\],]')

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


def _string_end(raw, i: int) -> int:
    """The index after the JSON string that starts with the quote at raw[i]."""
    j = i
    while True:
        j = raw.find(b'"', j + 1)
        if j < 0:
            raise ValueError("a string is not closed")
        k = j - 1
        while raw[k] == 0x5C:              # backslashes before the quote: escaped if odd
            k -= 1
        if (j - 1 - k) % 2 == 0:
            return j + 1


def _value_end(raw, i: int) -> int:
    """The index after the JSON value starting at raw[i] (whitespace before it skipped)."""
    while raw[i] in b" \t\r\n":
        i += 1
    if raw[i] == 0x22:
        return _string_end(raw, i)
    if raw[i] not in b"[{":
        m = re.compile(rb"[,}\]]").search(raw, i)
        return m.start() if m else len(raw)
    depth = 0
    while True:
        m = _TOKEN.search(raw, i)
        if m is None:
            raise ValueError("an array or object is not closed")
        c, i = raw[m.start()], m.start()
        if c == 0x22:
            i = _string_end(raw, i)
            continue
        if c in b"[{":
            depth += 1
        elif c in b"]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


def strip_outputs(raw) -> bytes:
    """The notebook's JSON with the value of every "outputs" and "attachments" key replaced by [] or {}."""
    out, i = bytearray(), 0
    while True:
        m = _TOKEN.search(raw, i)
        if m is None:
            out += raw[i:]
            return bytes(out)
        j = m.start()
        if raw[j] != 0x22:
            out += raw[i:j + 1]
            i = j + 1
            continue
        end = _string_end(raw, j)
        key = raw[j:end]
        out += raw[i:end]
        i = end
        if key in DROPPED_KEYS:
            colon = raw.find(b":", i)
            if colon >= 0 and not raw[i:colon].strip():
                start = colon + 1
                stop = _value_end(raw, start)
                out += raw[i:start] + (b" []" if key == b'"outputs"' else b" {}")
                i = stop


def _load(path, name: str, nb: "Notebook"):
    """The notebook's JSON without outputs, or None with a note saying why it was not read."""
    import mmap

    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        nb.notes.append(f"{name} is {size / 2**20:.0f} MB, larger than the {MAX_FILE_BYTES // 2**20} MB a "
                        "submitted file may have; it was not read")
        return None
    with open(path, "rb") as f:
        raw = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        try:
            text = strip_outputs(raw)
        finally:
            if size:
                raw.close()
    if len(text) > MAX_NOTEBOOK_BYTES:
        nb.notes.append(f"the cells of {name} hold {len(text) / 2**20:.0f} MB of code and text (outputs left "
                        f"out), more than the {MAX_NOTEBOOK_BYTES // 2**20} MB a notebook may have; it was not read")
        return None
    return json.loads(text.decode("utf-8", errors="replace"))


def read_notebook(path) -> Notebook:
    """Every cell that carries an nbgrader grade_id, with notes on what is odd."""
    nb = Notebook(path=str(path))
    name = Path(path).name
    try:
        data = _load(path, name, nb)
        if data is None:
            nb.readable = False
            return nb
    except FileNotFoundError:
        nb.readable = False
        nb.notes.append(f"the notebook {path} does not exist")
        return nb
    except (OSError, ValueError, RecursionError, IndexError) as e:
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
