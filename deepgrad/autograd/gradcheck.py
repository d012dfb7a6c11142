"""gradcheck: autograd's gradients against central finite differences in float64."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .grad_mode import enable_grad, no_grad


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` with the worst mismatching element."""


def gradcheck(
    fn,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Compare autograd gradients of ``fn`` with central finite differences in float64.

    The output is contracted with a *random* upstream gradient (an all-ones upstream hides
    bugs such as batch norm's mean-subtraction term). Inputs that require grad are checked.

    >>> x = deepgrad.randn(3, 4, dtype=deepgrad.float64, requires_grad=True)
    >>> gradcheck(lambda t: (t.tanh() * t).sum(dim=1), [x])
    True
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 for a meaningful check, got {t.dtype}")
    rng = np.random.default_rng(seed)

    def outputs_of(values):
        out = fn(*values)
        return list(out) if isinstance(out, (tuple, list)) else [out]

    with no_grad():
        outs = outputs_of(inputs)
    upstream = [
        rng.standard_normal(o.shape) if np.issubdtype(o.dtype, np.floating) else None
        for o in outs
    ]

    def scalar(values) -> float:
        total = 0.0
        for o, u in zip(outputs_of(values), upstream):
            if u is not None:
                total += float((np.asarray(o.array, dtype=np.float64) * u).sum())
        return total

    # Analytic gradients.
    for t in checked:
        t.grad = None
    outs = outputs_of(inputs)
    loss = None
    for o, u in zip(outs, upstream):
        if u is None or not o.requires_grad:
            continue
        term = (o * Tensor._make(u.astype(o.array.dtype), None)).sum()
        loss = term if loss is None else loss + term
    analytic = []
    if loss is not None:
        loss.backward()
    for t in checked:
        g = t.grad
        analytic.append(np.zeros(t.shape) if g is None else np.asarray(g.array, dtype=np.float64))
        t.grad = None

    # Numerical gradients, one coordinate at a time.
    with no_grad():
        for t, ana in zip(checked, analytic):
            if not t.array.flags.c_contiguous:  # (ascontiguousarray would make a 0-d input 1-d)
                t.array = t.array.copy(order="C")
            flat = t.array.reshape(-1)  # a view: writing it perturbs the input in place
            num = np.zeros(flat.size)
            for i in range(flat.size):
                orig = flat[i].item()
                flat[i] = orig + eps
                plus = scalar(inputs)
                flat[i] = orig - eps
                minus = scalar(inputs)
                flat[i] = orig
                num[i] = (plus - minus) / (2 * eps)
            num = num.reshape(t.shape)
            err = np.abs(num - ana) - (atol + rtol * np.abs(num))
            if err.size and err.max() > 0:
                worst = np.unravel_index(int(np.argmax(err)), err.shape)
                position = next(i for i, x in enumerate(inputs) if x is t)  # not list.index: == is elementwise
                msg = (
                    f"gradcheck failed for input #{position} of shape {t.shape}: at index "
                    f"{tuple(int(i) for i in worst)} numerical={num[worst]:.8g} "
                    f"analytic={ana[worst]:.8g} (atol={atol}, rtol={rtol}); "
                    f"max abs difference {np.abs(num - ana).max():.3g}"
                )
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  seed: int = 0, raise_exception: bool = True) -> bool:
    """Check second derivatives: the gradients of ``fn``'s vector-Jacobian product (computed with
    ``create_graph=True``) against finite differences, for random upstream gradients — torch's
    ``gradgradcheck``. Inputs that require grad must be float64.

    >>> x = deepgrad.randn(3, dtype=deepgrad.float64, requires_grad=True)
    >>> gradgradcheck(lambda t: (t.tanh() * t).sum(), [x])
    True
    """
    from .engine import grad

    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    rng = np.random.default_rng(seed + 1)
    with no_grad():
        outs = fn(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    if grad_outputs is None:
        grad_outputs = [Tensor(rng.standard_normal(o.shape), dtype=o.dtype, requires_grad=True) for o in outs]

    def first_order(*values):
        xs, ups = values[:len(inputs)], values[len(inputs):]
        with enable_grad():  # gradcheck evaluates under no_grad; the vjp itself needs a graph
            ys = fn(*xs)
            ys = list(ys) if isinstance(ys, (tuple, list)) else [ys]
            xs_checked = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
            return grad(ys, xs_checked, grad_outputs=list(ups), create_graph=True, allow_unused=True,
                        materialize_grads=True)

    return gradcheck(first_order, inputs + list(grad_outputs), eps=eps, atol=atol, rtol=rtol, seed=seed,
                     raise_exception=raise_exception)
