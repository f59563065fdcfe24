"""A small framework-neutral MNIST classifier (scikit-learn MLP on pixels).

It judges generated digits (a CVAE asked for a 7 must draw a 7; a translated
digit must keep its class), and its hidden layer gives the features of the
Fréchet distance. Trained in seconds on CPU; its held-out accuracy is reported.
"""

from __future__ import annotations

import warnings

import numpy as np


def _flat(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.max(initial=0) > 1.5:      # uint8 images
        x = x / 255.0
    return x.reshape(len(x), -1)


class DigitClassifier:
    """MLP 784-256-10 (ReLU, Adam) on images in [0, 1] or uint8."""

    def __init__(self, hidden: int = 256, epochs: int = 30, seed: int = 0):
        from sklearn.neural_network import MLPClassifier

        self.model = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=epochs,
                                   alpha=1e-4, batch_size=128, random_state=seed)
        self.accuracy: float | None = None

    def fit(self, x, y, x_val=None, y_val=None) -> "DigitClassifier":
        with warnings.catch_warnings():   # max_iter reached is the intended budget
            warnings.simplefilter("ignore")
            self.model.fit(_flat(x), np.asarray(y))
        if x_val is not None:
            self.accuracy = float(np.mean(self.predict(x_val) == np.asarray(y_val)))
        return self

    def predict(self, x) -> np.ndarray:
        return self.model.predict(_flat(x)).astype(np.int64)

    def features(self, x) -> np.ndarray:
        """Hidden-layer activations (ReLU), the Fréchet distance's feature space."""
        w, b = self.model.coefs_[0], self.model.intercepts_[0]
        return np.maximum(_flat(x) @ w + b, 0.0)
