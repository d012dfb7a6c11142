"""``deepgrad.utils.data``: torch.utils.data's import path for :mod:`deepgrad.data` (the same objects:
``deepgrad.utils.data.DataLoader is deepgrad.data.DataLoader``), with torch's submodules ``dataloader``,
``dataset``, ``sampler`` and ``distributed``.

>>> from deepgrad.utils.data import DataLoader, TensorDataset, random_split
"""

from ...data import *  # noqa: F403
from ...data import __all__ as _data_all
from ...distributed.sampler import DistributedSampler
from . import dataloader, dataset, distributed, sampler  # noqa: F401

__all__ = [*_data_all, "DistributedSampler", "dataloader", "dataset", "distributed", "sampler"]
