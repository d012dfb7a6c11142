"""Convolution: output sizes, conv2d forward, conv2d backward."""

from __future__ import annotations

import math

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, grad_case, normal, src


def _conv(x, w, b, stride, padding):
    from ...nn import functional as F

    return F.conv2d(x, w, b, stride=stride, padding=padding)


def _geometry(rng, square_kernel: bool = False, first: bool = False):
    """Sizes 1-4 and non-powers of two; ``first``: a 3x3 kernel with padding 1 (flips, overlaps, pads show)."""
    n, c, o = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    kh = 3 if first else int(rng.integers(1, 4))
    kw = kh if square_kernel or first else int(rng.integers(1, 4))
    stride, padding = int(rng.integers(1, 3)), 1 if first else int(rng.integers(0, 2))
    h = int(rng.integers(max(kh, 3), 8))
    w = int(rng.integers(max(kw, 3), 8))
    return n, c, o, h, w, kh, kw, stride, padding


# ----------------------------------------------------------------------------- output size
def _size_cases(rng):
    cases = []
    for i in range(8):
        k = int(rng.integers(2, 8)) if i == 0 else int(rng.integers(1, 8))
        d = int(rng.integers(2, 4)) if i == 0 else int(rng.integers(1, 4))
        eff = d * (k - 1) + 1
        p = int(rng.integers(0, 4))
        stride = {0: 1, 1: int(rng.integers(2, 5))}.get(i, int(rng.integers(1, 5)))  # 0: every pixel of span shows
        h = int(rng.integers(max(1, eff - 2 * p), 40))
        w = int(rng.integers(max(1, eff - 2 * p), 40))
        if i == 1:  # a stride that does not divide: the last partial window is dropped
            h = eff - 2 * p + stride * (int(rng.integers(1, 5)) + max(0, 2 * p - eff)) + 1
        cases.append(Case("conv_output_size", {"h": h, "w": w, "kernel_size": k, "stride": stride,
                                               "padding": p, "dilation": d}))
    return cases


def _size_ref(c):
    from ...nn import functional as F

    a = c.args
    y = F.conv2d(T(np.zeros((1, 1, a["h"], a["w"]), np.float32)), T(np.zeros((1, 1, a["kernel_size"],
                                                                                a["kernel_size"]), np.float32)),
                 stride=a["stride"], padding=a["padding"], dilation=a["dilation"])
    return int(y.shape[2]), int(y.shape[3])


def _size_alt(c, dilation=True, ceil=False):
    a = c.args
    eff = (a["dilation"] if dilation else 1) * (a["kernel_size"] - 1) + 1
    r = math.ceil if ceil else math.floor
    return tuple(int(r((s + 2 * a["padding"] - eff) / a["stride"])) + 1 for s in (a["h"], a["w"]))


conv_output_size = Exercise(
    id="conv-output-size", title="Convolution output size (stride, padding, dilation)", topic="conv-parameters",
    difficulty=1, question="How do kernel size, stride and padding determine a convolution's output size?",
    statement=src("""
    Implement conv_output_size(h, w, kernel_size, stride, padding, dilation) -> (h_out, w_out), the
    spatial size of nn.Conv2d's output for an h x w input and a square kernel, as two ints.
    """),
    starter=src("""
    def conv_output_size(h, w, kernel_size, stride, padding, dilation):
        ...  # your code here
    """),
    hints=["A dilated kernel spans dilation * (kernel_size - 1) + 1 pixels.",
           "out = floor((in + 2 * padding - span) / stride) + 1 (integer division)."],
    solution=src("""
    def conv_output_size(h, w, kernel_size, stride, padding, dilation):
        span = dilation * (kernel_size - 1) + 1
        return (h + 2 * padding - span) // stride + 1, (w + 2 * padding - span) // stride + 1
    """),
    outputs={"conv_output_size": ("h_out", "w_out")}, cases=_size_cases, reference=_size_ref,
    mistakes=[Mistake("you ignored the dilation: the kernel spans dilation * (k - 1) + 1 pixels",
                      lambda c: _size_alt(c, dilation=False), lambda c: c.args["dilation"] > 1),
              Mistake("round down, not up: a window that does not fit is dropped", lambda c: _size_alt(c, ceil=True))],
    mutants=[
        Mutant("dilation ignored", ("span = dilation * (kernel_size - 1) + 1", "span = kernel_size"),
               mentions="ignored the dilation"),
        Mutant("rounds up", ("(h + 2 * padding - span) // stride + 1", "-(-(h + 2 * padding - span) // stride) + 1",
                             "(w + 2 * padding - span) // stride + 1", "-(-(w + 2 * padding - span) // stride) + 1"),
               mentions="round down"),
        Mutant("padding on one side only", ("h + 2 * padding", "h + padding", "w + 2 * padding", "w + padding")),
    ],
)


# ----------------------------------------------------------------------------- conv2d forward
def _fwd_cases(rng):
    cases = []
    for i in range(6):
        n, c, o, h, w, kh, kw, s, p = _geometry(rng, square_kernel=i < 3, first=i == 0)
        dtype = np.float32 if i % 2 else np.float64
        cases.append(Case("conv2d", {"x": normal(rng, (n, c, h, w), dtype),
                                     "weight": normal(rng, (o, c, kh, kw), dtype),
                                     "bias": normal(rng, (o,), dtype), "stride": s, "padding": p}))
    return cases


def _fwd_ref(c):
    a = c.args
    return arr(_conv(T(a["x"]), T(a["weight"]), T(a["bias"]), a["stride"], a["padding"]))


def _fwd_alt(c, transform=lambda w: w, bias=True):
    a = c.args
    w = np.ascontiguousarray(transform(a["weight"]))
    return arr(_conv(T(a["x"]), T(w), T(a["bias"] if bias else np.zeros_like(a["bias"])), a["stride"], a["padding"]))


conv2d_forward = Exercise(
    id="conv2d-forward", title="Conv2d forward (cross-correlation, stride and padding)", topic="cnns", difficulty=2,
    question="How does a convolutional layer compute its output?",
    statement=src("""
    Implement conv2d(x, weight, bias, stride, padding) -> out with NumPy, as torch.nn.functional.conv2d:
    x (N, C, H, W), weight (O, C, kh, kw), bias (O,), stride and padding ints (zero padding on all
    four sides). out (N, O, H_out, W_out) with out[n, o, i, j] =
        bias[o] + sum_{c, di, dj} x_padded[n, c, i*stride + di, j*stride + dj] * weight[o, c, di, dj]
    Deep learning's "convolution" does not flip the kernel. Keep x's dtype.
    """),
    starter=src("""
    import numpy as np


    def conv2d(x, weight, bias, stride, padding):
        ...  # your code here
    """),
    hints=["H_out = (H + 2 * padding - kh) // stride + 1 (the same for W). Pad with np.pad on the last two axes.",
           "Loop over the kh * kw kernel offsets: each offset is a strided slice of the padded input, "
           "x_pad[:, :, di : di + stride * H_out : stride, dj : dj + stride * W_out : stride].",
           "For each offset, contract the channel axis with np.einsum('nchw,oc->nohw', patch, weight[:, :, di, dj])."],
    solution=src("""
    import numpy as np


    def conv2d(x, weight, bias, stride, padding):
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        ho = (h + 2 * padding - kh) // stride + 1
        wo = (w + 2 * padding - kw) // stride + 1
        out = np.zeros((n, o, ho, wo), dtype=x.dtype)
        for di in range(kh):
            for dj in range(kw):
                patch = xp[:, :, di:di + stride * ho:stride, dj:dj + stride * wo:stride]
                out += np.einsum("nchw,oc->nohw", patch, weight[:, :, di, dj])
        return out + bias.reshape(1, o, 1, 1)
    """),
    outputs={"conv2d": ("out",)}, cases=_fwd_cases, reference=_fwd_ref,
    mistakes=[Mistake("your output matches a convolution with the kernel flipped (true convolution): "
                      "conv2d is a cross-correlation, use weight[o, c, di, dj] as is",
                      lambda c: _fwd_alt(c, lambda w: w[..., ::-1, ::-1])),
              Mistake("your output matches the kernel transposed (kh and kw swapped): index weight[o, c, di, dj] "
                      "with di along H and dj along W", lambda c: _fwd_alt(c, lambda w: w.transpose(0, 1, 3, 2)),
                      lambda c: c.args["weight"].shape[2] == c.args["weight"].shape[3]),
              Mistake("the bias is missing", lambda c: _fwd_alt(c, bias=False))],
    mutants=[
        Mutant("the kernel flipped (true convolution)",
               ("weight[:, :, di, dj])", "weight[:, :, kh - 1 - di, kw - 1 - dj])"),
               mentions="kernel flipped"),
        Mutant("no bias", ("return out + bias.reshape(1, o, 1, 1)", "return out")),
        Mutant("padding on one side only", ("((0, 0), (0, 0), (padding, padding), (padding, padding))",
                                            "((0, 0), (0, 0), (0, 2 * padding), (0, 2 * padding))")),
        Mutant("output one row and column short",
               ("(h + 2 * padding - kh) // stride + 1", "(h + 2 * padding - kh) // stride",
                "(w + 2 * padding - kw) // stride + 1", "(w + 2 * padding - kw) // stride")),
    ],
)


# ----------------------------------------------------------------------------- conv2d backward
def _bwd_fwd(x, weight, bias, stride, padding, **_):
    return (_conv(x, weight, bias, stride, padding),)


def _bwd_cases(rng):
    cases = []
    for i in range(5):
        n, c, o, h, w, kh, kw, s, p = _geometry(rng, square_kernel=i < 2, first=i == 0)
        if i == 0:
            s = 1
        x, wt = normal(rng, (n, c, h, w)), normal(rng, (o, c, kh, kw))
        ho, wo = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
        args = {"x": x, "weight": wt, "bias": normal(rng, (o,)), "stride": s, "padding": p,
                "grad_out": normal(rng, (n, o, ho, wo))}
        cases.append(grad_case("conv2d_backward", args, _bwd_fwd, ("x", "weight", "bias"), ("grad_out",)))
    return cases


def _bwd_alt_unflipped(c):
    """dx computed as a full convolution with the kernel NOT rotated by 180 degrees."""
    a = dict(c.args)
    ref = autograd_reference(c)
    a2 = dict(a, weight=np.ascontiguousarray(a["weight"][..., ::-1, ::-1]))
    from ._util import _tensors

    ts = _tensors(a2, ("x",))
    (_conv(ts["x"], ts["weight"], ts["bias"], a["stride"], a["padding"]) * T(a["grad_out"])).sum().backward()
    return arr(ts["x"].grad), ref[1], ref[2]


conv2d_backward = Exercise(
    id="conv2d-backward", title="Conv2d backward: input, weight and bias gradients", topic="backprop",
    difficulty=3, question="How do gradients flow through a convolutional layer?",
    statement=src("""
    For out = conv2d(x, weight, bias, stride, padding) (torch semantics, as in conv2d-forward), implement
    conv2d_backward(x, weight, bias, stride, padding, grad_out) -> (dx, dweight, dbias) with NumPy,
    given grad_out = dL/dout of shape (N, O, H_out, W_out). Each gradient has its input's shape.
    Inputs are float64; gradients are checked against float64 finite differences.
    """),
    starter=src("""
    import numpy as np


    def conv2d_backward(x, weight, bias, stride, padding, grad_out):
        ...  # your code here
    """),
    hints=["Redo the forward's loop over kernel offsets (di, dj): the patch that met weight[:, :, di, dj].",
           "dweight[:, :, di, dj] = einsum('nohw,nchw->oc', grad_out, patch); dbias = grad_out.sum((0, 2, 3)).",
           "dx_pad[..., di::stride, dj::stride] (the same strided slice) += einsum('nohw,oc->nchw', grad_out, "
           "weight[:, :, di, dj]); windows overlap, so accumulate, then crop the padding off."],
    solution=src("""
    import numpy as np


    def conv2d_backward(x, weight, bias, stride, padding, grad_out):
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        ho, wo = grad_out.shape[2:]
        p = padding
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        dxp = np.zeros_like(xp)
        dw = np.zeros_like(weight)
        for di in range(kh):
            for dj in range(kw):
                win = (slice(None), slice(None), slice(di, di + stride * ho, stride),
                       slice(dj, dj + stride * wo, stride))
                dw[:, :, di, dj] = np.einsum("nohw,nchw->oc", grad_out, xp[win])
                dxp[win] += np.einsum("nohw,oc->nchw", grad_out, weight[:, :, di, dj])
        return dxp[:, :, p:p + h, p:p + w], dw, grad_out.sum(axis=(0, 2, 3))
    """),
    outputs={"conv2d_backward": ("dx", "dweight", "dbias")}, cases=_bwd_cases, reference=autograd_reference,
    mistakes=[Mistake("dx matches a full convolution of grad_out with the kernel NOT rotated by 180 degrees: "
                      "the input gradient correlates grad_out with the flipped kernel", _bwd_alt_unflipped)],
    mutants=[
        Mutant("= for += in dx", ("dxp[win] += np.einsum", "dxp[win] = np.einsum")),
        Mutant("dbias not summed over the batch", ("grad_out.sum(axis=(0, 2, 3))", "grad_out.sum(axis=(2, 3))"),
               mentions="sum over the batch"),
        Mutant("padding cropped from the wrong side", ("dxp[:, :, p:p + h, p:p + w]", "dxp[:, :, :h, :w]")),
    ],
)

EXERCISES = [conv_output_size, conv2d_forward, conv2d_backward]
