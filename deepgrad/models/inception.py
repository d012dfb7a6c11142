"""Inception-v3 (Szegedy et al., 2015, "Rethinking the Inception Architecture") with torchvision's exact
layout: the stem ``Conv2d_1a_3x3`` ... ``Conv2d_4a_3x3``, blocks ``Mixed_5b`` ... ``Mixed_7c`` (InceptionA
to InceptionE), the auxiliary head ``AuxLogits`` and ``fc``, so torchvision's weights load as they are.

The ideas over GoogLeNet: a 5x5 convolution factorised into two 3x3 (InceptionA), an n x n one into 1 x n
followed by n x 1 (InceptionC, n = 7; InceptionE's split 1x3 / 3x1 branches), and grid reduction by
parallel stride-2 branches instead of a pool that would bottleneck the representation (InceptionB, D).

In training mode with ``aux_logits`` the model returns ``InceptionOutputs(logits, aux_logits)``; in eval
mode the logits alone. The minimum input is 75x75 (torchvision's); 299x299 is the native size.

>>> model = inception_v3(num_classes=10, aux_logits=False).eval()
>>> model(deepgrad.randn(1, 3, 75, 75)).shape
(1, 10)
"""

from __future__ import annotations

from collections import namedtuple

from .. import nn
from ..nn import functional as F
from ..ops.shape import cat
from ..tensor import Tensor
from ._init import imagenet_to_half_range, truncated_normal_init_
from .googlenet import BasicConv2d

InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])


def _pool3(x: Tensor) -> Tensor:
    """The 3x3 stride-1 average pool of the pool branches (zeros counted at the borders, torch's default)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35x35 block: 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3 (a factorised 5x5); avg pool -> 1x1."""

    def __init__(self, in_channels: int, pool_features: int, conv_block=None):
        super().__init__()
        conv_block = BasicConv2d if conv_block is None else conv_block
        self.branch1x1 = conv_block(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = conv_block(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = conv_block(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = conv_block(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = conv_block(96, 96, kernel_size=3, padding=1)
        self.branch_pool = conv_block(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return cat([self.branch1x1(x), b5, b3, self.branch_pool(_pool3(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: stride-2 3x3; 1x1 -> 3x3 -> stride-2 3x3; stride-2 max pool."""

    def __init__(self, in_channels: int, conv_block=None):
        super().__init__()
        conv_block = BasicConv2d if conv_block is None else conv_block
        self.branch3x3 = conv_block(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = conv_block(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = conv_block(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with 7x7 convolutions factorised into 1x7 and 7x1 (``channels_7x7`` inside)."""

    def __init__(self, in_channels: int, channels_7x7: int, conv_block=None):
        super().__init__()
        conv_block = BasicConv2d if conv_block is None else conv_block
        c7 = channels_7x7
        row, col = {"kernel_size": (1, 7), "padding": (0, 3)}, {"kernel_size": (7, 1), "padding": (3, 0)}
        self.branch1x1 = conv_block(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = conv_block(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = conv_block(c7, c7, **row)
        self.branch7x7_3 = conv_block(c7, 192, **col)
        self.branch7x7dbl_1 = conv_block(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = conv_block(c7, c7, **col)
        self.branch7x7dbl_3 = conv_block(c7, c7, **row)
        self.branch7x7dbl_4 = conv_block(c7, c7, **col)
        self.branch7x7dbl_5 = conv_block(c7, 192, **row)
        self.branch_pool = conv_block(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        return cat([self.branch1x1(x), b7, bd, self.branch_pool(_pool3(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: 1x1 -> stride-2 3x3; 1x1 -> 1x7 -> 7x1 -> stride-2 3x3; stride-2 max pool."""

    def __init__(self, in_channels: int, conv_block=None):
        super().__init__()
        conv_block = BasicConv2d if conv_block is None else conv_block
        self.branch3x3_1 = conv_block(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = conv_block(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = conv_block(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = conv_block(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = conv_block(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = conv_block(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block whose 3x3 branches split into parallel 1x3 and 3x1 convolutions (wider, not deeper)."""

    def __init__(self, in_channels: int, conv_block=None):
        super().__init__()
        conv_block = BasicConv2d if conv_block is None else conv_block
        row, col = {"kernel_size": (1, 3), "padding": (0, 1)}, {"kernel_size": (3, 1), "padding": (1, 0)}
        self.branch1x1 = conv_block(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = conv_block(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = conv_block(384, 384, **row)
        self.branch3x3_2b = conv_block(384, 384, **col)
        self.branch3x3dbl_1 = conv_block(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = conv_block(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = conv_block(384, 384, **row)
        self.branch3x3dbl_3b = conv_block(384, 384, **col)
        self.branch_pool = conv_block(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return cat([self.branch1x1(x), b3, bd, self.branch_pool(_pool3(x))], 1)


class InceptionAux(nn.Module):
    """The auxiliary head on the 17x17 grid: 5x5/3 average pool -> 1x1 (128) -> 5x5 (768) -> global pool -> fc."""

    def __init__(self, in_channels: int, num_classes: int, conv_block=None):
        super().__init__()
        conv_block = BasicConv2d if conv_block is None else conv_block
        self.conv0 = conv_block(in_channels, 128, kernel_size=1)
        self.conv1 = conv_block(128, 768, kernel_size=5)
        # torchvision's init std per layer; set on the BasicConv2d, so (as there) its inner conv keeps 0.1
        self.conv1.stddev = 0.01
        self.fc = nn.Linear(768, num_classes)
        self.fc.stddev = 0.001

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(F.adaptive_avg_pool2d(x, (1, 1)).flatten(1))


class Inception3(nn.Module):
    """Inception-v3 with torchvision's signature and module names.

    ``aux_logits`` adds ``AuxLogits``; ``transform_input`` maps ImageNet-normalised input to [-1, 1] (the
    ported weights' scaling); ``init_weights`` (None means True) draws each conv/linear weight from a
    truncated normal with std 0.1 (0.001 for the aux ``fc``); ``inception_blocks`` replaces the seven
    classes ``[BasicConv2d, InceptionA, ..., InceptionE, InceptionAux]``.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 inception_blocks: list | None = None, init_weights: bool | None = None, dropout: float = 0.5):
        super().__init__()
        if inception_blocks is None:
            inception_blocks = [BasicConv2d, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, InceptionAux]
        if len(inception_blocks) != 7:
            raise ValueError(f"Inception3: inception_blocks must list 7 classes, got {len(inception_blocks)}")
        conv, block_a, block_b, block_c, block_d, block_e, aux = inception_blocks
        self.aux_logits, self.transform_input, self.num_classes = aux_logits, transform_input, num_classes
        self.Conv2d_1a_3x3 = conv(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = conv(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = conv(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = conv(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = conv(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = block_a(192, pool_features=32)
        self.Mixed_5c = block_a(256, pool_features=64)
        self.Mixed_5d = block_a(288, pool_features=64)
        self.Mixed_6a = block_b(288)
        self.Mixed_6b = block_c(768, channels_7x7=128)
        self.Mixed_6c = block_c(768, channels_7x7=160)
        self.Mixed_6d = block_c(768, channels_7x7=160)
        self.Mixed_6e = block_c(768, channels_7x7=192)
        self.AuxLogits = aux(768, num_classes) if aux_logits else None
        self.Mixed_7a = block_d(768)
        self.Mixed_7b = block_e(1280)
        self.Mixed_7c = block_e(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)
        if init_weights is None or init_weights:
            truncated_normal_init_(self, lambda m: float(getattr(m, "stddev", 0.1)))

    def _transform_input(self, x: Tensor) -> Tensor:
        return imagenet_to_half_range(x) if self.transform_input else x

    def forward(self, x: Tensor):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"Inception3: expected input (N, 3, H, W), got {tuple(x.shape)}")
        if min(x.shape[2:]) < 75:
            raise ValueError(f"Inception3: the minimum input size is 75x75, got {tuple(x.shape[2:])}")
        x = self._transform_input(x)
        x = self.maxpool1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            x = getattr(self, name)(x)
        aux = self.AuxLogits(x) if self.training and self.AuxLogits is not None else None
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        x = self.fc(self.dropout(self.avgpool(x)).flatten(1))
        if self.training and self.aux_logits:
            return InceptionOutputs(x, aux)
        return x


def inception_v3(**kwargs) -> Inception3:
    """torchvision's ``inception_v3`` layout; keyword arguments as :class:`Inception3`.

    torchvision's ImageNet weights were built with ``aux_logits=True, init_weights=False`` and are used
    with ``transform_input=True``.
    """
    return Inception3(**kwargs)
