"""Autograd semantics against torch: the backward walk (deep chains, diamonds), retain_graph,
freed graphs, leaf accumulation and aliasing, grad modes, hooks, retain_grad, detach, and
in-place ops on leaves and non-leaves."""

import gc

import numpy as np
import pytest
import torch
from core_parity import assert_close, check, randn

import deepgrad as dg
from deepgrad import autograd


def pair(array, requires_grad=True):
    return dg.tensor(array, requires_grad=requires_grad), torch.tensor(array, requires_grad=requires_grad)


# ----------------------------------------------------------------------------- the walk
def test_a_100000_op_chain_backpropagates_without_recursion():
    x = dg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y * 1.0
        y = y + 1.0
    y.backward()
    assert y.item() == 50_001.0 and x.grad.item() == 1.0


def test_an_unused_100000_op_graph_is_freed_without_recursion():
    x = dg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    del y
    gc.collect()
    assert x.grad is None


def test_diamonds_and_reuse_match_torch():
    def fn(x, w):
        h = (x @ w).tanh()
        a = h * h + h  # h feeds three consumers
        b = a.exp() * h.sigmoid() + a
        return b.sum(1) + h.mean(0).sum()

    check(fn, fn, randn((3, 4), 1), randn((4, 5), 2))


def test_backward_with_explicit_gradient_and_its_errors():
    (x, tx) = pair(randn((2, 3), 1))
    g = randn((2, 3), 2)
    (x * 3).backward(dg.tensor(g))
    (tx * 3).backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)
    assert not np.shares_memory(x.grad.array, g)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"shape of \(3,\).*shape of \(2, 3\)"):
        y.backward(dg.ones(3))
    with pytest.raises(RuntimeError, match=r"does not require grad"):
        dg.ones(2).sum().backward()


def test_backward_on_a_non_scalar_without_gradient_says_what_to_do():
    x = dg.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2, 3\).*backward\(gradient\).*sum") as info:
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (torch.ones(2, 3, requires_grad=True) * 2).backward()
    assert "ones_like" in str(info.value)
    (x * 2).sum().backward()  # a size-1 non-0-d output is fine too, as in torch
    (x[:1, :1] * 2).backward()
    assert x.grad.tolist() == [[4.0, 2.0, 2.0], [2.0, 2.0, 2.0]]


def test_repeated_backward_with_retain_graph_accumulates_like_torch():
    results = []
    for lib in (dg, torch):
        x = lib.tensor(randn((2, 3), 3), requires_grad=True)
        h = (x * x).exp()
        h.retain_grad()
        loss = (h * lib.tensor(randn((2, 3), 4))).sum()
        for _ in range(3):
            loss.backward(retain_graph=True)
        loss.backward()
        results.append((x.grad, h.grad))
    assert_close(results[0][0], results[1][0], 1e-5, 1e-5)
    assert_close(results[0][1], results[1][1], 1e-5, 1e-5)


def test_a_second_backward_through_a_freed_graph_raises_a_clear_error():
    x = dg.ones(3, requires_grad=True)
    y = (x * x).exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"backward through the graph a second time.*retain_graph=True"):
        y.backward()
    z = (x * 2).exp()
    z.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (z * 3).sum().backward()  # the new part is fresh, the shared part is freed


def test_autograd_grad_returns_gradients_without_touching_dot_grad():
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    x.grad = dg.tensor([10.0, 10.0])
    (gx,) = autograd.grad((x**3).sum(), [x])
    assert gx.tolist() == [3.0, 12.0] and x.grad.tolist() == [10.0, 10.0]


# ----------------------------------------------------------------------------- leaves
def test_leaf_gradients_accumulate_like_torch():
    def fn(x, y):
        return x * x + x + (x + x) * y + y.exp()

    check(fn, fn, randn((2, 3), 5), randn((3,), 6))
    (x, tx) = pair(randn((3,), 7))
    for lib_x in (x, tx):
        (lib_x * 2).sum().backward()
        (lib_x * lib_x).sum().backward()
    assert_close(x.grad, tx.grad)


def test_leaf_gradients_never_alias_each_other_or_the_upstream():
    a = dg.ones(3, requires_grad=True)
    b = dg.ones(3, requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.array, b.grad.array)
    a.grad.array[0] = 100.0
    assert b.grad.tolist() == [1.0, 1.0, 1.0]
    c = dg.ones(2, 3, requires_grad=True)
    d = dg.ones(2, 3, requires_grad=True)
    c.sum().backward()  # the gradient arrives as a broadcast view of one scalar
    c.grad.array[0, 0] = 5.0
    assert c.grad.array.flags.writeable and c.grad.tolist() == [[5.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    g = dg.ones(2, 3)
    (c + d).backward(g)
    assert not np.shares_memory(d.grad.array, g.array)


def test_requires_grad_only_for_floating_tensors():
    for make in (lambda: dg.tensor([1, 2]).requires_grad_(), lambda: dg.tensor([1, 2], requires_grad=True),
                 lambda: dg.arange(3, requires_grad=True), lambda: dg.tensor([True]).requires_grad_()):
        with pytest.raises(RuntimeError, match="floating point"):
            make()
    with pytest.raises(RuntimeError, match="leaf"):
        (dg.ones(2, requires_grad=True) * 2).requires_grad_(False)


def test_detach_shares_data_and_cuts_the_graph():
    x = dg.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.array, y.array)
    d.data[0] = 7.0  # torch: the detached tensor shares storage
    assert y.tolist()[0] == 7.0
    (d * y).sum().backward()
    assert x.grad.tolist() == [14.0, 4.0, 4.0]
    y.detach_()
    assert y.grad_fn is None and not y.requires_grad


# ----------------------------------------------------------------------------- grad modes
def test_no_grad_enable_grad_set_grad_enabled_as_context_managers():
    x = dg.ones(2, requires_grad=True)
    with dg.no_grad():
        y = x * 2
        with dg.enable_grad():
            z = x * 2
        w = x * 2
    assert not y.requires_grad and y.grad_fn is None and z.requires_grad and not w.requires_grad
    with dg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert dg.is_grad_enabled()
    try:
        with dg.no_grad():
            raise KeyError
    except KeyError:
        pass
    assert dg.is_grad_enabled()


def test_set_grad_enabled_as_a_plain_call():
    dg.set_grad_enabled(False)
    try:
        assert not dg.is_grad_enabled()
    finally:
        dg.set_grad_enabled(True)
    assert dg.is_grad_enabled()


def test_grad_modes_as_decorators():
    x = dg.ones(2, requires_grad=True)

    @dg.no_grad()
    def f():
        return x * 2

    @dg.no_grad
    def f_bare():
        return x * 2

    @dg.set_grad_enabled(False)
    def g():
        return x * 2

    assert dg.is_grad_enabled(), "decorating must not change the grad mode"

    @dg.enable_grad()
    def h():
        return x * 2

    assert not f().requires_grad and not f_bare().requires_grad and not g().requires_grad
    with dg.no_grad():
        assert h().requires_grad
        assert not dg.is_grad_enabled()
    assert dg.is_grad_enabled()

    @dg.no_grad()
    def recurse(n):
        return x * 2 if n == 0 else recurse(n - 1)

    assert not recurse(3).requires_grad
    assert dg.is_grad_enabled(), "a recursive decorated function restores the outer mode"
    assert f.__name__ == "f"


# ----------------------------------------------------------------------------- hooks
def test_hooks_on_leaves_and_non_leaves_match_torch():
    results, seen = [], []
    for lib in (dg, torch):
        x = lib.tensor(randn((2, 3), 8), requires_grad=True)
        x.register_hook(lambda g: g * 2)
        h = x.exp()
        handle = h.register_hook(lambda g: g + 1)
        h.register_hook(lambda g: seen.append(type(g).__name__))  # returning None keeps the grad
        (h * h).sum().backward(retain_graph=True)
        first = x.grad.clone()
        handle.remove()
        x.grad = None
        (h * h).sum().backward()
        results.append((first, x.grad))
    assert_close(results[0][0], results[1][0], 1e-5, 1e-5)
    assert_close(results[0][1], results[1][1], 1e-5, 1e-5)
    assert seen[0] == "Tensor"
    with pytest.raises(RuntimeError, match="doesn't require"):
        dg.ones(2).register_hook(lambda g: g)


def test_retain_grad_sees_what_hooks_return_like_torch():
    grads = []
    for lib in (dg, torch):
        x = lib.ones(3, requires_grad=True)
        h = x * 2
        h.retain_grad()
        h.register_hook(lambda g: g * 10)
        out = h * h
        out.retain_grad()
        out.sum().backward()
        grads.append((h.grad, x.grad, out.grad))
        assert x.is_leaf and not h.is_leaf
    for mine, theirs in zip(*grads):
        assert_close(mine, theirs)
    leaf = dg.ones(2, requires_grad=True)
    leaf.retain_grad()  # a no-op on leaves
    with pytest.raises(RuntimeError, match="retain_grad"):
        dg.ones(2).retain_grad()


# ----------------------------------------------------------------------------- in-place
INPLACE = [
    lambda t: t.add_(1.0), lambda t: t.mul_(2.0), lambda t: t.sub_(1.0), lambda t: t.div_(2.0),
    lambda t: t.pow_(2), lambda t: t.clamp_(0.0, 1.0), lambda t: t.fill_(0.0), lambda t: t.zero_(),
    lambda t: t.copy_(dg.zeros(3)), lambda t: t.__iadd__(1.0), lambda t: t.__imul__(2.0),
    lambda t: t.__setitem__(0, 1.0),
]


@pytest.mark.parametrize("op", INPLACE)
def test_inplace_on_a_leaf_that_requires_grad_errors(op):
    x = dg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        op(x)


@pytest.mark.parametrize("op", INPLACE)
def test_inplace_under_no_grad_modifies_the_array_and_its_views(op):
    x = dg.tensor([0.5, 1.5, 2.5], requires_grad=True)
    array, view, numpy_view = x.array, x[1:], x.detach().numpy()
    before = x.tolist()
    with dg.no_grad():
        op(x)
    assert x.array is array and x.is_leaf and x.requires_grad
    assert x.tolist() != before or op is INPLACE[5]
    assert view.tolist() == x.tolist()[1:] and numpy_view.tolist() == x.tolist()


def test_inplace_on_plain_tensors_modifies_shared_memory():
    a = np.zeros(3, np.float32)
    x = dg.from_numpy(a)
    x += 1.0
    x.mul_(dg.tensor([1.0, 2.0, 3.0]))
    x[0] = 9.0
    assert a.tolist() == [9.0, 2.0, 3.0]


def test_inplace_on_non_leaves_is_recorded_like_torch():
    def fn(x, y):
        a = x * 2
        b = a.exp()  # saved the output, not a: modifying a afterwards is legal in torch
        a += y
        a.mul_(y)
        a[0, 1] = 0.0
        c = a * 1.5
        c.clamp_(-0.8, 0.8)
        c.sub_(y, alpha=2)
        return (a * b + c).sum(0)

    check(fn, fn, randn((2, 3), 10), randn((3,), 11))


def test_inplace_result_dtype_stays_the_tensors_own():
    x = dg.ones(3, dtype=dg.float32)
    x += dg.ones(3, dtype=dg.float64)
    assert x.dtype == dg.float32
    h = dg.ones(3, requires_grad=True) * 1.0
    h += dg.ones(3, dtype=dg.float64, requires_grad=True)
    assert h.dtype == dg.float32
    h.sum().backward()


def test_inplace_cannot_broadcast_its_tensor_to_a_bigger_shape():
    with pytest.raises(RuntimeError, match=r"add_.*\[3\].*\[2, 3\]"):
        dg.ones(3).add_(dg.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"mul_.*\[3\].*\[2, 3\]"):
        h = dg.ones(3, requires_grad=True) * 1.0
        h *= dg.ones(2, 3)
    with pytest.raises(RuntimeError):
        torch.ones(3).add_(torch.ones(2, 3))


def test_autograd_grad_leaves_other_leaves_alone_and_reports_unused_inputs():
    x, unused = dg.ones(2, requires_grad=True), dg.ones(1, requires_grad=True)
    w = dg.tensor([2.0, 3.0], requires_grad=True)
    h = x * w
    gx, gh = autograd.grad((h * h).sum(), [x, h], retain_graph=True)
    assert gx.tolist() == [8.0, 18.0] and gh.tolist() == [4.0, 6.0] and w.grad is None and x.grad is None
    with pytest.raises(RuntimeError, match="allow_unused"):
        autograd.grad(h.sum(), [x, unused], retain_graph=True)
    assert autograd.grad(h.sum(), [unused, w], allow_unused=True)[0] is None
    t_x = torch.ones(2, requires_grad=True)
    assert torch.autograd.grad((t_x * torch.tensor([2.0, 3.0])).pow(2).sum(), [t_x])[0].tolist() == gx.tolist()


def test_hooks_and_retain_grad_across_an_inplace_op_like_torch():
    results = []
    for lib in (torch, dg):
        x = lib.ones(3, requires_grad=True)
        h = x * 2
        seen = []
        h.register_hook(lambda g, seen=seen: seen.append(g.tolist()))  # stays with the old version
        h.retain_grad()  # follows the tensor to its new version
        k = h * 3
        h.mul_(5)
        h[0] = 1.0
        (h * 7 + k).sum().backward()
        results.append((seen, h.grad.tolist(), x.grad.tolist()))
    assert results[0] == results[1]
