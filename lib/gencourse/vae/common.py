"""The framework-neutral part of the VAE: config and the interface both tracks implement.

Architecture (the report's Keras code, the Keras VAE example):
encoder Conv2D(32,3,s2,same,relu) -> Conv2D(64,3,s2,same,relu) -> Flatten ->
Dense(16,relu) -> z_mean, z_log_var -> Sampling; decoder Dense(7*7*64,relu) ->
Reshape -> ConvT(64,3,s2,same,relu) -> ConvT(32,3,s2,same,relu) ->
ConvT(1,3,same,sigmoid). The CVAE concatenates the one-hot digit to the
flattened encoder features and to z (`condition`). Both tracks use Glorot-uniform
kernels and zero biases (Keras' defaults) so that they train to the same numbers.
Loss per image: BCE summed over the 784 pixels + KL, averaged over the batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Protocol

import numpy as np

ENCODER_PARAMS = 69_076   # latent 2, unconditional (the report's model.summary())
DECODER_PARAMS = 65_089


@dataclass
class VAEConfig:
    latent_dim: int = 2
    conditional: bool = False
    n_classes: int = 10
    learning_rate: float = 1e-3
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class Trainer(Protocol):
    """What the training run needs from a framework.

    Images are numpy float32 in [0, 1], shape [N, 28, 28]; labels int64 [N]
    (ignored unless `config.conditional`). Losses are per-image means in nats.
    """

    name: str             # "tf" or "torch"
    is_main: bool         # False on the non-zero ranks of a distributed run
    NETS: tuple           # ("encoder", "decoder"): the names `weight_tensors` takes

    def train_epoch(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int,
                    on_batch: Callable[[int], None] | None = None) -> dict: ...
    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> dict: ...
    def encode(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def decode(self, z: np.ndarray, y: np.ndarray) -> np.ndarray: ...
    def param_counts(self) -> dict: ...
    def save(self, directory) -> None: ...
    def load(self, directory) -> None: ...
    def weight_tensors(self, net: str) -> list: ...


def make_trainer(track: str, config: VAEConfig, device: str = "auto", **parts) -> Trainer:
    """The model of one framework ("tf" or "torch") on `device`; `parts` replace the package's own
    (encoder=, decoder=, sampling=, conditioning=, and model_class= in Keras or step= in PyTorch):
    the grader and the notebooks plug a student's in."""
    if track == "tf":
        from .tf_track import TFVAE
        return TFVAE(config, device, **parts)
    if track == "torch":
        from .torch_track import TorchVAE
        return TorchVAE(config, device, **parts)
    raise ValueError(f"--track must be 'tf' or 'torch', got {track!r}")
