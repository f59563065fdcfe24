"""Unpaired image domains for CycleGAN: folders, Kaggle TFRecords, and the digits default.

Layouts read here (docs/design.md, "Data"):

- the CycleGAN folders (Zhu et al.'s datasets, e.g. horse2zebra):
  root/trainA, trainB, testA, testB, holding JPEG or PNG files;
- Kaggle's layout, read by `kaggle.py`;
- the offline default `digits_domains`: scikit-learn's 8x8 digits (A) and MNIST
  (B), with the labels kept aside to check that a translated digit keeps its class.

Images come out as float32
in [-1, 1], HWC, after resize (or the paper's jitter: resize up, random crop) and
random horizontal flip. `UnpairedDomains` draws each domain independently, so
the larger domain is never cut to the size of the smaller one, as zipping the two
data sets would. Bad input raises DataError naming the file (and the record).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .mnist import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
JITTER_RATIO = 286 / 256      # the reference code's --load_size 286 --crop_size 256


# ---------------------------------------------------------------- images

def _pil():
    try:
        from PIL import Image
    except ImportError as e:   # pragma: no cover - Pillow comes with matplotlib
        raise ImportError("decoding JPEG/PNG needs Pillow (pip install pillow)") from e
    return Image


def decode_image(data: bytes, source: str, channels: int = 3) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 [H, W, channels] (RGB, or grayscale for 1 channel)."""
    Image = _pil()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            array = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{source}: cannot decode the image ({e})") from e
    return array.reshape(array.shape[0], array.shape[1], channels)


def resize(image: np.ndarray, size: int, resample: str = "bicubic") -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [size, size, C] (bicubic, as the reference's transforms)."""
    if image.shape[0] == image.shape[1] == size:
        return image
    Image = _pil()
    method = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[resample]
    channels = image.shape[2]
    im = Image.fromarray(image[..., 0] if channels == 1 else image)
    return np.asarray(im.resize((size, size), method), dtype=np.uint8).reshape(size, size, channels)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1], the tanh range of the generators."""
    return image.astype(np.float32) / 127.5 - 1.0


def preprocess(image: np.ndarray, size: int, rng: np.random.Generator | None = None, *,
               jitter: bool = False, flip: bool = False, load_size: int | None = None,
               resample: str = "bicubic") -> np.ndarray:
    """uint8 image -> float32 [size, size, C] in [-1, 1].

    jitter: resize to `load_size` (default size * 286/256) and crop a random
    size x size window; flip: mirror left-right with probability 1/2. Both need `rng`.
    """
    if (jitter or flip) and rng is None:
        raise ValueError("jitter and flip need a random generator (rng)")
    if jitter:
        load = load_size or int(round(size * JITTER_RATIO))
        image = resize(image, load, resample)
        top, left = rng.integers(0, load - size + 1, size=2)
        image = image[top:top + size, left:left + size]
    else:
        image = resize(image, size, resample)
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
    return to_float(image)


# ---------------------------------------------------------------- domains

class Domain:
    """The images of one domain, decoded on demand: `image(i)` is uint8 [H, W, C]."""

    name = "domain"
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def image(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def array(self, size: int, indices=None) -> np.ndarray:
        """float32 [N, size, size, C] in [-1, 1], resized without jitter (for evaluation)."""
        indices = range(len(self)) if indices is None else indices
        return np.stack([preprocess(self.image(int(i)), size) for i in indices])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} images)"


class ArrayDomain(Domain):
    """Images already in memory: uint8 [N, H, W] or [N, H, W, C], optional labels [N]."""

    def __init__(self, images, labels=None, name: str = "arrays"):
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"{name}: images must be uint8, got {images.dtype}")
        self.images = images[..., None] if images.ndim == 3 else images
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.name = name
        if not len(self.images):
            raise DataError(f"{name}: the domain is empty")

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> np.ndarray:
        return self.images[i]


class FileDomain(Domain):
    """JPEG/PNG files, decoded when asked for."""

    def __init__(self, paths, name: str | None = None, channels: int = 3):
        self.paths = [Path(p) for p in paths]
        self.channels = channels
        self.name = name or (str(self.paths[0].parent) if self.paths else "files")

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> np.ndarray:
        path = self.paths[i]
        try:
            data = path.read_bytes()
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e})") from e
        return decode_image(data, str(path), self.channels)


def image_folder(folder, channels: int = 3) -> FileDomain:
    """Every JPEG/PNG file directly in `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise DataError(f"{folder}: no JPEG or PNG images in the folder (an empty domain)")
    return FileDomain(paths, str(folder), channels)


def cyclegan_folders(root, split: str = "train", channels: int = 3) -> tuple[FileDomain, FileDomain]:
    """(A, B) from root/{split}A and root/{split}B: the CycleGAN data sets' layout."""
    root = Path(root)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    for side in "AB":
        if not (root / f"{split}{side}").is_dir():
            raise DataError(f"{root / (split + side)}: no such folder (the CycleGAN layout is "
                            "trainA/ trainB/ testA/ testB/ under the data set's folder)")
    return image_folder(root / f"{split}A", channels), image_folder(root / f"{split}B", channels)


# ---------------------------------------------------------------- unpaired batches

class UnpairedDomains:
    """Batches (a, b) drawn independently from two domains, float32 [B, size, size, C] in [-1, 1].

    An epoch has ceil(max(len(A), len(B)) / batch_size) steps. Each domain
    follows its own chain of random permutations, so every image of the larger
    domain appears once per epoch (a few more fill the last batch) and the
    smaller domain is reused, in a new order and new pairings every time.
    Zipping two data sets would instead stop at the smaller one and never show
    the rest of the larger. `layout="nchw"` gives PyTorch's channel order.
    """

    def __init__(self, a: Domain, b: Domain, size: int, batch_size: int = 1, *,
                 jitter: bool = False, flip: bool = False, seed: int = 0, layout: str = "nhwc"):
        if layout not in ("nhwc", "nchw"):
            raise ValueError(f"layout must be 'nhwc' or 'nchw', got {layout!r}")
        for d in (a, b):
            if not len(d):
                raise DataError(f"{d.name}: the domain is empty")
        self.a, self.b, self.size, self.batch_size = a, b, size, batch_size
        self.jitter, self.flip, self.seed, self.layout = jitter, flip, seed, layout
        self.epochs_done = 0

    @property
    def steps_per_epoch(self) -> int:
        return -(-max(len(self.a), len(self.b)) // self.batch_size)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def epoch_indices(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The image indices of A and B drawn in `epoch`: two arrays [steps * batch_size]."""
        n = self.steps_per_epoch * self.batch_size
        out = []
        for side, domain in enumerate((self.a, self.b)):
            rng = np.random.default_rng([self.seed, epoch, side])
            chain = [rng.permutation(len(domain)) for _ in range(-(-n // len(domain)))]
            out.append(np.concatenate(chain)[:n])
        return out[0], out[1]

    def epoch(self, epoch: int):
        """Yield the batches (a, b) of one epoch; the same epoch gives the same batches."""
        idx_a, idx_b = self.epoch_indices(epoch)
        rng = np.random.default_rng([self.seed, epoch, 2])
        for step in range(self.steps_per_epoch):
            batch = slice(step * self.batch_size, (step + 1) * self.batch_size)
            yield self._batch(self.a, idx_a[batch], rng), self._batch(self.b, idx_b[batch], rng)

    def _batch(self, domain: Domain, indices, rng) -> np.ndarray:
        x = np.stack([preprocess(domain.image(int(i)), self.size, rng, jitter=self.jitter, flip=self.flip)
                      for i in indices])
        return x.transpose(0, 3, 1, 2).copy() if self.layout == "nchw" else x

    def __iter__(self):
        epoch, self.epochs_done = self.epochs_done, self.epochs_done + 1
        return self.epoch(epoch)


# ---------------------------------------------------------------- the offline default

@dataclass
class DigitDomains:
    """Two handwriting domains with labels kept aside: A = scikit-learn's 8x8 digits, B = MNIST."""

    train_a: ArrayDomain
    train_b: ArrayDomain
    test_a: ArrayDomain
    test_b: ArrayDomain
    source: str

    def __repr__(self) -> str:
        return (f"DigitDomains(A {len(self.train_a)}/{len(self.test_a)}, "
                f"B {len(self.train_b)}/{len(self.test_b)} train/test, {self.source})")


def upsample_sklearn_digits(images, size: int = 28) -> np.ndarray:
    """8x8 digits (values 0..16) -> uint8 [N, size, size] laid out as MNIST.

    MNIST's digits fit a 20x20 box centred in a 28x28 frame (LeCun et al.), so
    the 8x8 digit is upsampled (bilinear) to 20x20 and padded by 4; another
    `size` scales the whole 28x28 frame. Both domains then differ in style
    (blocky, blurred low-resolution strokes against thin pen strokes), not in
    where the digit sits, which a CycleGAN could not learn to move.
    """
    Image = _pil()
    images = np.asarray(images, dtype=np.float32).reshape(-1, 8, 8) * (255.0 / 16.0)
    out = np.zeros((len(images), 28, 28), np.uint8)
    for k, img in enumerate(images):
        box = np.asarray(Image.fromarray(img).resize((20, 20), Image.BILINEAR))   # float32: mode "F"
        out[k, 4:24, 4:24] = np.clip(np.rint(box), 0, 255).astype(np.uint8)
    return _resize_frames(out, size)


def _resize_frames(images: np.ndarray, size: int) -> np.ndarray:
    if size == images.shape[1]:
        return images
    return np.stack([resize(im[..., None], size, "bilinear")[..., 0] for im in images])


def digits_domains(size: int = 28, seed: int = 0, mnist=None, test_a: int = 300) -> DigitDomains:
    """The embedded, offline CycleGAN task: sklearn's 1,797 digits (A) and MNIST (B), unpaired.

    A is shuffled with `seed` and split (1,497 train, `test_a` held out); B is
    `mnist` (a gencourse.data.MNIST; `load_mnist()` when None) with its own
    split. The labels stay with each domain for measuring label preservation;
    nothing pairs an image of A with one of B.
    """
    from sklearn.datasets import load_digits

    from .mnist import load_mnist

    digits = load_digits()
    x_a = upsample_sklearn_digits(digits.images, size)
    y_a = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x_a))
    held, train = order[:test_a], order[test_a:]
    mnist = mnist if mnist is not None else load_mnist(quiet=True)
    x_b_train, x_b_test = (_resize_frames(np.asarray(x, np.uint8), size)
                           for x in (mnist.x_train, mnist.x_test))
    return DigitDomains(
        ArrayDomain(x_a[train], y_a[train], "sklearn digits (train)"),
        ArrayDomain(x_b_train, mnist.y_train, "MNIST (train)"),
        ArrayDomain(x_a[held], y_a[held], "sklearn digits (held out)"),
        ArrayDomain(x_b_test, mnist.y_test, "MNIST (held out)"),
        f"scikit-learn's 8x8 digits upsampled to {size}x{size}; MNIST from {mnist.source}",
    )
