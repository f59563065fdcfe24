"""Judges of the CycleGAN assignment's networks: the ResNet generator and the PatchGAN (grader side).

Structure first (output shapes, map sizes, the receptive field from the gradient of one unit, parameter
counts with the known miscounts named), then what structure cannot see: the trusted network's weights
loaded into the student's in the order its layers run, both run on one seeded input, and
grading.networks.judge_network names the first layer whose output departs.
"""

from __future__ import annotations

import numpy as np

from ...grading import Case, Mistake, get, ok_reply
from ..common import patch_map_size, patchgan_layers, receptive_field
from .loss_checks import match


# --------------------------------------------------------------------- the PatchGAN

def patchgan_param_count(in_channels: int, ndf: int, n_layers: int) -> int:
    """Parameters of the reference layout (4x4 convolutions with biases, norms without parameters)."""
    widths = [in_channels, ndf] + [ndf * min(2 ** i, 8) for i in range(1, n_layers + 1)] + [1]
    return sum(16 * c_in * c_out + c_out for c_in, c_out in zip(widths, widths[1:]))


def maps_case(seed: int, sizes, n_layers: int = 3, in_channels: int = 3, ndf: int = 8) -> Case:
    label = (f"inputs of {', '.join(f'{s}x{s}' for s in sizes)} with {in_channels} channel(s), "
             f"n_layers={n_layers}, ndf={ndf}")
    return Case(label, {"sizes": np.array(sizes, np.int64), "in_channels": np.array(in_channels),
                        "ndf": np.array(ndf), "n_layers": np.array(n_layers), "seed": np.array(seed)})


def _map_sides(replies, key, sizes, track):
    """[(H, W)] of each output, from shapes sent back in NHWC order."""
    sides = []
    for i, n in enumerate(sizes):
        shape = tuple(int(s) for s in get(replies, key, f"shape{i}"))
        if len(shape) != 4 or shape[0] != 2 or shape[3] != 1:
            layout = "[N, 1, H, W]" if track == "torch" else "[N, H, W, 1]"
            if int(np.prod(shape)) == 2:
                raise Mistake(f"one number per image (output shape {list(shape)} for a batch of 2 at {n}x{n}): "
                              "global pooling or a dense layer at the end; a PatchGAN keeps a map of "
                              f"scores, one per patch, {layout}")
            raise Mistake(f"for 2 images of {n}x{n} the output has shape {list(shape)}; expected a map of "
                          f"scores {layout} with one channel")
        sides.append(shape[1:3])
    return sides


def judge_maps(track):
    def judge_one(inputs, replies, key):
        sizes, n_layers = [int(s) for s in inputs["sizes"]], int(inputs["n_layers"])
        layers = patchgan_layers(n_layers)
        sides = _map_sides(replies, key, sizes, track)
        expected = [(patch_map_size(n, layers),) * 2 for n in sizes]
        if sides == expected:
            return None
        if all(s == (1, 1) for s in sides):
            raise Mistake("the output map is 1x1 for every input size: global pooling (or a kernel as large "
                          "as the image) at the end; a PatchGAN keeps one score per patch")
        if n_layers != 3 and sides == [(patch_map_size(n),) * 2 for n in sizes]:
            raise Mistake(f"n_layers={n_layers} was asked for but the map sizes are those of n_layers=3: "
                          "use the n_layers argument (the digits task trains with 2)")
        got = ", ".join(f"{n} -> {h}x{w}" for n, (h, w) in zip(sizes, sides))
        want = ", ".join(f"{n} -> {h}x{w}" for n, (h, w) in zip(sizes, expected))
        raise Mistake(f"map sizes {got}; expected {want} (4x4 kernels, padding 1, strides 2 for the first "
                      f"{n_layers} convolutions, then 1, 1)")
    return judge_one


def logits_case(seed: int, size: int = 64, ndf: int = 16, n_layers: int = 3) -> Case:
    return Case(f"two {size}x{size} images, ndf={ndf}, n_layers={n_layers}",
                {"size": np.array(size), "in_channels": np.array(3), "ndf": np.array(ndf),
                 "n_layers": np.array(n_layers), "seed": np.array(seed)})


def judge_logits(inputs, replies, key):
    values, scaled = get(replies, key, "values"), get(replies, key, "scaled")
    if scaled.size and scaled.min() >= 0 and scaled.max() <= 1:
        raise Mistake(f"the scores stay within [0, 1] even with the last layer's weights 1000 times larger "
                      f"(scores {values.min():.3g} to {values.max():.3g}): a sigmoid at the end? The LSGAN loss "
                      "compares raw scores with 1 and 0, and the BCE loss applies its own sigmoid (from logits): "
                      "end with the last convolution")
    return None


def field_case(seed: int, size: int, unit: int, n_layers: int = 3, in_channels: int = 3, ndf: int = 8) -> Case:
    return Case(f"a {size}x{size} input, output unit ({unit}, {unit}), n_layers={n_layers}",
                {"size": np.array(size), "unit": np.array(unit), "in_channels": np.array(in_channels),
                 "ndf": np.array(ndf), "n_layers": np.array(n_layers), "seed": np.array(seed)})


def judge_field(inputs, replies, key):
    size, unit, n_layers = int(inputs["size"]), int(inputs["unit"]), int(inputs["n_layers"])
    field, jump, start = receptive_field(patchgan_layers(n_layers))
    first = start + unit * jump
    expected = np.zeros(size, bool)
    expected[max(first, 0):first + field] = True
    shape = ok_reply(replies, key).arrays.get("no_unit")
    if shape is not None:
        raise Mistake(f"the output has shape {[int(d) for d in np.ravel(shape)]}: it has no unit ({unit}, {unit}) for "
                      f"a {size}x{size} input; a PatchGAN gives a map of scores [N, H, W, 1], one per patch")
    for axis in ("rows", "cols"):
        got = get(replies, key, axis, (size,)) > 0
        if np.array_equal(got, expected):
            continue
        seen = np.flatnonzero(got)
        if got.all():
            raise Mistake(f"one output unit depends on every pixel of the {size}x{size} input, with the "
                          "normalization layers switched off: global pooling, a dense layer, or statistics over "
                          "H and W computed by hand? Each PatchGAN score sees only its "
                          f"{field}x{field} patch (normalize with an instance-norm layer)")
        if not seen.size:
            raise Mistake("no gradient reaches the input from one output unit: is the output computed with "
                          "the framework's layers?")
        raise Mistake(f"one output unit sees {axis} {seen[0]} to {seen[-1]} ({len(seen)} pixels wide); the "
                      f"{field}x{field} PatchGAN's unit ({unit}, {unit}) sees {first} to {first + field - 1} "
                      f"(4x4 kernels; strides 2 in the first {n_layers} convolutions, then 1, 1)")
    return f"unit ({unit}, {unit}) sees a {field}x{field} patch"


def params_case(in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> Case:
    return Case(f"in_channels={in_channels}, ndf={ndf}, n_layers={n_layers}",
                {"in_channels": np.array(in_channels), "ndf": np.array(ndf), "n_layers": np.array(n_layers)})


def judge_params(inputs, replies, key):
    c, ndf, n_layers = (int(inputs[k]) for k in ("in_channels", "ndf", "n_layers"))
    expected = patchgan_param_count(c, ndf, n_layers)
    got = int(get(replies, key, "count").reshape(()))
    if got == expected:
        return f"{got:,} parameters"
    normed = sum(ndf * min(2 ** i, 8) for i in range(1, n_layers + 1))
    biases = ndf + normed + 1
    match(got, [
        (expected + 2 * normed, f"{got:,} parameters, {2 * normed:,} more than the {expected:,} of the reference "
                                "layout: affine normalization (a scale and an offset per channel); use "
                                "instance norm without parameters (affine=False)"),
        (expected + 2 * (normed + ndf), f"{got:,} parameters: a normalization with parameters after every "
                                        "convolution, the first included; the reference has none after the "
                                        "first and no affine parameters"),
        (expected - biases, f"{got:,} parameters, {biases:,} fewer than the reference's {expected:,}: "
                            "the convolutions have no biases (use_bias / bias must stay on)"),
        (patchgan_param_count(3, ndf, n_layers) if c != 3 else -1,
         f"{got:,} parameters for in_channels={c}: the first convolution ignores in_channels"),
    ])
    raise Mistake(f"{got:,} parameters; the reference layout has {expected:,} (C{ndf}-...-C{ndf * 8}, 4x4 kernels "
                  "with biases, instance norm without parameters, a last conv to 1 channel)")


# --------------------------------------------------------------------- the ResNet generator

def resnet_param_count(in_channels: int, out_channels: int, ngf: int, n_blocks: int) -> int:
    """Parameters of the reference ResNet generator (convolutions with biases, norms without parameters)."""
    conv = lambda k, c_in, c_out: k * k * c_in * c_out + c_out  # noqa: E731
    return (conv(7, in_channels, ngf) + conv(3, ngf, 2 * ngf) + conv(3, 2 * ngf, 4 * ngf)
            + n_blocks * 2 * conv(3, 4 * ngf, 4 * ngf)
            + conv(3, 4 * ngf, 2 * ngf) + conv(3, 2 * ngf, ngf) + conv(7, ngf, out_channels))


def generator_shapes_case(seed: int, shapes, in_channels: int = 1, out_channels: int = 1, ngf: int = 4,
                          n_blocks: int = 1) -> Case:
    """Batches of the given (N, H, W), NHWC in the grader's order."""
    return Case(f"inputs of {', '.join(f'{n}x{h}x{w}' for n, h, w in shapes)} with {in_channels} channel(s) -> "
                f"{out_channels}, ngf={ngf}, n_blocks={n_blocks}",
                {"shapes": np.array(shapes, np.int64), "in_channels": np.array(in_channels),
                 "out_channels": np.array(out_channels), "ngf": np.array(ngf), "n_blocks": np.array(n_blocks),
                 "seed": np.array(seed)})


def judge_generator_shapes(track):
    layout = "[N, C, H, W]" if track == "torch" else "[N, H, W, C]"

    def judge_one(inputs, replies, key):
        out_c = int(inputs["out_channels"])
        for i, (n, h, w) in enumerate(np.asarray(inputs["shapes"])):
            shape = tuple(int(s) for s in get(replies, key, f"shape{i}"))
            want = (int(n), int(h), int(w), out_c)
            if shape != want:
                raise Mistake(f"an input of {n}x{h}x{w} gave an output of shape {list(shape)} (read as NHWC; your "
                              f"layout is {layout}); expected {list(want)}: the image's size with out_channels "
                              "channels (two stride-2 downs, two transposed ups that double the side)")
            low, high = (float(v) for v in get(replies, key, f"range{i}", (2,)))
            if low < -1 or high > 1:
                raise Mistake(f"the outputs range from {low:.3g} to {high:.3g}, outside the images' [-1, 1]: the "
                              "last c7s1 layer ends with a tanh")
        if float(get(replies, key, "float32").reshape(())) != 1:
            raise Mistake("the output is not float32 for float32 images")
        return None
    return judge_one


def generator_params_case(in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 6) -> Case:
    return Case(f"in_channels={in_channels}, out_channels={out_channels}, ngf={ngf}, n_blocks={n_blocks}",
                {"in_channels": np.array(in_channels), "out_channels": np.array(out_channels), "ngf": np.array(ngf),
                 "n_blocks": np.array(n_blocks)})


def judge_generator_params(inputs, replies, key):
    c_in, c_out, ngf, n_blocks = (int(inputs[k]) for k in ("in_channels", "out_channels", "ngf", "n_blocks"))
    expected = resnet_param_count(c_in, c_out, ngf, n_blocks)
    got = int(get(replies, key, "count").reshape(()))
    if got == expected:
        return f"{got:,} parameters"
    normed = ngf + 2 * ngf + 4 * ngf + n_blocks * 2 * 4 * ngf + 2 * ngf + ngf
    biases = normed + c_out
    block = 2 * (9 * (4 * ngf) ** 2 + 4 * ngf)
    others = [(resnet_param_count(c_in, c_out, ngf, k), k) for k in (6, 9) if k != n_blocks]
    match(got, [
        (expected + 2 * normed, f"{got:,} parameters, {2 * normed:,} more than the {expected:,} of the reference: "
                                "instance norms with affine parameters (a scale and an offset per channel)"),
        (expected - biases, f"{got:,} parameters, {biases:,} fewer than the reference's {expected:,}: the "
                            "convolutions have no biases"),
        (expected - n_blocks * block // 2, f"{got:,} parameters: each residual block has one 3x3 convolution; Rk "
                                           "has two"),
        *[(count, f"{got:,} parameters: the count of {k} residual blocks, {n_blocks} were asked (n_blocks)")
          for count, k in others],
    ])
    raise Mistake(f"{got:,} parameters; the reference has {expected:,} (c7s1-{ngf}, d{2 * ngf}, d{4 * ngf}, "
                  f"{n_blocks} x R{4 * ngf}, u{2 * ngf}, u{ngf}, c7s1-{c_out}; biases kept, norms without parameters)")


# --------------------------------------------------------------------- both networks, layer by layer

def network_case(kind: str, seed: int, shape, **config) -> Case:
    """A seeded input [N, H, W, C] and a network configuration; the trusted network is built in the judge."""
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    words = ", ".join(f"{k}={v}" for k, v in config.items())
    return Case(f"{kind}({words}) on a seeded input of shape {list(shape)} (NHWC), with the reference's weights",
                {"x_nhwc": x, "seed": np.array(seed), **{k: np.array(v) for k, v in config.items()}})


def _config(inputs) -> dict:
    return {k: int(inputs[k]) for k in ("in_channels", "out_channels", "ngf", "n_blocks", "ndf", "n_layers")
            if k in inputs}


def weight_shapes(track: str, kind: str, cfg: dict) -> list[list[tuple]]:
    """The package network's weight shapes, layer by layer in the order the layers run (no framework needed,
    so that a check's inputs are built before the worker starts without loading one): PyTorch keeps
    (out, in, k, k) and, transposed, (in, out, k, k); Keras (k, k, in, out) and, transposed, (k, k, out, in)."""
    def conv(k, c_in, c_out, transposed=False):
        if track == "torch":
            return [(c_in, c_out, k, k) if transposed else (c_out, c_in, k, k), (c_out,)]
        return [(k, k, c_out, c_in) if transposed else (k, k, c_in, c_out), (c_out,)]
    if kind == "generator":
        c_in, c_out, ngf = cfg["in_channels"], cfg["out_channels"], cfg["ngf"]
        layers = [conv(7, c_in, ngf), conv(3, ngf, 2 * ngf), conv(3, 2 * ngf, 4 * ngf)]
        layers += [conv(3, 4 * ngf, 4 * ngf) for _ in range(2 * cfg["n_blocks"])]
        return layers + [conv(3, 4 * ngf, 2 * ngf, True), conv(3, 2 * ngf, ngf, True), conv(7, ngf, c_out)]
    widths = [cfg["in_channels"], cfg["ndf"]] + [cfg["ndf"] * min(2 ** i, 8) for i in range(1, cfg["n_layers"] + 1)]
    return [conv(4, a, b) for a, b in zip(widths, widths[1:] + [1])]


def trusted_arrays(track: str, kind: str, inputs) -> list[np.ndarray]:
    """Seeded weights of unit scale, biases too (so that a tanh, a bias or an activation shows), in run order."""
    rng, out = np.random.default_rng(int(inputs["seed"]) + 1000), []
    for layer in weight_shapes(track, kind, _config(inputs)):
        kernel, bias = layer
        fan_in = int(np.prod(kernel)) // (kernel[0] if track == "torch" else kernel[-1])
        out += [rng.normal(0, 1 / np.sqrt(fan_in), kernel).astype(np.float32),
                rng.normal(0, 0.5, bias).astype(np.float32)]
    return out


def _layout(track: str, inputs) -> np.ndarray:
    return inputs["x_nhwc"] if track == "tf" else inputs["x_nhwc"].transpose(0, 3, 1, 2).copy()


def trusted(track: str, kind: str, inputs):
    """The package's network of `kind` (grader side) with trusted_arrays loaded, and the input in its layout."""
    from ...weights import assign

    cfg = _config(inputs)
    if track == "torch":
        from .. import torch_models as tm

        net = tm.ResnetGenerator(**cfg) if kind == "generator" else tm.PatchDiscriminator(**cfg)
        tensors = list(net.parameters())
    else:
        from .. import tf_models as km

        net = (km.build_resnet_generator(None, **cfg) if kind == "generator"
               else km.build_patch_discriminator(None, **cfg))
        tensors = net.weights
    assign(tensors, trusted_arrays(track, kind, inputs))
    return net, _layout(track, inputs)


def network_inputs(track: str, kind: str, case: Case) -> Case:
    """The case with what the probe loads: the input in the track's layout, the trusted weights and their
    structure (grading.networks.call_inputs), from numpy alone."""
    from ...grading.networks import pack, shapes_table

    arrays = trusted_arrays(track, kind, case.inputs)
    flat, table = pack(arrays)
    groups = [(str(i), arrays[2 * i:2 * i + 2]) for i in range(len(arrays) // 2)]
    return Case(case.label, {**case.inputs, "x": _layout(track, case.inputs).astype(np.float32),
                             "weights_flat": flat, "weights_table": table, "structure": shapes_table(groups)})


def judge_network_of(track: str, kind: str):
    from ...grading.networks import judge_network, trusted_network

    def judge_one(inputs, replies, key):
        reply = ok_reply(replies, key)
        net, x = trusted(track, kind, inputs)
        return judge_network(trusted_network(net, x), reply.arrays, channel_axis=1 if track == "torch" else -1,
                             what="generator" if kind == "generator" else "PatchGAN")
    return judge_one
