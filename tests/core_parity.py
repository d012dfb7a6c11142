"""Shared helpers of the core-engine tests: run one computation in deepgrad and in torch on the
same inputs, then compare outputs, dtypes, requires_grad and input gradients.

The gradient check contracts every floating output with a *random* upstream gradient (an
all-ones upstream hides bugs that cancel on summation), exactly as gradcheck does.
"""

from __future__ import annotations

import numpy as np
import torch
from conftest import devices  # noqa: F401  (re-exported: the devices the parity tests run on)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import deepgrad as dg

# Small, deterministic hypothesis runs: the whole core suite must stay fast on one core.
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Shapes with empty, size-1 and 0-d cases; pairs that broadcast against each other.
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
nonempty_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=4)
seeds = st.integers(0, 2**16)

FWD_RTOL, FWD_ATOL = 1e-5, 1e-6  # float32 forward
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5  # float32 gradients


def randn(shape, seed=0, dtype=np.float32, low=None, high=None) -> np.ndarray:
    """Seeded standard-normal data (or uniform in [low, high) when both are given)."""
    rng = np.random.default_rng(seed)
    if low is not None:
        return rng.uniform(low, high, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def host(x) -> np.ndarray:
    """A deepgrad or torch tensor (or array) as a NumPy array on the host."""
    if isinstance(x, dg.Tensor):
        return np.asarray(x.detach().cpu().array)
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def dtype_name(x) -> str:
    """'float32', 'int64', 'bool', ... for either library."""
    if isinstance(x, torch.Tensor):
        return str(x.dtype).replace("torch.", "")
    return str(x.dtype)


def assert_close(actual, expected, rtol=FWD_RTOL, atol=FWD_ATOL, what="value", scaled=False) -> None:
    """Shapes equal and values close (exact for integer/bool data). ``scaled``: ``atol`` is relative to the
    reference's largest magnitude (sums of many float32 products, e.g. a convolution's, err in proportion)."""
    a, e = host(actual), host(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch {e.shape}"
    if e.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=what)
    else:
        if scaled and e.size:
            atol = atol * max(1.0, float(np.nanmax(np.abs(e))) if np.isfinite(e).any() else 1.0)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def make_pair(array, device="cpu", requires_grad=False):
    """The same data as a deepgrad tensor on ``device`` and a torch CPU tensor."""
    d = dg.tensor(array, device=device)
    t = torch.tensor(array)
    if requires_grad:
        d.requires_grad_(True)
        t.requires_grad_(True)
    return d, t


def check(dg_fn, torch_fn, *arrays, device="cpu", requires_grad=None, rtol=FWD_RTOL, atol=FWD_ATOL,
          grad_rtol=GRAD_RTOL, grad_atol=GRAD_ATOL, seed=0, backward=True, scaled=False):
    """Run ``dg_fn`` / ``torch_fn`` on the same ``arrays`` (NumPy arrays become tensors, anything
    else is passed as is) and compare outputs and, through a random upstream gradient, the input
    gradients. ``requires_grad`` defaults to every floating array; ``scaled`` makes the tolerances relative
    to each reference's magnitude (see :func:`assert_close`). Returns both outputs."""
    arrays = [np.asarray(a) if isinstance(a, np.generic) else a for a in arrays]
    if requires_grad is None:
        requires_grad = [isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in arrays]
    dg_in, th_in = [], []
    for a, rg in zip(arrays, requires_grad):
        if isinstance(a, np.ndarray):
            d, t = make_pair(a, device, rg)
        else:
            d = t = a
        dg_in.append(d)
        th_in.append(t)

    # The dtype a gradient arrives in, before the leaf casts it: a float64 gradient for a float32
    # input means some backward silently promoted (slow, and wrong for mixed precision).
    arriving = {}
    for i, d in enumerate(dg_in):
        if isinstance(d, dg.Tensor) and d.requires_grad:
            d.register_hook(lambda g, i=i: arriving.update({i: g.dtype}))  # returns None: grad unchanged
    out_d, out_t = dg_fn(*dg_in), torch_fn(*th_in)
    outs_d, outs_t = _outputs(out_d), _outputs(out_t)
    assert len(outs_d) == len(outs_t), f"{len(outs_d)} outputs, torch gives {len(outs_t)}"
    for i, (od, ot) in enumerate(zip(outs_d, outs_t)):
        assert isinstance(od, dg.Tensor), f"output {i} is a {type(od).__name__}, not a Tensor"
        assert dtype_name(od) == dtype_name(ot), f"output {i}: dtype {od.dtype} != torch {ot.dtype}"
        assert od.requires_grad == ot.requires_grad, f"output {i}: requires_grad {od.requires_grad}"
        if device != "cpu":
            assert od.device.type == "cuda", f"output {i} left the GPU"
        assert_close(od, ot, rtol, atol, f"forward output {i}", scaled)

    if not backward or not any(ot.requires_grad for ot in outs_t):
        return out_d, out_t
    rng = np.random.default_rng(seed + 1)
    loss_d = loss_t = 0
    for od, ot in zip(outs_d, outs_t):
        if ot.requires_grad:
            up = rng.standard_normal(tuple(ot.shape)).astype(host(ot).dtype)
            loss_d = loss_d + (od * dg.tensor(up, device=device)).sum()
            loss_t = loss_t + (ot * torch.tensor(up)).sum()
    loss_d.backward()
    loss_t.backward()
    for i, (d, t) in enumerate(zip(dg_in, th_in)):
        if not isinstance(t, torch.Tensor) or not t.requires_grad:
            continue
        if t.grad is None:  # torch saw no path to this input: deepgrad must give none or zeros
            assert d.grad is None or not host(d.grad).any(), f"input {i}: unexpected gradient"
            continue
        assert d.grad is not None, f"input {i}: no gradient, torch has one"
        assert d.grad.dtype == d.dtype == arriving[i], f"input {i}: grad arrived as {arriving[i]}, input {d.dtype}"
        assert d.grad.device == d.device, f"input {i}: grad on {d.grad.device}, input on {d.device}"
        assert_close(d.grad, t.grad, grad_rtol, grad_atol, f"gradient of input {i}", scaled)
    return out_d, out_t


def double_backward(lib, fn, xs, materialize=False):
    """First and second derivatives of ``fn(lib, *xs)`` in either library: ``g = grad(y, xs, v,
    create_graph=True)`` under a random upstream ``v``, then ``grad(sum(g_k * w_k), xs)`` for random ``w``
    (the double-backward half of the harness; random contractions, as for first derivatives). Returns two
    lists of NumPy arrays, None where a gradient is unused (zeros instead with ``materialize``)."""
    y = fn(lib, *xs)
    up = lib.tensor(np.random.default_rng(1).standard_normal(tuple(y.shape)), dtype=lib.float64)
    gs = lib.autograd.grad(y, xs, grad_outputs=up, create_graph=True, allow_unused=True)
    w = [lib.tensor(np.random.default_rng(2 + k).standard_normal(tuple(x.shape)), dtype=lib.float64)
         for k, x in enumerate(xs)]
    total = sum((g * wk).sum() for g, wk in zip(gs, w) if g is not None and g.requires_grad)
    second = lib.autograd.grad(total, xs, allow_unused=True, materialize_grads=materialize)
    return ([None if g is None else g.detach().numpy() for g in gs],
            [None if s is None else s.detach().numpy() for s in second])
