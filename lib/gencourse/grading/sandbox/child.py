"""The forked child's setup before it execs the worker: namespaces, mounts, limits.

As root with CAP_SYS_ADMIN: its own network namespace (no network) and mount
namespace, where the hidden checks, the solutions and the submissions are
covered by empty file systems, /tmp is private (a checkout or venv inside it
bound back read-only), and the folders the worker must read stay reachable.
As root without it (a Docker container, Gradescope's): the same folders lose
every permission of other users instead (the worker's user is never their owner
or in their group). Then resource limits and PR_SET_NO_NEW_PRIVS; the worker
drops to the job's user itself, after its imports (`confine`). Each step reports
what it did as a "sandbox" progress line, so the feedback says which isolation
applied.
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import resource
import signal

from .limits import Limits
from .processes import JobUser, threads_of_user
from .system import (CLONE_NEWNET, CLONE_NEWNS, MS_BIND, MS_NODEV, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
                     MS_REMOUNT, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, _get_libc, _mount, _other_can_traverse,
                     deny_others)


def _bind_back(paths: list[str], fds: list[int]) -> None:
    """Mount each folder (held open as `fds` before a tmpfs covered it) back at its path, read-only."""
    for p, fd in zip(paths, fds):
        os.makedirs(p, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
        _mount(None, p, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
        os.close(fd)


def make_preexec(limits: Limits, user: JobUser | None, own_net: bool, progress_w: int,
                  needed: list[str], hide: list[str], private_tmp: list[str] = ()):
    """The function run in the forked child before exec: namespaces or modes, limits."""
    try:
        libc = _get_libc()
    except OSError:
        libc = None
    # A private /tmp that holds part of the installation (a checkout or venv under /tmp) gets
    # those paths bound back read-only; the folders created on the way are traversable, so
    # nothing under it needs a blocker of its own.
    under = lambda p, t: p.startswith(t.rstrip("/") + "/")  # noqa: E731
    tmp_exposed = {t: [p for p in needed if under(p, t)] for t in private_tmp}
    blockers: dict[str, list[str]] = {}
    if user is not None:
        for p in needed:
            b = _other_can_traverse(p)
            if b and not any(under(p, t) for t in private_tmp):
                blockers.setdefault(b, []).append(p)
    mem = int(limits.memory_mb) * 2**20
    cpu_hard = int(math.ceil(limits.cpu_seconds * 4 + 30))
    fsize = int(limits.file_mb) * 2**20
    nproc = int(limits.processes)
    if user is None:                          # RLIMIT_NPROC counts every process of this user
        nproc += len(threads_of_user(os.getuid()))

    def note(text):
        try:
            os.write(progress_w, (json.dumps({"event": "sandbox", "note": text}) + "\n").encode())
        except OSError:
            pass

    def preexec():
        mount_ns = False
        if libc is not None and (own_net or user is not None):
            flags = (CLONE_NEWNET if own_net else 0) | (CLONE_NEWNS if user is not None else 0)
            if flags and libc.unshare(flags) != 0:
                e = ctypes.get_errno()
                note(f"unshare:{errno.errorcode.get(e, e)}")
                if own_net and libc.unshare(CLONE_NEWNET) == 0:
                    note("net:own")
            else:
                if own_net:
                    note("net:own")
                mount_ns = user is not None
        if mount_ns:
            try:
                _mount(None, "/", None, MS_REC | MS_PRIVATE)
                note("mnt:own")
                for path in hide:
                    try:
                        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=16k,mode=000")
                        note(f"hidden:{path}")
                    except OSError as e:
                        note(f"hide-failed:{path}:{e.strerror}")
                for path in private_tmp:
                    fds = [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in tmp_exposed[path]]
                    try:
                        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
                        note(f"tmp:{path}")
                    except OSError as e:
                        note(f"tmp-failed:{path}:{e.strerror}")
                        for fd in fds:
                            os.close(fd)
                        fds = []
                    _bind_back(tmp_exposed[path], fds)
                for blocker, paths in blockers.items():
                    fds = [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in paths]
                    _mount("tmpfs", blocker, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
                    _bind_back(paths, fds)
                    note(f"exposed:{blocker}")
            except OSError as e:
                note(f"mnt-failed:{e}")
                mount_ns = False
        if user is not None and not mount_ns:
            note("mnt:none")
            for path in hide:
                note(f"{'closed' if deny_others(path) else 'open'}:{path}")
        for res, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu_hard),
                           (resource.RLIMIT_NOFILE, int(limits.open_files)), (resource.RLIMIT_FSIZE, fsize),
                           (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, nproc)):
            try:
                resource.setrlimit(res, (value, value))
            except (OSError, ValueError):
                note(f"rlimit-failed:{res}")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # an oversize write fails, it does not kill
        if libc is not None:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.umask(0o077)

    return preexec, blockers, cpu_hard, nproc
