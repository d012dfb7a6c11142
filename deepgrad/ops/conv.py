"""Convolutions: conv1d, conv2d, conv_transpose1d, conv_transpose2d (torch.nn.functional semantics).

All four run on one 2-D engine (1-D inputs are viewed as height 1): the argument checks and geometry
live here, the arithmetic (im2col + GEMM, batch chunking, threads) in :mod:`deepgrad.kernels.conv`.
A transposed convolution is exactly the input gradient of a convolution, and its backward a plain
convolution of the gradient, so both ops share the kernels with the roles swapped.
"""

from __future__ import annotations

from typing import NamedTuple

from ..autograd import Function, is_grad_enabled
from ..backend import array_module
from ..kernels import conv as K
from ..tensor import Tensor
from .window_args import check_nonnegative, check_positive, conv_out_size, ntuple


class Geometry(NamedTuple):
    """Everything a conv node needs besides arrays; shapes are the 4-D views the engine works on."""

    stride: tuple
    pads: tuple  # (top, bottom, left, right)
    dilation: tuple
    groups: int
    x_shape: tuple  # input as (N, C, H, W)
    w_shape: tuple  # weight as (O, C/g, kh, kw) for conv, (C_in, C_out/g, kh, kw) transposed
    out_shape: tuple  # output as (N, O, Ho, Wo)
    public_out_shape: tuple  # output as the caller sees it (unbatched / 1-D)
    keep: bool  # save what only the weight gradient needs

    @property
    def window(self) -> tuple:
        """(stride, pads, dilation, groups): the window arguments of every conv kernel."""
        return self.stride, self.pads, self.dilation, self.groups


class Conv(Function):
    """Fused conv (1-D or 2-D): y = x (*) w + b; dx = g (*)^T w, dw = g (*) x, db = sum(g)."""

    saved = ((0, 1),)

    def forward(self, x, w, b=None, *, geom: Geometry):
        self.geom, self.x_public, self.w_public = geom, x.shape, w.shape
        self.w = w.reshape(geom.w_shape)
        x = x.reshape(geom.x_shape)
        # Only the weight gradient reads the input, or its columns when the kernel kept them.
        out, self.cols = K.conv2d_forward(x, self.w, *geom.window, geom.out_shape[2:], keep_columns=geom.keep)
        self.x = x if geom.keep and self.cols is None else None
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out.reshape(geom.public_out_shape)

    def backward(self, g):
        g = g.reshape(self.geom.out_shape)
        need_x, need_w = self.next[0] is not None, self.next[1] is not None
        gx, gw = K.conv2d_backward(g, self.x, self.cols, self.geom.x_shape, self.w, *self.geom.window, need_x, need_w)
        return self._public_grads(g, gx, gw)

    def backward_graph(self, g):
        # dx is the transposed conv of g, dw the weight-gradient op, both differentiable again (see ConvWeightGrad)
        geom = self.geom
        g4 = g.reshape(geom.out_shape)
        x, w = self.saved_input(0).reshape(geom.x_shape), self.saved_input(1).reshape(geom.w_shape)
        gx = gw = None
        if self.next[0] is not None:
            gx = ConvTranspose.apply(g4, w, geom=_transposed(geom, keep=w.requires_grad))
        if self.next[1] is not None:
            gw = ConvWeightGrad.apply(x, g4, geom=geom)
        return self._public_graph_grads(g4, gx, gw)

    def _public_graph_grads(self, g4: Tensor, gx, gw) -> tuple:
        gb = g4.sum((0, 2, 3)) if len(self.next) > 2 and self.next[2] is not None else None
        return (None if gx is None else gx.reshape(self.x_public), None if gw is None else gw.reshape(self.w_public),
                gb)

    def _public_grads(self, g, gx, gw) -> tuple:
        """The input and weight grads in the caller's shapes, and the bias grad: g summed per channel."""
        gb = g.sum(axis=(0, 2, 3)) if len(self.next) > 2 and self.next[2] is not None else None
        return (None if gx is None else gx.reshape(self.x_public), None if gw is None else gw.reshape(self.w_public),
                gb)


class ConvTranspose(Conv):
    """Fused transposed conv (1-D or 2-D): a conv's input gradient as forward; its backward is a plain conv."""

    def forward(self, x, w, b=None, *, geom: Geometry):
        self.geom, self.x_public, self.w_public = geom, x.shape, w.shape
        self.w = w.reshape(geom.w_shape)
        x = x.reshape(geom.x_shape)
        self.x = x if geom.keep else None  # only the weight gradient reads the input
        out = K.conv_transpose2d_forward(x, self.w, *geom.window, geom.out_shape)
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out.reshape(geom.public_out_shape)

    def backward(self, g):
        g = g.reshape(self.geom.out_shape)
        need_x, need_w = self.next[0] is not None, self.next[1] is not None
        gx, gw = K.conv_transpose2d_backward(g, self.x, self.geom.x_shape, self.w, *self.geom.window, need_x, need_w)
        return self._public_grads(g, gx, gw)

    def backward_graph(self, g):
        # y = T(x, w) is the adjoint of the conv c = C(., w) from y's shape to x's: dx = C(g, w), and dw is the
        # conv weight gradient with g as the conv's input and x as its output gradient
        geom = self.geom
        g4 = g.reshape(geom.out_shape)
        x, w = self.saved_input(0).reshape(geom.x_shape), self.saved_input(1).reshape(geom.w_shape)
        conv = _transposed(geom, keep=w.requires_grad)
        gx = Conv.apply(g4, w, geom=conv) if self.next[0] is not None else None
        gw = ConvWeightGrad.apply(g4, x, geom=conv) if self.next[1] is not None else None
        return self._public_graph_grads(g4, gx, gw)


class ConvWeightGrad(Function):
    """The weight gradient of a conv as an op of its input ``x`` and output gradient ``g`` (4-D; ``geom`` is the
    conv's): bilinear, so its backward is a transposed conv (for x) and a conv (for g) with the incoming
    weight-shaped gradient as the weight — which is what makes a conv twice differentiable."""

    saved = ((1,), (0,))

    def forward(self, x, g, *, geom: Geometry):
        self.geom = geom
        # A transposed conv's weight gradient with the roles swapped: x is its output gradient, g its input.
        dummy = array_module(x).zeros(geom.w_shape, dtype=x.dtype)
        return K.conv_transpose2d_backward(x, g, g.shape, dummy, *geom.window, False, True)[1]

    def backward(self, gw):
        geom = self.geom
        gx = gg = None
        if self.next[0] is not None:
            gx = K.conv_transpose2d_forward(self.saved_input(1).array, gw, *geom.window, geom.x_shape)
        if self.next[1] is not None:
            gg = K.conv2d_forward(self.saved_input(0).array, gw, *geom.window, geom.out_shape[2:], False)[0]
        return gx, gg

    def backward_graph(self, gw):
        geom = self.geom
        gx = gg = None
        if self.next[0] is not None:
            gx = ConvTranspose.apply(self.saved_input(1), gw, geom=_transposed(geom, keep=gw.requires_grad))
        if self.next[1] is not None:
            gg = Conv.apply(self.saved_input(0), gw, geom=geom._replace(keep=gw.requires_grad))
        return gx, gg


def _transposed(geom: Geometry, keep: bool) -> Geometry:
    """The same window with input and output swapped: a conv's geometry as the transposed conv of its input
    gradient, or a transposed conv's as the conv of its backward (4-D shapes throughout)."""
    return geom._replace(x_shape=geom.out_shape, out_shape=geom.x_shape, public_out_shape=geom.x_shape, keep=keep)


# ----------------------------------------------------------------------------- argument checks
def _check_tensors(op: str, x, w, b, nd: int) -> None:
    for name, t in (("input", x), ("weight", w)) + ((("bias", b),) if b is not None else ()):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if x.ndim not in (nd + 1, nd + 2):
        dims = "(N, C, L) or (C, L)" if nd == 1 else "(N, C, H, W) or (C, H, W)"
        raise RuntimeError(
            f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input {dims}, got shape {tuple(x.shape)}"
        )
    if w.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected a {nd + 2}-D weight, got shape {tuple(w.shape)}")
    for name, t in (("weight", w),) + ((("bias", b),) if b is not None else ()):
        if type(t.array) is not type(x.array):
            raise RuntimeError(f"{op}: input is on {x.device} but {name} is on {t.device}; move them to one device")
        if t.dtype != x.dtype:
            raise RuntimeError(f"{op}: input dtype ({x.dtype}) and {name} dtype ({t.dtype}) should be the same")
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype}")
    if b is not None and b.ndim != 1:
        raise RuntimeError(f"{op}: bias must be 1-D, got shape {tuple(b.shape)}")


def _conv_geometry(op, x, w, b, stride, padding, dilation, groups, nd: int, output_padding=None) -> Geometry:
    """Validate a conv / transposed conv call the way torch does and work out its 4-D geometry."""
    _check_tensors(op, x, w, b, nd)
    transposed = output_padding is not None
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    stride, dilation = ntuple(stride, nd, "stride", op), ntuple(dilation, nd, "dilation", op)
    check_positive(stride, "stride", op)
    check_positive(dilation, "dilation", op)
    kernel = tuple(w.shape[2:])
    batched = x.ndim == nd + 2
    n = x.shape[0] if batched else 1
    c, size = x.shape[-nd - 1], tuple(x.shape[-nd:])
    if transposed:
        if c != w.shape[0]:
            raise RuntimeError(
                f"{op}: given transposed weight of size {tuple(w.shape)} (in_channels, out_channels/groups, *kernel), "
                f"expected input{tuple(x.shape)} to have {w.shape[0]} channels, but got {c} channels instead"
            )
        if c % groups:
            raise RuntimeError(f"{op}: in_channels ({c}) must be divisible by groups ({groups})")
        out_channels = w.shape[1] * groups
    else:
        if c != w.shape[1] * groups:
            raise RuntimeError(
                f"{op}: given groups={groups}, weight of size {tuple(w.shape)}, expected input{tuple(x.shape)} "
                f"to have {w.shape[1] * groups} channels, but got {c} channels instead"
            )
        if w.shape[0] % groups:
            raise RuntimeError(f"{op}: out_channels ({w.shape[0]}) must be divisible by groups ({groups})")
        out_channels = w.shape[0]
    if b is not None and b.shape[0] != out_channels:
        raise RuntimeError(f"{op}: bias of shape {tuple(b.shape)} does not match {out_channels} output channels")
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))

    if isinstance(padding, str):
        if transposed:
            raise ValueError(f"{op}: padding must be an int or a tuple of ints, got {padding!r}")
        if padding == "valid":
            pads = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
            # torch: total d*(k-1), the odd extra element goes to the right/bottom.
            pads = tuple(((e - 1) // 2, (e - 1) - (e - 1) // 2) for e in eff)
        else:
            raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of 'valid', 'same'")
    else:
        p = ntuple(padding, nd, "padding", op)
        check_nonnegative(p, "padding", op)
        pads = tuple((v, v) for v in p)

    if transposed:
        op_pad = ntuple(output_padding, nd, "output_padding", op)
        check_nonnegative(op_pad, "output_padding", op)
        for o, s, d in zip(op_pad, stride, dilation):
            if o >= max(s, d):
                raise ValueError(
                    f"{op}: output padding must be smaller than either stride or dilation, got "
                    f"output_padding={op_pad}, stride={stride}, dilation={dilation}"
                )
        out_size = tuple(
            (i - 1) * s - lo - hi + e - 1 + o + 1 for i, s, (lo, hi), e, o in zip(size, stride, pads, eff, op_pad)
        )
        if any(o <= 0 for o in out_size):
            raise RuntimeError(
                f"{op}: input of size {size} with kernel {kernel}, stride {stride}, padding "
                f"{tuple(lo for lo, _ in pads)}, dilation {dilation} gives output size {out_size}, which is too small"
            )
    else:
        padded = tuple(i + lo + hi for i, (lo, hi) in zip(size, pads))
        if any(pz < e for pz, e in zip(padded, eff)):
            raise RuntimeError(
                f"{op}: calculated padded input size per channel: {padded}; kernel size (dilated): {eff}. "
                f"Kernel size can't be greater than actual input size (input {tuple(x.shape)}, weight {tuple(w.shape)})"
            )
        out_size = tuple(
            conv_out_size(i, k, s, lo, hi, d) for i, k, s, (lo, hi), d in zip(size, kernel, stride, pads, dilation)
        )

    x4_size, o4_size = size, out_size
    public_out = ((n,) if batched else ()) + (out_channels,) + out_size
    if nd == 1:  # view as a 2-D problem of height 1
        stride, dilation, kernel = (1,) + stride, (1,) + dilation, (1,) + kernel
        pads, x4_size, o4_size = ((0, 0),) + pads, (1,) + x4_size, (1,) + o4_size
    return Geometry(
        stride=stride,
        pads=pads[0] + pads[1],
        dilation=dilation,
        groups=groups,
        x_shape=(n, c) + x4_size,
        w_shape=tuple(w.shape[:2]) + kernel,
        out_shape=(n, out_channels) + o4_size,
        public_out_shape=public_out,
        keep=is_grad_enabled() and w.requires_grad,
    )


def _apply(cls, x: Tensor, w: Tensor, b, geom: Geometry) -> Tensor:
    return cls.apply(x, w, geom=geom) if b is None else cls.apply(x, w, b, geom=geom)


# ----------------------------------------------------------------------------- public API
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D convolution (cross-correlation) of (N, C_in, L) or (C_in, L) with weight (C_out, C_in/groups, k).

    >>> conv1d(deepgrad.randn(2, 3, 10), deepgrad.randn(4, 3, 3), padding="same").shape
    (2, 4, 10)
    """
    geom = _conv_geometry("conv1d", input, weight, bias, stride, padding, dilation, groups, 1)
    return _apply(Conv, input, weight, bias, geom)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D convolution of (N, C_in, H, W) or (C_in, H, W) with weight (C_out, C_in/groups, kH, kW).

    ``padding`` is an int, a pair, or "same" / "valid" (as torch).

    >>> conv2d(deepgrad.randn(8, 1, 28, 28), deepgrad.randn(6, 1, 5, 5)).shape
    (8, 6, 24, 24)
    """
    geom = _conv_geometry("conv2d", input, weight, bias, stride, padding, dilation, groups, 2)
    return _apply(Conv, input, weight, bias, geom)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-D transposed convolution; weight is (C_in, C_out/groups, k) as in torch.

    >>> conv_transpose1d(deepgrad.randn(2, 4, 5), deepgrad.randn(4, 3, 3), stride=2).shape
    (2, 3, 11)
    """
    geom = _conv_geometry("conv_transpose1d", input, weight, bias, stride, padding, dilation, groups, 1,
                          output_padding=output_padding)
    return _apply(ConvTranspose, input, weight, bias, geom)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution ("deconvolution"); weight is (C_in, C_out/groups, kH, kW) as in torch.

    >>> conv_transpose2d(deepgrad.randn(2, 8, 7, 7), deepgrad.randn(8, 4, 4, 4), stride=2, padding=1).shape
    (2, 4, 14, 14)
    """
    geom = _conv_geometry("conv_transpose2d", input, weight, bias, stride, padding, dilation, groups, 2,
                          output_padding=output_padding)
    return _apply(ConvTranspose, input, weight, bias, geom)
