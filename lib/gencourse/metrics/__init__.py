"""Measurements that judge generated images: an MNIST classifier trained in the package."""

from .classifier import DigitClassifier

__all__ = ["DigitClassifier"]
