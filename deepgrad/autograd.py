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


OUT = -1  # in a Function's ``saved`` spec: the op's output


_epoch = 0  # counts every in-place write anywhere: a node whose saved tensors were not written since
#               it was made needs no per-tensor check at backward (the common case costs one comparison)


class _VersionCounter:
    """How many in-place ops have written a tensor's memory; shared by a tensor and its views.

    ``epoch`` is the global write count of its last write, ``recent`` the epochs of its last few writes
    (to name the version a node saved, in the error). ``views`` holds weak references to views made
    (with grad on) of a base that did not require grad, so that an in-place op which makes the base
    require grad can make them require it too.
    """

    # No __slots__ and no __init__: the class defaults serve until the first write, so making a counter
    # (one per saved output) costs an empty object (measured 0.25 -> 0.08 us).
    value = 0
    epoch = 0
    recent = ()
    views = None

    def bump(self) -> None:
        global _epoch
        _epoch += 1
        self.value += 1
        self.epoch = _epoch
        self.recent = (*self.recent[-7:], _epoch)


def version_counter(t: Tensor) -> _VersionCounter:
    """``t``'s version counter, created on first need (most tensors never need one)."""
    vc = t._vc
    if vc is None:
        vc = t._vc = _VersionCounter()
    return vc


class _ViewInfo:
    """What makes a tensor a view: its base (never itself a view), the view ops that lead from the
    base to it (replayed to rebuild its graph node after an in-place op), and the base's version
    when its ``grad_fn`` was made. ``kind`` is torch's creation meta: ``"default"``, ``"no_grad"``
    (made under no_grad) or ``"multi"`` (an output of split/chunk/unbind)."""

    __slots__ = ("base", "chain", "gen", "kind")

    def __init__(self, base, chain, gen, kind):
        self.base, self.chain, self.gen, self.kind = base, chain, gen, kind


def _as_view(out: Tensor, src: Tensor, cls, params) -> None:
    """Record that ``out`` (just made by view op ``cls`` from ``src``) shares ``src``'s memory."""
    if cls.view == "maybe":
        base = out.array.base  # NumPy's view of a view points at the memory's owner
        if base is None or not (base is src.array or base is src.array.base):
            if not array_module(out.array).may_share_memory(out.array, src.array):
                return  # reshape of a non-contiguous array: a copy, not a view
    vc = src._vc
    if vc is None:
        vc = src._vc = _VersionCounter()
    out._vc = vc
    sv = src._view
    if sv is None:
        base, chain, kind = src, ((cls, params),), "default"
    else:
        base, chain, kind = sv.base, sv.chain + ((cls, params),), sv.kind
    if not _grad_enabled:
        kind = "no_grad"
    elif cls.view_kind is not None:
        kind = cls.view_kind
    out._view = _ViewInfo(base, chain, vc.value, kind)
    if _grad_enabled and not base.requires_grad:
        views = vc.views
        if views is None:
            views = vc.views = []
        elif len(views) > 64 and len(views) & (len(views) - 1) == 0:  # prune dead references now and then
            views[:] = [r for r in views if r() is not None]
        views.append(weakref.ref(out))


def replay_view(base, chain):
    """Apply a view's chain of view ops to ``base`` (a Tensor, recorded; or a raw array)."""
    if isinstance(base, Tensor):
        for cls, params in chain:
            base = cls.apply(base, **params)
        return base
    for cls, params in chain:
        base = cls().forward(base, **params)
    return base


def regenerate_view(t: Tensor) -> None:
    """Rebuild a view's ``grad_fn`` from its base after the base's memory was written in place."""
    v = t._view
    with enable_grad():
        fresh = replay_view(v.base, v.chain)
    t.grad_fn, t.requires_grad = fresh.grad_fn, fresh.requires_grad
    v.gen = t._vc.value


def _plans(spec):
    """For a fixed spec over at most two inputs, what apply saves under each mask of inputs needing grad
    (bit 0: input 0, bit 1: input 1): ``(slice of the inputs or None, keeps the output)``. None when the
    general path (_save) must decide: a spec that depends on parameters, or saved inputs not contiguous."""
    if spec is None or callable(spec) or len(spec) > 2:
        return None
    plans = [None]
    for mask in (1, 2, 3):
        which = set(spec[0]) if len(spec) == 1 else \
            set().union(*[deps for k, deps in enumerate(spec) if mask >> k & 1])
        picks = sorted(i for i in which if i != OUT)
        if picks and picks != list(range(picks[0], picks[-1] + 1)):
            return None
        plans.append((slice(picks[0], picks[-1] + 1) if picks else None, OUT in which))
    return tuple(plans)


class Function:
    """A differentiable op and, once applied with grad enabled, its node in the graph.

    Subclasses implement ``forward(self, *arrays, **params) -> array`` and
    ``backward(self, grad) -> array | tuple`` (one gradient per tensor input, ``None`` for
    inputs that need none; ``self.next[i] is None`` tells that input ``i`` needs no gradient).

    An op with several outputs sets ``multi_output = True``: its ``forward`` returns a tuple of
    arrays, ``apply`` returns one Tensor per output, and ``backward(self, *grads)`` receives one
    gradient per output — ``None`` for an output that received none. Its inputs may include ``None``
    (an absent optional tensor, e.g. no bias), which gets no gradient. ``OUT`` in its ``saved`` spec
    means its first output.

    Two class attributes tell the engine what torch knows about the op:

    - ``saved``: the tensors torch saves for the backward, whose in-place modification before the
      backward is an error (checked with version counters). ``None`` (the safe default) means every
      input and the output; ``()`` nothing; otherwise one tuple per input listing what that input's
      gradient needs (input indices, ``OUT`` for the output). An op must never keep an input's
      array that this does not declare: it keeps a private copy or something derived instead.
    - ``view``: ``True`` when the output always shares the input's memory (transpose, expand),
      ``"maybe"`` when it does only sometimes (reshape, indexing); ``view_kind = "multi"`` marks
      the outputs of ops that return several views (split), which may not be modified in place.
    """

    next: tuple = ()
    hooks: list | None = None  # gradient hooks of the output tensor (non-leaf)
    freed = False
    saved: tuple | None = None
    view: bool | str = False
    view_kind: str | None = None
    # What the node saved, for the check at backward (see _save): the saved inputs (Tensors), the output's
    # counter, and the global write count when they were saved.
    saved_inputs: tuple | None = None
    saved_out = None
    epoch = 0
    _saved_cache: dict = {}
    _plans: tuple | None = None
    multi_output = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._saved_cache = {}  # mask of inputs needing grad -> indices saved, per op
        cls._plans = _plans(cls.saved)

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        if cls.multi_output:
            return _apply_multi(cls, inputs, params)
        fn = cls()
        out = fn.forward(*[t.array for t in inputs], **params)
        if _grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    fn.next = tuple([_edge(t) for t in inputs])
                    result = Tensor._make(out, fn)
                    if cls.saved != ():
                        plans = cls._plans
                        if plans is None or _watch[0] is not None or len(inputs) > 3:
                            _save(fn, cls, inputs, result, params)
                        else:  # the common op: what it saves, by which of its first two inputs need grad
                            nxt = fn.next
                            sl, keeps_out = plans[1 if len(nxt) == 1 else
                                                  (nxt[0] is not None) | ((nxt[1] is not None) << 1)]
                            if sl is not None:
                                fn.saved_inputs = inputs[sl]
                            if keeps_out:
                                fn.saved_out = result._vc = _VersionCounter()
                            fn.epoch = _epoch
                    if cls.view:
                        _as_view(result, inputs[0], cls, params)
                    return result
        result = Tensor._make(out, None)
        if cls.view:
            _as_view(result, inputs[0], cls, params)
        return result

    def release(self) -> None:
        """Drop saved arrays and edges once backward has passed (unless retain_graph)."""
        self.__dict__.clear()
        self.freed = True

    def name(self) -> str:
        return f"{type(self).__name__}Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"


# An in-place op that needs the old value of the tensor it overwrites sets this to that tensor's
# counter; a node saving a tensor with that counter sets ``hit`` (see ops/inplace.py).
_watch = [None, False]


def _which_saved(cls, inputs, nxt, params) -> tuple:
    """The indices (``OUT`` for the output) of the tensors ``cls`` saves, given which inputs need grad."""
    spec = cls.saved
    if callable(spec):  # a spec that depends on the op's parameters
        spec = spec(params)
    if spec is None:
        return (*range(len(inputs)), OUT)
    if len(spec) == 1:
        return spec[0]
    which = set()
    for deps, n in zip(spec, nxt):
        if n is not None:
            which.update(deps)
    return tuple(which)


class OutputSlot:
    """The graph node of output ``k`` of a multi-output op: it hands the gradient it receives to its
    op, which runs once all its outputs' gradients are in (``None`` for those that got none)."""

    __slots__ = ("parent", "k", "next", "hooks", "__weakref__")
    freed = False

    def __init__(self, parent, k: int):
        self.parent, self.k, self.next, self.hooks = parent, k, (parent,), None

    def name(self) -> str:
        return self.parent.name()

    def __repr__(self) -> str:
        return repr(self.parent)


def _apply_multi(cls, inputs, params):
    """``apply`` for an op with several outputs (and optional ``None`` inputs)."""
    fn = cls()
    outs = fn.forward(*[None if t is None else t.array for t in inputs], **params)
    if not _grad_enabled or not any(t is not None and t.requires_grad for t in inputs):
        return tuple(Tensor._make(o, None) for o in outs)
    fn.next = tuple([None if t is None else _edge(t) for t in inputs])
    fn.n_outputs = len(outs)
    results = tuple(Tensor._make(o, OutputSlot(fn, k)) for k, o in enumerate(outs))
    if cls.saved != ():
        _save(fn, cls, inputs, results, params)
    return results


def _save(fn, cls, inputs, out, params) -> None:
    """Keep references to what ``fn`` saved: the input Tensors themselves (their counters are looked up
    only if something was written in place since), and a fresh counter for the output (holding the output
    itself would make a reference cycle with its node)."""
    # Which tensors are saved depends only on which inputs need grad (for a fixed spec): cached per class
    # under that mask, so the common op pays a dict lookup.
    nxt = fn.next
    n = len(nxt)
    key = 1 if n == 1 else (nxt[0] is not None) | ((nxt[1] is not None) << 1) if n == 2 else \
        sum(1 << k for k, e in enumerate(nxt) if e is not None)
    plan = cls._saved_cache.get(key)
    if plan is None:
        which = _which_saved(cls, inputs, nxt, params)
        plan = (tuple(i for i in which if i != OUT), OUT in which)
        if not callable(cls.saved):
            cls._saved_cache[key] = plan
    picks, keeps_out = plan
    if picks:
        saved = fn.saved_inputs = tuple([inputs[i] for i in picks if inputs[i] is not None])
        if _watch[0] is not None:
            for t in saved:
                if t._vc is _watch[0]:
                    _watch[1] = True
    if keeps_out:  # the output is fresh: no counter yet (OUT is output 0 of a multi-output op)
        fn.saved_out = (out[0] if type(out) is tuple else out)._vc = _VersionCounter()
    fn.epoch = _epoch


def track_saved(out: Tensor, *tensors) -> Tensor:
    """Record that ``out``'s node also keeps ``tensors`` (arguments it took as arrays: class weights,
    running statistics, index tensors), so an in-place change to them before the backward is refused as
    torch refuses it. Returns ``out``."""
    node = out.grad_fn
    extra = tuple(t for t in tensors if t is not None)
    if node is not None and extra:
        if node.saved_inputs is None and node.saved_out is None:
            node.epoch = _epoch  # nothing saved before: start counting now
        node.saved_inputs = (node.saved_inputs or ()) + extra
    return out


def _written_since(vc, epoch: int) -> int:
    """How many times ``vc``'s tensor was written after global write count ``epoch``."""
    if vc is None or vc.epoch <= epoch:
        return 0
    later = sum(e > epoch for e in vc.recent)
    return later if later < len(vc.recent) or len(vc.recent) < 8 else -1


def _version_error(node) -> RuntimeError | None:
    """torch's error if a tensor ``node`` saved was written in place after it was saved, else None."""
    holders = [(t._vc, f"its input {i}") for i, t in enumerate(node.saved_inputs or ())]
    if node.saved_out is not None:
        holders.append((node.saved_out, "its output"))
    for vc, what in holders:
        since = _written_since(vc, node.epoch)
        if since:
            expected = f"version {vc.value - since}" if since > 0 else "an earlier version"
            return RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an inplace "
                f"operation: {what}, saved by {node.name()}, is at version {vc.value}; expected {expected} "
                f"instead. Hint: the in-place op came after the forward pass that saved it; use an out-of-place "
                f"op (or .clone()) there."
            )
    return None


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
        if grad.shape != t.array.shape:
            raise RuntimeError(
                f"backward: gradient of shape {grad.shape} reached a leaf of shape {t.shape}"
            )
        if grad.dtype != t.array.dtype:
            grad = grad.astype(t.array.dtype)
        if t.grad is None:
            # Copy: the same array may have been handed to several inputs (x + y).
            t.grad = Tensor._make(grad.copy(), None)
        else:
            t.grad.array += grad

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad>"


def _edge(t: Tensor):
    """The node that receives ``t``'s gradient (its producer, or its leaf accumulator)."""
    if not t.requires_grad:
        return None
    v = t._view
    if v is not None and v.gen != t._vc.value and v.kind != "no_grad":
        regenerate_view(t)  # the base was written in place since this view's node was made
    if t.grad_fn is not None:
        return t.grad_fn
    acc = t._accum
    if acc is None:
        acc = t._accum = AccumulateGrad(t)
    return acc


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
    if create_graph:
        raise NotImplementedError("backward(create_graph=True): deepgrad does not record the backward pass yet")
    grads = _root_grads(tensors, grad_tensors)
    targets = _targets(inputs) if inputs is not None and _capture is None else None
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
            parent = node.parent
            slots = grads.get(parent)
            if slots is None:
                slots = grads[parent] = [None] * parent.n_outputs
            slots[node.k] = g if slots[node.k] is None else slots[node.k] + g
            continue
        if node.freed:
            raise _freed_error(node)
        if node.epoch != _epoch and (node.saved_inputs is not None or node.saved_out is not None):
            error = _version_error(node)  # something was written in place since this node was made
            if error is not None:
                raise error
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


def _root_grads(tensors, grad_tensors) -> dict:
    """The graph nodes to start from, each with the gradient arriving there."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    grad_tensors = list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"backward: got {len(grad_tensors)} gradients for {len(tensors)} tensors")
    grads = {}
    for k, (t, g) in enumerate(zip(tensors, grad_tensors)):
        g = _root_grad(t, g, k)
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

    >>> x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> grad((x ** 2).sum(), x)
    (tensor([2., 4., 6.]),)
    """
    if create_graph:
        raise NotImplementedError("grad(create_graph=True): deepgrad does not record the backward pass yet")
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
    backward(outputs, grad_outputs, retain_graph=retain, _capture=capture)
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
        # A copy: the captured array may be shared with other gradients or the upstream.
        result.append(Tensor._make(g.astype(t.array.dtype, copy=True), None))
    return tuple(result)


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
            t.array = np.ascontiguousarray(t.array)
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
