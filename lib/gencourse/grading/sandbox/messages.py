"""The sentences about the sandbox a student reads: why a worker stopped, and which limits applied."""

from __future__ import annotations

import os
import signal

from .limits import Limits

# The layers over the limits every worker gets, as report.json names them, and what each needs.
LAYERS = {"user": "an unprivileged user of its own", "seccomp": "a seccomp filter",
          "mounts": "its own mount namespace", "netns": "its own network namespace"}
MARKS = {"user": "user:dropped", "seccomp": "seccomp:on", "mounts": "mnt:own", "netns": "net:own"}
# What a Docker container (Gradescope's) leaves root: docker's default capability set.
DOCKER_CAPS = ("chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid", "setuid", "setfcap",
               "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write")


def applied_layers(sandbox: list[str]) -> list[str]:
    """The layers that a worker's sandbox lines say held, in LAYERS' order."""
    return [k for k, mark in MARKS.items() if mark in sandbox]


def expected_layers(caps, *, root: bool = True, linux: bool = True) -> list[str]:
    """The layers a grader gets with capabilities `caps` (lower-case names without CAP_)."""
    caps = set(caps)
    want = {"user": root and {"setuid", "setgid", "chown"} <= caps, "seccomp": linux,
            "mounts": root and "sys_admin" in caps, "netns": root and "sys_admin" in caps}
    return [k for k in LAYERS if want[k]]


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


def isolation_notes(limits: Limits, sandbox: list[str], *, root: bool, workers: int) -> list[str]:
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
    layers = applied_layers(sandbox)
    notes.append("isolation layers that applied: " + (", ".join(LAYERS[x] for x in layers) or "none") +
                 "".join(f"; not {LAYERS[x]}" for x in LAYERS if x not in layers))
    if "user:dropped" in s:
        notes.append("user: an unprivileged user id of its own, which can write only its scratch directory")
    else:
        notes.append("user: not dropped" + ("" if root else " (not root)"))
    seccomp_failed = next((x.split(":", 1)[1] for x in sandbox if x.startswith("seccomp-failed:")), None)
    if "seccomp:on" in s:
        notes.append("system calls: a seccomp filter refuses sockets other than Unix ones, namespaces, mounts, "
                     "tracing of other processes, the kernel keyring, bpf, io_uring and System V IPC")
    else:
        notes.append(f"system calls: not filtered ({seccomp_failed or 'no filter reported'})")
    if "net:own" in s:
        notes.append("network: own namespace (no network)")
    elif "seccomp:on" in s:
        notes.append("network: none (the seccomp filter refuses every socket but Unix ones)")
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
    elif "mnt:none" in s:
        closed = [x.split(":", 1)[1] for x in sandbox if x.startswith("closed:")]
        still = [x.split(":", 1)[1] for x in sandbox if x.startswith("open:")]
        notes.append("file system: no mount namespace (it needs CAP_SYS_ADMIN); the borrowed user owns nothing, "
                     "so file modes decide" + (f"; closed to other users: {', '.join(closed)}" if closed else "") +
                     (f"; shared folders left open: {', '.join(still)}" if still else ""))
    if workers > 1:
        notes.append(f"workers started: {workers} (fresh ones after a crash or hang)")
    return notes
