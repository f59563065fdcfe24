"""Data sets: MNIST (official idx/gzip files, mnist.npz, or the embedded subset) and
unpaired image domains for CycleGAN (folder and Kaggle layouts, the offline digits task)."""

from .domains import (
    ArrayDomain,
    DigitDomains,
    Domain,
    UnpairedDomains,
    cyclegan_folders,
    digits_domains,
    image_folder,
    preprocess,
)
from .kaggle import kaggle_monet, parse_example, read_tfrecord, tfrecord_folder
from .mnist import MNIST, DataError, load_mnist, read_idx, read_mnist_pair

__all__ = [
    "MNIST", "DataError", "load_mnist", "read_idx", "read_mnist_pair",
    "ArrayDomain", "DigitDomains", "Domain", "UnpairedDomains", "cyclegan_folders",
    "digits_domains", "image_folder", "kaggle_monet", "parse_example", "preprocess",
    "read_tfrecord", "tfrecord_folder",
]
