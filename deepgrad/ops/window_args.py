"""Arguments and output sizes of the sliding-window ops (convolution, pooling), checked the way torch does.

The window kernels themselves are in :mod:`deepgrad.kernels.im2col`.
"""

from __future__ import annotations

from ..tensor import Tensor


# ----------------------------------------------------------------------------- arguments
def ntuple(value, n: int, name: str, op: str) -> tuple:
    """``value`` (an int or a sequence of n ints) as an n-tuple of ints."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(out) == 1:
        return out * n
    if len(out) != n:
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return out


def check_positive(values: tuple, name: str, op: str) -> None:
    if any(v <= 0 for v in values):
        raise ValueError(f"{op}: {name} must be positive, got {values}")


def check_nonnegative(values: tuple, name: str, op: str) -> None:
    if any(v < 0 for v in values):
        raise ValueError(f"{op}: {name} must be non-negative, got {values}")


def as_batched(x: Tensor, spatial: int, op: str) -> tuple[Tensor, bool]:
    """Check that ``x`` is (N, C, *spatial) or unbatched (C, *spatial); return it batched."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return x.unsqueeze(0), True
    dims = "(N, C, L) or (C, L)" if spatial == 1 else "(N, C, H, W) or (C, H, W)"
    raise RuntimeError(
        f"{op}: expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input {dims}, "
        f"got shape {tuple(x.shape)}"
    )


# ----------------------------------------------------------------------------- geometry
def conv_out_size(size: int, k: int, s: int, pad_lo: int, pad_hi: int, d: int) -> int:
    """Output length of a (floor-mode) sliding window over ``size`` padded by (pad_lo, pad_hi)."""
    return (size + pad_lo + pad_hi - d * (k - 1) - 1) // s + 1


def pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling output length: in ceil mode the last window must start inside input or left pad."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out
