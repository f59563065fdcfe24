"""The StyleGAN shipped with the package: Gs (the averaged generator) of the default
`gencourse train stylegan --track torch` run, so that a notebook or
`gencourse train stylegan --pretrained` can draw samples, style mixing, truncation,
noise resampling and edits without training.

gs.npz holds the torch generator's named float32 arrays (convert.py, no pickle);
metrics.json the exact command, seed, budget, machine, wall time, configuration and
the metrics the run measured; README.md says the same in words. Both tracks load the
same arrays (Keras through convert.to_keras) and draw the same images.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import convert, plugging
from ..common import StyleGANConfig

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "gs.npz"
METRICS = HERE / "metrics.json"


def metrics() -> dict:
    """What the shipped run recorded (command, budget, wall time, Fréchet distance, ...)."""
    return json.loads(METRICS.read_text())


def config() -> StyleGANConfig:
    return StyleGANConfig(**metrics()["config"])


def load(track: str = "torch", device: str = "cpu", adain=None, noise=None):
    """A sampler of the shipped Gs (`config`, `mapping`, `synthesize`, `w_avg`) that
    gencourse.stylegan.sampling and .editing accept, in the "torch" or "tf" track.

    `adain`, `noise`: classes to draw with instead of the package's in every layer
    (a student's AdaptiveInstanceNorm(channels, w_dim) and NoiseInjection(channels));
    the shipped weights go into them by position (plugging.py)."""
    cfg, arrays = config(), convert.load(WEIGHTS)
    if track == "torch":
        from .. import torch_models as tm
        from ..torch_track import TorchSampler

        generator = tm.build_generator(cfg)
        if adain is None and noise is None:
            convert.to_torch(arrays, generator)
        else:
            _plugged_torch(generator, cfg, arrays, adain or tm.AdaptiveInstanceNorm, noise or tm.NoiseInjection)
        return TorchSampler(cfg, generator, "cuda" if device == "gpu" else "cpu")
    if track == "tf":
        from .. import tf_models as km
        from ..tf_track import KerasSampler

        generator = km.build_generator(cfg)
        if adain is None and noise is None:
            convert.to_keras(arrays, generator)
        else:
            _plugged_keras(generator, cfg, arrays, adain or km.AdaptiveInstanceNorm, noise or km.NoiseInjection)
        return KerasSampler(cfg, generator)
    raise ValueError(f"track must be 'tf' or 'torch', got {track!r}")


def into(generator, track: str = "torch"):
    """A sampler (as `load` gives) of another generator, a student's, holding the shipped weights.

    They go into its weights in the order its layers run (plugging.load_run_order), so any
    generator that computes what the package's does, written in its own way, draws the same
    digits. `generator` needs `mapping(z)`, `synthesis(ws, noise)` and `w_avg`."""
    cfg = config()
    shipped = load(track).generator_ema
    plugging.load_run_order(generator, shipped, track, cfg.z_dim)
    if track == "torch":
        from ..torch_track import TorchSampler

        return TorchSampler(cfg, generator)
    from ..tf_track import KerasSampler

    return KerasSampler(cfg, generator)


def _plugged_torch(generator, c: StyleGANConfig, arrays: dict, adain_cls, noise_cls) -> None:
    import torch

    trusted = list(generator.state_dict(keep_vars=True).values())
    swapped = plugging.plug(generator.synthesis, adain_cls, noise_cls, c.w_dim)
    targets = plugging.ordered(trusted, swapped, lambda m: list(m.state_dict(keep_vars=True).values()))
    plugging.check_fits(targets, [a.shape for a in arrays.values()], "the shipped generator with your layers")
    with torch.no_grad():
        for t, a in zip(targets, arrays.values()):
            t.copy_(torch.from_numpy(a))


def _plugged_keras(generator, c: StyleGANConfig, arrays: dict, adain_cls, noise_cls) -> None:
    import numpy as np

    from ..common import sample_noise

    trusted = list(generator.trainable_weights)
    swapped = plugging.plug(generator.synthesis, adain_cls, noise_cls, c.w_dim)
    try:        # builds layers that make their weights in build(); a misfit is named below first
        generator.synthesis(np.zeros((1, c.num_layers, c.w_dim), np.float32),
                            sample_noise(np.random.default_rng(0), c.resolution, 1))
        failed = None
    except Exception as e:  # noqa: BLE001 (re-raised below when the weights fit)
        failed = e
    targets = plugging.ordered(trusted, swapped, lambda layer: list(layer.trainable_weights))
    params = [convert.keras_layout(k, v) for k, v in arrays.items() if k != "w_avg"]
    plugging.check_fits(targets, [a.shape for a in params], "the shipped generator with your layers")
    if failed is not None:
        raise failed
    for t, a in zip(targets, params):
        t.assign(a)
    generator.w_avg.assign(arrays["w_avg"])


def seed_spread(seeds=(1, 2, 3, 4, 5), n: int = 2000) -> dict:
    """The shipped Gs's Fréchet distance over sampling seeds (the package classifier of seed
    0, the embedded digits): the noise a re-scoring elsewhere may show, and its margin
    (3 standard deviations, at least 1), what tests/test_stylegan_pretrained.py allows."""
    import numpy as np

    from ...data import load_mnist
    from .. import run

    data = load_mnist()
    gs, clf = load("torch"), run.classifier_for(data, 0)
    fds = [run.evaluate(gs, data, clf, n, s)["frechet_distance"] for s in seeds]
    return {"seeds": list(seeds), "fid_samples": n, "frechet_distance": fds,
            "std": float(np.std(fds)), "margin": max(1.0, 3 * float(np.std(fds)))}


def export(run_dir, command: str, machine: str) -> dict:
    """Write gs.npz and metrics.json from a finished torch run folder (its checkpoint's
    generator_ema and its metrics.json, plus the score's spread over sampling seeds);
    returns the metrics written."""
    import torch

    run_dir = Path(run_dir)
    state = torch.load(run_dir / "checkpoint" / "torch_stylegan.pt", map_location="cpu",
                       weights_only=True)["generator_ema"]
    convert.save(WEIGHTS, {k: v.contiguous().numpy() for k, v in state.items()})
    m = json.loads((run_dir / "metrics.json").read_text())
    keep = ("track", "epochs", "steps_per_epoch", "steps", "config", "data", "n_train",
            "n_test", "params", "train_seconds_this_session", "classifier_accuracy",
            "fid_samples", "frechet_distance", "frechet_distance_psi_0.7", "frechet_floor",
            "class_fractions", "noise", "editing")
    saved = {"command": command, "machine": machine, "seed": m["config"]["seed"],
             **{k: m[k] for k in keep if k in m}}
    METRICS.write_text(json.dumps(saved, indent=2) + "\n")
    saved["seed_spread"] = seed_spread(n=m["fid_samples"])
    METRICS.write_text(json.dumps(saved, indent=2) + "\n")
    return saved
