"""VAE benchmark: a table per track of training and inference speed, peak memory and quality.

Protocol (the issue's): the shared MNIST test set split 8,000 / 2,000, batch 128,
Adam 1e-3, latent 2, `--epochs` epochs (default 30); each track runs in a
process of its own so that its peak memory (max RSS) is its own.

Speed is compared with two plain implementations of the same architecture run on
this machine in the same session (`plain_keras`, `plain_torch` below: a model,
a loss, a loop, nothing else), since a 2-core machine's speed varies from one
day to the next; the issue's figures (3.1 s and 3.7 s per epoch, neg-ELBO 165 and
166 after 30 epochs) are printed beside them.
Usage: python benchmarks/vae.py [--epochs 30] [--tracks tf,torch] [--baseline-epochs 4]
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
    from gencourse.vae.common import VAEConfig, make_trainer
    from gencourse.vae.run import to_float

    data = read_folder(data_dir)
    x, y, xt, yt = to_float(data.x_train), data.y_train, to_float(data.x_test), data.y_test
    t = make_trainer(track, VAEConfig(), "cpu")
    t.train_epoch(x[:1280], y[:1280], 128, seed=99)        # warm-up: graph tracing, allocators
    t = make_trainer(track, VAEConfig(), "cpu")
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


def _split(data_dir: Path):
    from gencourse.data.mnist import read_folder

    return (read_folder(data_dir).x_train.astype(np.float32) / 255.0).reshape(-1, 28, 28)


def plain_keras(epochs: int, data_dir: Path) -> list[float]:
    """Seconds per epoch of a textbook Keras VAE (fit on a numpy array, custom train_step)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow as tf
    from keras import layers, ops

    x = _split(data_dir)[..., None]
    inp = keras.Input((28, 28, 1))
    h = layers.Conv2D(32, 3, 2, "same", activation="relu")(inp)
    h = layers.Conv2D(64, 3, 2, "same", activation="relu")(h)
    h = layers.Dense(16, activation="relu")(layers.Flatten()(h))
    encoder = keras.Model(inp, [layers.Dense(2)(h), layers.Dense(2)(h)])
    z_in = keras.Input((2,))
    h = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64, activation="relu")(z_in))
    h = layers.Conv2DTranspose(64, 3, 2, "same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, 2, "same", activation="relu")(h)
    decoder = keras.Model(z_in, layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h))

    class Plain(keras.Model):
        def __init__(self):
            super().__init__()
            self.seed = keras.random.SeedGenerator(0)

        def train_step(self, data):
            with tf.GradientTape() as tape:
                mu, log_var = encoder(data)
                z = mu + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mu), seed=self.seed)
                recon = ops.sum(keras.losses.binary_crossentropy(data, decoder(z)), axis=(1, 2))
                kl = -0.5 * ops.sum(1 + log_var - ops.square(mu) - ops.exp(log_var), axis=1)
                loss = ops.mean(recon + kl)
            weights = encoder.trainable_weights + decoder.trainable_weights
            self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
            return {"loss": loss}

    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model = Plain()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=epochs + 1, batch_size=128, verbose=0, callbacks=[Clock()])
    return times[1:]                     # the first epoch traces the graph


def plain_torch(epochs: int, data_dir: Path) -> list[float]:
    """Seconds per epoch of a textbook PyTorch VAE loop (logits and BCE-with-logits)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    x = torch.from_numpy(_split(data_dir))[:, None]
    encoder = nn.Sequential(nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                            nn.Flatten(), nn.Linear(3136, 16), nn.ReLU(), nn.Linear(16, 4))
    decoder = nn.Sequential(nn.Linear(2, 3136), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                            nn.ConvTranspose2d(64, 64, 3, 2, 1, 1), nn.ReLU(),
                            nn.ConvTranspose2d(64, 32, 3, 2, 1, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 3, 1, 1))
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], 1e-3)
    times = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        for idx in torch.randperm(len(x)).split(128):
            xb = x[idx]
            mu, log_var = encoder(xb).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
            recon = F.binary_cross_entropy_with_logits(decoder(z), xb, reduction="none").sum((1, 2, 3))
            kl = -0.5 * (1 + log_var - mu**2 - log_var.exp()).sum(1)
            opt.zero_grad()
            (recon + kl).mean().backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


PLAIN = {"tf": plain_keras, "torch": plain_torch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--tracks", default="tf,torch")
    ap.add_argument("--data-dir", default=str(SHARED))
    ap.add_argument("--baseline-epochs", type=int, default=4, help="timed epochs of each plain baseline")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--plain", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.epochs, Path(args.data_dir))))
        return
    if args.plain:
        print(json.dumps(float(np.median(PLAIN[args.plain](args.baseline_epochs, Path(args.data_dir))))))
        return

    def child(*flags) -> str:
        out = subprocess.run([sys.executable, __file__, *flags, "--epochs", str(args.epochs), "--baseline-epochs",
                              str(args.baseline_epochs), "--data-dir", args.data_dir], capture_output=True,
                             text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if out.returncode:
            sys.exit(f"{' '.join(flags)} failed:\n{out.stderr[-3000:]}")
        return out.stdout.strip().splitlines()[-1]

    rows = []
    for track in args.tracks.split(","):
        row = json.loads(child("--child", track))
        row["plain_s"] = json.loads(child("--plain", track))
        rows.append(row)
    print(f"VAE, 8,000 train / 2,000 held-out digits, batch 128, {args.epochs} epochs, CPU threads: {os.cpu_count()}")
    head = (f"{'track':6} {'s/epoch':>8} {'plain':>6} {'ratio':>6} {'issue':>6} {'train img/s':>12} "
            f"{'infer img/s':>12} {'peak MB':>8} {'neg-ELBO':>9} {'issue':>6}")
    print(head)
    print("-" * len(head))
    # plain: the textbook implementation's s/epoch here and now; ratio: plain / ours (> 1: ours faster);
    # issue: the figures of the issue, measured on another day
    for r in rows:
        b = BASELINE[r["track"]]
        print(f"{r['track']:6} {r['epoch_s']:8.2f} {r['plain_s']:6.2f} {r['plain_s'] / r['epoch_s']:5.2f}x "
              f"{b['epoch_s']:6.1f} "
              f"{r['train_img_s']:12.0f} {r['infer_img_s']:12.0f} {r['peak_mb']:8.0f} "
              f"{r['neg_elbo']:9.1f} {b['neg_elbo']:6.1f}")


if __name__ == "__main__":
    main()
