"""Gradescope's container size, tried on this machine: a command under a memory and CPU limit.

Gradescope gives an autograder 768 MB and half a vCPU by default (its
documentation, "Autograder specifications"; larger sizes are a setting). As
root, `run_limited` puts the command in a cgroup of its own with that memory
limit (swap included) and CPU quota. The whole process tree counts, workers and
supervisors included. Its peak is the most resident memory sampled from the
group's memory.stat every few milliseconds: anonymous pages, shared memory and
mapped file pages (the libraries in use), what the tree cannot give back without
swap or thrashing. The group's own peak counter (memory.max_usage_in_bytes,
memory.peak) also charges the page cache of files merely read, which the kernel
drops at the limit: it moved by 100 MB between runs of one grading and read the
full limit on a busy machine, so it is kept as `charged_mb` but judges nothing.
Both cgroup versions: v1 (memory.limit_in_bytes, cpu.cfs_quota_us) and v2, what
Ubuntu 22.04 and later and most current machines have (memory.max,
memory.swap.max, memory.peak from Linux 5.19, cpu.max). Where neither is
writable it says why, and the caller skips.

The needs measured this way (`python benchmarks/container.py`) are recorded in
autograder/container.json; `gencourse gradescope` prints them and refuses to
build for a container smaller than an assignment needs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")   # this process's groups ("0::/path" its v2 one)
DEFAULT_MEMORY_MB = 768          # Gradescope's default container
DEFAULT_CPUS = 0.5
HEADROOM = 0.9                   # a container fits when the measured peak is under 90 % of it
NEEDS_FILE = "container.json"    # in autograder/
SAMPLE_S = 0.005                 # how often the group's resident memory is read
RESIDENT = {1: ("total_rss", "total_shmem", "total_mapped_file"),   # memory.stat's names per version
            2: ("anon", "shmem", "file_mapped")}


@dataclass
class Measured:
    returncode: int
    peak_mb: float          # the most resident memory sampled (anonymous, shared, mapped files)
    seconds: float
    output: str
    charged_mb: float = 0.0  # the group's own peak, page cache included


def unavailable(version: int | None = None) -> str | None:
    """Why commands cannot be limited here with cgroup `version` (1, 2, or None: either); None when they can."""
    if os.geteuid() != 0:
        return "limiting memory and CPU needs root (a cgroup of its own)"
    why = {v: _why_not[v]() for v in ((1, 2) if version is None else (version,))}
    return None if None in why.values() else "; ".join(filter(None, why.values()))


def _why_not_v1() -> str | None:
    for controller in ("memory", "cpu"):
        if not os.access(CGROUP / controller, os.W_OK):
            return f"no writable cgroup v1 {controller} controller at {CGROUP / controller}"
    return None


def _why_not_v2() -> str | None:
    parent = _v2_parent()
    if isinstance(parent, str):
        return parent
    major, minor = (int(n) for n in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
    if (major, minor) < (5, 19):
        return f"cgroup v2 reports no memory.peak before Linux 5.19 (this is {os.uname().release})"
    return None


def _v2_parent() -> Path | str:
    """The cgroup v2 folder a group of ours goes in (ours or its parent, its children given the memory
    and cpu controllers), or why there is none. The hierarchy is /sys/fs/cgroup itself, or its
    unified/ on a machine that keeps v1 beside it."""
    mount = next((m for m in (CGROUP, CGROUP / "unified") if {"memory", "cpu"} <= _words(m / "cgroup.controllers")),
                 None)
    if mount is None:
        return "no cgroup v2 hierarchy with the memory and cpu controllers"
    lines = PROC_CGROUP.read_text().splitlines()
    own = mount / next((line[3:] for line in lines if line.startswith("0::")), "/").strip("/")
    why = ""
    for parent in ([own.parent] if own != mount else []) + [own]:
        control = parent / "cgroup.subtree_control"
        try:
            if not {"memory", "cpu"} <= _words(control):
                control.write_text("+memory +cpu")       # fails where processes live in it (not the root)
        except OSError as e:
            why = f"cgroup v2: the children of {parent} cannot have the memory and cpu controllers ({e.strerror})"
            continue
        if os.access(parent, os.W_OK):
            return parent
        why = f"cgroup v2: {parent} is not writable"
    return why


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


_why_not = {1: _why_not_v1, 2: _why_not_v2}


def _make_groups(name: str, version: int, memory_mb: int, cpus: float) -> tuple[list[Path], Path]:
    """Fresh cgroups with the limits (v1: one per controller; v2: one), and the file of their peak memory."""
    limit, period = str(int(memory_mb) * 2**20), 100_000
    quota = str(int(period * cpus))
    if version == 2:
        group = _v2_parent() / name
        group.mkdir()
        (group / "memory.max").write_text(limit)
        if (group / "memory.swap.max").exists():
            (group / "memory.swap.max").write_text("0")   # no swapping out of the limit
        (group / "cpu.max").write_text(f"{quota} {period}")
        return [group], group / "memory.peak"
    mem, cpu = CGROUP / "memory" / name, CGROUP / "cpu" / name
    mem.mkdir()
    cpu.mkdir()
    (mem / "memory.limit_in_bytes").write_text(limit)
    if (mem / "memory.memsw.limit_in_bytes").exists():
        (mem / "memory.memsw.limit_in_bytes").write_text(limit)   # no swapping out of the limit
    (cpu / "cpu.cfs_period_us").write_text(str(period))
    (cpu / "cpu.cfs_quota_us").write_text(quota)
    return [mem, cpu], mem / "memory.max_usage_in_bytes"


def run_limited(cmd, *, memory_mb: int = DEFAULT_MEMORY_MB, cpus: float = DEFAULT_CPUS, env=None, cwd=None,
                timeout: float = 1800, version: int | None = None) -> Measured:
    """Run `cmd` (a list) in a fresh cgroup with `memory_mb` of memory and `cpus` of CPU time (cgroup
    `version` 1 or 2; None: v1 where it is writable, else v2)."""
    why = unavailable(version)
    if why:
        raise OSError(why)
    version = version or (1 if _why_not_v1() is None else 2)
    groups, peak_file = _make_groups(f"gencourse-{uuid.uuid4().hex[:12]}", version, memory_mb, cpus)
    try:
        # The child joins the groups before it execs, so everything it starts is counted.
        def join():
            for group in groups:
                (group / "cgroup.procs").write_text(str(os.getpid()))

        sampler = _ResidentPeak(groups[0] / "memory.stat", RESIDENT[version])
        sampler.start()
        start = time.monotonic()
        try:
            done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=join)
        finally:
            seconds = time.monotonic() - start
            sampler.stop()
        charged = int(peak_file.read_text()) / 2**20
        return Measured(done.returncode, sampler.peak / 2**20, seconds, done.stdout + done.stderr, charged)
    finally:
        for group in groups:
            for _ in range(50):                          # the group empties once its processes are reaped
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


class _ResidentPeak(threading.Thread):
    """The highest sum of `keys` read from a memory.stat file until stopped (bytes)."""

    def __init__(self, stat: Path, keys: tuple[str, ...]):
        super().__init__(daemon=True)
        self.stat, self.keys, self.peak = stat, set(keys), 0
        self._done = threading.Event()

    def run(self):
        while True:
            self._read()
            if self._done.wait(SAMPLE_S):
                return

    def _read(self):
        try:
            fields = (line.split() for line in self.stat.read_text().splitlines())
            self.peak = max(self.peak, sum(int(v) for k, v in fields if k in self.keys))
        except (OSError, ValueError):
            pass

    def stop(self):
        self._done.set()
        self.join()
        self._read()


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
