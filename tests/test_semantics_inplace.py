"""In-place ops, version counters and views, compared with torch 2.13 on the same programs.

Each scenario is one function written against a library module (``torch`` or ``deepgrad``): both run it,
and either both raise the same exception type, or the returned values and every leaf's gradient agree.
"""

from __future__ import annotations

import numpy as np
import pytest

import deepgrad as dg

torch = pytest.importorskip("torch")

X = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]], dtype=np.float32)
W = np.array([[0.3, -0.7, 1.1], [2.0, 0.1, -0.4]], dtype=np.float32)


def _run(scenario, lib):
    x = lib.tensor(X, requires_grad=True)
    w = lib.tensor(W, requires_grad=True)
    try:
        out = scenario(lib, x, w)
    except Exception as e:  # noqa: BLE001 - the exception type is compared
        return e
    vals = [np.asarray(o.detach().numpy() if hasattr(o, "detach") else o, dtype=np.float64) for o in out]
    grads = [None if t.grad is None else t.grad.numpy().astype(np.float64) for t in (x, w)]
    return vals, grads


def _compare(scenario):
    t, d = _run(scenario, torch), _run(scenario, dg)
    if isinstance(t, Exception) or isinstance(d, Exception):
        assert isinstance(t, Exception) and isinstance(d, Exception), f"torch: {t!r}; deepgrad: {d!r}"
        assert type(d) is type(t) or isinstance(d, type(t)), f"torch raised {t!r}, deepgrad {d!r}"
        return t, d
    (tv, tg), (dv, dg_) = t, d
    assert len(tv) == len(dv)
    for a, b in zip(dv, tv):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    for a, b in zip(dg_, tg):
        assert (a is None) == (b is None), f"gradient present in one library only: deepgrad {a}, torch {b}"
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    return t, d


def _backward(y, lib):
    y.backward(lib.tensor(np.linspace(-1, 2, y.numel(), dtype=np.float32).reshape(tuple(y.shape))))


# ----------------------------------------------------------------------------- version counters
def modify_saved_input(lib, x, w):
    y = x * 1
    b = (y ** 2).sum()
    with lib.no_grad():
        y.add_(1)
    b.backward()
    return [b]


def modify_unsaved_input(lib, x, w):
    y = x * 1
    b = (y + 2).sum()  # add saves nothing: the in-place change is harmless
    with lib.no_grad():
        y.add_(1)
    b.backward()
    return [b, y]


def modify_saved_output(lib, x, w):
    y = x.exp()
    y.add_(1)  # exp saved its output
    y.sum().backward()
    return [y]


def modify_output_of_op_saving_input(lib, x, w):
    y = x.sin()
    y.mul_(2)  # sin saved its input, not its output
    _backward(y, lib)
    return [y]


def weight_updated_between_forward_and_backward(lib, x, w):
    h = (x @ w.T).tanh()
    out = (h @ w).sum()  # the second product saves w (its other input h requires grad)
    with lib.no_grad():
        w.sub_(0.1 * w)
    out.backward()
    return [out]


def weight_updated_but_not_saved(lib, x, w):
    data = x.detach()
    out = (data * w).sum()  # mul saves only the other operand (data) for w's gradient
    with lib.no_grad():
        w.mul_(0.5)
    out.backward()
    return [out, w]


def detach_shares_the_version_counter(lib, x, w):
    y = x.exp()
    y.detach().zero_()
    y.sum().backward()
    return [y]


def data_does_not_share_the_version_counter(lib, x, w):
    y = x.exp()
    y.data.mul_(2)  # hidden from autograd: the backward uses the changed values, as torch does
    _backward(y, lib)
    return [y]


def optimizer_like_update_then_reuse(lib, x, w):
    for _ in range(2):
        loss = ((x * w).tanh() ** 2).sum()
        loss.backward()
        with lib.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
    return [w]


def mul_with_grad_operand_keeps_old_value(lib, x, w):
    y = x * 2
    y.mul_(w)  # w's gradient needs y's value before the multiply
    y.mul_(y)
    _backward(y, lib)
    return [y]


def inplace_on_leaf(lib, x, w):
    x.add_(1)
    return [x]


def inplace_on_leaf_under_no_grad(lib, x, w):
    with lib.no_grad():
        x.add_(1)
    (x * w).sum().backward()
    return [x]


def chained_inplace_ops(lib, x, w):
    y = x + 0
    y.add_(w).mul_(3).clamp_(-2, 5).sub_(w, alpha=2).div_(1.5)
    _backward(y, lib)
    return [y]


def pow_and_sqrt_inplace(lib, x, w):
    y = x.abs() + 1
    y.pow_(1.5)
    y.sqrt_()
    _backward(y, lib)
    return [y]


def fill_and_zero(lib, x, w):
    y = x * w
    y[0].fill_(2.0)
    z = x * 3
    z.zero_()
    _backward(y + z, lib)
    return [y, z]


def copy_from_a_tensor(lib, x, w):
    y = x * 2
    y.copy_(w[0])  # broadcast: y's old values get no gradient
    _backward(y, lib)
    return [y]


def int_inplace_with_float_is_refused(lib, x, w):
    t = lib.tensor([1, 2, 3])
    t.add_(0.5)
    return [t]


def inplace_cannot_grow_the_tensor(lib, x, w):
    y = x[0] * 1
    y.add_(x)
    return [y]


@pytest.mark.parametrize("scenario", [
    modify_saved_input, modify_unsaved_input, modify_saved_output, modify_output_of_op_saving_input,
    weight_updated_between_forward_and_backward, weight_updated_but_not_saved, detach_shares_the_version_counter,
    data_does_not_share_the_version_counter, optimizer_like_update_then_reuse,
    mul_with_grad_operand_keeps_old_value, inplace_on_leaf, inplace_on_leaf_under_no_grad, chained_inplace_ops,
    pow_and_sqrt_inplace, fill_and_zero, copy_from_a_tensor, int_inplace_with_float_is_refused,
    inplace_cannot_grow_the_tensor,
], ids=lambda f: f.__name__)
def test_inplace_and_versions_match_torch(scenario):
    _compare(scenario)


def test_the_issue_example_raises_torchs_error_naming_the_op_and_versions():
    t, d = _compare(modify_saved_input)
    assert "modified by an inplace operation" in str(d)
    assert "PowScalarBackward" in str(d) and "version 1" in str(d) and "expected version 0" in str(d)


def test_version_numbers_follow_torch():
    for lib in (torch, dg):
        x = lib.zeros(4)
        v = x[1:3]
        assert x._version == 0
        x.add_(1)
        v.mul_(2)
        x[0] = 5
        with lib.no_grad():
            v.fill_(1)
        assert x._version == v._version == 4, lib.__name__


# ----------------------------------------------------------------------------- views
def view_mul_rebases_the_base(lib, x, w):
    y = x * 2
    y[0].mul_(3)  # the issue's example
    y.sum().backward()
    return [y]


def view_add_of_a_grad_tensor(lib, x, w):
    y = x * 2
    v = y[:, 1]
    v.add_(w[0, :2])
    _backward(y, lib)
    return [y, v]


def view_of_a_view(lib, x, w):
    y = x + 1
    y.t()[1:].mul_(w.t()[1:])
    _backward(y, lib)
    return [y]


def old_view_sees_the_base_change(lib, x, w):
    y = x * 1
    v = y[1]
    y.mul_(w)
    _backward(v * 1, lib)  # v's graph is rebuilt from the changed base
    return [v]


def sibling_view_sees_the_change(lib, x, w):
    y = x * 1
    a, b = y[:, :2], y[:, 1:]  # overlapping views
    a.mul_(w[:, :2])
    _backward(b * 2, lib)
    return [a, b]


def base_without_grad_gets_a_graph(lib, x, w):
    buf = lib.zeros(2, 3)
    v = buf[:, 1:]
    other = buf[:, :2]  # overlaps v's first column
    v.add_(w[:, 1:] * 2)
    _backward(buf + other.sum(), lib)
    return [buf, other]


def setitem_basic_with_grad_value(lib, x, w):
    y = x * 1
    y[1, 1:] = w[0, :2] ** 2
    _backward(y, lib)
    return [y]


def setitem_advanced_with_grad_value(lib, x, w):
    y = x * 1
    y[:, [0, 2]] = w[:, :2]
    y[y > 2] = 0.0
    _backward(y, lib)
    return [y]


def setitem_into_a_no_grad_buffer(lib, x, w):
    buf = lib.zeros(3, 3)
    buf[0] = w[0]
    buf[2, :2] = x[1, :2].exp()
    _backward(buf, lib)
    return [buf]


def view_of_leaf_inplace(lib, x, w):
    x[0].mul_(2)
    return [x]


def setitem_on_leaf(lib, x, w):
    x[0, 0] = 1.0
    return [x]


def multi_output_view_inplace(lib, x, w):
    y = x * 1
    a, b = y.unbind(0)
    a.mul_(2)
    return [a]


def split_view_inplace(lib, x, w):
    y = x * 1
    a, _ = y.split(1, dim=0)
    a.add_(1)
    return [a]


def no_grad_view_modified_with_grad(lib, x, w):
    y = x * 1
    with lib.no_grad():
        v = y[0]
    v.mul_(2)
    return [v]


def expanded_view_inplace(lib, x, w):
    y = (x[0] * 1).expand(2, 3)
    y.add_(1)
    return [y]


def reshape_view_then_inplace(lib, x, w):
    y = x * 1
    r = y.reshape(3, 2)  # contiguous: a view
    r.mul_(2)
    _backward(y, lib)
    return [y, r]


def transpose_then_contiguous_is_a_copy(lib, x, w):
    y = x * 1
    c = y.t().contiguous()
    c.add_(5)  # a copy: y does not change
    _backward(y + c.t(), lib)
    return [y, c]


def inplace_activation_on_view(lib, x, w):
    y = x * w
    y[:, 1:].relu_()
    y[0].sigmoid_()
    _backward(y, lib)
    return [y]


def retain_grad_follows_inplace(lib, x, w):
    y = x * 2
    y.retain_grad()
    y.add_(1)
    (y * w).sum().backward()
    return [y, y.grad]


@pytest.mark.parametrize("scenario", [
    view_mul_rebases_the_base, view_add_of_a_grad_tensor, view_of_a_view, old_view_sees_the_base_change,
    sibling_view_sees_the_change, base_without_grad_gets_a_graph, setitem_basic_with_grad_value,
    setitem_advanced_with_grad_value, setitem_into_a_no_grad_buffer, view_of_leaf_inplace, setitem_on_leaf,
    multi_output_view_inplace, split_view_inplace, no_grad_view_modified_with_grad, expanded_view_inplace,
    reshape_view_then_inplace, transpose_then_contiguous_is_a_copy, inplace_activation_on_view,
    retain_grad_follows_inplace,
], ids=lambda f: f.__name__)
def test_views_match_torch(scenario):
    _compare(scenario)


def test_a_chain_of_views_writes_through_to_memory():
    x = dg.zeros(2, 3, 4)
    x.permute(2, 0, 1)[1][0, 2] = 9.0
    assert float(x[0, 2, 1]) == 9.0
    x.reshape(6, 4)[5].fill_(1.0)
    assert float(x[1, 2].sum()) == 4.0
    assert x._version == 2
