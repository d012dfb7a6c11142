"""torch.utils.data.dataset's path: datasets and ``random_split`` (:mod:`deepgrad.data.dataset`)."""

from ...data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split  # noqa: F401
from ...data.iterable import ChainDataset, IterableDataset, StackDataset  # noqa: F401

__all__ = ["ChainDataset", "ConcatDataset", "Dataset", "IterableDataset", "StackDataset", "Subset", "TensorDataset",
           "random_split"]
