"""`gencourse train vae|cvae`: train one track, checkpoint every epoch, write every figure.

The digits are dynamically binarized (a new Bernoulli draw of every training digit each
epoch, one fixed draw of the held-out digits), as in CS236 and the likelihood papers: on
grey levels a Bernoulli decoder's ELBO is no bound on log p(x). Writes into the output
folder: metrics.json (held-out neg-ELBO, reconstruction and KL per image in nats, the
neg-ELBO and the tighter importance-weighted bound (IWAE, K = 50) in nats and bits per
dimension, the per-epoch history, the per-class latent ranges),
loss_curves.png, reconstructions.png (first 100 test digits at 1/5 .. 5/5 of
the epochs, the report's epochs 10..50 at the default budget), latent_scatter.png,
manifold.png, inputs_vs_outputs.png, and for the CVAE digits_by_class.png and
the accuracy of its generations under the package's digit classifier.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from ..progress import tqdm

from .. import plots
from ..data import load_mnist
from ..reference import binarize, bits_per_dim, iwae_bound, latent_ranges
from ..reference.vae import bernoulli_reconstruction, log_normal
from ..runs import RunState
from .common import VAEConfig, make_trainer

DEFAULT_EPOCHS = {"vae": 50, "cvae": 40}    # the report's budgets
IWAE_K = 50                                  # importance samples per digit (Burda et al. 2016 report k = 50)
TEST_DRAW = 0                                # the seed of the held-out digits' one binarization


def snapshot_epochs(epochs: int) -> list[int]:
    """Epochs at which to keep reconstructions: fifths of the run (10..50 of 50)."""
    return sorted({max(1, round(epochs * k / 5)) for k in range(1, 6)})


def to_float(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32) / 255.0).reshape(-1, 28, 28)


def train(model: str = "vae", track: str = "tf", *, epochs: int | None = None, latent_dim: int = 2,
          batch_size: int = 128, seed: int = 0, learning_rate: float = 1e-3, data=None,
          data_dir=None, out="runs/vae", device: str = "auto", resume: bool = False,
          progress: bool = True, train_size: int | None = None, grey: bool = False,
          iwae_k: int = IWAE_K) -> dict:
    """Train `model` ("vae" or "cvae") with `track` ("tf" or "torch"); returns the metrics.
    `train_size`: the first N training digits only (the test digits stay whole). `grey`: train and
    score on the grey levels (the report's setting), not on binarized digits. `iwae_k`: importance
    samples of the held-out IWAE bound (0: none)."""
    if model not in DEFAULT_EPOCHS:
        raise ValueError(f"model must be 'vae' or 'cvae', got {model!r}")
    epochs = DEFAULT_EPOCHS[model] if epochs is None else epochs
    if epochs < 1 or batch_size < 1 or latent_dim < 1 or iwae_k < 0:
        raise ValueError("epochs, batch size and latent size must be positive, --iwae-k at least 0")
    out = Path(out)
    data = data if data is not None else load_mnist(data_dir)
    x_train, grey_test = to_float(data.x_train[:train_size]), to_float(data.x_test)
    y_train, y_test = data.y_train[:train_size], data.y_test
    x_test = grey_test if grey else binarize(grey_test, np.random.default_rng(TEST_DRAW))

    config = VAEConfig(latent_dim=latent_dim, conditional=model == "cvae",
                       learning_rate=learning_rate, seed=seed)
    t = make_trainer(track, config, device)
    run = RunState(out, {**config.to_dict(), "model": model, "batch_size": batch_size, "data": data.source,
                         "train_size": len(x_train), "grey": grey})
    history, snapshots, start = [], {}, 1
    state = run.resume(t) if resume else None
    if state is not None:
        history, start = state["history"], state["epoch"] + 1
        snapshots = {int(k): np.load(run.folder / f"recon_{k}.npy") for k in state["snapshots"]}
    keep = snapshot_epochs(epochs)
    label = f"{model}/{track}"
    started = time.perf_counter()
    for epoch in range(start, epochs + 1):
        with tqdm(total=len(x_train), desc=f"{label} epoch {epoch}/{epochs}", unit="img",
                  disable=not (progress and t.is_main), leave=False) as bar:
            x_epoch = x_train if grey else binarize(x_train, np.random.default_rng([seed, epoch]))
            train_m = t.train_epoch(x_epoch, y_train, batch_size, seed + epoch, bar.update)
        test_m = t.evaluate(x_test, y_test)
        history.append({"epoch": epoch, **{f"train_{k}": float(v) for k, v in train_m.items()},
                        **{f"test_{k}": float(v) for k, v in test_m.items()}})
        if progress and t.is_main:
            tqdm.write(f"{label} epoch {epoch}/{epochs}: train {train_m['loss']:.1f}  "
                       f"test {test_m['loss']:.1f} (recon {test_m['recon']:.1f}, kl {test_m['kl']:.2f})")
        if epoch in keep:
            snapshots[epoch] = reconstruct(t, x_test[:100], y_test[:100])
        if t.is_main:
            run.folder.mkdir(parents=True, exist_ok=True)
            for e, im in snapshots.items():
                np.save(run.folder / f"recon_{e}.npy", im)
            run.save(t, epoch, history, snapshots=sorted(snapshots))
    if not t.is_main:
        return {}
    metrics = {
        "model": model, "track": track, "epochs": epochs, "latent_dim": latent_dim,
        "batch_size": batch_size, "seed": seed, "data": data.source,
        "digits": "grey levels" if grey else "dynamically binarized",
        "n_train": len(x_train), "n_test": len(x_test),
        "params": t.param_counts(),
        "test_neg_elbo": history[-1]["test_loss"], "test_recon": history[-1]["test_recon"],
        "test_kl": history[-1]["test_kl"], "train_seconds": time.perf_counter() - started,
        "history": history,
    }
    metrics["test_neg_elbo_bits_per_dim"] = float(bits_per_dim(metrics["test_neg_elbo"]))
    if iwae_k:
        started = time.perf_counter()
        bound = likelihood(t, x_test, y_test, iwae_k, seed, progress=progress and t.is_main)
        metrics.update(bound, iwae_seconds=time.perf_counter() - started)
    metrics.update(figures(t, model, x_test, y_test, x_train, y_train, history, snapshots, out,
                           title=f"{model.upper()} ({track})", seed=seed, grey_test=grey_test))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def iwae_inputs(t, x, y, k: int, rng) -> tuple:
    """What the IWAE bound of `t` on digits x needs: log p(x|z_k) [k, B] of k codes z [k, B, d] drawn
    from q(z|x), with q's z_mean and z_log_var [B, d]; the trusted Bernoulli likelihood, in float64."""
    z_mean, z_log_var = (np.asarray(a, np.float64) for a in t.encode(x, y))
    z = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal((k, *z_mean.shape))
    probs = t.decode(z.reshape(-1, z.shape[-1]).astype(np.float32), np.tile(y, k) if y is not None else None)
    log_px = -bernoulli_reconstruction(np.tile(x, (k, 1, 1)), probs, reduce="none").reshape(k, len(x))
    return log_px, z, z_mean, z_log_var


def likelihood(t, x, y, k: int = IWAE_K, seed: int = 0, chunk: int = 200, progress: bool = False) -> dict:
    """Held-out -log p(x) estimates per image from the same k codes of each digit: the negative IWAE bound
    and the k-sample average of the ELBO's estimate (the mean log-weight, which the bound never exceeds),
    in nats and bits per dimension."""
    rng = np.random.default_rng(seed)
    iwae, elbo = [], []
    for i in tqdm(range(0, len(x), chunk), desc=f"IWAE bound (k = {k})", unit="chunk", disable=not progress,
                  leave=False):
        log_px, z, z_mean, z_log_var = iwae_inputs(t, x[i:i + chunk], y[i:i + chunk], k, rng)
        iwae.append(iwae_bound(log_px, z, z_mean, z_log_var))
        elbo.append((log_px + log_normal(z) - log_normal(z, z_mean, z_log_var)).mean(0))
    neg_iwae, neg_elbo = -float(np.concatenate(iwae).mean()), -float(np.concatenate(elbo).mean())
    return {"iwae_k": k, "test_neg_iwae": neg_iwae, "test_neg_iwae_bits_per_dim": float(bits_per_dim(neg_iwae)),
            "test_neg_elbo_k_samples": neg_elbo}


def reconstruct(t, x, y) -> np.ndarray:
    z_mean, _ = t.encode(x, y)
    return t.decode(z_mean, y)


def figures(t, model, x_test, y_test, x_train, y_train, history, snapshots, out, title, seed, grey_test) -> dict:
    """Write the report's figures; return the numbers read off them (ranges, accuracy). The digit
    classifier learns and is scored on grey levels (`grey_test`), as it reads the decoder's probabilities."""
    extra = {}
    z_mean, _ = t.encode(x_test, y_test)
    plots.loss_curves(history, out / "loss_curves.png", title)
    plots.reconstruction_snapshots(snapshots, out / "reconstructions.png",
                                   f"{title}: first 100 test digits")
    plots.latent_scatter(z_mean, y_test, out / "latent_scatter.png", f"{title}: test z_mean")
    plots.inputs_vs_outputs(x_test, reconstruct(t, x_test[:10], y_test[:10]),
                            out / "inputs_vs_outputs.png", title=title)
    ranges = latent_ranges(z_mean, y_test)
    extra["latent_ranges"] = {str(c): r.tolist() for c, r in enumerate(ranges)}
    table = plots.format_ranges(ranges)
    (out / "latent_ranges.txt").write_text(table + "\n")
    print(f"{title}: per-class latent ranges (test z_mean)\n{table}")
    lo, hi = np.percentile(z_mean, 1, axis=0), np.percentile(z_mean, 99, axis=0)
    extra["manifold_range"] = [lo.tolist(), hi.tolist()]
    n = 10
    grid = np.zeros((n * n, z_mean.shape[1]), dtype=np.float32)
    for i, zy in enumerate(np.linspace(hi[1] if len(hi) > 1 else 0, lo[1] if len(lo) > 1 else 0, n)):
        for j, zx in enumerate(np.linspace(lo[0], hi[0], n)):
            grid[i * n + j, 0] = zx
            if grid.shape[1] > 1:
                grid[i * n + j, 1] = zy
    if model == "vae":
        decoded = t.decode(grid, np.zeros(len(grid), dtype=np.int64))
        plots.manifold_grid(decoded, out / "manifold.png", lo, hi, n, f"{title}: latent manifold")
    else:
        # CVAE: one manifold per run is not meaningful without a class; show digit 0..9 rows
        # from the same ten z's, and measure how often the requested digit is drawn.
        from ..metrics import DigitClassifier

        rng = np.random.default_rng(seed)
        z = rng.standard_normal((10, z_mean.shape[1])).astype(np.float32)
        rows = t.decode(np.tile(z, (10, 1)), np.repeat(np.arange(10), 10))
        plots.image_grid(rows, out / "digits_by_class.png", 10, 10,
                         f"{title}: one row per requested digit", row_labels=range(10))
        decoded = t.decode(grid, np.full(len(grid), 8, dtype=np.int64))
        plots.manifold_grid(decoded, out / "manifold.png", lo, hi, n, f"{title}: manifold of digit 8")
        clf = DigitClassifier(seed=seed).fit(x_train[:10000], y_train[:10000], grey_test, y_test)
        want = np.repeat(np.arange(10), 100)
        gen = t.decode(rng.standard_normal((1000, z_mean.shape[1])).astype(np.float32), want)
        hit = clf.predict(gen) == want
        extra["classifier_accuracy"] = clf.accuracy
        extra["generation_accuracy"] = float(hit.mean())
        extra["generation_accuracy_by_digit"] = [float(hit[want == d].mean()) for d in range(10)]
    return extra
