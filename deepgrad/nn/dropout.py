"""Dropout layers (Dropout, Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout): active in train(), the
identity in eval()."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class _Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_Dropout):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)


class Dropout2d(_Dropout):
    """Zero whole channels of (N, C, H, W) inputs with probability p (spatial dropout)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training)


class Dropout1d(_Dropout):
    """Zero whole channels of (N, C, L) inputs (or unbatched (C, L)) with probability p."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout1d(x, self.p, self.training)


class Dropout3d(_Dropout):
    """Zero whole channels of (N, C, D, H, W) inputs with probability p."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout3d(x, self.p, self.training)


class AlphaDropout(_Dropout):
    """Dropout that keeps SELU's zero mean and unit variance (self-normalising networks)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.alpha_dropout(x, self.p, self.training)


class FeatureAlphaDropout(_Dropout):
    """Alpha dropout of whole channels."""

    def forward(self, x: Tensor) -> Tensor:
        return F.feature_alpha_dropout(x, self.p, self.training)
