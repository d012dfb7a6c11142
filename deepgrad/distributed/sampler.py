"""DistributedSampler: each rank's share of the dataset indices (``torch.utils.data.DistributedSampler``).

Every rank draws the same permutation (seeded by ``seed + epoch``, so call :meth:`set_epoch` at the start
of each epoch) and takes every ``num_replicas``-th index from position ``rank``. Without ``drop_last``
the list is padded with its own first indices to a multiple of ``num_replicas`` (every rank gets the
same number of samples, so collectives stay in step); with ``drop_last`` the tail is dropped instead.
The permutation comes from NumPy's PCG64, so the order differs from torch's; the sharding rules match.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ..data.sampler import Sampler
from . import collectives


class DistributedSampler(Sampler):
    """Indices of rank ``rank``'s shard of ``dataset`` (defaults: the process group's rank and size).

    >>> s = DistributedSampler(range(10), num_replicas=3, rank=0, shuffle=False)
    >>> list(s)
    [0, 3, 6, 9]
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if num_replicas is None:
            if not collectives.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "deepgrad.distributed.init_process_group() first")
            num_replicas = collectives.get_world_size()
        if rank is None:
            if not collectives.is_initialized():
                raise RuntimeError("DistributedSampler: pass rank, or call init_process_group() first")
            rank = collectives.get_rank()
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, (int, np.integer)) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, got {num_replicas!r}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.epoch = 0
        self.drop_last, self.shuffle, self.seed = drop_last, shuffle, int(seed)
        n = len(dataset)
        if drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:  # fewer samples than ranks: repeat the whole list
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's permutation (all ranks must pass the same epoch)."""
        self.epoch = int(epoch)
