"""Training bands: the solution's (or a planted notebook's) judged training figures over many seeds.

Runs the graded cells of a notebook (the setup cells from the solution, the parts
from NOTEBOOK) in this process, then each training probe of the assignment's
visible checks once per seed (the setup's `seed` replaced), judged as the grader
judges it, and prints every figure's spread (min, median, max) and how many seeds
the check passed. A band is calibrated when the solution passes on every seed with
a margin, and each planted mistake it exists for fails on every seed.

Usage: python benchmarks/training_bands.py --assignment vae --track tf [--seeds 20] [--notebook NB.ipynb]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"(-?\d+(?:\.\d+)?)")


# Per assignment: (checks module, setup name, its case builder, its judge builder, the probe, whether the
# judge builder takes the track first).
SETUPS = {
    "vae": [("gencourse.vae.assignment.checks", "VISIBLE_TRAINING", "training_case", "judge_training", "train", True),
            ("gencourse.vae.assignment.checks", "VISIBLE_CVAE", "training_case", "judge_generation", "train_cvae",
             True)],
    "cyclegan": [("gencourse.cyclegan.assignment.checks", "VISIBLE_TRAINING", "training_case", "judge_training",
                  "train", True)],
    "stylegan": [("gencourse.stylegan.assignment.checks", "VISIBLE_SHIPPED", "shipped_case", "judge_shipped",
                  "pretrained", False)],
}


def verdicts(assignment: str, track: str, ns: dict, seeds, changes: dict | None = None, only=None) -> dict:
    """{setup name: [(seed, passed, message)]}: each training setup run and judged once per seed (printed as
    it goes); `changes`: setup fields set to other values."""
    from gencourse.grading import Reply, make_check
    from gencourse.grading.judging import judge
    from gencourse.grading.registry import get_assignment
    from gencourse.grading.worker import probe_outputs

    probes = importlib.import_module(get_assignment(f"{assignment}-{track}").probes)
    out = {}
    for module, name, case_fn, judge_fn, probe, with_track in SETUPS[assignment]:
        if only and name not in only:
            continue
        m = importlib.import_module(module)
        base, rows = getattr(m, name), []
        known = {k: type(getattr(base, k))(v) for k, v in (changes or {}).items() if hasattr(base, k)}
        for seed in seeds:
            setup = dataclasses.replace(base, seed=seed, **known)
            one = getattr(m, judge_fn)(*([track] if with_track else []), setup)
            check = make_check(name, "training", 1, probe, [getattr(m, case_fn)(setup)], one)
            call = check.calls()[0]
            try:
                reply = Reply(arrays=probe_outputs(getattr(probes, probe)(ns, **call.inputs)))
            except Exception as e:  # noqa: BLE001 - the part's error is the answer
                reply = Reply(error=f"{type(e).__name__}: {e}")
            score, message, _ = judge(check, {call.key: reply})
            rows.append((seed, score >= 1, message))
            print(f"  {name} seed {seed:2d}: {'pass' if score >= 1 else 'FAIL'} {message[:160]}", flush=True)
        out[name] = rows
    return out


def spread(rows) -> str:
    """min / median / max of each number of the messages (the judged figures, in the message's order)."""
    texts = [re.sub(r"^correct on 1 input: ", "", msg).split(" (input:")[0].split("pass mark")[0] for _, _, msg in rows]
    figures = [[float(v) for v in FIGURE.findall(t)] for t in texts]
    width = min(len(f) for f in figures)
    table = np.array([f[:width] for f in figures]) if width else np.zeros((len(rows), 0))
    return "; ".join(f"{table[:, i].min():.3g} / {np.median(table[:, i]):.3g} / {table[:, i].max():.3g}"
                     for i in range(width))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignment", default="vae", choices=sorted(SETUPS))
    p.add_argument("--track", default="tf")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--notebook", type=Path, default=None, help="default: the solution notebook")
    p.add_argument("--only", nargs="*", default=None, help="these setups only (e.g. VISIBLE_TRAINING)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="a setup's field changed (e.g. learning_rate=0.003), to try another training setting")
    args = p.parse_args(argv)
    notebook = args.notebook or ROOT / "solutions" / args.assignment / f"{args.assignment}_{args.track}.ipynb"
    from gencourse.grading.inprocess import graded_namespace

    ns = graded_namespace(f"{args.assignment}-{args.track}", notebook, ROOT / "solutions")
    start = time.time()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    changes = dict(item.split("=", 1) for item in args.set)
    for name, rows in verdicts(args.assignment, args.track, ns, seeds, changes, args.only).items():
        print(f"{args.assignment}-{args.track} {name} on {notebook.name}: passed {sum(r[1] for r in rows)}/"
              f"{len(rows)} seeds; figures min / median / max: {spread(rows)}", flush=True)
    print(f"{time.time() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
