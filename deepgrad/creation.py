"""Creating tensors: from data, filled, ranges, random (seeded), and zero-copy exchange."""

from __future__ import annotations

import math

import numpy as np

from . import backend
from .backend import Device, module_for_device
from .tensor import Tensor

# ----------------------------------------------------------------------------- random state
_generator = np.random.default_rng()
_cuda_seed: int | None = None


def manual_seed(seed: int) -> np.random.Generator:
    """Seed every random source deepgrad draws from (CPU and, when present, GPU)."""
    global _generator, _cuda_seed
    _generator = np.random.default_rng(seed)
    _cuda_seed = seed
    cp = backend.cupy_module() if backend._cupy_checked else None
    if cp is not None:
        cp.random.seed(seed)
    return _generator


def default_generator() -> np.random.Generator:
    """The global NumPy generator seeded by :func:`manual_seed`."""
    return _generator


def get_rng_state() -> dict:
    """The global generator's state (for exact resume of a training run)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state


def _cuda_random(device: Device):
    cp = module_for_device(device)
    if _cuda_seed is not None and not getattr(_cuda_random, "seeded", False):
        cp.random.seed(_cuda_seed)
        _cuda_random.seeded = True
    return cp.random


# ----------------------------------------------------------------------------- helpers
def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(s) for s in size)


def _finish(data, requires_grad: bool) -> Tensor:
    t = Tensor._make(data, None)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dtype(dtype):
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def _xp(device):
    return np if device is None else module_for_device(Device(device))


# ----------------------------------------------------------------------------- from data
def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor copying ``data`` (Python floats become float32 by default).

    >>> tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    tensor([[1., 2.],
            [3., 4.]], requires_grad=True)
    """
    if isinstance(data, Tensor):
        data = data.array
    if device is None and not isinstance(data, (list, tuple, int, float, bool, np.ndarray, np.generic)):
        device = backend.device_of(data)  # keep CuPy arrays on their GPU
    t = Tensor(data, dtype=dtype, device=device)
    source = data if isinstance(data, np.ndarray) else None
    if source is None and hasattr(data, "__array__") and backend.array_module(data) is np:
        source = np.asarray(data)  # e.g. a torch tensor: a view of its memory, which must not be shared
    if t.array is data or (source is not None and isinstance(t.array, np.ndarray)
                           and np.shares_memory(t.array, source)):
        t.array = t.array.copy()
    return _finish(t.array, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor` but shares memory with ``data`` when no conversion is needed."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if device is None and not isinstance(data, (Tensor, list, tuple, int, float, bool, np.ndarray, np.generic)):
        device = backend.device_of(data)  # a CuPy array stays on its GPU, as torch.as_tensor keeps a CUDA array
    return Tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (changes to one show in the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    return Tensor._make(array, None)


def from_dlpack(obj) -> Tensor:
    """Zero-copy import of any DLPack producer (a torch tensor, a CuPy or NumPy array)."""
    kDLCPU, kDLCUDA = 1, 2
    device_type = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else kDLCPU
    if device_type == kDLCUDA:
        cp = module_for_device(Device("cuda"))
        return Tensor._make(cp.from_dlpack(obj), None)
    if device_type != kDLCPU:
        raise RuntimeError(f"from_dlpack: unsupported DLPack device type {device_type}")
    return Tensor._make(np.from_dlpack(obj), None)


# ----------------------------------------------------------------------------- filled
def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _finish(_xp(device).zeros(_size(size), dtype=_float_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _finish(_xp(device).ones(_size(size), dtype=_float_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (contents are whatever memory held)."""
    return _finish(_xp(device).empty(_size(size), dtype=_float_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value`` (its dtype follows the value, as in torch)."""
    if dtype is None:
        dtype = (
            backend.bool_ if isinstance(fill_value, bool)
            else backend.int64 if isinstance(fill_value, int)
            else backend.get_default_dtype()
        )
    return _finish(_xp(device).full(_size((size,)), fill_value, dtype=dtype), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """The identity matrix (n x m)."""
    return _finish(_xp(device).eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``; integers stay int64."""
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, (Tensor, np.generic)) else v for v in (start, end, step))
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.get_default_dtype()
    dtype = np.dtype(dtype)
    if not all(math.isfinite(v) for v in (start, end, step)):
        raise RuntimeError(f"unsupported range: {start} -> {end}")
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    # torch: the length from the bounds as given; the values from start and step in the result's
    # accumulate type (float64, or int64 after truncating them for an integer dtype), then cast.
    n = -((start - end) // step) if all(isinstance(v, int) for v in (start, end, step)) else \
        math.ceil((end - start) / step)
    if dtype.kind in "iub":
        start, step = int(start), int(step)
        if step == 0:
            raise ValueError("step must be nonzero")
    values = np.arange(max(n, 0), dtype=np.float64 if dtype.kind == "f" else np.int64) * step + start
    return _finish(_xp(device).asarray(values.astype(dtype)), requires_grad)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    return _finish(_xp(device).linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None, requires_grad: bool = False):
    """``steps`` values from ``base ** start`` to ``base ** end``, evenly spaced in the exponent."""
    exponents = np.linspace(start, end, steps, dtype=np.float64)
    return _finish(_xp(device).asarray((float(base) ** exponents).astype(_float_dtype(dtype))), requires_grad)


def scalar_tensor(s, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A 0-d tensor holding ``s`` (in the default float dtype unless ``dtype`` says otherwise)."""
    return _finish(_xp(device).asarray(s, dtype=_float_dtype(dtype)), requires_grad)


def new_like(t: Tensor, kind: str, size: tuple, *, fill_value=None, data=None, dtype=None, device=None,
             requires_grad: bool = False, layout=None, pin_memory: bool = False) -> Tensor:
    """``t.new_zeros/new_ones/new_empty/new_full/new_tensor``: a new tensor with ``t``'s dtype and device
    unless given."""
    dtype = t.dtype if dtype is None else dtype
    device = t.device if device is None else device
    if kind == "tensor":
        return tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)
    if kind == "full":
        return full(size[0], fill_value, dtype=dtype, device=device, requires_grad=requires_grad)
    return {"zeros": zeros, "ones": ones, "empty": empty}[kind](*size, dtype=dtype, device=device,
                                                              requires_grad=requires_grad)


def _like(fn, t: Tensor, dtype, device, requires_grad, *args):
    return fn(*args, t.shape, dtype=t.dtype if dtype is None else dtype,
              device=t.device if device is None else device, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(empty, t, dtype, device, requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype,
                device=t.device if device is None else device, requires_grad=requires_grad)


# ----------------------------------------------------------------------------- random
def _random(kind: str, size, dtype, device, requires_grad, generator=None, **kw) -> Tensor:
    dtype = _float_dtype(dtype)
    if device is not None and Device(device).type == "cuda":
        rs = _cuda_random(Device(device))
        draw = dtype if dtype in (np.float32, np.float64) else np.float32  # cupy.random draws only these two
        with module_for_device(Device(device)).cuda.Device(Device(device).index):
            data = rs.standard_normal(size, dtype=draw) if kind == "normal" else rs.random(size, dtype=draw)
        return _finish(data.astype(dtype, copy=False), requires_grad)
    g = _generator if generator is None else generator
    if kind == "normal":
        data = g.standard_normal(size, dtype=dtype if dtype in (np.float32, np.float64) else np.float64)
    else:
        data = g.random(size, dtype=dtype if dtype in (np.float32, np.float64) else np.float64)
    return _finish(data.astype(dtype, copy=False), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _random("uniform", _size(size), dtype, device, requires_grad, generator)


def randn(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Standard normal samples."""
    return _random("normal", _size(size), dtype, device, requires_grad, generator)


def randint(low, high=None, size=(), dtype=None, device=None, generator=None) -> Tensor:
    """Integers uniformly from [low, high) (``randint(high, size)`` draws from [0, high))."""
    if isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    dtype = backend.int64 if dtype is None else np.dtype(dtype)
    if device is not None and Device(device).type == "cuda":
        return Tensor._make(_cuda_random(Device(device)).randint(low, high, size).astype(dtype), None)
    g = _generator if generator is None else generator
    return Tensor._make(g.integers(low, high, size=tuple(size)).astype(dtype, copy=False), None)


def randperm(n: int, dtype=None, device=None, generator=None) -> Tensor:
    """A random permutation of 0..n-1."""
    g = _generator if generator is None else generator
    data = g.permutation(n).astype(backend.int64 if dtype is None else dtype)
    return Tensor(data, device=device) if device is not None else Tensor._make(data, None)


def rand_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(rand, t, dtype, device, requires_grad)


def randn_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _like(randn, t, dtype, device, requires_grad)


def randint_like(t: Tensor, low, high=None, dtype=None, device=None) -> Tensor:
    return randint(low, high, t.shape, dtype=t.dtype if dtype is None else dtype,
                   device=t.device if device is None else device)


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """1 with probability ``input`` (or ``p``) for each element, else 0, in input's dtype."""
    probs = input.array if p is None else backend.array_module(input.array).full(input.shape, p)
    draws = rand(input.shape, dtype=backend.float64, generator=generator).array
    draws = backend.move_to(draws, input.device)
    return Tensor._make((draws < probs).astype(input.dtype), None)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """``num_samples`` indices per row drawn with probabilities proportional to the row's weights."""
    weights = backend.move_to(input.array, Device("cpu")).astype(np.float64)
    rows = weights.reshape(-1, weights.shape[-1]) if weights.ndim else weights.reshape(1, 1)
    if input.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim, got {input.ndim}")
    if (rows < 0).any() or not np.isfinite(rows).all():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if (rows.sum(axis=1) <= 0).any():
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    g = _generator if generator is None else generator
    out = np.stack([g.choice(rows.shape[1], size=num_samples, replace=replacement, p=r / r.sum()) for r in rows])
    out = out.astype(np.int64).reshape(input.shape[:-1] + (num_samples,))
    return Tensor._make(backend.move_to(out, input.device), None)


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad: bool = False):
    """Normal samples with the given ``mean`` and ``std`` (numbers with a ``size``, or tensors broadcast)."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal(): with a number mean and std, size must be given")
        z = randn(_size((size,)), dtype=dtype, device=device, generator=generator)
        return _finish(z.array * std + mean, requires_grad)
    ref = mean if isinstance(mean, Tensor) else std
    m = mean.array if isinstance(mean, Tensor) else mean
    s = std.array if isinstance(std, Tensor) else std
    shape = np.broadcast_shapes(np.shape(m), np.shape(s))
    z = randn(shape, dtype=ref.dtype, device=ref.device, generator=generator)
    return Tensor._make((z.array * s + m).astype(ref.dtype, copy=False), None)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    return t.numel()

