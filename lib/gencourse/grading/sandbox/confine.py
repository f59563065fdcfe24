"""What the worker does to itself at start-up, after importing the trusted probes and before any
student code: drop to the job's borrowed user, then install the seccomp filter.

The worker is started as root where the grader is root, so that the interpreter
and the frameworks load wherever they are installed (with namespaces the folders
above them are bound back; without, as in a Docker container, a folder such as
/root may be closed to other users). Then, irrevocably: supplementary groups
cleared, real, effective and saved ids set to the borrowed ones and checked,
no capability left; the import paths behind a closed folder are reached through
a descriptor opened before the drop (/proc/self/fd/N: only that folder, not its
closed parents), so later imports of the standard library still work. The
scratch directory is handed to the user first. Each step is reported as a
"sandbox" progress line, before "ready", so the feedback says which layers held.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback

from . import seccomp
from .system import PR_SET_PDEATHSIG, _get_libc, _other_can_traverse, chown_tree

USER_ENV = "GENCOURSE_WORKER_USER"


def _reach_through_descriptors() -> int:
    """Import paths that other users cannot reach become /proc/self/fd/N; how many were moved."""
    moved: dict[str, str] = {}
    for p in dict.fromkeys(sys.path):
        if p and os.path.isdir(p) and _other_can_traverse(p):
            moved[p] = f"/proc/self/fd/{os.open(p, os.O_PATH | os.O_DIRECTORY)}"
    if not moved:
        return 0
    longest = sorted(moved, key=len, reverse=True)

    def new(path: str) -> str:
        for p in longest:
            if path == p or path.startswith(p + "/"):
                return moved[p] + path[len(p):]
        return path

    sys.path[:] = [new(p) for p in sys.path]
    for module in list(sys.modules.values()):
        paths = getattr(module, "__path__", None)
        if isinstance(paths, list):
            paths[:] = [new(p) for p in paths]
    return len(moved)


def drop_user(uid: int, gid: int, scratch: str) -> int:
    """Become `uid`/`gid` for good; raises OSError when any id or capability is left."""
    chown_tree(scratch, uid, gid)
    moved = _reach_through_descriptors()
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    with open("/proc/self/status") as f:
        caps = {k: v.strip() for k, _, v in (line.partition(":") for line in f) if k in ("CapPrm", "CapEff")}
    if (os.getresuid() != (uid,) * 3 or os.getresgid() != (gid,) * 3 or os.getgroups()
            or any(int(v, 16) for v in caps.values())):
        raise OSError(f"ids {os.getresuid()}/{os.getresgid()}, groups {os.getgroups()}, capabilities {caps}")
    _get_libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)    # a change of ids clears it
    return moved


def confine(scratch: str, note) -> str | None:
    """The borrowed user (when the grader named one), then the filter; `note(text)` reports each.

    Returns a grader error when the user could not be dropped (no student code may run then).
    """
    user = os.environ.pop(USER_ENV, "")
    if user:
        try:
            uid, gid = (int(x) for x in user.split(":"))
            moved = drop_user(uid, gid, scratch)
        except (OSError, ValueError) as e:
            return f"grader error: the worker could not drop to its own user id ({e})"
        note("user:dropped")
        if moved:
            note(f"paths-by-descriptor:{moved}")
    why = seccomp.install()
    note("seccomp:on" if why is None else f"seccomp-failed:{why}")
    return None


def refusal(e: BaseException) -> str:
    """The sentence added to an EPERM that the sandbox may have caused, for a student."""
    if not isinstance(e, PermissionError) or e.errno != errno.EPERM:
        return ""
    frames = traceback.extract_tb(e.__traceback__)
    if frames and os.path.basename(frames[-1].filename) == "socket.py":
        return " [the grader runs your code without network: only Unix sockets may be opened]"
    return (" [the grader runs your code as an unprivileged user, without network, namespaces, mounts "
            "or tracing of other processes]")
