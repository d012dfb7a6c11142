"""VGG (Simonyan & Zisserman, 2014) with torchvision's exact layout: ``features.N`` / ``classifier.N``
with torchvision's indices, an adaptive average pool to 7x7, and the same initialisation.

``width`` scales every channel count and ``hidden`` the classifier so small variants train on a CPU;
``input_size`` below 32 turns the max pools that would shrink the map below 1x1 into Identity layers,
which keeps every index (and so every ``state_dict`` key) where torchvision has it.

>>> vgg16().state_dict()["classifier.0.weight"].shape   # loads torchvision's vgg16 weights
(4096, 25088)
>>> vgg11_bn(num_classes=10, width=1 / 8, hidden=64, input_size=8, in_channels=1)(deepgrad.randn(2, 1, 8, 8)).shape
(2, 10)
"""

from __future__ import annotations

from .. import nn
from ..tensor import Tensor
from ._init import torchvision_init_

# torchvision's configurations: numbers are conv output channels, "M" a 2x2 max pool
CFGS: dict[str, list] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
DEPTH_TO_CFG = {11: "A", 13: "B", 16: "D", 19: "E"}


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def make_layers(cfg: list, batch_norm: bool = False, in_channels: int = 3, width: float = 1.0,
                input_size: int = 224) -> tuple[nn.Sequential, int, int]:
    """``(features, out_channels, out_side)``: torchvision's conv stack for ``cfg``; pools that would take
    the map below 1x1 become Identity (no parameters, same indices)."""
    layers: list[nn.Module] = []
    side, channels = int(input_size), in_channels
    for v in cfg:
        if v == "M":
            if side >= 2:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                side //= 2
            else:
                layers.append(nn.Identity())
        else:
            out = _scaled(v, width)
            layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            channels = out
    return nn.Sequential(*layers), channels, side


class VGG(nn.Module):
    """VGG with torchvision's module names: ``features``, ``avgpool``, ``classifier``.

    ``depth`` is 11, 13, 16 or 19 (or pass a ``cfg`` list). Defaults build the ImageNet model exactly.
    """

    def __init__(self, depth: int = 16, batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3,
                 width: float = 1.0, hidden: int | None = None, input_size: int = 224, dropout: float = 0.5,
                 cfg: list | None = None, init_weights: bool = True):
        super().__init__()
        if cfg is None:
            if depth not in DEPTH_TO_CFG:
                raise ValueError(f"VGG: depth must be one of {sorted(DEPTH_TO_CFG)}, got {depth}")
            cfg = CFGS[DEPTH_TO_CFG[depth]]
        if width <= 0:
            raise ValueError(f"VGG: width must be positive, got {width}")
        if input_size < 1:
            raise ValueError(f"VGG: input_size must be positive, got {input_size}")
        hidden = _scaled(4096, width) if hidden is None else int(hidden)
        self.in_channels, self.input_size, self.num_classes = in_channels, input_size, num_classes
        self.features, channels, side = make_layers(cfg, batch_norm, in_channels, width, input_size)
        pool = 7 if side >= 7 else side  # torchvision's 7x7; a small input keeps its final map
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool * pool, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        if init_weights:
            torchvision_init_(self, linear_std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"VGG: expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def _factory(depth: int, batch_norm: bool):
    def build(**kwargs) -> VGG:
        return VGG(depth=depth, batch_norm=batch_norm, **kwargs)

    build.__name__ = f"vgg{depth}{'_bn' if batch_norm else ''}"
    build.__doc__ = (f"VGG-{depth}{' with batch norm' if batch_norm else ''} (torchvision's "
                     f"``{build.__name__}`` layout); keyword arguments as :class:`VGG`.")
    return build


vgg11, vgg11_bn = _factory(11, False), _factory(11, True)
vgg13, vgg13_bn = _factory(13, False), _factory(13, True)
vgg16, vgg16_bn = _factory(16, False), _factory(16, True)
vgg19, vgg19_bn = _factory(19, False), _factory(19, True)
