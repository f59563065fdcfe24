"""The untrusted side: `python -m gencourse.grading.worker SCRATCH`.

Runs inside the limits that `sandbox.py` set up. Reads SCRATCH/plan.json, runs
the cells in one fresh namespace (a cell that raises is recorded, the next one
runs), then answers each call with its probe and writes, call by call,

    SCRATCH/out/<key>/<name>.npy     plain numeric arrays, or
    SCRATCH/out/<key>/error.txt      "ExceptionType: message (cell 'x', line n)"

Each answer is written into a temporary folder and renamed into place, so a
folder that exists is complete, and a later hang or crash loses nothing done
before. Progress goes to the file descriptor in GENCOURSE_PROGRESS_FD as JSON
lines ("ready", "start"/"end" of each cell and call, "done"), which is how the
sandbox knows which step was running when the worker died or hung.

Nothing here is trusted by the grader: it reads back only arrays, and judges.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import resource
import sys
import traceback

import numpy as np

from ..weights import as_numpy
from .sandbox.confine import confine, refusal

# Bound before any student code runs, so that monkeypatching numpy, builtins or
# os in a notebook cell does not change how the answers are written.
_open = builtins.open
_write = os.write
_replace = os.replace
_makedirs = os.makedirs
_getpid = os.getpid
_exit = os._exit
_frombuffer = np.frombuffer
_dtype = np.dtype
_BUILTINS = dict(vars(builtins))


def restore_builtins() -> None:
    """Undo what student code did to the builtins module (numpy's own Python code looks them up)."""
    d = vars(builtins)
    for k in [k for k in d if k not in _BUILTINS]:
        del d[k]
    d.update(_BUILTINS)
_escape = json.encoder.encode_basestring_ascii
_getattr = builtins.getattr
_isinstance = builtins.isinstance
_str = builtins.str
_type = builtins.type

INTEGRITY_PROBE = "__integrity__"
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
NUMERIC_KINDS = "biuf"
MAX_ERROR_CHARS = 1200


class CappedStream(io.TextIOBase):
    """A text stream that writes to a file descriptor until `cap` bytes, then drops the rest."""

    def __init__(self, fd: int, cap: int):
        self._fd = fd
        self._left = cap
        self._dropped = False

    def writable(self):
        return True

    def write(self, s):
        if not _isinstance(s, _str):
            s = _str(s)
        if self._left > 0:
            b = s[: self._left].encode("utf-8", errors="replace")[: self._left]
            self._left -= len(b)
            try:
                while b:
                    n = _write(self._fd, b)
                    b = b[n:]
            except OSError:
                self._left = 0
        elif not self._dropped:
            self._dropped = True
            try:
                _write(self._fd, b"\n[output truncated by the grader]\n")
            except OSError:
                pass
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False


class Progress:
    def __init__(self, fd: int | None):
        self.fd = fd

    def __call__(self, **event):
        if self.fd is None:
            return
        # No json.dumps: its pure-Python part looks builtins up at call time.
        fields = []
        for k, v in event.items():
            fields.append(_escape(k) + ":" + ("null" if v is None else _escape(_str(v)[:20000])))
        line = ("{" + ",".join(fields) + "}\n").encode()
        try:
            _write(self.fd, line)
        except OSError:
            pass


def describe_exception(e: BaseException) -> str:
    """ "Type: message (cell 'x', line n)", short; SystemExit says which code was used."""
    try:
        kind = _type(e).__name__
        if _isinstance(e, SystemExit):
            text = f"SystemExit: your code called sys.exit({e.code!r}); return a value instead"
        else:
            try:
                msg = _str(e)
            except Exception:
                msg = "<the exception's message could not be printed>"
            text = (f"{kind}: {msg}" if msg else kind) + refusal(e)
        where = ""
        try:
            for frame in traceback.extract_tb(e.__traceback__):
                if frame.filename.startswith("<cell "):
                    where = f" ({frame.filename[1:-1]}, line {frame.lineno})"
        except Exception:
            pass
        text = text.replace("\x00", "")
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 15] + " ... [cut]"
        return text + where
    except BaseException:
        return "an exception that could not be described"


def to_numeric_array(value, name: str) -> np.ndarray:
    """A probe output as an array (`weights.as_numpy`); numbers only, never objects."""
    a = as_numpy(value)
    if a.dtype.kind not in NUMERIC_KINDS:
        raise TypeError(f"the output {name!r} is not numeric (dtype {a.dtype}, from {_type(value).__name__}); "
                        "return numbers, a numpy array or a tensor")
    return a


def probe_outputs(result) -> dict[str, np.ndarray]:
    if not _isinstance(result, dict):
        raise TypeError(f"grader error: the probe returned {_type(result).__name__}, not a dict")
    arrays = {}
    for name, value in result.items():
        if not _isinstance(name, _str) or not NAME.match(name) or name == "error":
            raise TypeError(f"grader error: bad output name {name!r}")
        arrays[name] = to_numeric_array(value, name)
    return arrays


def load_inputs(scratch: str, inputs: dict) -> dict:
    """Raw bytes + dtype + shape from the plan: no numpy Python code that student code may have patched."""
    out = {}
    for name, spec in inputs.items():
        with _open(os.path.join(scratch, spec["file"]), "rb") as f:
            data = f.read()
        out[name] = _frombuffer(data, dtype=_dtype(spec["dtype"])).reshape(spec["shape"]).copy()
    return out


def npy_bytes(a: np.ndarray) -> bytes:
    """The .npy (format 1.0) encoding of a numeric array, written by hand for the same reason."""
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (a.dtype.str, tuple(a.shape))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    n = len(header)
    return b"\x93NUMPY\x01\x00" + bytes([n & 0xFF, n >> 8]) + header.encode("latin1") + a.tobytes(order="C")


def _write_reply(out_dir: str, key: str, arrays: dict | None, error: str | None) -> None:
    tmp = os.path.join(out_dir, f".{key}.tmp")
    _makedirs(tmp, exist_ok=True)
    if error is not None:
        with _open(os.path.join(tmp, "error.txt"), "w", encoding="utf-8") as f:
            f.write(error)
    else:
        for name, a in arrays.items():
            with _open(os.path.join(tmp, f"{name}.npy"), "wb") as f:
                f.write(npy_bytes(a))
    _replace(tmp, os.path.join(out_dir, key))


class _Answered(Exception):
    """The integrity call's answer is ready (it is no probe of the assignment)."""


def _start_guard(scratch: str, plan: dict, probes):
    """The run-time integrity guard (grading/guard.py) as the plan's integrity call configures it, installed
    before any student code runs; (None, {}) without that call. A failure here leaves the guard off: it can
    only take points away, so grading goes on without it."""
    calls = [c for c in plan.get("calls", []) if c.get("probe") == INTEGRITY_PROBE]
    if not calls:
        return None, {}
    try:
        import importlib

        from . import guard as guard_module

        config = json.loads(bytes(load_inputs(scratch, calls[-1].get("inputs", {}))["config"]).decode("utf-8"))
        for name in config["solution"]:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        package = plan["probes"].rpartition(".")[0]
        hidden = [*config["solution"], *[m for m in sys.modules if m == package or m.startswith(package + ".")]]
        here = os.path.dirname(os.path.abspath(__file__))
        trusted = [here, os.path.dirname(os.path.abspath(probes.__file__))]
        guard = guard_module.Guard(hidden, config["solution"], trusted, os.path.dirname(here), config["parts"])
        guard.install()
        return guard, dict(config.get("calls", {}))
    except BaseException as e:
        print(f"grader note: the integrity guard is off ({describe_exception(e)})", file=sys.stderr)
        return None, {}


def run(scratch: str) -> int:
    main_pid = _getpid()
    fd = os.environ.get("GENCOURSE_PROGRESS_FD")
    progress = Progress(int(fd) if fd and fd.isdigit() else None)
    with _open(os.path.join(scratch, "plan.json"), encoding="utf-8") as f:
        plan = json.load(f)
    cap = int(plan.get("output_cap_bytes", 256 * 1024))
    sys.stdout = CappedStream(1, cap)
    sys.stderr = CappedStream(2, cap)
    cpu_step = plan.get("cpu_seconds")
    out_dir = os.path.join(scratch, "out")
    _makedirs(out_dir, exist_ok=True)

    def cpu_budget():
        """This step may use `cpu_seconds` more CPU time (soft limit: SIGXCPU after that)."""
        if not cpu_step:
            return
        try:
            ru = resource.getrusage(resource.RUSAGE_SELF)
            used = ru.ru_utime + ru.ru_stime
            soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
            want = int(used) + int(cpu_step) + 1
            if hard != resource.RLIM_INFINITY:
                want = min(want, hard)
            resource.setrlimit(resource.RLIMIT_CPU, (want, hard))
        except (OSError, ValueError):
            pass

    try:
        import importlib
        probes = importlib.import_module(plan["probes"])
    except BaseException as e:
        progress(event="fatal", error=f"grader error: the probe module {plan.get('probes')!r} "
                                      f"could not be imported: {describe_exception(e)}")
        return 3
    guard, step_parts = _start_guard(scratch, plan, probes)
    why = confine(scratch, lambda text: progress(event="sandbox", note=text))   # before any student code
    if why:
        progress(event="fatal", error=why)
        return 3
    progress(event="ready")

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    for cell in plan.get("cells", []):
        gid = cell["grade_id"]
        progress(event="start", kind="cell", id=gid)
        if guard is not None:
            guard.step = gid
            guard.hide()
        cpu_budget()
        error = None
        try:
            code = compile(cell["source"], f"<cell {gid!r}>", "exec")
            exec(code, namespace)
        except BaseException as e:          # SystemExit and KeyboardInterrupt included
            restore_builtins()
            error = describe_exception(e)
        if _getpid() != main_pid:           # a fork of student code: never report twice
            _exit(0)
        restore_builtins()
        progress(event="end", kind="cell", id=gid, error=error)

    if guard is not None:
        try:
            guard.check_namespace(namespace)
        except BaseException:
            pass
    for call in plan.get("calls", []):
        key = call["key"]
        progress(event="start", kind="call", id=key)
        cpu_budget()
        arrays, error = None, None
        if guard is not None:
            guard.step = step_parts.get(key, "")
            guard.hide()
        try:
            if call["probe"] == INTEGRITY_PROBE:
                arrays = {"evidence": _frombuffer(guard.evidence() if guard else b"", dtype=_dtype("uint8")).copy()}
                raise _Answered
            fn = _getattr(probes, call["probe"], None)
            if fn is None:
                raise LookupError(f"grader error: the probe {call['probe']!r} does not exist")
            inputs = load_inputs(scratch, call.get("inputs", {}))
            arrays = probe_outputs(fn(namespace, **inputs))
        except _Answered:
            pass
        except BaseException as e:
            restore_builtins()
            arrays, error = None, describe_exception(e)
        if _getpid() != main_pid:
            _exit(0)
        restore_builtins()
        try:
            _write_reply(out_dir, key, arrays, error)
        except BaseException as e:
            try:
                _write_reply(out_dir, key, None, f"the answer could not be written: {describe_exception(e)}")
            except BaseException:
                pass
        progress(event="end", kind="call", id=key)
    progress(event="done")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m gencourse.grading.worker SCRATCH", file=sys.stderr)
        return 2
    code = run(os.path.abspath(argv[0]))
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    _exit(code)       # no atexit handlers or finalizers of student code


if __name__ == "__main__":
    main()
