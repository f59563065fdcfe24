"""What both StyleGAN probes share (run in the worker): the small synthesis network of the fit check.

The convergence check plugs the student's AdaptiveInstanceNorm and
NoiseInjection into the package's SynthesisNetwork (every LayerEpilogue gets
the student's two layers in place of the package's), fits it for a few seconds
and sends the weights back in the order of the package's own network, so the
grader can load them into its trusted copy.
"""

from __future__ import annotations

# The small synthesis network of the fit check: 16x16, 6 styled layers, 32 channels everywhere.
FIT_NETWORK = {"resolution": 16, "w_dim": 32, "channels": 1, "fmap_base": 512, "fmap_max": 32}


def epilogues(net) -> list:
    """The synthesis network's LayerEpilogues, in the order of its styles."""
    return [net.input_epilogue] + [conv.epilogue for conv in net.convs]


def plug(net, adain_cls, noise_cls, w_dim: int) -> list[tuple]:
    """Replace every epilogue's noise and AdaIN with the student's; [(old layer, new layer)]."""
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
    the grader notices when the total does not fit.
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
