"""The sandbox: running the worker under every limit this machine allows, and reading back plain arrays.

`run_worker(assignment, cells, calls, limits)` starts `python -m
gencourse.grading.worker SCRATCH` in a session and process group of its own,
with resource limits and no-new-privs set in the child before exec, a fresh
scratch directory as working directory and a stripped environment. Where the
grader runs as root with CAP_SYS_ADMIN, the child also gets its own network
namespace (no network) and mount namespace (the autograder's hidden checks and
the grader's outputs covered by empty file systems); without it (Docker,
Gradescope) those folders lose every permission of other users instead. As
root the worker drops, after its trusted imports, to a user id of its own for
this job, so that RLIMIT_NPROC counts only its processes and every process it
left behind can be killed by user id; everywhere on Linux it then installs a
seccomp filter (no sockets but Unix ones, no namespaces, mounts or tracing).

A worker that hangs, crashes, exits or is killed costs the step it was running
(known from its progress lines): that call gets a message, a cell that did it
is skipped, and a fresh worker answers the remaining calls, a bounded number of
times. Answers are read back only with np.load(allow_pickle=False), after the
worker and everything it started are dead, with size caps and without
following links.

Modules by concern: `limits` (what a worker may use), `system` (root, libc,
paths), `processes` (per-job users, the /proc scan, killing leftovers),
`child` (the forked child's namespaces, mounts or modes, and limits),
`confine` (the worker's own drop to its user), `seccomp` (the filter),
`session` (one worker from start to kill), `replies` (reading answers back),
`messages` (what a student reads about it). docs/design.md, "Trust model".
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from ..contract import Assignment, Call, Reply
from .limits import Limits
from .messages import DOCKER_CAPS, LAYERS, applied_layers, expected_layers, isolation_notes, stop_reason
from .processes import JobUser, kill_user, reap_job
from .replies import _open_dir, read_reply
from .session import _run_session
from .system import is_root, protect, scratch_base

__all__ = ["DOCKER_CAPS", "LAYERS", "Limits", "expected_layers", "kill_user", "protect", "reap_job", "read_reply",
           "run_worker", "scratch_base"]


def run_worker(assignment: Assignment, cells, calls: list[Call], limits: Limits | None = None,
               notes: list | None = None, layers: list | None = None) -> tuple[dict[str, Reply], list[str]]:
    """Answer `calls` in isolated workers after running `cells` [(grade_id, source)] in order.

    Returns ({call key: Reply}, isolation notes). Notes on the submission (a cell
    that raised, hung or killed its worker) are appended to `notes` if given, the
    isolation layers that held (LAYERS' keys) to `layers`.
    """
    limits = limits or Limits.for_assignment(assignment)
    cells = [(c["grade_id"], c["source"]) if isinstance(c, dict) else (c[0], c[1]) for c in cells]
    notes = notes if notes is not None else []
    pending = [c for c in calls]
    replies: dict[str, Reply] = {}
    root = is_root()
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
    if drop and user is None:                 # never run student code as root
        why = "grader error: no free user id for the worker, so it was not run (it never runs as root)"
        return {c.key: Reply(error=why) for c in calls}, [why]
    private = tempfile.mkdtemp(prefix="gencourse-grader-", dir=scratch_base())
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
            why = stop_reason(s, limits)
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
    if layers is not None:
        layers.extend(applied_layers(sandbox_notes))
    return replies, isolation_notes(limits, sandbox_notes, root=root, workers=workers)
