"""Map-style datasets: the PyTorch-shaped containers a :class:`DataLoader` draws samples from.

>>> import numpy as np
>>> ds = TensorDataset(np.zeros((10, 3), np.float32), np.arange(10))
>>> train, val = random_split(ds, [0.8, 0.2], generator=0)
>>> len(train), len(val)
(8, 2)
"""

from __future__ import annotations

import bisect
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

from ..creation import as_tensor
from ..tensor import Tensor
from ._random import GeneratorLike, as_generator, resolve


class Dataset(ABC):
    """A map-style dataset: ``dataset[i]`` returns sample ``i``; most also define ``len(dataset)``.

    Subclasses implement ``__getitem__`` (and ``__len__`` to be used with the default samplers).
    ``a + b`` concatenates two datasets.
    """

    @abstractmethod
    def __getitem__(self, index):
        """Sample ``index``."""

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _as_array(t, name: str):
    if isinstance(t, Tensor):
        return t.array
    if isinstance(t, np.ndarray) or hasattr(t, "__cuda_array_interface__"):
        return t
    raise TypeError(f"{name}: expected deepgrad Tensors or NumPy arrays, got {type(t).__name__}")


class TensorDataset(Dataset):
    """Samples are the rows of the given tensors: ``ds[i] == (t0[i], t1[i], ...)``.

    Accepts deepgrad Tensors or NumPy arrays (kept without copying); items come back as Tensors.

    >>> ds = TensorDataset(np.ones((4, 2)), np.arange(4))
    >>> x, y = ds[3]
    >>> x.shape, int(y)
    ((2,), 3)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        arrays = [_as_array(t, "TensorDataset") for t in tensors]
        for i, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; every tensor needs a first (sample) dimension")
        sizes = [a.shape[0] for a in arrays]
        if len(set(sizes)) != 1:
            shapes = ", ".join(f"tensor {i}: {tuple(a.shape)}" for i, a in enumerate(arrays))
            raise ValueError(f"TensorDataset: size mismatch between tensors: all must share the first dimension "
                             f"(number of samples), got sizes {sizes} ({shapes})")
        self._arrays = arrays
        self.tensors = tuple(as_tensor(a) for a in arrays)

    def __getitem__(self, index):
        return tuple(as_tensor(a[index]) for a in self._arrays)

    def __len__(self) -> int:
        return self._arrays[0].shape[0]

    def _fetch_batch(self, indices):
        """A whole collated batch by fancy indexing (what per-sample fetch + default_collate would give)."""
        idx = np.asarray(indices, dtype=np.int64)
        return [as_tensor(a[idx]) for a in self._arrays]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list:
        if hasattr(self.dataset, "__getitems__"):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def _fetch_batch(self, indices):
        return self.dataset._fetch_batch([self.indices[i] for i in indices])

    @property
    def _batchable(self) -> bool:  # the loader's fast path: only when the wrapped dataset has one
        return _has_fast_batch(self.dataset)


def _has_fast_batch(dataset) -> bool:
    if type(dataset) is Subset:
        return dataset._batchable
    return isinstance(dataset, TensorDataset) and type(dataset).__getitem__ is TensorDataset.__getitem__


class ConcatDataset(Dataset):
    """Several datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int):
        if idx < 0:
            if -idx > len(self):
                raise IndexError(f"ConcatDataset: index {idx} out of range for length {len(self)}")
            idx += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        if which == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {idx} out of range for length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][idx - start]


class TransformDataset(Dataset):
    """Apply ``transform`` to each sample's input and ``target_transform`` to its target, on the fly.

    Items of ``dataset`` are ``(input, target, ...)`` tuples (or a bare input). Random transforms
    draw fresh parameters each time an item is read, so every epoch sees new augmentations.

    >>> from deepgrad.data import transforms as T
    >>> ds = TensorDataset(np.ones((4, 1, 8, 8), np.float32), np.arange(4))
    >>> aug = TransformDataset(ds, T.RandomHorizontalFlip(0.5))
    >>> aug[0][0].shape
    (1, 8, 8)
    """

    def __init__(self, dataset: Dataset, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        self.dataset = dataset
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx):
        item = self.dataset[idx]
        if not isinstance(item, (tuple, list)):
            return self.transform(item) if self.transform is not None else item
        fields = list(item)
        if self.transform is not None and fields:
            fields[0] = self.transform(fields[0])
        if self.target_transform is not None and len(fields) > 1:
            fields[1] = self.target_transform(fields[1])
        return tuple(fields)


def _split_lengths(lengths: Sequence[float], n: int) -> list[int]:
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:  # fractions, decided as torch does (so even [1, 0] is one)
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1, got {frac}")
        # floor each share, then hand the remainder out one by one from the first split
        sizes = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=3)
        return sizes
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in lengths):
        raise ValueError(f"random_split: fractions must lie in [0, 1] and sum to 1, got {list(lengths)}")
    if any(x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative, got {list(lengths)}")
    if total != n:
        raise ValueError(f"random_split: sum of input lengths {list(lengths)} = {total} does not equal the length "
                         f"of the input dataset ({n})")
    return [int(x) for x in lengths]


def random_split(dataset: Dataset, lengths: Sequence[float], generator: GeneratorLike = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths (or fractions summing to 1).

    ``generator``: a :class:`deepgrad.Generator` (or any ``np.random.Generator``) or an int seed; default
    deepgrad's global generator. Fractions are floored and the remainder handed out one by one from the
    first split, as torch does, so the sizes equal torch's.

    >>> [len(s) for s in random_split(range(10), [0.5, 0.3, 0.2], generator=0)]
    [5, 3, 2]
    """
    n = len(dataset)
    sizes = _split_lengths(list(lengths), n)
    perm = resolve(as_generator(generator, "random_split")).permutation(n)
    out, start = [], 0
    for size in sizes:
        out.append(Subset(dataset, perm[start:start + size].tolist()))
        start += size
    return out
