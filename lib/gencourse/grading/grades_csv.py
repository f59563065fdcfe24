"""OUT/grades.csv: one row per student, with a stable column order, that a resumed batch updates
instead of duplicating (student, assignment, score, max_score, integrity, then one column per check; integrity
is empty, or names the parts zeroed as the package's own and those flagged as copies)."""

from __future__ import annotations

import csv
import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Sequence

from .contract import CheckResult, Report
from .integrity import csv_cell
from .report import fmt_points, atomic_write, parts_in_order

KEY_COLUMNS = ("student", "assignment")
FIXED_COLUMNS = KEY_COLUMNS + ("score", "max_score", "integrity")


def check_column(result: CheckResult) -> str:
    """The CSV column of one check: "<part>: <check name>"."""
    return f"{result.part}: {result.name}"


def grade_row(report: Report) -> dict:
    """One CSV row: student, assignment, total, maximum, then one column per check (its score)."""
    row = {"student": report.student, "assignment": report.assignment,
           "score": fmt_points(report.score), "max_score": fmt_points(report.max_score),
           "integrity": csv_cell(report.integrity)}
    parts = parts_in_order(report)
    for r in sorted(report.results, key=lambda r: parts.index(r.part)):   # by part, then in check order
        row[check_column(r)] = fmt_points(r.score)
    return row


@contextmanager
def _locked(path: Path):
    """An exclusive lock on `path`'s folder, so that parallel writers of the CSV take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        try:
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):       # no flock here: a single writer is assumed
            pass
        yield
    finally:
        os.close(fd)                         # closing releases the lock


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    if not path.exists() or path.stat().st_size == 0:
        return [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), [dict(r) for r in reader]


def _merge_columns(existing: Sequence[str], rows: Iterable[dict]) -> list[str]:
    columns = list(FIXED_COLUMNS) + [c for c in existing if c not in FIXED_COLUMNS]
    for row in rows:
        for c in row:
            if c not in columns:
                columns.append(c)
    return columns


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    atomic_write(path, buf.getvalue())


def append_csv(rows: Iterable[dict], path: str | os.PathLike) -> Path:
    """Add rows to the grades CSV at `path`, replacing any row of the same (student, assignment).

    Safe to call again for the same submissions (a resumed batch): a student
    keeps one row, at its first position; columns keep their order, and new
    checks add columns at the end. Parallel callers take turns on a lock file.
    """
    path = Path(path)
    rows = [dict(r) for r in rows]
    for r in rows:
        missing = [c for c in KEY_COLUMNS if not r.get(c)]
        if missing:
            raise ValueError(f"a grades row needs {', '.join(missing)}: {r}")
    with _locked(path):
        columns, existing = _read_csv(path)
        index = {(r.get("student"), r.get("assignment")): i for i, r in enumerate(existing)}
        for r in rows:
            key = (r["student"], r["assignment"])
            if key in index:
                existing[index[key]] = r
            else:
                index[key] = len(existing)
                existing.append(r)
        _write_csv(path, _merge_columns(columns, existing), existing)
    return path


def write_grades_csv(reports: Iterable[Report], path: str | os.PathLike) -> Path:
    """Write the grades CSV of a whole batch from scratch: one row per report, sorted by student."""
    path = Path(path)
    rows = [grade_row(r) for r in sorted(reports, key=lambda r: (r.student, r.assignment))]
    with _locked(path):
        _write_csv(path, _merge_columns([], rows), rows)
    return path
