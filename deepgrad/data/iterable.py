"""Iterable-style datasets (streams: ``for sample in dataset``), ChainDataset, StackDataset and
``get_worker_info``, with torch.utils.data's semantics.

A :class:`DataLoader` over an :class:`IterableDataset` batches consecutive samples. With ``num_workers = k``
torch runs k processes, each iterating *its own copy* of the dataset, and hands out their batches in
turn; a dataset that should not be read k times splits itself with :func:`get_worker_info`. deepgrad
gives the same batches in the same order: the k worker streams are advanced in turn in the loading thread
(each with its worker info set), so shard-by-worker code ports unchanged; it is not parallel.

>>> from deepgrad.data import DataLoader
>>> class Count(IterableDataset):
...     def __iter__(self):
...         info = get_worker_info()
...         start, step = (0, 1) if info is None else (info.id, info.num_workers)
...         return iter(range(start, 6, step))
>>> [b.tolist() for b in DataLoader(Count(), batch_size=2, num_workers=2)]
[[0, 2], [1, 3], [4], [5]]
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .dataset import Dataset

_local = threading.local()


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker knows about itself: its ``id`` (0 .. num_workers - 1), ``num_workers``, its ``seed``
    and its ``dataset``."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info() -> WorkerInfo | None:
    """The calling worker's :class:`WorkerInfo`; None outside a DataLoader worker (``num_workers = 0``)."""
    return getattr(_local, "info", None)


class worker_context:
    """Make ``info`` this thread's :func:`get_worker_info` inside the ``with`` block."""

    def __init__(self, info: WorkerInfo | None):
        self.info = info

    def __enter__(self):
        self.previous = getattr(_local, "info", None)
        _local.info = self.info
        return self.info

    def __exit__(self, *exc):
        _local.info = self.previous


class IterableDataset(Dataset):
    """A dataset read as a stream: subclasses implement ``__iter__`` (``__len__`` optional). ``a + b``
    chains two streams."""

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__ (it is an IterableDataset)")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} is an IterableDataset: read it by iterating, not by "
                                  f"index")

    def __add__(self, other) -> ChainDataset:
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Several iterable datasets, one after the other (built lazily, as torch's)."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self) -> Iterator:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError(f"ChainDataset only supports IterableDataset, got {type(d).__name__}")
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError(f"ChainDataset only supports IterableDataset, got {type(d).__name__}")
            total += len(d)
        return total


class StackDataset(Dataset):
    """Samples of several equally long datasets side by side: ``StackDataset(a, b)[i] == (a[i], b[i])``, or a
    dict with ``StackDataset(image=a, label=b)``.

    >>> StackDataset(range(3), "abc")[1]
    (1, 'b')
    """

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like input/"
                             "output, but both types are given.")
        sources = list(args) if args else list(kwargs.values())
        if not sources:
            raise ValueError("At least one dataset should be passed")
        self._length = len(sources[0])
        if any(len(d) != self._length for d in sources):
            raise ValueError(f"Size mismatch between datasets: {[len(d) for d in sources]}")
        self.datasets = tuple(args) if args else dict(kwargs)

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length
