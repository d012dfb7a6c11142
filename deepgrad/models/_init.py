"""Weight initialisation for the model zoo, drawn in float32 straight into the parameter arrays
(a full-size VGG's 100M-weight classifier would otherwise go through a float64 temporary)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..backend import move_to
from ..creation import default_generator, tensor
from ..ops.inplace import write
from ..tensor import Tensor


def normal_f32_(tensor, std: float, mean: float = 0.0) -> None:
    """Fill ``tensor`` with N(mean, std^2) from deepgrad's global generator (seeded by ``manual_seed``)."""
    if nn.init.init_skipped():  # inside nn.utils.skip_init: leave the memory as it is
        return
    values = default_generator().standard_normal(tensor.shape, dtype=np.float32)
    values *= np.float32(std)
    if mean:
        values += np.float32(mean)
    with no_grad():
        write(tensor, move_to(values, tensor.device).astype(tensor.dtype, copy=False), "init")


def zero_(tensor) -> None:
    if tensor is not None:
        with no_grad():
            write(tensor, 0, "init")


def kaiming_fan_out_(conv) -> None:
    """He-normal with fan_out and ReLU gain (torchvision's conv init), zero bias."""
    w = conv.weight
    receptive = int(np.prod(w.shape[2:]))
    fan_out = w.shape[0] * receptive
    normal_f32_(w, math.sqrt(2.0 / fan_out))
    zero_(conv.bias)


def torchvision_init_(model: nn.Module, linear_std: float | None = None) -> None:
    """torchvision's init: conv He-normal (fan_out), norm layers weight 1 / bias 0, and Linear layers
    N(0, ``linear_std``^2) with zero bias when ``linear_std`` is given (VGG's 0.01); else Linear keeps
    its default init (ResNet)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            kaiming_fan_out_(m)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            if m.weight is not None:
                with no_grad():
                    write(m.weight, 1, "init")
                zero_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            normal_f32_(m.weight, linear_std)
            zero_(m.bias)


def truncated_normal_init_(model: nn.Module, std_of: Callable[[nn.Module], float]) -> None:
    """The Inception family's init (torchvision): conv and linear weights from N(0, std^2) truncated to
    [-2, 2] (absolute bounds, so in practice untruncated), ``std_of(layer)`` giving each layer's std;
    batch-norm weight 1 and bias 0; biases keep their default init."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=std_of(m), a=-2.0, b=2.0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# transform_input of the Inception family: x * (std / 0.5) + (mean - 0.5) / 0.5 per RGB channel, which
# turns ImageNet-normalised input into the [-1, 1] scaling the ported TensorFlow weights were trained on.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_to_half_range(x: Tensor) -> Tensor:
    """``transform_input``: undo ImageNet normalisation and map to [-1, 1], channel by channel."""
    scale = np.array([s / 0.5 for s in _IMAGENET_STD], dtype=x.dtype).reshape(1, 3, 1, 1)
    shift = np.array([(m - 0.5) / 0.5 for m in _IMAGENET_MEAN], dtype=x.dtype).reshape(1, 3, 1, 1)
    return x * tensor(scale, device=x.device) + tensor(shift, device=x.device)
