"""Grading spread: one notebook graded N times, each in a fresh worker; every judged figure's spread.

A grade must not move by chance: the same notebook must get the same points and
the same messages on every run. This grades the solution notebook (or --notebook)
of each key N times through the isolated grader and prints, per check, the score
range and each number its message carries (min / max over the runs); a line
marked MOVES is a check whose points or message differed between runs.

Usage: python benchmarks/grading_spread.py [--keys vae-tf vae-torch] [--runs 10] [--notebook NB.ipynb]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def spread(key: str, notebook: Path, runs: int) -> list[str]:
    """One line per check: its scores and each figure of its message over `runs` gradings."""
    from gencourse.grading.grade import grade_notebook

    seen: dict[str, list] = {}
    for i in range(runs):
        start = time.time()
        report = grade_notebook(notebook, key, student=f"run{i}")
        print(f"  {key} run {i}: {report.score:g}/{report.max_score:g} in {time.time() - start:.0f} s", flush=True)
        for r in report.results:
            seen.setdefault(r.name, []).append((r.score, r.message))
    lines = []
    for name, rows in seen.items():
        scores = sorted({s for s, _ in rows})
        figures = [[float(v) for v in NUMBER.findall(m)] for _, m in rows]
        width = min(len(f) for f in figures)
        ranges = ", ".join(f"{min(f[j] for f in figures):.4g}-{max(f[j] for f in figures):.4g}"
                           for j in range(width) if len({f[j] for f in figures}) > 1)
        moves = len({m for _, m in rows}) > 1 or len(scores) > 1
        lines.append(f"{'MOVES' if moves else 'same '} {key} [{'/'.join(f'{s:g}' for s in scores)}] {name[:80]}"
                     + (f": figures that moved {ranges}" if ranges else "")
                     + ("" if moves else f" | {rows[0][1][:120]}"))
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", nargs="+", default=["vae-tf", "vae-torch"])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--notebook", type=Path, default=None, help="default: each key's solution notebook")
    args = p.parse_args(argv)
    moved = 0
    for key in args.keys:
        name, track = key.rsplit("-", 1)
        notebook = args.notebook or ROOT / "solutions" / name / f"{name}_{track}.ipynb"
        lines = spread(key, notebook, args.runs)
        moved += sum(line.startswith("MOVES") for line in lines)
        print("\n".join(lines), flush=True)
    print(f"{moved} check(s) whose points or message moved between runs")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
