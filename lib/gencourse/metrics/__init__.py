"""Measurements that judge generated images: an MNIST classifier trained in the package, Fréchet distances."""

from .classifier import DigitClassifier, KernelDigitClassifier
from .frechet import frechet_distance, image_frechet_distance

__all__ = ["DigitClassifier", "KernelDigitClassifier", "frechet_distance", "image_frechet_distance"]
