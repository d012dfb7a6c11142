"""GoogLeNet, "Inception v1" (Szegedy et al., 2014), with torchvision's exact layout: ``conv1..3``
(``BasicConv2d``: conv without bias, batch norm with eps 1e-3, ReLU), nine ``Inception`` blocks
(``inception3a`` ... ``inception5b``) of four parallel branches, two auxiliary heads ``aux1`` / ``aux2``
and ``fc``, so torchvision's weights load as they are.

Two torchvision details are kept on purpose, because its weights depend on them: the "5x5" branch
(``branch3``) is a 3x3 convolution (a bug kept since the weights were trained with it, vision#906), and
the max pools use ``ceil_mode=True``.

In training mode with ``aux_logits`` the model returns ``GoogLeNetOutputs(logits, aux_logits2,
aux_logits1)``, ``aux_logits1`` being the head on ``inception4a`` (torchvision >= 0.21 order); the
paper weights each auxiliary loss by 0.3. In eval mode it returns the logits alone.

``width`` scales every channel count (deepgrad's, for small variants; 1.0 is torchvision's network).
GoogLeNet accepts inputs from 15x15 up.

>>> model = googlenet(num_classes=10, in_channels=1, width=1 / 8)
>>> [tuple(t.shape) for t in model(deepgrad.randn(2, 1, 28, 28))]   # training mode: logits and 2 aux heads
[(2, 10), (2, 10), (2, 10)]
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable

from .. import nn
from ..nn import functional as F
from ..ops.shape import cat
from ..tensor import Tensor
from ._init import imagenet_to_half_range, truncated_normal_init_

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """Convolution (no bias) -> batch norm (eps 1e-3) -> ReLU: ``conv`` and ``bn``, as torchvision."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> "5x5"
    (a 3x3, as torchvision); 3x3 max pool -> 1x1 projection. The 1x1 reductions are what keep the 3x3
    and 5x5 convolutions affordable on hundreds of input channels."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, conv_block: Callable[..., nn.Module] | None = None):
        super().__init__()
        conv_block = BasicConv2d if conv_block is None else conv_block
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(conv_block(in_channels, ch3x3red, kernel_size=1),
                                     conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(conv_block(in_channels, ch5x5red, kernel_size=1),
                                     conv_block(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                     conv_block(in_channels, pool_proj, kernel_size=1))

    def forward(self, x: Tensor) -> Tensor:
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """The auxiliary classifier: 4x4 adaptive average pool -> 1x1 conv (128) -> fc1 (1024) -> ReLU ->
    dropout (0.7) -> fc2. Only used in training, to push gradient into the middle of the network."""

    def __init__(self, in_channels: int, num_classes: int, conv_block: Callable[..., nn.Module] | None = None,
                 dropout: float = 0.7, width: float = 1.0):
        super().__init__()
        conv_block = BasicConv2d if conv_block is None else conv_block
        channels, hidden = _scaled(128, width), _scaled(1024, width)
        self.conv = conv_block(in_channels, channels, kernel_size=1)
        self.fc1 = nn.Linear(channels * 16, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


# (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each block: Table 1 of the paper
BLOCKS: dict[str, tuple] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """GoogLeNet with torchvision's signature and module names.

    ``aux_logits`` adds the two auxiliary heads; ``transform_input`` maps ImageNet-normalised input to the
    [-1, 1] range the ported TensorFlow weights expect; ``init_weights`` (None means True) draws conv and
    linear weights from N(0, 0.01^2) truncated to [-2, 2] (torchvision's init); ``blocks`` replaces
    ``[BasicConv2d, Inception, InceptionAux]``. ``in_channels`` and ``width`` are deepgrad's.
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 init_weights: bool | None = None, blocks: list | None = None, dropout: float = 0.2,
                 dropout_aux: float = 0.7, *, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        if width <= 0:
            raise ValueError(f"GoogLeNet: width must be positive, got {width}")
        if blocks is None:
            blocks = [BasicConv2d, Inception, InceptionAux]
        if len(blocks) != 3:
            raise ValueError(f"GoogLeNet: blocks must list 3 classes (conv, inception, aux), got {len(blocks)}")
        if transform_input and in_channels != 3:
            raise ValueError(f"GoogLeNet: transform_input needs RGB input (in_channels=3), got {in_channels}")
        conv_block, inception_block, aux_block = blocks
        self.aux_logits, self.transform_input = aux_logits, transform_input
        self.in_channels, self.num_classes = in_channels, num_classes

        def c(n: int) -> int:
            return _scaled(n, width)

        self.conv1 = conv_block(in_channels, c(64), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = conv_block(c(64), c(64), kernel_size=1)
        self.conv3 = conv_block(c(64), c(192), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name, cfg in BLOCKS.items():
            if name == "inception4a":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif name == "inception5a":
                self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
            # the input width is the sum of the previous block's four scaled branches, not c(in); as in
            # torchvision, the blocks get no conv_block (only the stem uses blocks[0])
            branches = [c(n) for n in cfg[1:]]
            setattr(self, name, inception_block(_block_input(name, width), *branches))
        if aux_logits:
            extra = {"width": width} if aux_block is InceptionAux else {}
            self.aux1 = aux_block(_block_input("inception4b", width), num_classes, dropout=dropout_aux, **extra)
            self.aux2 = aux_block(_block_input("inception4e", width), num_classes, dropout=dropout_aux, **extra)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(_block_output("inception5b", width), num_classes)
        if init_weights is None or init_weights:
            truncated_normal_init_(self, lambda m: 0.01)

    def _transform_input(self, x: Tensor) -> Tensor:
        return imagenet_to_half_range(x) if self.transform_input else x

    def forward(self, x: Tensor):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"GoogLeNet: expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        # as torchvision: a head runs whenever it exists in training mode (its batch norm statistics move)
        aux1 = self.aux1(x) if self.training and self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.training and self.aux2 is not None else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def _block_output(name: str, width: float) -> int:
    """Channels an Inception block emits: the sum of its four (scaled) branches."""
    return sum(_scaled(n, width) for n in (BLOCKS[name][1], BLOCKS[name][3], BLOCKS[name][5], BLOCKS[name][6]))


def _block_input(name: str, width: float) -> int:
    """Channels entering block ``name``: conv3's output for the first block, else the previous block's."""
    names = list(BLOCKS)
    i = names.index(name)
    return _scaled(192, width) if i == 0 else _block_output(names[i - 1], width)


def googlenet(**kwargs) -> GoogLeNet:
    """torchvision's ``googlenet`` layout; keyword arguments as :class:`GoogLeNet`.

    To load torchvision's ImageNet weights (trained without auxiliary heads' weights being meaningful),
    build with ``aux_logits=True, init_weights=False`` as torchvision does, load, then set
    ``model.aux_logits = False; model.aux1 = model.aux2 = None`` if the heads are not wanted.
    """
    return GoogLeNet(**kwargs)
