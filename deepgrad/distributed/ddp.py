"""DistributedDataParallel: one model replica per rank, gradients averaged in buckets during backward.

How a step is synchronised (the ideas of torch's Reducer, on deepgrad's graph walk):

* Parameters are grouped, in reverse registration order (roughly the order backward reaches them), into
  buckets of at most ``bucket_cap_mb`` (the first one ~1 MB so communication starts early). Each bucket
  owns one flat buffer: the gradients, then one "used" flag per parameter.
* A hook on every parameter's leaf node (``AccumulateGrad``) fires once per backward with the summed
  gradient of that backward. The hook writes the parameter's *final* gradient of the step
  (``p.grad + grad``: earlier ``no_sync()`` backwards included) into its bucket slot, so it does not
  matter that ``.grad`` itself is only updated after the hook returns.
* When a bucket's last parameter is ready, its non-blocking all-reduce (MPI ``Iallreduce`` / an NCCL
  all-reduce on a side stream) starts while backward goes on. Buckets start strictly in index order,
  so every rank issues the same collectives in the same order even when ranks reach parameters in a
  different order or leave some unused. Later hooks poll the outstanding requests (MPI only makes
  progress inside MPI calls).
* The hook of the step's last ready parameter waits for all buckets, divides by the world size and
  writes the averages into ``.grad``. For that last parameter itself, whose ``.grad`` the engine is
  about to update, the hook clears ``.grad`` and returns the average, which the engine then stores:
  synchronisation completes inside ``backward()`` and ``optimizer.step()`` needs no extra call.

Parameters that receive no gradient: with ``find_unused_parameters=True`` the forward walks the output's
graph and marks unreachable parameters ready at once (their slot holds ``p.grad`` or zeros). Otherwise
call :meth:`DistributedDataParallel.finish_gradient_synchronization` after ``backward()`` (the trainer's
:class:`DistributedCallback` does): it marks what is missing and completes the step. Either way every
rank all-reduces every bucket, so nothing hangs. A parameter no rank used keeps ``grad=None``.

BatchNorm: ``broadcast_buffers=True`` (torch's default) copies rank 0's buffers (running statistics)
to every rank at the start of each forward that records a graph, so all replicas hold the same state;
batch statistics stay per rank. For statistics over the global batch convert the model with
:meth:`SyncBatchNorm.convert_sync_batchnorm <deepgrad.distributed.SyncBatchNorm.convert_sync_batchnorm>`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import numpy as np

from ..autograd import AccumulateGrad, is_grad_enabled
from ..backend import array_module
from ..creation import as_tensor
from ..nn.module import Module
from ..tensor import Tensor
from . import collectives

_FIRST_BUCKET_MB = 1.0


class _Bucket:
    __slots__ = ("index", "members", "numel", "buffer", "pending", "work")

    def __init__(self, index: int, members: list[int], params: list[Tensor]):
        self.index, self.members = index, members
        self.numel = sum(params[i].array.size for i in members)
        xp = array_module(params[members[0]].array)
        # gradients, then one used-flag per member (summed over ranks: > 0 means some rank used it)
        self.buffer = xp.zeros(self.numel + len(members), dtype=params[members[0]].array.dtype)
        self.pending = len(members)
        self.work = None


def _tensors_in(obj) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _tensors_in(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _tensors_in(x)


def _reachable_leaf_nodes(outputs) -> set[int]:
    """ids of the AccumulateGrad nodes the outputs' graph reaches (iterative: graphs can be deep)."""
    stack = [t.grad_fn for t in _tensors_in(outputs) if t.grad_fn is not None]
    stack += [t._accum for t in _tensors_in(outputs) if t.grad_fn is None and t._accum is not None]
    seen, leaves = set(), set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if type(node) is AccumulateGrad:
            leaves.add(id(node))
        else:
            stack.extend(node.next)
    return leaves


class DistributedDataParallel(Module):
    """Data-parallel training: wrap the model on every rank after :func:`init_process_group`.

    >>> import deepgrad.distributed as dist
    >>> dist.init_process_group("mpi")   # a world of one under plain python; K ranks under `deepgrad launch -n K`
    >>> model = DistributedDataParallel(deepgrad.nn.Linear(3, 1))   # rank 0's weights now on every rank
    >>> loss_fn, optimizer = deepgrad.nn.MSELoss(), deepgrad.optim.SGD(model.parameters(), lr=0.1)
    >>> x_shard, y_shard = deepgrad.randn(4, 3), deepgrad.randn(4, 1)   # this rank's part of the batch
    >>> loss_fn(model(x_shard), y_shard).backward()       # .grad holds the average over ranks
    >>> optimizer.step()
    >>> model.module.weight.grad.shape
    (1, 3)
    >>> dist.destroy_process_group()
    """

    def __init__(self, module: Module, *, broadcast_buffers: bool = True, bucket_cap_mb: float = 25.0,
                 find_unused_parameters: bool = False, init_sync: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        d = self.__dict__  # plain attributes: not parameters, buffers or submodules
        d["broadcast_buffers"], d["find_unused_parameters"] = broadcast_buffers, find_unused_parameters
        d["require_backward_grad_sync"] = True
        d["_group"] = collectives._default_group().new_group()
        d["world_size"] = self._group.world_size
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        d["_names"] = [n for n, _ in named]
        d["_params"] = [p for _, p in named]
        self._check_replicas()
        if init_sync:
            self._broadcast([p.array for p in module.parameters()] + self._buffer_arrays())
        d["_buckets"], d["_slot"] = self._build_buckets(bucket_cap_mb)
        d["_round_open"], d["_hooks_fired"] = False, 0
        d["_ready"], d["_remaining"], d["_next_launch"] = [False] * len(self._params), 0, 0
        d["comm_wait_time"] = 0.0  # seconds spent blocked on gradient all-reduces (exposed communication)
        d["_handles"] = [p.register_hook(self._make_hook(i)) for i, p in enumerate(self._params)]

    # ------------------------------------------------------------------ set-up
    def _check_replicas(self) -> None:
        """Every rank must wrap the same architecture: compare parameter names, shapes and dtypes."""
        mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in zip(self._names, self._params)]
        theirs = self._group.all_gather_object(mine)
        for rank, other in enumerate(theirs):
            if other != mine:
                diff = next(((a, b) for a, b in zip(mine, other) if a != b), (len(mine), len(other)))
                raise RuntimeError(f"DistributedDataParallel: rank {rank}'s model differs from rank "
                                   f"{self._group.rank}'s (first difference: {diff[1]} vs {diff[0]}); "
                                   f"every rank must wrap the same architecture")

    def _buffer_arrays(self) -> list:
        return [b.array for b in self.module.buffers() if b is not None]

    def _broadcast(self, arrays: list) -> None:
        """Rank 0's values into ``arrays`` (in place), one broadcast per dtype/device (coalesced)."""
        groups: dict = {}
        for a in arrays:
            groups.setdefault((a.dtype, array_module(a).__name__), []).append(a)
        for members in groups.values():
            xp = array_module(members[0])
            flat = xp.concatenate([a.reshape(-1) for a in members])
            self._group.broadcast(flat, 0)
            offset = 0
            for a in members:
                a[...] = flat[offset:offset + a.size].reshape(a.shape)
                offset += a.size

    def _build_buckets(self, cap_mb: float):
        buckets, slot = [], [None] * len(self._params)
        current, size, key = [], 0, None
        cap = min(_FIRST_BUCKET_MB, cap_mb) * 2**20  # a small first bucket starts communication early
        for i in reversed(range(len(self._params))):
            p = self._params[i]
            pkey = (p.array.dtype, array_module(p.array).__name__)
            if current and (pkey != key or size + p.array.nbytes > cap):
                buckets.append(_Bucket(len(buckets), current, self._params))
                current, size = [], 0
                cap = cap_mb * 2**20
            current.append(i)
            size += p.array.nbytes
            key = pkey
        if current:
            buckets.append(_Bucket(len(buckets), current, self._params))
        for b in buckets:
            offset = 0
            for j, i in enumerate(b.members):
                slot[i] = (b, offset, j)
                offset += self._params[i].array.size
        return buckets, slot

    @property
    def bucket_sizes(self) -> list[int]:
        """Bytes all-reduced per bucket and step (gradients plus the used flags)."""
        return [int(b.buffer.nbytes) for b in self._buckets]

    # ------------------------------------------------------------------ forward
    def forward(self, *args, **kwargs):
        syncing = is_grad_enabled() and self.require_backward_grad_sync and bool(self._params)
        if self._round_open:
            self._abandon_or_fail()
        if syncing and self.broadcast_buffers and self.world_size > 1:
            arrays = self._buffer_arrays()
            if arrays:
                self._broadcast(arrays)
        out = self.module(*args, **kwargs)
        if syncing:
            self._open_round(out)
        return out

    def _open_round(self, outputs) -> None:
        d = self.__dict__
        d["_round_open"], d["_hooks_fired"], d["_next_launch"] = True, 0, 0
        d["_remaining"] = len(self._params)
        self._ready[:] = [False] * len(self._params)
        for b in self._buckets:
            b.pending, b.work = len(b.members), None
            b.buffer[b.numel:] = 0
        if self.find_unused_parameters:
            reached = _reachable_leaf_nodes(outputs)
            for i, p in enumerate(self._params):
                if p._accum is None or id(p._accum) not in reached:
                    self._fill(i, None)
                    self._mark_ready(i, launch=False)  # launches wait for backward: ranks must agree on order
            if self._remaining == 0:
                self._finalize(None)

    def _abandon_or_fail(self) -> None:
        """A new forward while the last step's reduction is open: fine if no backward ran, else an error."""
        if self._hooks_fired == 0 and all(b.work is None for b in self._buckets):
            self.__dict__["_round_open"] = False  # forward without backward (e.g. a loss that was not used)
            return
        missing = [n for n, r in zip(self._names, self._ready) if not r]
        raise RuntimeError(
            "DistributedDataParallel: the previous iteration's gradient reduction did not finish: parameters "
            f"{missing[:8]}{' ...' if len(missing) > 8 else ''} received no gradient. Pass "
            "find_unused_parameters=True, or call finish_gradient_synchronization() after backward() "
            "(before optimizer.step())."
        )

    # ------------------------------------------------------------------ backward
    def _make_hook(self, i: int):
        def hook(grad: Tensor):
            if not self._round_open:
                return None  # no_sync(), or a backward that this wrapper's forward did not record
            if self._ready[i]:
                raise RuntimeError(f"DistributedDataParallel: parameter {self._names[i]!r} received a gradient "
                                   f"twice in one iteration; run one backward per forward (use no_sync() to "
                                   f"accumulate gradients over several backwards)")
            self.__dict__["_hooks_fired"] += 1
            self._fill(i, grad.array)
            self._mark_ready(i)
            if self._remaining == 0:
                return self._finalize(i)
            self._poll()
            return None

        return hook

    def _fill(self, i: int, grad) -> None:
        """Write parameter i's gradient for this step (``.grad`` so far + ``grad``) into its bucket slot."""
        bucket, offset, j = self._slot[i]
        p = self._params[i]
        view = bucket.buffer[offset:offset + p.array.size].reshape(p.array.shape)
        have = p.grad is not None
        if grad is None:
            if have:
                view[...] = p.grad.array
            else:
                view[...] = 0
        elif have:
            array_module(view).add(p.grad.array, grad, out=view)
        else:
            view[...] = grad
        bucket.buffer[bucket.numel + j] = 1 if (have or grad is not None) else 0

    def _mark_ready(self, i: int, launch: bool = True) -> None:
        self._ready[i] = True
        self.__dict__["_remaining"] -= 1
        bucket = self._slot[i][0]
        bucket.pending -= 1
        if launch and bucket.pending == 0:
            self._launch_ready()

    def _launch_ready(self) -> None:
        """Start every consecutive complete bucket from the next one in order."""
        k = self._next_launch
        while k < len(self._buckets) and self._buckets[k].pending == 0:
            self._buckets[k].work = self._group.iall_reduce(self._buckets[k].buffer)
            k += 1
        self.__dict__["_next_launch"] = k

    def _poll(self) -> None:
        for b in self._buckets[:self._next_launch]:
            if not b.work.is_completed():
                break

    def _finalize(self, current: int | None):
        """Wait for every bucket, average, write ``.grad``; returns the average for parameter ``current``."""
        self._launch_ready()
        start = time.perf_counter()
        for b in self._buckets:
            b.work.wait()
        self.__dict__["comm_wait_time"] += time.perf_counter() - start
        result = None
        scale = None
        for b in self._buckets:
            if scale is None or scale.dtype != b.buffer.dtype:
                scale = np.dtype(b.buffer.dtype).type(1.0 / self.world_size)
            grads = b.buffer[:b.numel]
            grads *= scale
            flags = b.buffer[b.numel:]
            flags = flags if array_module(flags) is np else flags.get()  # one device-to-host copy per bucket
            offset = 0
            for j, i in enumerate(b.members):
                p = self._params[i]
                n = p.array.size
                avg = grads[offset:offset + n].reshape(p.array.shape)
                offset += n
                if flags[j] == 0:
                    continue  # no rank used it: keeps grad=None, as in single-process training
                if i == current:
                    p.grad = None  # the engine stores the returned average as the new .grad
                    result = avg
                elif p.grad is None:
                    p.grad = as_tensor(avg.copy())
                else:
                    p.grad.array[...] = avg
        self.__dict__["_round_open"] = False
        return result

    def finish_gradient_synchronization(self) -> None:
        """Complete this step's gradient averaging if backward left it open (parameters without gradient).

        A no-op when backward already finished it. Call after ``backward()`` and before the optimizer step.
        """
        if not self._round_open:
            return
        for i in range(len(self._params)):
            if not self._ready[i]:
                self._fill(i, None)
                self._mark_ready(i, launch=False)
        self._finalize(None)

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally: backwards of forwards run inside skip the all-reduce.

        >>> import deepgrad.distributed as dist
        >>> dist.init_process_group("mpi")   # a world of one here
        >>> model, loss_fn = DistributedDataParallel(deepgrad.nn.Linear(3, 1)), deepgrad.nn.MSELoss()
        >>> (x1, y1), (x2, y2) = [(deepgrad.randn(4, 3), deepgrad.randn(4, 1)) for _ in range(2)]
        >>> with model.no_sync():
        ...     loss_fn(model(x1), y1).backward()
        >>> loss_fn(model(x2), y2).backward()   # averages the gradients of both micro-batches
        >>> model.module.weight.grad.shape
        (1, 3)
        >>> dist.destroy_process_group()
        """
        previous = self.require_backward_grad_sync
        self.__dict__["require_backward_grad_sync"] = False
        try:
            yield
        finally:
            self.__dict__["require_backward_grad_sync"] = previous

    def extra_repr(self) -> str:
        return (f"world_size={self.world_size}, buckets={len(self._buckets)}, "
                f"broadcast_buffers={self.broadcast_buffers}, find_unused_parameters={self.find_unused_parameters}")
