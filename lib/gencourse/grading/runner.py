"""Grading one notebook, or a batch of them, with every judgment in the grader's process.

`grade_notebook` takes the graded cells out of a submission, asks one isolated
worker session (fresh workers after a crash or hang) for the answers of every
check's calls, and judges each check here. `grade_batch` grades each
submission under a supervisor process of its own (`python -m
gencourse.grading.runner supervise ...`), in parallel, skipping the ones
already graded, so that a submission that kills its parent costs only its own
grade. The supervisor writes `OUT/<student>/report.json` (`report_to_dict`).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .checks import REGISTRY, Assignment, Call, Check, CheckResult, Reply, Report
from .notebook import Notebook, graded_sources, read_notebook
from .report import write_batch_outputs
from .sandbox import Limits, _scratch_base, protect, reap_job, run_worker

REPORT_NAME = "report.json"
REPORT_MARK = b"GENCOURSE-REPORT "
ASSIGNMENT_MODULES = ("gencourse.grading.vae_checks", "gencourse.grading.cyclegan_checks",
                      "gencourse.grading.stylegan_checks")
REPO = Path(__file__).resolve().parents[3]


# --------------------------------------------------------------------------- assignments and checks


def _try_import(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise


def get_assignment(key: str, modules=()) -> Assignment:
    """The registered assignment `key` ("vae-tf"), importing the modules that register it.

    Tried in order until `key` is registered: the given modules, those in
    $GENCOURSE_ASSIGNMENT_MODULES (comma-separated), then the package's own
    assignment modules, the one named like the assignment first.
    """
    if key in REGISTRY:
        return REGISTRY[key]
    env = [m for m in os.environ.get("GENCOURSE_ASSIGNMENT_MODULES", "").split(",") if m]
    name = key.split("-")[0]
    own = sorted(ASSIGNMENT_MODULES, key=lambda m: not m.rsplit(".", 1)[-1].startswith(name))
    for module in [*modules, *env, *own]:
        _try_import(module)
        if key in REGISTRY:
            return REGISTRY[key]
    known = ", ".join(sorted(REGISTRY)) or "none"
    raise ValueError(f"unknown assignment {key!r} (known: {known})")


def default_hidden_dir() -> Path | None:
    d = Path(os.environ.get("GENCOURSE_HIDDEN_DIR") or REPO / "autograder" / "hidden")
    return d if d.is_dir() else None


def hidden_file(assignment: Assignment, hidden_dir) -> Path | None:
    if hidden_dir is None:
        return None
    for name in (f"{assignment.key}.py", f"{assignment.name}.py"):
        p = Path(hidden_dir) / name
        if p.is_file():
            return p
    return None


def load_hidden_checks(assignment: Assignment, path: Path) -> list[Check]:
    """`checks(assignment)` of the hidden-checks file, loaded by path; only its hidden checks."""
    protect(path)
    protect(path.parent)
    spec = importlib.util.spec_from_file_location(f"gencourse_hidden_{assignment.name}_{assignment.track}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [c for c in module.checks(assignment) if not c.visible]


def collect_checks(assignment: Assignment, *, visible_only=False, hidden_dir=None) -> tuple[list[Check], list[str], Path | None]:
    """The visible checks and (unless visible_only) the hidden ones; notes on what went wrong."""
    checks = [c for c in assignment.checks if c.visible]
    notes: list[str] = []
    path = None
    if not visible_only:
        hdir = hidden_dir if hidden_dir is not None else default_hidden_dir()
        path = hidden_file(assignment, hdir)
        if path is not None:
            try:
                checks += load_hidden_checks(assignment, path)
            except Exception as e:  # noqa: BLE001 - an instructor's bug, reported, not raised
                notes.append(f"grader error: the hidden checks in {path.name} could not be loaded "
                             f"({type(e).__name__}: {e}); only the visible checks were run")
        elif hidden_dir is not None:
            notes.append(f"grader note: no hidden checks for {assignment.key} in {hidden_dir}")
    return checks, notes, path


def find_source_notebook(assignment: Assignment, solutions_dir=None) -> Path | None:
    candidates = [solutions_dir, os.environ.get("GENCOURSE_SOLUTIONS"), REPO / "solutions", Path.cwd() / "solutions"]
    for d in candidates:
        if d and (Path(d) / assignment.notebook).is_file():
            return Path(d) / assignment.notebook
    return None


def student_id(path) -> str:
    """nbgrader's submitted/<student>/<assignment>/<nb>.ipynb -> <student>; otherwise the file stem."""
    p = Path(path).resolve()
    parts = p.parts
    if len(parts) >= 4 and parts[-4] == "submitted":
        return parts[-3]
    return p.stem


# --------------------------------------------------------------------------- one notebook


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


def _judge(check: Check, replies: dict[str, Reply]) -> tuple[float, str, str | None]:
    """(score, message, grader-bug note); a judge that raises costs 0 points and is reported."""
    try:
        v = check.judge(replies)
        score = float(v.score)
        if not math.isfinite(score):
            raise ValueError(f"the judge gave a score of {score}")
        return max(0.0, min(float(check.points), score)), str(v.message), None
    except Exception as e:  # noqa: BLE001
        why = f"{type(e).__name__}: {e}"
        return 0.0, f"grader error in this check ({why}); please tell your instructor", \
            f"grader error: the judge of {check.name!r} raised {why}"


def grade_notebook(path, assignment_key: str, *, visible_only: bool = False, hidden_dir=None,
                   student: str | None = None, limits: Limits | None = None, solutions_dir=None,
                   hide=()) -> Report:
    """Grade one submission: every check's calls in isolated workers, every judgment here."""
    assignment = get_assignment(assignment_key)
    student = student or student_id(path)
    checks, notes, hpath = collect_checks(assignment, visible_only=visible_only, hidden_dir=hidden_dir)
    student_nb = read_notebook(path)
    src = find_source_notebook(assignment, solutions_dir)
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

    limits = dataclasses.replace(limits) if limits is not None else Limits.for_assignment(assignment)
    # Covered by empty file systems in the worker's mount namespace (as root): the hidden checks
    # and the folder around them, the instructor's solutions, the submission's folder. The
    # sandbox leaves out any that holds what the worker needs (the package, the interpreter).
    cover = [REPO / "autograder", REPO / "solutions", Path(path).resolve().parent]
    if hpath is not None:
        cover += [hpath.parent, hpath.parent.parent]
    if src is not None:
        cover.append(src.parent)
    limits.hide = tuple(dict.fromkeys([*limits.hide, *[str(h) for h in hide], *[str(c) for c in cover]]))
    isolation: list[str] = []
    replies_by_wire: dict[str, Reply] = {}
    if wire:
        try:
            replies_by_wire, isolation = run_worker(assignment, cells, wire, limits, notes=notes)
        except Exception as e:  # noqa: BLE001 - the machine, not the student: report it, never crash
            why = f"grader error: the worker could not be run ({type(e).__name__}: {e})"
            notes.append(why)
            replies_by_wire = {c.key: Reply(error=why) for c in wire}

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
        score, message, bug = _judge(check, replies)
        if bug:
            notes.append(bug)
        if score < check.points:
            for n in notes:
                if f"cell {check.part!r}" in n and not n.startswith("grader"):
                    message += f" [{n}]"
                    break
        results.append(CheckResult(check.name, check.part, float(check.points), score, message, check.visible))
    if not isolation:
        isolation = ["no student code was run (no graded cell to run)"]
    return Report(student=student, assignment=assignment.key, results=results, isolation=isolation,
                  notes=list(dict.fromkeys(notes)))


# --------------------------------------------------------------------------- reports as JSON


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
        "notes": list(report.notes),
    }


def report_from_dict(d: dict) -> Report:
    results = [CheckResult(name=r["name"], part=r["part"], points=float(r["points"]), score=float(r["score"]),
                           message=r["message"], visible=bool(r.get("visible", True))) for r in d["results"]]
    return Report(student=d["student"], assignment=d["assignment"], results=results,
                  isolation=list(d.get("isolation", [])), notes=list(d.get("notes", [])))


def write_report(report: Report, folder) -> Path:
    """OUT/<student>/report.json, written atomically (a file the student planted is replaced)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    protect(folder)
    target = folder / REPORT_NAME
    tmp = folder / f".{REPORT_NAME}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report_to_dict(report), f, indent=2)
        f.write("\n")
    os.replace(tmp, target)
    return target


def read_report(folder) -> Report | None:
    try:
        with open(Path(folder) / REPORT_NAME, encoding="utf-8") as f:
            return report_from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def failed_report(student: str, assignment: Assignment, checks: list[Check], why: str) -> Report:
    """Every check at 0 points with `why`: what a submission that took its grader down earns."""
    results = [CheckResult(c.name, c.part, float(c.points), 0.0, why, c.visible) for c in checks]
    return Report(student=student, assignment=assignment.key, results=results,
                  isolation=["the supervisor of this submission did not finish"], notes=[why])


# --------------------------------------------------------------------------- many notebooks


def _expand(paths) -> list[Path]:
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            out.append(p)
    return out


def _assignment_modules(assignment: Assignment) -> list[str]:
    """Modules that define the assignment's checks, for the supervisor to import."""
    mods = []
    for c in assignment.checks:
        for fn in (c.calls, c.judge):
            m = getattr(fn, "__module__", None)
            if m and m != "__main__" and m not in mods:
                mods.append(m)
    return mods


def grade_batch(paths, assignment_key: str, out_dir, jobs: int = 1, force: bool = False, *,
                hidden_dir=None, visible_only: bool = False, solutions_dir=None, progress: bool = True,
                timeout: float | None = None, limits: Limits | None = None) -> dict[str, Report]:
    """Grade many submissions, each under a supervisor process of its own; {student: Report}."""
    from tqdm import tqdm

    assignment = get_assignment(assignment_key)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    protect(out_dir)
    files = _expand(paths)
    students: dict[str, Path] = {}
    for p in files:
        sid = student_id(p)
        base, n = sid, 1
        while sid in students:
            n += 1
            sid = f"{base}-{n}"
        students[sid] = p
    todo = {s: p for s, p in students.items() if force or not (out_dir / s / REPORT_NAME).is_file()}
    reports = {s: read_report(out_dir / s) for s in students if s not in todo}
    lim = limits or Limits.for_assignment(assignment)
    if timeout is None:
        timeout = lim.total_seconds + 120
    modules = _assignment_modules(assignment)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    hide = [str(out_dir.resolve())] + [str(Path(p).resolve().parent) for p in files]
    common = os.path.commonpath([str(p.resolve().parent) for p in files]) if files else None
    if common and common != "/":
        hide.append(common)

    def one(item):
        sid, nb = item
        folder = out_dir / sid
        cmd = [sys.executable, "-m", "gencourse.grading.runner", "supervise", str(nb),
               "--assignment", assignment_key, "--out", str(folder), "--student", sid,
               "--limits", json.dumps({k: v for k, v in vars(lim).items() if k != "hide"})]
        for m in modules:
            cmd += ["--module", m]
        for h in hide:
            cmd += ["--hide", h]
        if hidden_dir is not None:
            cmd += ["--hidden", str(hidden_dir)]
        if visible_only:
            cmd += ["--visible-only"]
        if solutions_dir is not None:
            cmd += ["--solutions", str(solutions_dir)]
        if force:
            try:
                (folder / REPORT_NAME).unlink()
            except OSError:
                pass
        # The supervisor's scratch folders go into a folder of its own, removed here even when
        # the submission took its supervisor down before it could clean up.
        job = tempfile.mkdtemp(prefix="gencourse-job-", dir=_scratch_base())
        os.chmod(job, 0o711)
        try:
            return _supervised(sid, folder, cmd, dict(env, GENCOURSE_SCRATCH=job))
        finally:
            reap_job(job)
            shutil.rmtree(job, ignore_errors=True)

    def _supervised(sid, folder, cmd, env):
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
            why = None
            if proc.returncode != 0:
                how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                       else f"exited with status {proc.returncode}")
                why = f"the grader's supervisor for this submission {how}"
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            output, _ = proc.communicate()
            why = f"the grader's supervisor for this submission ran out of time ({timeout:.0f} s)"
        # A report counts only from a supervisor that finished, and comes through its stdout
        # (the last marked line, printed after the worker and all it started were dead), not
        # through the file system, where a submission without root may have planted one.
        report = None
        if why is None:
            for line in reversed((output or b"").splitlines()):
                if line.startswith(REPORT_MARK):
                    try:
                        report = report_from_dict(json.loads(line[len(REPORT_MARK):]))
                    except (ValueError, KeyError, TypeError):
                        report = None
                    break
            if report is not None:
                write_report(report, folder)
        if report is None:
            tail = (output or b"").decode("utf-8", errors="replace").strip().splitlines()[-3:]
            text = (why or "the grader's supervisor wrote no report") + \
                   (": " + " | ".join(tail)[:400] if tail else "") + \
                   " (did the submission kill its parent process?)"
            checks, _, _ = collect_checks(assignment, visible_only=visible_only, hidden_dir=hidden_dir)
            report = failed_report(sid, assignment, checks, text)
            write_report(report, folder)
        return sid, report

    with tqdm(total=len(students), desc=f"grading {assignment_key}", unit="nb", disable=not progress,
              initial=len(students) - len(todo)) as bar:
        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
            for sid, report in pool.map(one, todo.items()):
                reports[sid] = report
                bar.update(1)
    done = {s: reports[s] for s in students if reports.get(s) is not None}
    write_batch_outputs(done, out_dir)     # OUT/<student>/results.json + feedback.txt, OUT/grades.csv
    return done


# --------------------------------------------------------------------------- the supervisor


def supervise(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gencourse.grading.runner supervise")
    p.add_argument("notebook")
    p.add_argument("--assignment", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--student")
    p.add_argument("--hidden")
    p.add_argument("--solutions")
    p.add_argument("--visible-only", action="store_true")
    p.add_argument("--module", action="append", default=[])
    p.add_argument("--hide", action="append", default=[])
    p.add_argument("--limits")
    args = p.parse_args(argv)
    get_assignment(args.assignment, modules=args.module)
    limits = None
    if args.limits:
        limits = Limits(**json.loads(args.limits))
    report = grade_notebook(args.notebook, args.assignment, visible_only=args.visible_only,
                            hidden_dir=args.hidden, student=args.student, limits=limits,
                            solutions_dir=args.solutions, hide=args.hide)
    write_report(report, args.out)
    print(f"{report.student}: {report.score:g} / {report.max_score:g}")
    sys.stdout.buffer.write(REPORT_MARK + json.dumps(report_to_dict(report)).encode() + b"\n")
    sys.stdout.flush()
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["supervise"]:
        return supervise(argv[1:])
    print("usage: python -m gencourse.grading.runner supervise NOTEBOOK --assignment KEY --out DIR ...",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
