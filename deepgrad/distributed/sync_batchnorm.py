"""SyncBatchNorm: batch normalization with statistics over the global batch (all ranks).

Training forward: each rank computes its count, mean and sum of squared deviations per channel; one
all-gather combines them (Chan's parallel variance formula, in float64), so every rank normalizes with
the mean and variance of the whole global batch and updates identical running statistics. Backward:
one all-reduce of the per-channel sums of ``g`` and ``g * xhat`` gives the global terms of the closed
form ``dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))``; weight and bias gradients stay local
(DistributedDataParallel averages them). With 1 rank, outside a process group, or in eval mode it is
plain batch norm.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..nn import functional as F
from ..nn.module import Module
from ..nn.norm import _BatchNorm
from ..tensor import Tensor
from . import collectives


class _SyncBatchNormFn(Function):
    """Fused node (statistics exchange, normalization, affine, running-stat update; closed-form backward):
    it pays because the cross-rank terms must be exchanged exactly once per direction."""

    saved = ((0, 1),)

    def forward(self, x, *affine, has_weight, has_bias, eps, running_mean, running_var, momentum, group):
        xp = array_module(x)
        c = x.shape[1]
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, c) + (1,) * (x.ndim - 2)
        n_local = x.size // c if c else 0
        stats = xp.zeros(2 * c + 1, dtype=np.float64)
        stats[0] = n_local
        if n_local:
            mean_local = x.mean(axis=axes, dtype=np.float64)
            stats[1:c + 1] = mean_local
            stats[c + 1:] = ((x - mean_local.reshape(shape).astype(x.dtype)) ** 2).sum(axis=axes, dtype=np.float64)
        every = group.all_gather(stats)  # (world, 2C + 1)
        counts, means, m2s = every[:, :1], every[:, 1:c + 1], every[:, c + 1:]
        n = float(counts.sum())
        if n <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all ranks when "
                             f"training, got {int(n)} (input of shape {tuple(x.shape)} on this rank)")
        mean = (counts * means).sum(axis=0) / n
        var = (m2s + counts * (means - mean) ** 2).sum(axis=0) / n  # biased: what normalization uses
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += (momentum * var * n / (n - 1)).astype(running_var.dtype)
        dtype = x.dtype
        invstd = (1 / xp.sqrt(var + eps)).astype(dtype).reshape(shape)
        xhat = (x - mean.astype(dtype).reshape(shape)) * invstd
        w = affine[0].reshape(shape) if has_weight else None
        b = affine[-1].reshape(shape) if has_bias else None
        out = xhat if w is None else xhat * w
        out = out if b is None else out + b
        self.xhat, self.invstd, self.w, self.axes, self.n, self.group = xhat, invstd, w, axes, n, group
        self.has_weight, self.has_bias = has_weight, has_bias
        return out if out is not xhat else xhat.copy()

    def backward(self, g):
        xhat, axes = self.xhat, self.axes
        xp = array_module(g)
        gsum = g.sum(axis=axes)
        gxsum = (g * xhat).sum(axis=axes)
        grads = [None]
        if self.next[0] is not None:
            # Every rank must join this all-reduce, so it runs whenever the input needs a gradient;
            # the graph is the same on all ranks, so they agree on that.
            both = xp.concatenate([gsum, gxsum]).astype(np.float64)
            self.group.all_reduce(both)
            c = gsum.shape[0]
            shape = self.invstd.shape
            mean_g = (both[:c] / self.n).astype(g.dtype).reshape(shape)
            mean_gx = (both[c:] / self.n).astype(g.dtype).reshape(shape)
            scale = self.invstd if self.w is None else self.invstd * self.w
            grads[0] = scale * (g - mean_g - xhat * mean_gx)
        if self.has_weight:
            grads.append(gxsum if self.next[1] is not None else None)
        if self.has_bias:
            grads.append(gsum if self.next[-1] is not None else None)
        return tuple(grads)


class SyncBatchNorm(_BatchNorm):
    """Batch norm whose training statistics span every rank's batch (``torch.nn.SyncBatchNorm``).

    Input: ``(N, C, *)``. Convert a model's BatchNorm layers with :meth:`convert_sync_batchnorm`.

    >>> import deepgrad.distributed as dist
    >>> dist.init_process_group("mpi")   # a world of one here
    >>> model = deepgrad.nn.Sequential(deepgrad.nn.Conv2d(1, 4, 3), deepgrad.nn.BatchNorm2d(4))
    >>> model = SyncBatchNorm.convert_sync_batchnorm(model)
    >>> model = dist.DistributedDataParallel(model)
    >>> model.module[1]
    SyncBatchNorm(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> model(deepgrad.randn(2, 1, 5, 5)).shape   # statistics over every rank's batch
    (2, 4, 3, 3)
    >>> dist.destroy_process_group()
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise ValueError(f"SyncBatchNorm({self.num_features}): expected at least 2-D input, "
                             f"got {x.ndim}-D input of shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}): expected input with {self.num_features} "
                             f"channels in dim 1, got shape {tuple(x.shape)}")
        synced = self.training and collectives.is_initialized() and collectives.get_world_size() > 1
        if not synced:
            return self._local_forward(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.array += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        affine = [t for t in (self.weight, self.bias) if t is not None]
        track = self.track_running_stats
        return _SyncBatchNormFn.apply(
            x, *affine, has_weight=self.weight is not None, has_bias=self.bias is not None, eps=self.eps,
            running_mean=self.running_mean.array if track else None,
            running_var=self.running_var.array if track else None,
            momentum=factor, group=collectives._default_group(),
        )

    def _local_forward(self, x: Tensor) -> Tensor:
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, self.training or self.running_mean is None, factor, self.eps)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """Replace every BatchNorm1d/2d/3d in ``module`` by a SyncBatchNorm holding the same tensors."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, bias=module.bias is not None)
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    setattr(converted, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if getattr(module, name) is not None:
                    converted.register_buffer(name, getattr(module, name))
            converted.train(module.training)
            return converted
        for name, child in list(module.named_children()):
            new = cls.convert_sync_batchnorm(child)
            if new is not child:
                # in place in the registry: add_module would move it last and reorder parameters()
                module._modules[name] = new
                module.__dict__[name] = new
        return module
