"""What both CycleGAN probes share (run in the worker): the trusted loop with the student's parts."""

from __future__ import annotations

import numpy as np

from ...grading.probing import part, scalar
from ...weights import to_flat


class PairedCycleLoss:
    """The student's two-direction cycle loss, called by a loop that asks for one direction at a time.

    The trusted loops call `cycle_consistency_loss(real, reconstructed, lambda)`
    twice per generator step, A then B. This keeps the first pair, returns a
    zero for it, and returns the student's loss of both directions on the
    second call, so the summed generator loss holds exactly the student's term.
    """

    def __init__(self, student_loss, zero):
        self.student_loss, self.zero = student_loss, zero    # zero(): a scalar tensor of the framework
        self.pending = None

    def __call__(self, real, reconstructed, lambda_cycle):
        if self.pending is None:
            self.pending = (real, reconstructed)
            return self.zero()
        (real_a, rec_a), self.pending = self.pending, None
        return self.student_loss(real_a, rec_a, real, reconstructed, lambda_cycle)


def student_parts(ns, discriminator: str, zero) -> dict:
    """The `parts` of a trusted CycleGAN: the student's losses and discriminator (named `discriminator`)."""
    return {"cycle_consistency_loss": PairedCycleLoss(part(ns, "cycle_consistency_loss"), zero),
            "identity_loss": part(ns, "identity_loss"), "PatchDiscriminator": part(ns, discriminator)}


def digits_config(batch_size, seed, lambda_identity):
    from ..common import CycleGANConfig
    from ..run import DIGITS_DEFAULTS

    return CycleGANConfig(**{**DIGITS_DEFAULTS, "batch_size": scalar(batch_size), "seed": scalar(seed),
                             "lambda_identity": scalar(lambda_identity, float)})


def train_with_parts(track: str, ns, discriminator: str, zero, a, b, iterations, batch_size, seed,
                     lambda_identity) -> dict:
    """`iterations` steps of the trusted loop of `track` with the student's losses and PatchGAN (named
    `discriminator` in the notebook), on a and b batch by batch; G and F back as one flat float32
    array each (`weight_tensors` order), and `history`: each iteration's total generator and
    discriminator losses. Without XLA in Keras: 30 iterations of batch 8 took 35 s in all on one
    thread, against 65 s with XLA's compile of the first step (53 s)."""
    from ..run import make_trainer

    model = make_trainer(track, digits_config(batch_size, seed, lambda_identity), "cpu",
                         student_parts(ns, discriminator, zero), jit=False)
    bs, history = scalar(batch_size), []
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    for i in range(scalar(iterations)):
        logs = model.train_step(a[i * bs:(i + 1) * bs], b[i * bs:(i + 1) * bs])
        history.append([sum(v for k, v in logs.items() if not k.startswith("D_")), logs["D_A"] + logs["D_B"]])
    out = {net: to_flat(model.weight_tensors(net)) for net in ("G", "F")}
    out["history"] = np.array(history, dtype=np.float64)
    return out
