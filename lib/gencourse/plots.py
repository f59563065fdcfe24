"""Every figure of the report, written once for both tracks (matplotlib, Agg, PNG).

Each function takes numpy arrays and a path and returns the path, so the
training runs, the notebooks and the tests share them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:     # in a notebook the inline backend stays: its own plt.show() still draws
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DIGIT_COLORS = plt.get_cmap("tab10")


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """Arrange [rows*cols, H, W] images in one [rows*(H+pad), cols*(W+pad)] canvas."""
    n, h, w = images.shape
    canvas = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad), dtype=np.float32)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        canvas[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = images[i]
    return canvas


def image_grid(images, path, rows: int, cols: int, title: str = "", row_labels=None) -> Path:
    """A grid of grayscale images (values in [0, 1]), optionally with one label per row."""
    fig, ax = plt.subplots(figsize=(cols * 0.6 + 0.6, rows * 0.6 + 0.4))
    ax.imshow(tile(np.asarray(images), rows, cols), cmap="gray_r", vmin=0, vmax=1)
    h = np.asarray(images).shape[1] + 1
    if row_labels is not None:
        ax.set_yticks([r * h + h / 2 - 1 for r in range(rows)], [str(l) for l in row_labels])
        ax.set_xticks([])
    else:
        ax.axis("off")
    ax.set_title(title)
    return _save(fig, path)


def loss_curves(history: list[dict], path, title: str = "") -> Path:
    """Train and test curves of total loss, reconstruction and KL per epoch (nats per image)."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, key, label in zip(axes, ("loss", "recon", "kl"),
                              ("negative ELBO", "reconstruction (BCE)", "KL")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], label="train")
        ax.plot(epochs, [h[f"test_{key}"] for h in history], label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image")
        ax.set_title(label)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def latent_scatter(z, labels, path, title: str = "") -> Path:
    """The test set's z_mean coloured by digit (first two latent dimensions)."""
    z = np.asarray(z)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap=DIGIT_COLORS, vmin=-0.5, vmax=9.5, s=3)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]" if z.shape[1] > 1 else "")
    ax.set_title(title)
    return _save(fig, path)


def manifold_grid(decoded, path, lo, hi, n: int = 10, title: str = "") -> Path:
    """Decoded images of an n x n grid over [lo, hi] of the first two latent dimensions."""
    fig, ax = plt.subplots(figsize=(7, 7))
    h = np.asarray(decoded).shape[1] + 1
    ax.imshow(tile(np.asarray(decoded), n, n), cmap="gray_r", vmin=0, vmax=1)
    ticks = [i * h + h / 2 - 1 for i in range(n)]
    xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(hi[1], lo[1], n)
    ax.set_xticks(ticks, [f"{v:.1f}" for v in xs], rotation=90)
    ax.set_yticks(ticks, [f"{v:.1f}" for v in ys])
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(title)
    return _save(fig, path)


def inputs_vs_outputs(x, x_hat, path, n: int = 10, title: str = "") -> Path:
    """Top row: test inputs; bottom row: their reconstructions."""
    both = np.concatenate([np.asarray(x)[:n], np.asarray(x_hat)[:n]])
    return image_grid(both, path, 2, n, title=title, row_labels=["input", "output"])


def reconstruction_snapshots(snapshots: dict[int, np.ndarray], path, title: str = "") -> Path:
    """The first 100 test digits reconstructed at several epochs, side by side."""
    epochs = sorted(snapshots)
    fig, axes = plt.subplots(1, len(epochs), figsize=(3.2 * len(epochs), 3.4), squeeze=False)
    for ax, e in zip(axes[0], epochs):
        ax.imshow(tile(snapshots[e], 10, 10), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"epoch {e}")
        ax.axis("off")
    fig.suptitle(title)
    return _save(fig, path)


def format_ranges(ranges: np.ndarray) -> str:
    """The per-class latent ranges [10, dims, 2] as a printable table."""
    dims = ranges.shape[1]
    head = "digit | " + " | ".join(f"z[{d}] min .. max" for d in range(dims))
    lines = [head, "-" * len(head)]
    for c, r in enumerate(ranges):
        lines.append(f"{c:>5} | " + " | ".join(f"{lo:7.2f} .. {hi:6.2f}" for lo, hi in r))
    return "\n".join(lines)


# ---------------------------------------------------------------- CycleGAN

def _show(image: np.ndarray) -> np.ndarray:
    """[-1, 1] HWC -> [0, 1] for imshow (HW for one channel)."""
    image = np.clip((np.asarray(image) + 1.0) / 2.0, 0.0, 1.0)
    return image[..., 0] if image.shape[-1] == 1 else image


def translation_grid(rows_a, rows_b, path, title: str = "") -> Path:
    """Columns of test images: x, G(x), F(G(x)) above y, F(y), G(F(y)) (NHWC in [-1, 1])."""
    labels = ["x (A)", "G(x)", "F(G(x))", "y (B)", "F(y)", "G(F(y))"]
    rows = list(rows_a) + list(rows_b)
    n = len(rows[0])
    fig, axes = plt.subplots(6, n, figsize=(1.2 * n + 0.8, 7.6), squeeze=False)
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c in range(n):
            ax = axes[r][c]
            img = _show(row[c])
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label)
    fig.suptitle(title)
    return _save(fig, path)


def cycle_loss_curves(history: list[dict], path, title: str = "") -> Path:
    """Per-epoch means of the generators' and discriminators' loss terms."""
    epochs = [h["epoch"] for h in history]
    keys = [k for k in history[0] if k not in ("epoch", "lr")] if history else []
    groups = [("generators: adversarial", [k for k in keys if k.endswith("_adv")]),
              ("cycle and identity (weighted)", [k for k in keys if k.startswith(("cycle", "identity"))]),
              ("discriminators", [k for k in keys if k.startswith("D_")])]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, (name, ks) in zip(axes, groups):
        for k in ks:
            ax.plot(epochs, [h[k] for h in history], marker="o", label=k)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if ks:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def image_table(table, path, row_labels=None, col_labels=None, title: str = "") -> Path:
    """A [rows, cols, H, W] table of grayscale images in [0, 1] with optional row and column
    labels (StyleGAN's noise, style-mixing, truncation and editing figures)."""
    table = np.asarray(table)
    rows, cols, h, w = table.shape
    fig, ax = plt.subplots(figsize=(cols * 0.75 + 1.0, rows * 0.75 + 0.6))
    ax.imshow(tile(table.reshape(rows * cols, h, w), rows, cols), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([c * (w + 1) + w / 2 - 1 for c in range(cols)] if col_labels is not None else [],
                  [str(c) for c in col_labels] if col_labels is not None else [])
    ax.set_yticks([r * (h + 1) + h / 2 - 1 for r in range(rows)] if row_labels is not None else [],
                  [str(r) for r in row_labels] if row_labels is not None else [])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_title(title, pad=18 if col_labels is not None else 6)
    return _save(fig, path)


def gan_loss_curves(history: list[dict], path, title: str = "") -> Path:
    """GAN losses per step (a running mean over 1 % of the steps): D's logistic loss,
    G's non-saturating loss and the R1 penalty, this on the steps it applied (lazy R1
    logs 0 on the others)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, key, label in zip(axes, ("d_loss", "g_loss", "r1"),
                              ("D: logistic loss", "G: non-saturating loss", "R1 penalty (steps it applied)")):
        rows = [h for h in history if key != "r1" or h[key] != 0] or history
        steps = np.array([h["step"] for h in rows])
        values = np.array([h[key] for h in rows], np.float64)
        k = max(1, len(rows) // 100)
        smooth = np.convolve(values, np.ones(k) / k, mode="valid")
        ax.plot(steps, values, alpha=0.3, lw=0.5)
        ax.plot(steps[k - 1:], smooth)
        ax.set_xlabel("step")
        ax.set_title(label)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
