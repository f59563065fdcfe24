"""The worker's side of judging a network by what it computes: trace one run, load the trusted weights.

`trace` runs a network once and records its weight groups in the order their
layers *run* (not the order the code declares them), every value that flows
through it and its outputs: PyTorch modules (forward hooks on every leaf module
and every module holding weights) and Keras layers and models, functional or
subclassed (each such layer's `call` wrapped for the run). `probe_network` loads
the trusted weights into the student's network in that order and returns what
the grader's `networks.judge_network` compares. `pack` / `unpack` carry a list of
arrays over the wire as one flat array and a table of shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..weights import as_numpy, assign
from .judging import shapes_from_table, unflatten
from .probing import shape_table

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


def _is_torch(net) -> bool:
    return hasattr(net, "named_modules") and hasattr(net, "register_forward_hook")


def _inputs(x) -> list[np.ndarray]:
    """The network's inputs as arrays: float32, or int64 for integer ones (labels)."""
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    return [np.asarray(a, np.int64) if np.asarray(a).dtype.kind in "biu" else np.asarray(a, np.float32)
            for a in xs]


def _finals(out) -> list[np.ndarray]:
    items = out if isinstance(out, (tuple, list)) else [out]
    return [as_numpy(a).astype(np.float64) for a in items if hasattr(a, "shape")]


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
                        weighted.append(as_numpy(out).astype(np.float64))
                for arg in args:                # what a function between layers made
                    if not isinstance(arg, torch.Tensor):
                        continue
                    arg = as_numpy(arg).astype(np.float64)
                    flow.append(arg)
                    last = outputs[-1][1] if outputs else None
                    if last is not None and (last.shape != arg.shape or not np.array_equal(last, arg)):
                        outputs.append((f"{INPUT_OF}{name}", arg))
                if isinstance(out, torch.Tensor):
                    outputs.append((name, as_numpy(out).astype(np.float64)))
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


def _snake(class_name: str) -> str:
    """Keras' automatic layer name for a class (Conv2D -> conv2d, ReflectionPadding2D -> reflection_padding2d)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _stable_names(layers) -> dict:
    """Each layer's name, with Keras' automatic ones (conv2d_76: a count over the whole process) numbered
    within this network instead, as a fresh session would number them: a report must not depend on how many
    networks the process built before."""
    out, count = {}, {}
    for layer in layers:
        base = _snake(type(layer).__name__)
        if re.fullmatch(rf"{re.escape(base)}(_\d+)?", layer.name):
            k = count[base] = count.get(base, -1) + 1
            out[id(layer)] = base if k == 0 else f"{base}_{k}"
        else:
            out[id(layer)] = layer.name
    return out


def _trace_keras(net, x) -> Trace:
    """Keras: every leaf layer's (and every layer with weights of its own) `call` wrapped for one run,
    functional and subclassed models alike (Layer.__call__ looks `call` up on the instance). A network
    with layers that make their weights in build() runs once unwrapped first, so that each has its weights
    when the trace asks (and Keras's symbolic build call meets no recording)."""
    x = _inputs(x)
    x = x[0] if len(x) == 1 else x
    if not all(layer.built for layer in net._flatten_layers(include_self=True, recursive=True)):
        net(x, training=False)
    layers = [layer for layer in net._flatten_layers(include_self=True, recursive=True)
              if type(layer).__name__ != "InputLayer"]
    seen, outputs, flow, weighted = {}, [], [], []
    names = _stable_names(layers)

    def own(layer):
        inner = {id(v) for sub in layer._flatten_layers(include_self=False, recursive=True) for v in sub.weights}
        return [v for v in layer.weights if id(v) not in inner]

    def wrap(layer, mine):
        call, name = layer.call, names[id(layer)]

        def recorded(*args, **kwargs):
            out = call(*args, **kwargs)
            if args and hasattr(args[0], "shape") and not isinstance(args[0], (list, tuple)):
                flow.append(np.asarray(args[0], np.float64))
            if hasattr(out, "shape") and not isinstance(out, (list, tuple)):
                value = np.asarray(out, np.float64)
                outputs.append((name, value))
                flow.append(value)
                if name not in seen:
                    seen[name] = mine
                    if mine:
                        weighted.append(value)
            elif name not in seen:
                seen[name] = mine
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


def pack(arrays) -> tuple[np.ndarray, np.ndarray]:
    """A list of arrays as (flat float32, shapes table) for the wire."""
    flat = np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays]) if arrays else np.zeros(0, np.float32)
    return flat, shape_table(list(arrays), MAX_DIMS)


def unpack(flat, table) -> list[np.ndarray]:
    """`pack`'s arrays again (`judging.unflatten` by the table's shapes)."""
    return unflatten(flat, shapes_from_table(table), "the packed arrays")


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


def _fused_heads(kernel, bias, trusted) -> tuple[np.ndarray, np.ndarray] | None:
    """(kernel, bias) of one layer of the student's made of the trusted [K1, b1, K2, b2]: two layers on the same
    input fused into one (two heads in one Dense or Linear, split after), their outputs side by side."""
    if len(trusted) < 4 or [a.ndim for a in trusted[:4]] != [2, 1, 2, 1] or bias.ndim != 1:
        return None
    k1, b1, k2, b2 = trusted[:4]
    for axis in (1, 0):         # Keras kernels are [in, out], PyTorch weights [out, in]
        if k1.shape[1 - axis] == k2.shape[1 - axis] and k1.shape[axis] == b1.size and k2.shape[axis] == b2.size:
            fused = np.concatenate([k1, k2], axis=axis)
            if fused.shape == tuple(kernel.shape) and b1.size + b2.size == bias.shape[0]:
                return fused, np.concatenate([b1, b2])
    return None


def _loads(groups, trusted) -> tuple[list, list, list] | None:
    """(the student's tensors, the trusted arrays to load into them, the reference's shapes as groups) when the
    trusted weights fit the student's layers in run order, two of them fused into one layer allowed (the same
    parameters, the same function); None when they do not fit."""
    tensors, arrays, shapes, j = [], [], [], 0
    for _, weights in groups:
        want = [tuple(w.shape) for w in weights]
        if [a.shape for a in trusted[j:j + len(want)]] == want:
            tensors += weights
            arrays += trusted[j:j + len(want)]
            shapes.append(want)
            j += len(want)
            continue
        fused = _fused_heads(*weights, trusted[j:]) if len(weights) == 2 else None
        if fused is None:
            return None
        tensors += weights
        arrays += list(fused)
        shapes += [[a.shape for a in trusted[j:j + 2]], [a.shape for a in trusted[j + 2:j + 4]]]
        j += 4
    return (tensors, arrays, shapes) if j == len(trusted) else None


def _table(shapes) -> np.ndarray:
    """The shapes_table of groups given as lists of shapes."""
    rows = [[g, len(s), *s, *[0] * (MAX_DIMS - len(s))] for g, group in enumerate(shapes) for s in group]
    return np.array(rows, np.int64).reshape(-1, 2 + MAX_DIMS)


def load_in_run_order(net, x, trusted: list, structure=None) -> tuple[np.ndarray, bool]:
    """Load the trusted arrays into `net`'s weights in the order its layers run on x.

    Returns (its weight structure as a shapes_table, whether the arrays fitted and were loaded);
    `structure`: the trusted one, to align a layer's weights declared in another order.
    """
    first = trace(net, x)
    groups = first.groups if structure is None else _aligned(first.groups, structure)
    loads = _loads(groups, list(trusted))
    if loads is None:
        return shapes_table(groups), False
    mine, arrays, shapes = loads
    assign(mine, arrays)
    return _table(shapes), True


def probe_network(net, x, weights_flat, weights_table, structure=None) -> dict:
    """In the worker: the student's `net` on x before and after loading the trusted weights in run order.

    Returns its weight structure, and when it matches the trusted one, every layer's output and
    the outputs with the trusted weights loaded (packed: a reply holds at most 64 arrays), and
    `varies`: 1 for each output that a second run on the same input changed.
    """
    table, loaded = load_in_run_order(net, x, unpack(weights_flat, weights_table), structure)
    out = {"structure": table}
    if not loaded:
        return out
    loaded, again = trace(net, x), trace(net, x)
    flat, table = pack(loaded.flow + loaded.finals)
    wflat, wtable = pack(loaded.weighted)
    fflat, ftable = pack(loaded.finals)
    varies = [float(a.shape != b.shape or not np.array_equal(a, b)) for a, b in zip(loaded.finals, again.finals)]
    out.update(outputs=flat, outputs_table=table, weighted=wflat, weighted_table=wtable, final=loaded.final,
               finals=fflat, finals_table=ftable, varies=np.array(varies, np.float64))
    return out
