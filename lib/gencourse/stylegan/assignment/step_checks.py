"""The training-step check (grader side): two steps of the student's `training_step` from fixed weights and draws.

The probe runs the student's step twice on the package's G, D and a Gs of other weights (STEP_NETS, seeded),
with plain gradient descent and the package's losses and R1 in place of the student's (so the step is judged
alone), and sends back every weight after each step. The judge replays the trusted step (torch_track /
tf_track's: D on the logistic loss with lazy R1, G on the non-saturating loss of mixed styles, then
Gs <- beta Gs + (1 - beta) G) in the same framework (torch_step / tf_step) from the same weights, and compares
G, D and Gs weight by weight (relative distance of each network's weights after each step). When they differ
it replays the known wrong steps (VARIANTS) and names one only when it reproduces every network after both
steps; otherwise it says which network's which weights differ, and by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...grading import Case, Mistake, ok_reply, unflatten
from ...weights import assign
from .. import common

STEP_NETS = dict(resolution=8, z_dim=16, mapping_layers=2, fmap_base=32, fmap_max=8, batch=4)
TOLERANCE = 1e-3      # relative distance of a weight to the replayed step's that still counts as equal (_off)
FLOOR = 0.01
NETS = ("G", "D", "Gs")
PERTURB = 0.3         # G starts from its initial weights plus N(0, PERTURB^2) (off the constant's zero variance)
GS_OFFSET = 0.01      # Gs: G's weights plus GS_OFFSET x each weight's root mean square x N(0, 1): close enough that G's own
#                       step shows in Gs's average, far enough (the mapping's weights are of size 100) above float32's rounding


@dataclass(frozen=True)
class Variant:
    """One way to take the step; the defaults are the trusted step."""

    r1: str = "lazy"            # lazy: steps 1, 1 + k, ...; every: each step; never; shifted: steps k, 2k, ...
    r1_times_k: bool = True
    mix_d: bool = True
    mix_g: bool = True
    ema: str = "after"          # after G's update; before it; inverted (beta and 1 - beta swapped); copy; none
    d_keeps_grads: bool = False
    g_grads_in_d: bool = False  # with d_keeps_grads: G's backward leaves its gradients for D's weights in them
    g_keeps_grads: bool = False
    g_moves_d: bool = False

    def applies_r1(self, step: int, k: int) -> bool:
        return {"lazy": (step - 1) % k == 0, "every": True, "never": False, "shifted": step % k == 0}[self.r1]

    def ema_weight(self, beta: float) -> float | None:
        """How much of Gs the average after G's update keeps (None: no average there)."""
        return {"after": beta, "inverted": 1.0 - beta, "copy": 0.0}.get(self.ema)


def held(store: dict, net: str, grads: list, keeps: bool) -> list:
    """The gradient an update uses: this one, or (gradients never zeroed) all of `net`'s so far, summed."""
    if not keeps:
        return grads
    store[net] = [h + g for h, g in zip(store[net], grads)]
    return store[net]


TRUSTED = Variant()
VARIANTS = [
    (Variant(r1="every"), "R1 is added on every step: lazy regularization adds it once every r1_every steps "
                          "(on steps with (step - 1) % r1_every == 0), weighted gamma * r1_every"),
    (Variant(r1="every", r1_times_k=False), "R1 is added on every step with weight gamma: the lazy form adds it "
                                            "once every r1_every steps, weighted gamma * r1_every"),
    (Variant(r1_times_k=False), "R1 is added on the right steps but weighted gamma: on the steps it applies, "
                                "weight it gamma * r1_every, so that it counts as much as R1 on every step"),
    (Variant(r1="never"), "D's step has no R1 penalty: add r1_penalty on the steps with (step - 1) % r1_every == 0"),
    (Variant(r1="shifted"), "R1 is added on the wrong steps (step % r1_every == 0): steps count from 1, and R1 "
                            "applies on steps 1, 1 + r1_every, ... ((step - 1) % r1_every == 0)"),
    (Variant(mix_g=False), "G's step has no style mixing: G's fakes take z2 from the crossover on "
                           "(G(z1, z2, crossover=crossover, noise=noise)), that is mixing regularization"),
    (Variant(mix_g=False, mix_d=False), "no style mixing in either step: the fakes take z2 from the crossover "
                                        "on, G(z1, z2, crossover=crossover, noise=noise), in D's step and in G's"),
    (Variant(mix_d=False), "D's step shows D fakes without style mixing: draw them as G's step does, "
                           "G(z1, z2, crossover=crossover, noise=noise) with D's own draws"),
    (Variant(ema="none"), "Gs did not move: after G's update, Gs <- ema_beta * Gs + (1 - ema_beta) * G"),
    (Variant(ema="inverted"), "the moving average is inverted (ema_beta and 1 - ema_beta swapped): "
                              "Gs <- ema_beta * Gs + (1 - ema_beta) * G keeps most of Gs"),
    (Variant(ema="copy"), "Gs was set to G's weights: it is their moving average, "
                          "Gs <- ema_beta * Gs + (1 - ema_beta) * G"),
    (Variant(ema="before"), "Gs was averaged with G's weights from before G's update: average after g_opt's step"),
    (Variant(d_keeps_grads=True), "D's gradients are never zeroed, so D's update also holds the earlier steps' "
                                  "gradients: zero them before D's backward"),
    (Variant(d_keeps_grads=True, g_grads_in_d=True), "D's gradients are never zeroed and G's backward adds its own to "
                                                     "them (D not frozen in G's step): D's update also holds earlier "
                                                     "steps' gradients and G's loss's; zero them before D's backward"),
    (Variant(g_keeps_grads=True), "G's gradients are never zeroed, so G's update also holds the previous "
                                  "step's: zero them before G's backward"),
    (Variant(g_moves_d=True), "G's step also moved D: its gradients reach D's weights and are applied to D; "
                              "G's step updates G's weights only (freeze D, or differentiate for G's alone)"),
]


def step_case(seed: int, r1_every: int = 2, gamma: float = 10.0, ema_beta: float = 0.75, lr: float = 0.05,
              crossovers=(2, 3, 1, 2)) -> Case:
    """Reals, and for D's and G's phase of two steps: z1, z2, a crossover (mixing in all four) and noise."""
    rng = np.random.default_rng(seed)
    n, r, z_dim = STEP_NETS["batch"], STEP_NETS["resolution"], STEP_NETS["z_dim"]
    shapes = common.noise_shapes(r, n)
    inputs = {"seed": np.array(seed), "lr": np.array(lr), "r1_every": np.array(r1_every), "gamma": np.array(gamma),
              "ema_beta": np.array(ema_beta), "n_noise": np.array(len(shapes))}
    keys = [f"{p}{it}" for it in (1, 2) for p in "dg"]
    for key, crossover in zip(keys, crossovers):
        inputs[f"z1_{key}"], inputs[f"z2_{key}"] = (rng.standard_normal((n, z_dim)).astype(np.float32) for _ in "12")
        inputs[f"crossover_{key}"] = np.array(crossover)
        for i, s in enumerate(shapes):
            inputs[f"noise{i}_{key}"] = rng.standard_normal(s).astype(np.float32)
    for it in (1, 2):
        inputs[f"reals{it}"] = np.tanh(2 * rng.standard_normal((n, r, r, 1))).astype(np.float32)
    return Case(f"two steps from seeded networks (seed {seed}; {r}x{r} images, batch {n}, z and w of 16), "
                f"r1_every {r1_every} (R1 on step 1 only), gamma {gamma:g}, ema_beta {ema_beta:g}, "
                f"gradient descent of rate {lr:g}", inputs)


def framework(track: str):
    """The track's trusted step module (torch_step or tf_step), imported in the worker's framework."""
    if track == "torch":
        from . import torch_step as fw
    else:
        from . import tf_step as fw
    return fw


def _off(obs: dict, rep: dict, start: dict, net: str) -> list[float]:
    """Each weight's distance to the replayed step's, relative to how far that step moved it (at least FLOOR of
    how far it moved the whole network: a weight the step barely moves is judged at the network's scale)."""
    whole = float(np.sqrt(sum(np.sum((np.float64(r) - s) ** 2) for r, s in zip(rep[net], start[net]))))
    return [float(np.linalg.norm(np.float64(o) - r)) / max(float(np.linalg.norm(np.float64(r) - s)), FLOOR * whole,
                                                           1e-12)
            for o, r, s in zip(obs[net], rep[net], start[net])]


def _worst(observed: list, replayed: list, starts: list) -> float:
    return max(max(_off(o, r, s, net)) for o, r, s in zip(observed, replayed, starts) for net in NETS)


def _where(fw, nets, observed: list, replayed: list, starts: list) -> str:
    """Which weights of which network differ first, and by how much."""
    for it, (obs, rep, start) in enumerate(zip(observed, replayed, starts), 1):
        parts = []
        for net in NETS:
            off = sorted([(d, n) for n, d in zip(fw.names(nets[net]), _off(obs, rep, start, net)) if d > TOLERANCE],
                         reverse=True)
            if off:
                parts.append(f"{net}: {len(off)} of its {len(obs[net])} weights, most "
                             + ", ".join(f"{n} ({d:.2g})" for d, n in off[:3]))
        if parts:
            return (f"after step {it}, " + "; ".join(parts) + " (each weight's distance to the reference's, as a "
                    "fraction of how far the reference step moved it)")
    return "the weights agree"


def judge_step(track: str):
    def judge_one(inputs, replies, key):
        arrays = {k: np.asarray(v) for k, v in ok_reply(replies, key).arrays.items()}
        if not float(arrays.get("finite", np.zeros(1)).reshape(-1)[0]):
            raise Mistake("NaN or infinite weights after your training_step")
        if not float(arrays.get("reals_kept", np.zeros(1)).reshape(-1)[0]):
            raise Mistake("training_step changed the real images it was given (in place): leave `reals` as they are")
        if not np.all(arrays.get("keys", np.zeros(4)) == 1):
            raise Mistake("training_step must return a dict of Python floats with 'd_loss', 'g_loss' and 'r1' "
                          "(r1 0.0 on the steps without it)")
        fw = framework(track)
        cfg = {k: v for k, v in STEP_NETS.items() if k != "batch"}
        nets = fw.make_nets(cfg, int(inputs["seed"]))
        shapes = {k: [tuple(t.shape) for t in fw.tensors(nets[k])] for k in NETS}
        states = [{k: unflatten(arrays.get(f"{p}_{k}", np.zeros(0)), shapes[k], f"{k} {what}") for k in NETS}
                  for p, what in (("before", "before the steps"), ("after1", "after step 1"),
                                  ("after2", "after step 2"))]
        lr = float(inputs["lr"])

        def replay(v):
            for k in NETS:
                assign(fw.tensors(nets[k]), states[0][k])
            return fw.trusted_steps(nets, inputs, v, lr)

        trusted = replay(TRUSTED)
        starts = [states[0], trusted[0]]
        if _worst(states[1:], trusted, starts) < TOLERANCE:
            return None
        where = _where(fw, nets, states[1:], trusted, starts)
        matches = []
        for v, message in VARIANTS:
            replayed = replay(v)
            if _worst(states[1:], replayed, [states[0], replayed[0]]) < TOLERANCE:
                matches.append(message)
        if len(matches) == 1:
            raise Mistake(matches[0])
        if matches:       # the same weights on this input: no cause can be told apart
            raise Mistake("your steps match more than one known mistake on this input: " + "; or ".join(matches))
        raise Mistake(f"the weights after your steps differ from the reference step's in a way none of the known "
                      f"mistakes explains: {where}")
    return judge_one

