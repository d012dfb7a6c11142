"""Array backends: NumPy on the CPU, CuPy on NVIDIA GPUs, chosen by where the data lives.

Every op receives raw arrays and asks :func:`array_module` for the module that owns them, so
one code path serves both backends. CuPy is imported lazily: deepgrad works without it.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np

_cupy = None
_cupy_checked = False


def cupy_module():
    """Return the ``cupy`` module, or ``None`` when CuPy (or a GPU) is unavailable."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() > 0:
                _cupy = cupy
        except Exception:  # ImportError, or a CUDA driver/runtime error: no usable GPU
            _cupy = None
    return _cupy


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return cupy_module() is not None


def array_module(array):
    """``numpy`` for NumPy arrays, ``cupy`` for CuPy arrays (the ``xp`` of an op)."""
    if type(array) is np.ndarray or isinstance(array, np.generic):
        return np
    cp = cupy_module()
    if cp is not None and isinstance(array, cp.ndarray):
        return cp
    return np


class Device:
    """Where a tensor's data lives: ``Device("cpu")`` or ``Device("cuda", 0)``.

    >>> Device("cuda:1")
    device(type='cuda', index=1)
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str | Device = "cpu", index: int | None = None):
        if isinstance(type, Device):
            type, index = type.type, type.index if index is None else index
        if ":" in type:
            type, idx = type.split(":", 1)
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise ValueError(f"unknown device type {type!r}: expected 'cpu' or 'cuda[:N]'")
        if type == "cpu":
            index = None
        elif index is None:
            index = 0
        self.type = type
        self.index = index

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = Device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = Device("cpu")


def device_of(array) -> Device:
    """The :class:`Device` holding ``array``."""
    if array_module(array) is np:
        return CPU
    return Device("cuda", int(array.device.id))


def move_to(array, device: Device):
    """Copy ``array`` to ``device`` (no copy when it is already there)."""
    if device.type == "cpu":
        if array_module(array) is np:
            return array
        return array.get()
    cp = cupy_module()
    if cp is None:
        raise RuntimeError(
            "device 'cuda' requested but CuPy is not installed or no CUDA device is visible; "
            "install cupy-cuda12x (or cupy-cuda13x) on a machine with an NVIDIA GPU"
        )
    with cp.cuda.Device(device.index):
        return cp.asarray(array)


def module_for_device(device: Device):
    """The array module that allocates on ``device``."""
    if device.type == "cpu":
        return np
    cp = cupy_module()
    if cp is None:
        move_to(np.empty(0), device)  # raises the explanatory error
    return cp


# ----------------------------------------------------------------------------- dtypes
# dtypes are NumPy dtype objects, so they compare equal to NumPy's and CuPy's own.
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def get_default_dtype() -> np.dtype:
    """The floating dtype that new float tensors get (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the floating dtype of new float tensors (float32 or float64)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes are allowed, got {dtype}")
    _default_dtype = dtype


def is_floating(dtype) -> bool:
    return dtype.kind == "f"


def erf(x):
    """The error function on either backend (SciPy's on the CPU, CuPy's on the GPU)."""
    if array_module(x) is np:
        from scipy.special import erf as _erf

        return _erf(x)
    from cupyx.scipy.special import erf as _erf

    return _erf(x)


def scatter_add(target, index, values) -> None:
    """``target[index] += values`` where repeated indices accumulate (np.add.at semantics)."""
    if array_module(target) is np:
        np.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


# ----------------------------------------------------------------------------- allocator
def _tune_glibc_malloc() -> None:
    """Keep large freed buffers in the process instead of returning them to the OS.

    glibc serves big allocations with mmap and unmaps them on free; a training step that
    allocates the same activations every iteration then pays thousands of page faults per
    step. Raising the mmap and trim thresholds makes freed blocks reusable. Measured on a
    NumPy LeNet step: 9.4 ms -> 5.0 ms.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)  # glibc's ceiling for this setting on 64-bit
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        pass


_tune_glibc_malloc()
