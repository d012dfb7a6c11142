"""Weight normalisation (Salimans & Kingma, 2016) with torch's classic hook-based API:
``w = g * v / ||v||``, the norm taken over every dim except ``dim``.

``weight_norm(module)`` replaces the parameter ``weight`` by ``weight_g`` (the magnitudes) and
``weight_v`` (the directions), and a forward pre-hook recomputes ``module.weight`` from them before
every call, so gradients reach ``g`` and ``v``. The ``state_dict`` keys are torch's (``weight_g``,
``weight_v``), so checkpoints move both ways. torch now also offers the same thing through
``torch.nn.utils.parametrizations`` (keys ``parametrizations.weight.original0/1``); deepgrad keeps the
classic form only.

>>> layer = weight_norm(deepgrad.nn.Linear(20, 40), name="weight")
>>> layer.weight_g.shape, layer.weight_v.shape
((40, 1), (40, 20))
"""

from __future__ import annotations

from typing import TypeVar

from ...autograd import no_grad
from ...tensor import Tensor
from .. import functional as F
from ..module import Module, Parameter

M = TypeVar("M", bound=Module)


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:
    """The ``pow``-norm of ``v`` over every dim except ``dim``, kept broadcastable against ``v``.

    ``dim=-1`` means *no* dim is kept (one norm over the whole tensor, a 0-d result), as in torch.
    """
    if dim == -1:
        return F._vector_norm(v, pow, None, False)
    d = dim % v.ndim
    others = tuple(i for i in range(v.ndim) if i != d)
    return F._vector_norm(v, pow, others, True) if others else F._vector_norm(v, pow, (), True).abs()


class WeightNorm:
    """The forward pre-hook that rebuilds ``module.<name>`` from ``<name>_g`` and ``<name>_v``."""

    def __init__(self, name: str, dim: int | None):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / norm_except_dim(v, 2, self.dim))

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        for hook in module._forward_pre_hooks:
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
        if name not in module._parameters:
            raise AttributeError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
        weight = module._parameters[name]
        if weight is None:
            raise TypeError(f"weight_norm: parameter {name!r} of {type(module).__name__} is None")
        fn = WeightNorm(name, dim)
        with no_grad():
            g = norm_except_dim(weight.detach(), 2, fn.dim)
        delattr(module, name)
        module.register_parameter(name + "_g", Parameter(g))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        delattr(module, self.name + "_g")
        delattr(module, self.name + "_v")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: M, name: str = "weight", dim: int | None = 0) -> M:
    """Reparametrise ``module.<name>`` as ``g * v / ||v||`` (``dim=0``: one magnitude per output unit;
    ``dim=None``: one for the whole tensor). Returns the module.

    >>> weight_norm(deepgrad.nn.Conv2d(3, 8, 3)).weight_g.shape
    (8, 1, 1, 1)
    """
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: M, name: str = "weight") -> M:
    """Fold ``g`` and ``v`` back into a plain parameter ``<name>`` and drop the hook."""
    return remove_reparametrization(module, WeightNorm, name, "weight_norm")


def remove_reparametrization(module: M, hook_type: type, name: str, what: str) -> M:
    """Undo a hook-based reparametrization of ``<name>`` (weight or spectral norm): fold it back into a plain
    parameter and drop the hook, or say that ``module`` has none."""
    for hook in list(module._forward_pre_hooks):
        if isinstance(hook, hook_type) and hook.name == name:
            hook.remove(module)
            module._forward_pre_hooks.remove(hook)
            return module
    raise ValueError(f"{what} of '{name}' not found in {module}")
