"""Weight initialisation for the model zoo, drawn in float32 straight into the parameter arrays
(a full-size VGG's 100M-weight classifier would otherwise go through a float64 temporary)."""

from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..backend import move_to
from ..creation import default_generator
from ..ops.inplace import write


def normal_f32_(tensor, std: float, mean: float = 0.0) -> None:
    """Fill ``tensor`` with N(mean, std^2) from deepgrad's global generator (seeded by ``manual_seed``)."""
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
