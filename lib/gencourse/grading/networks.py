"""Networks judged by what they compute: the student's network run with the trusted network's weights.

Structure alone (shapes, parameter counts, the receptive field) cannot see an
activation or a normalization that changes no weight. So the grader builds its
trusted network, the worker loads the trusted weights into the student's
network, and both run the same seeded input; the grader compares every layer's
output and names the first that differs, and how it differs.

Weights are matched by the order in which the layers holding them *run* on the
input (`trace`), not by the order the code declares them, so a network written
in another style (another declaration order, nn.Sequential or not, activations
as modules or as functions) loads the same. `trace` works on PyTorch modules
(forward hooks on every leaf module and every module holding weights) and on
Keras layers and models, functional or subclassed (each such layer's `call`
wrapped for the run).

A network may take several inputs (a list: float arrays go in as float32,
integer ones as integers, e.g. the digits of a conditional model) and return
several outputs (a tuple): every output is compared, except those the grader
declares may vary from one run to the next (`may_vary`: a sampled code) when
the student's do vary. In PyTorch, a value that a function between two layers
made (an activation, a flatten) is compared where the next layer receives it.

Both sides use this module: the probe (`probe_network`, in the worker) and the
judge (`trusted_network`, `judge_network`, in the grader's process).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .judging import Mistake

MAX_DIMS = 6
INPUT_OF = "the input of "


@dataclass
class Trace:
    """One run of a network: its weight groups in run order, and the outputs of its layers in run order."""

    groups: list            # [(layer name, [weight tensors])]
    outputs: list           # [(layer name, np.ndarray)]
    final: np.ndarray
    flow: list = None       # every value seen in run order: each layer's input, then its output
    weighted: list = None   # the first output of each weight group's layer, in `groups` order
    finals: list = None     # every output of the network (one unless it returns a tuple)


def _numpy(t) -> np.ndarray:
    if hasattr(t, "detach"):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def _is_torch(net) -> bool:
    return hasattr(net, "named_modules") and hasattr(net, "register_forward_hook")


def _inputs(x) -> list[np.ndarray]:
    """The network's inputs as arrays: float32, or int64 for integer ones (labels)."""
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    return [np.asarray(a, np.int64) if np.asarray(a).dtype.kind in "biu" else np.asarray(a, np.float32)
            for a in xs]


def _finals(out) -> list[np.ndarray]:
    items = out if isinstance(out, (tuple, list)) else [out]
    return [_numpy(a).astype(np.float64) for a in items if hasattr(a, "shape")]


def _trace_torch(net, x) -> Trace:
    import torch

    seen, outputs, flow, weighted, hooks = {}, [], [], [], []
    for name, module in net.named_modules():
        own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        if module is net and not own:
            continue
        if own or not list(module.children()):
            def hook(mod, args, out, name=name or type(net).__name__, own=own):
                if name not in seen:
                    seen[name] = own
                    if own and isinstance(out, torch.Tensor):
                        weighted.append(_numpy(out).astype(np.float64))
                for arg in args:                # what a function between layers made
                    if not isinstance(arg, torch.Tensor):
                        continue
                    arg = _numpy(arg).astype(np.float64)
                    flow.append(arg)
                    last = outputs[-1][1] if outputs else None
                    if last is not None and (last.shape != arg.shape or not np.array_equal(last, arg)):
                        outputs.append((f"{INPUT_OF}{name}", arg))
                if isinstance(out, torch.Tensor):
                    outputs.append((name, _numpy(out).astype(np.float64)))
                    flow.append(outputs[-1][1])
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = net(*[torch.as_tensor(a) for a in _inputs(x)])
    finally:
        for h in hooks:
            h.remove()
    finals = _finals(out)
    return Trace([(n, w) for n, w in seen.items() if w], outputs, finals[0], flow, weighted, finals)


def _trace_keras(net, x) -> Trace:
    """Keras: every leaf layer's (and every layer with weights of its own) `call` wrapped for one run,
    functional and subclassed models alike (Layer.__call__ looks `call` up on the instance)."""
    x = _inputs(x)
    x = x[0] if len(x) == 1 else x
    layers = [layer for layer in net._flatten_layers(include_self=True, recursive=True)
              if type(layer).__name__ != "InputLayer"]
    seen, outputs, flow, weighted = {}, [], [], []

    def own(layer):
        inner = {id(v) for sub in layer._flatten_layers(include_self=False, recursive=True) for v in sub.weights}
        return [v for v in layer.weights if id(v) not in inner]

    def wrap(layer, mine):
        call = layer.call

        def recorded(*args, **kwargs):
            out = call(*args, **kwargs)
            if args and hasattr(args[0], "shape") and not isinstance(args[0], (list, tuple)):
                flow.append(np.asarray(args[0], np.float64))
            if hasattr(out, "shape") and not isinstance(out, (list, tuple)):
                value = np.asarray(out, np.float64)
                outputs.append((layer.name, value))
                flow.append(value)
                if layer.name not in seen:
                    seen[layer.name] = mine
                    if mine:
                        weighted.append(value)
            elif layer.name not in seen:
                seen[layer.name] = mine
            return out
        layer.call = recorded

    wrapped = []
    for layer in layers:
        mine = own(layer)
        leaf = not layer._flatten_layers(include_self=False, recursive=False)
        if (leaf or mine) and (layer is not net or mine):
            wrap(layer, mine)
            wrapped.append(layer)
    try:
        finals = _finals(net(x, training=False))
    finally:
        for layer in wrapped:
            del layer.call
    return Trace([(n, w) for n, w in seen.items() if w], outputs, finals[0], flow, weighted, finals)


def trace(net, x) -> Trace:
    """Run `net` once on x (an array, or a list of them; in its framework's layout), in inference mode."""
    if _is_torch(net):
        net.eval()
        return _trace_torch(net, x)
    return _trace_keras(net, x)


def shapes_table(groups) -> np.ndarray:
    """[n weights, 2 + MAX_DIMS] ints: group index, ndim, dims (zero-padded): a structure that travels."""
    rows = []
    for g, (_, weights) in enumerate(groups):
        for w in weights:
            dims = [int(d) for d in w.shape]
            rows.append([g, len(dims), *dims, *[0] * (MAX_DIMS - len(dims))])
    return np.array(rows, np.int64).reshape(-1, 2 + MAX_DIMS)


def _assign(weights, arrays) -> None:
    from ..weights import assign

    assign(weights, arrays)


def pack(arrays) -> tuple[np.ndarray, np.ndarray]:
    """A list of arrays as (flat float32, shapes table) for the wire."""
    flat = np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays]) if arrays else np.zeros(0, np.float32)
    table = np.array([[a.ndim, *a.shape, *[0] * (MAX_DIMS - a.ndim)] for a in map(np.asarray, arrays)],
                     np.int64).reshape(-1, 1 + MAX_DIMS)
    return flat, table


def unpack(flat, table) -> list[np.ndarray]:
    flat, out, pos = np.asarray(flat).ravel(), [], 0
    for row in np.asarray(table, np.int64):
        shape = tuple(int(d) for d in row[1:1 + int(row[0])])
        n = int(np.prod(shape))
        out.append(flat[pos:pos + n].reshape(shape))
        pos += n
    return out


# --------------------------------------------------------------------------- the worker's side

def _aligned(groups, structure) -> list:
    """The student's weight groups, each group's tensors reordered to the reference's order of shapes where
    that order differs but the shapes are the same and unique (a bias declared before its weight)."""
    want: dict = {}
    for row in np.asarray(structure, np.int64):
        want.setdefault(int(row[0]), []).append(tuple(int(d) for d in row[2:2 + int(row[1])]))
    out = []
    for g, (name, weights) in enumerate(groups):
        shapes = [tuple(w.shape) for w in weights]
        target = want.get(g)
        if target and shapes != target and sorted(shapes) == sorted(target) and len(set(shapes)) == len(shapes):
            weights = [weights[shapes.index(s)] for s in target]
        out.append((name, weights))
    return out


def probe_network(net, x, weights_flat, weights_table, structure=None) -> dict:
    """In the worker: the student's `net` on x before and after loading the trusted weights in run order.

    Returns its weight structure, and when it matches the trusted one, every layer's output and
    the outputs with the trusted weights loaded (packed: a reply holds at most 64 arrays), and
    `varies`: 1 for each output that a second run on the same input changed.
    """
    first = trace(net, x)
    groups = first.groups if structure is None else _aligned(first.groups, structure)
    out = {"structure": shapes_table(groups)}
    trusted = unpack(weights_flat, weights_table)
    mine = [w for _, ws in groups for w in ws]
    if [tuple(w.shape) for w in mine] != [a.shape for a in trusted]:
        return out
    _assign(mine, trusted)
    loaded, again = trace(net, x), trace(net, x)
    flat, table = pack(loaded.flow + loaded.finals)
    wflat, wtable = pack(loaded.weighted)
    fflat, ftable = pack(loaded.finals)
    varies = [float(a.shape != b.shape or not np.array_equal(a, b)) for a, b in zip(loaded.finals, again.finals)]
    out.update(outputs=flat, outputs_table=table, weighted=wflat, weighted_table=wtable, final=loaded.final,
               finals=fflat, finals_table=ftable, varies=np.array(varies, np.float64))
    return out


# --------------------------------------------------------------------------- the grader's side

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
                     [_numpy(w) for _, ws in t.groups for w in ws], t.outputs, t.final, t.weighted, t.finals)


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


def describe_difference(want: np.ndarray, got: np.ndarray, channel_axis: int) -> tuple[bool, str]:
    """(named, text): what distinguishes `got` from `want` (one layer's output); `named` when a known
    pattern explains the whole difference, otherwise a description of what is seen."""
    if want.shape != got.shape:
        return True, f"its output has shape {list(got.shape)}, the reference's {list(want.shape)}"
    neg, pos = want < -1e-6, want > 1e-6
    if neg.any() and _close(got[pos], want[pos]) and np.all(np.abs(got[neg]) <= 1e-6):
        return True, ("it is right where the reference is positive and zero where the reference is negative: "
                      "a ReLU where the reference has another activation, or none?")
    if not neg.any() and (got < -1e-6).any() and _close(np.maximum(got, 0), want):
        return True, ("it keeps negative values where the reference's output is zero: a ReLU (or the "
                      "reference's activation) missing, or another activation in its place?")
    if neg.any() and _close(got[pos], want[pos]):
        ratio = got[neg] / want[neg]
        if np.allclose(ratio, ratio.mean(), rtol=1e-3) and abs(ratio.mean() - 1) > 1e-2:
            return True, (f"it is right where the reference is positive; its negative values are {ratio.mean():.3g} "
                          "times the reference's: another negative slope (a missing LeakyReLU, or another one?)")
    axes = tuple(i for i in range(got.ndim) if i not in (0, channel_axis % got.ndim))
    if axes and got.size >= 8 * got.shape[0] * got.shape[channel_axis]:
        g_mean, g_std = got.mean(axis=axes), got.std(axis=axes)
        w_mean, w_std = want.mean(axis=axes), want.std(axis=axes)
        g_norm = np.allclose(g_mean, 0, atol=1e-3) and np.allclose(g_std, 1, atol=2e-2)
        w_norm = np.allclose(w_mean, 0, atol=1e-3) and np.allclose(w_std, 1, atol=2e-2)
        if g_norm and not w_norm:
            return True, ("each example's channels have mean 0 and standard deviation 1 there and the "
                          "reference's do not: a normalization where the reference has none?")
        if w_norm and not g_norm:
            return True, "the reference normalizes each example's channels there (mean 0, std 1) and yours does not"
    for name, f in (("tanh", np.tanh), ("sigmoid", lambda v: 0.5 * (1 + np.tanh(0.5 * v)))):
        if _close(got, f(want)):
            return True, f"it is the {name} of the reference's output: a {name} the reference does not have there?"
        if _close(f(got), want):
            return True, f"the reference applies a {name} there and yours does not"
    ratio = float(np.sum(got * want) / max(np.sum(want * want), 1e-12))
    if abs(ratio - 1) > 1e-3 and _close(got, ratio * want):
        return True, f"it is the reference's output times {ratio:.4g}"
    if got.ndim > 1 and _close(np.sort(got.reshape(len(got), -1), axis=1), np.sort(want.reshape(len(want), -1), axis=1)):
        return True, ("each example holds the reference's values in another order: a flatten, reshape or "
                      "concatenation in another layout?")
    diff = np.abs(got - want)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    return False, (f"it differs by up to {diff.max():.3g} (at index {list(map(int, worst))}: yours "
                   f"{got[worst]:.4g}, the reference's {want[worst]:.4g})")


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

    def same(a, b):
        return a.size == b.size and _close(a.reshape(b.shape), b)

    used = 0
    for name, want in ref.outputs:
        match = next((j for j in range(used, len(outputs)) if same(outputs[j], want)), None)
        if match is not None:
            used = match + 1
            continue
        where = (f"your {what} first departs from it at the reference's layer {name!r}" if not name.startswith(INPUT_OF)
                 else f"your {what} first departs from it at {INPUT_OF}the reference's layer {name[len(INPUT_OF):]!r} "
                      "(what runs between two layers)")
        if name in ref.names and ref.names.index(name) < len(weighted):
            k = ref.names.index(name)
            mine = weighted[k]
            if mine.shape != want.shape:
                raise Mistake(f"with the reference's weights loaded, {where} (layer {k + 1} with weights): yours "
                              f"gives {list(mine.shape)}, the reference's {list(want.shape)} from the same input: "
                              "another stride, padding or dilation?")
        candidates = [o.reshape(want.shape) for o in outputs[used:used + 6] if o.size == want.size]
        if not candidates:
            raise Mistake(f"with the reference's weights loaded, {where}: its output (shape {list(want.shape)}) "
                          "appears nowhere in yours; the values take another way there (an operation written "
                          "as a function, or a layer too many or too few?)")
        found = [describe_difference(want, c, channel_axis) for c in candidates]
        how = next((text for named, text in found if named), found[0][1])
        raise Mistake(f"with the reference's weights loaded, {where}: {how}")
    index, want, got = differing
    output = f"output {index + 1}" if ref.finals and len(ref.finals) > 1 else "the output"
    _, how = describe_difference(want, got, channel_axis)
    raise Mistake(f"with the reference's weights loaded, every layer agrees but {output} differs: {how}")
