"""Processes of a job: per-job user ids (lock files), one /proc scan, and killing what a worker left.

With a user id of its own (as root), everything the worker started is found and
killed by that id; without one, the grader becomes a child subreaper, so the
worker's escapees (setsid, double fork) come back as its children and are
killed by start time.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import random
import shutil
import signal
import stat
import subprocess
import tempfile
import time

from .system import PR_SET_CHILD_SUBREAPER, _get_libc

UID_RANGE = range(61000, 62000)        # per-job user ids, all unused in /etc/passwd


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
            remove_files_of(self.uid)
        if self._fd is not None:
            os.close(self._fd)
        self.uid = self.gid = self._fd = None


def remove_files_of(uid: int, shared=("/tmp", "/var/tmp", "/dev/shm")) -> None:
    """Remove what `uid` left at the top of the shared temporary folders (without a mount
    namespace they are the real ones), so nothing of a job outlives it; links are not followed."""
    for base in shared:
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            path = os.path.join(base, name)
            try:
                st = os.lstat(path)
                if st.st_uid != uid:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


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
            remove_files_of(uid)
        except OSError:
            pass                              # held by another grader, which killed the leftovers
        finally:
            os.close(fd)


def _stat_fields(pid: str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _real_uid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def processes(with_uid: bool = False):
    """(pid, state, ppid, start ticks, real uid or None) of every process /proc lists: the one scan
    both killers use (by user id, and our reparented orphans by start time)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is None or len(fields) < 20:
            continue
        try:
            ppid, start = int(fields[1]), int(fields[19])
        except ValueError:
            continue
        yield int(entry), fields[0], ppid, start, _real_uid(entry) if with_uid else None


def _pids_of_user(uid: int) -> list[int]:
    """Live processes (zombies left out) whose real user id is `uid`."""
    return [pid for pid, state, _, _, owner in processes(with_uid=True) if owner == uid and state != "Z"]


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


def threads_of_user(uid: int) -> list[int]:
    tasks = []
    for pid in _pids_of_user(uid):
        try:
            tasks.extend(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return tasks


_subreaper = False


def become_subreaper() -> bool:
    """Without a user id of its own, orphans of the worker (setsid and double fork) become our
    children, so that they can be found and killed at the end."""
    global _subreaper
    if not _subreaper:
        try:
            _subreaper = _get_libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _subreaper = False
    return _subreaper


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(str(pid))
    try:
        return int(fields[19]) if fields else None
    except (ValueError, IndexError):
        return None


def _kill_orphans(worker_start: int | None, rounds: int = 20) -> None:
    """SIGKILL our children that started after the worker (its reparented escapees), and reap them."""
    if worker_start is None:
        return
    me = os.getpid()
    for _ in range(rounds):
        late = [(pid, state, ppid) for pid, state, ppid, start, _ in processes() if start >= worker_start]
        found = [pid for pid, state, ppid in late if ppid == me and state != "Z"]
        for pid in found:
            for kill in (lambda: os.killpg(os.getpgid(pid), signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    kill()
                except OSError:
                    pass
        for pid, _, _ in late:                    # reap our zombies among them
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not found:
            return
        time.sleep(0.02)


def kill_all(proc: subprocess.Popen, user: JobUser | None, worker_start: int | None = None) -> None:
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
