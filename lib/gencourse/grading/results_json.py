"""Gradescope's results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/).

`results_json` builds it from a `Report`, `error_results` for a submission
that could not be graded, and `validate_results` checks a dict against the
specification before `write_json` writes it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .contract import Report
from .report import fmt_points, notes_block, test_numbers, round_score, atomic_write, isolation_header, parts_in_order, status_of

# Gradescope's visibility values, from the most to the least visible.
VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
# Allowed values of the "*_format" fields of results.json.
FORMATS = ("text", "simple_format", "html", "md", "ansi")
STATUSES = ("passed", "failed")


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
    ordered = sorted(zip(report.results, test_numbers(report)), key=lambda rn: parts.index(rn[0].part))
    for r, number in ordered:
        score = min(max(round_score(r.score), 0.0), max(round_score(r.points), 0.0))
        tests.append({
            "name": f"{r.part}: {r.name}",
            "number": number,
            "score": score,
            "max_score": round_score(r.points),
            "output": r.message or status_of(r),
            "output_format": "text",
            "name_format": "text",
            "tags": [r.part] + ([] if r.visible else ["hidden"]),
            "visibility": "visible" if r.visible else hidden_visibility,
        })
    total = round_score(sum(t["score"] for t in tests))

    visible = [r for r in report.results if r.visible]
    n_hidden = len(report.results) - len(visible)
    out = [isolation_header(report)] + notes_block(report, hide_hidden=hidden_visibility != "visible") + [
        "",
        f"Visible checks: {fmt_points(sum(t['score'] for t in tests if 'hidden' not in t['tags']))}"
        f" / {fmt_points(sum(r.points for r in visible))} points.",
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


def write_json(results: dict, path: str | os.PathLike) -> dict:
    """Write a results dict (after checking it against the spec) as JSON."""
    problems = validate_results(results)
    if problems:
        raise ValueError("results.json would not follow Gradescope's specification: " + "; ".join(problems))
    atomic_write(Path(path), json.dumps(results, indent=2, ensure_ascii=False) + "\n")
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
