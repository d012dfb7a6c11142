"""The fused CUDA kernels of deepgrad.kernels.cuda_fused: their NumPy references against torch (CPU), every CUDA
source compiled by nvcc (CPU, skipped without nvcc) and, on a GPU, every kernel against its reference
(``test_fused_*_cuda``; scripts/gpu_check.sh runs them with DEEPGRAD_CUDA_FUSED=1).
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import deepgrad as dg
from deepgrad.kernels import cuda_fused as F
from deepgrad.kernels import cuda_fused_sources

needs_cuda = pytest.mark.skipif(not dg.cuda_is_available(), reason="no CUDA device (CuPy)")
RNG = np.random.default_rng(0)


def rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


def grads_of(out, inputs, upstream):
    """torch's gradients of sum(out * upstream) with respect to ``inputs``."""
    return torch.autograd.grad(out, inputs, torch.tensor(upstream))


def t(a):
    return torch.tensor(a, requires_grad=True)


# ----------------------------------------------------------------------------- the switch
def test_fused_kernels_are_off_by_default(monkeypatch):
    monkeypatch.delenv(F.ENV_FLAG, raising=False)
    assert not F.enabled()
    monkeypatch.setenv(F.ENV_FLAG, "1")
    assert F.enabled() == dg.cuda_is_available()  # the flag alone does nothing without a GPU
    assert not F.applies(np.zeros(3, np.float32))  # NumPy arrays never take the GPU path


# ----------------------------------------------------------------------------- references vs torch
def test_lstm_cell_reference_matches_torch():
    b, hidden = 3, 4
    gates, c_prev, dh, dc = rand(b, 4 * hidden), rand(b, hidden), rand(b, hidden), rand(b, hidden)
    h, c, acts, tanh_c = F.lstm_cell_forward_reference(gates.copy(), c_prev)
    tg, tc = t(gates), t(c_prev)
    i, f, g, o = tg.chunk(4, dim=1)
    c_t = torch.sigmoid(f) * tc + torch.sigmoid(i) * torch.tanh(g)
    h_t = torch.sigmoid(o) * torch.tanh(c_t)
    np.testing.assert_allclose(h, h_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(c, c_t.detach().numpy(), rtol=1e-12)
    want = torch.autograd.grad((h_t * torch.tensor(dh)).sum() + (c_t * torch.tensor(dc)).sum(), (tg, tc))
    dgates, dc_prev = F.lstm_cell_backward_reference(dh, dc, acts, tanh_c, c_prev)
    np.testing.assert_allclose(dgates, want[0].numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dc_prev, want[1].numpy(), rtol=1e-10, atol=1e-12)


def test_gru_cell_reference_matches_torch():
    b, hidden = 3, 5
    gi, gh, hp, dh = rand(b, 3 * hidden), rand(b, 3 * hidden), rand(b, hidden), rand(b, hidden)
    h, acts, hn = F.gru_cell_forward_reference(gi, gh, hp)
    tgi, tgh, thp = t(gi), t(gh), t(hp)
    ir, iz, i_n = tgi.chunk(3, dim=1)
    hr, hz, h_n = tgh.chunk(3, dim=1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    h_t = (1 - z) * torch.tanh(i_n + r * h_n) + z * thp
    np.testing.assert_allclose(h, h_t.detach().numpy(), rtol=1e-12)
    want = grads_of(h_t, (tgi, tgh, thp), dh)
    for got, ref in zip(F.gru_cell_backward_reference(dh, acts, hn, hp), want):
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_reference_matches_torch(reduction):
    logits = rand(6, 5) * 4
    target = np.array([0, 4, -100, 2, 2, 1])
    loss, lse = F.cross_entropy_forward_reference(logits, target)
    tl = t(logits)
    want = torch.nn.functional.cross_entropy(tl, torch.tensor(target), reduction="none")
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(lse, torch.logsumexp(tl, 1).detach().numpy(), rtol=1e-12)
    upstream = rand(6) if reduction == "none" else np.float64(1.7)
    out = torch.nn.functional.cross_entropy(tl, torch.tensor(target), reduction=reduction)
    (want_grad,) = grads_of(out, (tl,), upstream)
    rows = F.cross_entropy_row_grads(target, upstream, reduction, dtype=np.float64)
    got = F.cross_entropy_backward_reference(logits, target, lse, rows)
    np.testing.assert_allclose(got, want_grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_reference_matches_torch(affine):
    x, g = rand(4, 3, 5) * 2 + 1, rand(4, 3, 5)
    w, bias = (rand(3), rand(3)) if affine else (None, None)
    out, xhat, mean, var, invstd = F.batch_norm_train_forward_reference(x, w, bias, 1e-5)
    tx = t(x)
    tw, tb = (t(w), t(bias)) if affine else (None, None)
    want = torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True, eps=1e-5)
    np.testing.assert_allclose(out, want.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=(0, 2)), rtol=1e-12)
    dx, dw, db = F.batch_norm_train_backward_reference(g, xhat, invstd, w)
    want_grads = grads_of(want, (tx, tw, tb) if affine else (tx,), g)
    np.testing.assert_allclose(dx, want_grads[0].numpy(), rtol=1e-9, atol=1e-11)
    if affine:
        np.testing.assert_allclose(dw, want_grads[1].numpy(), rtol=1e-10)
        np.testing.assert_allclose(db, want_grads[2].numpy(), rtol=1e-10)


ADAM_CASES = [dict(weight_decay=0.0), dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled=True),
              dict(maximize=True)]


@pytest.mark.parametrize("case", ADAM_CASES, ids=["plain", "l2", "adamw", "maximize"])
def test_adam_reference_matches_torch(case):
    init, steps = [rand(3, 4), rand(5)], [[rand(3, 4), rand(5)] for _ in range(3)]
    lr, (b1, b2), eps = 0.05, (0.8, 0.95), 1e-8
    wd, decoupled, maximize = case.get("weight_decay", 0.0), case.get("decoupled", False), case.get("maximize", False)
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls(tp, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, maximize=maximize)
    params = [a.copy() for a in init]
    m, v = [np.zeros_like(a) for a in init], [np.zeros_like(a) for a in init]
    for k, grads in enumerate(steps, start=1):
        for p, g in zip(tp, grads):
            p.grad = torch.tensor(g)
        opt.step()
        F.adam_reference(params, grads, m, v, lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd,
                         step_size=lr / (1 - b1**k), bias2_sqrt=np.sqrt(1 - b2**k), decoupled=decoupled,
                         maximize=maximize)
    for a, p in zip(params, tp):
        np.testing.assert_allclose(a, p.detach().numpy(), rtol=1e-10, atol=1e-12)


SGD_CASES = [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True, weight_decay=0.01),
             dict(momentum=0.5, dampening=0.3, maximize=True)]


@pytest.mark.parametrize("case", SGD_CASES, ids=["plain", "momentum", "nesterov", "dampening"])
def test_sgd_reference_matches_torch(case):
    init, steps = [rand(3, 4), rand(5)], [[rand(3, 4), rand(5)] for _ in range(3)]
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    opt = torch.optim.SGD(tp, lr=0.1, **case)
    params, bufs = [a.copy() for a in init], [np.zeros_like(a) for a in init]
    for k, grads in enumerate(steps):
        for p, g in zip(tp, grads):
            p.grad = torch.tensor(g)
        opt.step()
        F.sgd_reference(params, grads, bufs, lr=0.1, first_step=k == 0, **case)
    for a, p in zip(params, tp):
        np.testing.assert_allclose(a, p.detach().numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- nvcc
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) is not installed")
def test_every_kernel_source_compiles_with_nvcc(tmp_path):
    """Each source exactly as CuPy's RawKernel receives it (extern "C", no headers), float32 and float64, compiled to
    PTX for sm_90 (H100/H200) with every warning an error. One nvcc run per dtype (nvcc's start-up is most of
    the cost): each kernel's whole source goes in its own namespace, so the preludes do not collide and the
    extern "C" entry points keep their plain names."""

    def compile_dtype(dtype):
        unit = "".join(f"namespace unit_{name} {{\n{cuda_fused_sources.source(name, dtype)}\n}}\n"
                       for name in cuda_fused_sources.KERNELS)
        src = tmp_path / f"fused_{dtype}.cu"
        src.write_text(unit)
        ptx = src.with_suffix(".ptx")
        proc = subprocess.run(["nvcc", "--ptx", "-arch=sm_90", "-Werror", "all-warnings", str(src), "-o", str(ptx)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{src.name}:\n{proc.stderr}"
        text = ptx.read_text()
        missing = [name for name in cuda_fused_sources.KERNELS if f".entry {name}(" not in text]
        assert not missing, f"{dtype}: no unmangled entry point for {missing}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(compile_dtype, ("float32", "float64")))


# ----------------------------------------------------------------------------- kernels vs references (GPU)
@pytest.fixture
def fused_on(monkeypatch):
    monkeypatch.setenv(F.ENV_FLAG, "1")
    import cupy

    return cupy


def _close(got, want, dtype):
    tol = 2e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got.get(), want.get(), rtol=tol, atol=tol)


DTYPES = [np.float32, np.float64]


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_lstm_cell_cuda(fused_on, dtype):
    cp = fused_on
    b, hidden = 37, 19
    gates, c_prev, dh, dc = (cp.asarray(rand(*s, dtype=dtype)) for s in [(b, 4 * hidden)] + [(b, hidden)] * 3)
    assert F.applies(gates, c_prev)
    want = F.lstm_cell_forward_reference(gates.copy(), c_prev)
    got = F.lstm_cell_forward(gates.copy(), c_prev)
    for x, y in zip(got, want):
        _close(x, y, dtype)
    for x, y in zip(F.lstm_cell_backward(dh, dc, want[2], want[3], c_prev),
                    F.lstm_cell_backward_reference(dh, dc, want[2], want[3], c_prev)):
        _close(x, y, dtype)
    # writing into row slices of bigger buffers, the state in place (c over c_prev, dc_prev over dc_next)
    big = cp.zeros((3 * b, hidden), dtype)
    c_state = c_prev.copy()
    h, c, _, tc = F.lstm_cell_forward(gates.copy(), c_state, out=(big[:b], c_state, big[2 * b:]))
    assert h.data.ptr == big.data.ptr and c is c_state
    for x, y in zip((big[:b], c_state, big[2 * b:]), (want[0], want[1], want[3])):
        _close(x, y, dtype)
    dc_state = dc.copy()
    F.lstm_cell_backward(dh, dc_state, want[2], want[3], c_prev, out=(cp.empty_like(gates), dc_state))
    _close(dc_state, F.lstm_cell_backward_reference(dh, dc, want[2], want[3], c_prev)[1], dtype)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_gru_cell_cuda(fused_on, dtype):
    cp = fused_on
    b, hidden = 37, 19
    gi, gh = cp.asarray(rand(b, 3 * hidden, dtype=dtype)), cp.asarray(rand(b, 3 * hidden, dtype=dtype))
    hp, dh = cp.asarray(rand(b, hidden, dtype=dtype)), cp.asarray(rand(b, hidden, dtype=dtype))
    want = F.gru_cell_forward_reference(gi, gh, hp)
    for x, y in zip(F.gru_cell_forward(gi, gh, hp), want):
        _close(x, y, dtype)
    for x, y in zip(F.gru_cell_backward(dh, want[1], want[2], hp), F.gru_cell_backward_reference(dh, *want[1:], hp)):
        _close(x, y, dtype)
    state = hp.copy()  # h' written over h in place
    F.gru_cell_forward(gi, gh, state, out=(state, cp.empty_like(gi), cp.empty_like(hp)))
    _close(state, want[0], dtype)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classes", [3, 1000, 70000])  # one partial warp; several strides; rows longer than a grid
def test_fused_cross_entropy_cuda(fused_on, dtype, classes):
    cp = fused_on
    rows = 33
    logits = cp.asarray(rand(rows, classes, dtype=dtype) * 5)
    target = cp.asarray(RNG.integers(0, classes, rows))
    target[3] = -100
    want = F.cross_entropy_forward_reference(logits, target)
    got = F.cross_entropy_forward(logits, target)
    for x, y in zip(got, want):
        _close(x, y, dtype)
    row_grads = F.cross_entropy_row_grads(target, 0.5, "mean", dtype=dtype)
    _close(F.cross_entropy_backward(logits, target, got[1], row_grads),
           F.cross_entropy_backward_reference(logits, target, want[1], row_grads), dtype)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(8, 3, 5), (64, 32, 1024), (2, 300, 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_fused_batch_norm_cuda(fused_on, dtype, shape, affine):
    cp = fused_on
    x, g = cp.asarray(rand(*shape, dtype=dtype) * 3 + 2), cp.asarray(rand(*shape, dtype=dtype))
    w, b = (cp.asarray(rand(shape[1], dtype=dtype)), cp.asarray(rand(shape[1], dtype=dtype))) if affine else (None,) * 2
    want = F.batch_norm_train_forward_reference(x, w, b, 1e-5)
    got = F.batch_norm_train_forward(x, w, b, 1e-5)
    for x1, y1 in zip(got, want):
        _close(x1, y1, dtype)
    for x1, y1 in zip(F.batch_norm_train_backward(g, got[1], got[4], w),
                      F.batch_norm_train_backward_reference(g, want[1], want[4], w)):
        np.testing.assert_allclose(x1.get(), y1.get(), rtol=1e-4 if dtype == np.float32 else 1e-9,
                                   atol=1e-4 if dtype == np.float32 else 1e-9)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ADAM_CASES, ids=["plain", "l2", "adamw", "maximize"])
def test_fused_adam_multi_tensor_cuda(fused_on, dtype, case):
    cp = fused_on
    shapes = [(3, 4), (1,), (257,), (64, 65)]
    init = [cp.asarray(rand(*s, dtype=dtype)) for s in shapes]
    sides = {k: ([a.copy() for a in init], [cp.zeros_like(a) for a in init], [cp.zeros_like(a) for a in init])
             for k in ("ref", "fused")}
    for step in range(1, 4):
        grads = [cp.asarray(rand(*s, dtype=dtype)) for s in shapes]
        kw = dict(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=case.get("weight_decay", 0.0),
                  step_size=0.05 / (1 - 0.9**step), bias2_sqrt=float(np.sqrt(1 - 0.999**step)),
                  decoupled=case.get("decoupled", False), maximize=case.get("maximize", False))
        F.adam_reference(*sides["ref"][:1], grads, *sides["ref"][1:], **kw)
        F.adam_multi_tensor(*sides["fused"][:1], grads, *sides["fused"][1:], **kw)
    for group_ref, group_fused in zip(sides["ref"], sides["fused"]):
        for x, y in zip(group_fused, group_ref):
            _close(x, y, dtype)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SGD_CASES, ids=["plain", "momentum", "nesterov", "dampening"])
def test_fused_sgd_multi_tensor_cuda(fused_on, dtype, case):
    cp = fused_on
    shapes = [(3, 4), (1,), (257,), (64, 65)]
    init = [cp.asarray(rand(*s, dtype=dtype)) for s in shapes]
    sides = {k: ([a.copy() for a in init], [cp.zeros_like(a) for a in init]) for k in ("ref", "fused")}
    for step in range(3):
        grads = [cp.asarray(rand(*s, dtype=dtype)) for s in shapes]
        F.sgd_reference(sides["ref"][0], grads, sides["ref"][1], lr=0.1, first_step=step == 0, **case)
        F.sgd_multi_tensor(sides["fused"][0], grads, sides["fused"][1], lr=0.1, first_step=step == 0, **case)
    for group_ref, group_fused in zip(sides["ref"], sides["fused"]):
        for x, y in zip(group_fused, group_ref):
            _close(x, y, dtype)


# ----------------------------------------------------------------------------- the hooked layers (GPU)
def _run_flagged(monkeypatch, flag: str, fn):
    monkeypatch.setenv(F.ENV_FLAG, flag)
    return fn()


@needs_cuda
@pytest.mark.parametrize("affine", [True, False])
def test_fused_batch_norm_layer_matches_the_plain_cuda_path(monkeypatch, affine):
    x = rand(6, 4, 5, 5, dtype=np.float32) * 2 + 1
    up = rand(6, 4, 5, 5, dtype=np.float32)

    def run():
        dg.manual_seed(0)
        bn = dg.nn.BatchNorm2d(4, affine=affine).to("cuda")
        xd = dg.tensor(x, device="cuda", requires_grad=True)
        out = bn(xd)
        (out * dg.tensor(up, device="cuda")).sum().backward()
        grads = [xd.grad] + ([bn.weight.grad, bn.bias.grad] if affine else [])
        return [out, *grads, bn.running_mean, bn.running_var]

    plain, fused = _run_flagged(monkeypatch, "0", run), _run_flagged(monkeypatch, "1", run)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(), rtol=1e-4, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.05, weight_decay=0.01)), ("AdamW", dict(lr=0.05))])
def test_fused_optimizer_step_matches_the_plain_cuda_path(monkeypatch, name, kwargs):
    init = [rand(3, 4, dtype=np.float32), rand(7, dtype=np.float32)]
    grads = [[rand(*a.shape, dtype=np.float32) for a in init] for _ in range(3)]

    def run():
        params = [dg.tensor(a, device="cuda", requires_grad=True) for a in init]
        opt = getattr(dg.optim, name)(params, **kwargs)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = dg.tensor(g, device="cuda")
            opt.step()
        return params, opt.state_dict()

    plain, plain_state = _run_flagged(monkeypatch, "0", run)
    fused, fused_state = _run_flagged(monkeypatch, "1", run)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(), rtol=1e-5, atol=1e-6)
    assert plain_state["state"].keys() == fused_state["state"].keys()
    for k, st in plain_state["state"].items():
        assert st.keys() == fused_state["state"][k].keys()


def test_the_flag_leaves_cpu_training_alone(monkeypatch):
    """With the flag on and no GPU tensor, the hooks step aside: the same numbers as with it off."""
    def run():
        dg.manual_seed(0)
        model = dg.nn.Sequential(dg.nn.Linear(3, 4), dg.nn.BatchNorm1d(4), dg.nn.Linear(4, 1))
        opts = [dg.optim.SGD(model[0].parameters(), lr=0.1, momentum=0.9), dg.optim.Adam(model[2].parameters())]
        for _ in range(2):
            model(dg.tensor(rand(5, 3, dtype=np.float32))).sum().backward()
            for o in opts:
                o.step()
        return [p.detach().numpy().copy() for p in model.parameters()]

    state = RNG.bit_generator.state
    off = _run_flagged(monkeypatch, "0", run)
    RNG.bit_generator.state = state
    on = _run_flagged(monkeypatch, "1", run)
    for a, b in zip(on, off):
        np.testing.assert_array_equal(a, b)
