"""The judging toolkit every assignment's checks are written with (grader side only).

A check is built with `make_check` from seeded `Case`s and a `judge_one`
function that reads the worker's replies with `get`, compares them with an
oracle with `close`, and raises `Mistake` with the sentence a student reads.
`first_match` names a known wrong answer only when the value equals it;
otherwise the judge describes what it sees. `judge` is the one place where a
verdict becomes points, for the isolated grader and for a notebook's own test
cells alike: scores are clamped to [0, points], and a judge that raises or
returns NaN costs 0 points and is reported as a grader error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .contract import Call, Check, Reply, Verdict, as_array


class Mistake(Exception):
    """A judged input failed; the message is what the student reads."""


ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL = re.compile(r"\s*\(cell '[^']*', line \d+\)\s*$")


def clean_error(error: str) -> str:
    """One readable line from an error: no colour codes, no Keras wrapper around the real message."""
    text = ANSI.sub("", error or "")
    where = CELL.search(text)
    text = CELL.sub("", text)
    if "Could not automatically infer the output shape" in text and "Error encountered:" in text:
        head = text.split(":", 1)[0] + ": " if text.startswith("NotImplementedError") else ""
        text = head + text.split("Error encountered:", 1)[1]
    text = re.sub(r"Exception encountered when calling [^\n]*", "", text)   # Keras' wrapper
    text = text.split("Arguments received by")[0]
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    text = text.strip().rstrip(":").strip()
    if len(text) > 400:
        text = text[:390] + " ... [cut]"
    return text + (where.group(0) if where else "")


def not_implemented(error: str) -> bool:
    """The release's stub (`raise NotImplementedError()`), not a framework's NotImplementedError with a text."""
    text = CELL.sub("", clean_error(error))
    return re.fullmatch(r"NotImplementedError:?\s*", text) is not None


# Framework errors a student's code causes, and what the code did (the framework's text names nothing they wrote).
TRANSLATED = [
    (re.compile(r"does not require grad and does not have a grad_fn"),
     "no gradient can flow back through your result: it is cut from the graph (a .detach(), .item(), "
     ".numpy(), torch.no_grad() or a new tensor made from its values?)"),
    (re.compile(r"Attempt to convert a value \(None\)"),
     "a value is None where a tensor is expected: a gradient that did not come back (the result does not "
     "depend, inside the GradientTape, on what it differentiates: numpy, .numpy(), or values from outside "
     "the tape?) or a function that returns nothing"),
    (re.compile(r"Can't call numpy\(\) on Tensor that requires grad"),
     "your code calls .numpy() on a tensor that is part of the graph: use torch operations so that the "
     "gradient can flow (or .detach() where none should)"),
    (re.compile(r"all elements of input should be between 0 and 1"),
     "binary_cross_entropy takes probabilities, and your values are not all in [0, 1]: for logits (any "
     "real number) use binary_cross_entropy_with_logits"),
    (re.compile(r"a leaf Variable that requires grad is being used in an in-place operation"),
     "your code writes into its input tensor in place (an operation ending in _, or x[...] = ...), which the "
     "gradient back to that input forbids: compute a new tensor instead"),
    (re.compile(r"Trying to backward through the graph a second time"),
     "backward() ran twice through the same graph: compute each loss from the networks' outputs anew "
     "before calling backward() on it"),
]


def translated(error: str) -> str | None:
    """What the student's code did, for a framework error that says it only in the framework's words."""
    for pattern, text in TRANSLATED:
        if pattern.search(error or ""):
            where = CELL.search(error)
            return text + (where.group(0) if where else "")
    return None


def failure(reply: Reply | None) -> str:
    """The student-facing line for a reply that carries an error (or none at all)."""
    if reply is None:
        return "no answer came back"
    err = (reply.error or "no output came back").strip()
    if not_implemented(err):
        return "not implemented yet: the cell still raises NotImplementedError (replace it with your code)"
    if "is not defined" in err:
        return clean_error(err)
    return translated(err) or f"your code raised an error: {clean_error(err)}"


def ok_reply(replies: dict, key: str) -> Reply:
    """The reply for `key` when it carries arrays; a Mistake with the student-facing reason otherwise."""
    reply = replies.get(key)
    if reply is None or not reply.ok:
        raise Mistake(failure(reply))
    return reply


def get(replies: dict, key: str, name: str, shape=None) -> np.ndarray:
    """`as_array` that turns every problem into a Mistake with a student-facing message."""
    reply = replies.get(key)
    if reply is None:
        raise Mistake("no answer came back for this check")
    if not reply.ok:
        raise Mistake(failure(reply))
    try:
        return as_array(reply, name, shape)
    except ValueError as e:
        raise Mistake(str(e)) from None


def show(a, n: int = 4) -> str:
    flat = np.asarray(a, dtype=np.float64).ravel()
    more = ", ..." if flat.size > n else ""
    return "[" + ", ".join(f"{v:.4g}" for v in flat[:n]) + more + "]"


def differences(got, expected, rtol=1e-4, atol=1e-5, n: int = 3) -> str:
    """Where `got` departs from `expected` (tolerances as in `close`): how many entries differ, and the `n`
    that differ most, each with its index and by how much (not the first entries, which may agree)."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        return f"got shape {list(got.shape)}, expected {list(expected.shape)}"
    scale = max(1.0, float(np.max(np.abs(np.nan_to_num(expected)), initial=0.0)))
    diff = np.where(np.isnan(got) | np.isnan(expected), np.inf, np.abs(got - expected))
    bad = diff > atol * scale + rtol * np.abs(np.nan_to_num(expected))
    if not bad.any():
        return "every entry agrees within the tolerance"
    worst = np.argsort(-np.where(bad, diff, -1.0).ravel(), kind="stable")[:min(n, int(bad.sum()))]
    shown = []
    for k in worst:
        i = np.unravel_index(k, got.shape)
        at = f"[{', '.join(str(int(j)) for j in i)}]" if got.ndim else "the value"
        shown.append(f"at {at} yours {got[i]:.5g}, expected {expected[i]:.5g} (off by {got[i] - expected[i]:+.3g})")
    return f"{int(bad.sum())} of {got.size} entries differ; " + "; ".join(shown)


def close(got, expected, rtol=1e-4, atol=1e-5) -> bool:
    """Same shape and equal within rtol, and atol scaled by the largest expected magnitude (at least 1)."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    return bool(np.allclose(got, expected, rtol=rtol, atol=atol * scale))


def first_match(got, variants, rtol=1e-3, atol=1e-4) -> None:
    """Mistake with the hint of the first known wrong answer that `got` equals ([(value, hint)]).

    Where a wrong answer is NaN (0 / 0 without an epsilon, in float64 here), a
    float32 computation may give anything: those entries are left out.
    """
    for value, hint in variants:
        value = np.asarray(value, np.float64)
        got_ = np.asarray(got, np.float64)
        finite = np.isfinite(value)
        if got_.shape == value.shape and not finite.all():
            got_, value = got_[finite], value[finite]
        if close(got_, value, rtol=rtol, atol=atol):
            raise Mistake(hint)


def kept_inputs(replies: dict, key: str, names, what: str) -> None:
    """A Mistake naming each input that `what` wrote into (the probe's `changed` flags from
    `probing.keeping`, in the order of `names`): the notebook uses those inputs again."""
    changed = get(replies, key, "changed", (len(names),))
    written = [n for n, c in zip(names, changed) if c]
    if written:
        raise Mistake(f"{what} changed {' and '.join(f'`{n}`' for n in written)} in place (the result is right "
                      f"but the caller's tensor is overwritten, and the notebook uses it again): compute the "
                      "result into a new tensor instead of assigning into the input")


def shapes_from_table(table) -> list[tuple]:
    """The shapes of a `probing.shape_table`, as tuples."""
    table = np.asarray(table, np.int64)
    return [tuple(int(d) for d in row[1:1 + int(row[0])]) for row in table.reshape(-1, table.shape[-1])]


def named_shapes(got: list[tuple], expected: list[tuple], what: str) -> None:
    """A Mistake unless `what` has exactly the shapes its TODO names (a [1, 1, 1, C] where [C] is named too)."""
    if [tuple(g) for g in got] != [tuple(e) for e in expected]:
        fmt = lambda shapes: ", ".join(str(list(s)) for s in shapes) or "none"  # noqa: E731
        raise Mistake(f"{what} has the shape{'s' if len(got) != 1 else ''} {fmt(got)}; the TODO names "
                      f"{fmt(expected)} (the cells that use it rely on that shape)")


def unflatten(flat, shapes: list, what: str = "the trained network", hint: str = "") -> list[np.ndarray]:
    """A flat float32 array cut into arrays of `shapes` (a network's weights from the worker, in the
    trusted network's order), or a Mistake if the sizes do not fit."""
    flat = np.asarray(flat, np.float32).ravel()
    sizes = [int(np.prod(s)) for s in shapes]
    if flat.size != sum(sizes):
        raise Mistake(f"{what} came back with {flat.size} numbers, expected {sum(sizes)}{hint}")
    return [p.reshape(s).copy() for p, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes)]


@dataclass
class Case:
    """One seeded input of a check: what the probe gets, and how to describe it."""

    label: str
    inputs: dict


def make_check(name, part, points, probe, cases, judge_one, *, visible=True, slow=False, prefix=None) -> Check:
    """A check asking `probe` about each case; full points when every case passes.

    `cases` is a list of Case, or a function giving one (built on first use, so
    that importing the checks loads no data). `judge_one(inputs, replies, key)`
    raises Mistake on a wrong answer and may return a line for the feedback.
    The first failing case's message is the verdict's message.
    """
    prefix = prefix or f"{part}/{name}"
    built: list = []

    def all_cases() -> list[Case]:
        if not built:
            built.extend(cases() if callable(cases) else cases)
        return built

    def calls():
        return [Call(f"{prefix}/{i}", probe, case.inputs) for i, case in enumerate(all_cases())]

    def judge_all(replies):
        details = []
        for i, case in enumerate(all_cases()):
            try:
                detail = judge_one(case.inputs, replies, f"{prefix}/{i}")
            except Mistake as e:
                return Verdict(0.0, f"{e} (input: {case.label})")
            except Exception as e:    # a judge must never take the grader down
                return Verdict(0.0, f"could not judge the answer ({type(e).__name__}: {e}) (input: {case.label})")
            if detail:
                details.append(str(detail))
        n = len(all_cases())
        return Verdict(float(points), f"correct on {'all ' if n > 1 else ''}{n} input{'s' if n > 1 else ''}"
                       + (": " + "; ".join(details) if details else ""))

    return Check(name=name, part=part, points=points, calls=calls, judge=judge_all,
                 visible=visible, slow=slow)


def judge(check: Check, replies: dict[str, Reply]) -> tuple[float, str, str | None]:
    """(score in [0, points], message, grader-bug note or None) for one check's replies."""
    try:
        v = check.judge(replies)
        score = float(v.score)
        if not math.isfinite(score):
            raise ValueError(f"the judge gave a score of {score}")
        return max(0.0, min(float(check.points), score)), str(v.message), None
    except Exception as e:  # noqa: BLE001
        why = f"{type(e).__name__}: {e}"
        return 0.0, f"grader error in this check ({why}); please tell your instructor", \
            f"grader error: the judge of {check.name!r} raised {why}"
