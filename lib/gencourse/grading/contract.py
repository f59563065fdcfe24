"""The grading contract: what a check asks of the student's code and how it judges.

A `Check` never runs student code. It builds `Call`s (a probe name and plain
arrays chosen by the grader from fixed seeds); the isolated worker runs the probe
against the student's namespace and sends back a `Reply` (plain arrays or an
error string); the check's `judge` turns the replies into a `Verdict` in the
grader's own process, comparing with `gencourse.reference` oracles.

Visible checks ship in the package (students run them); hidden checks live in
`autograder/hidden/` and are loaded by the grader only, so they never reach a
student's machine or the worker's file system (docs/design.md, "Trust model").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Call:
    """One probe to run in the worker: `probe(namespace, **inputs) -> dict of arrays`."""

    key: str                          # unique within one grading run
    probe: str                        # a function of the assignment's probe module
    inputs: dict = field(default_factory=dict)   # name -> np.ndarray (plain numeric)


@dataclass
class Reply:
    """What came back for one Call: arrays, or an error ("NotImplementedError: ...", "timed out")."""

    arrays: dict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.arrays is not None


@dataclass
class Verdict:
    score: float
    message: str


@dataclass
class Check:
    """A graded question about one part (an nbgrader grade_id)."""

    name: str                                       # what a student reads
    part: str                                       # grade_id of the solution cell judged
    points: float
    calls: Callable[[], list[Call]]
    judge: Callable[[dict[str, Reply]], Verdict]    # replies keyed by Call.key
    visible: bool = True
    slow: bool = False                              # trains a model (convergence check)


@dataclass
class Assignment:
    """One assignment in one track: its notebook, its cells and its checks."""

    name: str                    # the folder under solutions/ and the first half of the key
    track: str                   # "tf" or "torch"
    notebook: str                # path of the source notebook, relative to solutions/
    probes: str                  # module imported inside the worker: "gencourse.<topic>.assignment.<track>_probes"
    setup_cells: list[str]       # grade_ids of locked cells run from the trusted source notebook
    parts: list[str]             # grade_ids of the student's solution cells, in notebook order
    checks: list[Check] = field(default_factory=list)
    cpu_seconds: int = 120       # worker limits for this assignment
    memory_mb: int = 6144
    solution_modules: tuple = ()  # the package modules that implement graded parts (grading/integrity.py)
    slow_checks: bool = True     # False: a copy that skips every slow check, hidden ones included (quick runs)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.track}"


def per_track(module: str, name: str, tracks, parts, visible_checks, *, setup_cells=("setup",),
              cpu_seconds: int = 120, memory_mb: int = 6144, solution_modules=()) -> list[Assignment]:
    """One Assignment per track, by the course's conventions: the notebook solutions/NAME/NAME_TRACK.ipynb,
    the probes `MODULE.TRACK_probes` (MODULE: the topic's assignment package), the visible checks
    `visible_checks(track)`, the solution modules with "{track}" filled in."""
    return [Assignment(name=name, track=t, notebook=f"{name}/{name}_{t}.ipynb", probes=f"{module}.{t}_probes",
                       setup_cells=list(setup_cells), parts=list(parts), checks=visible_checks(t),
                       cpu_seconds=cpu_seconds, memory_mb=memory_mb,
                       solution_modules=tuple(m.format(track=t) for m in solution_modules)) for t in tracks]


@dataclass
class CheckResult:
    name: str
    part: str
    points: float
    score: float
    message: str
    visible: bool


@dataclass
class Report:
    """The outcome of grading one submission: every check, and what isolation applied."""

    student: str
    assignment: str
    results: list[CheckResult]
    isolation: list[str]                       # e.g. ["own session", "CPU 120 s", "no network", ...]
    notes: list[str] = field(default_factory=list)   # e.g. "cell 'kl' is missing"
    layers: list[str] = field(default_factory=list)  # isolation layers that held: "user", "seccomp", "mounts", "netns"
    integrity: list[dict] = field(default_factory=list)   # {part, action: "zeroed"|"flagged", message}

    @property
    def score(self) -> float:
        return float(sum(r.score for r in self.results))

    @property
    def max_score(self) -> float:
        return float(sum(r.points for r in self.results))


def as_array(reply: Reply, name: str, shape: tuple | None = None) -> np.ndarray:
    """A finite float array from a reply, or ValueError with a message a student understands."""
    if not reply.ok:
        raise ValueError(reply.error or "no output")
    if name not in reply.arrays:
        raise ValueError(f"no output named {name!r}")
    a = np.asarray(reply.arrays[name])
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {a.dtype}, expected numbers")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinity")
    return a.astype(np.float64)
