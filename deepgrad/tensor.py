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

    >>> x = deepgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
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

        >>> w = deepgrad.tensor([1.0, 2.0], requires_grad=True)
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

    # torch's other queries; deepgrad has no sparse, quantized, complex, meta or XPU/MPS tensors
    is_xpu = is_mps = is_sparse = is_quantized = is_meta = is_nested = property(lambda self: False)
    is_cpu = property(lambda self: self.device.type == "cpu")
    nbytes = property(lambda self: int(self.array.nbytes))
    itemsize = property(lambda self: self.array.itemsize)
    retains_grad = property(lambda self: self._retains_grad)
    ndimension, nelement = dim, numel
    def is_complex(self) -> bool: return False
    def is_signed(self) -> bool: return self.array.dtype.kind in "if"
    def is_nonzero(self) -> bool: return _F.is_nonzero(self)
    def is_same_size(self, other) -> bool: return self.shape == other.shape
    def get_device(self) -> int: return -1 if self.device.type == "cpu" else self.device.index
    def data_ptr(self) -> int: return int(self.array.__array_interface__["data"][0]) if self.device.type == "cpu" \
        else int(self.array.data.ptr)
    def stride(self, dim=None):
        strides = tuple(s // self.array.itemsize for s in self.array.strides)
        return strides if dim is None else strides[dim]

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

    def short(self) -> Tensor: return self.to(backend.int16)
    def char(self) -> Tensor: return self.to(backend.int8)
    def byte(self) -> Tensor: return self.to(backend.uint8)
    def type_as(self, other) -> Tensor: return self.to(other.dtype)
    # new tensors on this one's device and (by default) dtype
    def new_zeros(self, *size, **kw): return _C.new_like(self, "zeros", size, **kw)
    def new_ones(self, *size, **kw): return _C.new_like(self, "ones", size, **kw)
    def new_empty(self, *size, **kw): return _C.new_like(self, "empty", size, **kw)
    def new_full(self, size, fill_value, **kw): return _C.new_like(self, "full", (size,), fill_value=fill_value, **kw)
    def new_tensor(self, data, **kw): return _C.new_like(self, "tensor", (), data=data, **kw)

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

    def clone(self, *, memory_format=None) -> Tensor:
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

    # ------------------------------------------------------------------ the ops: each in the functional layer
    # arithmetic (torch's type promotion, broadcasting; see ops/arithmetic.py)
    def __add__(self, other): return _F.add(self, other)
    __radd__ = __add__
    def add(self, other, *, alpha=1): return _F.add(self, other, alpha=alpha)
    def __sub__(self, other): return _F.sub(self, other)
    def __rsub__(self, other): return _arith.rsub(self, other)
    def sub(self, other, *, alpha=1): return _F.sub(self, other, alpha=alpha)
    subtract = sub
    def __mul__(self, other): return _F.mul(self, other)
    __rmul__ = __mul__
    def mul(self, other): return _F.mul(self, other)
    multiply = mul
    def __truediv__(self, other): return _F.div(self, other)
    def __rtruediv__(self, other): return _arith.rdiv(self, other)
    def div(self, other, *, rounding_mode=None): return _F.div(self, other, rounding_mode=rounding_mode)
    divide = true_divide = div
    def __floordiv__(self, other): return _F.floor_divide(self, other)
    def __rfloordiv__(self, other): return _division.rfloordiv(self, other)
    def floor_divide(self, other): return _F.floor_divide(self, other)
    def __mod__(self, other): return _F.remainder(self, other)
    def __rmod__(self, other): return _division.rremainder(self, other)
    def remainder(self, other): return _F.remainder(self, other)
    def __pow__(self, other): return _F.pow(self, other)
    def __rpow__(self, other): return _arith.rpow(self, other)
    def pow(self, other): return _F.pow(self, other)
    def __matmul__(self, other): return _F.matmul(self, other)
    def __rmatmul__(self, other): return _F.matmul(other, self)
    def matmul(self, other): return _F.matmul(self, other)
    def mm(self, mat2): return _F.mm(self, mat2)
    def bmm(self, mat2): return _F.bmm(self, mat2)
    def mv(self, vec): return _F.mv(self, vec)
    def dot(self, other): return _F.dot(self, other)
    vdot = dot
    def outer(self, vec2): return _F.outer(self, vec2)
    ger = outer
    def inner(self, other): return _F.inner(self, other)
    def kron(self, other): return _F.kron(self, other)
    def cross(self, other, dim=None): return _F.cross(self, other, dim)
    def addmm(self, mat1, mat2, *, beta=1, alpha=1): return _F.addmm(self, mat1, mat2, beta=beta, alpha=alpha)
    def addbmm(self, b1, b2, *, beta=1, alpha=1): return _F.addbmm(self, b1, b2, beta=beta, alpha=alpha)
    def baddbmm(self, b1, b2, *, beta=1, alpha=1): return _F.baddbmm(self, b1, b2, beta=beta, alpha=alpha)
    def addmv(self, mat, vec, *, beta=1, alpha=1): return _F.addmv(self, mat, vec, beta=beta, alpha=alpha)
    def addr(self, vec1, vec2, *, beta=1, alpha=1): return _F.addr(self, vec1, vec2, beta=beta, alpha=alpha)
    def addcmul(self, tensor1, tensor2, *, value=1): return _F.addcmul(self, tensor1, tensor2, value=value)
    def addcdiv(self, tensor1, tensor2, *, value=1): return _F.addcdiv(self, tensor1, tensor2, value=value)
    def diag(self, diagonal=0): return _F.diag(self, diagonal)
    def diag_embed(self, offset=0, dim1=-2, dim2=-1): return _F.diag_embed(self, offset, dim1, dim2)
    def diagflat(self, offset=0): return _F.diagflat(self, offset)
    def diagonal(self, offset=0, dim1=0, dim2=1): return _F.diagonal(self, offset, dim1, dim2)
    def trace(self): return _F.trace(self)
    def inverse(self): return _F.inverse(self)
    def det(self): return _F.det(self)
    def logdet(self): return _F.logdet(self)
    def slogdet(self): return _F.slogdet(self)
    def matrix_power(self, n): return _F.matrix_power(self, n)
    def cholesky(self, upper=False): return _F.cholesky(self, upper)
    def tril(self, diagonal=0): return _F.tril(self, diagonal)
    def triu(self, diagonal=0): return _F.triu(self, diagonal)
    def __neg__(self): return _F.neg(self)
    neg = negative = __neg__
    def __abs__(self): return _F.abs(self)
    abs = absolute = __abs__
    def __pos__(self): return self

    # comparisons, bitwise and logical ops (no gradient; see ops/logical.py)
    def __eq__(self, other): return _L.eq(self, other) if _L.comparable(other) else NotImplemented
    def __ne__(self, other): return _L.ne(self, other) if _L.comparable(other) else NotImplemented
    def __lt__(self, other): return _L.lt(self, other) if _L.comparable(other) else NotImplemented
    def __le__(self, other): return _L.le(self, other) if _L.comparable(other) else NotImplemented
    def __gt__(self, other): return _L.gt(self, other) if _L.comparable(other) else NotImplemented
    def __ge__(self, other): return _L.ge(self, other) if _L.comparable(other) else NotImplemented
    __hash__ = object.__hash__
    def eq(self, other): return _L.eq(self, other)
    def ne(self, other): return _L.ne(self, other)
    def lt(self, other): return _L.lt(self, other)
    def le(self, other): return _L.le(self, other)
    def gt(self, other): return _L.gt(self, other)
    def ge(self, other): return _L.ge(self, other)
    not_equal, less, less_equal, greater, greater_equal = ne, lt, le, gt, ge
    def __and__(self, other): return _L.bitwise_and(self, other)
    def __or__(self, other): return _L.bitwise_or(self, other)
    def __xor__(self, other): return _L.bitwise_xor(self, other)
    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__
    bitwise_and, bitwise_or, bitwise_xor = __and__, __or__, __xor__
    def __lshift__(self, other): return _L.bitwise_left_shift(self, other)
    def __rshift__(self, other): return _L.bitwise_right_shift(self, other)
    def __rlshift__(self, other): return _L.bitwise_left_shift(other, self)
    def __rrshift__(self, other): return _L.bitwise_right_shift(other, self)
    bitwise_left_shift, bitwise_right_shift = __lshift__, __rshift__
    def __invert__(self): return _L.bitwise_not(self)
    bitwise_not = __invert__
    def logical_and(self, other): return _L.logical_and(self, other)
    def logical_or(self, other): return _L.logical_or(self, other)
    def logical_xor(self, other): return _L.logical_xor(self, other)
    def logical_not(self): return _L.logical_not(self)
    def isnan(self): return _L.isnan(self)
    def isinf(self): return _L.isinf(self)
    def isfinite(self): return _L.isfinite(self)
    def isposinf(self): return _F.isposinf(self)
    def isneginf(self): return _F.isneginf(self)
    def isreal(self): return _F.isreal(self)
    def signbit(self): return _F.signbit(self)
    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False): return _F.isclose(self, other, rtol, atol,
                                                                                          equal_nan)
    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False): return _F.allclose(self, other, rtol, atol,
                                                                                            equal_nan)
    def equal(self, other): return _F.equal(self, other)

    # elementwise maths and activations
    def exp(self): return _F.exp(self)
    def log(self): return _F.log(self)
    def log1p(self): return _F.log1p(self)
    def sqrt(self): return _F.sqrt(self)
    def sin(self): return _F.sin(self)
    def cos(self): return _F.cos(self)
    def tanh(self): return _F.tanh(self)
    def sigmoid(self): return _F.sigmoid(self)
    def relu(self): return _F.relu(self)
    def sign(self): return _F.sign(self)
    sgn = sign
    def square(self): return _F.square(self)
    def clamp(self, min=None, max=None): return _F.clamp(self, min, max)
    clip = clamp
    def maximum(self, other): return _F.maximum(self, other)
    def minimum(self, other): return _F.minimum(self, other)
    def where(self, condition, other): return _F.where(condition, self, other)
    def masked_fill(self, mask, value): return _F.masked_fill(self, mask, value)
    def softmax(self, dim, dtype=None): return _F.softmax(self, dim, dtype)
    def log_softmax(self, dim, dtype=None): return _F.log_softmax(self, dim, dtype)
    def norm(self, p=2, dim=None, keepdim=False, dtype=None): return _F.norm(self, p, dim, keepdim, dtype)
    def floor(self): return _F.floor(self)
    def ceil(self): return _F.ceil(self)
    def trunc(self): return _F.trunc(self)
    fix = trunc
    def round(self, decimals=0): return _F.round(self, decimals=decimals)
    def frac(self): return _F.frac(self)
    def rsqrt(self): return _F.rsqrt(self)
    def reciprocal(self): return _F.reciprocal(self)
    def log2(self): return _F.log2(self)
    def log10(self): return _F.log10(self)
    def exp2(self): return _F.exp2(self)
    def expm1(self): return _F.expm1(self)
    def tan(self): return _F.tan(self)
    def asin(self): return _F.asin(self)
    def acos(self): return _F.acos(self)
    def atan(self): return _F.atan(self)
    def sinh(self): return _F.sinh(self)
    def cosh(self): return _F.cosh(self)
    def asinh(self): return _F.asinh(self)
    def acosh(self): return _F.acosh(self)
    def atanh(self): return _F.atanh(self)
    arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh
    def erf(self): return _F.erf(self)
    def erfc(self): return _F.erfc(self)
    def erfinv(self): return _F.erfinv(self)
    def lgamma(self): return _F.lgamma(self)
    def digamma(self): return _F.digamma(self)
    def sinc(self): return _F.sinc(self)
    def deg2rad(self): return _F.deg2rad(self)
    def rad2deg(self): return _F.rad2deg(self)
    def logit(self, eps=None): return _F.logit(self, eps)
    def nan_to_num(self, nan=0.0, posinf=None, neginf=None): return _F.nan_to_num(self, nan, posinf, neginf)
    def positive(self): return _F.positive(self)
    def atan2(self, other): return _F.atan2(self, other)
    arctan2 = atan2
    def hypot(self, other): return _F.hypot(self, other)
    def logaddexp(self, other): return _F.logaddexp(self, other)
    def logaddexp2(self, other): return _F.logaddexp2(self, other)
    def xlogy(self, other): return _F.xlogy(self, other)
    def copysign(self, other): return _F.copysign(self, other)
    def fmod(self, other): return _F.fmod(self, other)
    def fmax(self, other): return _F.fmax(self, other)
    def fmin(self, other): return _F.fmin(self, other)
    def lerp(self, end, weight): return _F.lerp(self, end, weight)
    def float_power(self, exponent): return _F.float_power(self, exponent)
    def ldexp(self, other): return _F.ldexp(self, other)
    def gcd(self, other): return _F.gcd(self, other)
    def lcm(self, other): return _F.lcm(self, other)
    def clamp_min(self, min): return _F.clamp_min(self, min)
    def clamp_max(self, max): return _F.clamp_max(self, max)

    # reductions (``axis=`` is accepted for ``dim=``, as in torch)
    def sum(self, *args, **kwargs): return _F.sum(self, *args, **kwargs)
    def mean(self, *args, **kwargs): return _F.mean(self, *args, **kwargs)
    def var(self, *args, **kwargs): return _F.var(self, *args, **kwargs)
    def std(self, *args, **kwargs): return _F.std(self, *args, **kwargs)
    def max(self, *args, **kwargs): return _F.max(self, *args, **kwargs)
    def min(self, *args, **kwargs): return _F.min(self, *args, **kwargs)
    def amax(self, *args, **kwargs): return _F.amax(self, *args, **kwargs)
    def amin(self, *args, **kwargs): return _F.amin(self, *args, **kwargs)
    def argmax(self, *args, **kwargs): return _F.argmax(self, *args, **kwargs)
    def argmin(self, *args, **kwargs): return _F.argmin(self, *args, **kwargs)
    def logsumexp(self, *args, **kwargs): return _F.logsumexp(self, *args, **kwargs)
    def all(self, *args, **kwargs): return _F.all(self, *args, **kwargs)
    def any(self, *args, **kwargs): return _F.any(self, *args, **kwargs)
    def gather(self, dim, index, *, sparse_grad=False): return _F.gather(self, dim, index, sparse_grad=sparse_grad)
    def prod(self, dim=None, keepdim=False, *, dtype=None): return _F.prod(self, dim, keepdim, dtype=dtype)
    def nansum(self, *args, **kwargs): return _F.nansum(self, *args, **kwargs)
    def nanmean(self, *args, **kwargs): return _F.nanmean(self, *args, **kwargs)
    def aminmax(self, *, dim=None, keepdim=False): return _F.aminmax(self, dim=dim, keepdim=keepdim)
    def count_nonzero(self, dim=None): return _F.count_nonzero(self, dim)
    def median(self, dim=None, keepdim=False): return _F.median(self, dim, keepdim)
    def nanmedian(self, dim=None, keepdim=False): return _F.nanmedian(self, dim, keepdim)
    def mode(self, dim=-1, keepdim=False): return _F.mode(self, dim, keepdim)
    def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
        return _F.quantile(self, q, dim, keepdim, interpolation=interpolation)
    def kthvalue(self, k, dim=-1, keepdim=False): return _F.kthvalue(self, k, dim, keepdim)
    def cumsum(self, dim, *, dtype=None): return _F.cumsum(self, dim, dtype=dtype)
    def cumprod(self, dim, *, dtype=None): return _F.cumprod(self, dim, dtype=dtype)
    def logcumsumexp(self, dim): return _F.logcumsumexp(self, dim)
    def cummax(self, dim): return _F.cummax(self, dim)
    def cummin(self, dim): return _F.cummin(self, dim)
    def diff(self, n=1, dim=-1, prepend=None, append=None): return _F.diff(self, n, dim, prepend, append)
    def sort(self, dim=-1, descending=False, *, stable=False): return _F.sort(self, dim, descending, stable)
    def argsort(self, dim=-1, descending=False, *, stable=False): return _F.argsort(self, dim, descending, stable)
    def msort(self): return _F.msort(self)
    def topk(self, k, dim=-1, largest=True, sorted=True): return _F.topk(self, k, dim, largest, sorted)
    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        return _F.unique(self, sorted, return_inverse, return_counts, dim)
    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        return _F.unique_consecutive(self, return_inverse, return_counts, dim)
    def bincount(self, weights=None, minlength=0): return _F.bincount(self, weights, minlength)
    def histc(self, bins=100, min=0, max=0): return _F.histc(self, bins, min, max)
    def cov(self, *, correction=1, fweights=None, aweights=None):
        return _F.cov(self, correction=correction, fweights=fweights, aweights=aweights)
    def corrcoef(self): return _F.corrcoef(self)

    # shapes and indexing (views share memory: see autograd's views)
    def reshape(self, *shape): return _F.reshape(self, *shape)
    def view(self, *shape): return _F.view(self, *shape)
    def view_as(self, other): return _F.view(self, other.shape)
    def reshape_as(self, other): return _F.reshape(self, other.shape)
    def flatten(self, start_dim=0, end_dim=-1): return _F.flatten(self, start_dim, end_dim)
    def squeeze(self, dim=None): return _F.squeeze(self, dim)
    def unsqueeze(self, dim): return _F.unsqueeze(self, dim)
    def permute(self, *dims): return _F.permute(self, *dims)
    def transpose(self, dim0, dim1): return _F.transpose(self, dim0, dim1)
    def t(self): return _F.transpose(self, 0, 1) if self.ndim == 2 else self
    def expand(self, *sizes): return _F.expand(self, *sizes)
    def expand_as(self, other): return _F.expand(self, other.shape)
    def repeat(self, *reps): return _F.repeat(self, *reps)
    def split(self, split_size_or_sections, dim=0): return _F.split(self, split_size_or_sections, dim)
    def chunk(self, chunks, dim=0): return _F.chunk(self, chunks, dim)
    def unbind(self, dim=0): return _F.unbind(self, dim)
    def flip(self, *dims): return _F.flip(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)
    def fliplr(self): return _F.fliplr(self)
    def flipud(self): return _F.flipud(self)
    def roll(self, shifts, dims=None): return _F.roll(self, shifts, dims)
    def rot90(self, k=1, dims=(0, 1)): return _F.rot90(self, k, dims)
    def narrow(self, dim, start, length): return _F.narrow(self, dim, start, length)
    def select(self, dim, index): return _F.select(self, dim, index)
    def movedim(self, source, destination): return _F.movedim(self, source, destination)
    moveaxis = movedim
    def swapaxes(self, axis0, axis1): return _F.swapaxes(self, axis0, axis1)
    swapdims = swapaxes
    def tile(self, *dims): return _F.tile(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], int) else dims)
    def broadcast_to(self, size): return _F.broadcast_to(self, size)
    def unflatten(self, dim, sizes): return _F.unflatten(self, dim, sizes)
    def ravel(self): return _F.ravel(self)
    def unfold(self, dimension, size, step): return _rearrange.unfold(self, dimension, size, step)
    def tensor_split(self, indices_or_sections, dim=0): return _F.tensor_split(self, indices_or_sections, dim)
    def hsplit(self, sections): return _F.hsplit(self, sections)
    def vsplit(self, sections): return _F.vsplit(self, sections)
    def dsplit(self, sections): return _F.dsplit(self, sections)
    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        return _F.repeat_interleave(self, repeats, dim, output_size=output_size)
    def index_select(self, dim, index): return _F.index_select(self, dim, index)
    def index_add(self, dim, index, source, *, alpha=1): return _F.index_add(self, dim, index, source, alpha=alpha)
    def index_copy(self, dim, index, source): return _F.index_copy(self, dim, index, source)
    def index_fill(self, dim, index, value): return _F.index_fill(self, dim, index, value)
    def index_put(self, indices, values, accumulate=False): return _F.index_put(self, indices, values, accumulate)
    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        return _F.scatter(self, dim, index, src, value=value, reduce=reduce)
    def scatter_add(self, dim, index, src): return _F.scatter_add(self, dim, index, src)
    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        return _F.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)
    def masked_select(self, mask): return _F.masked_select(self, mask)
    def masked_scatter(self, mask, source): return _F.masked_scatter(self, mask, source)
    def take(self, index): return _F.take(self, index)
    def take_along_dim(self, indices, dim=None): return _F.take_along_dim(self, indices, dim)
    def nonzero(self, *, as_tuple=False): return _F.nonzero(self, as_tuple=as_tuple)
    def argwhere(self): return _F.argwhere(self)
    def __getitem__(self, index): return _shape.getitem(self, index)
    def __setitem__(self, index, value): _shape.setitem(self, index, value)

    # in place: write this tensor's memory (see ops/inplace.py)
    def add_(self, other, *, alpha=1): return _I.add_(self, other, alpha=alpha) if alpha != 1 else _I.add_(self, other)
    def sub_(self, other, *, alpha=1): return _I.sub_(self, other, alpha=alpha) if alpha != 1 else _I.sub_(self, other)
    def mul_(self, other): return _I.mul_(self, other)
    def div_(self, other, *, rounding_mode=None):
        return _I.div_(self, other, rounding_mode=rounding_mode) if rounding_mode else _I.div_(self, other)
    def pow_(self, other): return _I.pow_(self, other)
    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_
    def clamp_(self, min=None, max=None): return _I.clamp_(self, min, max)
    clip_ = clamp_
    def exp_(self): return _I.unary_(self, _F.exp, "exp_")
    def log_(self): return _I.unary_(self, _F.log, "log_")
    def sqrt_(self): return _I.unary_(self, _F.sqrt, "sqrt_")
    def tanh_(self): return _I.unary_(self, _F.tanh, "tanh_")
    def sigmoid_(self): return _I.unary_(self, _F.sigmoid, "sigmoid_")
    def relu_(self): return _I.unary_(self, _F.relu, "relu_")
    def neg_(self): return _I.unary_(self, _F.neg, "neg_")
    def abs_(self): return _I.unary_(self, _F.abs, "abs_")
    def fill_(self, value): return _I.fill_(self, value)
    def zero_(self): return _I.fill_(self, 0)
    def copy_(self, src, non_blocking=False): return _I.copy_(self, src)
    def uniform_(self, a=0.0, b=1.0, generator=None): return _I.random_(self, "uniform", a, b, generator)
    def normal_(self, mean=0.0, std=1.0, generator=None): return _I.random_(self, "normal", mean, std, generator)
    # the newer ops' in-place forms (ops/inplace_extra.py)
    def masked_fill_(self, mask, value): return _IX.masked_fill_(self, mask, value)
    def index_put_(self, indices, values, accumulate=False): return _IX.index_put_(self, indices, values, accumulate)
    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        return _IX.scatter_(self, dim, index, src if src is not None else value, reduce=reduce)
    def scatter_add_(self, dim, index, src): return _IX.scatter_add_(self, dim, index, src)
    def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
        return _IX.scatter_reduce_(self, dim, index, src, reduce, include_self=include_self)
    def index_add_(self, dim, index, source, *, alpha=1): return _IX.index_add_(self, dim, index, source, alpha=alpha)
    def index_copy_(self, dim, index, source): return _IX.index_copy_(self, dim, index, source)
    def index_fill_(self, dim, index, value): return _IX.index_fill_(self, dim, index, value)
    def masked_scatter_(self, mask, source): return _IX.masked_scatter_(self, mask, source)
    def fill_diagonal_(self, fill_value, wrap=False): return _IX.fill_diagonal_(self, fill_value, wrap)
    def tril_(self, diagonal=0): return _IX.tril_(self, diagonal)
    def triu_(self, diagonal=0): return _IX.triu_(self, diagonal)
    def cumsum_(self, dim, *, dtype=None): return _IX.cumsum_(self, dim, dtype=dtype)
    def cumprod_(self, dim, *, dtype=None): return _IX.cumprod_(self, dim, dtype=dtype)
    def clamp_min_(self, min): return _IX.clamp_min_(self, min)
    def clamp_max_(self, max): return _IX.clamp_max_(self, max)
    def copysign_(self, other): return _IX.copysign_(self, other)
    def fmod_(self, other): return _IX.fmod_(self, other)
    def remainder_(self, other): return _IX.remainder_(self, other)
    def floor_divide_(self, other): return _IX.floor_divide_(self, other)
    def hypot_(self, other): return _IX.hypot_(self, other)
    def atan2_(self, other): return _IX.atan2_(self, other)
    def xlogy_(self, other): return _IX.xlogy_(self, other)
    def lerp_(self, end, weight): return _IX.lerp_(self, end, weight)
    def addcmul_(self, tensor1, tensor2, *, value=1): return _IX.addcmul_(self, tensor1, tensor2, value=value)
    def addcdiv_(self, tensor1, tensor2, *, value=1): return _IX.addcdiv_(self, tensor1, tensor2, value=value)
    def addmm_(self, mat1, mat2, *, beta=1, alpha=1): return _IX.addmm_(self, mat1, mat2, beta=beta, alpha=alpha)
    def baddbmm_(self, b1, b2, *, beta=1, alpha=1): return _IX.baddbmm_(self, b1, b2, beta=beta, alpha=alpha)
    def nan_to_num_(self, nan=0.0, posinf=None, neginf=None): return _IX.nan_to_num_(self, nan, posinf, neginf)
    def round_(self, decimals=0): return _IX.round_(self, decimals=decimals)
    def floor_(self): return _IX.floor_(self)
    def ceil_(self): return _IX.ceil_(self)
    def trunc_(self): return _IX.trunc_(self)
    def frac_(self): return _IX.frac_(self)
    def sign_(self): return _IX.sign_(self)
    def square_(self): return _IX.square_(self)
    def reciprocal_(self): return _IX.reciprocal_(self)
    def rsqrt_(self): return _IX.rsqrt_(self)
    def log1p_(self): return _IX.log1p_(self)
    def log2_(self): return _IX.log2_(self)
    def expm1_(self): return _IX.expm1_(self)
    def sin_(self): return _IX.sin_(self)
    def cos_(self): return _IX.cos_(self)
    def tan_(self): return _IX.tan_(self)
    def erf_(self): return _IX.erf_(self)
    def erfinv_(self): return _IX.erfinv_(self)

    def __repr__(self) -> str:
        return _tensor_str.format_tensor(self)

    def __str__(self): return repr(self)  # a subclass's __repr__ (Parameter's header) prints too


# The one deliberate late import of the package: the ops build Tensors, so the functional layer (and the
# in-place machinery) can only be imported once the class exists; the methods above look them up at call time.
from . import _tensor_str  # noqa: E402
from . import autograd as _autograd  # noqa: E402
from . import creation as _C  # noqa: E402
from . import functional as _F  # noqa: E402
from .ops import arithmetic as _arith  # noqa: E402
from .ops import division as _division  # noqa: E402
from .ops import elementwise as _elementwise  # noqa: E402
from .ops import inplace as _I  # noqa: E402
from .ops import inplace_extra as _IX  # noqa: E402
from .ops import logical as _L  # noqa: E402
from .ops import rearrange as _rearrange  # noqa: E402
from .ops import shape as _shape  # noqa: E402
