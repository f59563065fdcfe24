"""The sentences about the sandbox a student reads: why a worker stopped, and which limits applied."""

from __future__ import annotations

import os
import signal

from .limits import Limits


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def stop_reason(s, limits: Limits) -> str:
    """Why the worker stopped in the middle of a step, in words for a student."""
    if s.timed_out == "total":
        return f"not finished: the {limits.total_seconds:.0f} s this submission may use were used up"
    if s.timed_out:
        return f"timed out after {s.step_limit:.0f} s"
    rc = s.returncode
    if rc is None:
        return "the worker stopped for an unknown reason"
    if rc < 0:
        sig = -rc
        if sig == signal.SIGXCPU:
            return f"the CPU time limit of {limits.cpu_seconds:.0f} s was exceeded (signal SIGXCPU)"
        if sig == signal.SIGKILL:
            return "the worker was killed by signal 9 (memory or CPU limit?)"
        if sig == signal.SIGSEGV:
            return "the worker crashed with a segmentation fault (signal 11): invalid memory access, e.g. through ctypes"
        if sig == signal.SIGABRT:
            return "the worker aborted (signal 6), e.g. a failed assertion in a compiled library"
        return f"the worker was killed by signal {sig} ({_signal_name(sig)})"
    return f"your code exited the process with os._exit({rc}) or similar; return a value instead"


def isolation_notes(limits: Limits, sandbox: list[str], *, user_used: bool, root: bool, workers: int) -> list[str]:
    """The limits that applied, one line each, for the feedback header."""
    if "user:dropped" in sandbox:
        nproc = f"{limits.processes}"
    elif os.geteuid() == 0:
        nproc = "not limited (the worker kept root, which RLIMIT_NPROC does not bind)"
    else:
        nproc = f"{limits.processes} more than its user already runs"
    notes = [
        "a separate worker process in its own session and process group, killed as a whole at the end",
        f"time: {limits.cpu_seconds:g} s CPU and {limits.step_seconds:g} s wall clock per cell or call, "
        f"{limits.total_seconds:g} s in all",
        f"memory: {limits.memory_mb} MB of address space",
        f"processes: {nproc}; open files: {limits.open_files}; files written: "
        f"at most {limits.file_mb} MB each; printed output kept: {limits.output_kb} kB; no core dumps",
        "working directory: a fresh scratch directory; environment: stripped",
        "answers read back as plain numeric arrays (never unpickled); judged in the grader's process",
    ]
    s = set(sandbox)
    if "user:dropped" in s:
        notes.append("user: an unprivileged user id of its own, which can write only its scratch directory")
    elif user_used and "user:kept" in s:
        notes.append("user: not dropped (the Python interpreter is not readable by other users "
                     "and no mount namespace was available)")
    elif root:
        notes.append("user: not dropped")
    else:
        notes.append("user: not dropped (not root)")
    if "net:own" in s:
        notes.append("network: own namespace (no network)")
    elif not root:
        notes.append("network: not isolated (not root)")
    else:
        why = next((x.split(":", 1)[1] for x in sandbox if x.startswith("unshare:")), "")
        notes.append(f"network: not isolated (unshare failed: {why})" if why else "network: not isolated")
    hidden = [x.split(":", 1)[1] for x in sandbox if x.startswith("hidden:")]
    tmps = [x.split(":", 1)[1] for x in sandbox if x.startswith("tmp:")]
    if "mnt:own" in s:
        notes.append("file system: own mount namespace" +
                     (f"; private {', '.join(tmps)}" if tmps else "") +
                     (f"; covered (empty): {', '.join(hidden)}" if hidden else ""))
    if workers > 1:
        notes.append(f"workers started: {workers} (fresh ones after a crash or hang)")
    return notes
