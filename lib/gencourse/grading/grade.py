"""Grading one notebook, with every judgment in the grader's process.

`grade_notebook` takes the graded cells out of a submission (the setup cells
from the trusted source notebook), asks one isolated worker session (fresh
workers after a crash or hang) for the answers of every check's calls, and
judges each check here (docs/design.md, "One `gencourse grade`").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from . import integrity
from .contract import Assignment, Call, Check, CheckResult, Reply, Report
from .checklist import collect_checks
from .copies import skeleton_lines
from .judging import judge
from .notebook import Notebook, graded_sources, read_notebook
from .paths import find_source_notebook, private_folders
from .registry import get_assignment
from .sandbox import Limits, run_worker


def student_id(path) -> str:
    """nbgrader's submitted/<student>/<assignment>/<nb>.ipynb -> <student>; otherwise the file stem."""
    p = Path(path).resolve()
    parts = p.parts
    if len(parts) >= 4 and parts[-4] == "submitted":
        return parts[-3]
    return p.stem


def _cells_to_run(assignment: Assignment, student_nb: Notebook, source_nb: Notebook | None):
    """[(grade_id, source)] in the source notebook's order: setup cells trusted, parts from the student."""
    notes: list[str] = list(student_nb.notes)
    parts, part_notes = graded_sources(student_nb, assignment.parts)
    notes += part_notes
    if source_nb is not None and source_nb.readable:
        setup, setup_notes = graded_sources(source_nb, assignment.setup_cells, what="the source notebook")
        notes += [f"grader error: {n}" for n in setup_notes]
        order = source_nb.order
    else:
        setup, _ = graded_sources(student_nb, assignment.setup_cells)
        notes.append("grader note: the source notebook was not found; the setup cells came from the submission")
        order = student_nb.order
    wanted = list(assignment.setup_cells) + list(assignment.parts)
    rank = {gid: i for i, gid in enumerate(order)}
    ordered = sorted(wanted, key=lambda g: (rank.get(g, len(rank) + wanted.index(g))))
    cells = []
    for gid in ordered:
        if gid in setup and gid in assignment.setup_cells:
            cells.append((gid, setup[gid]))
        elif gid in parts and gid in assignment.parts:
            cells.append((gid, parts[gid]))
    return cells, parts, notes


def grade_notebook(path, assignment_key: str, *, visible_only: bool = False, hidden_dir=None,
                   student: str | None = None, limits: Limits | None = None, solutions_dir=None,
                   hide=()) -> Report:
    """Grade one submission: every check's calls in isolated workers, every judgment here."""
    assignment = get_assignment(assignment_key)
    student = student or student_id(path)
    checks, notes, hpath = collect_checks(assignment, visible_only=visible_only, hidden_dir=hidden_dir)
    student_nb = read_notebook(path)
    src = find_source_notebook(assignment.notebook, solutions_dir)
    source_nb = read_notebook(src) if src else None
    cells, parts, cell_notes = _cells_to_run(assignment, student_nb, source_nb)
    if visible_only:    # a student's own check: no source notebook there, and no need to say so
        cell_notes = [n for n in cell_notes if not n.startswith("grader note: the source notebook")]
    notes += cell_notes

    # Every call of every check, under a key of its own (checks may reuse key names).
    wire: list[Call] = []
    per_check: list[tuple[Check, list[tuple[str, str]] | None, str | None]] = []
    for i, check in enumerate(checks):
        try:
            calls = list(check.calls())
            for call in calls:
                for name, value in call.inputs.items():
                    if np.asarray(value).dtype.kind not in "biuf":
                        raise TypeError(f"the input {name!r} of the call {call.key!r} is not a numeric array")
        except Exception as e:  # noqa: BLE001
            per_check.append((check, None, f"{type(e).__name__}: {e}"))
            continue
        keys = []
        for j, call in enumerate(calls):
            wkey = f"c{i:03d}-{j:03d}"
            keys.append((call.key, wkey))
            if check.part in parts or check.part not in assignment.parts:
                wire.append(Call(key=wkey, probe=call.probe, inputs=dict(call.inputs)))
        per_check.append((check, keys, None))

    findings, integrity_call = _integrity_plan(assignment, cells, parts, per_check, src or path, source_nb)
    if integrity_call is not None:
        wire.append(integrity_call)

    limits = dataclasses.replace(limits) if limits is not None else Limits.for_assignment(assignment)
    # Covered by empty file systems in the worker's mount namespace (as root): the hidden checks
    # and the folder around them, the instructor's solutions, the submission's folder. The
    # sandbox leaves out any that holds what the worker needs (the package, the interpreter).
    cover = [*private_folders(), Path(path).resolve().parent]
    if hpath is not None:
        cover += [hpath.parent, hpath.parent.parent]
    if src is not None:
        cover.append(src.parent)
    limits.hide = tuple(dict.fromkeys([*limits.hide, *[str(h) for h in hide], *[str(c) for c in cover]]))
    isolation: list[str] = []
    layers: list[str] = []
    replies_by_wire: dict[str, Reply] = {}
    if wire:
        try:
            replies_by_wire, isolation = run_worker(assignment, cells, wire, limits, notes=notes, layers=layers)
        except Exception as e:  # noqa: BLE001 - the machine, not the student: report it, never crash
            why = f"grader error: the worker could not be run ({type(e).__name__}: {e})"
            notes.append(why)
            replies_by_wire = {c.key: Reply(error=why) for c in wire}

    evidence = replies_by_wire.pop(integrity.INTEGRITY_KEY, None)
    if evidence is not None and evidence.ok and "evidence" in evidence.arrays:
        findings += integrity.worker_findings(evidence.arrays["evidence"], assignment.parts, parts)
    zeroed, integrity_entries = integrity.outcome(findings)

    results = []
    for check, keys, calls_error in per_check:
        if calls_error is not None:
            notes.append(f"grader error: the inputs of {check.name!r} could not be built ({calls_error})")
            results.append(CheckResult(check.name, check.part, float(check.points), 0.0,
                                       f"grader error while building this check's inputs ({calls_error}); "
                                       "please tell your instructor", check.visible))
            continue
        missing = check.part in assignment.parts and check.part not in parts
        replies = {}
        for key, wkey in keys:
            if missing:
                replies[key] = Reply(error=f"NameError: the cell {check.part!r} is missing from the notebook "
                                           "or is not a code cell")
            else:
                replies[key] = replies_by_wire.get(wkey, Reply(error="no answer came back"))
        score, message, bug = judge(check, replies)
        if bug:
            notes.append(bug)
        if check.part in zeroed and parts.get(check.part) is not None:
            score, message = 0.0, zeroed[check.part]
        if score < check.points:
            for n in notes:
                if f"cell {check.part!r}" in n and not n.startswith("grader"):
                    message += f" [{n}]"
                    break
        results.append(CheckResult(check.name, check.part, float(check.points), score, message, check.visible))
    if not isolation:
        isolation = ["no student code was run (no graded cell to run)"]
    return Report(student=student, assignment=assignment.key, results=results, isolation=isolation,
                  notes=list(dict.fromkeys(notes)), layers=layers, integrity=integrity_entries)


def _integrity_plan(assignment: Assignment, cells, parts: dict[str, str], per_check, notebook, source_nb):
    """The grader's own reading of the part cells (integrity.read_parts), and the call that has the
    worker's guard watch them run (None for an assignment that declares no solution modules)."""
    if not assignment.solution_modules:
        return [], None
    setup = {gid: text for gid, text in cells if gid in assignment.setup_cells}
    surface = integrity.locked_imports(notebook)
    given = {}
    if source_nb is not None and source_nb.readable:
        given, _ = graded_sources(source_nb, assignment.parts, what="the source notebook")
    skeletons = {gid: skeleton_lines(text) for gid, text in given.items()} if given else None
    findings = integrity.read_parts(parts, setup, assignment.solution_modules, surface, skeletons)
    call_parts = {wkey: check.part for check, keys, _ in per_check for _, wkey in keys or ()}
    config = integrity.worker_config(assignment.solution_modules, parts, call_parts, given)
    return findings, Call(key=integrity.INTEGRITY_KEY, probe=integrity.INTEGRITY_PROBE,
                          inputs={"config": np.frombuffer(config, np.uint8).copy()})
