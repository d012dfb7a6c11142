"""``deepgrad.nn.parallel``: torch's ``nn.DataParallel`` as the single-device identity wrapper.

torch's DataParallel splits each batch over several GPUs of one process. deepgrad runs a model on one
device per process, so :class:`DataParallel` just calls the wrapped module: scripts that wrap their model
run unchanged, and the ``state_dict`` keys carry the ``module.`` prefix exactly as torch's do, so
checkpoints saved through the wrapper load in both libraries (``model.module.state_dict()`` for the bare
keys).

For real data parallelism (several processes, one device each, gradients averaged over MPI or NCCL), use
:mod:`deepgrad.distributed` and its ``DistributedDataParallel``, which is also what torch recommends over
DataParallel.

>>> model = DataParallel(deepgrad.nn.Linear(4, 2))
>>> list(model.state_dict())
['module.weight', 'module.bias']
"""

from __future__ import annotations

from .module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Wrap ``module``; ``forward`` calls it as is (one device: deepgrad's). ``device_ids``,
    ``output_device`` and ``dim`` are accepted for torch's signature; more than one device is refused."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected a deepgrad.nn.Module, got {type(module).__name__}")
        if device_ids is not None and len(list(device_ids)) > 1:
            raise ValueError(f"DataParallel: deepgrad runs a model on one device per process, got device_ids="
                             f"{list(device_ids)}; use deepgrad.distributed.DistributedDataParallel (one process "
                             f"per device) for multi-device training")
        self.module = module
        self.device_ids = [] if device_ids is None else list(device_ids)
        self.output_device = output_device
        self.dim = dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def __getattr__(name: str):
    if name in ("DistributedDataParallel", "DistributedDataParallelCPU"):
        raise AttributeError(f"deepgrad.nn.parallel has no {name}: it lives in deepgrad.distributed "
                             f"(from deepgrad.distributed import DistributedDataParallel)")
    raise AttributeError(f"module 'deepgrad.nn.parallel' has no attribute {name!r}")
