"""A seccomp filter for the worker: no network, no namespaces, no mounts, no tracing.

Installed by the worker on itself before any student code runs, once
PR_SET_NO_NEW_PRIVS is set (then it needs no privilege), on every thread at
once (SECCOMP_FILTER_FLAG_TSYNC: the frameworks start thread pools at import).
It refuses with EPERM, so student code gets a Python error at once, not a hang:

- `socket` and `socketpair` of every address family but AF_UNIX (multiprocessing
  and data loaders use Unix sockets; everything else is network);
- `unshare`, `setns`, `clone` with a CLONE_NEW* flag, the mount calls old and new,
  `ptrace`, `process_vm_readv/writev`, `pidfd_getfd`, `kcmp`, the kernel keyring
  (`keyctl`, `add_key`, `request_key`), `bpf`, `perf_event_open`, `userfaultfd`,
  io_uring (whose operations would open sockets without `socket`) and System V
  IPC objects (`shmget`, `semget`, `msgget`: they outlive the job's processes and,
  without an IPC namespace, are shared by every job);
- `clone3` gets ENOSYS (its flags sit behind a pointer a filter cannot read),
  so the C library falls back to `clone`, whose flags it can;
- a foreign system-call ABI (i386 through int 0x80, x32 on x86_64).

Numbers: the kernel's syscall tables (arch/x86/entry/syscalls/syscall_64.tbl,
include/uapi/asm-generic/unistd.h for aarch64). Filter format: the kernel's
Documentation/userspace-api/seccomp_filter.rst.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

from .system import PR_SET_NO_NEW_PRIVS, _get_libc

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000
COMMON = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
          "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
          "pidfd_getfd": 438, "mount_setattr": 442}
SYSCALLS = {
    "x86_64": {"socket": 41, "socketpair": 53, "clone": 56, "clone3": 435, "seccomp": 317, "unshare": 272,
               "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "ptrace": 101,
               "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "keyctl": 250, "add_key": 248,
               "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "shmget": 29,
               "semget": 64, "msgget": 68, **COMMON},
    "aarch64": {"socket": 198, "socketpair": 199, "clone": 220, "clone3": 435, "seccomp": 277, "unshare": 97,
                "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "ptrace": 117,
                "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "keyctl": 219, "add_key": 217,
                "request_key": 218, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "shmget": 194,
                "semget": 190, "msgget": 186, **COMMON},
}
REFUSED = ("unshare", "setns", "mount", "umount2", "pivot_root", "ptrace", "process_vm_readv", "process_vm_writev",
           "kcmp", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "shmget", "semget",
           "msgget", *COMMON)
AF_UNIX = 1
CLONE_NEW_FLAGS = 0x7E020000          # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET

# classic BPF
LD_W_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
OFF_NR, OFF_ARCH, OFF_ARG0 = 0, 4, 16         # struct seccomp_data (arg 0's low word: little-endian)
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def machine() -> str | None:
    m = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(m)


def program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions; jumps written with labels, then resolved."""
    nr = SYSCALLS[arch]
    ins: list = [(LD_W_ABS, 0, 0, OFF_ARCH), (JEQ, 0, "deny", AUDIT_ARCH[arch]), (LD_W_ABS, 0, 0, OFF_NR)]
    if arch == "x86_64":
        ins.append((JGE, "deny", 0, X32_SYSCALL_BIT))
    ins += [(JEQ, "deny", 0, nr[name]) for name in REFUSED]
    ins += [(JEQ, "family", 0, nr["socket"]), (JEQ, "family", 0, nr["socketpair"]),
            (JEQ, "clone", 0, nr["clone"]), (JEQ, "enosys", 0, nr["clone3"]), (RET, 0, 0, RET_ALLOW)]
    labels = {"family": len(ins)}
    ins += [(LD_W_ABS, 0, 0, OFF_ARG0), (JEQ, "allow", "deny", AF_UNIX)]
    labels["clone"] = len(ins)
    ins += [(LD_W_ABS, 0, 0, OFF_ARG0), (JSET, "deny", "allow", CLONE_NEW_FLAGS)]
    labels.update(allow=len(ins), enosys=len(ins) + 1, deny=len(ins) + 2)
    ins += [(RET, 0, 0, RET_ALLOW), (RET, 0, 0, RET_ERRNO | errno.ENOSYS), (RET, 0, 0, RET_ERRNO | errno.EPERM)]
    out = []
    for i, (code, jt, jf, k) in enumerate(ins):
        jt, jf = (labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf))
        assert 0 <= jt < 256 and 0 <= jf < 256
        out.append((code, jt, jf, k))
    return out


def _filtered_threads() -> bool:
    """Every thread of this process reports seccomp mode 2 (filter)."""
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/status") as f:
            if not any(line.split() == ["Seccomp:", "2"] for line in f):
                return False
    return True


def install() -> str | None:
    """Install the filter on every thread of this process; None when it holds, else why not."""
    arch = machine()
    if not platform.system() == "Linux":
        return f"not Linux ({platform.system()})"
    if arch is None:
        return f"no system-call table for {platform.machine()}"
    try:
        libc = _get_libc()
    except OSError as e:
        return f"no C library ({e})"
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"PR_SET_NO_NEW_PRIVS failed ({os.strerror(ctypes.get_errno())})"
    ins = program(arch)
    table = (SockFilter * len(ins))(*[SockFilter(*i) for i in ins])
    prog = SockFprog(len(ins), table)
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(SYSCALLS[arch]["seccomp"]), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                      ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(prog))
    if rc != 0:
        why = os.strerror(ctypes.get_errno()) if rc < 0 else f"thread {rc} could not be synchronized"
        return f"the kernel refused it ({why})"
    return None if _filtered_threads() else "a thread is not filtered"
