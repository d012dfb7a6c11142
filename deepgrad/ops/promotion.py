"""torch's type promotion, in one place: the dtype a binary op computes and returns in.

NumPy and torch agree within a category but not across them, so every op that mixes operands asks
:func:`result_type` instead of letting NumPy decide:

- categories rank bool < integer < floating; the result is in the highest category present;
- tensors with dimensions decide first, then 0-d tensors, then Python numbers — an operand of a lower
  rank only widens the result when it brings a higher *category* (``float32 tensor + float64 0-d
  tensor`` is float32; ``int32 tensor + 2.5`` is the default float dtype; ``uint8 tensor - 5`` is
  uint8, wrapping around as torch does);
- a Python float counts as the default dtype (float32), an int as int64, a bool as bool;
- two dtypes of one rank combine like NumPy's ``promote_types``, except that any float beats any
  integer (``int64`` with ``float16`` is float16 in torch, float64 in NumPy).

>>> import deepgrad as dg
>>> result_type(dg.zeros(2, dtype=dg.int32), 2.5)
dtype('float32')
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor

_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
                "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def torch_name(dtype) -> str:
    """torch's short name of a dtype, as its messages say it (``Float``, ``Long``, ``Bool``...)."""
    return _TORCH_NAMES.get(np.dtype(dtype).name, str(dtype))


def category(dtype) -> int:
    """0 bool, 1 integer, 2 floating, 3 complex."""
    return _RANK[np.dtype(dtype).kind]


def promote_types(a, b) -> np.dtype:
    """torch.promote_types: the smallest dtype both fit, any float beating any integer."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb and (ca >= 2 or cb >= 2):
        return a if ca > cb else b
    return np.promote_types(a, b)


def _scalar_dtype(value) -> np.dtype:
    if isinstance(value, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(value, (int, np.integer)):
        return np.dtype(np.int64)
    if isinstance(value, (float, np.floating)):
        return np.dtype(backend.get_default_dtype())
    if isinstance(value, complex):
        return np.dtype(np.complex64 if backend.get_default_dtype() == np.float32 else np.complex128)
    raise TypeError(f"unsupported operand type {type(value).__name__} for a Tensor op")


def _combine(higher, lower):
    """c10's combine_categories: the higher-ranked group's dtype unless the lower one brings a higher category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if category(higher) >= 2:
        return higher
    if category(higher) == 0 or category(lower) >= 2:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> np.dtype:
    """The dtype torch computes ``op(*operands)`` in (Tensors and Python/NumPy numbers)."""
    dims = zeros = scalars = None
    for x in operands:
        if isinstance(x, Tensor):
            d = x.array.dtype
            if x.array.ndim:
                dims = d if dims is None else promote_types(dims, d)
            else:
                zeros = d if zeros is None else promote_types(zeros, d)
        elif x is not None:
            d = _scalar_dtype(x)
            scalars = d if scalars is None else promote_types(scalars, d)
    out = _combine(dims, _combine(zeros, scalars))
    if out is None:
        raise TypeError("result_type: expected at least one Tensor or number")
    return np.dtype(out)


def scalar_in(value, dtype: np.dtype):
    """A Python number as an operand of an op computing in ``dtype``: integers that do not fit wrap
    around as in torch (NumPy would raise), everything else stays a Python number (NumPy then computes in
    ``dtype``, not in float64)."""
    if isinstance(value, np.generic):
        value = value.item()
    if dtype.kind in "iu" and isinstance(value, int) and not isinstance(value, bool):
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            return np.array(value % (1 << (8 * dtype.itemsize))).astype(np.uint64).astype(dtype)[()]
    return value
