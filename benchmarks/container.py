"""Gradescope's container, tried here: each assignment's solution graded by its autograder zip's
run_autograder inside a memory and CPU limit (Gradescope's default: 768 MB, half a CPU).

    python benchmarks/container.py [--memory-mb 768] [--cpus 0.5] [--assignments vae,cyclegan,stylegan] [--write]

Prints, per assignment and track, the peak resident memory of the whole process tree (anonymous, shared and
mapped file pages; beside it what the cgroup charged, page cache included), the wall time and the score;
`--write` records them in autograder/container.json, which `gencourse gradescope` reads to print the size
each assignment needs and to refuse a container too small. Needs root (a cgroup of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from gencourse.grading import container
from gencourse.grading.gradescope import build_autograder_zip

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--memory-mb", type=int, default=container.DEFAULT_MEMORY_MB)
    p.add_argument("--cpus", type=float, default=container.DEFAULT_CPUS)
    p.add_argument("--assignments", default="vae,cyclegan,stylegan")
    p.add_argument("--write", action="store_true", help="record the figures in autograder/container.json")
    args = p.parse_args(argv)
    why = container.unavailable()
    if why:
        print(f"cannot limit memory and CPU here: {why}", file=sys.stderr)
        return 2
    needs = {}
    print(f"{'assignment':16} {'score':>9} {'peak MB':>8} {'of limit':>8} {'charged':>8} {'seconds':>8}")
    with tempfile.TemporaryDirectory(prefix="gencourse-container-") as tmp:
        for name in args.assignments.split(","):
            zip_path = build_autograder_zip(name, Path(tmp) / f"{name}.zip", source=ROOT)
            for track in ("tf", "torch"):
                notebook = ROOT / "solutions" / name / f"{name}_{track}.ipynb"
                used, results = container.grade_in_container(zip_path, notebook, Path(tmp) / f"{name}-{track}",
                                                              memory_mb=args.memory_mb, cpus=args.cpus)
                total = sum(t["max_score"] for t in results["tests"])
                key = f"{name}-{track}"
                print(f"{key:16} {results['score']:4g} / {total:<3g} {used.peak_mb:8.0f} "
                      f"{used.peak_mb / args.memory_mb:8.0%} {used.charged_mb:8.0f} {used.seconds:8.1f}", flush=True)
                needs[key] = {"peak_mb": round(used.peak_mb, 1), "charged_mb": round(used.charged_mb, 1), "seconds": round(used.seconds, 1),
                              "memory_mb": args.memory_mb, "cpus": args.cpus, "score": results["score"],
                              "max_score": total, "measured": time.strftime("%Y-%m-%d")}
    if args.write:
        path = ROOT / "autograder" / container.NEEDS_FILE
        old = json.loads(path.read_text())["needs"] if path.is_file() else {}
        path.write_text(json.dumps({
            "made_by": "python benchmarks/container.py --write",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "needs": {**old, **needs}}, indent=2) + "\n")
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
