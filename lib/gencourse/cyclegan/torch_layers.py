"""CycleGAN's given PyTorch helpers: the reference init and the digit classifier.

The notebook's locked cells import this module, never `torch_models`, which
holds the package's answers to the assignment (docs/design.md, "Integrity").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INIT_STD = 0.02


def init_weights(module: nn.Module, std: float = INIT_STD,
                 generator: torch.Generator | None = None) -> nn.Module:
    """The reference's "normal" init: conv weights N(0, std), biases 0; affine norms N(1, std), 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.InstanceNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, std, generator=generator)
            nn.init.zeros_(m.bias)
    return module


class DigitCNN(nn.Module):
    """The semantic loss's classifier: conv 3x3 32, pool, conv 3x3 64, pool, dense 128, dense 10 (NCHW, [-1, 1])."""

    def __init__(self, channels: int = 1, size: int = 28, classes: int = 10):
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU(), nn.Linear(128, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def train_digit_cnn(images, labels, epochs: int = 10, batch: int = 64, seed: int = 0, device="cpu") -> DigitCNN:
    """A DigitCNN fitted on images NHWC in [-1, 1] of one domain (Adam 1e-3), frozen, in eval mode."""
    import numpy as np

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images, np.float32).transpose(0, 3, 1, 2)))
    y = torch.from_numpy(np.asarray(labels, np.int64))
    net = DigitCNN(x.shape[1], x.shape[2])
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval().requires_grad_(False).to(device)
