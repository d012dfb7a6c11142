"""Saving and loading weights as safetensors files: atomic writes, no code execution on load.

A state dict saved here loads into the same PyTorch model (``safetensors.torch.load_file``)
and the reverse: the keys and tensor layouts are torch's.

>>> deepgrad.save(model.state_dict(), "lenet.safetensors")
>>> model.load_state_dict(deepgrad.load("lenet.safetensors"))
"""

from __future__ import annotations

import json
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
        value = value.array
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


def _not_safetensors(path: str, why: str) -> ValueError:
    return ValueError(
        f"{path!r} is not a safetensors file ({why}): deepgrad reads weights only from safetensors files and "
        f"never unpickles (unpickling a .pt/.pth file can run arbitrary code). Export a PyTorch model with: "
        f"safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')")


def read_header(path: str | os.PathLike) -> dict:
    """The JSON header of a safetensors file, after checking that the file is one (an 8-byte header
    length, then a JSON object); a pickle, a torch zip archive or anything else is refused with a message."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file {path!r}")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _not_safetensors(path, f"only {size} bytes")
        n = int.from_bytes(head, "little")
        if not 2 <= n <= size - 8:
            # Only now say what it looks like instead: a valid length may well start with byte 0x80.
            if head[:4] == b"PK\x03\x04":
                raise _not_safetensors(path, "it is a zip archive, as torch.save writes")
            if head[:1] == b"\x80":
                raise _not_safetensors(path, "it is a Python pickle")
            raise _not_safetensors(path, "no valid header length in its first 8 bytes")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _not_safetensors(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _not_safetensors(path, "its header is not a JSON object")
    return header


def metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` strings of a safetensors file (empty when it has none)."""
    return dict(read_header(path).get("__metadata__") or {})


def load_arrays(path: str | os.PathLike) -> OrderedDict:
    """``{name: numpy array}`` from a safetensors file, after :func:`read_header`'s check."""
    read_header(path)
    try:
        return OrderedDict(load_file(os.fspath(path)))
    except Exception as e:  # noqa: BLE001 - e.g. bfloat16 (no NumPy dtype) or a truncated file
        raise ValueError(f"cannot read {os.fspath(path)!r}: {e}") from None


def load(path: str | os.PathLike, device=None) -> OrderedDict:
    """Read a safetensors file into ``{name: Tensor}`` (on ``device``, CPU by default)."""
    dev = Device(device) if device is not None else None
    return OrderedDict((k, Tensor._make(move_to(v, dev) if dev is not None else v, None))
                       for k, v in load_arrays(path).items())
