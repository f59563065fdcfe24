"""What both VAE probes share (run in the worker): the trusted loop with the student's parts."""

from __future__ import annotations

import numpy as np

from ...grading.probing import part, scalar
from ...weights import to_flat


def train_with_parts(track: str, ns, x, epochs, batch_size, learning_rate, seed) -> dict:
    """The student's `Sampling` and `kl_divergence` in the trusted loop of `track`; the trained
    encoder and decoder back as one flat float32 array each (`Trainer.weight_tensors` order), and
    `history`: each epoch's (loss, recon, kl)."""
    from ..common import VAEConfig, make_trainer

    config = VAEConfig(latent_dim=2, learning_rate=scalar(learning_rate, float), seed=scalar(seed))
    trainer = make_trainer(track, config, "cpu", sampling=part(ns, "Sampling")(),
                           kl_fn=part(ns, "kl_divergence"))
    x = np.asarray(x, dtype=np.float32)
    history = []
    for epoch in range(scalar(epochs)):
        logs = trainer.train_epoch(x, None, scalar(batch_size), scalar(seed) + epoch)
        history.append([logs["loss"], logs["recon"], logs["kl"]])
    out = {net: to_flat(trainer.weight_tensors(net)) for net in trainer.NETS}
    out["history"] = np.array(history, dtype=np.float64)
    return out
