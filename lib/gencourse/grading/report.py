"""Everything a grading run hands out, built from a `Report`.

- `results_json` / `write_results_json`: Gradescope's ``results.json``
  (https://gradescope-autograders.readthedocs.io/en/latest/specs/);
  `validate_results` checks a dict against that specification.
- `feedback_text` / `write_feedback`: the readable feedback file a student gets.
- `grade_row`, `append_csv`, `write_grades_csv`: one CSV row per student, with
  a stable column order, that a resumed batch updates instead of duplicating.
- `write_outputs` (one submission) and `write_batch_outputs` (what `grade_batch`
  calls at its end): OUT/<student>/results.json and feedback.txt, OUT/grades.csv.

Nothing here runs student code; it only formats what the grader judged.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Sequence

from .checks import REGISTRY, CheckResult, Report

# Gradescope's visibility values, from the most to the least visible.
VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
# Allowed values of the "*_format" fields of results.json.
FORMATS = ("text", "simple_format", "html", "md", "ansi")
STATUSES = ("passed", "failed")
DIGITS = 4          # scores are rounded to this many decimals everywhere we write them


def _round(x: float) -> float:
    return round(float(x), DIGITS) + 0.0      # + 0.0 turns -0.0 into 0.0


def status_of(result: CheckResult) -> str:
    """"PASS", "partial" or "FAIL" for one check."""
    if result.points > 0 and result.score >= result.points - 1e-9:
        return "PASS"
    if result.points <= 0:
        return "PASS" if result.score >= 0 else "FAIL"
    if result.score > 1e-9:
        return "partial"
    return "FAIL"


def _fmt(x: float) -> str:
    """A score as a person writes it: 2, 1.5, 0.3333."""
    x = _round(x)
    return str(int(x)) if x == int(x) else f"{x:g}"


def parts_in_order(report: Report) -> list[str]:
    """The report's parts, in notebook order when the assignment is registered."""
    seen = list(dict.fromkeys(r.part for r in report.results))
    known = REGISTRY.get(report.assignment)
    if known is None:
        return seen
    ordered = [p for p in known.parts if p in seen]
    return ordered + [p for p in seen if p not in ordered]


def _numbers(report: Report) -> list[str]:
    """A Gradescope test number per result: "<part index>.<check index within the part>"."""
    parts = parts_in_order(report)
    counters: dict[str, int] = {}
    out = []
    for r in report.results:
        counters[r.part] = counters.get(r.part, 0) + 1
        out.append(f"{parts.index(r.part) + 1}.{counters[r.part]}")
    return out


# --------------------------------------------------------------------------- header

def isolation_header(report: Report) -> str:
    """Which assignment was graded and which limits applied to the student's code."""
    lines = [f"gencourse autograder: {report.assignment}, submission of {report.student}"]
    if report.isolation:
        lines.append("Your code ran in an isolated worker, with these limits:")
        lines += [f"- {item}" for item in report.isolation]
    else:
        lines.append("Isolation: none recorded for this run.")
    return "\n".join(lines)


def _notes_block(report: Report, *, hide_hidden: bool = False) -> list[str]:
    notes = report.notes
    if hide_hidden:       # a note naming a hidden check would give it away before it is shown
        secret = [r.name for r in report.results if not r.visible]
        notes = [n for n in notes if not any(name in n for name in secret)]
    if not notes:
        return []
    return ["", "Notes:"] + [f"- {n}" for n in notes]


# --------------------------------------------------------------------------- results.json

def results_json(report: Report, *, hidden_visibility: str = "after_published",
                 visibility: str | None = "visible", stdout_visibility: str = "hidden",
                 execution_time: float | None = None, extra_output: str = "") -> dict:
    """Gradescope's results.json for one report, as a dict.

    Visible checks get ``"visibility": "visible"``; hidden checks get
    `hidden_visibility` ("after_published": shown once the instructor publishes
    the grades; "hidden": never shown to students; Gradescope then also hides
    the total from them). The top-level output is the isolation header, the
    notes and the visible score only, so that it reveals nothing of the hidden
    checks before they are shown.
    """
    for name, value in (("hidden_visibility", hidden_visibility), ("stdout_visibility", stdout_visibility)):
        if value not in VISIBILITIES:
            raise ValueError(f"{name} must be one of {VISIBILITIES}, not {value!r}")
    if visibility is not None and visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")

    tests = []
    parts = parts_in_order(report)
    ordered = sorted(zip(report.results, _numbers(report)), key=lambda rn: parts.index(rn[0].part))
    for r, number in ordered:
        score = min(max(_round(r.score), 0.0), max(_round(r.points), 0.0))
        tests.append({
            "name": f"{r.part}: {r.name}",
            "number": number,
            "score": score,
            "max_score": _round(r.points),
            "output": r.message or status_of(r),
            "output_format": "text",
            "name_format": "text",
            "tags": [r.part] + ([] if r.visible else ["hidden"]),
            "visibility": "visible" if r.visible else hidden_visibility,
        })
    total = _round(sum(t["score"] for t in tests))

    visible = [r for r in report.results if r.visible]
    n_hidden = len(report.results) - len(visible)
    out = [isolation_header(report)] + _notes_block(report, hide_hidden=hidden_visibility != "visible") + [
        "",
        f"Visible checks: {_fmt(sum(t['score'] for t in tests if 'hidden' not in t['tags']))}"
        f" / {_fmt(sum(r.points for r in visible))} points.",
    ]
    if n_hidden:
        shown = "after the grades are published" if hidden_visibility == "after_published" else (
            "after the due date" if hidden_visibility == "after_due_date" else
            "to instructors only" if hidden_visibility == "hidden" else "below")
        out.append(f"{n_hidden} hidden check(s) are graded too; their results are shown {shown}.")
    if extra_output:
        out += ["", extra_output]

    results: dict = {"score": total}
    if execution_time is not None:
        results["execution_time"] = int(math.ceil(max(execution_time, 0.0)))
    results["output"] = "\n".join(out)
    results["output_format"] = "text"
    if visibility is not None:
        results["visibility"] = visibility
    results["stdout_visibility"] = stdout_visibility
    results["tests"] = tests
    return results


def error_results(message: str, *, execution_time: float | None = None,
                  stdout_visibility: str = "hidden") -> dict:
    """results.json for a submission that could not be graded at all: score 0 and why."""
    results: dict = {"score": 0.0}
    if execution_time is not None:
        results["execution_time"] = int(math.ceil(max(execution_time, 0.0)))
    results["output"] = ("gencourse autograder: your submission could not be graded.\n" + message.strip())
    results["output_format"] = "text"
    results["visibility"] = "visible"
    results["stdout_visibility"] = stdout_visibility
    results["tests"] = [{
        "name": "Submission could be graded",
        "number": "0.1",
        "score": 0.0,
        "max_score": 0.0,
        "status": "failed",
        "output": message.strip(),
        "output_format": "text",
        "visibility": "visible",
    }]
    return results


def _atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        # mkstemp makes 0600 files: keep the mode of the file replaced, or a plain file's 0644
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(results: dict, path: str | os.PathLike) -> dict:
    """Write a results dict (after checking it against the spec) as JSON."""
    problems = validate_results(results)
    if problems:
        raise ValueError("results.json would not follow Gradescope's specification: " + "; ".join(problems))
    _atomic_write(Path(path), json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results


def write_results_json(report: Report, path: str | os.PathLike, **options) -> dict:
    """Write Gradescope's results.json for `report` to `path`; returns the dict written.

    Options are those of `results_json` (hidden_visibility, visibility,
    stdout_visibility, execution_time, extra_output).
    """
    return write_json(results_json(report, **options), path)


def validate_results(results: dict) -> list[str]:
    """What in `results` does not follow Gradescope's results.json specification (empty: all good)."""
    problems: list[str] = []

    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not isinstance(results, dict):
        return ["results.json must be a JSON object"]
    known = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
             "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
    for key in results:
        if key not in known:
            problems.append(f"unknown top-level key {key!r}")
    tests = results.get("tests")
    if "score" not in results:
        if not isinstance(tests, list) or not tests or any(
                not isinstance(t, dict) or "score" not in t for t in tests):
            problems.append("no top-level score, and not every test has a score")
    elif not number(results["score"]):
        problems.append(f"score must be a number, not {results['score']!r}")
    if "execution_time" in results and not number(results["execution_time"]):
        problems.append("execution_time must be a number of seconds")
    if "output" in results and not isinstance(results["output"], str):
        problems.append("output must be a string")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in results and results[key] not in FORMATS:
            problems.append(f"{key} must be one of {FORMATS}")
    for key in ("visibility", "stdout_visibility"):
        if key in results and results[key] not in VISIBILITIES:
            problems.append(f"{key} must be one of {VISIBILITIES}, not {results[key]!r}")
    if "extra_data" in results and not isinstance(results["extra_data"], dict):
        problems.append("extra_data must be an object")
    if tests is not None:
        if not isinstance(tests, list):
            problems.append("tests must be a list")
            tests = []
        test_keys = {"score", "max_score", "status", "name", "name_format", "number", "output",
                     "output_format", "tags", "visibility", "extra_data"}
        for i, t in enumerate(tests):
            where = f"tests[{i}]"
            if not isinstance(t, dict):
                problems.append(f"{where} must be an object")
                continue
            for key in t:
                if key not in test_keys:
                    problems.append(f"{where}: unknown key {key!r}")
            for key in ("score", "max_score"):
                if key in t and not number(t[key]):
                    problems.append(f"{where}.{key} must be a number, not {t[key]!r}")
            for key in ("name", "number", "output"):
                if key in t and not isinstance(t[key], str):
                    problems.append(f"{where}.{key} must be a string")
            for key in ("name_format", "output_format"):
                if key in t and t[key] not in FORMATS:
                    problems.append(f"{where}.{key} must be one of {FORMATS}")
            if "status" in t and t["status"] not in STATUSES:
                problems.append(f"{where}.status must be one of {STATUSES}")
            if "visibility" in t and t["visibility"] not in VISIBILITIES:
                problems.append(f"{where}.visibility must be one of {VISIBILITIES}, not {t['visibility']!r}")
            if "tags" in t and (not isinstance(t["tags"], list) or not all(isinstance(x, str) for x in t["tags"])):
                problems.append(f"{where}.tags must be a list of strings")
            if number(t.get("score")) and number(t.get("max_score")) and t["score"] > t["max_score"] + 1e-9:
                problems.append(f"{where}: score {t['score']} exceeds max_score {t['max_score']}")
        if number(results.get("score")) and tests and all(isinstance(t, dict) and number(t.get("score")) for t in tests):
            total = sum(t["score"] for t in tests)
            if abs(total - results["score"]) > 1e-6:
                problems.append(f"score {results['score']} differs from the sum of the test scores {total}")
    for i, entry in enumerate(results.get("leaderboard") or []):
        if not isinstance(entry, dict) or "name" not in entry or "value" not in entry:
            problems.append(f"leaderboard[{i}] needs a name and a value")
    return problems


# --------------------------------------------------------------------------- feedback

def feedback_text(report: Report, *, include_hidden: bool = True) -> str:
    """A readable feedback file: header, each check by part with points, status and message, total."""
    title = f"Feedback: {report.assignment}, {report.student}"
    lines = [title, "=" * len(title), "", isolation_header(report)]
    lines += _notes_block(report)
    results = [r for r in report.results if include_hidden or r.visible]
    for part in parts_in_order(report):
        rs = [r for r in results if r.part == part]
        if not rs:
            continue
        got, of = sum(r.score for r in rs), sum(r.points for r in rs)
        head = f"Part {part}: {_fmt(got)} / {_fmt(of)} points"
        lines += ["", head, "-" * len(head)]
        for r in rs:
            tag = "" if r.visible else " (hidden check)"
            lines.append(f"[{status_of(r)}] {_fmt(r.score)} / {_fmt(r.points)}  {r.name}{tag}")
            for msg_line in (r.message or "").strip().splitlines():
                lines.append(f"    {msg_line}")
    got = sum(r.score for r in results)
    of = sum(r.points for r in results)
    pct = f" ({100 * got / of:.0f} %)" if of > 0 else ""
    lines += ["", f"Total: {_fmt(got)} / {_fmt(of)} points{pct}"]
    if not include_hidden and len(results) < len(report.results):
        lines.append(f"({len(report.results) - len(results)} hidden check(s) not shown.)")
    return "\n".join(lines) + "\n"


def write_feedback(report: Report, path: str | os.PathLike, *, include_hidden: bool = True) -> Path:
    """Write `feedback_text(report)` to `path` (a .txt or .md file) and return the path."""
    path = Path(path)
    _atomic_write(path, feedback_text(report, include_hidden=include_hidden))
    return path


# --------------------------------------------------------------------------- CSV

KEY_COLUMNS = ("student", "assignment")
FIXED_COLUMNS = KEY_COLUMNS + ("score", "max_score")


def check_column(result: CheckResult) -> str:
    """The CSV column of one check: "<part>: <check name>"."""
    return f"{result.part}: {result.name}"


def grade_row(report: Report) -> dict:
    """One CSV row: student, assignment, total, maximum, then one column per check (its score)."""
    row = {"student": report.student, "assignment": report.assignment,
           "score": _fmt(report.score), "max_score": _fmt(report.max_score)}
    parts = parts_in_order(report)
    for r in sorted(report.results, key=lambda r: parts.index(r.part)):   # by part, then in check order
        row[check_column(r)] = _fmt(r.score)
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
    _atomic_write(path, buf.getvalue())


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


FEEDBACK_NAME = "feedback.txt"
RESULTS_NAME = "results.json"
GRADES_NAME = "grades.csv"


def write_outputs(report: Report, out_dir: str | os.PathLike, *, csv_path: str | os.PathLike | None = None,
                  hidden_visibility: str = "after_published") -> None:
    """The files of one graded submission: <out_dir>/results.json and feedback.txt, and its CSV row."""
    out_dir = Path(out_dir)
    write_results_json(report, out_dir / RESULTS_NAME, hidden_visibility=hidden_visibility)
    write_feedback(report, out_dir / FEEDBACK_NAME)
    if csv_path is not None:
        append_csv([grade_row(report)], csv_path)


def write_batch_outputs(reports, out_dir: str | os.PathLike, *,
                        hidden_visibility: str = "after_published") -> Path:
    """What a graded batch hands out: OUT/<student>/results.json and feedback.txt, and OUT/grades.csv.

    `reports` is {student: Report} (as `grade_batch` returns) or a list of
    Reports. The per-student files are rewritten from the reports, so a resumed
    batch leaves the same files as an uninterrupted one. The CSV is updated in
    place (`append_csv`): one row per student, rows of students graded by an
    earlier batch into the same folder are kept. Returns the CSV's path.
    """
    out_dir = Path(out_dir)
    items = reports.items() if isinstance(reports, dict) else ((r.student, r) for r in reports)
    items = sorted(((folder, r) for folder, r in items if r is not None), key=lambda fr: fr[0])
    for folder, report in items:
        write_outputs(report, out_dir / folder, hidden_visibility=hidden_visibility)
    return append_csv([grade_row(r) for _, r in items], out_dir / GRADES_NAME)
