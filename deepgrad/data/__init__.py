"""Data: datasets, samplers, the DataLoader, augmentation transforms and bundled/synthetic datasets.

PyTorch-shaped (``torch.utils.data`` + ``torchvision.transforms``), on NumPy.

>>> import numpy as np
>>> import deepgrad as dg
>>> from deepgrad.data import DataLoader, TensorDataset
>>> _ = dg.manual_seed(0)
>>> ds = TensorDataset(np.random.rand(10, 3).astype(np.float32), np.arange(10))
>>> for xb, yb in DataLoader(ds, batch_size=4, shuffle=True):
...     pass
>>> xb.shape, yb.dtype
((2, 3), dtype('int64'))
"""

from . import datasets, transforms
from ._random import current_generator
from .collate import default_collate, default_convert
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, TransformDataset, random_split
from .iterable import ChainDataset, IterableDataset, StackDataset, WorkerInfo, get_worker_info
from .loader import DataLoader
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset", "StackDataset",
    "WorkerInfo", "get_worker_info", "RandomSampler", "Sampler", "SequentialSampler",
    "Subset", "SubsetRandomSampler", "TensorDataset", "TransformDataset", "WeightedRandomSampler",
    "current_generator", "datasets", "default_collate", "default_convert", "random_split", "transforms",
]
