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


# --------------------------------------------------------------------- probes both tracks share

def losses(ns, tensor, d_real, d_fake) -> dict:
    """The student's generator_loss and discriminator_loss on the given logits (`tensor`: array -> tensor)."""
    from ...grading.probing import part, plain

    return {"g_loss": plain(part(ns, "generator_loss")(tensor(d_fake))),
            "d_loss": plain(part(ns, "discriminator_loss")(tensor(d_real), tensor(d_fake)))}


def frechet(ns, mu1, sigma1, mu2, sigma2) -> dict:
    """The student's frechet_distance on numpy moments; a complex result comes back as its real part, flagged."""
    import numpy as np

    from ...grading.probing import part

    value = np.asarray(part(ns, "frechet_distance")(np.array(mu1), np.array(sigma1), np.array(mu2),
                                                    np.array(sigma2)))
    is_complex = np.iscomplexobj(value)
    return {"fd": np.real(value).astype(np.float64), "is_complex": np.array(float(is_complex))}
