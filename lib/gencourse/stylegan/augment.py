"""DiffAugment (Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient
GAN Training", NeurIPS 2020): the same random translation and cutout applied to the
reals and to the fakes before D sees them, in D's step and in G's, so D cannot memorize
a small training set while G still learns the un-augmented distribution (the gradient
flows through the augmentation to G).

The two policies of the paper's recommended set that mean something for one channel
(facts from the paper and github.com/mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py):
- translation: an integer shift of up to 1/8 of the side in x and in y, each drawn
  uniformly from -s .. s per image, the vacated pixels filled with zeros;
- cutout: a square of half the side, centred at a uniform pixel (0 .. side), set to zero.
Zero is mid-grey in the generator's [-1, 1] scale, as in the reference code's images.

Every random number comes from the step's numpy generator, and an augmentation is a
plain gather and mask, `out[n, p] = x[n, index[n, p]] * mask[n, p]` on the flattened
pixels, so both tracks apply exactly the same one (torch.gather / tf.gather).
"""

from __future__ import annotations

import numpy as np

POLICIES = ("translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """"translation,cutout" -> ("translation", "cutout"); "" or None -> () (no augmentation)."""
    names = tuple(p.strip() for p in (policy or "").split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"DiffAugment policy: unknown {unknown}, choose from {POLICIES}")
    return names


def draw(rng: np.random.Generator, batch: int, size: int, policy) -> tuple[np.ndarray, np.ndarray]:
    """(index int64 [batch, size²], mask float32 [batch, size²]) of one augmentation per image,
    the policies applied in the order given (the reference code's order: translation, cutout)."""
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    src_r = np.broadcast_to(rows, (batch, size, size)).copy()
    src_c = np.broadcast_to(cols, (batch, size, size)).copy()
    mask = np.ones((batch, size, size), np.float32)
    for name in parse_policy(policy) if isinstance(policy, str) else policy:
        if name == "translation":
            s = int(size * TRANSLATION_RATIO + 0.5)
            dr = rng.integers(-s, s + 1, (batch, 1, 1))
            dc = rng.integers(-s, s + 1, (batch, 1, 1))
            src_r, src_c = src_r + dr, src_c + dc            # out[i, j] = x[i + dr, j + dc]
            mask *= (src_r >= 0) & (src_r < size) & (src_c >= 0) & (src_c < size)
        elif name == "cutout":
            k = int(size * CUTOUT_RATIO + 0.5)
            cr = rng.integers(0, size + 1 - k % 2, (batch, 1, 1))
            cc = rng.integers(0, size + 1 - k % 2, (batch, 1, 1))
            inside = ((rows >= cr - k // 2) & (rows < cr - k // 2 + k)
                      & (cols >= cc - k // 2) & (cols < cc - k // 2 + k))
            mask *= ~inside
    index = np.clip(src_r, 0, size - 1) * size + np.clip(src_c, 0, size - 1)
    return index.reshape(batch, -1).astype(np.int64), mask.reshape(batch, -1).astype(np.float32)


def apply(images: np.ndarray, index: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The numpy oracle: [n, H, W] (or [n, H, W, C]) images augmented by (index, mask)."""
    x = np.asarray(images)
    flat = x.reshape(len(x), -1, *x.shape[3:])
    out = np.take_along_axis(flat, index.reshape(*index.shape, *[1] * (flat.ndim - 2)), axis=1)
    return (out * mask.reshape(*mask.shape, *[1] * (flat.ndim - 2))).reshape(x.shape)
