"""Autograded scores into nbgrader's gradebook, through nbgrader's own API.

nbgrader keeps one `Grade` per graded cell of each submitted notebook; the
autograded test cells (``grade: true, solution: false``) get ``auto_score``.
Our checks judge parts (the grade_id of a solution cell), so each part's
score is carried over to the autograded test cell(s) that test that part:

1. an explicit ``cell_map`` {part: [test cell grade_id, ...]} wins;
2. otherwise a test cell named ``test_<part>``, ``tests_<part>``, ``<part>_test``
   or ``<part>_tests`` belongs to it (the course's notebooks use ``test_<part>``);
3. otherwise, in the source notebook, the autograded test cells that follow a
   part's code solution cell (up to the next code solution cell) belong to it.

A test cell gets its own maximum times the fraction of the part's points the
submission earned, so nbgrader's totals stay in nbgrader's points. The
messages of a part's checks go to the ``auto_comment`` of its solution cell,
where nbgrader's formgrader shows them. As with ``nbgrader autograde``, a
grade that a person already set by hand stays flagged for review.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .contract import Report
from .paths import solutions_candidates
from .registry import REGISTRY
from .report import fmt_points, status_of


class GradebookError(ValueError):
    """The gradebook cannot take these grades; the message says what to do."""


@dataclass
class GradebookSummary:
    """What `write_gradebook` did, for the command's output."""

    written: list[tuple[str, str, str, float, float]] = field(default_factory=list)  # student, nb, cell, score, max
    unmapped_parts: dict[str, list[str]] = field(default_factory=dict)   # notebook -> parts with no test cell
    untouched_cells: dict[str, list[str]] = field(default_factory=dict)  # notebook -> test cells no check maps to
    needs_review: list[tuple[str, str, str]] = field(default_factory=list)  # (student, notebook, cell) with manual scores

    def lines(self) -> list[str]:
        students = sorted({w[0] for w in self.written})
        out = [f"gradebook: {len(self.written)} autograded cell score(s) for {len(students)} student(s)"]
        for nb, parts in sorted(self.unmapped_parts.items()):
            out.append(f"gradebook: notebook {nb}: no autograded test cell for part(s) {', '.join(parts)}; "
                       "their points are not in the gradebook")
        for nb, cells in sorted(self.untouched_cells.items()):
            out.append(f"gradebook: notebook {nb}: test cell(s) {', '.join(cells)} are checked by no part; left as they were")
        if self.needs_review:
            out.append(f"gradebook: {len(self.needs_review)} cell(s) already had a manual score and stay flagged for review")
        return out


def db_url_of(db: str | os.PathLike) -> str:
    """A SQLAlchemy URL from a URL or a path to a SQLite file (``gradebook.db``)."""
    text = str(db)
    if "://" in text:
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def notebook_of(assignment_key: str) -> str:
    """nbgrader's notebook name (file stem) of a registered assignment key: "NAME-TRACK" -> "NAME_TRACK"."""
    a = REGISTRY.get(assignment_key)
    if a is not None:
        return Path(a.notebook).stem
    return assignment_key.replace("-", "_")


def _nbgrader_meta(cell: dict) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def cell_map_from_notebook(path: str | os.PathLike, parts: Iterable[str]) -> dict[str, list[str]]:
    """{part: [autograded test cell grade_ids]} by position in an nbgrader source notebook."""
    parts = set(parts)
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    mapping: dict[str, list[str]] = {}
    current: str | None = None
    for cell in nb.get("cells", []):
        meta = _nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if not gid:
            continue
        if meta.get("solution") and cell.get("cell_type") == "code":   # a code answer starts a new part
            current = gid if gid in parts else None
            if current is not None:
                mapping.setdefault(gid, [])
        elif (meta.get("grade") and not meta.get("solution") and not meta.get("task")
              and cell.get("cell_type") == "code" and current is not None):
            mapping[current].append(gid)
    return {p: cells for p, cells in mapping.items() if cells}


def _by_name(part: str, cells: Iterable[str]) -> list[str]:
    names = {f"test_{part}", f"tests_{part}", f"{part}_test", f"{part}_tests"}
    return [c for c in cells if c in names]


def _find_source_notebook(assignment: str, notebook: str, source_dir: str | os.PathLike | None) -> Path | None:
    for d in solutions_candidates(source_dir):
        for p in (d / assignment / f"{notebook}.ipynb", d / f"{notebook}.ipynb"):
            if p.is_file():
                return p
    return None


def _open(db_url: str):
    try:
        from nbgrader.api import Gradebook
    except ImportError as e:        # pragma: no cover - nbgrader is in the grading extra
        raise GradebookError("writing to nbgrader's gradebook needs nbgrader: pip install 'gencourse[grading]'") from e
    if db_url.startswith("sqlite:///"):
        path = Path(db_url[len("sqlite:///"):])
        if not path.is_file():
            raise GradebookError(f"no nbgrader gradebook at {path}: run `nbgrader generate_assignment ASSIGNMENT` "
                                 "in the course directory first (it creates gradebook.db)")
    return Gradebook(db_url)


def write_gradebook(reports: Iterable[Report], db_url: str | os.PathLike, assignment: str,
                    notebook: str | None = None, *, cell_map: dict[str, list[str]] | None = None,
                    source_dir: str | os.PathLike | None = None, comments: bool = True) -> GradebookSummary:
    """Write the autograded scores of `reports` into the nbgrader gradebook at `db_url`.

    `assignment` is nbgrader's assignment name; `notebook` its notebook name,
    by default the one of each report's registered assignment ("NAME_TRACK" for
    "NAME-TRACK"), so one call takes reports of both tracks. The assignment and its
    notebooks must already be in the gradebook (``nbgrader generate_assignment``
    puts them there); otherwise `GradebookError` says so and nothing is written.
    Students and submissions are created when missing. Rerunning overwrites the
    same grades.
    """
    reports = list(reports)
    with warnings.catch_warnings():
        # nbgrader's add_submission builds objects before adding them to the session,
        # which SQLAlchemy 2 reports as SAWarnings; nbgrader autograde prints the same
        warnings.filterwarnings("ignore", message=".*not in session.*")
        return _write(reports, db_url_of(db_url), assignment, notebook, cell_map, source_dir, comments)


def _write(reports, url, assignment, notebook, cell_map, source_dir, comments) -> GradebookSummary:
    from nbgrader.api import MissingEntry

    summary = GradebookSummary()
    gb = _open(url)
    try:
        try:
            nb_assignment = gb.find_assignment(assignment)
        except MissingEntry:
            have = ", ".join(sorted(a.name for a in gb.assignments)) or "none"
            raise GradebookError(f"assignment {assignment!r} is not in the gradebook {url} (it has: {have}); "
                                 f"run `nbgrader generate_assignment {assignment}` first") from None
        notebooks = {nb.name: nb for nb in nb_assignment.notebooks}

        # the layout of each notebook the reports need, checked before anything is written
        layouts: dict[str, tuple[dict[str, list[str]], dict[str, float]]] = {}
        for report in reports:
            name = notebook or notebook_of(report.assignment)
            if name in layouts:
                continue
            if name not in notebooks:
                raise GradebookError(f"notebook {name!r} of assignment {assignment!r} is not in the gradebook {url} "
                                     f"(it has: {', '.join(sorted(notebooks)) or 'none'}); "
                                     f"release it with `nbgrader generate_assignment {assignment}`")
            test_cells = {c.name: float(c.max_score) for c in notebooks[name].grade_cells
                          if c.cell_type == "code" and not _is_solution_cell(gb, c.name, name, assignment)}
            parts = list(dict.fromkeys(r.part for r in report.results))
            known = REGISTRY.get(report.assignment)
            if known is not None:
                parts = list(dict.fromkeys(list(known.parts) + parts))
            if cell_map is not None:
                mapping = {p: [c for c in cells if c in test_cells] for p, cells in cell_map.items()}
            else:
                mapping = {p: _by_name(p, test_cells) for p in parts}
                claimed = {c for cells in mapping.values() for c in cells}
                source = _find_source_notebook(assignment, name, source_dir)
                by_position = cell_map_from_notebook(source, parts) if source is not None else {}
                for p in parts:
                    if not mapping[p]:
                        mapping[p] = [c for c in by_position.get(p, []) if c in test_cells and c not in claimed]
            layouts[name] = ({p: cells for p, cells in mapping.items() if cells}, test_cells)

        for report in reports:
            name = notebook or notebook_of(report.assignment)
            mapping, test_cells = layouts[name]
            gb.update_or_create_student(report.student)
            gb.update_or_create_submission(assignment, report.student)
            for part in dict.fromkeys(r.part for r in report.results):
                rs = [r for r in report.results if r.part == part]
                cells = mapping.get(part)
                if not cells:
                    summary.unmapped_parts.setdefault(name, [])
                    if part not in summary.unmapped_parts[name]:
                        summary.unmapped_parts[name].append(part)
                    continue
                points = sum(r.points for r in rs)
                fraction = (sum(r.score for r in rs) / points) if points > 0 else 1.0
                fraction = min(max(fraction, 0.0), 1.0)
                for cell in cells:
                    grade = gb.find_grade(cell, name, assignment, report.student)
                    grade.auto_score = round(test_cells[cell] * fraction, 4)
                    if grade.manual_score is not None:
                        grade.needs_manual_grade = True
                        summary.needs_review.append((report.student, name, cell))
                    else:
                        grade.needs_manual_grade = False
                    summary.written.append((report.student, name, cell, grade.auto_score, test_cells[cell]))
                if comments:
                    try:
                        comment = gb.find_comment(part, name, assignment, report.student)
                    except MissingEntry:
                        comment = None
                    if comment is not None:
                        comment.auto_comment = "\n".join(
                            f"[{status_of(r)}] {fmt_points(r.score)} / {fmt_points(r.points)} {r.name}"
                            + (f": {r.message.strip()}" if r.message and r.message.strip() else "")
                            for r in rs)
            gb.db.commit()
        for name, (mapping, test_cells) in layouts.items():
            used = {c for cells in mapping.values() for c in cells}
            left = sorted(set(test_cells) - used)
            if left:
                summary.untouched_cells[name] = left
    except Exception:
        gb.db.rollback()
        raise
    finally:
        gb.close()
    return summary


def _is_solution_cell(gb, cell: str, notebook: str, assignment: str) -> bool:
    """True for a graded *answer* cell (grade and solution): not an autograded test."""
    from nbgrader.api import MissingEntry
    try:
        gb.find_solution_cell(cell, notebook, assignment)
        return True
    except MissingEntry:
        return False


def add_gradebook_argument(parser) -> None:
    """`--gradebook DB` for `gencourse grade` (and `--nbgrader-assignment NAME`)."""
    parser.add_argument("--gradebook", metavar="DB", default=None,
                        help="also write the autograded scores into this nbgrader gradebook "
                             "(a gradebook.db path or a database URL); the assignment must be released there")
    parser.add_argument("--nbgrader-assignment", metavar="NAME", default=None,
                        help="nbgrader's assignment name in the gradebook (default: the key NAME-TRACK "
                             "where the gradebook has it, else NAME)")


def default_assignment_name(keys: set[str], db_url: str) -> str:
    """nbgrader's assignment for reports of `keys`: the key itself ("NAME-TRACK") when the gradebook has
    an assignment of that name (one per track, as `gencourse nbgrader init` makes), else the key's NAME
    (both tracks in one assignment, as a course folder made by hand has them)."""
    names = {REGISTRY[k].name if k in REGISTRY else k.split("-")[0] for k in keys}
    if len(names) != 1:
        raise GradebookError(f"reports of several assignments ({', '.join(sorted(names))}): "
                             "pass --nbgrader-assignment NAME")
    if len(keys) == 1:
        gb = _open(db_url)
        try:
            if any(a.name == next(iter(keys)) for a in gb.assignments):
                return next(iter(keys))
        finally:
            gb.close()
    return names.pop()


def gradebook_from_args(args, reports: Iterable[Report]) -> GradebookSummary | None:
    """What `gencourse grade` does with `--gradebook`: write, print the summary; None when not asked."""
    db = getattr(args, "gradebook", None)
    if not db:
        return None
    reports = list(reports)
    if not reports:
        print("gradebook: no reports, nothing written")
        return None
    name = getattr(args, "nbgrader_assignment", None)
    if name is None:
        name = default_assignment_name({r.assignment for r in reports}, db_url_of(db))
    summary = write_gradebook(reports, db, assignment=name, source_dir=getattr(args, "solutions", None))
    for line in summary.lines():
        print(line)
    return summary
