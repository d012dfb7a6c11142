"""Pooling (max, average, sum) forward and backward."""

from __future__ import annotations

import numpy as np

from ..exercise import Case, Exercise, Mistake, Mutant
from ._util import T, arr, autograd_reference, distinct, grad_case, normal, src


def _geom(rng, overlap: bool | None = None):
    k = int(rng.integers(2, 4))
    s = int(rng.integers(1, k + 1)) if overlap is None else (int(rng.integers(1, k)) if overlap else k)
    p = int(rng.integers(0, k // 2 + 1))
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    low = k + s if overlap else k + 1  # overlapping windows: at least two along each axis, so they do overlap
    h, w = int(rng.integers(low, 10)), int(rng.integers(low, 10))
    return (n, c, h, w), k, s, p


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def _pool(kind: str):
    def fn(x, kernel_size, stride, padding=0, **_):
        from ...nn import functional as F

        f = {"max": F.max_pool2d, "avg": F.avg_pool2d, "sum": F.sum_pool2d}[kind]
        return (f(x, kernel_size, stride, padding),)

    return fn


def _np_pool(x, k, s, p, reduce, fill=0.0):
    """A NumPy pooling for the mistake recognisers (``fill``: the padding value)."""
    n, c, h, w = x.shape
    ho, wo = _out(h, k, s, p), _out(w, k, s, p)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    win = np.stack([xp[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k)])
    return reduce(win, axis=0)


def _pool_statement(kind: str, body: str) -> str:
    return src(f"""
    Implement {kind} pooling with NumPy, as torch.nn.functional.{kind}_pool2d with a square window:
    x (N, C, H, W), kernel_size k, stride s, padding p (ints); output (N, C, H_out, W_out) with
    H_out = (H + 2p - k) // s + 1. {body}
    Keep x's dtype.
    """)


# ----------------------------------------------------------------------------- max pool
def _max_fwd_cases(rng):
    cases = []
    for i in range(6):
        shape, k, s, p = _geom(rng)
        p = max(p, 1) if i < 2 else p
        dtype = np.float32 if i % 2 else np.float64
        x = normal(rng, shape, dtype) - (2.0 if i < 2 else 0.0)  # all-negative windows at the border
        cases.append(Case("max_pool2d", {"x": x, "kernel_size": k, "stride": s, "padding": p}))
    return cases


maxpool_forward = Exercise(
    id="maxpool2d-forward", title="Max pooling forward (with padding)", topic="pooling", difficulty=1,
    question="What does max pooling do, and why is it used?",
    statement=_pool_statement("max", "Padding never wins a max: pad with -inf."),
    starter=src("""
    import numpy as np


    def max_pool2d(x, kernel_size, stride, padding):
        ...  # your code here
    """),
    hints=["Loop over the k * k offsets (i, j); each is a strided slice xp[:, :, i : i + s*H_out : s, j : ...].",
           "Take the running np.maximum over the offsets.",
           "Padded positions must never be the max: np.pad(..., constant_values=-np.inf)."],
    solution=src("""
    import numpy as np


    def max_pool2d(x, kernel_size, stride, padding):
        k, s, p = kernel_size, stride, padding
        n, c, h, w = x.shape
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
        out = np.full((n, c, ho, wo), -np.inf, dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                out = np.maximum(out, xp[:, :, i:i + s * ho:s, j:j + s * wo:s])
        return out
    """),
    outputs={"max_pool2d": ("out",)}, cases=_max_fwd_cases,
    reference=lambda c: arr(_pool("max")(T(c.args["x"]), c.args["kernel_size"], c.args["stride"],
                                         c.args["padding"])[0]),
    mistakes=[Mistake("you padded with zeros: a zero pad wins windows of negative values; pad with -inf",
                      lambda c: _np_pool(c.args["x"], c.args["kernel_size"], c.args["stride"], c.args["padding"],
                                         np.max, 0.0).astype(c.args["x"].dtype))],
    mutants=[
        Mutant("zero padding", ("constant_values=-np.inf", "constant_values=0"), mentions="pad with -inf"),
        Mutant("a running max that starts at 0", ("np.full((n, c, ho, wo), -np.inf, dtype=x.dtype)",
                                                  "np.zeros((n, c, ho, wo), dtype=x.dtype)")),
        Mutant("output one short", ("(h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1",
                                    "(h + 2 * p - k) // s, (w + 2 * p - k) // s")),
    ],
)


def _max_bwd_cases(rng):
    cases = []
    for i in range(5):
        shape, k, s, _ = _geom(rng, overlap=i < 3)
        x = distinct(rng, shape)
        ho, wo = _out(shape[2], k, s, 0), _out(shape[3], k, s, 0)
        args = {"x": x, "kernel_size": k, "stride": s, "grad_out": normal(rng, shape[:2] + (ho, wo))}
        cases.append(grad_case("max_pool2d_backward", args, _pool("max"), ("x",), ("grad_out",),
                               note="overlapping windows" if s < k else ""))
    return cases


def _max_bwd_alt(c, accumulate=True, spread=False):
    x, k, s, g = c.args["x"], c.args["kernel_size"], c.args["stride"], c.args["grad_out"]
    n, ch, ho, wo = g.shape
    dx = np.zeros_like(x)
    for a in range(ho):
        for b in range(wo):
            win = x[:, :, a * s:a * s + k, b * s:b * s + k].reshape(n, ch, -1)
            if spread:
                dx[:, :, a * s:a * s + k, b * s:b * s + k] += g[:, :, a, b][..., None, None] / (k * k)
                continue
            am = win.argmax(-1)
            for ni in range(n):
                for ci in range(ch):
                    r, q = divmod(int(am[ni, ci]), k)
                    if accumulate:
                        dx[ni, ci, a * s + r, b * s + q] += g[ni, ci, a, b]
                    else:
                        dx[ni, ci, a * s + r, b * s + q] = g[ni, ci, a, b]
    return dx


maxpool_backward = Exercise(
    id="maxpool2d-backward", title="Max pooling backward (overlapping windows)", topic="pooling", difficulty=2,
    question="How does the gradient flow through a max-pooling layer?",
    statement=src("""
    For out = max_pool2d(x, kernel_size, stride) (torch semantics, no padding, square window), implement
    max_pool2d_backward(x, kernel_size, stride, grad_out) -> dx with NumPy, given grad_out = dL/dout.
    Windows may overlap (stride < kernel_size). x is float64 with distinct values.
    """),
    starter=src("""
    import numpy as np


    def max_pool2d_backward(x, kernel_size, stride, grad_out):
        ...  # your code here
    """),
    hints=["Only the arg-max of each window receives that window's gradient; the others get 0.",
           "With overlapping windows one input can be the max of several windows: accumulate (+=), never assign.",
           "Loop over output positions (a, b); win = x[:, :, a*s:a*s+k, b*s:b*s+k]; compare win with its max."],
    solution=src("""
    import numpy as np


    def max_pool2d_backward(x, kernel_size, stride, grad_out):
        k, s = kernel_size, stride
        dx = np.zeros_like(x)
        for a in range(grad_out.shape[2]):
            for b in range(grad_out.shape[3]):
                win = x[:, :, a * s:a * s + k, b * s:b * s + k]
                mask = win == win.max(axis=(2, 3), keepdims=True)
                dx[:, :, a * s:a * s + k, b * s:b * s + k] += mask * grad_out[:, :, a:a + 1, b:b + 1]
        return dx
    """),
    outputs={"max_pool2d_backward": ("dx",)}, cases=_max_bwd_cases, reference=lambda c: autograd_reference(c)[0],
    mistakes=[Mistake("an input that is the max of several overlapping windows must receive the SUM of their "
                      "gradients: accumulate with +=, do not assign", lambda c: _max_bwd_alt(c, accumulate=False),
                      lambda c: c.args["stride"] < c.args["kernel_size"]),
              Mistake("you spread the gradient over the window (that is average pooling): only the max gets it",
                      lambda c: _max_bwd_alt(c, spread=True))],
    mutants=[
        Mutant("assigns at the max instead of accumulating", source=src("""
            import numpy as np


            def max_pool2d_backward(x, kernel_size, stride, grad_out):
                k, s = kernel_size, stride
                dx = np.zeros_like(x)
                for a in range(grad_out.shape[2]):
                    for b in range(grad_out.shape[3]):
                        win = x[:, :, a * s:a * s + k, b * s:b * s + k]
                        mask = win == win.max(axis=(2, 3), keepdims=True)
                        view = dx[:, :, a * s:a * s + k, b * s:b * s + k]
                        view[mask] = np.broadcast_to(grad_out[:, :, a:a + 1, b:b + 1], win.shape)[mask]
                return dx
            """), mentions="accumulate with +="),
        Mutant("= for += over the window", ("dx[:, :, a * s:a * s + k, b * s:b * s + k] += mask",
                                            "dx[:, :, a * s:a * s + k, b * s:b * s + k] = mask")),
        Mutant("spreads the gradient like average pooling", ("+= mask * grad_out[:, :, a:a + 1, b:b + 1]",
                                                            "+= grad_out[:, :, a:a + 1, b:b + 1] / (k * k)"),
               mentions="spread the gradient"),
    ],
)


# ----------------------------------------------------------------------------- average and sum pooling
def _fb_cases(rng, kind: str):
    cases = []
    for i in range(3):
        shape, k, s, p = _geom(rng)
        p = 0 if kind == "sum" else (max(p, 1) if i == 0 else p)
        dtype = np.float32 if i % 2 else np.float64
        args = {"x": normal(rng, shape, dtype), "kernel_size": k, "stride": s}
        if kind == "avg":
            args["padding"] = p
        cases.append(Case(f"{kind}_pool2d", args))
    for j in range(3):
        shape, k, s, p = _geom(rng, overlap=True if j == 0 else None)  # overlapping windows accumulate
        p = 0 if kind == "sum" else (max(p, 1) if j == 0 else p)       # and the padding is cropped off
        ho, wo = _out(shape[2], k, s, p), _out(shape[3], k, s, p)
        args = {"x": normal(rng, shape), "kernel_size": k, "stride": s}
        if kind == "avg":
            args["padding"] = p
        args["grad_out"] = normal(rng, shape[:2] + (ho, wo))
        cases.append(grad_case(f"{kind}_pool2d_backward", args, _pool(kind), ("x",), ("grad_out",)))
    return cases


def _fb_ref(kind: str):
    def ref(c):
        if c.fd is not None:
            return autograd_reference(c)[0]
        a = c.args
        return arr(_pool(kind)(T(a["x"]), a["kernel_size"], a["stride"], a.get("padding", 0))[0])

    return ref


def _avg_exclude_pad(c):
    from ...nn import functional as F

    a = c.args
    return arr(F.avg_pool2d(T(a["x"]), a["kernel_size"], a["stride"], a["padding"], count_include_pad=False))


avgpool = Exercise(
    id="avgpool2d", title="Average pooling forward and backward", topic="pooling", difficulty=2,
    question="How does average pooling differ from max pooling?",
    statement=_pool_statement("avg", "Zero padding counts in the average (count_include_pad=True): every "
                              "window divides by k * k.\n"
                              "Implement avg_pool2d(x, kernel_size, stride, padding) -> out and\n"
                              "avg_pool2d_backward(x, kernel_size, stride, padding, grad_out) -> dx."),
    starter=src("""
    import numpy as np


    def avg_pool2d(x, kernel_size, stride, padding):
        ...  # your code here


    def avg_pool2d_backward(x, kernel_size, stride, padding, grad_out):
        ...  # your code here
    """),
    hints=["Forward: sum the k * k strided slices of the zero-padded input, divide by k * k.",
           "Backward: every input in a window receives grad_out / (k * k); overlapping windows accumulate.",
           "Accumulate into a padded buffer, then crop the padding off."],
    solution=src("""
    import numpy as np


    def _slices(i, j, s, ho, wo):
        return (slice(None), slice(None), slice(i, i + s * ho, s), slice(j, j + s * wo, s))


    def avg_pool2d(x, kernel_size, stride, padding):
        k, s, p = kernel_size, stride, padding
        n, c, h, w = x.shape
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        out = np.zeros((n, c, ho, wo), dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                out += xp[_slices(i, j, s, ho, wo)]
        return out / (k * k)


    def avg_pool2d_backward(x, kernel_size, stride, padding, grad_out):
        k, s, p = kernel_size, stride, padding
        n, c, h, w = x.shape
        ho, wo = grad_out.shape[2:]
        dxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                dxp[_slices(i, j, s, ho, wo)] += grad_out / (k * k)
        return dxp[:, :, p:p + h, p:p + w]
    """),
    outputs={"avg_pool2d": ("out",), "avg_pool2d_backward": ("dx",)}, cases=lambda rng: _fb_cases(rng, "avg"),
    reference=_fb_ref("avg"),
    mistakes=[Mistake("you averaged over the valid (unpadded) elements only; with count_include_pad=True the "
                      "zero padding counts and every window divides by k * k", _avg_exclude_pad,
                      lambda c: c.func == "avg_pool2d" and c.args["padding"] > 0)],
    mutants=[
        Mutant("padding excluded from the count", source=src("""
            import numpy as np


            def _pool(x, k, s, p):
                n, c, h, w = x.shape
                ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
                ones = np.pad(np.ones_like(x), ((0, 0), (0, 0), (p, p), (p, p)))
                tot = sum(xp[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k))
                cnt = sum(ones[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k))
                return tot / cnt


            def avg_pool2d(x, kernel_size, stride, padding):
                return _pool(x, kernel_size, stride, padding)


            def avg_pool2d_backward(x, kernel_size, stride, padding, grad_out):
                k, s, p = kernel_size, stride, padding
                n, c, h, w = x.shape
                ho, wo = grad_out.shape[2:]
                dxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
                for i in range(k):
                    for j in range(k):
                        dxp[:, :, i:i + s * ho:s, j:j + s * wo:s] += grad_out / (k * k)
                return dxp[:, :, p:p + h, p:p + w]
            """), mentions="count_include_pad"),
        Mutant("backward not divided by k * k", ("+= grad_out / (k * k)", "+= grad_out")),
        Mutant("padding cropped from the wrong side", ("dxp[:, :, p:p + h, p:p + w]", "dxp[:, :, :h, :w]")),
    ],
)

sumpool = Exercise(
    id="sumpool2d", title="Sum pooling forward and backward", topic="pooling", difficulty=1,
    question="What kinds of pooling are there?",
    statement=_pool_statement("sum", "No padding here (p = 0): each output is the SUM of its k x k window.\n"
                              "Implement sum_pool2d(x, kernel_size, stride) -> out and\n"
                              "sum_pool2d_backward(x, kernel_size, stride, grad_out) -> dx."),
    starter=src("""
    import numpy as np


    def sum_pool2d(x, kernel_size, stride):
        ...  # your code here


    def sum_pool2d_backward(x, kernel_size, stride, grad_out):
        ...  # your code here
    """),
    hints=["Sum the k * k strided slices x[:, :, i : i + s*H_out : s, j : j + s*W_out : s].",
           "The derivative of a sum is 1 for every term: each input receives the grad_out of every window "
           "containing it (accumulate)."],
    solution=src("""
    import numpy as np


    def sum_pool2d(x, kernel_size, stride):
        k, s = kernel_size, stride
        ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
        out = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                out += x[:, :, i:i + s * ho:s, j:j + s * wo:s]
        return out


    def sum_pool2d_backward(x, kernel_size, stride, grad_out):
        k, s = kernel_size, stride
        ho, wo = grad_out.shape[2:]
        dx = np.zeros_like(x)
        for i in range(k):
            for j in range(k):
                dx[:, :, i:i + s * ho:s, j:j + s * wo:s] += grad_out
        return dx
    """),
    outputs={"sum_pool2d": ("out",), "sum_pool2d_backward": ("dx",)}, cases=lambda rng: _fb_cases(rng, "sum"),
    reference=_fb_ref("sum"),
    mistakes=[Mistake("you averaged: sum pooling does not divide by the window size",
                      lambda c: _np_pool(c.args["x"], c.args["kernel_size"], c.args["stride"], 0, np.mean),
                      lambda c: c.func == "sum_pool2d")],
    mutants=[
        Mutant("averages", ("        out += x[:, :, i:i + s * ho:s, j:j + s * wo:s]\n    return out\n",
                            "        out += x[:, :, i:i + s * ho:s, j:j + s * wo:s]\n    return out / (k * k)\n"),
               mentions="does not divide"),
        Mutant("= for += in backward", ("dx[:, :, i:i + s * ho:s, j:j + s * wo:s] += grad_out",
                                        "dx[:, :, i:i + s * ho:s, j:j + s * wo:s] = grad_out")),
    ],
)


EXERCISES = [maxpool_forward, maxpool_backward, avgpool, sumpool]
