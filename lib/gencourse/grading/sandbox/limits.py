"""What one worker may use (`Limits`), per assignment."""

from __future__ import annotations

from dataclasses import dataclass

from ..contract import Assignment


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
