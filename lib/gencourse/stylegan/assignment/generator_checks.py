"""Checks of the student's whole generator (grader side): the shipped weights in it, in run order.

The worker builds the student's `Generator(z_dim, w_dim, mapping_layers, channels)` at the shipped
model's sizes (gencourse.stylegan.pretrained) and loads the shipped Gs's weights into it in the order
its layers run (grading.tracing); the grader runs the shipped generator in numpy (generator_oracle:
no framework in the grader's process) on the same latents and noise, and judges:

- the network, every layer's output against the oracle's (grading.networks names the first that
  departs, and how), and mixing and truncation inside it (the images for two latents, a crossover,
  psi and a cutoff, the usual mistakes named from the oracle's other calls); for these two the
  package's earlier parts (the equalized dense layer to truncate) stand in the student's
  namespace, so that they judge the Generator cell alone (the parts have checks of their own);
- what it draws, every part the student's own: the Fréchet distance of 500 digits
  (checks.shipped_scorer, the pass mark of checks.ShippedSetup, calibrated on the same scorer).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...grading import Case, Mistake, close, differences, first_match, ok_reply
from . import generator_oracle as oracle

N_DRAWN = 500


def student_args() -> tuple:
    """Generator(z_dim, w_dim, mapping_layers, channels) at the shipped model's sizes."""
    from .. import common
    from ..pretrained import config

    c = config()
    return c.z_dim, c.w_dim, c.mapping_layers, [c.fmaps(r) for r in common.resolutions(c.resolution)]


@lru_cache(maxsize=2)
def trusted(track: str):
    """The package's generator holding the shipped weights (Gs), in the track's framework (the worker's)."""
    from .. import pretrained

    return pretrained.load(track).generator_ema


def _latents(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, 5]).standard_normal((n, student_args()[0])).astype(np.float32)


@lru_cache(maxsize=8)
def reference(track: str, seed: int, n: int):
    """The shipped generator's run (grading.networks.Reference) on the latents and noise of `seed`, computed
    in numpy (generator_oracle): the grader loads no framework."""
    from ...grading.networks import reference_from_arrays
    from ..plugging import drive_inputs

    z, *noise = drive_inputs(track, _latents(seed, n), seed)
    images, record = oracle.run(track, z, noise)
    return reference_from_arrays(oracle.groups(track), record, images)


def network_case(track: str, seed: int, n: int) -> Case:
    """Latents, a noise seed, and the shipped weights in the package generator's run order."""
    from ...grading.networks import pack

    ref = reference(track, seed, n)
    flat, table = pack(ref.weights)
    return Case(f"{n} latents and noise of seed {seed}, the shipped weights",
                {"z": _latents(seed, n), "noise_seed": np.array(seed), "weights_flat": flat,
                 "weights_table": table, "structure": ref.structure})


def judge_network_of(track: str):
    def judge_one(inputs, replies, key):
        from ...grading.networks import judge_network

        ok_reply(replies, key)
        ref = reference(track, int(inputs["noise_seed"]), len(inputs["z"]))
        return judge_network(ref, replies[key].arrays, channel_axis=1 if track == "torch" else -1, what="generator")
    return judge_one


def styles_case(seed: int, n: int, crossover: int, psi: float, cutoff) -> Case:
    return Case(f"{n} pairs of latents, crossover {crossover}, psi {psi:g}, cutoff {cutoff}",
                {"z": _latents(seed, n), "z2": _latents(seed + 1, n), "crossover": np.array(crossover),
                 "psi": np.array(psi), "cutoff": np.array(-1 if cutoff is None else cutoff),
                 "noise_seed": np.array(seed)})


def package_images(track: str, z, z2, crossover, psi, cutoff, noise_seed) -> np.ndarray:
    """The shipped generator's images [n, H, W] for these latents and the noise of `noise_seed` (numpy)."""
    from ..plugging import drive_inputs

    _, *noise = drive_inputs(track, z, noise_seed)
    images, _ = oracle.run(track, z, noise, z2=z2, crossover=crossover, psi=psi, cutoff=cutoff)
    return images[:, 0] if track == "torch" else images[..., 0]


def judge_styles_of(track: str):
    def judge_one(inputs, replies, key):
        reply = ok_reply(replies, key)
        z, z2, c, psi = inputs["z"], inputs["z2"], int(inputs["crossover"]), float(inputs["psi"])
        cutoff = None if int(inputs["cutoff"]) < 0 else int(inputs["cutoff"])
        seed = int(inputs["noise_seed"])
        got = np.asarray(reply.arrays.get("images", np.zeros(0)), np.float64)
        images = lambda *a: package_images(track, *a, seed)  # noqa: E731
        expected = images(z, z2, c, psi, cutoff)
        if got.shape != expected.shape:
            raise Mistake(f"your generator drew images of shape {list(got.shape)} for {len(z)} latents; expected "
                          f"{list(expected.shape)} (one channel)")
        if close(got, expected, rtol=1e-3, atol=2e-3):
            return None
        first_match(got, [
            (images(z, None, None, psi, cutoff), "z2 was not used: given z2, the layers from `crossover` on take "
                                                 "the styles of w(z2) (your mix_styles)"),
            (images(z2, z, c, psi, cutoff), "the latents are swapped: the layers before `crossover` take w(z), "
                                            "the later ones w(z2)"),
            (images(z, z2, c, 1.0, None), "no truncation: with psi != 1 your truncate pulls the styles toward "
                                          "w_avg"),
            (images(z, z2, c, psi, None), f"the cutoff is ignored: only the layers below {cutoff} are truncated"),
        ], rtol=1e-3, atol=2e-3)
        raise Mistake("with the shipped weights loaded, your generator's mixed and truncated images differ from "
                      f"StyleGAN's: {differences(got, expected)}")
    return judge_one


def draw_case(seed: int) -> Case:
    return Case(f"{N_DRAWN} latents and noise of seed {seed}", {"z": _latents(seed, N_DRAWN),
                                                              "noise_seed": np.array(seed)})


def judge_draw(threshold: float, note: str):
    def judge_one(inputs, replies, key):
        from .checks import shipped_scorer

        images = np.asarray(ok_reply(replies, key).arrays.get("images", np.zeros(0)), np.float64)
        if images.shape != (N_DRAWN, 32, 32) or not np.all(np.isfinite(images)):
            raise Mistake(f"your generator with the shipped weights drew {list(images.shape)} images"
                          + ("" if np.all(np.isfinite(images)) else " with NaN or infinite pixels")
                          + f"; expected [{N_DRAWN}, 32, 32] finite ones")
        fd = shipped_scorer().score(images)
        said = (f"Fréchet distance {fd:.1f} of {N_DRAWN} digits drawn by your generator with the shipped weights "
                f"(pass mark {threshold:.0f}; {note})")
        if fd <= threshold:
            return said
        raise Mistake(said + ": with all your parts in it, it does not draw the digits the shipped model "
                             "learned; the network check (your Generator alone) and those of your parts say where")
    return judge_one
