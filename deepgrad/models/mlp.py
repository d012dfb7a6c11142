"""MLP: a stack of fully connected layers (flattening its input first), for tabular data and small images."""

from __future__ import annotations

from collections.abc import Sequence

from .. import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "elu": nn.ELU,
                "leaky_relu": nn.LeakyReLU}


def activation_layer(name: str) -> nn.Module:
    """A fresh activation module by name (``relu``, ``tanh``, ``gelu``, ``sigmoid``, ``elu``, ``leaky_relu``)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class MLP(nn.Sequential):
    """``Flatten -> [Linear -> (BatchNorm1d) -> activation -> (Dropout)] * len(hidden) -> Linear``.

    Children are numbered like any Sequential (``0`` is the Flatten, the last is the output Linear), so
    ``state_dict`` keys read ``1.weight``, ``1.bias``, ...

    >>> MLP(64, [128, 64], 10)(deepgrad.randn(5, 1, 8, 8)).shape
    (5, 10)
    """

    def __init__(self, in_features: int, hidden_features: Sequence[int], out_features: int,
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False):
        if isinstance(hidden_features, int):
            hidden_features = [hidden_features]
        sizes = [int(in_features), *[int(h) for h in hidden_features]]
        if any(s < 1 for s in sizes) or out_features < 1:
            raise ValueError(f"MLP: layer sizes must be positive, got in={in_features}, "
                             f"hidden={list(hidden_features)}, out={out_features}")
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers.append(nn.Linear(fan_in, fan_out, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(activation_layer(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], out_features))
        super().__init__(*layers)
        self.in_features, self.hidden_features, self.out_features = in_features, list(hidden_features), out_features
