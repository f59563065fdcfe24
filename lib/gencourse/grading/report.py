"""What one graded submission hands out, built from a `Report`, and the helpers of every format.

- `report_to_dict` / `write_report` / `read_report`: ``OUT/<student>/report.json``,
  the grader's own record (written once, by the batch, from what the
  submission's supervisor printed);
- `feedback_text` / `write_feedback`: the readable feedback file a student gets;
- `write_outputs` / `write_batch_outputs`: report.json's companions,
  OUT/<student>/results.json (Gradescope's format, `results_json.py`) and
  feedback.txt, and OUT/grades.csv (`grades_csv.py`).

Nothing here runs student code; it only formats what the grader judged.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .contract import CheckResult, Report
from .registry import REGISTRY
from .sandbox import protect

DIGITS = 4          # scores are rounded to this many decimals everywhere we write them
REPORT_NAME = "report.json"
FEEDBACK_NAME = "feedback.txt"
RESULTS_NAME = "results.json"
GRADES_NAME = "grades.csv"


def round_score(x: float) -> float:
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


def fmt_points(x: float) -> str:
    """A score as a person writes it: 2, 1.5, 0.3333."""
    x = round_score(x)
    return str(int(x)) if x == int(x) else f"{x:g}"


def parts_in_order(report: Report) -> list[str]:
    """The report's parts, in notebook order when the assignment is registered."""
    seen = list(dict.fromkeys(r.part for r in report.results))
    known = REGISTRY.get(report.assignment)
    if known is None:
        return seen
    ordered = [p for p in known.parts if p in seen]
    return ordered + [p for p in seen if p not in ordered]


def test_numbers(report: Report) -> list[str]:
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


def notes_block(report: Report, *, hide_hidden: bool = False) -> list[str]:
    notes = report.notes
    if hide_hidden:       # a note naming a hidden check would give it away before it is shown
        secret = [r.name for r in report.results if not r.visible]
        notes = [n for n in notes if not any(name in n for name in secret)]
    if not notes:
        return []
    return ["", "Notes:"] + [f"- {n}" for n in notes]


def atomic_write(path: Path, text: str) -> None:
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


# --------------------------------------------------------------------------- report.json

def report_to_dict(report: Report) -> dict:
    return {
        "format": "gencourse-report/1",
        "student": report.student,
        "assignment": report.assignment,
        "score": report.score,
        "max_score": report.max_score,
        "results": [{"name": r.name, "part": r.part, "points": r.points, "score": r.score,
                     "message": r.message, "visible": r.visible} for r in report.results],
        "isolation": list(report.isolation),
        "layers": list(report.layers),
        "notes": list(report.notes),
        "integrity": list(report.integrity),
    }


def report_from_dict(d: dict) -> Report:
    results = [CheckResult(name=r["name"], part=r["part"], points=float(r["points"]), score=float(r["score"]),
                           message=r["message"], visible=bool(r.get("visible", True))) for r in d["results"]]
    return Report(student=d["student"], assignment=d["assignment"], results=results,
                  isolation=list(d.get("isolation", [])), notes=list(d.get("notes", [])),
                  layers=list(d.get("layers", [])),
                  integrity=[e for e in d.get("integrity", []) if isinstance(e, dict)])


def write_report(report: Report, folder) -> Path:
    """OUT/<student>/report.json, written atomically (a file the student planted is replaced)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    protect(folder)
    target = folder / REPORT_NAME
    atomic_write(target, json.dumps(report_to_dict(report), indent=2) + "\n")
    return target


def read_report(folder) -> Report | None:
    try:
        with open(Path(folder) / REPORT_NAME, encoding="utf-8") as f:
            return report_from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- feedback

def feedback_text(report: Report, *, include_hidden: bool = True) -> str:
    """A readable feedback file: header, each check by part with points, status and message, total."""
    title = f"Feedback: {report.assignment}, {report.student}"
    lines = [title, "=" * len(title), "", isolation_header(report)]
    lines += notes_block(report)
    if report.integrity:
        lines += ["", "Integrity (is each part your own work?):"]
        lines += [f"- [{e.get('action')}] part {e.get('part')}: {e.get('message')}" for e in report.integrity]
    results = [r for r in report.results if include_hidden or r.visible]
    for part in parts_in_order(report):
        rs = [r for r in results if r.part == part]
        if not rs:
            continue
        got, of = sum(r.score for r in rs), sum(r.points for r in rs)
        head = f"Part {part}: {fmt_points(got)} / {fmt_points(of)} points"
        lines += ["", head, "-" * len(head)]
        for r in rs:
            tag = "" if r.visible else " (hidden check)"
            lines.append(f"[{status_of(r)}] {fmt_points(r.score)} / {fmt_points(r.points)}  {r.name}{tag}")
            for msg_line in (r.message or "").strip().splitlines():
                lines.append(f"    {msg_line}")
    got = sum(r.score for r in results)
    of = sum(r.points for r in results)
    pct = f" ({100 * got / of:.0f} %)" if of > 0 else ""
    lines += ["", f"Total: {fmt_points(got)} / {fmt_points(of)} points{pct}"]
    if not include_hidden and len(results) < len(report.results):
        lines.append(f"({len(report.results) - len(results)} hidden check(s) not shown.)")
    return "\n".join(lines) + "\n"


def write_feedback(report: Report, path: str | os.PathLike, *, include_hidden: bool = True) -> Path:
    """Write `feedback_text(report)` to `path` (a .txt or .md file) and return the path."""
    path = Path(path)
    atomic_write(path, feedback_text(report, include_hidden=include_hidden))
    return path


# --------------------------------------------------------------------------- every file of a batch

def write_outputs(report: Report, out_dir: str | os.PathLike, *, csv_path: str | os.PathLike | None = None,
                  hidden_visibility: str = "after_published") -> None:
    """The files of one graded submission: <out_dir>/report.json, results.json and feedback.txt, and its
    CSV row."""
    from .grades_csv import append_csv, grade_row
    from .results_json import write_results_json

    out_dir = Path(out_dir)
    write_report(report, out_dir)
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
    from .grades_csv import append_csv, grade_row

    out_dir = Path(out_dir)
    items = reports.items() if isinstance(reports, dict) else ((r.student, r) for r in reports)
    items = sorted(((folder, r) for folder, r in items if r is not None), key=lambda fr: fr[0])
    for folder, report in items:
        write_outputs(report, out_dir / folder, hidden_visibility=hidden_visibility)
    return append_csv([grade_row(r) for _, r in items], out_dir / GRADES_NAME)
