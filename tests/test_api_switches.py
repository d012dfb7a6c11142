"""The engine-level names torch programs use: inference_mode, the determinism and cuDNN switches (accepted,
meaning nothing on deepgrad), deepgrad.cuda's calls, set_printoptions, the Tensor's queries (is_xpu, stride,
nbytes...), new_* and type_as, and the creation functions logspace, scalar_tensor, bernoulli, multinomial,
normal — each compared with torch where torch gives a value."""

import numpy as np
import pytest
import torch

import deepgrad as dg


def test_inference_mode_is_no_grad_as_context_and_decorator():
    x = dg.ones(2, requires_grad=True)
    assert not dg.is_inference_mode_enabled()
    with dg.inference_mode():
        assert dg.is_inference_mode_enabled() and not dg.is_grad_enabled()
        y = x * 2
    assert not y.requires_grad and dg.is_grad_enabled() and not dg.is_inference_mode_enabled()
    with dg.inference_mode(False):
        assert (x * 2).requires_grad

    @dg.inference_mode()
    def predict(t):
        return t * 3

    @dg.inference_mode
    def bare(t):
        return t * 3

    assert not predict(x).requires_grad and not bare(x).requires_grad
    assert dg.is_grad_enabled()
    with torch.inference_mode():
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()


def test_inference_mode_false_records_inside_no_grad_and_mode_is_per_thread():
    import threading

    x, tx = dg.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    with dg.no_grad(), dg.inference_mode(False):
        mine = (x * 2).requires_grad
    with torch.no_grad(), torch.inference_mode(False):
        theirs = (tx * 2).requires_grad
    assert mine == theirs

    seen = {}
    entered, release = threading.Event(), threading.Event()

    def other():
        with dg.inference_mode():
            entered.set()
            release.wait(5)

    worker = threading.Thread(target=other)
    worker.start()
    entered.wait(5)
    seen["inference"], seen["grad"] = dg.is_inference_mode_enabled(), (x * 2).requires_grad
    release.set()
    worker.join()
    assert seen == {"inference": False, "grad": True}  # another thread's block changes nothing here


def test_switches_are_accepted_and_remembered():
    assert dg.are_deterministic_algorithms_enabled() is torch.are_deterministic_algorithms_enabled()
    dg.use_deterministic_algorithms(True, warn_only=True)
    try:
        assert dg.are_deterministic_algorithms_enabled() and dg.is_deterministic_algorithms_warn_only_enabled()
    finally:
        dg.use_deterministic_algorithms(False)
    assert not dg.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError):
        dg.use_deterministic_algorithms("yes")
    for name, value in (("benchmark", True), ("deterministic", True), ("enabled", False)):
        old = getattr(dg.backends.cudnn, name)
        setattr(dg.backends.cudnn, name, value)
        assert getattr(dg.backends.cudnn, name) is value
        setattr(dg.backends.cudnn, name, old)
    assert dg.backends.mps.is_available() is False
    dg.backends.cuda.matmul.allow_tf32 = True
    dg.set_float32_matmul_precision("high")
    assert dg.get_float32_matmul_precision() == "high"
    dg.set_float32_matmul_precision("highest")


def test_cuda_namespace_without_a_gpu_or_with_one():
    import deepgrad.cuda

    assert dg.cuda is deepgrad.cuda
    assert dg.cuda.is_available() == dg.cuda_is_available()
    assert (dg.cuda.device_count() > 0) == dg.cuda.is_available()
    dg.cuda.manual_seed_all(3)
    dg.cuda.manual_seed(3)
    dg.cuda.synchronize()
    dg.cuda.empty_cache()
    if not dg.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            dg.cuda.current_device()


def test_set_printoptions_is_exported():
    try:
        dg.set_printoptions(precision=2)
        assert repr(dg.tensor([1.23456])) == "tensor([1.23])"
    finally:
        dg.set_printoptions(profile="default")


def test_tensor_queries_match_torch():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    d, t = dg.tensor(a), torch.tensor(a)
    for name in ("is_xpu", "is_mps", "is_sparse", "is_quantized", "is_meta", "is_cpu", "nbytes", "itemsize"):
        assert getattr(d, name) == getattr(t, name), name
    assert d.stride() == t.stride() and d.transpose(0, 2).stride() == t.transpose(0, 2).stride()
    assert d.stride(1) == t.stride(1)
    assert d.ndimension() == t.ndimension() and d.nelement() == t.nelement() and d.get_device() == t.get_device()
    assert d.is_signed() == t.is_signed() and d.is_complex() == t.is_complex()
    assert dg.tensor([1], dtype=dg.uint8).is_signed() == torch.tensor([1], dtype=torch.uint8).is_signed()
    assert d.is_same_size(d * 2) and not d.is_same_size(d[0])
    assert dg.tensor([0.5]).is_nonzero() and not dg.is_nonzero(dg.tensor([0]))
    with pytest.raises(RuntimeError):
        dg.is_nonzero(dg.ones(2))
    assert d.data_ptr() == d[0].data_ptr() and d.data_ptr() != (d + 0).data_ptr()
    w = dg.ones(2, requires_grad=True) * 1
    w.retain_grad()
    assert w.retains_grad
    assert d.short().dtype == dg.int16 and d.char().dtype == dg.int8 and d.byte().dtype == dg.uint8


def test_new_tensors_and_type_as():
    for src_dtype in (np.float64, np.int32):
        d, t = dg.tensor(np.ones(2, src_dtype)), torch.tensor(np.ones(2, src_dtype))
        pairs = [
            (d.new_zeros(2, 3), t.new_zeros(2, 3)),
            (d.new_ones((2,)), t.new_ones((2,))),
            (d.new_full((2, 2), 7), t.new_full((2, 2), 7)),
            (d.new_tensor([1, 2]), t.new_tensor([1, 2])),
            (d.new_empty(3), t.new_empty(3)),
            (d.new_zeros(2, dtype=dg.float32), t.new_zeros(2, dtype=torch.float32)),
            (d.type_as(dg.ones(1, dtype=dg.float16)), t.type_as(torch.ones(1, dtype=torch.float16))),
        ]
        for a, b in pairs:
            assert tuple(a.shape) == tuple(b.shape) and str(a.dtype) == str(b.dtype).replace("torch.", "")
            if a is not pairs[4][0]:
                np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert dg.zeros(1).new_ones(2, requires_grad=True).requires_grad


def test_creation_additions():
    np.testing.assert_allclose(dg.logspace(-1, 2, 5).numpy(), torch.logspace(-1, 2, 5).numpy(), rtol=1e-6)
    np.testing.assert_allclose(dg.logspace(0, 3, 4, base=2).numpy(), torch.logspace(0, 3, 4, base=2).numpy())
    assert dg.logspace(0, 1, 3, dtype=dg.float64).dtype == dg.float64
    s = dg.scalar_tensor(3)
    assert s.shape == () and s.dtype == dg.float32 and s.item() == 3.0
    dg.manual_seed(0)
    p = dg.full((2000,), 0.3)
    b = dg.bernoulli(p)
    assert b.dtype == dg.float32 and set(np.unique(b.numpy())) <= {0.0, 1.0} and abs(b.numpy().mean() - 0.3) < 0.05
    probs = dg.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    m = dg.multinomial(probs, 4, replacement=True)
    assert m.shape == (2, 4) and (m[0] == 1).all() and set(m[1].tolist()) <= {0, 2}
    assert sorted(dg.multinomial(dg.ones(5), 5).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        dg.multinomial(dg.ones(2), 3)
    n = dg.normal(2.0, 0.5, size=(4000,))
    assert abs(n.numpy().mean() - 2.0) < 0.05 and abs(n.numpy().std() - 0.5) < 0.05
    assert dg.normal(dg.zeros(3, 2), dg.ones(2)).shape == (3, 2)


def test_dtype_info_and_promotion_queries():
    for dt in ("float32", "float64", "float16"):
        f, g = dg.finfo(getattr(dg, dt)), torch.finfo(getattr(torch, dt))
        for field in ("eps", "max", "min", "tiny", "smallest_normal", "resolution", "bits", "dtype"):
            assert getattr(f, field) == getattr(g, field), (dt, field)
    assert dg.finfo().eps == torch.finfo().eps
    for dt in ("int8", "uint8", "int16", "int32", "int64"):
        i, j = dg.iinfo(getattr(dg, dt)), torch.iinfo(getattr(torch, dt))
        assert (i.min, i.max, i.bits, i.dtype) == (j.min, j.max, j.bits, j.dtype)
    with pytest.raises(TypeError):
        dg.iinfo(dg.float32)
    with pytest.raises(TypeError):
        dg.finfo(dg.int32)
    names = ("bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64")
    for a in names:
        for b in names:
            assert dg.can_cast(getattr(dg, a), getattr(dg, b)) == torch.can_cast(getattr(torch, a), getattr(torch, b))
            assert str(dg.promote_types(getattr(dg, a), getattr(dg, b))) == str(
                torch.promote_types(getattr(torch, a), getattr(torch, b))
            ).replace("torch.", "")
    assert str(dg.result_type(dg.tensor([1]), 2.5)) == "float32"


def test_cov_corrcoef_and_small_aliases():
    from core_parity import check, randn

    x = randn((3, 6), 1)
    fw, aw = np.array([1, 2, 1, 3, 1, 1]), np.abs(randn((6,), 2)) + 0.1
    check(dg.cov, torch.cov, x)
    check(lambda t: t.cov(correction=0), lambda t: t.cov(correction=0), x)
    check(lambda t, f, a: dg.cov(t, fweights=f, aweights=a), lambda t, f, a: torch.cov(t, fweights=f, aweights=a),
          x, fw, aw.astype(np.float32), requires_grad=[True, False, False])
    check(dg.cov, torch.cov, randn((5,), 3))
    check(dg.corrcoef, torch.corrcoef, x)
    check(lambda t: dg.rsub(t, 2.0, alpha=3), lambda t: torch.rsub(t, 2.0, alpha=3), x)
    check(lambda t: dg.divide(t, 2), lambda t: torch.divide(t, 2), x)
    check(lambda t: dg.true_divide(t, t + 5), lambda t: torch.true_divide(t, t + 5), x)
    check(lambda t: dg.sgn(t) + t.sgn(), lambda t: torch.sgn(t) + t.sgn(), x, backward=False)  # torch: ZeroTensor
    check(lambda t: dg.clone(t) + dg.t(t).t(), lambda t: torch.clone(t) + torch.t(t).t(), x)
    assert not dg.detach(dg.ones(2, requires_grad=True)).requires_grad
    assert dg.is_floating_point(dg.ones(1)) and not dg.is_complex(dg.ones(1))


def test_compile_size_and_top_level_nn_functions():
    from core_parity import check, randn

    def f(t):
        return t * 2

    assert dg.compile(f) is f and dg.compile(mode="reduce-overhead")(f) is f
    assert dg.Size([2, 3]) == (2, 3) and isinstance(dg.ones(2, 3).shape, dg.Size)
    x, w = randn((1, 2, 6, 6), 1), randn((3, 2, 3, 3), 2)
    check(lambda a, b: dg.conv2d(a, b, None, 1, 1), lambda a, b: torch.conv2d(a, b, None, 1, 1), x, w)
    check(lambda a: dg.max_pool2d(a, 2), lambda a: torch.max_pool2d(a, 2), x)
    check(lambda a: dg.layer_norm(a, (6,)), lambda a: torch.layer_norm(a, (6,)), x)
    check(lambda a: dg.group_norm(a, 2), lambda a: torch.group_norm(a, 2), x)
    check(lambda a: dg.pixel_shuffle(a[:, :, :4, :4].reshape(1, 8, 2, 2), 2),
          lambda a: torch.pixel_shuffle(a[:, :, :4, :4].reshape(1, 8, 2, 2), 2), x)
    check(lambda a: dg.threshold(a, 0.1, 2.0) + dg.selu(a) + dg.celu(a, 0.5) + dg.hardshrink(a),
          lambda a: torch.threshold(a, 0.1, 2.0) + torch.selu(a) + torch.celu(a, 0.5) + torch.hardshrink(a), x)
