"""The Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it."""

from __future__ import annotations

import weakref as _weakref
from collections import namedtuple

import numpy as np

from . import backend
from .backend import CPU, Device, array_module, device_of

min_max_result = namedtuple("min_max_result", ["values", "indices"])


class Tensor:
    """An n-dimensional array that can record the ops applied to it for backpropagation.

    >>> x = tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_accum", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # NumPy defers `ndarray op Tensor` to our reflected operators
    __array_priority__ = 1000

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        xp = np if device is None else backend.module_for_device(Device(device))
        if dtype is not None:
            data = xp.asarray(data, dtype=dtype)
        elif isinstance(data, (np.ndarray, np.generic)) or array_module(data) is not np or hasattr(data, "__array__"):
            data = xp.asarray(data)  # array-likes (a torch tensor, ...) keep their own dtype
        else:  # Python data: floats become the default dtype, as in torch
            data = np.asarray(data)
            if data.dtype == np.float64:
                data = data.astype(backend.get_default_dtype())
            data = xp.asarray(data)
        self.data = data
        self.grad = None
        self.grad_fn = None
        self._accum = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, grad_fn) -> Tensor:
        """Fast internal constructor: wrap an op's output array (no copies, no checks)."""
        t = object.__new__(cls)
        if isinstance(data, np.generic):  # NumPy reductions return scalars; keep 0-d arrays
            data = np.asarray(data)
        t.data = data
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = grad_fn is not None
        t._accum = None
        t._retains_grad = False
        return t

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> Device:
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def T(self) -> Tensor:
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self) -> Tensor:
        return self.transpose(-2, -1)

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def element_size(self) -> int:
        return self.data.itemsize

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    # ------------------------------------------------------------------ conversion
    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"item(): a Tensor with {self.data.size} elements cannot be converted to a Python scalar"
            )
        return self.data.item()

    def tolist(self):
        return self._host().tolist()

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if array_module(self.data) is not np:
            raise TypeError("can't convert cuda tensor to numpy: use tensor.cpu() to copy it to host memory first")
        return self.data

    def _host(self) -> np.ndarray:
        return self.data if array_module(self.data) is np else self.data.get()

    def __array__(self, dtype=None, copy=None):
        if array_module(self.data) is not np:
            raise TypeError("can't convert cuda tensor to numpy: use tensor.cpu() to copy it to host memory first")
        data = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return data.copy() if copy and data is self.data else data  # np.array(t) must not alias t

    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.data.size} values is ambiguous "
                f"(use .any() or .all())"
            )
        return bool(self.data.item())

    __hash__ = object.__hash__

    def to(self, *args, **kwargs) -> Tensor:
        """Move and/or cast: ``to("cuda")``, ``to(float64)``, ``to("cpu", float64)``."""
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, (str, Device)):
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            out = _elementwise.cast(out, np.dtype(dtype))
        if device is not None and Device(device) != out.device:
            out = _elementwise.ToDevice.apply(out, device=Device(device))
        return out

    def cpu(self) -> Tensor:
        return self.to(CPU)

    def cuda(self, device: int | None = None) -> Tensor:
        return self.to(Device("cuda", device))

    def type(self, dtype) -> Tensor:
        return self.to(dtype)

    def float(self) -> Tensor:
        return self.to(backend.float32)

    def double(self) -> Tensor:
        return self.to(backend.float64)

    def half(self) -> Tensor:
        return self.to(backend.float16)

    def long(self) -> Tensor:
        return self.to(backend.int64)

    def int(self) -> Tensor:
        return self.to(backend.int32)

    def bool(self) -> Tensor:
        return self.to(backend.bool_)

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind not in "fc":
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients (got {self.data.dtype})"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; use detach() for a non-leaf"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """A tensor sharing this data, cut from the graph."""
        return Tensor._make(self.data, None)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        return _elementwise.Clone.apply(self)

    def contiguous(self) -> Tensor:
        return self

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is required when ``self`` is not a scalar. The graph is freed afterwards
        unless ``retain_graph=True``.
        """
        _autograd.backward(self, gradient, retain_graph=retain_graph)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new grad."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node = _autograd._edge(self)
        if node.hooks is None:
            node.hooks = []
        if node.hooks and getattr(node.hooks[-1], "retains_grad", False):
            node.hooks.insert(len(node.hooks) - 1, hook)  # torch: .grad sees what every hook returned
        else:
            node.hooks.append(hook)
        return _autograd.RemovableHandle(node.hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        ref = _weakref.ref(self)

        def store(grad):
            t = ref()
            if t is not None:
                g = grad.data
                t.grad = Tensor._make(g.copy(), None) if t.grad is None else Tensor._make(t.grad.data + g, None)

        store.retains_grad = True
        self.register_hook(store)

    def _rebind(self, out: Tensor) -> None:
        """Become ``out``, the result of an in-place op recorded out of place."""
        old = self.grad_fn
        self.data, self.grad_fn, self.requires_grad = out.data, out.grad_fn, True
        if self._retains_grad:  # torch: retain_grad follows the tensor to its new version
            if old is not None and old.hooks:
                old.hooks[:] = [h for h in old.hooks if not getattr(h, "retains_grad", False)]
            self._retains_grad = False
            self.retain_grad()

    # ------------------------------------------------------------------ repr
    def __repr__(self) -> str:
        data = self._host()
        formatter = None
        if data.dtype.kind == "f":
            finite = data[np.isfinite(data)]
            integral = bool(np.all(finite == np.round(finite)))
            nonzero = np.abs(finite[finite != 0]).astype(np.float64)
            big, small = (nonzero.max(), nonzero.min()) if nonzero.size else (0.0, 0.0)
            # torch switches to scientific notation for a wide or extreme range of magnitudes
            if big > 1e8 or (not integral and (big / small > 1000 or small < 1e-4)):
                width = max(len(f"{v:.4e}") for v in data.reshape(-1).tolist())
                formatter = {"float_kind": lambda v: f"{v:.4e}".rjust(width)}
        else:
            integral = True
        body = np.array2string(  # torch's look: 4 decimals unless every value is integral
            data, separator=", ", prefix="tensor(", precision=4, threshold=1000, edgeitems=3,
            floatmode="maxprec" if integral else "fixed", formatter=formatter,
        ).replace(", ..., ", ",  ..., ")  # torch's spacing around the summary ellipsis
        extras = []
        if self.device.type == "cuda":
            extras.append(f"device='{self.device}'")
        if data.size == 0 and data.ndim != 1:
            extras.append(f"size={tuple(data.shape)}")
        default_kinds = {"f": backend.get_default_dtype(), "i": backend.int64, "b": backend.bool_}
        if default_kinds.get(data.dtype.kind) != data.dtype:
            extras.append(f"dtype=deepgrad.{data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __str__ = __repr__


# The ops build Tensors, so they are imported after the class exists; their public functions
# become the operators and methods below.
from . import autograd as _autograd  # noqa: E402
from . import functional as _F  # noqa: E402
from .ops import elementwise as _elementwise  # noqa: E402
from .ops import shape as _shape  # noqa: E402


def _compare(ufunc):
    def op(self, other):
        if isinstance(other, Tensor):
            if type(other.data) is not type(self.data):
                raise _elementwise._device_error(ufunc.__name__, self, other)
            other = other.data
        elif not isinstance(other, (int, float, bool, np.generic, np.ndarray)):
            return NotImplemented
        return Tensor._make(ufunc(self.data, other), None)

    return op


def _no_grad_binary(ufunc):
    """Integer-valued results (floor division, modulo, logic) carry no gradient."""

    def op(self, other):
        return Tensor._make(ufunc(self.data, other.data if isinstance(other, Tensor) else other), None)

    return op


def _inplace(outofplace, ufunc=None, name=None):
    """An in-place method: writes into ``data`` when no graph is involved; otherwise records
    the out-of-place op and rebinds this tensor to its result (earlier nodes keep the old
    array, so their saved values stay valid)."""

    def op(self, other, **kw):
        if _autograd._grad_enabled and (self.requires_grad or getattr(other, "requires_grad", False)):
            if self.requires_grad and self.grad_fn is None:
                raise RuntimeError(
                    "a leaf Variable that requires grad is being used in an in-place operation "
                    "(wrap parameter updates in deepgrad.no_grad())"
                )
            out = outofplace(self, other, **kw)
            if out.data.shape != self.data.shape:  # an in-place op cannot grow its tensor
                raise _inplace_shape_error(op, self, out)
            if out.data.dtype != self.data.dtype:
                out = _elementwise.cast(out, self.data.dtype)
            self._rebind(out)
            return self
        if "alpha" in kw:
            other = other * kw["alpha"]
        try:
            if ufunc is None:
                self.data[...] = outofplace(self.detach(), other).data
            else:
                ufunc(self.data, other.data if isinstance(other, Tensor) else other, out=self.data)
        except ValueError:
            raise _inplace_shape_error(op, self, outofplace(self.detach(), other)) from None
        return self

    op.__name__ = f"{name or outofplace.__name__}_"

    return op


def _inplace_shape_error(op, self, out) -> RuntimeError:
    return RuntimeError(
        f"{op.__name__}: output with shape {tuple(self.shape)} doesn't match the broadcast shape {tuple(out.shape)}"
    )


def _fill_(self, value):
    _shape.setitem(self, Ellipsis, value)
    return self


def _zero_(self):
    return _fill_(self, 0)


def _copy_(self, src):
    if not isinstance(src, Tensor):
        src = Tensor(src)
    if type(src.data) is not type(self.data):
        src = src.to(self.device)
    _shape.setitem(self, Ellipsis, src.to(self.dtype) if src.dtype != self.dtype else src)
    return self


def _random_(kind):
    def op(self, a=0.0, b=1.0, generator=None):
        from . import creation

        with _autograd.no_grad():
            sample = (creation.rand if kind == "uniform" else creation.randn)(
                self.shape, dtype=self.dtype, device=self.device, generator=generator
            )
            self.data[...] = (sample.data * (b - a) + a) if kind == "uniform" else (sample.data * b + a)
        return self

    op.__name__ = f"{kind}_"
    return op


def _clamp_(self, min=None, max=None):
    return _inplace(lambda t, _: _F.clamp(t, min, max), name="clamp")(self, None)


_methods = dict(
    # arithmetic
    __add__=_F.add, __radd__=_F.add, add=_F.add,
    __sub__=_F.sub, __rsub__=_elementwise.rsub, sub=_F.sub,
    __mul__=_F.mul, __rmul__=_F.mul, mul=_F.mul,
    __truediv__=_F.div, __rtruediv__=_elementwise.rdiv, div=_F.div,
    __pow__=_F.pow, __rpow__=_elementwise.rpow, pow=_F.pow,
    __matmul__=_F.matmul, __rmatmul__=lambda a, b: _F.matmul(b, a), matmul=_F.matmul,
    mm=_F.matmul, bmm=_F.matmul,
    __neg__=_F.neg, neg=_F.neg, __abs__=_F.abs, abs=_F.abs, __pos__=lambda self: self,
    __floordiv__=_no_grad_binary(np.floor_divide), __mod__=_no_grad_binary(np.mod),
    __and__=_no_grad_binary(np.bitwise_and), __or__=_no_grad_binary(np.bitwise_or),
    __xor__=_no_grad_binary(np.bitwise_xor),
    __rfloordiv__=_no_grad_binary(lambda a, b: np.floor_divide(b, a)),
    __rmod__=_no_grad_binary(lambda a, b: np.mod(b, a)),
    __rand__=_no_grad_binary(np.bitwise_and), __ror__=_no_grad_binary(np.bitwise_or),
    __rxor__=_no_grad_binary(np.bitwise_xor),
    __invert__=lambda self: Tensor._make(~self.data, None),
    # comparisons (no gradient)
    __eq__=_compare(np.equal), __ne__=_compare(np.not_equal), __lt__=_compare(np.less),
    __le__=_compare(np.less_equal), __gt__=_compare(np.greater), __ge__=_compare(np.greater_equal),
    eq=_compare(np.equal), ne=_compare(np.not_equal), lt=_compare(np.less), le=_compare(np.less_equal),
    gt=_compare(np.greater), ge=_compare(np.greater_equal),
    isnan=lambda self: Tensor._make(np.isnan(self.data), None),
    isinf=lambda self: Tensor._make(np.isinf(self.data), None),
    isfinite=lambda self: Tensor._make(np.isfinite(self.data), None),
    sign=lambda self: Tensor._make(np.sign(self.data), None),
    # maths and activations
    exp=_F.exp, log=_F.log, log1p=_F.log1p, sqrt=_F.sqrt, sin=_F.sin, cos=_F.cos, tanh=_F.tanh,
    sigmoid=_F.sigmoid, relu=_F.relu, square=_F.square, clamp=_F.clamp, clip=_F.clip,
    maximum=_F.maximum, minimum=_F.minimum, softmax=_F.softmax, log_softmax=_F.log_softmax,
    masked_fill=_F.masked_fill, norm=_F.norm,
    where=lambda self, condition, other: _F.where(condition, self, other),
    # reductions
    sum=_F.sum, mean=_F.mean, var=_F.var, std=_F.std, max=_F.max, min=_F.min, amax=_F.amax,
    amin=_F.amin, argmax=_F.argmax, argmin=_F.argmin, logsumexp=_F.logsumexp, gather=_F.gather,
    all=lambda self, dim=None, keepdim=False: _reduce_mod.all(self, dim, keepdim),
    any=lambda self, dim=None, keepdim=False: _reduce_mod.any(self, dim, keepdim),
    # shapes
    reshape=_F.reshape, view=_F.reshape, flatten=_F.flatten, squeeze=_F.squeeze,
    unsqueeze=_F.unsqueeze, permute=_F.permute, transpose=_F.transpose, expand=_F.expand,
    repeat=_F.repeat, split=_F.split, chunk=_F.chunk, unbind=_F.unbind,
    t=lambda self: _F.transpose(self, 0, 1) if self.ndim == 2 else self,
    view_as=lambda self, other: _F.reshape(self, other.shape),
    reshape_as=lambda self, other: _F.reshape(self, other.shape),
    expand_as=lambda self, other: _F.expand(self, other.shape),
    __getitem__=_shape.getitem, __setitem__=_shape.setitem,
    # in place
    __iadd__=_inplace(_F.add, np.add), add_=_inplace(_F.add, np.add),
    __isub__=_inplace(_F.sub, np.subtract), sub_=_inplace(_F.sub, np.subtract),
    __imul__=_inplace(_F.mul, np.multiply), mul_=_inplace(_F.mul, np.multiply),
    __itruediv__=_inplace(_F.div, np.divide), div_=_inplace(_F.div, np.divide),
    pow_=_inplace(_F.pow, np.power),
    clamp_=_clamp_,
    fill_=_fill_, zero_=_zero_, copy_=_copy_,
    uniform_=_random_("uniform"), normal_=_random_("normal"),
)
for _name, _fn in _methods.items():
    setattr(Tensor, _name, _fn)

from .ops import reduce as _reduce_mod  # noqa: E402
