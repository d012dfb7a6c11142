"""Spectral normalisation (Miyato et al., 2018) with torch's classic hook-based API: the weight is
divided by an estimate of its largest singular value, kept up to date by power iteration.

``spectral_norm(module)`` renames the parameter ``weight`` to ``weight_orig`` and adds two buffers,
``weight_u`` and ``weight_v`` (the singular-vector estimates). Before every call a forward pre-hook sets
``module.weight = weight_orig / sigma`` with ``sigma = u . (W v)``; in training mode it first runs
``n_power_iterations`` steps ``v = normalize(W^T u)``, ``u = normalize(W v)`` (updating the buffers, no
gradient). The ``state_dict`` keys are torch's, so discriminators trained in either library load in the
other. It bounds a layer's Lipschitz constant by ~1, the usual way to stabilise a GAN's discriminator.

>>> layer = spectral_norm(deepgrad.nn.Linear(20, 40))
>>> layer.weight_u.shape, layer.weight_v.shape
((40,), (20,))
"""

from __future__ import annotations

from typing import TypeVar

from ...autograd import no_grad
from ...creation import randn
from ...tensor import Tensor
from .. import functional as F
from ..module import Module, Parameter
from .weight_norm import remove_reparametrization

M = TypeVar("M", bound=Module)


class SpectralNorm:
    """The forward pre-hook that rebuilds ``module.<name>`` as ``<name>_orig / sigma``."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.n_power_iterations, self.eps = name, dim, n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        """``weight`` as a matrix whose rows index dim ``self.dim`` (the output units)."""
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                w = weight_mat.detach()
                for _ in range(self.n_power_iterations):
                    v_next = F.normalize(w.transpose(0, 1) @ u, dim=0, eps=self.eps)
                    u_next = F.normalize(w @ v_next, dim=0, eps=self.eps)
                    v.copy_(v_next)
                    u.copy_(u_next)
                # sigma below uses copies, so the next in-place update cannot touch this step's graph
                u, v = u.clone(), v.clone()
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int, eps: float) -> SpectralNorm:
        for hook in module._forward_pre_hooks:
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        if name not in module._parameters:
            raise KeyError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
        weight = module._parameters[name]
        if weight is None:
            raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
        with no_grad():
            h, w = fn.reshape_weight_to_matrix(weight).shape
            # random starting vectors from deepgrad's generator (torch draws from its own, so values differ)
            u = F.normalize(randn(h, dtype=weight.dtype, device=weight.device), dim=0, eps=eps)
            v = F.normalize(randn(w, dtype=weight.dtype, device=weight.device), dim=0, eps=eps)
        delattr(module, name)
        module.register_parameter(name + "_orig", weight)
        setattr(module, name, weight.detach())  # a plain tensor until the first forward, as torch
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        for suffix in ("", "_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))


def spectral_norm(module: M, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> M:
    """Divide ``module.<name>`` by its spectral norm before every forward (power iteration in training).
    ``dim`` is the output dim: 1 for transposed convolutions, else 0. Returns the module.

    >>> d = spectral_norm(deepgrad.nn.Conv2d(3, 8, 3))
    >>> sorted(d.state_dict())
    ['bias', 'weight_orig', 'weight_u', 'weight_v']
    """
    if dim is None:
        from ..conv import ConvTranspose2d  # a transposed conv's weight is (in, out, ...): outputs on dim 1

        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: M, name: str = "weight") -> M:
    """Fold the normalised weight back into a plain parameter ``<name>`` and drop the hook."""
    return remove_reparametrization(module, SpectralNorm, name, "spectral_norm")
