"""VAE benchmark: a table per track of training and inference speed, peak memory and quality.

Protocol (the issue's): the shared MNIST test set split 8,000 / 2,000, batch 128,
Adam 1e-3, latent 2, `--epochs` epochs (default 30); each track runs in a
process of its own so that its peak memory (max RSS) is its own.
Usage: python benchmarks/vae.py [--epochs 30] [--tracks tf,torch]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
# Reference figures on a 2-core machine (the issue): plain Keras / plain PyTorch.
BASELINE = {"tf": {"epoch_s": 3.1, "neg_elbo": 165.0}, "torch": {"epoch_s": 3.7, "neg_elbo": 166.0}}


def measure(track: str, epochs: int, data_dir: Path) -> dict:
    from gencourse.data.mnist import read_folder
    from gencourse.vae.common import VAEConfig, get_track
    from gencourse.vae.run import to_float

    data = read_folder(data_dir)
    x, y, xt, yt = to_float(data.x_train), data.y_train, to_float(data.x_test), data.y_test
    t = get_track(track, VAEConfig(), "cpu")
    t.train_epoch(x[:1280], y[:1280], 128, seed=99)        # warm-up: graph tracing, allocators
    t = get_track(track, VAEConfig(), "cpu")
    times = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        t.train_epoch(x, y, 128, seed=epoch)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(3):
        t.decode(t.encode(xt, yt)[0], yt)
    infer = 3 * len(xt) / (time.perf_counter() - t0)
    ev = t.evaluate(xt, yt)
    return {"track": track, "epoch_s": float(np.median(times)), "train_img_s": len(x) / float(np.median(times)),
            "infer_img_s": infer, "neg_elbo": ev["loss"], "recon": ev["recon"], "kl": ev["kl"],
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "epochs": epochs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--tracks", default="tf,torch")
    ap.add_argument("--data-dir", default=str(SHARED))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.epochs, Path(args.data_dir))))
        return
    rows = []
    for track in args.tracks.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", track, "--epochs", str(args.epochs),
                              "--data-dir", args.data_dir], capture_output=True, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if out.returncode:
            sys.exit(f"{track} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"VAE, 8,000 train / 2,000 held-out digits, batch 128, {args.epochs} epochs, CPU threads: {os.cpu_count()}")
    head = (f"{'track':6} {'s/epoch':>8} {'base':>6} {'speedup':>8} {'train img/s':>12} {'infer img/s':>12} "
            f"{'peak MB':>8} {'neg-ELBO':>9} {'base':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        b = BASELINE[r["track"]]
        print(f"{r['track']:6} {r['epoch_s']:8.2f} {b['epoch_s']:6.1f} {b['epoch_s'] / r['epoch_s']:7.2f}x "
              f"{r['train_img_s']:12.0f} {r['infer_img_s']:12.0f} {r['peak_mb']:8.0f} "
              f"{r['neg_elbo']:9.1f} {b['neg_elbo']:6.1f}")


if __name__ == "__main__":
    main()
