"""Other AdaIN and noise layers in a synthesis network, holding the weights it had.

The StyleGAN notebook and its assignment put a student's AdaptiveInstanceNorm and
NoiseInjection into every layer of the shipped generator (`pretrained.load`), so
that its samples, mixing and truncation figures are drawn by the student's layers.
The weights move by position, not by name: the new network's weights, in the order
`ordered` gives, receive the trusted network's arrays in theirs, shapes checked.
It lives with the topic, not with the grader, so a notebook cell imports nothing
from the assignment's checks.
"""

from __future__ import annotations


def epilogues(net) -> list:
    """The synthesis network's LayerEpilogues, in the order of its styles."""
    return [net.input_epilogue] + [conv.epilogue for conv in net.convs]


def plug(net, adain_cls, noise_cls, w_dim: int) -> list[tuple]:
    """Replace every epilogue's noise and AdaIN with new ones of the given classes; [(old layer, new layer)]."""
    swapped = []
    for epi in epilogues(net):
        channels = int(epi.bias.shape[0])
        new_noise, new_adain = noise_cls(channels), adain_cls(channels, w_dim)
        swapped += [(epi.noise, new_noise), (epi.adain, new_adain)]
        epi.noise, epi.adain = new_noise, new_adain
    return swapped


def ordered(trusted: list, swapped: list[tuple], weights_of) -> list:
    """The trusted network's weight list with each replaced layer's weights swapped for its successor's.

    `trusted`: the weights of the network as built (before `plug`); `weights_of(layer)`:
    a layer's weights in their order. A layer's successor may hold more or fewer weights;
    `check_fits` says so.
    """
    owner = {}
    for old, new in swapped:
        for v in weights_of(old):
            owner[id(v)] = (old, new)
    out, done = [], set()
    for v in trusted:
        if id(v) not in owner:
            out.append(v)
            continue
        old, new = owner[id(v)]
        if id(old) not in done:
            done.add(id(old))
            out += list(weights_of(new))
    return out


def check_fits(targets: list, shapes: list[tuple], what: str) -> None:
    """Raise a ValueError naming the first weight whose shape differs, or a different count."""
    got = [tuple(getattr(t, "shape", ())) for t in targets]
    for i, (a, b) in enumerate(zip(got, shapes)):
        if tuple(a) != tuple(b):
            raise ValueError(f"{what}: weight {i} has shape {tuple(a)}, the shipped generator's has {tuple(b)}; "
                             f"does AdaptiveInstanceNorm hold only its given `style` and NoiseInjection only "
                             f"`weight` of shape [channels]?")
    if len(got) != len(shapes):
        raise ValueError(f"{what}: {len(got)} weights for the shipped generator's {len(shapes)}; does "
                         f"AdaptiveInstanceNorm hold only its given `style` and NoiseInjection only `weight`?")


# ---------------------------------------------------------------- the shipped weights in a whole generator

def driven(generator, track: str):
    """`generator` as a network of one call, (z, noise image of layer 0, ..., of the last), that
    grading.tracing can run: it calls generator(z, noise=[...]) and holds no weight of its own."""
    if track == "torch":
        import torch

        class Driven(torch.nn.Module):
            def __init__(self, g):
                super().__init__()
                self.g = g

            def forward(self, z, *noise):
                return self.g(z, noise=list(noise))
    else:
        import keras

        class Driven(keras.layers.Layer):
            def __init__(self, g, **kwargs):
                super().__init__(**kwargs)
                self.g = g

            def call(self, inputs, training=None):
                return self.g(inputs[0], noise=list(inputs[1:]))
    return Driven(generator)


def drive_inputs(track: str, z, noise_seed: int, resolution: int = 32) -> list:
    """[z, noise of each layer] in the track's layout: the noise drawn by numpy from `noise_seed`."""
    import numpy as np

    from .common import sample_noise

    z = np.asarray(z, np.float32)
    return [z, *sample_noise(np.random.default_rng(int(noise_seed)), resolution, len(z), channels_last=track == "tf")]


def load_run_order(generator, trusted, track: str, z_dim: int) -> None:
    """Load the weights of the generator `trusted` into another generator's in the order their layers run (a
    layer's weights declared in another order matched by shape, grading.tracing); a ValueError when they do not fit."""
    import numpy as np

    from ..grading.tracing import load_in_run_order, shapes_table, trace
    from ..weights import as_numpy

    x = drive_inputs(track, np.zeros((2, z_dim), np.float32), 0)
    t = trace(driven(trusted, track), x)
    arrays = [as_numpy(w) for _, ws in t.groups for w in ws]
    _, loaded = load_in_run_order(driven(generator, track), x, arrays, shapes_table(t.groups))
    if not loaded:
        raise ValueError("the shipped weights do not fit your Generator in the order its layers run: the test "
                         "cell of the Generator says which layer departs")
