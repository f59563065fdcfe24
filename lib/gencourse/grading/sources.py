"""One text source per assignment, `<name>.md`, and the nbgrader notebook of each track made from it.

Both tracks of an assignment share most cells (introductions, questions,
rubrics, model answers), so they are written once; only what really differs
between the tracks is written per track. The format (solutions/README.md has
the instructor's version):

    %% notebook tracks=tf,torch          first header: the tracks; lines up to the next header are notes
    %% markdown id=intro locked          a cell: its type, then words
    # Title (<tf>TensorFlow</tf><torch>PyTorch</torch>)

    %% code id=test_part points=3 locked
    run_visible("{{key}}", "part", globals())

Words of a cell header: `id=GRADE_ID` (nbgrader metadata; none without it),
`locked`, `solution`, `points=N` (graded), `track=T` (only in track T's
notebook). `<T>...</T>` keeps its text in track T only (a tag alone on its
line goes with its line break); `{{key}}` becomes `<name>-<track>`,
`{{track}}` the track. Trailing blank lines of a cell are dropped. Cell ids
are the grade_id, else `<previous grade_id>-<n>`. A graded id must be graded
in every track with the same points. Bad input raises SourceError "file:line: ...".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}
KINDS = ("markdown", "code")
_HEADER = re.compile(r"%%(\s|$)")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}$")
_TRACK = re.compile(r"[a-z][a-z0-9]*$")


class SourceError(ValueError):
    """A source file that cannot be made into notebooks; the message starts with `file:line:`."""


@dataclass
class Cell:
    kind: str
    line: int                       # of the header, 1-based
    text: str = ""                  # as written, up to the next header
    grade_id: str | None = None
    locked: bool = False
    solution: bool = False
    points: float | int | None = None
    track: str | None = None        # None: every track


@dataclass
class Source:
    path: Path
    tracks: tuple[str, ...]
    cells: list[Cell]

    def error(self, line: int, message: str) -> SourceError:
        return SourceError(f"{self.path}:{line}: {message}")


def parse(path) -> Source:
    """The notebook header and the cells of a source file, every header word checked."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    source = Source(path, (), [])
    heads = [i for i, text in enumerate(lines) if _HEADER.match(text)]
    first = next((i for i, text in enumerate(lines) if text.strip()), 0)
    if not heads or heads[0] != first or lines[first].split()[1:2] != ["notebook"]:
        raise source.error(first + 1, "a source starts with `%% notebook tracks=...`")
    for word in lines[first].split()[2:]:
        key, _, value = word.partition("=")
        tracks = tuple(value.split(","))
        if key != "tracks" or not all(_TRACK.match(t) for t in tracks) or len(set(tracks)) < len(tracks):
            raise source.error(first + 1, f"bad notebook word {word!r} (expected tracks=NAME,NAME)")
        source.tracks = tracks
    if not source.tracks:
        raise source.error(first + 1, "the notebook header names no tracks (tracks=NAME,NAME)")
    for start, end in zip(heads[1:], heads[2:] + [len(lines)]):
        source.cells.append(_cell(source, start + 1, lines[start].split()[1:], "\n".join(lines[start + 1:end])))
    return source


def _cell(source: Source, line: int, words: list[str], text: str) -> Cell:
    if not words or words[0] not in KINDS:
        kind = words[0] if words else ""
        raise source.error(line, f"unknown cell type {kind!r} (expected {' or '.join(KINDS)})")
    cell = Cell(words[0], line, text)
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq and key in ("locked", "solution"):
            setattr(cell, key, True)
        elif eq and key == "id" and _ID.match(value):
            cell.grade_id = value
        elif eq and key == "track" and value in source.tracks:
            cell.track = value
        elif eq and key == "points" and re.fullmatch(r"\d+(\.\d+)?", value):
            cell.points = float(value) if "." in value else int(value)
        elif key in ("id", "track", "points"):
            expected = {"id": "letters, digits, _ or -", "points": "a number",
                        "track": "one of " + ", ".join(source.tracks)}[key]
            raise source.error(line, f"bad {key} {value!r} (expected {expected})")
        else:
            raise source.error(line, f"unknown flag {word!r} (expected id=, locked, solution, points=, track=)")
    if cell.grade_id is None and (cell.locked or cell.solution or cell.points is not None):
        raise source.error(line, "locked, solution and points= need an id=")
    return cell


def _resolve(source: Source, cell: Cell, track: str) -> str:
    """The cell's text in `track`: other tracks' spans removed, keys substituted, trailing blank lines dropped."""
    tags = re.compile(r"<(/?)(" + "|".join(source.tracks) + r")>")
    out, pos, opened = [], 0, None           # opened: (track, line) of the span we are in
    for m in tags.finditer(cell.text):
        if opened is None or opened[0] == track:
            out.append(cell.text[pos:m.start()])
        line = cell.line + 1 + cell.text.count("\n", 0, m.start())
        closing, name = m.group(1) == "/", m.group(2)
        if not closing and opened:
            raise source.error(line, f"<{name}> inside <{opened[0]}> of line {opened[1]}: spans do not nest")
        if closing and not opened:
            raise source.error(line, f"</{name}> without an opening <{name}>")
        if closing and name != opened[0]:
            raise source.error(line, f"</{name}> closes <{opened[0]}> of line {opened[1]}")
        opened = None if closing else (name, line)
        pos = m.end()
        if (m.start() == 0 or cell.text[m.start() - 1] == "\n") and cell.text.startswith("\n", pos):
            pos += 1                          # a tag alone on its line takes its line break
    if opened:
        raise source.error(opened[1], f"unclosed <{opened[0]}>")
    out.append(cell.text[pos:])
    lines = "".join(out).replace("{{key}}", f"{source.path.stem}-{track}").replace("{{track}}", track).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _check_graded(source: Source) -> None:
    """Every graded id is graded in every track, with the same points: the tracks are worth the same."""
    graded: dict[str, dict[str, tuple]] = {}
    for cell in source.cells:
        if cell.points is not None:
            for track in [cell.track] if cell.track else source.tracks:
                graded.setdefault(cell.grade_id, {}).setdefault(track, (cell.points, cell.line))
    for gid, where in graded.items():
        line = min(line for _, line in where.values())
        missing = [t for t in source.tracks if t not in where]
        if missing:
            raise source.error(line, f"graded id={gid} has no graded counterpart in track {', '.join(missing)}")
        if len({points for points, _ in where.values()}) > 1:
            raise source.error(line, f"graded id={gid} has different points in its tracks")


def render(source: Source, track: str) -> nbformat.NotebookNode:
    """The nbgrader notebook of one track (nbformat 4.5, code cells without outputs)."""
    nb = nbformat.v4.new_notebook(metadata={
        "gencourse": {"assignment": f"{source.path.stem}-{track}"},
        "kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)})
    ids: dict[str, int] = {}
    last, count = "cell", 0
    for cell in source.cells:
        if cell.track not in (None, track):
            continue
        if cell.grade_id:
            cid, last, count = cell.grade_id, cell.grade_id, 0
        else:
            count += 1
            cid = f"{last}-{count}"
        if cid in ids:
            what = f"id={cid}" if cell.grade_id else f"the cell id {cid} made here"
            raise source.error(cell.line, f"{what} is used twice in track {track} (also line {ids[cid]})")
        ids[cid] = cell.line
        metadata = {}
        if cell.grade_id:
            metadata["nbgrader"] = {"grade": cell.points is not None, "grade_id": cell.grade_id,
                                    "locked": cell.locked, "schema_version": 3,
                                    "solution": cell.solution, "task": False}
            if cell.points is not None:
                metadata["nbgrader"]["points"] = cell.points
        new = nbformat.v4.new_code_cell if cell.kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(new(_resolve(source, cell, track), id=cid, metadata=metadata))
    nbformat.validate(nb)
    return nb


def notebooks(path) -> dict[str, str]:
    """{`<name>_<track>.ipynb`: its text} for every track of the source `path`; same input, same bytes."""
    source = parse(path)
    _check_graded(source)
    return {f"{source.path.stem}_{track}.ipynb": nbformat.writes(render(source, track)) + "\n"
            for track in source.tracks}


def generate(path, out_dir=None) -> list[Path]:
    """Write the notebooks of the source `path` into `out_dir` (default: the source's folder)."""
    out_dir = Path(out_dir) if out_dir is not None else Path(path).parent
    written = []
    for name, text in notebooks(path).items():
        (out_dir / name).write_text(text, encoding="utf-8")
        written.append(out_dir / name)
    return written
