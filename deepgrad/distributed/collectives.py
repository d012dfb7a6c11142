"""The process group and the collectives on tensors (``torch.distributed`` names and semantics).

Every collective works in place on ``tensor.array`` and must be called by every rank, in the same order.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ..backend import array_module
from ..tensor import Tensor
from . import _backends
from ._backends import Work


class ReduceOp:
    """Reduction operators of :func:`all_reduce` (``ReduceOp.SUM``, ...; AVG is for floating tensors)."""

    SUM = _backends.SUM
    PRODUCT = _backends.PRODUCT
    MIN = _backends.MIN
    MAX = _backends.MAX
    AVG = _backends.AVG


_group = None  # the default process group (a backend object), set by init_process_group


def is_available() -> bool:
    """True: the package itself always imports; see :func:`is_mpi_available` / :func:`is_nccl_available`."""
    return True


def is_mpi_available() -> bool:
    """True when mpi4py is installed (the MPI library itself is checked when the group starts)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available() -> bool:
    """True when CuPy with its NCCL bindings and a CUDA device are present."""
    from ..backend import cuda_is_available

    if not cuda_is_available():
        return False
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, "available", True))


def init_process_group(backend: str = "mpi", device_id: int | None = None) -> None:
    """Join the job's process group. ``backend="mpi"`` (CPU, mpi4py) or ``"nccl"`` (GPU, CuPy NCCL).

    Rank and world size come from the launcher (``mpiexec -n K`` / ``deepgrad launch -n K``); a plain
    ``python script.py`` is a world of one. ``device_id`` picks the GPU for nccl (default: local rank).

    >>> import deepgrad.distributed as dist
    >>> dist.init_process_group("mpi")
    >>> dist.get_rank(), dist.get_world_size()
    (0, 1)
    >>> dist.destroy_process_group()
    """
    global _group
    if _group is not None:
        raise RuntimeError("trying to initialize the default process group twice "
                           "(call destroy_process_group() first)")
    if backend == "mpi":
        if not is_mpi_available():
            raise RuntimeError("init_process_group(backend='mpi') needs mpi4py and an MPI library: "
                               "pip install 'deepgrad[distributed]' (mpi4py + the mpich wheel)")
        _group = _backends.MPIBackend()
    elif backend == "nccl":
        if not is_nccl_available():
            raise RuntimeError("init_process_group(backend='nccl') needs a CUDA GPU and CuPy with NCCL "
                               "(pip install 'deepgrad[gpu]'); use backend='mpi' on CPUs")
        _group = _backends.NCCLBackend(device_id)
    else:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; expected 'mpi' or 'nccl'")


def is_initialized() -> bool:
    """True between :func:`init_process_group` and :func:`destroy_process_group`."""
    return _group is not None


def _default_group():
    if _group is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "deepgrad.distributed.init_process_group()")
    return _group


def get_backend() -> str:
    """``"mpi"`` or ``"nccl"``."""
    return _default_group().name


def get_rank() -> int:
    """This process's rank, 0 .. world_size - 1."""
    return _default_group().rank


def get_world_size() -> int:
    """The number of processes in the group."""
    return _default_group().world_size


def is_main_process() -> bool:
    """True on rank 0, and in a program that never initialized a process group (it prints, saves, plots)."""
    return _group is None or _group.rank == 0


def destroy_process_group() -> None:
    """Leave the process group (the MPI library itself is finalized at interpreter exit)."""
    global _group
    if _group is not None:
        group, _group = _group, None
        group.destroy()


def barrier() -> None:
    """Block until every rank has reached this call."""
    _default_group().barrier()


# ----------------------------------------------------------------------------- tensor collectives
def _check_tensor(tensor, what: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"distributed.{what}: expected a Tensor, got {type(tensor).__name__}")


def _contiguous(tensor: Tensor):
    """A C-contiguous buffer for ``tensor.array`` and a callback that writes it back if it is a copy."""
    data = tensor.array
    if data.flags.c_contiguous:
        return data, lambda: None
    buf = array_module(data).ascontiguousarray(data)

    def write_back():
        tensor.array[...] = buf

    return buf, write_back


def all_reduce(tensor: Tensor, op: str = ReduceOp.SUM, async_op: bool = False) -> Work | None:
    """Reduce ``tensor`` over all ranks, in place; with ``async_op`` return a :class:`Work` to ``wait()`` on.

    >>> import deepgrad.distributed as dist
    >>> dist.init_process_group("mpi")   # a world of one under plain python; K ranks under `deepgrad launch -n K`
    >>> t = deepgrad.tensor([float(dist.get_rank())])
    >>> dist.all_reduce(t)          # every rank now holds 0 + 1 + ... + (world_size - 1)
    >>> t
    tensor([0.])
    >>> dist.destroy_process_group()
    """
    _check_tensor(tensor, "all_reduce")
    if op not in _backends._OPS:
        raise ValueError(f"distributed.all_reduce: unknown op {op!r}; use a ReduceOp member")
    if op == ReduceOp.AVG and tensor.array.dtype.kind != "f":
        raise TypeError(f"distributed.all_reduce: ReduceOp.AVG needs a floating tensor, got {tensor.dtype}")
    group = _default_group()
    buf, write_back = _contiguous(tensor)
    if async_op:
        work = group.iall_reduce(buf, op)
        previous = work._after

        def after():
            if previous is not None:
                previous()
            write_back()

        work._after = after
        return work
    group.all_reduce(buf, op)
    write_back()
    return None


def _completed() -> Work:
    return Work(lambda: None, lambda: True)


def broadcast(tensor: Tensor, src: int = 0, async_op: bool = False) -> Work | None:
    """Copy rank ``src``'s ``tensor`` into every rank's ``tensor`` (in place)."""
    _check_tensor(tensor, "broadcast")
    group = _default_group()
    if not 0 <= src < group.world_size:
        raise ValueError(f"distributed.broadcast: src={src} is not a rank of a world of size {group.world_size}")
    buf, write_back = _contiguous(tensor)
    group.broadcast(buf, src)
    write_back()
    return _completed() if async_op else None


def all_gather(tensor_list: list[Tensor], tensor: Tensor, async_op: bool = False) -> Work | None:
    """Fill ``tensor_list[r]`` with rank r's ``tensor`` (the list holds world_size tensors of its shape)."""
    _check_tensor(tensor, "all_gather")
    group = _default_group()
    if len(tensor_list) != group.world_size:
        raise ValueError(f"distributed.all_gather: tensor_list has {len(tensor_list)} tensors, expected one per "
                         f"rank ({group.world_size})")
    for i, t in enumerate(tensor_list):
        _check_tensor(t, "all_gather")
        if tuple(t.shape) != tuple(tensor.shape) or t.dtype != tensor.dtype:
            raise ValueError(f"distributed.all_gather: tensor_list[{i}] has shape {tuple(t.shape)} and dtype "
                             f"{t.dtype}, expected {tuple(tensor.shape)} and {tensor.dtype} like the input")
    gathered = group.all_gather(array_module(tensor.array).ascontiguousarray(tensor.array))
    for t, part in zip(tensor_list, gathered):
        t.array[...] = part
    return _completed() if async_op else None


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, async_op: bool = False) -> Work | None:
    """Concatenate every rank's ``input_tensor`` along dim 0 into ``output_tensor``."""
    _check_tensor(input_tensor, "all_gather_into_tensor")
    group = _default_group()
    expected = (input_tensor.shape[0] * group.world_size,) + tuple(input_tensor.shape[1:]) \
        if input_tensor.ndim else (group.world_size,)
    if tuple(output_tensor.shape) != expected:
        raise ValueError(f"distributed.all_gather_into_tensor: output has shape {tuple(output_tensor.shape)}, "
                         f"expected {expected} for input {tuple(input_tensor.shape)} on {group.world_size} ranks")
    gathered = group.all_gather(array_module(input_tensor.array).ascontiguousarray(input_tensor.array))
    output_tensor.array[...] = gathered.reshape(expected)
    return _completed() if async_op else None


def all_gather_object(object_list: list, obj: Any) -> None:
    """Fill ``object_list`` (length world_size) with every rank's picklable ``obj``."""
    group = _default_group()
    if len(object_list) != group.world_size:
        raise ValueError(f"distributed.all_gather_object: object_list has {len(object_list)} entries, expected "
                         f"{group.world_size}")
    object_list[:] = group.all_gather_object(obj)


def broadcast_object_list(object_list: list, src: int = 0) -> None:
    """Replace every rank's ``object_list`` entries with rank ``src``'s (picklable objects)."""
    group = _default_group()
    object_list[:] = group.broadcast_object(list(object_list), src)
