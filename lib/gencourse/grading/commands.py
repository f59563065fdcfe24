"""`gencourse grade` and `gencourse check`, and `run_visible` for a student's own kernel.

    gencourse grade SUBMISSION... --assignment KEY --out DIR [--jobs N] [--force] [--hidden DIR]
    gencourse check NOTEBOOK [--assignment KEY]

`run_visible(assignment_key, part, namespace)` runs the visible checks of one
part on a live namespace (a notebook's test cell, nbgrader's autograde) with
the same check definitions as the isolated grader: only the isolation differs.

Also runnable as `python -m gencourse.grading.commands grade|check ...`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .checks import Reply
from .gradebook import add_gradebook_argument, gradebook_from_args
from .notebook import notebook_assignment
from .worker import describe_exception, probe_outputs


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("grade", help="grade submissions in isolated workers (visible and hidden checks)")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="notebooks, or folders searched for notebooks (nbgrader's submitted/ works)")
    p.add_argument("--assignment", required=True, help="assignment key, e.g. vae-tf")
    p.add_argument("--out", required=True, help="folder for OUT/<student>/report.json")
    p.add_argument("--jobs", type=_positive, default=1, help="submissions graded in parallel (default 1)")
    p.add_argument("--force", action="store_true", help="regrade submissions that already have a report")
    p.add_argument("--hidden", help="folder with the hidden checks (default autograder/hidden)")
    p.add_argument("--solutions", help="folder with the source notebooks (default solutions/)")
    p.add_argument("--no-progress", action="store_true")
    add_gradebook_argument(p)
    p.set_defaults(func=run_grade)

    p = subparsers.add_parser("check", help="run the visible checks on a notebook, isolated like the grader")
    p.add_argument("notebook")
    p.add_argument("--assignment", help="assignment key (default: from the notebook's metadata)")
    p.set_defaults(func=run_check)


def run_grade(args) -> int:
    from .runner import grade_batch

    reports = grade_batch(args.submissions, args.assignment, args.out, jobs=args.jobs, force=args.force,
                          hidden_dir=args.hidden, solutions_dir=getattr(args, "solutions", None),
                          progress=not getattr(args, "no_progress", False))
    width = max([7] + [len(s) for s in reports])
    print(f"{'student':{width}}  {'score':>7}  {'max':>5}")
    for sid, r in sorted(reports.items()):
        print(f"{sid:{width}}  {r.score:7.2f}  {r.max_score:5g}")
    print(f"{len(reports)} reports in {args.out}/<student>/report.json "
          f"(with results.json and feedback.txt); grades in {args.out}/grades.csv")
    gradebook_from_args(args, reports.values())
    return 0


def print_report(report, file=None) -> None:
    file = file or sys.stdout
    for r in report.results:
        mark = "ok  " if r.score >= r.points else "FAIL"
        print(f"{mark} [{r.score:g}/{r.points:g}] {r.name}: {r.message}", file=file)
    for n in report.notes:
        print(f"note: {n}", file=file)
    print(f"total: {report.score:g} / {report.max_score:g} points", file=file)


def run_check(args) -> int:
    from .runner import grade_notebook

    key = args.assignment or notebook_assignment(args.notebook)
    if not key:
        raise ValueError(f"{args.notebook} does not say which assignment it is (metadata.gencourse.assignment); "
                         "pass --assignment, e.g. --assignment vae-tf")
    report = grade_notebook(args.notebook, key, visible_only=True)
    print_report(report)
    return 0


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
        try:
            v = check.judge(replies)
            score, message = float(v.score), v.message
        except Exception as e:  # noqa: BLE001
            score, message = 0.0, f"grader error in this check ({type(e).__name__}: {e})"
        out.append((check, score, message))
    return out


def run_visible(assignment_key: str, part: str, namespace: dict, *, quiet: bool = False) -> None:
    """The visible checks of `part` on `namespace`, in this process; AssertionError if a point is lost."""
    from .runner import get_assignment

    assignment = get_assignment(assignment_key)
    checks = [c for c in assignment.checks if c.visible and c.part == part]
    if not checks:
        raise ValueError(f"{assignment_key} has no visible check for the part {part!r}")
    results = judge_in_process(assignment, checks, namespace)
    if not quiet:
        for check, score, message in results:
            if score >= check.points:
                print(f"ok [{score:g}/{check.points:g}] {check.name}: {message}")
    lost = [(c, s, m) for c, s, m in results if s < c.points]
    if lost:
        raise AssertionError("\n".join(f"[{s:g}/{c.points:g}] {c.name}: {m}" for c, s, m in lost))


def run_hidden(assignment_key: str, part: str, namespace: dict, hidden_dir=None) -> None:
    """nbgrader's hidden tests: the part's hidden checks on `namespace`; AssertionError on any lost point.

    The checks come from autograder/hidden/<assignment>.py ($GENCOURSE_HIDDEN_DIR,
    the package's repository, or a parent of the working directory); without
    them the test fails, since the hidden points cannot be given.
    """
    from pathlib import Path

    from .runner import default_hidden_dir, get_assignment, hidden_file, load_hidden_checks

    assignment = get_assignment(assignment_key)
    here = Path.cwd().resolve()
    folders = [hidden_dir] if hidden_dir else [default_hidden_dir(),
                                               *[f / "autograder" / "hidden" for f in (here, *here.parents)]]
    path = next((p for p in (hidden_file(assignment, f) for f in folders if f) if p), None)
    if path is None:
        raise AssertionError(f"the hidden checks of {assignment.name} are not available here: "
                             "set GENCOURSE_HIDDEN_DIR to the autograder/hidden folder")
    checks = [c for c in load_hidden_checks(assignment, path) if c.part == part]
    lost = [(c, s, m) for c, s, m in judge_in_process(assignment, checks, namespace) if s < c.points]
    if lost:
        raise AssertionError("\n".join(f"[{s:g}/{c.points:g}] hidden check '{c.name}': {m}" for c, s, m in lost))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gencourse.grading.commands")
    sub = parser.add_subparsers(dest="command", required=True)
    add_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"gencourse {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
