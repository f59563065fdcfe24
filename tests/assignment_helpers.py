"""What the assignment tests share: planted notebooks, the fast copy of an assignment, markup checks."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import nbformat
import numpy as np

from gencourse.grading import REGISTRY, register
from gencourse.grading import get_assignment
from gencourse.grading.checklist import collect_checks
from test_vae_assignment import grade_ids


def fast_key(key: str) -> str:
    """The assignment `key` without its slow checks (hidden ones too), registered as `key + "fast"` for the tests."""
    fast = f"{key}fast"
    if fast not in REGISTRY:
        full = get_assignment(key)
        register(dataclasses.replace(full, track=f"{full.track}fast", checks=[c for c in full.checks if not c.slow],
                                     slow_checks=False))
    return fast


def plant(source: Path, path: Path, mistakes: dict) -> Path:
    """A copy of the notebook `source` with solution regions replaced: {cell: body} replaces the first
    region of the cell, {cell: {index: body}} the regions with those indexes."""
    nb = nbformat.read(source, as_version=4)
    cells = grade_ids(nb)
    for gid, bodies in mistakes.items():
        bodies = bodies if isinstance(bodies, dict) else {0: bodies}
        src = cells[gid].source
        regions = list(re.finditer(r"^( *)### BEGIN SOLUTION\n.*?^ *### END SOLUTION\n?", src, flags=re.M | re.S))
        for index in sorted(bodies, reverse=True):      # from the end, so earlier offsets stay valid
            region = regions[index]
            new = "".join(region.group(1) + line + "\n" for line in bodies[index].strip("\n").splitlines())
            src = src[:region.start()] + new + src[region.end():]
        cells[gid].source = src
    nbformat.write(nb, path)
    return path


def grader_errors(report) -> list:
    return [n for n in report.notes if "grader error" in n]


def check_markup(source: Path, key: str, parts: list, answers, training_part: str) -> dict:
    """The nbgrader markup every assignment notebook follows; the cells by grade_id, for more checks.

    A locked setup cell; each part a solution cell followed by its locked test cell (visible
    checks, then hidden ones), worth the points of its checks; written answers with rubrics
    (3 points each); the training test cell after every part.
    """
    nb = nbformat.read(source, as_version=4)
    assert nb.metadata["gencourse"]["assignment"] == key
    cells = grade_ids(nb)
    assignment = get_assignment(key)
    assert assignment.parts == parts
    assert cells["setup"].metadata["nbgrader"]["locked"] and cells["setup"].cell_type == "code"
    for part in parts:
        meta = cells[part].metadata["nbgrader"]
        assert meta["solution"] and not meta["grade"] and cells[part].cell_type == "code"
        assert "### BEGIN SOLUTION" in cells[part].source
    for answer in answers:
        meta = cells[answer].metadata["nbgrader"]
        assert cells[answer].cell_type == "markdown" and meta["grade"] and meta["solution"] and meta["points"] == 3
        assert "Rubric" in cells[answer].source and "### BEGIN SOLUTION" in cells[answer].source
    order = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    checks, notes, _ = collect_checks(assignment)
    assert not notes
    for part in [*parts, training_part]:
        meta = cells[f"test_{part}"].metadata["nbgrader"]
        assert meta["grade"] and meta["locked"] and not meta["solution"]
        assert meta["points"] == sum(c.points for c in checks if c.part == part)
        assert f'run_visible("{key}", "{part}", globals())' in cells[f"test_{part}"].source
    for part in parts:      # each part tested after its cell, the training after every part
        assert order.index(part) < order.index(f"test_{part}") < order.index(f"test_{training_part}")
        hidden = cells[f"test_{part}"].source.split("### BEGIN HIDDEN TESTS")[1]
        assert f'run_hidden("{key}", "{part}", globals())' in hidden
    return cells


def check_hidden_inputs(key: str, parts: list, hidden_file: str) -> None:
    """Hidden checks cover every part, and none asks about an input a visible check shows."""
    assignment = get_assignment(key)
    checks, _, path = collect_checks(assignment)
    assert path is not None and path.name == hidden_file
    hidden = [c for c in checks if not c.visible]
    assert {c.part for c in hidden} == set(parts)
    visible_inputs = [call.inputs for c in assignment.checks if not c.slow for call in c.calls()]
    for check in hidden:
        for call in check.calls():
            for seen in visible_inputs:
                assert not all(k in seen and np.shape(seen[k]) == np.shape(v) and np.array_equal(seen[k], v)
                               for k, v in call.inputs.items())


def grade_solutions(sources: dict, key: str) -> dict:
    """{track: report} of each solution notebook graded once (visible and hidden checks, slow ones too)."""
    from gencourse.grading.grade import grade_notebook

    out = {}
    for track, path in sources.items():
        start = time.time()
        out[track] = grade_notebook(path, f"{key}-{track}", student="solution")
        print(f"grading the {track} solution: {time.time() - start:.0f} s")
    return out


def assert_full_marks(report, points: float, parts: set) -> None:
    lost = [(r.name, r.message) for r in report.results if r.score < r.points]
    assert not lost, lost
    assert report.score == report.max_score == points
    assert {r.part for r in report.results} == parts
    assert not grader_errors(report), report.notes


def assert_untouched(report, points: float) -> None:
    """An untouched release: no point, every message "not implemented yet", no grader error."""
    assert report.score == 0 and report.max_score == points
    for r in report.results:
        assert r.message.startswith("not implemented yet"), (r.name, r.message)
    assert not grader_errors(report), report.notes


def assert_lost_exactly(report, expected: dict) -> None:
    """The checks named in `expected` scored 0 with their hint ({check name: hint}); every other one full."""
    results = {r.name: r for r in report.results}
    lost = {name for name, r in results.items() if r.score < r.points}
    assert lost == set(expected), {n: results[n].message for n in lost ^ set(expected) if n in results}
    for name, hint in expected.items():
        assert results[name].score == 0 and hint in results[name].message, (name, results[name].message)
    assert report.score == report.max_score - sum(results[n].points for n in expected)
    assert not grader_errors(report), report.notes
