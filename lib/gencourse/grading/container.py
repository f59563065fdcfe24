"""Gradescope's container size, tried on this machine: a command under a memory and CPU limit.

Gradescope gives an autograder 768 MB and half a vCPU by default (its
documentation, "Autograder specifications"; larger sizes are a setting). As
root, `run_limited` puts the command in a cgroup (v1) of its own with that
memory limit (swap included) and CPU quota, and reads the group's peak memory
afterwards: the whole process tree counts, workers and supervisors included.
Where cgroups are not writable it says why, and the caller skips.

The needs measured this way (`python benchmarks/container.py`) are recorded in
autograder/container.json; `gencourse gradescope` prints them and refuses to
build for a container smaller than an assignment needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
DEFAULT_MEMORY_MB = 768          # Gradescope's default container
DEFAULT_CPUS = 0.5
HEADROOM = 0.9                   # a container fits when the measured peak is under 90 % of it
NEEDS_FILE = "container.json"    # in autograder/


@dataclass
class Measured:
    returncode: int
    peak_mb: float
    seconds: float
    output: str


def unavailable() -> str | None:
    """Why commands cannot be limited here (None when they can)."""
    if os.geteuid() != 0:
        return "limiting memory and CPU needs root (a cgroup of its own)"
    for controller in ("memory", "cpu"):
        if not os.access(CGROUP / controller, os.W_OK):
            return f"no writable cgroup v1 {controller} controller at {CGROUP / controller}"
    return None


def run_limited(cmd, *, memory_mb: int = DEFAULT_MEMORY_MB, cpus: float = DEFAULT_CPUS, env=None, cwd=None,
                timeout: float = 1800) -> Measured:
    """Run `cmd` (a list) in a fresh cgroup with `memory_mb` of memory and `cpus` of CPU time."""
    why = unavailable()
    if why:
        raise OSError(why)
    name = f"gencourse-{uuid.uuid4().hex[:12]}"
    mem, cpu = CGROUP / "memory" / name, CGROUP / "cpu" / name
    mem.mkdir()
    cpu.mkdir()
    try:
        limit = str(int(memory_mb) * 2**20)
        (mem / "memory.limit_in_bytes").write_text(limit)
        swap = mem / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(limit)                       # no swapping out of the limit
        period = 100_000
        (cpu / "cpu.cfs_period_us").write_text(str(period))
        (cpu / "cpu.cfs_quota_us").write_text(str(int(period * cpus)))
        # The child joins both groups before it execs, so everything it starts is counted.
        def join():
            for group in (mem, cpu):
                (group / "cgroup.procs").write_text(str(os.getpid()))

        start = time.monotonic()
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=join)
        seconds = time.monotonic() - start
        peak = int((mem / "memory.max_usage_in_bytes").read_text()) / 2**20
        return Measured(done.returncode, peak, seconds, done.stdout + done.stderr)
    finally:
        for group in (mem, cpu):
            for _ in range(50):                          # the group empties once its processes are reaped
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def read_needs(autograder_dir) -> dict:
    """{assignment key: {"peak_mb", "seconds", "memory_mb", "cpus", "measured"}} recorded for this course."""
    path = Path(autograder_dir) / NEEDS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("needs", {})


def need_mb(entry: dict) -> int:
    """The container memory an assignment needs: its measured peak over HEADROOM, in whole 32 MB."""
    mb = entry["peak_mb"] / HEADROOM
    return int(-(-mb // 32) * 32)


def grade_in_container(zip_path, notebook, root, *, memory_mb: int = DEFAULT_MEMORY_MB, cpus: float = DEFAULT_CPUS,
                       python: str | None = None, env=None) -> tuple[Measured, dict]:
    """The autograder zip unpacked into `root` as Gradescope does, `notebook` submitted, run_autograder run
    inside the limits; (what it used, results.json)."""
    import shutil
    import sys
    import zipfile

    root = Path(root)
    for sub in ("source", "submission", "results"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    shutil.copy(notebook, root / "submission" / Path(notebook).name)
    env = dict(os.environ if env is None else env, GENCOURSE_AUTOGRADER_ROOT=str(root),
               GENCOURSE_AUTOGRADER_PYTHON=python or sys.executable)
    measured = run_limited(["bash", str(root / "run_autograder")], memory_mb=memory_mb, cpus=cpus, env=env)
    return measured, json.loads((root / "results" / "results.json").read_text())
