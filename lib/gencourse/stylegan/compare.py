"""The Fréchet distance of a VAE or CVAE run's samples, for comparison with StyleGAN's.

A `gencourse train vae|cvae` output folder holds metrics.json (model, track,
latent size) and checkpoint/; its decoder is rebuilt, loaded, and fed z ~ N(0, I)
(the CVAE: digits 0-9 in equal numbers). The decoder's Bernoulli means are the
images, as in the VAE figures; the same FrechetScorer as StyleGAN's samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def vae_samples(run_dir, n: int, seed: int = 0, device: str = "auto") -> tuple[np.ndarray, dict]:
    """n decoded digits [n, 28, 28] in [0, 1] from the run in `run_dir`, and its metrics.json."""
    from ..vae.common import VAEConfig, make_trainer

    run_dir = Path(run_dir)
    meta_file = run_dir / "metrics.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"--compare {run_dir}: no metrics.json (not a finished "
                                f"`gencourse train vae|cvae` folder)")
    meta = json.loads(meta_file.read_text())
    if meta.get("model") not in ("vae", "cvae"):
        raise ValueError(f"--compare {run_dir}: model {meta.get('model')!r} is not vae or cvae")
    config = VAEConfig(latent_dim=meta["latent_dim"], conditional=meta["model"] == "cvae")
    track = make_trainer(meta["track"], config, device)
    track.load(run_dir / "checkpoint")
    rng = np.random.default_rng([seed, 5])
    z = rng.standard_normal((n, meta["latent_dim"])).astype(np.float32)
    return track.decode(z, np.arange(n) % 10), meta


def vae_frechet(run_dir, scorer, n: int, seed: int = 0, device: str = "auto") -> dict:
    """{"model", "track", "frechet_distance"} of the run's samples under `scorer`."""
    images, meta = vae_samples(run_dir, n, seed, device)
    return {"model": meta["model"], "track": meta["track"],
            "frechet_distance": scorer.score(images)}
