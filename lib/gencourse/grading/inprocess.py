"""A notebook's own test cells: the same checks and the same judge as the grader, in this process.

`run_visible(key, part, globals())` is what a released notebook's test cell
calls; `run_hidden` is what the instructor's source notebook adds between
nbgrader's HIDDEN TESTS markers (for `nbgrader autograde`). Only the isolation
differs from `gencourse grade`: the probes run on the live namespace, and
every verdict goes through `judging.judge`, so a test cell and the grader give
the same points for the same answer.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .contract import Reply
from .judging import judge
from .registry import get_assignment
from .worker import describe_exception, probe_outputs


def judge_in_process(assignment, checks, namespace: dict) -> list[tuple]:
    """(check, score, message) for `checks` run on a live namespace in this process.

    For the test cells of a notebook, where the student's kernel is the only process;
    the grader itself never does this (it uses the isolated worker).
    """
    probes = importlib.import_module(assignment.probes)
    out = []
    for check in checks:
        replies = {}
        for call in check.calls():
            try:
                fn = getattr(probes, call.probe)
                replies[call.key] = Reply(arrays=probe_outputs(fn(namespace, **call.inputs)))
            except Exception as e:  # noqa: BLE001 - the student's error is the answer
                replies[call.key] = Reply(error=describe_exception(e))
        score, message, _ = judge(check, replies)
        out.append((check, score, message))
    return out


def graded_namespace(assignment_key: str, notebook, solutions_dir=None) -> dict:
    """The namespace a worker builds for `notebook` (the trusted setup cells, the notebook's parts), built in
    this process: for the benchmarks and tests that run probes many times without a worker."""
    from .grade import _cells_to_run
    from .notebook import read_notebook
    from .paths import find_source_notebook

    assignment = get_assignment(assignment_key)
    src = find_source_notebook(assignment.notebook, solutions_dir)
    cells, _, _ = _cells_to_run(assignment, read_notebook(notebook), read_notebook(src) if src else None)
    namespace: dict = {"__name__": "__main__"}
    for gid, source in cells:
        exec(compile(source, f"<cell {gid!r}>", "exec"), namespace)
    return namespace


def _lost(results) -> list[tuple]:
    return [(c, s, m) for c, s, m in results if s < c.points]


def run_visible(assignment_key: str, part: str, namespace: dict, *, quiet: bool = False) -> None:
    """The visible checks of `part` on `namespace`, in this process; AssertionError if a point is lost."""
    assignment = get_assignment(assignment_key)
    checks = [c for c in assignment.checks if c.visible and c.part == part]
    if not checks:
        raise ValueError(f"{assignment_key} has no visible check for the part {part!r}")
    results = judge_in_process(assignment, checks, namespace)
    if not quiet:
        for check, score, message in results:
            if score >= check.points:
                print(f"ok [{score:g}/{check.points:g}] {check.name}: {message}")
    lost = _lost(results)
    if lost:
        raise AssertionError("\n".join(f"[{s:g}/{c.points:g}] {c.name}: {m}" for c, s, m in lost))


def run_hidden(assignment_key: str, part: str, namespace: dict, hidden_dir=None) -> None:
    """nbgrader's hidden tests: the part's hidden checks on `namespace`; AssertionError on any lost point.

    The checks come from autograder/hidden/<assignment>.py ($GENCOURSE_HIDDEN_DIR,
    the project's, or a parent of the working directory's); without them the
    test fails, since the hidden points cannot be given.
    """
    from .checklist import hidden_file, load_hidden_checks
    from .paths import default_hidden_dir

    assignment = get_assignment(assignment_key)
    here = Path.cwd().resolve()
    folders = [hidden_dir] if hidden_dir else [default_hidden_dir(),
                                               *[f / "autograder" / "hidden" for f in (here, *here.parents)]]
    path = next((p for p in (hidden_file(assignment, f) for f in folders if f) if p), None)
    if path is None:
        raise AssertionError(f"the hidden checks of {assignment.name} are not available here: "
                             "set GENCOURSE_HIDDEN_DIR to the autograder/hidden folder")
    checks = [c for c in load_hidden_checks(assignment, path) if c.part == part]
    lost = _lost(judge_in_process(assignment, checks, namespace))
    if lost:
        raise AssertionError("\n".join(f"[{s:g}/{c.points:g}] hidden check '{c.name}': {m}" for c, s, m in lost))
