"""`gencourse grade`, `check` and `nbgrader init` (also `python -m gencourse.grading.cli grade|check ...`).

    gencourse grade SUBMISSION... --assignment KEY --out DIR [--jobs N] [--force] [--hidden DIR]
    gencourse check NOTEBOOK [--assignment KEY]
    gencourse nbgrader init DIR [--assignment NAME]...
"""

from __future__ import annotations

import argparse
import sys

from ..arguments import positive
from .gradebook import add_gradebook_argument, gradebook_from_args
from .nbgrader_course import add_command as add_nbgrader_command
from .notebook import notebook_assignment


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("grade", help="grade submissions in isolated workers (visible and hidden checks)")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="notebooks, or folders searched for notebooks (nbgrader's submitted/ works)")
    p.add_argument("--assignment", required=True, help="assignment key NAME-TRACK (an unknown key lists the known ones)")
    p.add_argument("--out", required=True, help="folder for OUT/<student>/report.json")
    p.add_argument("--jobs", type=positive, default=1, help="submissions graded in parallel (default 1)")
    p.add_argument("--force", action="store_true", help="regrade submissions that already have a report")
    p.add_argument("--hidden", help="folder with the hidden checks (default autograder/hidden)")
    p.add_argument("--solutions", help="folder with the source notebooks (default solutions/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_gradebook_argument(p)
    p.set_defaults(func=run_grade)

    p = subparsers.add_parser("check", help="run the visible checks on a notebook, isolated like the grader",
                              epilog="exit status: 0 full marks, 1 points lost, 2 an error (the notebook "
                                     "or its assignment not found)")
    p.add_argument("notebook", help="the notebook (.ipynb) to check")
    p.add_argument("--assignment", help="assignment key (default: from the notebook's metadata)")
    p.set_defaults(func=run_check)

    add_nbgrader_command(subparsers)


def run_grade(args) -> int:
    from .batch import grade_batch

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
    from .grade import grade_notebook

    key = args.assignment or notebook_assignment(args.notebook)
    if not key:
        raise ValueError(f"{args.notebook} does not say which assignment it is (metadata.gencourse.assignment); "
                         "pass --assignment NAME-TRACK")
    report = grade_notebook(args.notebook, key, visible_only=True)
    print_report(report)
    return 0 if report.score >= report.max_score else 1     # a pre-submit hook or CI step fails on lost points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gencourse.grading.cli")
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
