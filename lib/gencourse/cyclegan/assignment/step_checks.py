"""Judges of the CycleGAN assignment's training iteration (grader side): one step from fixed weights, and the
short training judged on held-out cycle error.

The step check runs two iterations of the student's `training_step` on the package's networks (a small
configuration, seeded) with plain gradient descent, so that each phase's change of the weights is minus the
learning rate times its gradient. The judge computes, with trusted code of the same framework
(torch_step / tf_step), the gradient of every term the phase should hold and of the known wrong ones, and
tries each known way of mixing them: the right one, a term missing, doubled or of the wrong sign, another
discriminator, no pool, the pool asked after the update, discriminators not frozen, gradients that
accumulate from the previous iteration. It names a mistake only when that mix reproduces the change within
float32 noise, and otherwise describes the change (its size and direction against the reference's).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...grading import Case, Mistake, ok_reply, show, unflatten
from ...weights import assign
from ..common import ImagePool
from .loss_checks import GAN_MODES

STEP_NETS = dict(channels=1, size=16, ngf=4, n_blocks=1, ndf=4, n_layers=2, batch=4)
TOLERANCE = 1e-3      # relative distance of a change to a mix of terms that still counts as that mix
NETS = ("G", "F", "D_A", "D_B")


def _mixed_pool_seed(seed: int, n: int) -> int:
    """A pool seed whose two queries of a full pool of n keep some fakes and swap others in both pools, so that
    'no pool' and 'the pool' are told apart."""
    for s in range(seed * 100, seed * 100 + 100):
        mixed = True
        for pool_seed in (s, s + 1):
            pool = ImagePool(n, pool_seed)
            pool.query(np.zeros((n, 1)))
            for step in (1, 2):
                fakes = np.full((n, 1), float(step))
                kept = pool.query(fakes)[:, 0] == step
                mixed &= bool(kept.any() and not kept.all())
        if mixed:
            return s
    raise ValueError("no pool seed mixes kept and swapped fakes")


def step_case(seed: int, gan_mode: str = "lsgan", lambda_cycle: float = 10.0, lambda_identity: float = 5.0,
              semantic_weight: float = 0.0, lr: float = 0.02) -> Case:
    rng = np.random.default_rng(seed)
    n, s = STEP_NETS["batch"], STEP_NETS["size"]
    batch = lambda: rng.uniform(-1, 1, (n, s, s, 1)).astype(np.float32)  # noqa: E731
    inputs = {"a1": batch(), "b1": batch(), "a2": batch(), "b2": batch(), "pool_a": batch(), "pool_b": batch(),
              "pool_seed": np.array(_mixed_pool_seed(seed, n)), "seed": np.array(seed), "lr": np.array(lr),
              "lambda_cycle": np.array(lambda_cycle), "lambda_identity": np.array(lambda_identity),
              "gan_mode": np.array(GAN_MODES.index(gan_mode)), "semantic_weight": np.array(semantic_weight),
              **{k: np.array(v) for k, v in STEP_NETS.items() if k not in ("size", "batch")}}
    for side in "ab":
        inputs[f"cls_w{side}"] = rng.normal(0, 0.05, (s * s, 10)).astype(np.float32)
        inputs[f"cls_c{side}"] = rng.normal(0, 0.1, 10).astype(np.float32)
        for i in (1, 2):
            inputs[f"l{side}{i}"] = rng.integers(0, 10, n).astype(np.int64)
    words = f"gan_mode {gan_mode!r}, lambda_cycle {lambda_cycle:g}, lambda_identity {lambda_identity:g}"
    if semantic_weight:
        words += f", a semantic term of weight {semantic_weight:g} (linear classifiers)"
    return Case(f"two iterations from seeded weights (seed {seed}), batches of {n} images {s}x{s}, {words}, "
                f"gradient descent of rate {lr:g}", inputs)


GEN_WORDS = {"G_adv": "G's adversarial term (D_B on G(a))", "F_adv": "F's adversarial term (D_A on F(b))",
             "cycle_A": "the cycle term of A, F(G(a)) against a", "cycle_B": "the cycle term of B, G(F(b)) against b",
             "identity_A": "the identity term of F, F(a) against a", "identity_B": "the identity term of G, G(b) against b",
             "semantic_A": "the semantic term of G (C_B on G(a))", "semantic_B": "the semantic term of F (C_A on F(b))"}
DISC_WORDS = {"D_A_real": "D_A's real term", "D_A_fake": "D_A's fake term", "D_B_real": "D_B's real term",
              "D_B_fake": "D_B's fake term"}


def _gen_hypotheses(expected: dict) -> list:
    """[(coefficients, message)] of the known ways a generators' update goes wrong (each alone)."""
    out = [({k: 0.0 for k in expected}, "G and F did not move: opt_g.step() missing, or a loss without gradient")]
    for t in [k for k, v in expected.items() if v]:
        for c, how in ((0.0, "is missing from"), (2.0, "counts twice in"), (-1.0, "has the wrong sign in")):
            out.append(({**expected, t: c}, f"{GEN_WORDS[t]} {how} the generators' loss"))
    for pair, words in ((("identity_A", "identity_B"), "the identity terms are"),
                        (("G_adv", "F_adv"), "the adversarial terms are"),
                        (("semantic_A", "semantic_B"), "the semantic terms are")):
        if all(expected.get(t) for t in pair):
            out.append(({**expected, **{t: 0.0 for t in pair}}, f"{words} missing from the generators' loss"))
    out.append(({**expected, "G_adv": 0.0, "G_adv_by_D_A": 1.0},
                "G's fakes are judged by D_A: G makes images of B, so its adversarial loss uses D_B"))
    out.append(({**expected, "F_adv": 0.0, "F_adv_by_D_B": 1.0},
                "F's fakes are judged by D_B: F makes images of A, so its adversarial loss uses D_A"))
    out.append(({**expected, "G_adv": 0.0, "F_adv": 0.0, "G_adv_by_D_A": 1.0, "F_adv_by_D_B": 1.0},
                "the discriminators are swapped in the adversarial terms: D_B judges G(a), D_A judges F(b)"))
    if expected.get("identity_A"):
        out.append(({**expected, "identity_A": 0.0, "identity_B": 0.0, "identity_A_by_G": 1.0,
                     "identity_B_by_F": 1.0},
                    "the identity terms use the other generator: F(a) against a and G(b) against b (each "
                    "generator is fed an image of its own output domain)"))
    if "previous" in expected:
        out.append(({**expected, "previous": 1.0}, "the previous iteration's gradients are added to this one's: "
                                                   "zero G and F's gradients before each backward"))
    return out


def _disc_hypotheses(expected: dict) -> list:
    fake = {"D_A_fake": 0.0, "D_B_fake": 0.0}
    out = [({k: 0.0 for k in expected}, "D_A and D_B did not move: opt_d.step() missing, or a loss without gradient"),
           ({**expected, "D_A_real": 0.0, "D_A_fake": 0.0}, "D_A did not move: its loss is missing from the "
                                                             "discriminators' step"),
           ({**expected, "D_B_real": 0.0, "D_B_fake": 0.0}, "D_B did not move: its loss is missing from the "
                                                             "discriminators' step"),
           ({**expected, **fake, "D_A_fake_now": 1.0, "D_B_fake_now": 1.0},
            "the discriminators saw this iteration's fakes, not the history pool's answer: show D_A "
            "pool_a.query(fake_a) and D_B pool_b.query(fake_b)"),
           ({**expected, **fake, "D_A_fake_new": 1.0, "D_B_fake_new": 1.0},
            "the pools were asked with fakes made after the generators' update: query them with the fakes the "
            "generators' step made (before their update), as the reference does"),
           ({**expected, **fake, "D_A_on_fake_b": 1.0, "D_B_on_fake_a": 1.0},
            "D_A was shown the fakes of B (pool_b's) and D_B those of A: D_A judges domain A, so it gets F's "
            "fakes from pool_a"),
           ({**expected, "D_A_from_F": 1.0, "D_B_from_G": 1.0},
            "the discriminators' update also holds the generators' adversarial loss: freeze them in the "
            "generators' step (requires_grad_(False)) or zero their gradients before their own backward"),
           ({k: 2.0 * v for k, v in expected.items()}, "the discriminators' loss counts twice")]
    if "previous" in expected:
        out.append(({**expected, "previous": 1.0}, "the previous iteration's gradients are added to this one's: "
                                                   "zero D_A and D_B's gradients before each backward"))
    return out


def _mix(basis: dict, coefficients: dict) -> np.ndarray:
    return sum(c * basis[k] for k, c in coefficients.items() if c)


def _judge_phase(what: str, observed, basis: dict, expected: dict, hypotheses, iteration: int) -> None:
    want = _mix(basis, expected)
    scale = max(float(np.linalg.norm(want)), 1e-12)
    if np.linalg.norm(observed - want) / scale < TOLERANCE:
        return
    where = f"in iteration {iteration}, " if iteration > 1 else ""
    fits = [(float(np.linalg.norm(observed - _mix(basis, c)) / scale), m) for c, m in hypotheses]
    best, message = min(fits)
    if best < TOLERANCE:
        raise Mistake(f"{where}{message}")
    ratio = float(observed @ want / scale ** 2)
    cosine = float(observed @ want / max(np.linalg.norm(observed) * scale, 1e-30))
    raise Mistake(f"{where}the {what}' update differs from the reference iteration's in a way none of the known "
                  f"mistakes explains: projected on the reference's it is {ratio:.3g} times as large, at a cosine "
                  f"of {cosine:.3f} (the update {show(observed)}, the reference's {show(want)})")


def _framework(track: str):
    if track == "torch":
        from . import torch_step as fw
    else:
        from . import tf_step as fw
    return fw


def judge_step(track: str):
    def judge_one(inputs, replies, key):
        arrays = {k: np.asarray(v) for k, v in ok_reply(replies, key).arrays.items()}
        if float(arrays.get("graph_error", np.zeros(())).reshape(-1)[0]):
            raise Mistake("the discriminators' loss reached back through the fakes into G and F, whose graph the "
                          "generators' backward had already used: detach the pool's images before D sees them")
        if not np.all(arrays.get("keys", np.zeros(4)) == 1):
            raise Mistake("training_step must return a dict of Python floats holding at least 'cycle', 'D_A' and "
                          "'D_B' (the training loop prints them)")
        fw = _framework(track)
        cfg = {k: int(inputs[k]) for k in ("channels", "ngf", "n_blocks", "ndf", "n_layers")}
        cfg.update(lambda_cycle=float(inputs["lambda_cycle"]), lambda_identity=float(inputs["lambda_identity"]),
                   gan_mode=GAN_MODES[int(inputs["gan_mode"])])
        lr, weight = float(inputs["lr"]), float(inputs["semantic_weight"])
        nets = fw.make_nets(cfg, int(inputs["seed"]))
        shapes = {k: [tuple(t.shape) for t in fw.tensors(nets[k])] for k in NETS}
        state = {k: unflatten(arrays.get(f"before_{k}", np.zeros(0)), shapes[k], f"{k} before the step") for k in NETS}
        seed = int(inputs["pool_seed"])
        pools = {"a": ImagePool(len(inputs["pool_a"]), seed), "b": ImagePool(len(inputs["pool_b"]), seed + 1)}
        for side, pool in pools.items():
            pool.images = [im.copy() for im in inputs[f"pool_{side}"]]
        semantic = None
        if weight:
            classifiers = [fw.linear_classifier(inputs[f"cls_w{s}"], inputs[f"cls_c{s}"]) for s in "ab"]
        previous = None
        for it in (1, 2):
            a, b = inputs[f"a{it}"], inputs[f"b{it}"]
            if weight:
                semantic = (*classifiers, inputs[f"la{it}"], inputs[f"lb{it}"], weight)
            for k in NETS:
                assign(fw.tensors(nets[k]), state[k])
            after = {k: unflatten(arrays.get(f"after{it}_{k}", np.zeros(0)), shapes[k], f"{k} after iteration {it}")
                     for k in NETS}
            flat = lambda d, ks: np.concatenate([w.ravel() for k in ks for w in d[k]]).astype(np.float64)  # noqa: E731
            fake_a, fake_b = fw.fakes(nets, a, b)
            before_query = copy.deepcopy(pools)
            old_a, old_b = pools["a"].query(fake_a), pools["b"].query(fake_b)
            gen = fw.gen_terms(nets, a, b, cfg, semantic)
            expected_g = {k: 1.0 for k in ("G_adv", "F_adv", "cycle_A", "cycle_B")}
            expected_g.update({k: 0.0 for k in gen if k not in expected_g})
            for k in ("identity_A", "identity_B"):
                expected_g[k] = 1.0 if cfg["lambda_identity"] else 0.0
            for k in ("semantic_A", "semantic_B"):
                if k in gen:
                    expected_g[k] = 1.0
            disc = fw.disc_terms(nets, a, b, old_a, old_b, fake_a, fake_b, cfg)
            gen_step = _mix(gen, expected_g)
            offsets = np.cumsum([0] + [w.size for k in ("G", "F") for w in state[k]])
            moved = [w - lr * gen_step[offsets[i]:offsets[i + 1]].reshape(w.shape).astype(np.float32)
                     for i, w in enumerate([w for k in ("G", "F") for w in state[k]])]
            updated = {"G": moved[:len(state["G"])], "F": moved[len(state["G"]):]}
            for k in ("G", "F"):
                assign(fw.tensors(nets[k]), updated[k])
            new_a, new_b = fw.fakes(nets, a, b)
            late = fw.disc_terms(nets, a, b, before_query["a"].query(new_a), before_query["b"].query(new_b),
                                 new_a, new_b, cfg)
            disc.update(D_A_fake_new=late["D_A_fake"], D_B_fake_new=late["D_B_fake"])
            expected_d = {k: (1.0 if k in DISC_WORDS else 0.0) for k in disc}
            if previous is not None:
                gen["previous"], disc["previous"] = previous
                expected_g["previous"] = expected_d["previous"] = 0.0
            observed_g = (flat(after, ("G", "F")) - flat(state, ("G", "F"))) / -lr
            observed_d = (flat(after, ("D_A", "D_B")) - flat(state, ("D_A", "D_B"))) / -lr
            _judge_phase("generators", observed_g, gen, expected_g, _gen_hypotheses(expected_g), it)
            _judge_phase("discriminators", observed_d, disc, expected_d, _disc_hypotheses(expected_d), it)
            previous = (gen_step, _mix(disc, expected_d))
            state = after
        return None
    return judge_one


# --------------------------------------------------------------------- the short training

@dataclass(frozen=True)
class TrainingSetup:
    """The short training of the convergence check and its pass mark.

    Digits task (sklearn digits -> MNIST, the embedded 5,000 MNIST digits), the
    DIGITS_DEFAULTS networks of the package, the student's losses and
    training_step, Adam 2e-4, pools of 50, 30 iterations of batch 8, identity
    weight 0: with the identity term the generators learn a near-identity map
    on their own and a missing cycle loss goes unnoticed (A / B errors 0.25 /
    0.30 without it, 0.21 / 0.29 with it, PyTorch). Held-out cycle error (mean
    of A -> B -> A and B -> A -> B; untrained about 0.99), measured through the
    grader on a loaded 2-core CPU with the package's loop, which takes the same
    step:

      solution parts             torch 0.278 (0.245, 0.310)   tf 0.281 (0.213, 0.348)
      lambda missing (1, not 10) torch 0.342 (0.303, 0.381)   tf 0.359 (0.296, 0.421)
      cycle loss always zero     torch 0.451 (0.407, 0.495)   tf 0.533 (0.492, 0.574)
      cycle loss of wrong sign   torch 1.61 (1.613, 1.608)

    The pass mark 0.36 sits 0.08 above the solution and 0.09 (torch) / 0.17 (tf)
    below a dead cycle loss. A missing lambda lands near the mark either way; the
    value checks catch it, not this one.
    """

    iterations: int = 30
    batch_size: int = 8
    seed: int = 0
    lambda_identity: float = 0.0
    n_eval: int = 200
    threshold: float = 0.36


@lru_cache(maxsize=2)
def _digits(seed: int = 0):
    from ...data.domains import digits_domains
    from ...data.mnist import embedded_subset

    return digits_domains(28, seed, mnist=embedded_subset())


def training_case(setup: TrainingSetup) -> Case:
    from ...data.domains import UnpairedDomains

    d = _digits()
    batches = UnpairedDomains(d.train_a, d.train_b, 28, setup.batch_size, seed=setup.seed)
    a, b = zip(*[batch for _, batch in zip(range(setup.iterations), batches.epoch(0))])
    label = (f"{setup.iterations} iterations of batch {setup.batch_size} on sklearn digits <-> MNIST, "
             f"seed {setup.seed}, identity weight {setup.lambda_identity:g}")
    return Case(label, {"a": np.concatenate(a), "b": np.concatenate(b),
                        "iterations": np.array(setup.iterations), "batch_size": np.array(setup.batch_size),
                        "seed": np.array(setup.seed), "lambda_identity": np.array(setup.lambda_identity)})


def trusted_generators(track: str, setup: TrainingSetup, weights: dict):
    """The package's digits generators (grader side) with the returned G and F loaded: a `translate(x, direction)`."""
    from .common_probes import DIGITS_NETS

    fw = _framework(track)
    nets = fw.make_nets(DIGITS_NETS, setup.seed)
    for net in ("G", "F"):
        tensors = fw.tensors(nets[net])
        assign(tensors, unflatten(weights.get(net, np.zeros(0)), [tuple(t.shape) for t in tensors], f"the trained {net}"))
    return lambda x, direction: fw.translate(nets["G" if direction == "AB" else "F"], x)


def held_out_cycle_error(translate, n_eval: int) -> tuple[float, float]:
    """mean |F(G(x)) - x| on held-out sklearn digits and mean |G(F(y)) - y| on held-out MNIST."""
    d = _digits()
    x, y = d.test_a.array(28, range(n_eval)), d.test_b.array(28, range(n_eval))
    return (float(np.abs(translate(translate(x, "AB"), "BA") - x).mean()),
            float(np.abs(translate(translate(y, "BA"), "AB") - y).mean()))


def judge_training(track: str, setup: TrainingSetup):
    def judge_one(inputs, replies, key):
        reply = ok_reply(replies, key)
        arrays = {k: np.asarray(v) for k, v in reply.arrays.items()}
        if any(a.dtype.kind not in "biuf" or not np.all(np.isfinite(a)) for a in arrays.values()):
            raise Mistake("the training diverged (NaN or infinite losses or weights) with your parts")
        history = arrays.pop("history", np.zeros((0, 2)))
        error_a, error_b = held_out_cycle_error(trusted_generators(track, setup, arrays), setup.n_eval)
        error = (error_a + error_b) / 2
        if not np.isfinite(error) or error > setup.threshold:
            trend = f"; generator loss per iteration: {show(history[:, 0], 6)}" if history.size else ""
            raise Mistake(f"after {setup.iterations} iterations with your parts the held-out cycle error "
                          f"mean |F(G(x)) - x| is {error_a:.3f} (A) and {error_b:.3f} (B), above the pass mark "
                          f"{setup.threshold:.2f} for their mean; the solution's parts reach about 0.28 in the "
                          f"same run (untrained: about 1.0, without a cycle loss about 0.45): "
                          f"does your cycle loss pull F(G(x)) towards x{trend}?")
        return (f"held-out cycle error {error_a:.3f} (A -> B -> A), {error_b:.3f} (B -> A -> B) after "
                f"{setup.iterations} iterations (pass mark {setup.threshold:.2f} for their mean)")
    return judge_one
