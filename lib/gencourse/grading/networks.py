"""Networks judged by what they compute: the student's network run with the trusted network's weights.

Structure alone (shapes, parameter counts, the receptive field) cannot see an
activation or a normalization that changes no weight. So the grader builds its
trusted network, the worker loads the trusted weights into the student's
network, and both run the same seeded input; the grader compares every layer's
output and names the first that differs, and how it differs.

Weights are matched by the order in which the layers holding them *run* on the
input (`tracing.trace`, in the worker), not by the order the code declares them,
so a network written in another style (another declaration order, nn.Sequential
or not, activations as modules or as functions) loads the same.

A network may take several inputs (a list: float arrays go in as float32,
integer ones as integers, e.g. the digits of a conditional model) and return
several outputs (a tuple): every output is compared, except those the grader
declares may vary from one run to the next (`may_vary`: a sampled code) when
the student's do vary. In PyTorch, a value that a function between two layers
made (an activation, a flatten) is compared where the next layer receives it.

This module is the grader's side (`trusted_network`, `judge_network`); the
probe's side is `tracing.probe_network`, in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .judging import Mistake
from ..weights import as_numpy
from .tracing import INPUT_OF, MAX_DIMS, pack, probe_network, shapes_table, trace, unpack  # noqa: F401

@dataclass
class Reference:
    """The trusted network's run on the check's input: what the student's is compared with."""

    names: list             # names of its weighted layers, in run order
    structure: np.ndarray   # shapes_table
    weights: list           # the weight arrays, in run order
    outputs: list           # [(layer name, array)]
    final: np.ndarray
    weighted: list          # each weighted layer's output, in run order
    finals: list = None     # every output of the network


def trusted_network(net, x) -> Reference:
    """Run the grader's own network on x (its weights as built, seeded by the caller)."""
    t = trace(net, x)
    return Reference([n for n, _ in t.groups], shapes_table(t.groups),
                     [as_numpy(w) for _, ws in t.groups for w in ws], t.outputs, t.final, t.weighted, t.finals)


def reference_from_arrays(groups, outputs, final) -> Reference:
    """A Reference computed without a framework (a numpy oracle of the network): `groups` [(layer name,
    [weight arrays in the framework's layout])], `outputs` [(name, array)] in run order, the final output."""
    weighted = [dict(outputs).get(name) for name, _ in groups]
    return Reference([n for n, _ in groups], shapes_table(groups), [np.asarray(w) for _, ws in groups for w in ws],
                     [(n, np.asarray(a, np.float64)) for n, a in outputs], np.asarray(final, np.float64),
                     [np.asarray(a, np.float64) for a in weighted if a is not None])


def call_inputs(ref: Reference, x) -> dict:
    """The inputs of a probe that calls probe_network(net, x, weights_flat, weights_table, structure)."""
    flat, table = pack(ref.weights)
    return {"x": np.asarray(x, np.float32), "weights_flat": flat, "weights_table": table,
            "structure": ref.structure}


def _fmt_shape(row) -> str:
    return "[" + ", ".join(str(int(d)) for d in row[2:2 + int(row[1])]) + "]"


def _structure_mistake(ref: Reference, got: np.ndarray) -> str:
    """Which layer's weights differ from the reference's, and how, in run order."""
    def by_group(table):
        groups = {}
        for row in table:
            groups.setdefault(int(row[0]), []).append(_fmt_shape(row))
        return [groups[k] for k in sorted(groups)]

    want, have = by_group(ref.structure), by_group(got)
    extra = [i for i, h in enumerate(have) if len(h) == 2 and h[0] == h[1] and h[0].count(",") == 0]
    if len(extra) > 1 and [h for i, h in enumerate(have) if i not in extra] == want:
        return (f"{len(extra)} layers with weights hold a learned scale and offset per channel "
                f"({', '.join(have[i][0] for i in extra[:3])}{', ...' if len(extra) > 3 else ''}) that the "
                "reference does not have: normalizations with affine parameters?")
    for i, (w, h) in enumerate(zip(want, have)):
        if w == h:
            continue
        name = ref.names[i]
        if len(h) == len(w) - 1 and h == w[:len(h)]:
            return (f"layer {i + 1} with weights (the reference's {name}) holds {', '.join(h)}; the reference's "
                    f"also has a bias {w[-1]}: a layer without its bias?")
        if len(h) == 2 and h[0] == h[1] and h[0].count(",") == 0 and have[i + 1:] == want[i:]:
            return (f"layer {i + 1} with weights, after the reference's {ref.names[i - 1] if i else 'input'}, holds "
                    f"a learned scale and offset of {h[0]} per channel that the reference does not have "
                    "(a normalization with affine parameters?)")
        return (f"layer {i + 1} with weights (the reference's {name}) holds {', '.join(h)}; the reference's "
                f"holds {', '.join(w)}")
    if len(have) < len(want):
        return (f"your network has {len(have)} layers with weights, the reference {len(want)}: the first one "
                f"missing is the reference's {ref.names[len(have)]} ({', '.join(want[len(have)])})")
    return f"your network has {len(have)} layers with weights, the reference {len(want)} (one more: {', '.join(have[len(want)])})"


def _close(a, b, rtol=1e-3, atol=1e-4) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol * max(1.0, float(np.abs(b).max(initial=0)))))


def _spatial(a: np.ndarray, channel_axis: int) -> tuple:
    return tuple(i for i in range(a.ndim) if i not in (0, channel_axis % a.ndim))


def _crop(a: np.ndarray, axes, before: int, after: int) -> np.ndarray:
    index = [slice(None)] * a.ndim
    for i in axes:
        index[i] = slice(before, a.shape[i] - after)
    return a[tuple(index)]


def _border(want, got, channel_axis) -> tuple[bool, str] | None:
    """The inside agrees and only a border of k pixels differs: the padding (the values at the edge)."""
    axes = _spatial(want, channel_axis)
    if len(axes) != 2 or min(want.shape[i] for i in axes) < 5:
        return None
    for k in range(1, min(4, (min(want.shape[i] for i in axes) - 1) // 2) + 1):
        if _close(_crop(got, axes, k, k), _crop(want, axes, k, k)):
            ring = np.ones(want.shape, bool)
            ring[tuple(slice(k, n - k) if i in axes else slice(None) for i, n in enumerate(want.shape))] = False
            if np.all(np.abs(got[ring]) <= 1e-6) and np.abs(want[ring]).max(initial=0) > 1e-6:
                return True, (f"the inside agrees and the outer {k} pixel(s) are zero in yours but not in the "
                              "reference's: zero padding where the reference pads with other values (reflection?)")
            return True, (f"the inside agrees and only the outer {k} pixel(s) differ: another padding at the "
                          "image border (zeros, reflection or replication) before this layer")
    return None


def _shifted(want, got, channel_axis) -> tuple[bool, str] | None:
    """The same values moved by one pixel (the padding or cropping placed on other sides)."""
    axes = _spatial(want, channel_axis)
    if len(axes) != 2 or min(want.shape[i] for i in axes) < 6:
        return None
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dy, dx) == (0, 0):
                continue
            moved = np.roll(want, (dy, dx), axis=axes)
            if _close(_crop(got, axes, 2, 2), _crop(moved, axes, 2, 2)):
                return True, (f"the reference's values moved by ({dy}, {dx}) pixels (rows, columns): padding or "
                              "cropping on other sides (Keras' padding='same' pads only the bottom and right at "
                              "stride 2)")
    return None


def _skip(want, got, earlier) -> tuple[bool, str] | None:
    """got = want - an earlier value (a skip connection missing) or want + one (a skip too many)."""
    for name, value in earlier:
        if value.shape != want.shape or np.abs(value).max(initial=0) < 1e-6:
            continue
        if _close(got, want - value):
            return True, (f"it is the reference's value minus the output of the reference's layer {name!r}: a skip "
                          "(residual) connection missing, x + f(x) computed as f(x)?")
        if _close(got, want + value):
            return True, (f"it is the reference's value plus the output of the reference's layer {name!r}: a skip "
                          "(residual) connection the reference does not have there?")
    return None


def describe_difference(want: np.ndarray, got: np.ndarray, channel_axis: int, earlier=()) -> tuple[bool, str]:
    """(named, text): what distinguishes `got` from `want` (one layer's output); `named` when a known
    pattern explains the whole difference, otherwise a description of what is seen. `earlier`: the
    reference's (name, output) before this layer, to recognise a skip connection."""
    rank, text = _describe(want, got, channel_axis, earlier)
    return rank < UNNAMED, text


STRUCTURAL, EXACT, STATISTICAL, UNNAMED = 0, 1, 2, 3     # how strongly a pattern explains a difference


def _normalized(a: np.ndarray, channel_axis: int) -> bool:
    """Each example's channels have mean 0 and standard deviation 1 over the other axes."""
    axes = tuple(i for i in range(a.ndim) if i not in (0, channel_axis % a.ndim))
    if not axes or a.size < 8 * a.shape[0] * a.shape[channel_axis]:
        return False
    return bool(np.allclose(a.mean(axis=axes), 0, atol=1e-3) and np.allclose(a.std(axis=axes), 1, atol=2e-2))


def _describe(want, got, channel_axis: int, earlier=(), normalizes_next=False) -> tuple[int, str]:
    """(rank, text): STRUCTURAL when the values are explained by the wiring (a padding, a skip, a shift), EXACT
    when by a function of them (an activation, a scale), STATISTICAL when only their per-channel statistics
    are (a normalization), else UNNAMED. `normalizes_next`: the reference's next layer normalizes, so a
    normalized value of yours says nothing of a normalization too many."""
    if want.shape != got.shape:
        return EXACT, f"its output has shape {list(got.shape)}, the reference's {list(want.shape)}"
    for pattern in (_border(want, got, channel_axis), _skip(want, got, earlier), _shifted(want, got, channel_axis)):
        if pattern:
            return STRUCTURAL, pattern[1]
    neg, pos = want < -1e-6, want > 1e-6
    if neg.any() and _close(got[pos], want[pos]) and np.all(np.abs(got[neg]) <= 1e-6):
        return EXACT, ("it is right where the reference is positive and zero where the reference is negative: "
                      "a ReLU where the reference has another activation, or none?")
    if not neg.any() and (got < -1e-6).any() and _close(np.maximum(got, 0), want):
        return EXACT, ("it keeps negative values where the reference's output is zero: a ReLU (or the "
                      "reference's activation) missing, or another activation in its place?")
    if neg.any() and _close(got[pos], want[pos]):
        ratio = got[neg] / want[neg]
        if np.allclose(ratio, ratio.mean(), rtol=1e-3) and abs(ratio.mean() - 1) > 1e-2:
            return EXACT, (f"it is right where the reference is positive; its negative values are {ratio.mean():.3g} "
                          "times the reference's: another negative slope (a missing LeakyReLU, or another one?)")
    g_norm, w_norm = _normalized(got, channel_axis), _normalized(want, channel_axis)
    if g_norm and not w_norm and not normalizes_next:
        return STATISTICAL, ("each example's channels have mean 0 and standard deviation 1 there and the "
                             "reference's do not: a normalization where the reference has none?")
    if w_norm and not g_norm:
        return STATISTICAL, "the reference normalizes each example's channels there (mean 0, std 1) and yours does not"
    for name, f in (("tanh", np.tanh), ("sigmoid", lambda v: 0.5 * (1 + np.tanh(0.5 * v)))):
        if _close(got, f(want)):
            return EXACT, f"it is the {name} of the reference's output: a {name} the reference does not have there?"
        if _close(f(got), want):
            return EXACT, f"the reference applies a {name} there and yours does not"
    ratio = float(np.sum(got * want) / max(np.sum(want * want), 1e-12))
    if abs(ratio - 1) > 1e-3 and _close(got, ratio * want):
        return EXACT, f"it is the reference's output times {ratio:.4g}"
    if got.ndim > 1 and _close(np.sort(got.reshape(len(got), -1), axis=1), np.sort(want.reshape(len(want), -1), axis=1)):
        return EXACT, ("each example holds the reference's values in another order: a flatten, reshape or "
                       "concatenation in another layout?")
    diff = np.abs(got - want)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    return UNNAMED, (f"it differs by up to {diff.max():.3g} (at index {list(map(int, worst))}: yours "
                   f"{got[worst]:.4g}, the reference's {want[worst]:.4g})")


def _padding_before(ref: Reference, i: int, channel_axis: int) -> bool:
    """Layer i has no weights and the next one does and gives a map smaller in every spatial side: a padding."""
    if i + 1 >= len(ref.outputs) or ref.outputs[i][0] in ref.names or ref.outputs[i + 1][0] not in ref.names:
        return False
    here, nxt = ref.outputs[i][1], ref.outputs[i + 1][1]
    if here.ndim != nxt.ndim or here.ndim < 3:
        return False
    return all(nxt.shape[k] < here.shape[k] for k in _spatial(here, channel_axis))


def _layer(name: str, whose: str = "the reference's") -> str:
    """A reference value's name in a message: a layer, or what reaches one (made between two layers)."""
    if name.startswith(INPUT_OF):
        return f"{INPUT_OF}{whose} layer {name[len(INPUT_OF):]!r} (what runs between two layers)"
    return f"{whose} layer {name!r}"


def _differing_output(ref: Reference, reply_arrays: dict, may_vary, what: str):
    """(index, want, got) of the first output that differs from the reference's, or None when all agree."""
    if "finals" not in reply_arrays or ref.finals is None:
        final = np.asarray(reply_arrays["final"], np.float64)
        return None if _close(final, ref.final) else (0, ref.final, final)
    finals = unpack(reply_arrays["finals"], reply_arrays["finals_table"])
    varies = np.asarray(reply_arrays.get("varies", np.zeros(len(finals))), np.float64)
    if len(finals) != len(ref.finals):
        raise Mistake(f"your {what} returns {len(finals)} output(s), the reference {len(ref.finals)}")
    for i, (want, got) in enumerate(zip(ref.finals, finals)):
        if i < len(varies) and varies[i]:
            if i in may_vary:
                continue                                # a sampled output: nothing to compare it with
            raise Mistake(f"output {i + 1} of your {what} changes from one run to the next on the same "
                          "input: it should not be random")
        if not _close(got, want):
            return i, want, got
    return None


def judge_network(ref: Reference, reply_arrays: dict, *, channel_axis: int = 1, what: str = "network",
                  may_vary=()) -> str:
    """Mistake naming the first layer whose output differs from the trusted network's; a line when all agree.

    `channel_axis`: 1 for PyTorch (NCHW), -1 for Keras (NHWC); `may_vary`: indexes of the
    outputs (of a network returning several) that may be random, left out when they vary.
    """
    structure = np.asarray(reply_arrays.get("structure", np.zeros((0, 2 + MAX_DIMS))), np.int64)
    if structure.shape != ref.structure.shape or not np.array_equal(structure, ref.structure):
        raise Mistake(f"the trusted {what}'s weights do not fit yours: {_structure_mistake(ref, structure)}")
    outputs = unpack(reply_arrays["outputs"], reply_arrays["outputs_table"]) if "outputs" in reply_arrays else []
    differing = _differing_output(ref, reply_arrays, tuple(may_vary), what)
    if differing is None:
        return f"with the reference's weights, your {what} computes what the reference does"
    # The first reference layer whose output none of the values flowing through the student's network
    # reproduces (layer inputs included: an activation written as a function shows only there).
    weighted = unpack(reply_arrays["weighted"], reply_arrays["weighted_table"]) if "weighted" in reply_arrays else []
    final = np.asarray(reply_arrays["final"], np.float64)

    def same(a, b):
        return a.size == b.size and _close(a.reshape(b.shape), b)

    def found(k):
        return next((j for j in range(used, len(outputs)) if same(outputs[j], ref.outputs[k][1])), None)

    used, first, skip_to, padded = 0, None, -1, False
    for i, (name, want) in enumerate(ref.outputs):
        if i < skip_to:
            continue
        match = found(i)
        if match is None and first is None and name not in ref.names:
            # layers without weights written as functions show only where a later value appears again
            later = next((k for k in range(i + 1, len(ref.outputs)) if found(k) is not None
                          or ref.outputs[k][0] in ref.names), None)
            if later is not None and found(later) is not None:
                skip_to, match = later + 1, found(later)
        if match is not None and first is None:
            used, padded = match + 1, False
            continue
        first = first or name
        where = f"your {what} first departs from it at {_layer(first)}"
        if name in ref.names and ref.names.index(name) < len(weighted):
            k = ref.names.index(name)
            mine = weighted[k]
            if mine.shape != want.shape:
                raise Mistake(f"with the reference's weights loaded, {where} (layer {k + 1} with weights): yours "
                              f"gives {list(mine.shape)}, the reference's {list(want.shape)} from the same input: "
                              "another stride, padding or dilation?")
        # the next few values and the output; then the value that agreed last, when it is seen again as the next
        # layer's input (a layer missing after it), which speaks only when nothing ahead explains the difference
        prev = [outputs[used - 1]] if used else []
        pool = [o for o in outputs[used:used + 6] if not prev or o.shape != prev[0].shape or not np.array_equal(o, prev[0])]
        if len(pool) == len(outputs[used:used + 6]):
            prev = []
        ahead = [o.reshape(want.shape) for o in pool + [final] if o.size == want.size]
        behind = [o.reshape(want.shape) for o in prev if o.size == want.size]
        candidates = ahead + behind
        if not candidates and _padding_before(ref, i, channel_axis):
            padded = True
            continue      # a padding done another way (inside the next convolution): judge that one
        if first != name:
            where += f" (and the values differ at {_layer(name, 'its')})"
        if not candidates:
            raise Mistake(f"with the reference's weights loaded, {where}: its output (shape {list(want.shape)}) "
                          "appears nowhere in yours; the values take another way there (an operation written "
                          "as a function, or a layer too many or too few?)")
        # the strongest explanation, the earliest on ties; what the value behind says of a function missing
        # after it (an activation) counts only when nothing ahead is explained
        normalizes_next = any(_normalized(o, channel_axis) for _, o in ref.outputs[i + 1:i + 2])
        seen = [_describe(want, c, channel_axis, ref.outputs[:i], normalizes_next) for c in ahead]
        for c in behind:
            rank, text = _describe(want, c, channel_axis, ref.outputs[:i], normalizes_next)
            seen.append((rank + 1.5 if rank == EXACT else rank, text))
        rank, how = min(seen, key=lambda f: f[0])
        if padded and rank >= STATISTICAL:
            # the padding the reference does as a layer of its own, with the same weights and shapes after it:
            # what is left to differ is where the padding goes
            how = ("the values differ right after the reference's padding, with the same weights and output "
                   "shape: the padding is placed differently (Keras' padding='same' at stride 2 pads only the "
                   "bottom and right; the reference pads every side, then convolves with padding='valid')")
        raise Mistake(f"with the reference's weights loaded, {where}: {how}")
    index, want, got = differing
    output = f"output {index + 1}" if ref.finals and len(ref.finals) > 1 else "the output"
    _, how = describe_difference(want, got, channel_axis)
    raise Mistake(f"with the reference's weights loaded, every layer agrees but {output} differs: {how}")
