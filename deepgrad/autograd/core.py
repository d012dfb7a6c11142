"""The graph itself: grad mode's flag, version counters, :class:`Function` (an op and its node),
multi-output ops, what each node saves, and the leaf accumulators.

The graph is recorded while an op runs (define-by-run). Each differentiable op is a
:class:`Function` whose instance *is* the graph node: ``forward`` computes on raw arrays and
keeps what ``backward`` needs; ``backward`` maps the output gradient to input gradients.
Edges point at the producer nodes of the inputs (``next``), not at tensors, so an in-place op
that gives a tensor a new node never reroutes gradients of ops recorded before it.
"""

from __future__ import annotations

import threading
import weakref

from ..tensor import Tensor
from . import views


class _ThreadState(threading.local):
    """Grad mode is per thread, as in torch: a ``no_grad`` block in one thread (a data-loading worker,
    a judge grading in the background) never switches recording off in another, and a new thread
    starts with recording on."""

    def __init__(self):  # run once per thread; an instance attribute is found faster than a class default
        self.grad_enabled = True
        self.inference = False  # inside inference_mode(): no graph, and fused kernels keep no saved buffers


state = _ThreadState()  # switched by grad_mode's context managers; read by every op


def is_grad_enabled() -> bool:
    """True when ops record the graph (in this thread)."""
    return state.grad_enabled


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
    recent = None  # a list, made on the first write
    views = None

    def bump(self) -> None:
        global _epoch
        _epoch += 1
        self.written(_epoch)

    def written(self, epoch: int) -> None:
        """Count a write made at global write count ``epoch``."""
        self.value += 1
        self.epoch = epoch
        recent = self.recent
        if recent is None:
            self.recent = [epoch]
        else:
            recent.append(epoch)
            if len(recent) > 16:
                del recent[:8]


def bump_all(tensors) -> None:
    """Count one in-place write to each of ``tensors`` (an optimizer step writing its parameters): one
    :meth:`_VersionCounter.bump` each, as one write event."""
    global _epoch
    _epoch += 1
    epoch = _epoch
    for t in tensors:
        vc = t._vc
        if vc is None:
            vc = t._vc = _VersionCounter()
        vc.written(epoch)


def version_counter(t: Tensor) -> _VersionCounter:
    """``t``'s version counter, created on first need (most tensors never need one)."""
    vc = t._vc
    if vc is None:
        vc = t._vc = _VersionCounter()
    return vc


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _plans(spec):
    """For a fixed spec over at most three inputs, what apply saves under each mask of inputs needing grad
    (bit k: input k): ``(slice of the inputs or None, keeps the output)``. None when the general path
    (_save) must decide: a spec that depends on parameters, or saved inputs that are not contiguous."""
    if spec is None or callable(spec) or len(spec) > 3:
        return None
    plans = [None]
    for mask in range(1, 8):
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
        cls._saves = cls.saved != ()

    @classmethod
    def apply(cls, *inputs: Tensor, **params) -> Tensor:
        if cls.multi_output:  # (one entry point: the ONNX and jit tracers wrap Function.apply)
            return _apply_multi(cls, inputs, params)
        fn = cls()
        out = fn.forward(*[t.array for t in inputs], **params)
        if state.grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    fn.next = tuple([_edge(t) for t in inputs])
                    result = Tensor._make(out, fn)
                    if cls._saves:
                        plans = cls._plans
                        if plans is None or _watch[0] is not None or len(inputs) > 3:
                            _save(fn, cls, inputs, result, params)
                        else:  # the common op: what it saves, by which of its (up to 3) inputs need grad
                            nxt = fn.next
                            n = len(nxt)
                            sl, keeps_out = plans[1 if n == 1 else (nxt[0] is not None) | ((nxt[1] is not None) << 1)
                                                  | ((n == 3 and nxt[2] is not None) << 2)]
                            if sl is not None:
                                fn.saved_inputs = inputs[sl]
                            if keeps_out:
                                fn.saved_out = result._vc = _VersionCounter()
                            fn.epoch = _epoch
                    if cls.view:
                        views.as_view(result, inputs[0], cls, params)
                    return result
        result = Tensor._make(out, None)
        if cls.view:
            views.as_view(result, inputs[0], cls, params)
        return result

    # ------------------------------------------------------------------ for a differentiable backward
    # ``backward_graph(self, *grads)`` (optional) is ``backward`` written with deepgrad's ops on Tensors,
    # run instead of it when the backward is recorded (create_graph=True: see higher.py). It reads the
    # tensors it saved with these two:
    def saved_input(self, i: int) -> Tensor:
        """Input ``i`` as the graph tensor it was (the op must have saved it: see ``saved``)."""
        picks = self.__dict__.get("saved_picks")
        if picks is None:
            nxt = self.next
            key = 1 if len(nxt) == 1 else (nxt[0] is not None) | ((nxt[1] is not None) << 1) | \
                ((len(nxt) == 3 and nxt[2] is not None) << 2)
            sl = type(self)._plans[key][0]
            picks = range(sl.start, sl.stop) if sl is not None else ()
        for k, j in enumerate(picks):
            if j == i:
                return self.saved_inputs[k]
        raise RuntimeError(f"{self.name()}: its differentiable backward needs input {i}, which it does not save")

    def saved_output(self, array) -> Tensor:
        """This node's output value as a tensor whose ``grad_fn`` is this node (how torch unpacks a saved
        output: differentiating through it runs this node again)."""
        return Tensor._make(array, self)

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
    if not state.grad_enabled or not any(t is not None and t.requires_grad for t in inputs):
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
    if callable(cls.saved):  # the spec depends on the op's parameters: cached under the spec it gives
        key = (key, cls.saved(params))
    plan = cls._saved_cache.get(key)
    if plan is None:
        which = _which_saved(cls, inputs, nxt, params)
        plan = cls._saved_cache[key] = (tuple(i for i in which if i != OUT), OUT in which)
    picks, keeps_out = plan
    if picks:
        fn.saved_picks = tuple(i for i in picks if inputs[i] is not None)
        saved = fn.saved_inputs = tuple([inputs[i] for i in fn.saved_picks])
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
    recent = vc.recent or ()
    later = sum(e > epoch for e in recent)
    return later if later < len(recent) or len(recent) < 8 else -1


def park_output_grad(grads: dict, slot, g) -> None:
    """Backward walk: keep the gradient reaching one output of a multi-output op (``slot``) in ``grads`` under
    its op, which runs once with all of them."""
    parent = slot.parent
    slots = grads.get(parent)
    if slots is None:
        slots = grads[parent] = [None] * parent.n_outputs
    slots[slot.k] = g if slots[slot.k] is None else slots[slot.k] + g


def check_saved_versions(node) -> None:
    """Backward walk, when something was written in place since ``node`` was made: torch's error if it was
    a tensor ``node`` saved."""
    if node.saved_inputs is not None or node.saved_out is not None:
        error = _version_error(node)
        if error is not None:
            raise error


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
        views.regenerate_view(t)  # the base was written in place since this view's node was made
    if t.grad_fn is not None:
        return t.grad_fn
    acc = t._accum
    if acc is None:
        acc = t._accum = AccumulateGrad(t)
    return acc
