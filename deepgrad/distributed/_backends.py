"""Communication backends: MPI through mpi4py (CPU arrays) and NCCL through CuPy (GPU arrays).

Both expose the same small surface on RAW arrays (in place, contiguous buffers): ``all_reduce``,
``iall_reduce`` (returns a :class:`Work`), ``broadcast``, ``all_gather``, ``barrier`` and the object
collectives. Tensors, argument checks and torch-shaped names live in :mod:`deepgrad.distributed.collectives`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..backend import array_module

SUM, PRODUCT, MIN, MAX, AVG = "sum", "product", "min", "max", "avg"
_OPS = (SUM, PRODUCT, MIN, MAX, AVG)


def _on_host(arr) -> bool:
    return array_module(arr) is np


class Work:
    """Handle of a non-blocking collective (``torch.distributed.Work``): ``wait()`` then read the buffer."""

    def __init__(self, wait_fn, test_fn, after=None):
        self._wait, self._test, self._after, self._done = wait_fn, test_fn, after, False

    def is_completed(self) -> bool:
        """True once the operation has finished (drives MPI progress as a side effect)."""
        if not self._done and self._test():
            self._finish()
        return self._done

    def wait(self) -> bool:
        """Block until the operation has finished (NCCL: until the current stream is ordered after it)."""
        if not self._done:
            self._wait()
            self._finish()
        return True

    def _finish(self) -> None:
        self._done = True
        if self._after is not None:
            after, self._after = self._after, None
            after()


def _finish_avg(arr, world_size: int):
    """MPI has no AVG: sum, then divide (floating buffers only)."""
    arr /= arr.dtype.type(world_size)


class MPIBackend:
    """Collectives on a private duplicate of ``MPI.COMM_WORLD`` (so user MPI code never interleaves with ours).

    CuPy arrays are staged through host memory: the mpich wheel is not CUDA-aware.
    """

    name = "mpi"

    def __init__(self, comm=None):
        try:
            from mpi4py import MPI
        except ImportError as e:  # pragma: no cover - the callers check is_mpi_available() first
            raise RuntimeError(
                "init_process_group(backend='mpi') needs mpi4py and an MPI library: "
                "pip install 'deepgrad[distributed]' (mpi4py + the mpich wheel)"
            ) from e
        self.MPI = MPI
        self.comm = (comm if comm is not None else MPI.COMM_WORLD).Dup()
        self.rank = self.comm.Get_rank()
        self.world_size = self.comm.Get_size()
        self._ops = {SUM: MPI.SUM, PRODUCT: MPI.PROD, MIN: MPI.MIN, MAX: MPI.MAX, AVG: MPI.SUM}

    def new_group(self) -> MPIBackend:
        """A backend over a fresh duplicate communicator (DDP's gradient traffic gets its own)."""
        return MPIBackend(self.comm)

    # -- raw-array collectives (arrays must be C-contiguous; results land in place)
    def all_reduce(self, arr, op: str = SUM) -> None:
        host = arr if _on_host(arr) else arr.get()
        self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self._ops[op])
        if op == AVG:
            _finish_avg(host, self.world_size)
        if host is not arr:
            arr.set(host)

    def iall_reduce(self, arr, op: str = SUM) -> Work:
        host = arr if _on_host(arr) else arr.get()
        req = self.comm.Iallreduce(self.MPI.IN_PLACE, host, op=self._ops[op])

        def after():
            if op == AVG:
                _finish_avg(host, self.world_size)
            if host is not arr:
                arr.set(host)

        return Work(req.Wait, req.Test, after)

    def broadcast(self, arr, src: int) -> None:
        host = arr if _on_host(arr) else arr.get()
        self.comm.Bcast(host, root=src)
        if host is not arr:
            arr.set(host)

    def all_gather(self, arr):
        """``(world_size, *arr.shape)`` array of every rank's ``arr``."""
        host = arr if _on_host(arr) else arr.get()
        out = np.empty((self.world_size,) + host.shape, dtype=host.dtype)
        self.comm.Allgather(host, out)
        return out if _on_host(arr) else array_module(arr).asarray(out)

    def barrier(self) -> None:
        self.comm.Barrier()

    def all_gather_object(self, obj: Any) -> list:
        return self.comm.allgather(obj)

    def broadcast_object(self, obj: Any, src: int) -> Any:
        return self.comm.bcast(obj, root=src)

    def destroy(self) -> None:
        if not self.MPI.Is_finalized():
            self.comm.Free()


def _local_rank(comm) -> int:
    """This process's index among the ranks on its machine (picks its GPU)."""
    for var in ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    if comm is None:
        return 0
    from mpi4py import MPI

    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    rank = local.Get_rank()
    local.Free()
    return rank


class NCCLBackend:
    """Collectives on CuPy arrays through NCCL (``cupy.cuda.nccl``).

    Ranks and the NCCL unique id are exchanged over MPI (processes started by ``mpiexec``); a single
    process without mpi4py runs as a world of one. Each rank uses GPU ``local_rank % device_count``
    unless ``device_id`` is given. Collectives run on a private stream that first waits for the current
    stream, and the current stream then waits for them: the host is never blocked, and later kernels
    see the reduced values (the stream-ordered semantics of torch's NCCL backend).
    """

    name = "nccl"

    def __init__(self, device_id: int | None = None, _parent: NCCLBackend | None = None):
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl = cupy, nccl
        if _parent is not None:
            self.mpi_comm, self.rank, self.world_size = _parent.mpi_comm, _parent.rank, _parent.world_size
            self.device = _parent.device
        else:
            try:
                from mpi4py import MPI

                self.mpi_comm = MPI.COMM_WORLD.Dup()
            except ImportError:
                self.mpi_comm = None
            self.rank = 0 if self.mpi_comm is None else self.mpi_comm.Get_rank()
            self.world_size = 1 if self.mpi_comm is None else self.mpi_comm.Get_size()
            count = cupy.cuda.runtime.getDeviceCount()
            self.device = int(device_id) if device_id is not None else _local_rank(self.mpi_comm) % count
        cupy.cuda.Device(self.device).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        if self.mpi_comm is not None:
            uid = self.mpi_comm.bcast(uid, root=0)
        self.comm = nccl.NcclCommunicator(self.world_size, uid, self.rank)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._ops = {SUM: nccl.NCCL_SUM, PRODUCT: nccl.NCCL_PROD, MIN: nccl.NCCL_MIN, MAX: nccl.NCCL_MAX,
                     AVG: nccl.NCCL_SUM}
        self._types = {
            np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
            np.dtype(np.float64): nccl.NCCL_FLOAT64, np.dtype(np.int8): nccl.NCCL_INT8,
            np.dtype(np.uint8): nccl.NCCL_UINT8, np.dtype(np.int32): nccl.NCCL_INT32,
            np.dtype(np.uint32): nccl.NCCL_UINT32, np.dtype(np.int64): nccl.NCCL_INT64,
            np.dtype(np.uint64): nccl.NCCL_UINT64, np.dtype(np.bool_): nccl.NCCL_UINT8,
        }

    def new_group(self) -> NCCLBackend:
        return NCCLBackend(_parent=self)

    def _check(self, arr, what: str):
        if _on_host(arr):
            raise TypeError(f"distributed.{what}: the nccl backend works on CUDA tensors, got a CPU tensor "
                            f"(move it with .cuda(), or use backend='mpi')")
        if arr.dtype not in self._types:
            raise TypeError(f"distributed.{what}: nccl has no reduction for dtype {arr.dtype}")
        return self._types[arr.dtype]

    def _run(self, launch) -> Work:
        """Order ``launch`` after the current stream's work, and the current stream after it."""
        current = self.cupy.cuda.get_current_stream()
        ready = current.record()
        self.stream.wait_event(ready)
        launch(self.stream.ptr)
        done = self.stream.record()

        def wait():
            self.cupy.cuda.get_current_stream().wait_event(done)

        return Work(wait, lambda: done.done)

    def iall_reduce(self, arr, op: str = SUM) -> Work:
        dtype = self._check(arr, "all_reduce")
        work = self._run(lambda s: self.comm.allReduce(arr.data.ptr, arr.data.ptr, arr.size, dtype, self._ops[op], s))
        if op == AVG:
            work._after = lambda: _finish_avg(arr, self.world_size)
        return work

    def all_reduce(self, arr, op: str = SUM) -> None:
        self.iall_reduce(arr, op).wait()

    def broadcast(self, arr, src: int) -> None:
        dtype = self._check(arr, "broadcast")
        self._run(lambda s: self.comm.bcast(arr.data.ptr, arr.size, dtype, src, s)).wait()

    def all_gather(self, arr):
        dtype = self._check(arr, "all_gather")
        out = self.cupy.empty((self.world_size,) + arr.shape, dtype=arr.dtype)
        self._run(lambda s: self.comm.allGather(arr.data.ptr, out.data.ptr, arr.size, dtype, s)).wait()
        return out

    def barrier(self) -> None:
        flag = self.cupy.zeros(1, dtype=np.float32)
        self.all_reduce(flag)
        self.cupy.cuda.get_current_stream().synchronize()

    def all_gather_object(self, obj: Any) -> list:
        return [obj] if self.mpi_comm is None else self.mpi_comm.allgather(obj)

    def broadcast_object(self, obj: Any, src: int) -> Any:
        return obj if self.mpi_comm is None else self.mpi_comm.bcast(obj, root=src)

    def destroy(self) -> None:
        self.stream.synchronize()
        self.comm.destroy()
