"""Reading a worker's answers back: plain numeric arrays only (np.load without pickle), with size
caps and without following links, after the worker and all it started are dead."""

from __future__ import annotations

import io
import os
import stat

import numpy as np

from ..contract import Reply


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
