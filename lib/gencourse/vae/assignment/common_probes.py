"""What both VAE probes share (run in the worker): substitutions, the trusted loop, the numpy parts."""

from __future__ import annotations

import numpy as np

from ...grading.judging import unflatten
from ...grading.probing import keeping, part, plain, scalar, shape_table, substituted  # noqa: F401 (the track probes use it from here)
from ...weights import assign, to_flat

METRICS = ("loss", "recon", "kl")
METHODS = ("linear", "normal")


def split(flat, tensors) -> None:
    """Load one flat float32 array into `tensors`, in order."""
    assign(tensors, unflatten(flat, [tuple(t.shape) for t in tensors], "the grader's weights"))


def metrics_of(logs) -> dict:
    """A step's returned metrics as [loss, recon, kl] (NaN where a name is missing) and which were there."""
    logs = logs if isinstance(logs, dict) else {}
    values = [plain(logs[k]).reshape(-1)[0] if k in logs and np.size(plain(logs[k])) == 1 else np.nan
              for k in METRICS]
    return {"values": np.array(values, np.float64), "present": np.array([k in logs for k in METRICS], np.float64)}


def trusted_config(conditional, learning_rate, seed):
    """The VAEConfig of the grader's short trainings (latent 2), from the check's arrays."""
    from ..common import VAEConfig

    return VAEConfig(latent_dim=2, conditional=conditional, learning_rate=scalar(learning_rate, float),
                     seed=scalar(seed))


def train_with_parts(trainer, x, labels, epochs, batch_size, seed) -> dict:
    """Train `trainer` (the student's parts plugged in); encoder and decoder back as one flat float32
    array each (`weight_tensors` order) and `history`: each epoch's (loss, recon, kl)."""
    x, labels = np.asarray(x, np.float32), None if labels is None else np.asarray(labels, np.int64)
    history = []
    for epoch in range(scalar(epochs)):
        logs = trainer.train_epoch(x, labels, scalar(batch_size), scalar(seed) + epoch)
        history.append([float(logs.get(k, np.nan)) for k in METRICS])
    out = {net: to_flat(trainer.weight_tensors(net)) for net in trainer.NETS}
    out["history"] = np.array(history, dtype=np.float64)
    return out


# ------------------------------------------------------------------ the framework-neutral parts

def latent_ranges(ns, z, labels, n_classes, percentile):
    fn = part(ns, "latent_ranges")
    z, labels = np.array(z, dtype=np.float32), np.array(labels, dtype=np.int64)
    p = scalar(percentile, float)
    extra = {} if p == 0 else {"percentile": p}
    ranges, changed = keeping(fn, z, labels, scalar(n_classes), **extra)
    return {"ranges": plain(ranges), "changed": changed[:2]}


def latent_grid(ns, n, low, high, method):
    fn = part(ns, "latent_grid")
    grid = fn(scalar(n), tuple(np.asarray(low, np.float64)), tuple(np.asarray(high, np.float64)),
              method=METHODS[scalar(method)])
    return {"grid": plain(grid)}


def manifold(ns, decode, codes, n):
    """The student's `decode_manifold` with a trusted decoder's `decode` (codes [N, 2] -> [N, 28, 28])."""
    image = part(ns, "decode_manifold")(decode, np.asarray(codes, np.float64), scalar(n))
    return {"image": plain(image)}
