"""The backward walk: from the outputs' gradients to every leaf's ``.grad`` (or to the inputs of
:func:`grad`), in reverse topological order, without recursion (a chain of 100 000 ops backprops).
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from ..tensor import Tensor
from . import core, higher
from .core import AccumulateGrad, OutputSlot, _edge, check_saved_versions, park_output_grad


def _topological_order(roots) -> list:
    """Nodes reachable from ``roots``, producers after consumers, by an iterative DFS."""
    order, visited = [], set()
    for root in roots:
        if id(root) in visited:
            continue
        visited.add(id(root))
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
            grad = out.array if isinstance(out, Tensor) else out
    return grad


def _root_grad(tensor: Tensor, gradient, k: int):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"backward: output {k} is a {type(tensor).__name__}, not a Tensor")
    if not tensor.requires_grad:
        raise RuntimeError(
            f"element {k} of tensors does not require grad and does not have a grad_fn: "
            "nothing to backpropagate (did you forget requires_grad=True, or run under no_grad?)"
        )
    if gradient is None:
        if tensor.array.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs, but the output has "
                f"shape {tensor.shape}: call backward(gradient) with a tensor of that shape "
                f"(e.g. ones_like(output)) or reduce the output first (e.g. .sum())"
            )
        return array_module(tensor.array).ones_like(tensor.array)
    grad = gradient.array if isinstance(gradient, Tensor) else np.asarray(gradient)
    if grad.shape != tensor.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{k}] has a shape of {tuple(grad.shape)} and output[{k}] has a "
            f"shape of {tuple(tensor.shape)}."
        )
    return grad.astype(tensor.array.dtype, copy=False)


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None, create_graph: bool = False,
             inputs=None, _capture: dict | None = None) -> None:
    """Backpropagate from ``tensors`` (one or several, with their upstream gradients) into the
    ``.grad`` of every leaf that requires it — or only of ``inputs`` when given, like torch.

    With ``_capture`` (a dict keyed by graph nodes, used by :func:`grad`) the gradients reaching
    those nodes are stored there and no leaf's ``.grad`` is touched.
    """
    grads = _root_grads(tensors, grad_tensors, keep_tensors=create_graph)
    targets = _targets(inputs) if inputs is not None and _capture is None else None
    if create_graph:  # the backward recorded as a graph of differentiable ops: see higher.py
        retain = True if retain_graph is None else retain_graph
        higher.run(grads, _topological_order(list(grads)), retain, _capture, targets, _freed_error)
        return
    special = _capture is not None or targets is not None
    for node in _topological_order(list(grads)):
        g = grads.pop(node, None)
        if g is None:
            continue
        if node.hooks:
            g = _run_hooks(node.hooks, g)
        if special and _deliver(node, g, _capture, targets):
            continue
        if type(node) is AccumulateGrad:
            node.accumulate(g)
            continue
        if type(node) is OutputSlot:  # one output of a multi-output op: park its gradient there
            park_output_grad(grads, node, g)
            continue
        if node.freed:
            raise _freed_error(node)
        if node.epoch != core._epoch:  # something was written in place since this node was made
            check_saved_versions(node)
        in_grads = node.backward(*g) if type(g) is list else node.backward(g)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        for nxt, ig in zip(node.next, in_grads):
            if nxt is None or ig is None:
                continue
            prev = grads.get(nxt)
            grads[nxt] = ig if prev is None else prev + ig
        if not retain_graph:
            node.release()


def _root_grads(tensors, grad_tensors, keep_tensors: bool = False) -> dict:
    """The graph nodes to start from, each with the gradient arriving there (as Tensors, with their own
    graph, when ``keep_tensors``: a recorded backward)."""
    if grad_tensors is None and not keep_tensors and type(tensors) is Tensor:  # loss.backward(): one root
        g = _root_grad(tensors, None, 0)
        root = _edge(tensors)
        if root.freed:
            raise _freed_error(root)
        return {root: g}
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    grad_tensors = list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"backward: got {len(grad_tensors)} gradients for {len(tensors)} tensors")
    grads = {}
    for k, (t, g) in enumerate(zip(tensors, grad_tensors)):
        given = g
        g = _root_grad(t, g, k)
        if keep_tensors:
            g = given if isinstance(given, Tensor) and given.shape == t.shape and given.dtype == t.dtype else \
                Tensor._make(g, None)
        root = _edge(t)
        if root.freed:
            raise _freed_error(root)
        prev = grads.get(root)
        grads[root] = g if prev is None else prev + g
    return grads


def _targets(inputs) -> dict:
    """``backward(inputs=...)``: the nodes whose tensors get a ``.grad``."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not inputs:
        raise RuntimeError("backward: 'inputs' argument to backward() cannot be empty.")
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("backward: one of the 'inputs' does not require grad")
    return {_edge(t): t for t in inputs}


def _deliver(node, g, capture, targets) -> bool:
    """For :func:`grad` and ``backward(inputs=)``: store ``g`` where asked; True when the walk ends here
    (a leaf accumulator, whose ``.grad`` is then left alone unless it is a target)."""
    if capture is not None:
        if node in capture:
            capture[node] = g
        return type(node) is AccumulateGrad
    if node in targets:
        if type(node) is AccumulateGrad:
            node.accumulate(g)
            return True
        _accumulate_into(targets[node], g)  # a non-leaf input: its .grad, like retain_grad
    return type(node) is AccumulateGrad


def _accumulate_into(t: Tensor, g) -> None:
    t.grad = Tensor._make(g.astype(t.array.dtype, copy=True), None) if t.grad is None else \
        Tensor._make(t.grad.array + g, None)


def _freed_error(node) -> RuntimeError:
    return RuntimeError(
        f"Trying to backward through the graph a second time ({node.name()} has already "
        f"freed its saved values). Specify retain_graph=True on the first backward() if you "
        f"need to backward through the graph again."
    )


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused: bool | None = None, is_grads_batched: bool = False,
         materialize_grads: bool = False):
    """Gradients of ``outputs`` with respect to ``inputs`` as a tuple (one per input, like torch,
    even for a single input), without touching any ``.grad``.

    >>> x = deepgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> grad((x ** 2).sum(), x)
    (tensor([2., 4., 6.]),)
    """
    if is_grads_batched:
        raise NotImplementedError("grad(is_grads_batched=True) is not supported by deepgrad")
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, "
                         "but got: allow_unused=False.")
    allow_unused = bool(allow_unused) or materialize_grads
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one grad_output per output: got {len(grad_outputs)} grad_outputs "
                           f"for {len(outputs)} outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: input {i} is a {type(t).__name__}, not a Tensor")
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    nodes = [_edge(t) for t in inputs]
    capture = dict.fromkeys(nodes)
    retain = bool(retain_graph) if retain_graph is not None else create_graph
    backward(outputs, grad_outputs, retain_graph=retain, create_graph=create_graph, _capture=capture)
    result = []
    for t, node in zip(inputs, nodes):
        g = capture[node]
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    "One of the differentiated Tensors appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior."
                )
            result.append(Tensor._make(array_module(t.array).zeros_like(t.array), None) if materialize_grads else None)
            continue
        if create_graph:  # a Tensor with the graph of its computation
            result.append(g if g.dtype == t.dtype else g.to(t.dtype))
            continue
        # A copy: the captured array may be shared with other gradients or the upstream.
        result.append(Tensor._make(g.astype(t.array.dtype, copy=True), None))
    return tuple(result)
