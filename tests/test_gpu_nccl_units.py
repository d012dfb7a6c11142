"""The NCCL backend's calls, checked without a GPU: fake CuPy streams and a fake communicator record what
NCCLBackend hands to NCCL. The backend works on RAW CuPy arrays, whose device pointer is ``arr.data.ptr``
(the merged code read ``arr.array.ptr``, an attribute CuPy arrays do not have: every collective would have
raised AttributeError on the first GPU run). The real thing runs in tests/test_distributed.py on a GPU."""

import numpy as np
import pytest

from deepgrad.distributed import _backends
from deepgrad.distributed._backends import AVG, SUM, NCCLBackend


class _Pointer:
    def __init__(self, ptr):
        self.ptr = ptr


class FakeGpuArray:
    """What the backend reads of a cupy.ndarray: data.ptr, size, shape, dtype (and in-place division for AVG)."""

    _next = 0x1000

    def __init__(self, values):
        self.host = np.ascontiguousarray(values)
        FakeGpuArray._next += 0x1000
        self.data = _Pointer(FakeGpuArray._next)
        self.size, self.shape, self.dtype = self.host.size, self.host.shape, self.host.dtype

    def __itruediv__(self, other):
        self.host = self.host / other
        return self


class FakeEvent:
    done = True


class FakeStream:
    ptr = 0xBEEF

    def __init__(self):
        self.waited = []

    def record(self):
        return FakeEvent()

    def wait_event(self, event):
        self.waited.append(event)

    def synchronize(self):
        pass


class FakeComm:
    def __init__(self):
        self.calls = []

    def allReduce(self, send, recv, count, dtype, op, stream):  # noqa: N802 - NCCL's names
        self.calls.append(("allReduce", send, recv, count, dtype, op, stream))

    def bcast(self, buf, count, dtype, root, stream):
        self.calls.append(("bcast", buf, count, dtype, root, stream))

    def allGather(self, send, recv, count, dtype, stream):  # noqa: N802
        self.calls.append(("allGather", send, recv, count, dtype, stream))


@pytest.fixture
def backend(monkeypatch):
    current = FakeStream()

    class FakeCupy:
        class cuda:
            @staticmethod
            def get_current_stream():
                return current

        @staticmethod
        def empty(shape, dtype):
            return FakeGpuArray(np.empty(shape, dtype))

        @staticmethod
        def zeros(shape, dtype):
            return FakeGpuArray(np.zeros(shape, dtype))

    monkeypatch.setattr(_backends, "_on_host", lambda arr: isinstance(arr, np.ndarray))
    b = object.__new__(NCCLBackend)
    b.cupy, b.comm, b.stream, b.world_size, b.rank = FakeCupy, FakeComm(), FakeStream(), 2, 0
    b._ops = {SUM: "NCCL_SUM", AVG: "NCCL_SUM"}
    b._types = {np.dtype(np.float32): "NCCL_FLOAT32"}
    b.current = current
    return b


def test_all_reduce_passes_the_device_pointer_and_orders_the_streams(backend):
    arr = FakeGpuArray(np.ones(5, np.float32))
    backend.all_reduce(arr)
    assert backend.comm.calls == [("allReduce", arr.data.ptr, arr.data.ptr, 5, "NCCL_FLOAT32", "NCCL_SUM", 0xBEEF)]
    assert len(backend.stream.waited) == 1 and len(backend.current.waited) == 1  # both directions ordered


def test_average_divides_after_the_sum(backend):
    arr = FakeGpuArray(np.full(3, 4.0, np.float32))
    backend.iall_reduce(arr, AVG).wait()
    np.testing.assert_array_equal(arr.host, [2.0, 2.0, 2.0])


def test_broadcast_all_gather_and_barrier(backend):
    arr = FakeGpuArray(np.arange(4, dtype=np.float32))
    backend.broadcast(arr, 1)
    out = backend.all_gather(arr)
    backend.barrier()
    kinds = [c[0] for c in backend.comm.calls]
    assert kinds == ["bcast", "allGather", "allReduce"]
    assert backend.comm.calls[0][1:5] == (arr.data.ptr, 4, "NCCL_FLOAT32", 1)
    assert backend.comm.calls[1][1:3] == (arr.data.ptr, out.data.ptr) and out.shape == (2, 4)


def test_cpu_arrays_and_unknown_dtypes_are_refused(backend):
    with pytest.raises(TypeError, match="nccl backend works on CUDA tensors"):
        backend.all_reduce(np.ones(2, np.float32))
    with pytest.raises(TypeError, match="no reduction for dtype complex64"):
        backend.all_reduce(FakeGpuArray(np.ones(2, np.complex64)))
