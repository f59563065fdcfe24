"""What both CycleGAN probes share (run in the worker): the student's training_step on the package's networks.

`step_probe` runs two iterations from seeded weights with gradient descent and the package's losses in
place of the student's (so that the step is judged alone; step_checks.py); `train_probe` runs the short
training with the student's own losses and step. Each track passes its adapters: `fw` (torch_step /
tf_step), the optimizers, the pool class and the losses.
"""

from __future__ import annotations

import numpy as np

from ...grading.probing import part, scalar
from ...weights import to_flat
from .loss_checks import GAN_MODES

NETS = ("G", "F", "D_A", "D_B")
LOSS_NAMES = ("generator_adversarial_loss", "discriminator_loss", "cycle_consistency_loss", "identity_loss",
              "semantic_consistency_loss")


def finite(arrays: dict, *losses: str) -> dict:
    """The reply with non-finite values replaced by zeros, and a flag `<loss>_finite` per loss (the grader
    reads back finite arrays only; a NaN or infinite loss is a finding the judge words)."""
    out = {k: np.nan_to_num(np.asarray(v, np.float64), nan=0.0, posinf=0.0, neginf=0.0) for k, v in arrays.items()}
    out.update({f"{k}_finite": np.array(float(np.all(np.isfinite(arrays[k])))) for k in losses})
    return out


def _flats(fw, nets, prefix: str) -> dict:
    return {f"{prefix}_{k}": to_flat(fw.tensors(nets[k])) for k in NETS}


def _result_flags(result) -> np.ndarray:
    """[has 'cycle', has 'D_A', has 'D_B', every value a float]."""
    if not isinstance(result, dict):
        return np.zeros(4)
    return np.array([k in result for k in ("cycle", "D_A", "D_B")]
                    + [all(isinstance(v, float) for v in result.values())], np.float64)


def step_probe(fw, ns, inputs: dict, *, losses: dict, sgd, pool_cls, graph_error=()) -> dict:
    cfg = {k: scalar(inputs[k]) for k in ("channels", "ngf", "n_blocks", "ndf", "n_layers")}
    nets = fw.make_nets(cfg, scalar(inputs["seed"]))
    out = _flats(fw, nets, "before")
    lr = scalar(inputs["lr"], float)
    opt_g = sgd(fw.tensors(nets["G"]) + fw.tensors(nets["F"]), lr)
    opt_d = sgd(fw.tensors(nets["D_A"]) + fw.tensors(nets["D_B"]), lr)
    pools = []
    for i, side in enumerate("ab"):
        pool = pool_cls(len(inputs[f"pool_{side}"]), scalar(inputs["pool_seed"]) + i)
        pool.pool.images = [im.copy() for im in np.asarray(inputs[f"pool_{side}"], np.float32)]
        pools.append(pool)
    weight = scalar(inputs["semantic_weight"], float)
    classifiers = [fw.linear_classifier(inputs[f"cls_w{s}"], inputs[f"cls_c{s}"]) for s in "ab"] if weight else None
    step = part(ns, "training_step")
    saved = {k: ns[k] for k in LOSS_NAMES if k in ns}
    ns.update(losses)
    try:
        flags = []
        for it in (1, 2):
            semantic = (*classifiers, fw.labels(inputs[f"la{it}"]), fw.labels(inputs[f"lb{it}"]), weight) \
                if weight else None
            try:
                result = step(nets["G"], nets["F"], nets["D_A"], nets["D_B"], opt_g, opt_d,
                              fw.images(inputs[f"a{it}"]), fw.images(inputs[f"b{it}"]), pools[0], pools[1],
                              lambda_cycle=scalar(inputs["lambda_cycle"], float),
                              lambda_identity=scalar(inputs["lambda_identity"], float),
                              gan_mode=GAN_MODES[scalar(inputs["gan_mode"])], semantic=semantic)
            except graph_error as e:
                if "backward through the graph a second time" in str(e):
                    return {**out, "graph_error": np.ones(1)}
                raise
            flags.append(_result_flags(result))
            out.update(_flats(fw, nets, f"after{it}"))
        out["keys"] = np.min(flags, axis=0)
    finally:
        for k in LOSS_NAMES:
            ns.pop(k, None)
        ns.update(saved)
    return out


DIGITS_NETS = dict(channels=1, ngf=16, n_blocks=6, ndf=16, n_layers=2)   # run.DIGITS_DEFAULTS' networks


def train_probe(fw, ns, a, b, iterations, batch_size, seed, lambda_identity, *, adam, pool_cls) -> dict:
    """`iterations` of the student's training_step, with their losses, on the package's digits networks (Adam
    2e-4, beta1 0.5, pools of 50); G and F back as one flat float32 array each, and each iteration's summed
    generator and discriminator losses."""
    nets = fw.make_nets(DIGITS_NETS, scalar(seed))
    opt_g = adam(fw.tensors(nets["G"]) + fw.tensors(nets["F"]))
    opt_d = adam(fw.tensors(nets["D_A"]) + fw.tensors(nets["D_B"]))
    pool_a, pool_b = pool_cls(50, 2 * scalar(seed)), pool_cls(50, 2 * scalar(seed) + 1)
    step = part(ns, "training_step")
    bs, history = scalar(batch_size), []
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    for i in range(scalar(iterations)):
        logs = step(nets["G"], nets["F"], nets["D_A"], nets["D_B"], opt_g, opt_d, fw.images(a[i * bs:(i + 1) * bs]),
                    fw.images(b[i * bs:(i + 1) * bs]), pool_a, pool_b, lambda_cycle=10.0,
                    lambda_identity=scalar(lambda_identity, float), gan_mode="lsgan", semantic=None)
        history.append([sum(float(v) for k, v in logs.items() if not k.startswith("D_")),
                        float(logs.get("D_A", 0.0)) + float(logs.get("D_B", 0.0))])
    out = {net: to_flat(fw.tensors(nets[net])) for net in ("G", "F")}
    out["history"] = np.array(history, dtype=np.float64)
    return out
