"""One worker session: write its plan, start it under the limits, follow its progress, stop it.

The worker reports each step (a cell or a call) on a progress pipe; the step
clock restarts only for the plan's next step, so lines that student code
writes cannot stretch the time. When the worker ends, hangs or dies, the
session kills it and everything it started, then reads what is left in the
pipe: which step was running is what `run_worker` needs to carry on.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from ..contract import Call
from .child import make_preexec
from .confine import USER_ENV
from .limits import Limits
from .processes import JobUser, become_subreaper, kill_all, start_ticks
from .system import chown_tree, needed_paths, python_path, scratch_base


@dataclass
class _Session:
    events: list = field(default_factory=list)
    sandbox: list = field(default_factory=list)
    in_flight: tuple | None = None          # ("cell"|"call", id)
    ready: bool = False
    done: bool = False
    fatal: str | None = None
    cell_errors: dict = field(default_factory=dict)
    returncode: int | None = None
    timed_out: str | None = None            # what ran out: "step", "startup", "total"
    step_limit: float = 0.0
    stderr_tail: str = ""
    steps: list = field(default_factory=list)   # the plan's steps in order: ("cell", id), ("call", key)
    pos: int = 0


# glibc serves blocks over 64 KB (arrays, tensors) by mmap and returns them when freed; by default
# its threshold grows with what was freed, the heap fragments, and a worker's peak wandered by 140 MB
# between gradings of one notebook (524-661 MB; with it 449 MB every time: docs/results.md,
# "Grading inside Gradescope's default container"). The supervisor, which replays trusted steps to judge, gets it too.
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def environment(scratch: str, limits: Limits, progress_fd: int, probes: str, user: JobUser | None = None) -> dict:
    venv_bin = os.path.dirname(sys.executable)
    threads = str(int(limits.threads))
    env = {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": os.path.join(scratch, "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": os.pathsep.join(python_path(probes)),
        "GENCOURSE_PROGRESS_FD": str(progress_fd),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "Agg",
        **ALLOCATOR,
        "KERAS_HOME": os.path.join(scratch, ".keras"),
        "MPLCONFIGDIR": os.path.join(scratch, ".mpl"),
    }
    for k in ("CUDA_VISIBLE_DEVICES", "KERAS_BACKEND", "GENCOURSE_QUICK"):
        if k in os.environ:
            env[k] = os.environ[k]
    if user is not None:                    # the worker drops to it after its imports (confine.py)
        env[USER_ENV] = f"{user.uid}:{user.gid}"
    return env


def _write_plan(scratch: str, probes: str, cells: list, calls: list[Call], limits: Limits) -> None:
    os.makedirs(os.path.join(scratch, "in"), mode=0o700)
    os.makedirs(os.path.join(scratch, "tmp"), mode=0o700)
    plan_calls = []
    for i, call in enumerate(calls):
        inputs = {}
        for name, value in call.inputs.items():
            a = np.asarray(value)
            if a.dtype.kind not in "biuf":
                raise TypeError(f"grader error: the input {name!r} of {call.key!r} is not a numeric array")
            rel = f"in/{i}-{name}.bin"
            with open(os.path.join(scratch, rel), "wb") as f:
                f.write(a.tobytes(order="C"))
            inputs[name] = {"file": rel, "dtype": a.dtype.str, "shape": list(a.shape)}
        plan_calls.append({"key": call.key, "probe": call.probe, "inputs": inputs})
    plan = {"probes": probes, "cells": [{"grade_id": g, "source": s} for g, s in cells],
            "calls": plan_calls, "cpu_seconds": limits.cpu_seconds,
            "output_cap_bytes": int(limits.output_kb) * 1024}
    with open(os.path.join(scratch, "plan.json"), "w", encoding="utf-8") as f:
        json.dump(plan, f)


def _tail(path: str, n: int = 600) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - n))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _run_session(probes: str, cells: list, calls: list[Call], limits: Limits, user: JobUser | None,
                 own_net: bool, private: str, deadline_total: float) -> tuple[_Session, str]:
    s = _Session(steps=[("cell", g) for g, _ in cells] + [("call", c.key) for c in calls])
    scratch = tempfile.mkdtemp(prefix="gencourse-worker-", dir=scratch_base())
    _write_plan(scratch, probes, cells, calls, limits)
    read_fd, write_fd = os.pipe()
    needed = needed_paths(probes)
    hide = []
    keep = [*needed, scratch]
    for h in limits.hide:
        h = os.path.realpath(h)
        if os.path.isdir(h) and h != "/" and not any(k == h or k.startswith(h.rstrip("/") + "/") for k in keep):
            hide.append(h)
    private_tmp = [t for t in ("/tmp", "/var/tmp", "/dev/shm")
                   if os.path.isdir(t) and t not in needed and not scratch.startswith(t + "/")]
    preexec, _, _, _ = make_preexec(limits, user, own_net, write_fd, needed, hide, private_tmp)
    if user is not None:
        chown_tree(scratch, user.uid, user.gid)
    else:
        os.chmod(scratch, 0o700)
    out_path = os.path.join(private, "stdout.txt")
    err_path = os.path.join(private, "stderr.txt")
    cmd = [sys.executable, "-s"] + (["-P"] if sys.version_info >= (3, 11) else []) + \
        ["-m", "gencourse.grading.worker", scratch]
    if user is None:
        become_subreaper()
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        try:
            proc = subprocess.Popen(cmd, cwd=scratch, env=environment(scratch, limits, write_fd, probes, user),
                                    stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, close_fds=True,
                                    pass_fds=(write_fd,), start_new_session=True, preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError) as e:
            os.close(read_fd)
            os.close(write_fd)
            s.fatal = f"grader error: the worker could not start ({type(e).__name__}: {e})"
            return s, scratch
    os.close(write_fd)
    worker_start = start_ticks(proc.pid)
    buf = b""
    start = time.monotonic()
    step_deadline = start + limits.startup_seconds
    s.step_limit = limits.startup_seconds
    eof = False
    while True:
        now = time.monotonic()
        if proc.poll() is not None:
            break
        if now > min(step_deadline, deadline_total):
            s.timed_out = "total" if deadline_total < step_deadline else ("step" if s.ready else "startup")
            break
        if eof:
            time.sleep(0.05)
            continue
        r, _, _ = select.select([read_fd], [], [], min(0.2, max(0.0, min(step_deadline, deadline_total) - now)))
        if not r:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            eof = True
            continue
        buf += chunk
        *lines, buf = buf.split(b"\n")
        if len(buf) > 1 << 20:
            buf = b""
        for line in lines:
            if _event(s, line):
                step_deadline = time.monotonic() + limits.step_seconds
                s.step_limit = limits.step_seconds
    kill_all(proc, user, worker_start)
    # Everything of the worker is dead now: read what is left in the pipe.
    os.set_blocking(read_fd, False)
    try:
        while len(buf) < 4 << 20:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            buf += chunk
    except BlockingIOError:
        pass
    os.close(read_fd)
    for line in buf.split(b"\n"):
        _event(s, line)
    s.returncode = proc.returncode
    s.stderr_tail = _tail(err_path)
    return s, scratch


def _event(s: _Session, line: bytes) -> bool:
    """Apply one progress line; True when a step started (the step clock restarts)."""
    try:
        ev = json.loads(line)
    except ValueError:
        return False
    if not isinstance(ev, dict):
        return False
    kind = ev.get("event")
    if kind == "sandbox" and not s.ready:    # later lines could come from student code
        s.sandbox.append(str(ev.get("note")))
    elif kind == "ready":
        s.ready = True
        return True
    elif kind == "fatal":
        s.fatal = str(ev.get("error"))[:2000]
    elif kind == "start" and s.ready and not s.done:
        # Only the plan's next step counts, so that lines written by student code
        # cannot restart the step clock more often than there are steps.
        step = (str(ev.get("kind")), str(ev.get("id")))
        if s.in_flight is None and s.pos < len(s.steps) and step == s.steps[s.pos]:
            s.pos += 1
            s.in_flight = step
            return True
    elif kind == "end" and s.ready:
        step = (str(ev.get("kind")), str(ev.get("id")))
        if s.in_flight is not None and step == s.in_flight:
            if step[0] == "cell" and ev.get("error"):
                s.cell_errors[step[1]] = str(ev["error"])[:2000]
            s.in_flight = None
            return True
    elif kind == "done" and s.ready and s.in_flight is None and s.pos == len(s.steps):
        s.done = True
        s.in_flight = None
    return False
