"""Notebook benchmark: each solution notebook run top to bottom, as a student runs it, timed.

The assignment issues promise a run time at each notebook's default setting (VAE and
StyleGAN under 10 minutes, CycleGAN under 15, on 2 CPU cores); the tests run the
notebooks only at their quick setting. This runs `solutions/<name>/<name>_<track>.ipynb`
with nbclient in a fresh kernel, in a temporary folder, with the real MNIST files of
`--data-dir` and one thread per framework (the machine's other core stays free, as in
the tests), and prints the total and the slowest cells (nbclient's own timing); `--out DIR`
keeps each executed notebook (its printed scores and figures) as DIR/<name>_<track>.ipynb.

Usage: python benchmarks/notebooks.py [--assignments vae,cyclegan,stylegan] [--tracks tf,torch]
       [--threads 1] [--env GENCOURSE_EPOCHS=1 ...] [--slowest 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "mnist"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def cell_seconds(cell) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def run_notebook(path: Path, env: dict, keep: Path | None = None) -> tuple[float, float, list]:
    """(wall seconds, kernel CPU seconds, [(seconds, first line of the cell)]) of one top-to-bottom run; the
    executed notebook is written to `keep` when given.

    The kernel's CPU time (user + system, read when nbclient has shut it down and reaped it) is
    what the run costs whatever else the machine runs: with one thread per framework it is the
    wall time the run takes on an idle core, where the wall time of a loaded machine is not."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    start, before = time.perf_counter(), _children_cpu()
    try:
        with tempfile.TemporaryDirectory() as work:
            NotebookClient(nb, timeout=3600, kernel_name="python3",
                           resources={"metadata": {"path": work}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep)
    cells = [(cell_seconds(c), (c.source.strip().splitlines() or [""])[0][:60])
             for c in nb.cells if c.cell_type == "code"]
    return time.perf_counter() - start, _children_cpu() - before, sorted(cells, reverse=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assignments", default="vae,cyclegan,stylegan")
    ap.add_argument("--tracks", default="tf,torch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=str(SHARED))
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for the notebooks (a quick setting, say); repeatable")
    ap.add_argument("--slowest", type=int, default=3, help="how many of the slowest cells to list")
    ap.add_argument("--out", type=Path, help="a folder to keep the executed notebooks in")
    args = ap.parse_args()
    env = {k: str(args.threads) for k in THREAD_VARS}
    env["GENCOURSE_DATA"] = args.data_dir
    for item in args.env:
        if "=" not in item:
            ap.error(f"--env {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        env[key] = value
    print(f"solution notebooks top to bottom, {args.threads} thread(s) per framework, {os.cpu_count()} cores"
          + (f", {' '.join(args.env)}" if args.env else ", default settings"))
    print(f"{'notebook':22} {'minutes':>8} {'CPU min':>8} {'load':>5}  slowest cells (wall)   (CPU: the kernel's own "
          f"time; load: the 1-minute load average at the end, a shared machine's other jobs)")
    for name in args.assignments.split(","):
        for track in args.tracks.split(","):
            path = ROOT / "solutions" / name / f"{name}_{track}.ipynb"
            if not path.is_file():
                ap.error(f"{path}: no such solution notebook")
            wall, cpu, cells = run_notebook(path, env, args.out / path.name if args.out else None)
            slow = "; ".join(f"{s:.0f} s {line!r}" for s, line in cells[:args.slowest])
            print(f"{path.name:22} {wall / 60:8.1f} {cpu / 60:8.1f} {os.getloadavg()[0]:5.1f}  {slow}", flush=True)


if __name__ == "__main__":
    main()
