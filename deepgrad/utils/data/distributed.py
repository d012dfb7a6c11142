"""torch.utils.data.distributed's path: ``DistributedSampler`` (:mod:`deepgrad.distributed.sampler`)."""

from ...distributed.sampler import DistributedSampler  # noqa: F401

__all__ = ["DistributedSampler"]
