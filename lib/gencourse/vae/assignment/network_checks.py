"""Judges of the student's encoder and decoder (grader side): shapes, parameter counts, and what they compute.

The grader builds its own network of the report (`trusted_net`, seeded, with
non-zero biases so that a misplaced bias shows), sends its weights, and the
worker loads them into the student's network in the order its layers run
(`grading.networks`); both run one seeded input, and the first layer whose
output departs is named. The encoder's sampling layer is the grader's fixed-noise
one on both sides, so that z is compared too, whatever the student's Sampling does.
"""

from __future__ import annotations

import numpy as np

from ...grading import Case, Mistake, get, ok_reply
from ...grading.networks import call_inputs, judge_network, trusted_network
from ..common import DECODER_PARAMS, ENCODER_PARAMS

OUTPUTS = ("z_mean", "z_log_var", "z")


def encoder_params(latent_dim: int, n_classes: int = 0) -> int:
    """Conv 1->32 and 32->64 (3x3), Dense(3136 + n_classes -> 16), two heads Dense(16 -> latent)."""
    return ENCODER_PARAMS + 16 * n_classes + 2 * 17 * (latent_dim - 2)


def decoder_params(latent_dim: int, n_classes: int = 0) -> int:
    """Dense(latent + n_classes -> 3136), ConvT 64->64 and 64->32 (3x3, stride 2), ConvT 32->1."""
    return DECODER_PARAMS + 7 * 7 * 64 * (latent_dim - 2 + n_classes)


def trusted_net(track: str, which: str, latent_dim: int, n_classes: int, eps, seed: int):
    """The grader's encoder or decoder of the report, Glorot weights and random biases (seeded)."""
    rng = np.random.default_rng(seed)
    if track == "tf":
        import keras

        from .. import tf_track as T

        keras.utils.set_random_seed(seed)
        net = (T.build_encoder(latent_dim, n_classes, sampling=T.FixedNoise(eps)) if which == "encoder"
               else T.build_decoder(latent_dim, n_classes))
        for v in T.weight_tensors(net):
            if len(v.shape) == 1:
                v.assign(rng.normal(0, 0.1, tuple(v.shape)).astype(np.float32))
        return net
    import torch

    from .. import torch_track as T

    net = (T.Encoder(latent_dim, n_classes, T.FixedNoise(eps)) if which == "encoder"
           else T.Decoder(latent_dim, n_classes))
    T.init_like_keras(net, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for p in T.weight_tensors(net):
            if p.ndim == 1:
                p.copy_(torch.as_tensor(rng.normal(0, 0.1, tuple(p.shape)), dtype=p.dtype))
    return net


def first_input(track: str, which: str, rng, n: int, latent_dim: int) -> np.ndarray:
    if which == "decoder":
        return rng.normal(0, 1.5, (n, latent_dim)).astype(np.float32)
    return rng.uniform(size=(n, 28, 28, 1) if track == "tf" else (n, 1, 28, 28)).astype(np.float32)


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


def net_case(track: str, which: str, seed: int, n: int = 6, latent_dim: int = 2, n_classes: int = 0) -> Case:
    """The trusted network's weights and a seeded input; its run on that input is kept for the judge."""
    rng = np.random.default_rng(seed)
    first = first_input(track, which, rng, n, latent_dim)
    labels = rng.integers(0, max(n_classes, 1), n).astype(np.int64)
    eps = rng.normal(size=latent_dim).astype(np.float32)
    net = trusted_net(track, which, latent_dim, n_classes, eps, seed)
    ref = trusted_network(net, _inputs(first, labels, n_classes))
    inputs = {**call_inputs(ref, first), "labels": labels, "latent_dim": np.array(latent_dim),
              "n_classes": np.array(n_classes), "eps": eps}
    _REFERENCES[_reference_key(track, which, inputs)] = ref
    return Case(f"seed {seed}, latent_dim={latent_dim}, n_classes={n_classes}, a batch of {n}", inputs)


def _reference_key(track, which, inputs) -> tuple:
    return track, which, inputs["weights_flat"].tobytes(), inputs["x"].tobytes(), inputs["labels"].tobytes()


def judge_net(track: str, which: str):
    def judge_one(inputs, replies, key):
        ref = _REFERENCES[_reference_key(track, which, inputs)]     # made with the case, in this process
        reply = ok_reply(replies, key)
        return judge_network(ref, reply.arrays, channel_axis=-1 if track == "tf" else 1,
                             what=which, may_vary=(2,) if which == "encoder" else ())
    return judge_one
