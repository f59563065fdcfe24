"""Judges of the student's encoder and decoder (grader side): shapes, parameter counts, and what they compute.

The grader makes the weights of its own network of the report (`trusted_weights`,
with non-zero biases so that a misplaced bias shows), sends them, and the
worker loads them into the student's network in the order its layers run
(`grading.networks`); both run one seeded input, and the first layer whose
output departs is named. The encoder's sampling layer is the grader's fixed-noise
one on both sides, so that z is compared too, whatever the student's Sampling does.
"""

from __future__ import annotations

import numpy as np

from ...grading import Case, Mistake, get, ok_reply
from ...grading.networks import judge_network, pack, trusted_network, unpack
from ...weights import assign
from ..common import DECODER_PARAMS, ENCODER_PARAMS

OUTPUTS = ("z_mean", "z_log_var", "z")


def encoder_params(latent_dim: int, n_classes: int = 0) -> int:
    """Conv 1->32 and 32->64 (3x3), Dense(3136 + n_classes -> 16), two heads Dense(16 -> latent)."""
    return ENCODER_PARAMS + 16 * n_classes + 2 * 17 * (latent_dim - 2)


def decoder_params(latent_dim: int, n_classes: int = 0) -> int:
    """Dense(latent + n_classes -> 3136), ConvT 64->64 and 64->32 (3x3, stride 2), ConvT 32->1."""
    return DECODER_PARAMS + 7 * 7 * 64 * (latent_dim - 2 + n_classes)


def weight_shapes(track: str, which: str, latent_dim: int, n_classes: int = 0) -> list[tuple]:
    """The shapes of the report's network's weights in the order its layers run, in the track's layout."""
    tf = track == "tf"
    layers = ([("conv", 1, 32), ("conv", 32, 64), ("dense", 7 * 7 * 64 + n_classes, 16), ("dense", 16, latent_dim),
               ("dense", 16, latent_dim)] if which == "encoder" else
              [("dense", latent_dim + n_classes, 7 * 7 * 64), ("transposed", 64, 64), ("transposed", 64, 32),
               ("transposed", 32, 1)])
    shapes = []
    for kind, c_in, c_out in layers:
        if kind == "dense":
            shapes.append((c_in, c_out) if tf else (c_out, c_in))
        elif kind == "conv":
            shapes.append((3, 3, c_in, c_out) if tf else (c_out, c_in, 3, 3))
        else:
            shapes.append((3, 3, c_out, c_in) if tf else (c_in, c_out, 3, 3))
        shapes.append((c_out,))
    return shapes


def trusted_weights(track: str, which: str, latent_dim: int, n_classes: int, seed: int) -> list[np.ndarray]:
    """Glorot-uniform kernels (as both tracks initialize) and random biases, so that a misplaced bias shows:
    made in numpy, so that the grader needs no framework until the worker is done (one framework in
    memory at a time, not two)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape in weight_shapes(track, which, latent_dim, n_classes):
        if len(shape) == 1:
            out.append(rng.normal(0, 0.1, shape).astype(np.float32))
            continue
        receptive = int(np.prod(shape[:2] if track == "tf" else shape[2:])) if len(shape) == 4 else 1
        fans = (shape[-2], shape[-1]) if track == "tf" or len(shape) == 2 else (shape[0], shape[1])
        bound = np.sqrt(6.0 / (receptive * (fans[0] + fans[1])))
        out.append(rng.uniform(-bound, bound, shape).astype(np.float32))
    return out


def trusted_net(track: str, which: str, latent_dim: int, n_classes: int, eps, weights=None):
    """The grader's encoder or decoder of the report, with `weights` (trusted_weights' order) loaded."""
    if track == "tf":
        from .. import tf_models as T

        net = (T.build_encoder(latent_dim, n_classes, sampling=T.FixedNoise(eps)) if which == "encoder"
               else T.build_decoder(latent_dim, n_classes))
    else:
        from .. import torch_models as T

        net = (T.Encoder(latent_dim, n_classes, T.FixedNoise(eps)) if which == "encoder"
               else T.Decoder(latent_dim, n_classes))
    if weights is not None:
        assign(T.weight_tensors(net), weights)
    return net


def first_input(track: str, which: str, rng, n: int, latent_dim: int) -> np.ndarray:
    if which == "decoder":
        return rng.normal(0, 1.5, (n, latent_dim)).astype(np.float32)
    shape = (n, 28, 28, 1) if track == "tf" else (n, 1, 28, 28)
    scale, offset = rng.uniform(0, 2, (n, 1, 1, 1)), rng.uniform(-1, 1, (n, 1, 1, 1))
    return (scale * rng.uniform(size=shape) + offset).astype(np.float32)   # images unlike each other


def _inputs(first, labels, n_classes):
    return [first, labels] if n_classes else first


def shapes_case(track: str, which: str, seed: int, n: int, latent_dim: int, n_classes: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    first = first_input(track, which, rng, n, latent_dim)
    labels = rng.integers(0, max(n_classes, 1), n).astype(np.int64)
    label = f"latent_dim={latent_dim}, n_classes={n_classes}, a batch of {n}"
    return Case(label, {"x" if which == "encoder" else "z": first, "labels": labels,
                        "latent_dim": np.array(latent_dim), "n_classes": np.array(n_classes)})


def judge_shapes(track: str, which: str):
    def judge_one(inputs, replies, key):
        latent, k = int(inputs["latent_dim"]), int(inputs["n_classes"])
        n = len(inputs["labels"])
        reply = ok_reply(replies, key)
        shapes = [tuple(int(d) for d in row[1:1 + int(row[0])]) for row in
                  np.asarray(reply.arrays.get("shapes", np.zeros((0, 5))), np.int64)]
        if which == "encoder":
            if len(shapes) != 3:
                raise Mistake(f"the encoder returns {len(shapes)} output(s); it should return three: "
                              "z_mean, z_log_var and z")
            for name, shape in zip(OUTPUTS, shapes):
                if shape != (n, latent):
                    raise Mistake(f"{name} has shape {list(shape)}, expected [{n}, {latent}] (latent_dim={latent})")
            want = encoder_params(latent, k)
        else:
            image = (n, 28, 28, 1) if track == "tf" else (n, 1, 28, 28)
            if shapes != [image]:
                raise Mistake(f"the decoder returns {' and '.join(str(list(s)) for s in shapes) or 'nothing'}; "
                              f"expected one image batch of shape {list(image)}")
            low, high = float(get(replies, key, "low")), float(get(replies, key, "high"))
            if low < 0 or high > 1:
                raise Mistake(f"the decoder's outputs go from {low:.3g} to {high:.3g}: they are pixel "
                              "probabilities, so the last layer needs a sigmoid")
            want = decoder_params(latent, k)
        got = int(get(replies, key, "params"))
        if got != want:
            raise Mistake(f"your {which} has {got:,} parameters, the report's {want:,} ({abs(got - want):,} "
                          f"{'more' if got > want else 'fewer'}; the check with the trusted weights names the layer)")
    return judge_one


_REFERENCES: dict = {}


def net_case(track: str, which: str, seed: int, n: int = 16, latent_dim: int = 2, n_classes: int = 0) -> Case:
    """The trusted network's weights (numpy) and a seeded input."""
    rng = np.random.default_rng(seed)
    first = first_input(track, which, rng, n, latent_dim)
    labels = rng.integers(0, max(n_classes, 1), n).astype(np.int64)
    eps = rng.normal(size=latent_dim).astype(np.float32)
    flat, table = pack(trusted_weights(track, which, latent_dim, n_classes, seed))
    return Case(f"seed {seed}, latent_dim={latent_dim}, n_classes={n_classes}, a batch of {n}",
                {"x": first, "weights_flat": flat, "weights_table": table, "labels": labels,
                 "latent_dim": np.array(latent_dim), "n_classes": np.array(n_classes), "eps": eps})


def reference(track: str, which: str, inputs: dict):
    """The trusted network's run on the case's input (built on first use, after the worker is done)."""
    key = (track, which, inputs["weights_flat"].tobytes(), inputs["x"].tobytes(), inputs["labels"].tobytes())
    if key not in _REFERENCES:
        k, latent = int(inputs["n_classes"]), int(inputs["latent_dim"])
        net = trusted_net(track, which, latent, k, inputs["eps"], unpack(inputs["weights_flat"], inputs["weights_table"]))
        _REFERENCES[key] = trusted_network(net, _inputs(inputs["x"], inputs["labels"], k))
    return _REFERENCES[key]


def judge_net(track: str, which: str):
    def judge_one(inputs, replies, key):
        reply = ok_reply(replies, key)
        return judge_network(reference(track, which, inputs), reply.arrays, channel_axis=-1 if track == "tf" else 1,
                             what=which, may_vary=(2,) if which == "encoder" else ())
    return judge_one
