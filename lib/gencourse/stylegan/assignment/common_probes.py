"""What both StyleGAN probes share (run in the worker).

The convergence check draws with the shipped generator (gencourse.stylegan.pretrained)
holding the student's AdaptiveInstanceNorm and NoiseInjection in every layer, and, to
tell the two apart, with each of them alone beside the package's other layer; the
images go back and the grader scores them.
"""

from __future__ import annotations


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


def shipped(ns, track, z, noise_seed) -> dict:
    """Images [n, 32, 32] of the shipped Gs for latents `z` and noise drawn from `noise_seed` (numpy), with
    the student's AdaIN and noise ("both"), their AdaIN alone ("adain") and their noise alone ("noise")."""
    import numpy as np

    from ...grading.probing import part, scalar
    from .. import common, pretrained, sampling

    z = np.asarray(z, np.float32)
    adain, noise = part(ns, "AdaptiveInstanceNorm"), part(ns, "NoiseInjection")
    out = {}
    for name, layers in (("both", dict(adain=adain, noise=noise)), ("adain", dict(adain=adain)),
                         ("noise", dict(noise=noise))):
        gs = pretrained.load(track, **layers)
        ws = sampling.broadcast(gs.mapping(z), gs.config.num_layers)
        drawn = common.sample_noise(np.random.default_rng(scalar(noise_seed)), gs.config.resolution, len(z))
        out[name] = np.asarray(gs.synthesize(ws, drawn), np.float64)
    return out
