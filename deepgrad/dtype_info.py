"""Numeric limits of the dtypes (``finfo``, ``iinfo``) and the casting question ``can_cast``, as torch
answers them.

>>> import deepgrad as dg
>>> dg.finfo(dg.float32).eps
1.1920928955078125e-07
"""

from __future__ import annotations

import numpy as np

from . import backend


class finfo:  # noqa: N801  (torch's name)
    """The limits of a floating dtype (the default one when none is given): eps, max, min, tiny,
    smallest_normal, resolution, bits, dtype."""

    def __init__(self, type=None):
        dtype = np.dtype(backend.get_default_dtype() if type is None else type)
        if dtype.kind != "f":
            raise TypeError(f"torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            f"'{dtype.name}'")
        info = np.finfo(dtype)
        self.bits, self.dtype = int(info.bits), dtype.name
        self.eps, self.max, self.min = float(info.eps), float(info.max), float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # torch's: exactly a power of ten

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801  (torch's name)
    """The limits of an integer dtype: max, min, bits, dtype."""

    def __init__(self, type):
        dtype = np.dtype(type)
        if dtype.kind not in "iub":
            raise TypeError(f"torch.iinfo() requires an integer input type. Use torch.finfo to handle "
                            f"'{dtype.name}'")
        info = np.iinfo(np.uint8 if dtype.kind == "b" else dtype)
        self.bits, self.dtype = int(info.bits), dtype.name
        self.max, self.min = int(info.max), int(info.min)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def can_cast(from_, to) -> bool:
    """Whether torch's type promotion allows casting ``from_`` to ``to`` (no float -> integer, no number ->
    bool, within a category any size)."""
    order = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
    return order[np.dtype(from_).kind] <= order[np.dtype(to).kind]
