"""Saving and loading weights as safetensors files: atomic writes, no code execution on load.

A state dict saved here loads into the same PyTorch model (``safetensors.torch.load_file``)
and the reverse: the keys and tensor layouts are torch's.

>>> deepgrad.save(model.state_dict(), "lenet.safetensors")
>>> model.load_state_dict(deepgrad.load("lenet.safetensors"))
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict

import numpy as np
from safetensors.numpy import load_file
from safetensors.numpy import save as safetensors_bytes

from .backend import Device, array_module, move_to
from .tensor import Tensor


def host_array(value, key: str = "value") -> np.ndarray:
    """``value`` (Tensor, NumPy or CuPy array, array-like) as a C-contiguous host array, 0-d kept 0-d."""
    if isinstance(value, Tensor):
        value = value.data
    if array_module(value) is not np:
        value = value.get()
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as e:  # noqa: BLE001 - report which entry is not an array
            raise TypeError(f"save: entry {key!r} is not a tensor or array ({type(value).__name__})") from e
    if value.dtype == object:
        raise TypeError(f"save: entry {key!r} is not a numeric tensor (dtype object)")
    return value if value.flags.c_contiguous else np.ascontiguousarray(value)  # ascontiguousarray makes 0-d 1-d


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that a crash leaves either the old file or the new one,
    never a truncated file: write a temporary file in the same directory, fsync, rename."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save(state_dict, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write a ``{name: tensor}`` dict to a safetensors file, atomically."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save: expected a dict of name -> tensor, got {type(state_dict).__name__}")
    if metadata is not None:
        bad = {k: type(v).__name__ for k, v in metadata.items() if not isinstance(v, str)}
        if bad:
            raise TypeError(f"save: safetensors metadata values must be strings, got {bad}")
    arrays = {str(k): host_array(v, k) for k, v in state_dict.items()}
    atomic_write_bytes(path, safetensors_bytes(arrays, metadata=metadata))


def load(path: str | os.PathLike, device=None) -> OrderedDict:
    """Read a safetensors file into ``{name: Tensor}`` (on ``device``, CPU by default)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}")
    try:
        arrays = load_file(path)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for a malformed header
        raise ValueError(
            f"load: {path!r} is not a safetensors file ({e}); deepgrad reads weights only from safetensors "
            f"and never unpickles (torch .pt files: export them with safetensors.torch.save_file)"
        ) from None
    dev = Device(device) if device is not None else None
    out = OrderedDict()
    for k, v in arrays.items():
        out[k] = Tensor._make(move_to(v, dev) if dev is not None else v, None)
    return out
