"""LeNet-5 (LeCun et al., 1998) with modern defaults: ReLU and max pooling (``activation="tanh"``,
``pool="avg"`` give the original flavour).

Layout: ``features`` (conv 5x5 -> act -> pool -> conv 5x5 -> act -> pool) and ``classifier``
(120 -> 84 -> num_classes), so ``state_dict`` keys read ``features.0.weight`` ... ``classifier.4.bias``.
"""

from __future__ import annotations

from .. import nn
from ..tensor import Tensor
from .mlp import activation_layer


class LeNet5(nn.Module):
    """LeNet-5 for ``in_channels x input_size x input_size`` images (28 for MNIST-sized digits, 32 classic).

    The first convolution pads by 2, so a 28x28 input reaches the 16x5x5 feature map of the paper.

    >>> LeNet5()(deepgrad.randn(2, 1, 28, 28)).shape
    (2, 10)
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, activation: str = "relu",
                 pool: str = "max"):
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"LeNet5: pool must be 'max' or 'avg', got {pool!r}")
        side = ((input_size + 4 - 4) // 2 - 4) // 2  # conv5 pad2 -> pool2 -> conv5 -> pool2
        if side < 1:
            raise ValueError(f"LeNet5: input_size {input_size} is too small (needs >= 12)")
        pool_layer = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        self.num_classes, self.in_channels, self.input_size = num_classes, in_channels, input_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), activation_layer(activation), pool_layer(2),
            nn.Conv2d(6, 16, 5), activation_layer(activation), pool_layer(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * side * side, 120), activation_layer(activation),
            nn.Linear(120, 84), activation_layer(activation),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2:] != (self.input_size,) * 2:
            raise ValueError(f"LeNet5: expected input (N, {self.in_channels}, {self.input_size}, {self.input_size}), "
                             f"got {tuple(x.shape)}")
        return self.classifier(self.features(x).flatten(1))
