"""Grading a batch of notebooks, each under a supervisor process of its own.

`grade_batch` runs `python -m gencourse.grading.batch supervise ...` per
submission, in parallel, skipping the ones already graded, so that a
submission that kills its parent costs only its own grade. The supervisor
grades (`grade.grade_notebook`) and prints the report as one marked line after
the worker and all it started are dead; the batch takes the report from that
line only (never from a file a submission could have planted) and writes
OUT/<student>/report.json, results.json and feedback.txt once, then the rows
of OUT/grades.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .contract import Assignment, Check, CheckResult, Report
from .grade import grade_notebook, student_id
from .grades_csv import append_csv, grade_row
from .checklist import collect_checks
from .registry import defining_modules, get_assignment
from .report import GRADES_NAME, REPORT_NAME, read_report, report_from_dict, report_to_dict, write_outputs
from .sandbox import Limits, protect, reap_job, scratch_base
from .sandbox.session import ALLOCATOR

REPORT_MARK = b"GENCOURSE-REPORT "


def failed_report(student: str, assignment: Assignment, checks: list[Check], why: str) -> Report:
    """Every check at 0 points with `why`: what a submission that took its grader down earns."""
    results = [CheckResult(c.name, c.part, float(c.points), 0.0, why, c.visible) for c in checks]
    return Report(student=student, assignment=assignment.key, results=results,
                  isolation=["the supervisor of this submission did not finish"], notes=[why])


def _expand(paths) -> list[Path]:
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            out.append(p)
    return out


def grade_batch(paths, assignment_key: str, out_dir, jobs: int = 1, force: bool = False, *,
                hidden_dir=None, visible_only: bool = False, solutions_dir=None, progress: bool = True,
                timeout: float | None = None, limits: Limits | None = None) -> dict[str, Report]:
    """Grade many submissions, each under a supervisor process of its own; {student: Report}."""
    from ..progress import tqdm

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
    modules = [m for m in defining_modules(assignment) if not m.startswith(__package__)]
    env = {**ALLOCATOR, **os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    hide = [str(out_dir.resolve())] + [str(Path(p).resolve().parent) for p in files]
    common = os.path.commonpath([str(p.resolve().parent) for p in files]) if files else None
    if common and common != "/":
        hide.append(common)

    def one(item):
        sid, nb = item
        folder = out_dir / sid
        cmd = [sys.executable, "-m", "gencourse.grading.batch", "supervise", str(nb),
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
        job = tempfile.mkdtemp(prefix="gencourse-job-", dir=scratch_base())
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
        if report is None:
            tail = (output or b"").decode("utf-8", errors="replace").strip().splitlines()[-3:]
            text = (why or "the grader's supervisor wrote no report") + \
                   (": " + " | ".join(tail)[:400] if tail else "") + \
                   " (did the submission kill its parent process?)"
            checks, _, _ = collect_checks(assignment, visible_only=visible_only, hidden_dir=hidden_dir)
            report = failed_report(sid, assignment, checks, text)
        write_outputs(report, folder)
        return sid, report

    with tqdm(total=len(students), desc=f"grading {assignment_key}", unit="nb", disable=not progress,
              initial=len(students) - len(todo)) as bar:
        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
            for sid, report in pool.map(one, todo.items()):
                reports[sid] = report
                bar.update(1)
    done = {s: reports[s] for s in students if reports.get(s) is not None}
    append_csv([grade_row(r) for _, r in sorted(done.items())], out_dir / GRADES_NAME)
    return done


# --------------------------------------------------------------------------- the supervisor


def supervise(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gencourse.grading.batch supervise")
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
    print(f"{report.student}: {report.score:g} / {report.max_score:g}")
    sys.stdout.buffer.write(REPORT_MARK + json.dumps(report_to_dict(report)).encode() + b"\n")
    sys.stdout.flush()
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["supervise"]:
        return supervise(argv[1:])
    print("usage: python -m gencourse.grading.batch supervise NOTEBOOK --assignment KEY --out DIR ...",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
