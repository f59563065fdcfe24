"""Data sets: MNIST (official idx/gzip files, mnist.npz, or the embedded subset)."""

from .mnist import MNIST, DataError, load_mnist, read_idx, read_mnist_pair

__all__ = ["MNIST", "DataError", "load_mnist", "read_idx", "read_mnist_pair"]
