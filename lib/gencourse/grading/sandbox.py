"""Running the worker under every limit this machine allows, and reading back plain arrays.

`run_worker(assignment, cells, calls, limits)` starts `python -m
gencourse.grading.worker SCRATCH` in a session and process group of its own,
with resource limits set in the child before exec, a fresh scratch directory
as working directory and a stripped environment. Where the grader runs as
root, the child also gets its own network namespace (no network) and mount
namespace (the autograder's hidden checks and the grader's outputs covered by
empty file systems), and drops to a user id of its own for this job, so that
RLIMIT_NPROC counts only its processes and every process it left behind can
be killed by user id.

A worker that hangs, crashes, exits or is killed costs the step it was running
(known from its progress lines): that call gets a message, a cell that did it
is skipped, and a fresh worker answers the remaining calls, a bounded number of
times. Answers are read back only with np.load(allow_pickle=False), after the
worker and everything it started are dead, with size caps and without
following links.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import json
import math
import os
import pwd
import grp
import random
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import Assignment, Call, Reply

UID_RANGE = range(61000, 62000)        # per-job user ids, all unused in /etc/passwd
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38


@dataclass
class Limits:
    """What one worker may use. Time limits are per step (one cell or one call)."""

    cpu_seconds: float = 120          # CPU time per step (soft RLIMIT_CPU moved by the worker; SIGXCPU)
    step_seconds: float = 240         # wall clock per step
    startup_seconds: float = 180      # wall clock to start Python and import the probe module (TF: ~30 s here)
    total_seconds: float = 900        # wall clock for one submission, all workers together
    memory_mb: int = 6144             # RLIMIT_AS (TF 2.21 + a small Keras fit needs 2.0-2.3 GB)
    processes: int = 512              # RLIMIT_NPROC, threads included (counts per user id)
    open_files: int = 512             # RLIMIT_NOFILE
    file_mb: int = 128                # RLIMIT_FSIZE: largest file the worker may write (stdout/stderr too)
    output_kb: int = 256              # printed output kept per stream
    reply_mb: int = 256               # largest answer (all arrays of one call) read back
    threads: int = 1                  # OMP/MKL/OpenBLAS/TF/torch threads
    max_workers: int = 8              # fresh workers after a crash or hang, in all
    drop_user: bool | None = None     # None: when root
    own_network: bool | None = None   # None: when root
    hide: tuple = ()                  # paths covered in the worker's mount namespace (root only)

    @classmethod
    def for_assignment(cls, a: Assignment, **changes) -> "Limits":
        cpu = float(a.cpu_seconds)
        base = cls(cpu_seconds=cpu, step_seconds=max(10.0, 2 * cpu), memory_mb=int(a.memory_mb))
        for k, v in changes.items():
            setattr(base, k, v)
        return base


# --------------------------------------------------------------------------- helpers


def _is_root() -> bool:
    return os.geteuid() == 0 and os.environ.get("GENCOURSE_GRADING_UNPRIVILEGED", "") in ("", "0")


_libc = None


def _get_libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _libc


def _mount(src, target, fstype, flags, data=None):
    libc = _get_libc()
    enc = lambda s: None if s is None else os.fsencode(s)
    if libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {target}: {os.strerror(e)}")


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _other_can_traverse(path: str) -> str | None:
    """The first ancestor of `path` that other users cannot enter, or None."""
    p = Path(path)
    for parent in [*reversed(p.parents), p]:
        try:
            st = os.stat(parent)
        except OSError:
            return None
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            return str(parent)
    return None


def _module_root(name: str) -> str | None:
    """The sys.path folder that holds the top-level package of module `name`."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    return str(origin.parent.parent if origin.name == "__init__.py" else origin.parent)


def _needed_paths(probes: str) -> list[str]:
    """Everything the worker must read: the interpreter, the venv, the package and the probes."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for mod in ("gencourse", "numpy", probes):
        root = _module_root(mod)
        if root:
            paths.add(root)
    return sorted(p for p in paths if p and os.path.isdir(p))


def _python_path(probes: str) -> list[str]:
    roots = []
    for mod in ("gencourse", probes):
        r = _module_root(mod)
        if r and r not in roots:
            roots.append(r)
    return roots


# --------------------------------------------------------------------------- per-job user ids


def _lock_dir() -> str:
    for base in ("/run", tempfile.gettempdir()):
        d = os.path.join(base, "gencourse-grading-uids")
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            st = os.lstat(d)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o077:
                return d
        except OSError:
            continue
    raise OSError("no private folder for the per-job user locks")


class JobUser:
    """A user id (and group id) held by this grader for one submission, via a lock file."""

    def __init__(self):
        self.uid = self.gid = None
        self._fd = None

    def acquire(self) -> bool:
        d = _lock_dir()
        ids = list(UID_RANGE)
        start = random.randrange(len(ids))
        for uid in ids[start:] + ids[:start]:
            try:
                pwd.getpwuid(uid)
                continue                      # a real user: never borrow it
            except KeyError:
                pass
            try:
                grp.getgrgid(uid)
                continue
            except KeyError:
                pass
            fd = os.open(os.path.join(d, f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.uid = self.gid = uid
            self._fd = fd
            kill_user(uid)                    # leftovers of a grader that died
            job = os.environ.get("GENCOURSE_SCRATCH")
            if job and os.path.isdir(job):    # for `reap_job` if this supervisor dies
                try:
                    with open(os.path.join(job, "uids"), "a") as f:
                        f.write(f"{uid}\n")
                except OSError:
                    pass
            return True
        return False

    def release(self):
        if self.uid is not None:
            kill_user(self.uid)
        if self._fd is not None:
            os.close(self._fd)
        self.uid = self.gid = self._fd = None


def reap_job(job: str) -> None:
    """After a supervisor died: kill what is left of the user ids it used (those nobody holds now)."""
    try:
        with open(os.path.join(job, "uids")) as f:
            uids = {int(line) for line in f if line.strip().isdigit()}
    except OSError:
        return
    for uid in uids:
        if uid not in UID_RANGE or os.geteuid() != 0:
            continue
        fd = os.open(os.path.join(_lock_dir(), f"{uid}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            kill_user(uid)
        except OSError:
            pass                              # held by another grader, which killed the leftovers
        finally:
            os.close(fd)


def _pids_of_user(uid: int) -> list[int]:
    """Live processes (zombies left out) whose real user id is `uid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                state = None
                for line in f:
                    if line.startswith("State:"):
                        state = line.split()[1]
                    elif line.startswith("Uid:"):
                        if int(line.split()[1]) == uid and state != "Z":
                            pids.append(int(entry))
                        break
        except (OSError, ValueError, IndexError):
            continue
    return pids


def kill_user(uid: int, rounds: int = 20) -> None:
    """SIGKILL every process of `uid`: a child turns into that user and calls kill(-1)."""
    for _ in range(rounds):
        if not _pids_of_user(uid):
            return
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                os.kill(-1, signal.SIGKILL)
            except BaseException:
                pass
            os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.02)


# --------------------------------------------------------------------------- the child's setup


def _make_preexec(limits: Limits, user: JobUser | None, own_net: bool, progress_w: int,
                  needed: list[str], hide: list[str], private_tmp: list[str] = ()):
    """The function run in the forked child before exec: namespaces, limits, user."""
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
        nproc += len(_threads_of_user(os.getuid()))

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
                    for p, fd in zip(tmp_exposed[path], fds):
                        os.makedirs(p, mode=0o755, exist_ok=True)
                        _mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
                        _mount(None, p, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
                        os.close(fd)
                for blocker, paths in blockers.items():
                    fds = [os.open(p, os.O_PATH | os.O_DIRECTORY) for p in paths]
                    _mount("tmpfs", blocker, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
                    for p, fd in zip(paths, fds):
                        os.makedirs(p, mode=0o755, exist_ok=True)
                        _mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
                        _mount(None, p, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
                        os.close(fd)
                    note(f"exposed:{blocker}")
            except OSError as e:
                note(f"mnt-failed:{e}")
                mount_ns = False
        elif user is not None:
            note("mnt:none")
        # Dropping the user is possible if the interpreter is readable by it.
        can_drop = user is not None and (not blockers or mount_ns)
        for res, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, cpu_hard),
                           (resource.RLIMIT_NOFILE, int(limits.open_files)), (resource.RLIMIT_FSIZE, fsize),
                           (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NPROC, nproc)):
            try:
                resource.setrlimit(res, (value, value))
            except (OSError, ValueError):
                note(f"rlimit-failed:{res}")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # an oversize write fails, it does not kill
        if can_drop:
            os.setgroups([])
            os.setresgid(user.gid, user.gid, user.gid)
            os.setresuid(user.uid, user.uid, user.uid)
            note("user:dropped")
        elif user is not None:
            note("user:kept")
        if libc is not None:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)   # after the uid change, which clears it
        os.umask(0o077)

    return preexec, blockers, cpu_hard, nproc


def _threads_of_user(uid: int) -> list[int]:
    tasks = []
    for pid in _pids_of_user(uid):
        try:
            tasks.extend(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return tasks


# --------------------------------------------------------------------------- reading answers


def _open_dir(parent_fd: int | None, name: str) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)


def _read_regular(dir_fd: int, name: str, cap: int) -> bytes | None:
    """The bytes of a regular file (no link, no fifo) up to `cap`, or None if it is anything else or bigger."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
            return None
        chunks, left = [], cap + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        data = b"".join(chunks)
        return None if len(data) > cap else data
    finally:
        os.close(fd)


def read_reply(out_fd: int, key: str, reply_cap: int) -> Reply | None:
    """The answer the worker wrote for `key`, as plain arrays; None when there is none."""
    import io

    try:
        kfd = _open_dir(out_fd, key)
    except OSError:
        return None
    try:
        names = sorted(os.listdir(kfd))[:65]
        if "error.txt" in names:
            data = _read_regular(kfd, "error.txt", 64 * 1024)
            text = (data or b"").decode("utf-8", errors="replace").strip()[:2000]
            return Reply(error=text or "an error without a message")
        arrays, total = {}, 0
        for fname in names:
            if not fname.endswith(".npy") or len(names) > 64:
                return Reply(error="grader: unexpected files in the answer")
            data = _read_regular(kfd, fname, reply_cap - total)
            if data is None:
                return Reply(error=f"the output {fname[:-4]!r} is larger than {reply_cap // 2**20} MB or not a file")
            total += len(data)
            try:
                a = np.load(io.BytesIO(data), allow_pickle=False)
            except Exception as e:
                return Reply(error=f"the output {fname[:-4]!r} could not be read back ({type(e).__name__})")
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
                return Reply(error=f"the output {fname[:-4]!r} is not a numeric array")
            arrays[fname[:-4]] = a
        return Reply(arrays=arrays)
    finally:
        os.close(kfd)


# --------------------------------------------------------------------------- one worker session


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


def _environment(scratch: str, limits: Limits, progress_fd: int, probes: str) -> dict:
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
        "PYTHONPATH": os.pathsep.join(_python_path(probes)),
        "GENCOURSE_PROGRESS_FD": str(progress_fd),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "Agg",
        "KERAS_HOME": os.path.join(scratch, ".keras"),
        "MPLCONFIGDIR": os.path.join(scratch, ".mpl"),
    }
    for k in ("CUDA_VISIBLE_DEVICES", "KERAS_BACKEND", "GENCOURSE_QUICK"):
        if k in os.environ:
            env[k] = os.environ[k]
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


def _scratch_base() -> str | None:
    """Where scratch directories go: as root a root-owned folder outside /tmp (the worker gets
    a private /tmp), otherwise the usual temporary folder."""
    explicit = os.environ.get("GENCOURSE_SCRATCH")
    if os.geteuid() != 0:
        return explicit if explicit and os.path.isdir(explicit) else None
    for base in (explicit, "/run/gencourse-grading", "/var/lib/gencourse-grading"):
        if not base:
            continue
        try:
            os.makedirs(base, mode=0o711, exist_ok=True)
            st = os.lstat(base)
            if stat.S_ISDIR(st.st_mode) and st.st_uid == 0:
                os.chmod(base, 0o711)
                return base
        except OSError:
            continue
    return None


def _chown_tree(path: str, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)


_subreaper = False


def _become_subreaper() -> bool:
    """Without a user id of its own, orphans of the worker (setsid and double fork) become our
    children, so that they can be found and killed at the end."""
    global _subreaper
    if not _subreaper:
        try:
            _subreaper = _get_libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _subreaper = False
    return _subreaper


def _start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _kill_orphans(worker_start: int | None, rounds: int = 20) -> None:
    """SIGKILL our children that started after the worker (its reparented escapees), and reap them."""
    me = os.getpid()
    for _ in range(rounds):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == me and fields[0] != "Z" and worker_start is not None \
                        and int(fields[19]) >= worker_start:
                    found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        for pid in found:
            for kill in (lambda: os.killpg(os.getpgid(pid), signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    kill()
                except OSError:
                    pass
        for entry in os.listdir("/proc"):         # reap our zombies among them
            if entry.isdigit() and worker_start is not None:
                st = _start_ticks(int(entry))
                if st is not None and st >= worker_start:
                    try:
                        os.waitpid(int(entry), os.WNOHANG)
                    except ChildProcessError:
                        pass
        if not found:
            return
        time.sleep(0.02)


def _kill_all(proc: subprocess.Popen, user: JobUser | None, worker_start: int | None = None) -> None:
    """SIGKILL the worker's process group and, with a user id of its own, every process of that user;
    without one, the worker's orphans that came back to us as their subreaper."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    if user is not None and user.uid is not None:
        kill_user(user.uid)
    elif _subreaper:
        _kill_orphans(worker_start)


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
    scratch = tempfile.mkdtemp(prefix="gencourse-worker-", dir=_scratch_base())
    _write_plan(scratch, probes, cells, calls, limits)
    read_fd, write_fd = os.pipe()
    needed = _needed_paths(probes)
    hide = []
    keep = [*needed, scratch]
    for h in limits.hide:
        h = os.path.realpath(h)
        if os.path.isdir(h) and h != "/" and not any(k == h or k.startswith(h.rstrip("/") + "/") for k in keep):
            hide.append(h)
    private_tmp = [t for t in ("/tmp", "/var/tmp", "/dev/shm")
                   if os.path.isdir(t) and t not in needed and not scratch.startswith(t + "/")]
    preexec, _, _, _ = _make_preexec(limits, user, own_net, write_fd, needed, hide, private_tmp)
    if user is not None:
        _chown_tree(scratch, user.uid, user.gid)
    else:
        os.chmod(scratch, 0o700)
    out_path = os.path.join(private, "stdout.txt")
    err_path = os.path.join(private, "stderr.txt")
    cmd = [sys.executable, "-s"] + (["-P"] if sys.version_info >= (3, 11) else []) + \
        ["-m", "gencourse.grading.worker", scratch]
    if user is None:
        _become_subreaper()
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        try:
            proc = subprocess.Popen(cmd, cwd=scratch, env=_environment(scratch, limits, write_fd, probes),
                                    stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, close_fds=True,
                                    pass_fds=(write_fd,), start_new_session=True, preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError) as e:
            os.close(read_fd)
            os.close(write_fd)
            s.fatal = f"grader error: the worker could not start ({type(e).__name__}: {e})"
            return s, scratch
    os.close(write_fd)
    worker_start = _start_ticks(proc.pid)
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
    _kill_all(proc, user, worker_start)
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
    if kind == "sandbox":
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


def _failure(s: _Session, limits: Limits) -> str:
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


# --------------------------------------------------------------------------- the public entry point


def run_worker(assignment: Assignment, cells, calls: list[Call], limits: Limits | None = None,
               notes: list | None = None) -> tuple[dict[str, Reply], list[str]]:
    """Answer `calls` in isolated workers after running `cells` [(grade_id, source)] in order.

    Returns ({call key: Reply}, isolation notes). Notes on the submission (a cell
    that raised, hung or killed its worker) are appended to `notes` if given.
    """
    limits = limits or Limits.for_assignment(assignment)
    cells = [(c["grade_id"], c["source"]) if isinstance(c, dict) else (c[0], c[1]) for c in cells]
    notes = notes if notes is not None else []
    pending = [c for c in calls]
    replies: dict[str, Reply] = {}
    root = _is_root()
    drop = limits.drop_user if limits.drop_user is not None else root
    drop = drop and os.geteuid() == 0
    own_net = limits.own_network if limits.own_network is not None else root
    own_net = own_net and os.geteuid() == 0
    user = JobUser() if drop else None
    try:
        if user is not None and not user.acquire():
            user = None
    except OSError:
        user = None
    private = tempfile.mkdtemp(prefix="gencourse-grader-", dir=_scratch_base())
    sandbox_notes: list[str] = []
    workers = 0
    t0 = time.monotonic()
    deadline_total = t0 + limits.total_seconds
    startup_failures = 0
    try:
        while pending:
            if workers >= limits.max_workers or time.monotonic() >= deadline_total:
                why = (f"not run: {workers} workers were started for this submission and the "
                       "earlier ones crashed or hung" if workers >= limits.max_workers else
                       f"not run: the {limits.total_seconds:.0f} s this submission may use were used up")
                for c in pending:
                    replies[c.key] = Reply(error=why)
                break
            workers += 1
            s, scratch = _run_session(assignment.probes, cells, pending, limits, user, own_net,
                                      private, deadline_total)
            if not sandbox_notes:
                sandbox_notes = s.sandbox
            out_fd = None
            try:
                out_fd = _open_dir(None, os.path.join(scratch, "out"))
            except OSError:
                pass
            answered = []
            for c in pending:
                r = read_reply(out_fd, c.key, int(limits.reply_mb) * 2**20) if out_fd is not None else None
                if r is not None:
                    replies[c.key] = r
                    answered.append(c.key)
            if out_fd is not None:
                os.close(out_fd)
            shutil.rmtree(scratch, ignore_errors=True)
            for gid, err in s.cell_errors.items():
                msg = f"the cell {gid!r} raised an error when it was run: {err}"
                if msg not in notes:
                    notes.append(msg)
            pending = [c for c in pending if c.key not in answered]
            if not pending:
                break
            if s.fatal:
                for c in pending:
                    replies[c.key] = Reply(error=s.fatal)
                break
            if s.done:
                for c in pending:
                    replies[c.key] = Reply(error="no answer: the worker finished without answering")
                break
            why = _failure(s, limits)
            if s.in_flight and s.in_flight[0] == "call":
                key = s.in_flight[1]
                for c in pending:
                    if c.key == key:
                        replies[key] = Reply(error=why)
                pending = [c for c in pending if c.key != key]
            elif s.in_flight and s.in_flight[0] == "cell":
                gid = s.in_flight[1]
                notes.append(f"the cell {gid!r} stopped the worker when it was run ({why}); "
                             "it was skipped, so the checks that need it cannot pass")
                cells = [c for c in cells if c[0] != gid]
            elif not s.ready:
                startup_failures += 1
                if startup_failures >= 2 or s.timed_out == "total":
                    err = f"grader error: the worker did not start ({why})"
                    tail = s.stderr_tail.strip().splitlines()[-3:]
                    if tail:
                        err += ": " + " | ".join(tail)[:500]
                    for c in pending:
                        replies[c.key] = Reply(error=err)
                    break
    finally:
        if user is not None:
            user.release()
        shutil.rmtree(private, ignore_errors=True)
    return replies, isolation_notes(limits, sandbox_notes, user_used=drop, root=root, workers=workers)


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


def protect(path) -> bool:
    """Make `path` (a hidden-checks file or an output folder) unreadable for other users."""
    try:
        st = os.stat(path)
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
        return True
    except OSError:
        return False
