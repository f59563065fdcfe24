"""Grading benchmark: `gencourse grade` against `nbgrader autograde`, and --jobs 1 against --jobs 2.

What it times, on the solution notebook of one assignment and track (a submission
that earns every point):

1. `gencourse grade` on one submission (the whole command, Python start-up included);
2. `nbgrader autograde` on the same notebook in a temporary course folder (after an
   untimed `nbgrader generate_assignment`). nbgrader runs every cell, training
   included; by default at the notebook's quick setting (GENCOURSE_EPOCHS=1,
   GENCOURSE_TRAIN_SIZE=2000), which favours nbgrader, so the speedup printed is a
   lower bound. `--nbgrader-epochs 0` runs the notebook at its own default instead;
3. `gencourse grade` on N copies (default 20) with --jobs 1 and with --jobs 2.

Targets: <= 60 s per submission, >= 10x faster than nbgrader autograde,
--jobs 2 at most about half the serial time.

Usage: python benchmarks/grading.py [--assignment vae] [--track tf] [--submissions 20]
       [--nbgrader-epochs 1] [--nbgrader-train-size 2000] [--skip-nbgrader] [--skip-jobs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")   # nbgrader runs `alembic`
    env.update(extra or {})
    return env


def _timed(cmd, cwd=None, env=None, timeout=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} ... failed ({done.returncode}):\n{tail}")
    return seconds, done


def gencourse_grade(submissions: Path, key: str, out: Path, jobs: int) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "gencourse.cli", "grade", str(submissions), "--assignment", key,
           "--out", str(out), "--jobs", str(jobs), "--force", "--no-progress"]
    seconds, _ = _timed(cmd)
    scores = {}
    for report in sorted(out.glob("*/report.json")):
        d = json.loads(report.read_text())
        scores[d["student"]] = (d["score"], d["max_score"])
    return seconds, scores


def nbgrader_autograde(notebook: Path, assignment: str, work: Path, quick: dict) -> float:
    course = work / "course"
    (course / "source" / assignment).mkdir(parents=True)
    shutil.copy(notebook, course / "source" / assignment / notebook.name)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.db_url = {('sqlite:///' + str(course / 'gradebook.db'))!r}\n"
        "c.Execute.timeout = 3600\n")
    env = _env(quick)
    _timed([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"], cwd=course, env=env)
    target = course / "submitted" / "student0" / assignment
    target.mkdir(parents=True)
    shutil.copy(notebook, target / notebook.name)
    seconds, done = _timed([sys.executable, "-m", "nbgrader", "autograde", assignment, "--student", "student0",
                            "--force"], cwd=course, env=env)
    return seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignment", default="vae")
    p.add_argument("--track", default="tf")
    p.add_argument("--submissions", type=int, default=20)
    p.add_argument("--nbgrader-epochs", type=int, default=1, help="GENCOURSE_EPOCHS for nbgrader (0: the notebook's default)")
    p.add_argument("--nbgrader-train-size", type=int, default=2000, help="GENCOURSE_TRAIN_SIZE for nbgrader")
    p.add_argument("--skip-nbgrader", action="store_true")
    p.add_argument("--skip-jobs", action="store_true")
    args = p.parse_args(argv)

    key = f"{args.assignment}-{args.track}"
    notebook = ROOT / "solutions" / args.assignment / f"{args.assignment}_{args.track}.ipynb"
    if not notebook.is_file():
        print(f"no solution notebook at {notebook}: nothing to benchmark", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, str]] = []
    print(f"load average at the start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gencourse-bench-grading-") as tmp:
        tmp = Path(tmp)
        one = tmp / "one"
        one.mkdir()
        shutil.copy(notebook, one / "student0.ipynb")
        single, scores = gencourse_grade(one, key, tmp / "out-one", jobs=1)
        got, of = scores.get("student0", (float("nan"), float("nan")))
        rows.append(("gencourse grade, 1 submission", f"{single:.1f} s", f"<= 60 s ({got:g}/{of:g} points)"))

        if not args.skip_nbgrader:
            quick = {}
            if args.nbgrader_epochs > 0:
                quick = {"GENCOURSE_EPOCHS": str(args.nbgrader_epochs),
                         "GENCOURSE_TRAIN_SIZE": str(args.nbgrader_train_size)}
            setting = (f"epochs {args.nbgrader_epochs}, {args.nbgrader_train_size} digits" if quick
                       else "the notebook's default setting")
            nbg = nbgrader_autograde(notebook, args.assignment, tmp / "nbgrader", quick)
            rows.append((f"nbgrader autograde, same notebook ({setting})", f"{nbg:.1f} s", ""))
            rows.append(("speedup: nbgrader / gencourse", f"{nbg / single:.1f}x", ">= 10x"))

        if not args.skip_jobs and args.submissions > 0:
            many = tmp / "many"
            many.mkdir()
            for i in range(args.submissions):
                shutil.copy(notebook, many / f"student{i:02d}.ipynb")
            serial, s1 = gencourse_grade(many, key, tmp / "out-j1", jobs=1)
            parallel, s2 = gencourse_grade(many, key, tmp / "out-j2", jobs=2)
            n = args.submissions
            rows.append((f"{n} submissions, --jobs 1", f"{serial:.1f} s", f"{serial / n:.1f} s per submission"))
            rows.append((f"{n} submissions, --jobs 2", f"{parallel:.1f} s", f"{parallel / n:.1f} s per submission"))
            rows.append(("--jobs 2 / --jobs 1", f"{parallel / serial:.2f}", "<= ~0.5"))
            full = sum(1 for s, (g, m) in s1.items() if g == m) + sum(1 for s, (g, m) in s2.items() if g == m)
            rows.append(("solution copies with full marks", f"{full}/{2 * n}", f"{2 * n}/{2 * n}"))

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\ngrading benchmark: {key}, solution notebook, {os.cpu_count()} CPUs, load average at the end {load}")
    w = max(len(r[0]) for r in rows)
    print(f"{'what':{w}}  {'measured':>10}  target / note")
    for what, value, note in rows:
        print(f"{what:{w}}  {value:>10}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
