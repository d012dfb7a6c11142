"""Turning a list of samples into a batch: ``default_collate`` (stacking) and ``default_convert``.

Dtypes: NumPy arrays, NumPy scalars and Tensors keep their dtype (a float64 sample stays float64);
Python ``int`` labels become int64, Python ``float`` the default float dtype (float32), ``bool`` bool.
Strings stay a list. Tuples become lists of batched fields, dicts dicts, namedtuples namedtuples.

>>> import numpy as np
>>> xb, yb = default_collate([(np.zeros(3, np.float32), 1), (np.ones(3, np.float32), 0)])
>>> xb.shape, yb.dtype
((2, 3), dtype('int64'))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import backend
from ..backend import array_module
from ..creation import as_tensor
from ..tensor import Tensor


def _kind(x) -> str:
    if isinstance(x, Tensor):
        return "Tensor"
    if isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__"):
        return "ndarray"
    if isinstance(x, (bool, np.bool_)):
        return "bool"
    if isinstance(x, (int, float, np.number)):
        return "number"
    if isinstance(x, (str, bytes)):
        return "str"
    if isinstance(x, Mapping):
        return "mapping"
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return "namedtuple"
    if isinstance(x, Sequence):
        return "sequence"
    return type(x).__name__


def _stack(arrays: list, what: str) -> Tensor:
    ref = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != ref:
            raise RuntimeError(f"default_collate: cannot stack {what}s of different shapes into a batch: "
                               f"sample 0 has shape {tuple(ref)} but sample {i} has shape {tuple(a.shape)}")
    if arrays[0].dtype == object or arrays[0].dtype.kind in "USV":
        raise TypeError(f"default_collate: cannot batch {what}s of dtype {arrays[0].dtype}; "
                        f"batch must contain tensors, numpy arrays, numbers, dicts or lists")
    return as_tensor(array_module(arrays[0]).stack(arrays))


def _numbers(batch: list) -> Tensor:
    if all(isinstance(b, (bool, np.bool_)) for b in batch):
        return as_tensor(np.array(batch, dtype=np.bool_))
    if all(isinstance(b, np.generic) for b in batch):
        return as_tensor(np.array(batch))  # NumPy scalars keep their dtype
    if all(isinstance(b, (int, np.integer)) for b in batch):
        return as_tensor(np.array(batch, dtype=np.int64))
    return as_tensor(np.array(batch, dtype=backend.get_default_dtype()))


def default_collate(batch: Sequence):
    """Stack a list of samples into a batch of deepgrad Tensors, recursing into tuples/lists/dicts."""
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError(f"default_collate: expected a non-empty list of samples, got {batch!r:.80}")
    kinds = [_kind(b) for b in batch]
    kind = kinds[0]
    if any(k != kind for k in kinds):
        j = next(i for i, k in enumerate(kinds) if k != kind)
        raise TypeError(f"default_collate: samples in a batch must have the same structure: sample 0 is a {kind} "
                        f"but sample {j} is a {kinds[j]}")
    if kind == "Tensor":
        return _stack([b.array for b in batch], "tensor")
    if kind == "ndarray":
        return _stack(list(batch), "array")
    if kind in ("number", "bool"):
        return _numbers(list(batch))
    if kind == "str":
        return list(batch)
    if kind == "mapping":
        keys = list(batch[0].keys())
        for i, b in enumerate(batch):
            if set(b.keys()) != set(keys):
                raise KeyError(f"default_collate: sample 0 has keys {sorted(map(str, keys))} but sample {i} has keys "
                               f"{sorted(map(str, b.keys()))}")
        return {k: default_collate([b[k] for b in batch]) for k in keys}
    if kind in ("namedtuple", "sequence"):
        n = len(batch[0])
        for i, b in enumerate(batch):
            if len(b) != n:
                raise RuntimeError(f"default_collate: each sample in a batch must have the same number of fields "
                                   f"(e.g. input and target): sample 0 has {n} but sample {i} has {len(b)}")
        fields = [default_collate(list(s)) for s in zip(*batch)]
        return type(batch[0])(*fields) if kind == "namedtuple" else fields
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {kind}")


def default_convert(data):
    """Convert NumPy arrays (recursively in tuples/lists/dicts) to Tensors without batching."""
    kind = _kind(data)
    if kind == "ndarray" and data.dtype != object and data.dtype.kind not in "USV":
        return as_tensor(data)
    if kind == "number" and isinstance(data, np.generic):
        return as_tensor(np.asarray(data))
    if kind == "mapping":
        return {k: default_convert(v) for k, v in data.items()}
    if kind == "namedtuple":
        return type(data)(*(default_convert(v) for v in data))
    if kind == "sequence":
        return [default_convert(v) for v in data]
    return data
