"""The isolated grader: student code runs in a limited worker; judgments happen here.

The engine knows no topic: an assignment (its parts, checks and probes) lives
with its topic and is listed in `gencourse.assignments`. docs/design.md draws
the trust model and the path of one `gencourse grade` from the command to
results.json.
"""

from .contract import Assignment, Call, Check, CheckResult, Reply, Report, Verdict, as_array
from .judging import (Case, Mistake, clean_error, close, differences, failure, first_match, get, judge, kept_inputs,
                      make_check, named_shapes, not_implemented, ok_reply, shapes_from_table, show, unflatten)
from .registry import REGISTRY, get_assignment, register
from .inprocess import run_hidden, run_visible

__all__ = ["Assignment", "Call", "Case", "Check", "CheckResult", "Mistake", "Reply", "Report", "Verdict",
           "REGISTRY", "as_array", "clean_error", "close", "differences", "failure", "first_match", "get", "get_assignment",
           "judge", "kept_inputs", "make_check", "named_shapes", "not_implemented", "shapes_from_table", "ok_reply", "register", "run_hidden", "run_visible",
           "show", "unflatten", "grade_notebook", "grade_batch"]


def __getattr__(name):          # the grader's entry points, imported when asked for
    if name == "grade_notebook":
        from .grade import grade_notebook
        return grade_notebook
    if name == "grade_batch":
        from .batch import grade_batch
        return grade_batch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
