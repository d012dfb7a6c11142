"""torch.autograd.functional: vector-Jacobian and Jacobian-vector products, Hessian-vector products,
full Jacobians and Hessians of a function of tensors — built on ``grad(create_graph=True)``.

``jvp`` uses the double-vjp trick (the Jacobian-vector product is the gradient, with respect to a dummy
upstream ``u``, of the vector-Jacobian product ``u^T J``), and ``hvp`` is the gradient of ``grad(f) . v``
— the interview answer to "how would you compute Hv without the Hessian?": two backward passes, never an
n x n matrix.

>>> import deepgrad as dg
>>> x = dg.tensor([1.0, 2.0])
>>> hvp(lambda t: (t ** 3).sum(), x, dg.tensor([1.0, 0.0]))[1]    # H = diag(6 x)
tensor([6., 0.])
"""

from __future__ import annotations

from ..backend import array_module
from ..tensor import Tensor
from .engine import grad
from .grad_mode import enable_grad


def _tuple(x) -> tuple[tuple, bool]:
    return ((x,), True) if isinstance(x, Tensor) else (tuple(x), False)


def _prepare(inputs) -> tuple[tuple, bool]:
    xs, single = _tuple(inputs)
    return tuple(x.detach().requires_grad_(True) if x.dtype.kind == "f" else x.detach() for x in xs), single


def _grads(outputs, inputs, grad_outputs, create_graph: bool) -> tuple:
    gs = grad(outputs, inputs, grad_outputs=grad_outputs, create_graph=create_graph, allow_unused=True,
              retain_graph=True)
    return tuple(Tensor._make(array_module(x.array).zeros_like(x.array), None) if g is None else g
                 for g, x in zip(gs, inputs))


def _result(values, single: bool, create_graph: bool):
    values = tuple(v if create_graph else v.detach() for v in values)
    return values[0] if single else values


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), v^T J)``: the output and the vector-Jacobian product."""
    xs, single = _prepare(inputs)
    with enable_grad():
        out = func(*xs)
        outs, out_single = _tuple(out)
        vs = (None,) * len(outs) if v is None else _tuple(v)[0]
        g = _grads(list(outs), xs, list(vs), create_graph)
    return _result(outs, out_single, create_graph), _result(g, single, create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), J v)`` by the double-vjp trick: J v = d/du (u^T J v)."""
    xs, single = _prepare(inputs)
    vs = _tuple(v)[0] if v is not None else tuple(Tensor._make(x.array * 0 + 1, None) for x in xs)
    with enable_grad():
        out = func(*xs)
        outs, out_single = _tuple(out)
        us = tuple(Tensor._make(o.array * 0, None).requires_grad_(True) for o in outs)
        g = _grads(list(outs), xs, list(us), create_graph=True)  # u^T J, as a function of u
        dot = None
        for gi, vi in zip(g, vs):
            term = (gi * vi).sum()
            dot = term if dot is None else dot + term
        jv = _grads([dot], us, None, create_graph)
    return _result(outs, out_single, create_graph), _result(jv, out_single, create_graph)


def hvp(func, inputs, v, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), H v)`` for a scalar ``func``: the gradient of ``grad(func) . v``."""
    xs, single = _prepare(inputs)
    vs = _tuple(v)[0]
    with enable_grad():
        out = func(*xs)
        if out.numel() != 1:
            raise RuntimeError(f"hvp: the function must return a single-element tensor, got shape {tuple(out.shape)}")
        g = _grads([out], xs, None, create_graph=True)
        dot = None
        for gi, vi in zip(g, vs):
            term = (gi * vi).sum()
            dot = term if dot is None else dot + term
        hv = _grads([dot], xs, None, create_graph)
    return _result((out,), True, create_graph), _result(hv, single, create_graph)


vhp = hvp  # the Hessian of a twice-differentiable scalar function is symmetric


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode"):
    """The full Jacobian: one vector-Jacobian product per output element (for small cases)."""
    from ..ops.shape import stack

    xs, single = _prepare(inputs)
    with enable_grad():
        out = func(*xs)
        outs, out_single = _tuple(out)
        rows = []
        for o in outs:
            per_input = [[] for _ in xs]
            flat = o.reshape(-1)
            for k in range(flat.shape[0]):
                gs = _grads([flat[k]], xs, None, create_graph)
                for i, gi in enumerate(gs):
                    per_input[i].append(gi)
            rows.append(tuple(stack(p).reshape(tuple(o.shape) + tuple(x.shape)) if p else
                              Tensor._make(x.array.reshape((0,) + x.shape), None) for p, x in zip(per_input, xs)))
    rows = [tuple(r if create_graph else r.detach() for r in row) for row in rows]
    if out_single:
        return rows[0][0] if single else rows[0]
    return tuple(r[0] for r in rows) if single else tuple(rows)


def hessian(func, inputs, create_graph: bool = False, strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode"):
    """The full Hessian of a scalar function: the Jacobian of its gradient (for small cases)."""
    xs, single = _prepare(inputs)

    def gradient(*ts):
        out = func(*ts)
        if out.numel() != 1:
            raise RuntimeError(f"hessian: the function must return a single-element tensor, got shape "
                               f"{tuple(out.shape)}")
        g = _grads([out], ts, None, create_graph=True)
        return g[0] if single else g

    return jacobian(gradient, xs[0] if single else xs, create_graph=create_graph)
