"""In-place ops: write into a tensor's memory, bump its version, and keep the graph right.

torch's rules, which deepgrad follows:

- An in-place op writes the tensor's memory, so every view of it (and its base, if it is a view)
  sees the new values, and its version counter goes up by one. A graph node that saved the old
  value then refuses to run backward (see ``Function.saved`` in autograd.py).
- With the graph on, the tensor's ``grad_fn`` becomes the node of the out-of-place op that computed
  the new value. When the tensor is a view, its *base* gets a :class:`CopySlices` node instead: the
  base's old gradient path, with the view's region taken over by the op's node; the view's own node
  is then rebuilt from the new base (``autograd.regenerate_view``).
- In-place ops are refused on a leaf that requires grad, on a view of one, on the outputs of
  split/chunk/unbind, and on views made under no_grad — with torch's messages.

The new value is computed out of place and copied in. When the op needs the old value for its
backward (``x.mul_(w)`` with ``w`` requiring grad), it is computed again from a snapshot, so the
node keeps the value it saw.
"""

from __future__ import annotations

import numpy as np

from .. import autograd
from ..autograd import Function, core, version_counter
from ..backend import array_module
from ..tensor import Tensor
from . import arithmetic
from .elementwise import cast, clamp, device_error, unbroadcast

_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
                "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool", "complex64": "ComplexFloat",
                "complex128": "ComplexDouble"}


def torch_dtype_name(dtype) -> str:
    """torch's short name for a dtype, as its error messages say it (``Float``, ``Long``...)."""
    return _TORCH_NAMES.get(np.dtype(dtype).name, str(dtype))


def check_cast(result_dtype, self_dtype, name: str) -> None:
    """An in-place result may be cast to the tensor's dtype only within its kind or upwards (torch's rule)."""
    order = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
    if order[np.dtype(result_dtype).kind] > order[np.dtype(self_dtype).kind]:
        raise RuntimeError(
            f"{name}: result type {torch_dtype_name(result_dtype)} can't be cast to the desired output type "
            f"{torch_dtype_name(self_dtype)}"
        )


def _overlap_error(name: str) -> RuntimeError:
    return RuntimeError(
        f"{name}: unsupported operation: more than one element of the written-to tensor refers to a single "
        f"memory location. Please clone() the tensor before performing the operation."
    )


def bump(t: Tensor) -> None:
    """Count one in-place write of ``t``'s memory (shared with its views and base)."""
    version_counter(t).bump()


def write(t: Tensor, values, name: str) -> None:
    """Copy ``values`` (an array) into ``t``'s memory and bump its version."""
    try:
        t.array[...] = values
    except ValueError as e:
        if "read-only" in str(e):
            raise _overlap_error(name) from None
        raise RuntimeError(f"{name}: output with shape {tuple(t.shape)} doesn't match the broadcast shape "
                           f"{tuple(np.shape(values))}") from None
    bump(t)


def check_allowed(t: Tensor, name: str) -> None:
    """torch's refusals for an in-place op recorded in the graph."""
    v = t._view
    if v is None:
        if t.requires_grad and t.grad_fn is None:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place operation.")
        return
    if v.kind == "multi":
        raise RuntimeError(
            f"{name}: Output 0 of {t.grad_fn.name() if t.grad_fn else 'a split'} is a view and is being modified "
            f"inplace. This view is the output of a function that returns multiple views. Such functions do not "
            f"allow the output views to be modified inplace. You should replace the inplace operation by an "
            f"out-of-place one."
        )
    if v.kind == "no_grad" and v.base.requires_grad:
        raise RuntimeError(
            f"{name}: A view was created in no_grad mode and is being modified inplace with grad mode enabled. "
            f"Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by "
            f"moving both the view and the inplace either both inside the no_grad block (if you don't want the "
            f"inplace to be tracked) or both outside (if you want the inplace to be tracked)."
        )
    if v.base.requires_grad and v.base.grad_fn is None:
        raise RuntimeError(
            f"{name}: a view of a leaf Variable that requires grad is being used in an in-place operation."
        )


# Called as ``observer(t, out)`` after an in-place op wrote ``out``'s values into ``t`` (``out`` None
# for a raw write such as ``x[i] = v``): the ONNX tracer, which names values by their arrays, must learn
# that ``t``'s array now holds a new value.
observers: list = []


def inplace(t: Tensor, compute, name: str, *args, fast=None) -> Tensor:
    """``t <- compute(t, *args)`` in place; ``fast(array, *args)`` does it on raw arrays when no graph is
    recorded (else the result is computed and copied in)."""
    if core.state.grad_enabled and (t.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args)
                                   or (t._view is not None and t._view.base.requires_grad)):
        return _recorded(t, compute, name, args)
    if fast is not None and not observers:
        try:
            fast(t.array, *args)
        except (TypeError, ValueError) as e:
            raise _fast_error(e, t, compute, args, name) from None
        bump(t)
        return t
    out = _compute_detached(t, compute, args)
    _check_result(t, out, name)
    write(t, out.array, name)
    for observe in observers:
        observe(t, out)
    return t


def _check_result(t: Tensor, out: Tensor, name: str) -> None:
    if out.shape != t.shape and np.broadcast_shapes(out.shape, t.shape) != t.shape:
        raise RuntimeError(f"{name}: output with shape {list(t.shape)} doesn't match the broadcast shape "
                           f"{list(np.broadcast_shapes(out.shape, t.shape))}")
    if out.dtype != t.dtype:
        check_cast(out.dtype, t.dtype, name)


def _fast_error(e: Exception, t: Tensor, compute, args, name: str) -> Exception:
    """The torch error for what NumPy refused in a raw in-place ufunc."""
    if isinstance(e, ValueError) and "read-only" in str(e):
        return _overlap_error(name)
    try:
        out = _compute_detached(t, compute, args)
    except Exception as inner:  # noqa: BLE001 - the out-of-place op's own error says it best
        return inner
    try:
        _check_result(t, out, name)
    except RuntimeError as err:
        return err
    return e


def _compute_detached(t, compute, args):
    with autograd.no_grad():
        return compute(t, *args)


def _recorded(t: Tensor, compute, name: str, args) -> Tensor:
    check_allowed(t, name)
    vc = version_counter(t)
    watch = core._watch
    outer = watch[:]
    watch[0], watch[1] = vc, False
    try:
        out = compute(t, *args)
        if watch[1]:  # its node saved the value we are about to overwrite: give it a private copy
            old = Tensor._make(t.array.copy(), t.grad_fn)
            old.requires_grad = t.requires_grad
            watch[0] = None
            out = compute(old, *args)
    finally:
        watch[:] = outer
    if out is t:
        bump(t)
        return t
    _check_result(t, out, name)
    if out.shape != t.shape:  # the value broadcast up to t's shape: the graph broadcasts too
        out = out.expand(t.shape)
    if out.dtype != t.dtype:
        out = cast(out, t.dtype)
    write(t, out.array, name)
    node = out.grad_fn
    if node is not None and node.saved_out is not None:  # the node's output is now t's memory
        node.saved_out = vc
        node.epoch = core._epoch  # counted from this write on
    if t._view is not None:
        _rebase(t, out)
    else:
        _set_node(t, node)
    for observe in observers:
        observe(t, out)
    return t


def _set_node(t: Tensor, node) -> None:
    old = t.grad_fn
    t.grad_fn, t.requires_grad = node, True
    if t._retains_grad:  # torch: retain_grad follows the tensor to its new version
        if old is not None and old.hooks:
            old.hooks[:] = [h for h in old.hooks if not getattr(h, "retains_grad", False)]
        t._retains_grad = False
        t.retain_grad()


class CopySlices(Function):
    """The node of a base after an in-place op on one of its views: the view's region of the gradient
    goes to the op's node, the rest to the base's earlier history."""

    saved = ()

    def backward(self, g):
        gb = None
        if self.next[0] is not None:
            gb = g.copy()
            autograd.replay_view(gb, self.chain)[...] = 0
        return gb, autograd.replay_view(g, self.chain)


def _rebase(t: Tensor, out: Tensor) -> None:
    v = t._view
    base = v.base
    node = CopySlices()
    node.chain = v.chain
    was = base.requires_grad
    node.next = (autograd._edge(base) if was else None, autograd._edge(out))
    _set_node(base, node)
    if not was and t._vc.views:  # the other views of this base now depend on the graph too
        for ref in t._vc.views:
            w = ref()
            if w is not None and w is not t and w._view is not None and w._view.kind == "default":
                w.requires_grad = True
        t._vc.views = None
    autograd.regenerate_view(t)


# ----------------------------------------------------------------------------- fill, copy, index_put
class Fill(Function):
    """``x.fill_(value)`` out of place: x's old values get a zero gradient (torch), a tensor value the sum."""

    saved = ()

    def forward(self, x, value):
        out = array_module(x).empty_like(x)
        out[...] = value
        return out

    def backward(self, g):
        return array_module(g).zeros_like(g), (g.sum().astype(g.dtype) if self.next[1] is not None else None)


class CopyFrom(Function):
    """``x.copy_(src)`` out of place: x's old values get a zero gradient (torch), src the (summed) rest."""

    saved = ()

    def forward(self, x, src):
        self.src_shape, self.src_dtype = src.shape, src.dtype
        out = array_module(x).empty_like(x)
        out[...] = src
        return out

    def backward(self, g):
        gs = None
        if self.next[1] is not None:
            gs = unbroadcast(g, self.src_shape).astype(self.src_dtype, copy=False)
        return array_module(g).zeros_like(g), gs


class IndexPut(Function):
    """``x[index] = value`` with an advanced index, out of place."""

    saved = ()

    def forward(self, x, value, index):
        out = x.copy()
        out[index] = value
        self.index, self.vshape = index, value.shape
        return out

    def backward(self, g):
        gx = gv = None
        if self.next[0] is not None:
            gx = g.copy()
            gx[self.index] = 0
        if self.next[1] is not None:
            gv = g[self.index]
            if gv.ndim < len(self.vshape):  # the value had extra leading 1s, which assignment drops
                gv = gv.reshape((1,) * (len(self.vshape) - gv.ndim) + gv.shape)
            gv = unbroadcast(gv, self.vshape)
        return gx, gv


# ----------------------------------------------------------------------------- the Tensor's in-place methods
def _binary_inplace(outofplace, ufunc, name: str):
    """``t.OP_(other)``: the raw ufunc writes the memory when no graph is recorded (the common update,
    ``p -= lr * g`` under no_grad: one ufunc, one version bump); otherwise the out-of-place op is
    recorded and its result written in."""

    def fast(array, other, alpha=1):
        if isinstance(other, Tensor):
            other = other.array
        ufunc(array, other if alpha == 1 else other * alpha, out=array)

    def op(t: Tensor, other, **kw) -> Tensor:
        if isinstance(other, Tensor):
            if type(other.array) is not type(t.array):
                raise device_error(name, t, other)
            needs_graph = other.requires_grad or t.requires_grad
        else:
            needs_graph = t.requires_grad
        if not kw and not (core.state.grad_enabled and (needs_graph or t._view is not None)) and not observers:
            try:
                ufunc(t.array, other.array if isinstance(other, Tensor) else other, out=t.array)
            except (TypeError, ValueError) as e:
                raise _fast_error(e, t, outofplace, (other,), name) from None
            version_counter(t).bump()
            return t
        raw = (lambda a, o: fast(a, o, **kw)) if set(kw) <= {"alpha"} else None
        return inplace(t, lambda x, o: outofplace(x, o, **kw), name, other, fast=raw)

    op.__name__ = name
    return op


add_ = _binary_inplace(arithmetic.add, np.add, "add_")
sub_ = _binary_inplace(arithmetic.sub, np.subtract, "sub_")
mul_ = _binary_inplace(arithmetic.mul, np.multiply, "mul_")
div_ = _binary_inplace(arithmetic.div, np.divide, "div_")
pow_ = _binary_inplace(arithmetic.pow, np.power, "pow_")


def unary_(t: Tensor, fn, name: str) -> Tensor:
    """``t.fn_()``: ``fn`` applied in place (``relu_``, ``exp_``...)."""
    return inplace(t, fn, name)


def clamp_(t: Tensor, min=None, max=None) -> Tensor:
    """``t.clamp_(min, max)``."""
    return inplace(t, lambda x: clamp(x, min, max), "clamp_")


def fill_(t: Tensor, value) -> Tensor:
    """Fill with ``value`` (a number or a 0-d tensor)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                               f"dimensions.")
        return inplace(t, lambda x, v: Fill.apply(x, v), "fill_", value)
    value = value.item() if isinstance(value, np.generic) else value
    if not isinstance(value, (int, float, bool)):
        raise TypeError(f"fill_(): argument 'value' must be a Number or a 0-d Tensor, not {type(value).__name__}")

    def scalar(x):
        return Fill.apply(x, Tensor._make(array_module(x.array).asarray(value, dtype=x.array.dtype), None))

    return inplace(t, scalar, "fill_", fast=lambda a: a.fill(value))


def copy_(t: Tensor, src, non_blocking: bool = False) -> Tensor:
    """Copy ``src``'s values into ``t`` (broadcast, cast, moved across devices as needed)."""
    if not isinstance(src, Tensor):
        src = Tensor(src)
    if type(src.array) is not type(t.array):
        src = src.to(t.device)
    try:
        shape = np.broadcast_shapes(src.shape, t.shape)
    except ValueError:
        shape = None
    if shape != tuple(t.shape):
        raise RuntimeError(f"copy_: the size of tensor a ({tuple(t.shape)}) must match the size of tensor b "
                           f"({tuple(src.shape)}) (src must broadcast to self)")

    def fast(array, s):
        array[...] = s.array

    return inplace(t, lambda x, s: CopyFrom.apply(x, s), "copy_", src, fast=fast)


def random_(t: Tensor, kind: str, a: float, b: float, generator=None) -> Tensor:
    """``uniform_(a, b)`` / ``normal_(mean=a, std=b)``: fresh draws written into ``t``."""
    from .. import creation

    if t.requires_grad and t.grad_fn is None and core.state.grad_enabled:
        raise RuntimeError(f"{kind}_: a leaf Variable that requires grad is being used in an in-place operation.")
    with autograd.no_grad():
        draw = creation.rand if kind == "uniform" else creation.randn
        sample = draw(t.shape, dtype=t.dtype, device=t.device, generator=generator)
        write(t, (sample.array * (b - a) + a) if kind == "uniform" else (sample.array * b + a), f"{kind}_")
    return t
