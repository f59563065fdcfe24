"""Shared fixtures: the real MNIST test set from ../shared/data/mnist, a digit classifier."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Under pytest-xdist each worker gets one intra-op thread: two workers with two threads
# each on a 2-core machine leave the frameworks' thread pools spinning (measured: a
# CycleGAN step 6x slower than with one thread). Set before torch or TensorFlow loads.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(os.environ.get("GENCOURSE_SHARED_MNIST", ROOT.parent / "shared" / "data" / "mnist"))


def _has_gpu() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mnist():
    """The official 10,000 test digits split 8,000 train / 2,000 held-out (seed 0)."""
    from gencourse.data.mnist import read_folder

    data = read_folder(SHARED_MNIST)
    if data is None:
        pytest.fail(f"the shared MNIST test set is missing at {SHARED_MNIST}")
    return data


@pytest.fixture(scope="session")
def classifier(mnist):
    """An MNIST classifier trained on the 8,000 training digits (about 97 % held-out)."""
    from gencourse.metrics import DigitClassifier

    return DigitClassifier().fit(mnist.x_train, mnist.y_train, mnist.x_test, mnist.y_test)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
