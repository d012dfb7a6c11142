"""Higher-order gradients: the backward pass recorded as a graph (``create_graph=True``).

The first-order walk (:mod:`.engine`) runs each node's ``backward`` on raw arrays: fast, and nothing is
recorded. With ``create_graph=True`` the same walk runs each node's ``backward_graph`` instead, written
with deepgrad's differentiable ops on Tensors — the saved inputs as the graph tensors they were, the
saved output as a tensor whose ``grad_fn`` is the node itself (torch unpacks saved outputs the same
way) — so the gradients it returns can themselves be differentiated: gradient penalties,
Hessian-vector products, double backprop. An op without ``backward_graph`` raises an error naming it,
never a wrong number. The first-order path is untouched: it never looks at any of this.

>>> x = deepgrad.tensor([1.0, 2.0], requires_grad=True)
>>> (gx,) = deepgrad.autograd.grad((x ** 3).sum(), x, create_graph=True)   # 3 x^2
>>> (hx,) = deepgrad.autograd.grad(gx.sum(), x)                          # 6 x
>>> hx
tensor([ 6., 12.])
"""

from __future__ import annotations

from ..tensor import Tensor
from . import core
from .core import AccumulateGrad, OutputSlot, check_saved_versions, park_output_grad
from .grad_mode import enable_grad


def _as_tensor(g) -> Tensor:
    return g if isinstance(g, Tensor) else Tensor._make(g, None)


def run(grads: dict, order: list, retain_graph: bool, capture: dict | None, targets: dict | None,
        freed_error) -> None:
    """The walk of :func:`engine.backward` with recorded gradients: ``grads`` maps the root nodes to
    their (Tensor) upstream gradients; ``order`` is the reverse topological order."""
    grads = {node: _as_tensor(g) for node, g in grads.items()}
    with enable_grad():
        for node in order:
            g = grads.pop(node, None)
            if g is None:
                continue
            if node.hooks:
                for hook in list(node.hooks):
                    out = hook(g)
                    if out is not None:
                        g = _as_tensor(out)
            if capture is not None:
                if node in capture:
                    capture[node] = g
                if type(node) is AccumulateGrad:
                    continue
            elif targets is not None:
                if node in targets:
                    _accumulate(targets[node], g)
                if type(node) is AccumulateGrad:
                    continue
            if type(node) is AccumulateGrad:
                t = node.tensor_ref()
                if t is not None:
                    _accumulate(t, g)
                continue
            if type(node) is OutputSlot:
                park_output_grad(grads, node, g)
                continue
            if node.freed:
                raise freed_error(node)
            if node.epoch != core._epoch:
                check_saved_versions(node)
            differentiable = getattr(node, "backward_graph", None)
            if differentiable is None:
                raise RuntimeError(
                    f"derivative for {node.name()} is not implemented for create_graph=True: deepgrad cannot "
                    f"differentiate its backward (higher-order gradients through this op are not supported)"
                )
            in_grads = differentiable(*g) if type(g) is list else differentiable(g)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            for nxt, ig in zip(node.next, in_grads):
                if nxt is None or ig is None:
                    continue
                ig = _as_tensor(ig)
                prev = grads.get(nxt)
                grads[nxt] = ig if prev is None else prev + ig
            if not retain_graph:
                node.release()


def _accumulate(t: Tensor, g: Tensor) -> None:
    """``t.grad += g`` out of place, so ``t.grad`` keeps the graph that made it (torch's create_graph)."""
    if g.shape != t.shape:
        raise RuntimeError(f"backward: gradient of shape {tuple(g.shape)} reached a tensor of shape {tuple(t.shape)}")
    if g.dtype != t.dtype:
        g = g.to(t.dtype)
    t.grad = g.clone() if t.grad is None else t.grad + g  # a clone: g may also flow elsewhere
