"""AlexNet (Krizhevsky et al., 2012) with torchvision's exact layout: ``features.N`` (five convolutions,
the first 11x11 with stride 4), ``avgpool`` to 6x6, ``classifier.N`` (dropout, 4096, 4096, classes).

torchvision's AlexNet is the one-GPU variant of "One weird trick..." (Krizhevsky, 2014): 64-192-384-256-256
channels and no local response normalisation (the 2012 paper's LRN is :class:`deepgrad.nn.LocalResponseNorm`).
It keeps PyTorch's default initialisation, as here.

``width`` scales every channel count and ``hidden`` the classifier, and ``input_size`` below 224 turns
the max pools that the map is too small for into Identity layers (indices, so ``state_dict`` keys, stay
torchvision's), so small variants run on a CPU.

>>> alexnet().state_dict()["classifier.1.weight"].shape   # loads torchvision's alexnet weights
(4096, 9216)
>>> alexnet(num_classes=10, in_channels=1, width=1 / 8, hidden=32, input_size=28)(deepgrad.randn(2, 1, 28, 28)).shape
(2, 10)
"""

from __future__ import annotations

from .. import nn
from ..tensor import Tensor

# (out channels, kernel, stride, padding) of the five convolutions; "M" a 3x3 max pool with stride 2
CFG: list = [(64, 11, 4, 2), "M", (192, 5, 1, 2), "M", (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1), "M"]


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class AlexNet(nn.Module):
    """AlexNet with torchvision's module names: ``features``, ``avgpool``, ``classifier``.

    Defaults build torchvision's ``alexnet`` exactly (``AlexNet(num_classes=1000, dropout=0.5)``); the
    keyword arguments after ``dropout`` are deepgrad's, for small variants.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, *, in_channels: int = 3, width: float = 1.0,
                 hidden: int | None = None, input_size: int = 224):
        super().__init__()
        if width <= 0:
            raise ValueError(f"AlexNet: width must be positive, got {width}")
        self.in_channels, self.num_classes, self.input_size = in_channels, num_classes, input_size
        layers: list[nn.Module] = []
        side, channels = int(input_size), in_channels
        for item in CFG:
            if item == "M":
                if side >= 3:
                    layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
                    side = (side - 3) // 2 + 1
                else:  # too small a map for the pool: keep the index, drop the pooling
                    layers.append(nn.Identity())
                continue
            out, kernel, stride, padding = item
            out = _scaled(out, width)
            side = (side + 2 * padding - kernel) // stride + 1
            if side < 1:
                raise ValueError(f"AlexNet: input_size {input_size} is too small for the {kernel}x{kernel} "
                                 f"convolution with stride {stride} (needs >= 7)")
            layers += [nn.Conv2d(channels, out, kernel_size=kernel, stride=stride, padding=padding), nn.ReLU(True)]
            channels = out
        self.features = nn.Sequential(*layers)
        pool = 6 if side >= 6 else side  # torchvision's 6x6; a small input keeps its final map
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        hidden = _scaled(4096, width) if hidden is None else int(hidden)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(channels * pool * pool, hidden), nn.ReLU(True),
            nn.Dropout(p=dropout), nn.Linear(hidden, hidden), nn.ReLU(True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"AlexNet: expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def alexnet(**kwargs) -> AlexNet:
    """torchvision's ``alexnet`` layout; keyword arguments as :class:`AlexNet`.

    >>> alexnet(num_classes=10).classifier[6].weight.shape
    (10, 4096)
    """
    return AlexNet(**kwargs)
