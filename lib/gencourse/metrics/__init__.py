"""Measurements that judge generated images: an MNIST classifier trained in the package, Fréchet distances."""

from .classifier import DigitClassifier
from .frechet import frechet_distance, image_frechet_distance

__all__ = ["DigitClassifier", "frechet_distance", "image_frechet_distance"]
