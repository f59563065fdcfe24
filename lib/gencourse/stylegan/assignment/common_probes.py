"""What both StyleGAN probes share (run in the worker).

The convergence check draws with the shipped generator (gencourse.stylegan.pretrained)
holding the student's AdaptiveInstanceNorm and NoiseInjection in every layer, and, to
tell the two apart, with each of them alone beside the package's other layer; the
images go back and the grader scores them. The generator probes build the student's
whole Generator and load the shipped weights into it in run order (generator_checks).
"""

from __future__ import annotations

import numpy as np


# --------------------------------------------------------------------- probes both tracks share

def losses(ns, with_grads, d_real, d_fake) -> dict:
    """The student's generator_loss and discriminator_loss on the given logits, and each logit's gradient
    (`with_grads(fn, *arrays)`: the track's value, gradients and 0/1 flags of inputs no gradient reached);
    non-finite gradients come back as zeros (the grader reads finite arrays; the value says NaN itself)."""
    from ...grading.probing import part, plain

    g, (g_grad,), missing = with_grads(part(ns, "generator_loss"), d_fake)
    d, (d_grad_real, d_grad_fake), d_missing = with_grads(part(ns, "discriminator_loss"), d_real, d_fake)
    finite = lambda a: np.nan_to_num(np.asarray(a, np.float64), nan=0.0, posinf=0.0, neginf=0.0)  # noqa: E731
    return {"g_loss": plain(g), "d_loss": plain(d), "g_grad": finite(g_grad), "missing": missing,
            "d_grad_real": finite(d_grad_real), "d_grad_fake": finite(d_grad_fake), "d_missing": d_missing}


def frechet(ns, mu1, sigma1, mu2, sigma2) -> dict:
    """The student's frechet_distance on numpy moments; a complex result comes back as its real part, flagged."""
    from ...grading.probing import part

    value = np.asarray(part(ns, "frechet_distance")(np.array(mu1), np.array(sigma1), np.array(mu2),
                                                    np.array(sigma2)))
    is_complex = np.iscomplexobj(value)
    return {"fd": np.real(value).astype(np.float64), "is_complex": np.array(float(is_complex))}


def shipped(ns, track, z, noise_seed) -> dict:
    """Images [n, 32, 32] of the shipped Gs for latents `z` and noise drawn from `noise_seed` (numpy), with
    the student's AdaIN and noise ("both"), their AdaIN alone ("adain") and their noise alone ("noise")."""
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


# --------------------------------------------------------------------- the student's whole generator

COMPOSED = ("MappingNetwork", "AdaptiveInstanceNorm", "NoiseInjection", "mix_styles", "truncate")
FUNCTIONS = ("mix_styles", "truncate")


def _package_parts(ns, track):
    """The package's own versions of the parts the Generator cell composes (the earlier TODOs), in the
    student's namespace while a check judges the Generator cell alone (grading.probing.substituted)."""
    from ...grading.probing import substituted

    if track == "torch":
        from .. import torch_models as m
    else:
        from .. import tf_models as m
    dense = {"EqualizedLinear": m.EqualizedLinear} if track == "torch" else {"EqualizedDense": m.EqualizedDense}
    return substituted(ns, **dense, **{name: _called_here(getattr(m, name)) if name in FUNCTIONS else getattr(m, name)
                                       for name in COMPOSED})


def _called_here(fn):
    """`fn` called from this (trusted) module: what it reads of the package then counts as the probe's, not
    as the student cell's that calls it (grading.guard walks out to the nearest trusted frame)."""
    def call(*args, **kwargs):
        return fn(*args, **kwargs)
    return call


def _student_generator(ns):
    from ...grading.probing import part
    from .generator_checks import student_args

    return part(ns, "Generator")(*student_args())


def generator_network(ns, track, z, noise_seed, weights_flat, weights_table, structure) -> dict:
    """The student's Generator (the package's earlier parts in it) with the grader's weights loaded in run
    order (grading.tracing.probe_network)."""
    from ...grading.tracing import probe_network
    from ..plugging import drive_inputs, driven

    with _package_parts(ns, track):
        net = _student_generator(ns)
        return probe_network(driven(net, track), drive_inputs(track, z, int(noise_seed)), weights_flat,
                             weights_table, structure)


def _shipped_student(ns, track):
    """The student's Generator holding the shipped weights (their run order), and a call of it on arrays."""
    from .. import plugging
    from ..pretrained import config
    from .generator_checks import trusted

    net = _student_generator(ns)
    z_dim = config().z_dim
    plugging.load_run_order(net, trusted(track), track, z_dim)
    if track == "torch":
        import torch

        def run(z, noise, **kwargs):
            t = lambda a: None if a is None else torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
            with torch.no_grad():
                out = net(t(z), noise=[t(a) for a in noise], **{k: t(v) if k == "z2" else v for k, v in kwargs.items()})
            return np.asarray(out.detach().numpy())[:, 0]
    else:
        def run(z, noise, **kwargs):
            return np.asarray(net(np.asarray(z, np.float32), noise=noise, **kwargs))[..., 0]
    return run


def generator_styles(ns, track, z, z2, crossover, psi, cutoff, noise_seed) -> dict:
    """The student's generator (the package's earlier parts in it) with the shipped weights, two latents
    mixed and truncated."""
    from ...grading.probing import scalar
    from ..plugging import drive_inputs

    _, *noise = drive_inputs(track, z, scalar(noise_seed))
    c = scalar(cutoff)
    with _package_parts(ns, track):
        run = _shipped_student(ns, track)
        return {"images": run(z, noise, z2=np.asarray(z2, np.float32), crossover=scalar(crossover),
                              psi=scalar(psi, float), cutoff=None if c < 0 else c)}


def generator_draw(ns, track, z, noise_seed) -> dict:
    """Digits [n, 32, 32] drawn by the student's generator, every part of it theirs, with the shipped weights."""
    from ...grading.probing import scalar
    from ..plugging import drive_inputs

    run = _shipped_student(ns, track)
    _, *noise = drive_inputs(track, z, scalar(noise_seed))
    return {"images": np.concatenate([run(z[i:i + 250], [a[i:i + 250] for a in noise])
                                      for i in range(0, len(z), 250)]).astype(np.float64)}



def generator_probes(track: str) -> dict:
    """The three Generator probes of one track, as its probe module's functions (named as the checks call them)."""
    def generator_net(ns, z, noise_seed, weights_flat, weights_table, structure):
        return generator_network(ns, track, z, noise_seed, weights_flat, weights_table, structure)

    def styles(ns, z, z2, crossover, psi, cutoff, noise_seed):
        return generator_styles(ns, track, z, z2, crossover, psi, cutoff, noise_seed)

    def draw(ns, z, noise_seed):
        return generator_draw(ns, track, z, noise_seed)

    return {"generator_net": generator_net, "generator_styles": styles, "generator_draw": draw}

# --------------------------------------------------------------------- editing in W (editing_checks)

def direction(ns, ws, values, quantile) -> dict:
    from ...grading.probing import part, scalar

    got = part(ns, "find_direction")(np.array(ws), np.array(values), scalar(quantile, float))
    return {"direction": np.asarray(got, np.float64)}


def class_direction(ns, ws, predicted, target) -> dict:
    from ...grading.probing import part, scalar

    got = part(ns, "class_direction")(np.array(ws), np.array(predicted), scalar(target))
    return {"none": np.array(float(got is None)),
            "direction": np.zeros(0) if got is None else np.asarray(got, np.float64)}


# --------------------------------------------------------------------- the training step (step_checks)

def _result_flags(result) -> np.ndarray:
    """[has 'd_loss', has 'g_loss', has 'r1', every value a float]."""
    if not isinstance(result, dict):
        return np.zeros(4)
    return np.array([k in result for k in ("d_loss", "g_loss", "r1")]
                    + [all(isinstance(v, float) for v in result.values())], np.float64)


def step(fw, models, ns, inputs: dict, *, sgd) -> dict:
    """Two steps of the student's training_step on the package's small G, D and Gs (step_checks.STEP_NETS) with
    gradient descent (`sgd(weights, lr)`) and the losses of the package's `models` in place of theirs; every
    network's weights before and after each step, whether the reals were left as given, whether all stayed
    finite, the result's flags."""
    from ...grading.probing import part, scalar, substituted
    from ...weights import to_flat
    from .step_checks import NETS, STEP_NETS

    nets = fw.make_nets({k: v for k, v in STEP_NETS.items() if k != "batch"}, scalar(inputs["seed"]))
    flat = lambda prefix: {f"{prefix}_{k}": to_flat(fw.tensors(nets[k])) for k in NETS}  # noqa: E731
    out, flags, kept = flat("before"), [], True
    lr = scalar(inputs["lr"], float)
    g_opt, d_opt = sgd(fw.tensors(nets["G"]), lr), sgd(fw.tensors(nets["D"]), lr)
    training_step = part(ns, "training_step")
    with substituted(ns, **package_losses(models)):
        for it in (1, 2):
            reals = fw.images(inputs[f"reals{it}"])
            result = training_step(nets["G"], nets["D"], nets["Gs"], g_opt, d_opt, reals, fw.draw(inputs, "d", it),
                                   fw.draw(inputs, "g", it), step=it, gamma=scalar(inputs["gamma"], float),
                                   r1_every=scalar(inputs["r1_every"]), ema_beta=scalar(inputs["ema_beta"], float))
            kept &= bool(np.array_equal(to_flat([reals]), to_flat([fw.images(inputs[f"reals{it}"])])))
            flags.append(_result_flags(result))
            out.update(flat(f"after{it}"))
    finite = all(np.all(np.isfinite(v)) for v in out.values())
    out = {k: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in out.items()}
    return {**out, "keys": np.min(flags, axis=0), "reals_kept": np.array(float(kept)),
            "finite": np.array(float(finite))}


def package_losses(models) -> dict:
    """The package's losses under the students' names: a probe of the step judges the step alone."""
    def objective(discriminator, reals, fakes, gamma):
        return (models.discriminator_loss(discriminator(reals), discriminator(fakes))
                + models.r1_penalty(discriminator, reals, gamma))

    return {"generator_loss": models.generator_loss, "discriminator_loss": models.discriminator_loss,
            "r1_penalty": models.r1_penalty, "discriminator_objective": objective}


def short_training(track: str, fw, models, ns, inputs: dict) -> dict:
    """`steps` of the student's training_step in student_run's loop on the package's small G and D
    (training_checks.SHORT), the package's losses in place of theirs; G's and Gs's weights afterwards."""
    from ...grading.probing import part, scalar, substituted
    from ...weights import to_flat
    from ..student_run import Budget, train
    from .training_checks import SHORT

    seed = scalar(inputs["seed"])
    nets = fw.short_nets(SHORT, seed)
    budget = Budget(steps=scalar(inputs["steps"]), batch_size=scalar(inputs["batch_size"]),
                    learning_rate=scalar(inputs["learning_rate"], float),
                    d_learning_rate=scalar(inputs["d_learning_rate"], float), r1_every=scalar(inputs["r1_every"]),
                    seed=seed)
    with substituted(ns, **package_losses(models)):
        train(track, part(ns, "training_step"), nets["G"], nets["Gs"], np.asarray(inputs["digits"], np.uint8),
              budget, z_dim=SHORT["z_dim"], progress=False, discriminator=nets["D"], resolution=SHORT["resolution"],
              graphs=False)        # eager: the tf worker must fit Gradescope's container (tf_step.short_nets)
    return {name: to_flat(fw.tensors(nets[name])) for name in ("G", "Gs")}
