"""deepgrad.kernels.parallel (intra-op threads) and the conv kernels built on it: the batch-chunked,
multi-threaded conv must compute what the whole-batch kernels compute (bit for bit across thread counts),
and those what the direct per-offset reference computes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import deepgrad as dg
from deepgrad.kernels import conv as KC
from deepgrad.kernels import im2col as KI
from deepgrad.kernels import parallel


@pytest.fixture
def threads():
    """Set the thread count for one test, restoring the previous setting afterwards."""
    before = dg.get_num_threads()
    yield dg.set_num_threads
    dg.set_num_threads(before)


# ----------------------------------------------------------------------------- the runtime
@pytest.mark.parametrize("total,parts", [(10, 3), (3, 8), (1, 2), (64, 2), (7, 7)])
def test_split_covers_the_range_in_order(total, parts):
    ranges = parallel.split(total, parts)
    assert len(ranges) == min(total, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [hi - lo for lo, hi in ranges]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_parallel_for_runs_every_range_once_on_several_threads(threads):
    threads(2)
    seen, names = [], set()
    lock = threading.Lock()

    def body(lo, hi):
        with lock:
            seen.extend(range(lo, hi))
            names.add(threading.current_thread().name)
        return (lo, hi)

    results = parallel.parallel_for(10, body)
    assert sorted(seen) == list(range(10))
    assert results == parallel.split(10, 2)  # in range order
    assert len(names) == 2


def test_parallel_for_is_serial_with_one_thread_or_little_work(threads):
    threads(1)
    assert parallel.parallel_for(10, lambda lo, hi: (lo, hi)) == [(0, 10)]
    threads(2)
    assert parallel.parallel_for(10, lambda lo, hi: (lo, hi), min_items=6) == [(0, 10)]


def test_nested_regions_run_inline(threads):
    threads(2)
    inner = []

    def body(lo, hi):
        inner.append(parallel.parallel_for(4, lambda a, b: (a, b)))
        return lo

    parallel.parallel_for(2, body)
    assert inner == [[(0, 4)], [(0, 4)]]


def test_an_exception_in_any_range_propagates_and_the_runtime_recovers(threads):
    threads(2)

    def body(lo, hi):
        if lo > 0:
            raise ValueError(f"range {lo}-{hi} failed")
        return lo

    with pytest.raises(ValueError, match="range 1-2 failed"):
        parallel.parallel_for(2, body)
    assert parallel.parallel_for(2, lambda lo, hi: lo) == [0, 1]  # not left "busy"


def test_numpys_blas_runs_on_one_thread_and_is_lent_only_inside_blas_threads(threads):
    controllers = parallel._blas_controllers()
    if not controllers:
        pytest.skip("threadpoolctl cannot drive this BLAS")
    threads(2)
    assert all(c.num_threads == 1 for c in controllers)  # deepgrad's threads run around a one-thread BLAS
    with parallel.blas_threads():
        assert all(c.num_threads == 2 for c in controllers)
        assert parallel.parallel_for(4, lambda lo, hi: (lo, hi)) == [(0, 4)]  # no regions meanwhile
    assert all(c.num_threads == 1 for c in controllers)
    assert len(parallel.parallel_for(4, lambda lo, hi: (lo, hi))) == 2


@pytest.mark.parametrize("a_shape,b_shape", [
    ((300, 70), (70, 90)),  # rows of a split
    ((20, 300), (300, 500)),  # a short and b wide: columns of b split
    ((3, 50, 60), (60, 80)),  # N-D a as one tall matrix
    ((4, 5), (5, 6)),  # too small to split
    ((6, 40, 30), (6, 30, 20)),  # batched b: plain matmul
])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_parallel_matmul_equals_numpys(monkeypatch, threads, n_threads, a_shape, b_shape):
    threads(n_threads)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_MACS", 1000)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    out = parallel.matmul(a, b)
    assert out.shape == (a @ b).shape and out.dtype == (a @ b).dtype
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    f32 = parallel.matmul(a.astype(np.float32), b.astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="set_num_threads"):
        dg.set_num_threads(bad)


# ----------------------------------------------------------------------------- conv fast path
GEOMETRIES = [  # (N, C, H, W), (O, C/g, kh, kw), stride, padding, dilation, groups
    ((5, 3, 9, 8), (4, 3, 3, 3), 1, 1, 1, 1),
    ((6, 4, 10, 9), (6, 2, 3, 2), (2, 1), (1, 0), 1, 2),
    ((4, 2, 11, 11), (3, 2, 3, 3), 1, 2, 2, 1),
    ((7, 1, 12, 12), (8, 1, 5, 5), 2, 2, 1, 1),  # O > 2C: the GEMM + col2im input grad
    ((3, 6, 7, 7), (6, 1, 3, 3), 1, 1, 1, 6),  # depthwise
    # stride 1 takes whole padded rows (kernels.conv.row_columns): O > 2C (GEMM + col2im on rows), no padding,
    # a 1x1 kernel (no spare column), a wide width dilation, grouped 1-row images
    ((5, 2, 9, 7), (6, 2, 3, 3), 1, 0, 1, 1),
    ((4, 3, 6, 5), (5, 3, 1, 1), 1, 0, 1, 1),
    ((3, 2, 5, 4), (7, 2, 2, 3), 1, (1, 2), (1, 3), 1),
    ((4, 4, 1, 9), (6, 2, 1, 4), 1, 0, (1, 2), 2),
    # strides > 1: the input grad adds into phase images (kernels.conv._input_grad_phases)
    ((4, 8, 14, 14), (16, 8, 4, 4), 2, 1, 1, 1),  # DCGAN's 4x4 stride-2 layers
    ((3, 2, 11, 10), (5, 2, 4, 3), (2, 3), (2, 1), (2, 1), 1),
    ((2, 3, 9, 9), (3, 3, 2, 2), 3, 0, 1, 1),  # stride > kernel: phases no offset reaches
]


def _conv_grads(x, w, b, g, stride, padding, dilation, groups, transposed=False):
    xt, wt, bt = (dg.tensor(a, requires_grad=True) for a in (x, w, b))
    f = dg.nn.functional.conv_transpose2d if transposed else dg.nn.functional.conv2d
    out = f(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
    out.backward(dg.tensor(g[tuple(slice(0, s) for s in out.shape)]) if g is not None else None)
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _plain_and_fast(monkeypatch, threads, chunk_bytes, transposed, geom, dtype):
    """Outputs and grads of the whole-batch kernels, then of the chunked path at 1 and 2 threads."""
    xs, ws, stride, padding, dilation, groups = geom
    rng = np.random.default_rng(0)
    if transposed:  # weight (C_in, C_out/g, kh, kw): the conv geometry with the roles swapped
        ws = (xs[1], ws[0] // groups) + ws[2:]
    b = rng.standard_normal(ws[1] * groups if transposed else ws[0]).astype(dtype)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    g = rng.standard_normal((xs[0], 64, 64, 64)).astype(dtype)
    args = (stride, padding, dilation, groups, transposed)
    monkeypatch.setattr(KC, "_chunked", lambda a: False)
    plain = _conv_grads(x, w, b, g, *args)
    monkeypatch.undo()
    monkeypatch.setattr(KC, "CHUNK_BYTES", chunk_bytes)
    fast = []
    for n in (1, 2):
        threads(n)
        fast.append(_conv_grads(x, w, b, g, *args))
    return plain, fast


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 12, 1 << 30], ids=["1-image", "few-images", "whole-batch"])
@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: f"x{g[0]}w{g[1]}s{g[2]}p{g[3]}d{g[4]}g{g[5]}")
def test_chunked_threaded_conv_matches_the_whole_batch_kernels(monkeypatch, threads, chunk_bytes, transposed,
                                                               geom, dtype):
    plain, (one, two) = _plain_and_fast(monkeypatch, threads, chunk_bytes, transposed, geom, dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    names = ("output", "input grad", "weight grad", "bias grad")
    for name, p, f1, f2 in zip(names, plain, one, two):
        np.testing.assert_allclose(f1, p, rtol=tol, atol=tol, err_msg=name)
        # Bit-identical across thread counts: the chunks do not depend on them and their weight
        # grads are summed in batch order (at these sizes the BLAS itself is single-threaded).
        np.testing.assert_array_equal(f2, f1, err_msg=name)


def test_the_conv_fast_path_is_taken_and_keeps_no_columns():
    x = dg.randn(4, 3, 8, 8)
    w = dg.randn(5, 3, 3, 3, requires_grad=True)
    out = dg.nn.functional.conv2d(x, w, padding=1)
    node = out.grad_fn
    assert node.cols is None and node.x is not None  # columns are rebuilt in backward, not kept
    single = dg.nn.functional.conv2d(x[:1], w, padding=1).grad_fn
    assert single.cols is not None  # a batch of one takes the whole-batch kernels


def test_float32_conv_grads_agree_with_torch_at_two_threads(threads):
    torch = pytest.importorskip("torch")
    threads(2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 4, 12, 12)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    g = rng.standard_normal((8, 6, 12, 12)).astype(np.float32)
    xd, wd = dg.tensor(x, requires_grad=True), dg.tensor(w, requires_grad=True)
    dg.nn.functional.conv2d(xd, wd, padding=1).backward(dg.tensor(g))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(xt, wt, padding=1).backward(torch.tensor(g))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wd.grad.numpy(), wt.grad.numpy(), rtol=1e-4, atol=1e-3)


# ----------------------------------------------------------------------------- kernels against the references
def _pair(v) -> tuple:
    return (v, v) if isinstance(v, int) else tuple(v)


def _window(geom):
    """(x, w, stride, pads, dilation, groups, out_hw) of a GEOMETRIES entry, float64, as the kernels take them."""
    xs, ws, stride, padding, dilation, groups = geom
    rng = np.random.default_rng(7)
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    pads = (padding[0], padding[0], padding[1], padding[1])
    out_hw = tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                   for s, p, d, k, st in zip(xs[2:], padding, dilation, ws[2:], stride))
    return rng.standard_normal(xs), rng.standard_normal(ws), stride, pads, dilation, groups, out_hw


@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: f"x{g[0]}w{g[1]}s{g[2]}p{g[3]}d{g[4]}g{g[5]}")
def test_im2col_and_col2im_equal_their_gather_and_scatter_references(geom):
    x, w, stride, pads, dilation, _, out_hw = _window(geom)
    xpad = KI.pad_or_crop(x, pads)
    cols = KI.im2col(xpad, w.shape[2:], out_hw, stride, dilation)
    np.testing.assert_array_equal(cols, KI.im2col_reference(xpad, w.shape[2:], out_hw, stride, dilation))
    back = KI.col2im(cols, xpad.shape[2:], w.shape[2:], stride, dilation)
    # Each pixel gets its windows' contributions in the same (i, j) order from both: the same bits.
    np.testing.assert_array_equal(back, KI.col2im_reference(cols, xpad.shape[2:], w.shape[2:], stride, dilation))


@pytest.mark.parametrize("chunked", [False, True], ids=["whole-batch", "chunked"])
@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: f"x{g[0]}w{g[1]}s{g[2]}p{g[3]}d{g[4]}g{g[5]}")
def test_conv_kernels_equal_the_direct_reference(monkeypatch, geom, chunked):
    """Forward, input and weight gradients of a conv and of a transposed conv (the same sums with the roles
    swapped), against the per-offset einsum reference."""
    monkeypatch.setattr(KC, "_chunked", lambda a: chunked)
    monkeypatch.setattr(KC, "CHUNK_BYTES", 1 << 12)  # several chunks
    x, w, stride, pads, dilation, groups, out_hw = _window(geom)
    window = (stride, pads, dilation, groups)
    g = np.random.default_rng(8).standard_normal((x.shape[0], w.shape[0]) + out_hw)
    tol = dict(rtol=1e-12, atol=1e-12)
    out, cols = KC.conv2d_forward(x, w, *window, out_hw, keep_columns=True)
    np.testing.assert_allclose(out, KC.conv2d_forward_reference(x, w, *window, out_hw), **tol)
    gx, gw = KC.conv2d_backward(g, x, cols, x.shape, w, *window, True, True)
    np.testing.assert_allclose(gx, KC.conv2d_input_grad_reference(g, w, x.shape, *window), **tol)
    np.testing.assert_allclose(gw, KC.conv2d_weight_grad_reference(g, x, w.shape, *window), **tol)
    # Transposed: input g (N, O, Ho, Wo), weight w as (C_in=O, C_out/g, kh, kw), output x-shaped.
    y = KC.conv_transpose2d_forward(g, w, *window, x.shape)
    np.testing.assert_allclose(y, KC.conv2d_input_grad_reference(g, w, x.shape, *window), **tol)
    gy = np.random.default_rng(9).standard_normal(x.shape)
    tgx, tgw = KC.conv_transpose2d_backward(gy, g, g.shape, w, *window, True, True)
    np.testing.assert_allclose(tgx, KC.conv2d_forward_reference(gy, w, *window, out_hw), **tol)
    np.testing.assert_allclose(tgw, KC.conv2d_weight_grad_reference(g, gy, w.shape, *window), **tol)


def test_conv_backward_without_columns_off_numpy_takes_the_whole_batch_kernels(monkeypatch):
    """Frozen weight (no columns kept) and an input that needs a gradient: off NumPy (CuPy) the backward must
    not take the NumPy-only chunked path."""
    x, w, stride, pads, dilation, groups, out_hw = _window(GEOMETRIES[0])
    g = np.random.default_rng(8).standard_normal((x.shape[0], w.shape[0]) + out_hw)
    monkeypatch.setattr(KC, "is_numpy", lambda a: False)  # as a CuPy array looks to the dispatcher
    monkeypatch.setattr(KC, "conv_backward_chunked", None)  # any call would fail
    gx, gw = KC.conv2d_backward(g, None, None, x.shape, w, stride, pads, dilation, groups, True, False)
    assert gw is None
    np.testing.assert_allclose(gx, KC.conv2d_input_grad_reference(g, w, x.shape, stride, pads, dilation, groups),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("bad", ["input", "weight"])
def test_stride1_rows_fall_back_where_a_spare_column_meets_a_non_finite_value(monkeypatch, bad, stride):
    """The stride-1 row layout computes spare columns that multiply a zero gradient with input (weight-gradient
    GEMM) or weight (input-gradient GEMM) values: an inf there would leak NaN into gradients that torch and the
    whole-batch kernels keep finite. The chunked path must give what the whole-batch kernels give."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 6, 6))
    w = rng.standard_normal((5, 2, 3, 3))  # O > 2C: the GEMM + col2im input grad
    g = rng.standard_normal((3, 5, 4, 4))
    if bad == "input":
        x[0, 1, 2, 0] = np.inf  # read only by windows at output column 0 (offset j = 0) and by spare columns
    else:
        w[1, 0, 1, 2] = np.inf  # the last kernel column: spare columns add it into the first input columns
    g = g[:, :, ::stride, ::stride].copy()  # (3, 5, 2, 2) at stride 2: phase images for the input grad
    window = ((stride, stride), (0, 0, 0, 0), (1, 1), 1)
    monkeypatch.setattr(KC, "CHUNK_BYTES", 1 << 10)
    gx, gw = KC.conv2d_backward(g, x, None, x.shape, w, *window, True, True)
    monkeypatch.setattr(KC, "_chunked", lambda a: False)
    out, cols = KC.conv2d_forward(x, w, *window, g.shape[2:], keep_columns=True)
    px, pw = KC.conv2d_backward(g, x, cols, x.shape, w, *window, True, True)
    assert np.isfinite(pw).sum() > 0 and np.isfinite(px).sum() > 0
    np.testing.assert_allclose(gw, pw, rtol=1e-12, atol=1e-12)  # NaN where the plain kernels have NaN, no more
    np.testing.assert_allclose(gx, px, rtol=1e-12, atol=1e-12)


def test_stride1_chunks_build_only_row_columns_for_finite_values(monkeypatch):
    """The row layout replaces the plain columns for stride 1 (forward, both gradients, a transposed conv):
    building the plain ones as well would do the copy twice."""
    def refuse(*args, **kwargs):
        raise AssertionError("plain columns built on the stride-1 row path")

    monkeypatch.setattr(KC, "chunk_columns", refuse)
    rng = np.random.default_rng(4)
    for o in (4, 9):  # full-correlation input grad, and GEMM + col2im (O > 2C)
        x = dg.tensor(rng.standard_normal((5, 3, 9, 8)), requires_grad=True)
        w = dg.tensor(rng.standard_normal((o, 3, 3, 3)), requires_grad=True)
        dg.nn.functional.conv2d(x, w, padding=1).sum().backward()
        wt = dg.tensor(rng.standard_normal((3, o, 3, 3)), requires_grad=True)
        dg.nn.functional.conv_transpose2d(x, wt, padding=1).sum().backward()
        assert x.grad is not None and w.grad is not None and wt.grad is not None
