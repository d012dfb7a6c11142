"""Reverse-mode automatic differentiation: graph nodes, the backward walk, grad mode, gradcheck.

The graph is recorded while an op runs (define-by-run). Each differentiable op is a
:class:`Function` whose instance *is* the graph node: ``forward`` computes on raw arrays and
keeps what ``backward`` needs; ``backward`` maps the output gradient to input gradients.
Edges point at the producer nodes of the inputs (``next``), not at tensors, so an in-place op
that rebinds a tensor to a new node never reroutes gradients of ops recorded before it.
"""

from __future__ import annotations

import contextlib
import weakref

import numpy as np

from .backend import array_module
from .tensor import Tensor

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True when ops record the graph."""
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Base of the grad-mode switches: each use as a decorator gets a fresh context, so a
    recursive decorated function restores the mode its outermost caller had."""

    mode = False

    def _recreate_cm(self):
        return type(self)()

    def __enter__(self):
        global _grad_enabled
        self.prev = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False


class set_grad_enabled(_GradMode):
    """Turn graph recording on or off, as a function, context manager or decorator.

    >>> with set_grad_enabled(False):
    ...     y = x * 2          # y.requires_grad is False
    """

    def __init__(self, mode: bool):
        global _grad_enabled
        self.prev = _grad_enabled
        self.mode = bool(mode)
        _grad_enabled = self.mode  # takes effect as a plain call too, like torch

    def __call__(self, func):
        # Used as ``@set_grad_enabled(False)``: the call above must not outlive decoration.
        global _grad_enabled
        _grad_enabled = self.prev
        return super().__call__(func)

    def _recreate_cm(self):
        return set_grad_enabled(self.mode)

    def __enter__(self):  # ``prev`` was taken in __init__, before the mode changed
        global _grad_enabled
        _grad_enabled = self.mode
        return self


class _NoParamGradMode(_GradMode):
    """A switch usable as ``@no_grad()`` and, like torch, as a bare ``@no_grad``."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoParamGradMode):
    """Context manager / decorator that disables graph recording (inference, updates)."""

    mode = False


class enable_grad(_NoParamGradMode):
    """Context manager / decorator that re-enables graph recording inside ``no_grad``."""

    mode = True


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Function:
    """A differentiable op and, once applied with grad enabled, its node in the graph.

    Subclasses implement ``forward(self, *arrays, **params) -> array`` and
    ``backward(self, grad) -> array | tuple`` (one gradient per tensor input, ``None`` for
    inputs that need none; ``self.next[i] is None`` tells that input ``i`` needs no gradient).
    """

    next: tuple = ()
    hooks: list | None = None  # gradient hooks of the output tensor (non-leaf)
    freed = False

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        fn = cls()
        out = fn.forward(*[t.data for t in inputs], **params)
        if _grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    fn.next = tuple([_edge(t) for t in inputs])
                    return Tensor._make(out, fn)
        return Tensor._make(out, None)

    def release(self) -> None:
        """Drop saved arrays and edges once backward has passed (unless retain_graph)."""
        self.__dict__.clear()
        self.freed = True

    def name(self) -> str:
        return f"{type(self).__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class AccumulateGrad:
    """The node of a leaf tensor: sums incoming gradients into ``tensor.grad``."""

    __slots__ = ("tensor_ref", "hooks", "__weakref__")
    next = ()
    freed = False

    def __init__(self, tensor: Tensor):
        self.tensor_ref = weakref.ref(tensor)
        self.hooks = None

    def accumulate(self, grad) -> None:
        t = self.tensor_ref()
        if t is None:
            return
        if grad.shape != t.data.shape:
            raise RuntimeError(
                f"backward: gradient of shape {grad.shape} reached a leaf of shape {t.shape}"
            )
        if grad.dtype != t.data.dtype:
            grad = grad.astype(t.data.dtype)
        if t.grad is None:
            # Copy: the same array may have been handed to several inputs (x + y).
            t.grad = Tensor._make(grad.copy(), None)
        else:
            t.grad.data += grad

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad>"


def _edge(t: Tensor):
    """The node that receives ``t``'s gradient (its producer, or its leaf accumulator)."""
    if not t.requires_grad:
        return None
    if t.grad_fn is not None:
        return t.grad_fn
    acc = t._accum
    if acc is None:
        acc = t._accum = AccumulateGrad(t)
    return acc


def _topological_order(root) -> list:
    """Nodes reachable from ``root``, producers after consumers, by an iterative DFS."""
    order, visited = [], {id(root)}
    stack = [(root, iter(root.next))]
    while stack:
        node, children = stack[-1]
        for child in children:
            if child is not None and id(child) not in visited:
                visited.add(id(child))
                stack.append((child, iter(child.next)))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def _run_hooks(hooks, grad):
    for hook in list(hooks):
        out = hook(Tensor._make(grad, None))
        if out is not None:
            grad = out.data if isinstance(out, Tensor) else out
    return grad


def backward(tensor: Tensor, gradient=None, retain_graph: bool = False, _capture: dict | None = None) -> None:
    """Backpropagate from ``tensor``; see :meth:`Tensor.backward`.

    With ``_capture`` (a dict keyed by graph nodes, used by :func:`grad`) the gradients reaching
    those nodes are stored there and no leaf's ``.grad`` is touched.
    """
    if not tensor.requires_grad:
        raise RuntimeError(
            "element 0 of tensors does not require grad and does not have a grad_fn: "
            "nothing to backpropagate (did you forget requires_grad=True, or run under no_grad?)"
        )
    if gradient is None:
        if tensor.data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs, but the output has "
                f"shape {tensor.shape}: call backward(gradient) with a tensor of that shape "
                f"(e.g. ones_like(output)) or reduce the output first (e.g. .sum())"
            )
        grad = array_module(tensor.data).ones_like(tensor.data)
    else:
        grad = gradient.data if isinstance(gradient, Tensor) else np.asarray(gradient)
        if grad.shape != tensor.shape:
            raise RuntimeError(
                f"backward: gradient has shape {grad.shape} but the output has shape "
                f"{tensor.shape}; they must match"
            )
        grad = grad.astype(tensor.data.dtype, copy=False)

    root = _edge(tensor)
    if root.freed:
        raise _freed_error(root)
    grads = {root: grad}
    for node in _topological_order(root):
        g = grads.pop(node, None)
        if g is None:
            continue
        if node.hooks:
            g = _run_hooks(node.hooks, g)
        if type(node) is AccumulateGrad:
            if _capture is None:
                node.accumulate(g)
            elif node in _capture:
                _capture[node] = g
            continue
        if _capture is not None and node in _capture:
            _capture[node] = g
        if node.freed:
            raise _freed_error(node)
        in_grads = node.backward(g)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        for nxt, ig in zip(node.next, in_grads):
            if nxt is None or ig is None:
                continue
            prev = grads.get(nxt)
            grads[nxt] = ig if prev is None else prev + ig
        if not retain_graph:
            node.release()


def _freed_error(node) -> RuntimeError:
    return RuntimeError(
        f"Trying to backward through the graph a second time ({node.name()} has already "
        f"freed its saved values). Specify retain_graph=True on the first backward() if you "
        f"need to backward through the graph again."
    )


def grad(outputs: Tensor, inputs, grad_outputs=None, retain_graph: bool = False, allow_unused: bool = False):
    """Gradients of ``outputs`` with respect to ``inputs``, without touching any ``.grad``.

    >>> (gx,) = grad((x ** 2).sum(), [x])      # gx == 2 * x
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: one of the differentiated Tensors does not require grad")
    nodes = [_edge(t) for t in inputs]
    capture = dict.fromkeys(nodes)
    backward(outputs, grad_outputs, retain_graph=retain_graph, _capture=capture)
    result = []
    for t, node in zip(inputs, nodes):
        g = capture[node]
        if g is None and not allow_unused:
            raise RuntimeError(
                "grad: one of the differentiated Tensors appears to not have been used in the graph; "
                "pass allow_unused=True if this is the desired behavior"
            )
        # A copy: the captured array may be shared with other gradients or the upstream.
        result.append(None if g is None else Tensor._make(g.astype(t.data.dtype, copy=True), None))
    return result[0] if single else tuple(result)


# ----------------------------------------------------------------------------- gradcheck
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

    >>> x = randn(3, 4, dtype=float64, requires_grad=True)
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
                total += float((np.asarray(o.data, dtype=np.float64) * u).sum())
        return total

    # Analytic gradients.
    for t in checked:
        t.grad = None
    outs = outputs_of(inputs)
    loss = None
    for o, u in zip(outs, upstream):
        if u is None or not o.requires_grad:
            continue
        term = (o * Tensor._make(u.astype(o.data.dtype), None)).sum()
        loss = term if loss is None else loss + term
    analytic = []
    if loss is not None:
        loss.backward()
    for t in checked:
        g = t.grad
        analytic.append(np.zeros(t.shape) if g is None else np.asarray(g.data, dtype=np.float64))
        t.grad = None

    # Numerical gradients, one coordinate at a time.
    with no_grad():
        for t, ana in zip(checked, analytic):
            t.data = np.ascontiguousarray(t.data)
            flat = t.data.reshape(-1)  # a view: writing it perturbs the input in place
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
