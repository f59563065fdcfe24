"""Command-line pieces shared by every training command (no framework imported here)."""

from __future__ import annotations

import argparse
import os
import sys

QUICK_ENV = "GENCOURSE_QUICK"

from .devices import CHOICES


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_common_run_options(p) -> None:
    """Options every training run shares: track, seed, output, device, resume, progress, threads."""
    p.add_argument("--track", choices=["tf", "torch"], default="tf", help="TensorFlow/Keras or PyTorch (default tf)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the run (default 0)")
    p.add_argument("--out", help="output folder (default runs/MODEL-TRACK)")
    p.add_argument("--device", choices=CHOICES, default="auto",
                   help="where to train (default auto: a GPU or TPU when there is one, else the CPU)")
    p.add_argument("--resume", action="store_true", help="continue from the output folder's checkpoint")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (none is drawn when the output is not a terminal)")
    add_threads_option(p)


def add_threads_option(p) -> None:
    p.add_argument("--threads", type=positive,
                   help="CPU threads per operation (default: the framework's); 1 is faster "
                        "on a busy machine, where threads wait on each other")


def quick() -> bool:
    """GENCOURSE_QUICK=1: every training command runs at a smoke-test size, in seconds."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")


def apply_quick(args, **smoke) -> None:
    """Under GENCOURSE_QUICK=1, set these options on the parsed `args` (a run that checks the set-up,
    its numbers meaningless), and say so in one line."""
    if not quick():
        return
    for name, value in smoke.items():
        setattr(args, name, value)
    what = ", ".join(f"{name.replace('_', '-')} {value}" for name, value in smoke.items())
    print(f"{QUICK_ENV}=1: a smoke-test run ({what}); its numbers mean nothing", file=sys.stderr)
