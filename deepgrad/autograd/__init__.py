"""Reverse-mode automatic differentiation: graph nodes, the backward walk, grad mode, gradcheck.

- :mod:`.core`: grad mode's flag, version counters, :class:`Function` (an op and its graph node),
  multi-output ops, what each node saves for its backward, the leaf accumulators;
- :mod:`.views`: tensors sharing memory, and the graph of a base after an in-place op on a view;
- :mod:`.grad_mode`: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``;
- :mod:`.engine`: ``backward`` and ``grad``;
- :mod:`.higher`: the backward recorded as a graph (``create_graph=True``), for higher-order gradients;
- :mod:`.functional`: ``vjp``, ``jvp``, ``hvp``, ``jacobian``, ``hessian``;
- :mod:`.gradcheck`: gradients (and second derivatives) against finite differences.

>>> x = deepgrad.tensor([1.0, 2.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4.])
"""

from . import functional  # noqa: F401  (deepgrad.autograd.functional: vjp, jvp, hvp, jacobian, hessian)
from .core import (  # noqa: F401
    OUT,
    AccumulateGrad,
    Function,
    OutputSlot,
    RemovableHandle,
    _edge,
    _VersionCounter,
    bump_all,
    is_grad_enabled,
    track_saved,
    version_counter,
)
from .engine import backward, grad  # noqa: F401
from .grad_mode import enable_grad, inference_mode, is_inference_mode_enabled, no_grad, set_grad_enabled  # noqa: F401
from .gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: F401
from .views import regenerate_view, replay_view  # noqa: F401
