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

    # ``array`` is the raw NumPy/CuPy array (torch's ``.data`` is a Tensor; see the property below).
    # ``_vc`` is the version counter shared with views (made on first need), ``_view`` what makes this
    # tensor a view of another (autograd._ViewInfo), None for a tensor that owns its memory.
    __slots__ = ("array", "grad", "requires_grad", "grad_fn", "_accum", "_retains_grad", "_vc", "_view",
                 "__weakref__")
    __array_ufunc__ = None  # NumPy defers `ndarray op Tensor` to our reflected operators
    __array_priority__ = 1000

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.array
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
        self.array = data
        self.grad = None
        self.grad_fn = None
        self._accum = None
        self._retains_grad = False
        self._vc = None
        self._view = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, grad_fn) -> Tensor:
        """Fast internal constructor: wrap an op's output array (no copies, no checks)."""
        t = object.__new__(cls)
        if isinstance(data, np.generic):  # NumPy reductions return scalars; keep 0-d arrays
            data = np.asarray(data)
        t.array = data
        t.grad = None
        t.grad_fn = grad_fn
        t.requires_grad = grad_fn is not None
        t._accum = None
        t._retains_grad = False
        t._vc = None
        t._view = None
        return t

    # ------------------------------------------------------------------ properties
    @property
    def data(self) -> Tensor:
        """torch's ``.data``: this tensor's memory as a new tensor cut from the graph, with a version
        counter of its own — writes through it (``p.data.mul_(0.9)``) change this tensor and are hidden
        from autograd. ``t.array`` is the raw NumPy/CuPy array.

        >>> w = tensor([1.0, 2.0], requires_grad=True)
        >>> w.data.mul_(2)
        tensor([2., 4.])
        >>> w
        tensor([2., 4.], requires_grad=True)
        """
        return Tensor._make(self.array, None)

    @data.setter
    def data(self, value) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        if type(value.array) is not type(self.array):
            raise RuntimeError(
                f"Attempted to call `variable.set_data(tensor)`, but `variable` and `tensor` have incompatible "
                f"tensor type ({self.device} and {value.device})"
            )
        if self.requires_grad and value.array.dtype.kind not in "fc":
            raise RuntimeError("data set to a tensor that requires gradients must be floating point or complex dtype")
        self.array = value.array
        if self._accum is not None and self.grad_fn is None:
            self._accum = None  # torch resets the leaf's accumulator when the metadata changes

    @property
    def _version(self) -> int:
        """How many in-place ops have written this tensor's memory (shared with its views)."""
        return 0 if self._vc is None else self._vc.value

    @property
    def _base(self) -> Tensor | None:
        """The tensor whose memory this view shares, or None."""
        return None if self._view is None else self._view.base

    def _is_view(self) -> bool:
        return self._view is not None

    @property
    def shape(self) -> tuple:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def device(self) -> Device:
        return device_of(self.array)

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
        return self.array.shape if dim is None else self.array.shape[dim]

    def dim(self) -> int:
        return self.array.ndim

    def numel(self) -> int:
        return int(self.array.size)

    def element_size(self) -> int:
        return self.array.itemsize

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self):
        if self.array.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.array.shape[0]))

    # ------------------------------------------------------------------ conversion
    def item(self):
        if self.array.size != 1:
            raise ValueError(
                f"item(): a Tensor with {self.array.size} elements cannot be converted to a Python scalar"
            )
        return self.array.item()

    def tolist(self):
        return self._host().tolist()

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (shares memory on the CPU)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if array_module(self.array) is not np:
            raise TypeError("can't convert cuda tensor to numpy: use tensor.cpu() to copy it to host memory first")
        return self.array

    def _host(self) -> np.ndarray:
        return self.array if array_module(self.array) is np else self.array.get()

    def __array__(self, dtype=None, copy=None):
        if array_module(self.array) is not np:
            raise TypeError("can't convert cuda tensor to numpy: use tensor.cpu() to copy it to host memory first")
        data = self.array if dtype is None else self.array.astype(dtype, copy=False)
        return data.copy() if copy and data is self.array else data  # np.array(t) must not alias t

    def __dlpack__(self, *args, **kwargs):
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.array.dtype.kind not in "iu" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.array.size} values is ambiguous "
                f"(use .any() or .all())"
            )
        return bool(self.array.item())

    __hash__ = object.__hash__

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its number (``f"{loss:.4f}"``), like torch."""
        if self.array.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

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
        if dtype is not None and np.dtype(dtype) != self.array.dtype:
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
        if requires_grad and self.array.dtype.kind not in "fc":
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients (got {self.array.dtype})"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; use detach() for a non-leaf"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """A tensor sharing this memory and version counter, cut from the graph (in-place ops on it
        are seen by autograd's checks, unlike on ``.data``)."""
        t = Tensor._make(self.array, None)
        t._vc = _autograd.version_counter(self)
        return t

    def detach_(self) -> Tensor:
        if self._view is not None and self._view.kind != "no_grad":
            raise RuntimeError(
                "detach_: Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel "
                "(DDP) for training, and gradient_as_bucket_view is set as True, gradients are views of DDP buckets, "
                "and hence detach_() cannot be called on these gradients. To fix this error, please refer to the "
                "Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution."
            )
        self.grad_fn = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        return _elementwise.Clone.apply(self)

    def contiguous(self, memory_format=None) -> Tensor:
        """This tensor if its memory is row-major (C order), else a row-major copy."""
        if self.array.flags.c_contiguous:
            return self
        return _elementwise.Contiguous.apply(self)

    def is_contiguous(self, memory_format=None) -> bool:
        return bool(self.array.flags.c_contiguous)

    def backward(self, gradient=None, retain_graph: bool | None = None, create_graph: bool = False,
                 inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (only into ``inputs``' when given).

        ``gradient`` is required when ``self`` is not a scalar. The graph is freed afterwards
        unless ``retain_graph=True``.
        """
        _autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

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
                g = grad.array
                t.grad = Tensor._make(g.copy(), None) if t.grad is None else Tensor._make(t.grad.array + g, None)

        store.retains_grad = True
        self.register_hook(store)

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
from .ops import arithmetic as _arith  # noqa: E402
from .ops import elementwise as _elementwise  # noqa: E402
from .ops import inplace as _inplace_mod  # noqa: E402
from .ops import logical as _L  # noqa: E402
from .ops import shape as _shape  # noqa: E402


def _reflected(fn):
    """``other OP self`` for a number ``other`` (Python calls the right operand's ``__rOP__``)."""

    def op(self, other):
        return fn(other, self)

    return op


def _comparison(fn):
    def op(self, other):
        if not isinstance(other, (Tensor, int, float, bool, np.generic)):
            return NotImplemented  # x == None, x == "a": Python's fallback (False / True for !=)
        return fn(self, other)

    return op


def _inplace(outofplace, ufunc=None, name=None):
    """An in-place method (see ops/inplace.py): the raw ufunc writes the memory when no graph is
    recorded; otherwise the out-of-place op is recorded and its result written in."""
    name = f"{name or outofplace.__name__}_"

    def fast(array, other, alpha=1):
        if isinstance(other, Tensor):
            other = other.array
        ufunc(array, other if alpha == 1 else other * alpha, out=array)

    def op(self, other, **kw):
        if isinstance(other, Tensor):
            if type(other.array) is not type(self.array):
                raise _elementwise.device_error(name, self, other)
            needs_graph = other.requires_grad or self.requires_grad
        else:
            needs_graph = self.requires_grad
        if ufunc is not None and not kw and not (_autograd._grad_enabled and (needs_graph or self._view is not None)) \
                and not _inplace_mod.observers:
            # the common update (``p -= lr * g`` under no_grad): one ufunc, one version bump
            try:
                ufunc(self.array, other.array if isinstance(other, Tensor) else other, out=self.array)
            except (TypeError, ValueError) as e:
                raise _inplace_mod._fast_error(e, self, outofplace, (other,), name) from None
            vc = self._vc
            if vc is None:
                vc = self._vc = _autograd._VersionCounter()
            vc.bump()
            return self
        raw = (lambda a, o: fast(a, o, **kw)) if ufunc is not None and set(kw) <= {"alpha"} else None
        return _inplace_mod.inplace(self, lambda t, o: outofplace(t, o, **kw), name, other, fast=raw)

    op.__name__ = name
    return op


def _fill_(self, value):
    """Fill with ``value`` (a number or a 0-d tensor)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                               f"dimensions.")
        return _inplace_mod.inplace(self, lambda t, v: _inplace_mod.Fill.apply(t, v), "fill_", value)
    value = value.item() if isinstance(value, np.generic) else value
    if not isinstance(value, (int, float, bool)):
        raise TypeError(f"fill_(): argument 'value' must be a Number or a 0-d Tensor, not {type(value).__name__}")
    return _inplace_mod.inplace(self, lambda t: _inplace_mod.Fill.apply(t, _scalar_like(value, t)), "fill_",
                                fast=lambda a: a.fill(value))


def _scalar_like(value, like: Tensor) -> Tensor:
    return Tensor._make(array_module(like.array).asarray(value, dtype=like.array.dtype), None)


def _zero_(self):
    return _fill_(self, 0)


def _copy_(self, src, non_blocking: bool = False):
    """Copy ``src``'s values into this tensor (broadcast, cast, moved across devices as needed)."""
    if not isinstance(src, Tensor):
        src = Tensor(src)
    if type(src.array) is not type(self.array):
        src = src.to(self.device)
    try:
        shape = np.broadcast_shapes(src.shape, self.shape)
    except ValueError:
        shape = None
    if shape != tuple(self.shape):
        raise RuntimeError(f"copy_: the size of tensor a ({tuple(self.shape)}) must match the size of tensor b "
                           f"({tuple(src.shape)}) (src must broadcast to self)")

    def fast(array, s):
        array[...] = s.array

    return _inplace_mod.inplace(self, lambda t, s: _inplace_mod.CopyFrom.apply(t, s), "copy_", src, fast=fast)


def _random_(kind):
    def op(self, a=0.0, b=1.0, generator=None):
        from . import creation

        if self.requires_grad and self.grad_fn is None and _autograd._grad_enabled:
            raise RuntimeError(f"{kind}_: a leaf Variable that requires grad is being used in an in-place operation.")
        with _autograd.no_grad():
            sample = (creation.rand if kind == "uniform" else creation.randn)(
                self.shape, dtype=self.dtype, device=self.device, generator=generator
            )
            values = (sample.array * (b - a) + a) if kind == "uniform" else (sample.array * b + a)
            _inplace_mod.write(self, values, f"{kind}_")
        return self

    op.__name__ = f"{kind}_"
    return op


def _clamp_(self, min=None, max=None):
    return _inplace_mod.inplace(self, lambda t: _F.clamp(t, min, max), "clamp_")


def _unary_(fn, name):
    def op(self):
        return _inplace_mod.inplace(self, fn, name)

    op.__name__ = name
    return op


_methods = dict(
    # arithmetic
    __add__=_F.add, __radd__=_F.add, add=_F.add,
    __sub__=_F.sub, __rsub__=_arith.rsub, sub=_F.sub,
    __mul__=_F.mul, __rmul__=_F.mul, mul=_F.mul,
    __truediv__=_F.div, __rtruediv__=_arith.rdiv, div=_F.div, divide=_F.div, true_divide=_F.div,
    __pow__=_F.pow, __rpow__=_arith.rpow, pow=_F.pow,
    __matmul__=_F.matmul, __rmatmul__=lambda a, b: _F.matmul(b, a), matmul=_F.matmul,
    mm=_F.matmul, bmm=_F.matmul,
    __neg__=_F.neg, neg=_F.neg, negative=_F.neg, __abs__=_F.abs, abs=_F.abs, __pos__=lambda self: self,
    __floordiv__=_arith.floor_divide, floor_divide=_arith.floor_divide, __rfloordiv__=_arith.rfloordiv,
    __mod__=_arith.remainder, remainder=_arith.remainder, __rmod__=_arith.rremainder,
    __and__=_L.bitwise_and, __or__=_L.bitwise_or, __xor__=_L.bitwise_xor,
    __rand__=_L.bitwise_and, __ror__=_L.bitwise_or, __rxor__=_L.bitwise_xor,
    bitwise_and=_L.bitwise_and, bitwise_or=_L.bitwise_or, bitwise_xor=_L.bitwise_xor,
    __lshift__=_L.bitwise_left_shift, __rshift__=_L.bitwise_right_shift,
    __rlshift__=_reflected(_L.bitwise_left_shift), __rrshift__=_reflected(_L.bitwise_right_shift),
    bitwise_left_shift=_L.bitwise_left_shift, bitwise_right_shift=_L.bitwise_right_shift,
    __invert__=_L.bitwise_not, bitwise_not=_L.bitwise_not,
    logical_and=_L.logical_and, logical_or=_L.logical_or, logical_xor=_L.logical_xor, logical_not=_L.logical_not,
    # comparisons (no gradient)
    __eq__=_comparison(_L.eq), __ne__=_comparison(_L.ne), __lt__=_comparison(_L.lt),
    __le__=_comparison(_L.le), __gt__=_comparison(_L.gt), __ge__=_comparison(_L.ge),
    eq=_L.eq, ne=_L.ne, lt=_L.lt, le=_L.le, gt=_L.gt, ge=_L.ge,
    greater=_L.gt, greater_equal=_L.ge, less=_L.lt, less_equal=_L.le, not_equal=_L.ne,
    isnan=_L.isnan, isinf=_L.isinf, isfinite=_L.isfinite,
    sign=lambda self: _elementwise.Sign.apply(self),
    # maths and activations
    exp=_F.exp, log=_F.log, log1p=_F.log1p, sqrt=_F.sqrt, sin=_F.sin, cos=_F.cos, tanh=_F.tanh,
    sigmoid=_F.sigmoid, relu=_F.relu, square=_F.square, clamp=_F.clamp, clip=_F.clip,
    maximum=_F.maximum, minimum=_F.minimum, softmax=_F.softmax, log_softmax=_F.log_softmax,
    masked_fill=_F.masked_fill, norm=_F.norm,
    where=lambda self, condition, other: _F.where(condition, self, other),
    # reductions
    sum=_F.sum, mean=_F.mean, var=_F.var, std=_F.std, max=_F.max, min=_F.min, amax=_F.amax,
    amin=_F.amin, argmax=_F.argmax, argmin=_F.argmin, logsumexp=_F.logsumexp, gather=_F.gather,
    all=lambda self, *args, **kwargs: _reduce_mod.all(self, *args, **kwargs),
    any=lambda self, *args, **kwargs: _reduce_mod.any(self, *args, **kwargs),
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
    __iadd__=_inplace(_F.add, np.add, "add"), add_=_inplace(_F.add, np.add),
    __isub__=_inplace(_F.sub, np.subtract, "sub"), sub_=_inplace(_F.sub, np.subtract),
    __imul__=_inplace(_F.mul, np.multiply, "mul"), mul_=_inplace(_F.mul, np.multiply),
    __itruediv__=_inplace(_F.div, np.divide, "div"), div_=_inplace(_F.div, np.divide),
    pow_=_inplace(_F.pow, np.power),
    clamp_=_clamp_, clip_=_clamp_,
    exp_=_unary_(_F.exp, "exp_"), log_=_unary_(_F.log, "log_"), sqrt_=_unary_(_F.sqrt, "sqrt_"),
    tanh_=_unary_(_F.tanh, "tanh_"), sigmoid_=_unary_(_F.sigmoid, "sigmoid_"), relu_=_unary_(_F.relu, "relu_"),
    neg_=_unary_(_F.neg, "neg_"), abs_=_unary_(_F.abs, "abs_"),
    fill_=_fill_, zero_=_zero_, copy_=_copy_,
    uniform_=_random_("uniform"), normal_=_random_("normal"),
)
for _name, _fn in _methods.items():
    setattr(Tensor, _name, _fn)

from .ops import reduce as _reduce_mod  # noqa: E402
