"""What the sandbox asks of this machine: root, libc (mount, unshare, prctl), the paths the
worker must be able to read, and private folders for scratch space and grader outputs."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38


def is_root() -> bool:
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


def needed_paths(probes: str) -> list[str]:
    """Everything the worker must read: the interpreter, the venv, the package and the probes."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for mod in ("gencourse", "numpy", probes):
        root = _module_root(mod)
        if root:
            paths.add(root)
    return sorted(p for p in paths if p and os.path.isdir(p))


def python_path(probes: str) -> list[str]:
    roots = []
    for mod in ("gencourse", probes):
        r = _module_root(mod)
        if r and r not in roots:
            roots.append(r)
    return roots


def scratch_base() -> str | None:
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


def chown_tree(path: str, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), uid, gid)


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


def deny_others(path) -> bool:
    """Take every permission of other users from folder `path` (what a worker without a mount
    namespace must not read); False for a shared folder (sticky, like /tmp, or at the top level)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_ISVTX or len(Path(path).parts) <= 2:
            return False
        if st.st_mode & 0o007:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o007)
        return True
    except OSError:
        return False
