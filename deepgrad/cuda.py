"""``deepgrad.cuda``: torch.cuda's everyday calls, answered by CuPy when a GPU is there.

>>> import deepgrad as dg
>>> dg.cuda.device_count() >= 0
True
"""

from __future__ import annotations

from . import backend, creation
from . import cuda_graphs as graphs  # noqa: F401 - dg.cuda.graphs.capture_step


def is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return backend.cuda_is_available()


def device_count() -> int:
    """How many CUDA devices CuPy sees (0 without CuPy or a GPU)."""
    cp = backend.cupy_module()
    return 0 if cp is None else int(cp.cuda.runtime.getDeviceCount())


def current_device() -> int:
    """The index of the current CUDA device."""
    cp = _cupy("current_device")
    return int(cp.cuda.Device().id)


def get_device_name(device=None) -> str:
    """The name of a CUDA device (the current one by default)."""
    cp = _cupy("get_device_name")
    index = backend.Device(device).index if isinstance(device, (str, backend.Device)) else device
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id if index is None else index)
    return props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])


def synchronize(device=None) -> None:
    """Wait for the GPU's queued work to finish (nothing to wait for without a GPU)."""
    cp = backend.cupy_module()
    if cp is not None:
        cp.cuda.Device().synchronize()


def empty_cache() -> None:
    """Hand CuPy's cached free GPU memory back to the driver."""
    cp = backend.cupy_module()
    if cp is not None:
        cp.get_default_memory_pool().free_all_blocks()


def manual_seed(seed: int) -> None:
    """Seed the GPU random stream only (deepgrad.manual_seed seeds the CPU stream as well)."""
    creation._cuda_seed = int(seed)
    creation._cuda_random.seeded = False  # reseed on the next draw, or now when CuPy is loaded
    cp = backend.cupy_module() if backend._cupy_checked else None
    if cp is not None:
        cp.random.seed(int(seed))
        creation._cuda_random.seeded = True


manual_seed_all = manual_seed  # one random stream serves every GPU


def _cupy(name: str):
    cp = backend.cupy_module()
    if cp is None:
        raise RuntimeError(f"cuda.{name}(): no CUDA device (CuPy is not installed or sees no GPU)")
    return cp
