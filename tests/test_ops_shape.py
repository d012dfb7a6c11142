"""Shape ops against torch: reshape/view, flatten, squeeze/unsqueeze, transpose/permute, expand,
repeat, indexing (basic, advanced with repeated indices, boolean masks, tensor indices),
setitem, cat/stack, split/chunk/unbind and constant pad (negative pads crop)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from core_parity import SETTINGS, check, devices, randn, seeds
from hypothesis import given
from hypothesis import strategies as st

import deepgrad as dg
import deepgrad.functional as F

X = randn((2, 3, 4), 0)

VIEWS = {
    "reshape": lambda t: t.reshape(4, -1),
    "reshape_tuple": lambda t: t.reshape((3, 8)),
    "view": lambda t: t.view(-1),
    "view_same": lambda t: t.view(2, 3, 4) * 2,
    "flatten": lambda t: t.flatten(),
    "flatten_1": lambda t: t.flatten(1),
    "flatten_0_1": lambda t: t.flatten(0, 1),
    "unsqueeze_0": lambda t: t.unsqueeze(0),
    "unsqueeze_neg": lambda t: t.unsqueeze(-1),
    "unsqueeze_mid": lambda t: t.unsqueeze(2),
    "squeeze_all": lambda t: t.unsqueeze(1).unsqueeze(-1).squeeze(),
    "squeeze_dim": lambda t: t.unsqueeze(1).squeeze(1),
    "squeeze_not_1": lambda t: t.squeeze(0),
    "squeeze_tuple": lambda t: t.unsqueeze(0).unsqueeze(3).squeeze((0, 3)),
    "transpose": lambda t: t.transpose(0, 2),
    "transpose_neg": lambda t: t.transpose(-1, -2),
    "permute": lambda t: t.permute(2, 0, 1),
    "permute_tuple": lambda t: t.permute((1, 2, 0)),
    "T_mT": lambda t: t.mT + t.permute(0, 2, 1),
    "expand": lambda t: t[:, :1].expand(2, 5, 4),
    "expand_new_dims": lambda t: t.expand(3, 2, 3, 4),
    "expand_minus1": lambda t: t[:1].expand(4, -1, -1),
    "expand_as": lambda t: t[:, :, :1].expand_as(t),
    "repeat": lambda t: t.repeat(2, 1, 3),
    "repeat_more_dims": lambda t: t.repeat(2, 1, 1, 2),
    "view_as": lambda t: t.flatten().view_as(t),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(VIEWS))
def test_view_ops(name, device):
    check(VIEWS[name], VIEWS[name], X, device=device)


def test_shape_ops_on_0d_1d_and_empty():
    s, v, e = np.array(2.0, np.float32), randn((3,), 1), np.zeros((0, 3), np.float32)
    for fn in (lambda t: t.reshape(1, 1), lambda t: t.unsqueeze(0), lambda t: t.flatten(), lambda t: t.expand(2, 3)):
        check(fn, fn, s)
    for fn in (lambda t: t.repeat(2), lambda t: t.repeat(2, 2), lambda t: t.unsqueeze(1).T, lambda t: t.t()):
        check(fn, fn, v)
    for fn in (lambda t: t.reshape(3, 0), lambda t: t.transpose(0, 1), lambda t: t.repeat(2, 2),
               lambda t: t.flatten(), lambda t: t.unsqueeze(0).squeeze(0)):
        check(fn, fn, e)


@pytest.mark.parametrize(
    "call, message",
    [(lambda t: t.reshape(5, -1), "reshape"), (lambda t: t.reshape(-1, -1), "reshape"),
     (lambda t: t.expand(3, 3, 4), "expand"), (lambda t: t.permute(0, 1), "permute"),
     (lambda t: t.repeat(2), "repeat"), (lambda t: t.transpose(0, 3), "transpose"),
     (lambda t: t.flatten(2, 1), "flatten"), (lambda t: t.unsqueeze(4), "unsqueeze")],
)
def test_shape_errors_name_the_op(call, message):
    with pytest.raises((RuntimeError, IndexError), match=message):
        call(dg.tensor(X))


# ----------------------------------------------------------------------------- indexing
INDEXES = {
    "int": 1,
    "neg_int": -1,
    "slice": (slice(None), slice(1, 3)),
    "step": (slice(None, None, 2), slice(None), slice(1, None, 2)),
    "ellipsis": (Ellipsis, 0),
    "none": (None, 0, slice(None), None),
    "int_list": [1, 0, 1],
    "repeated_ints": ([0, 0, 1, 0], [2, 2, 2, 1]),
    "int_and_slice": (slice(None), [0, 2, 2]),
    "int_array_mid": (slice(None), [[0, 1], [2, 2]], slice(1, 3)),
    "bool_mask_row": [True, False],
    "empty_slice": (slice(2, 2),),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(INDEXES))
def test_getitem(name, device):
    index = INDEXES[name]
    check(lambda t: t[index], lambda t: t[index], X, device=device)


@pytest.mark.parametrize("device", devices)
def test_getitem_with_tensor_indices_and_masks(device):
    idx = np.array([2, 0, 2, 2])  # repeated: the gradients scatter-add

    def by_tensor(t):
        lib = dg if isinstance(t, dg.Tensor) else torch
        i = lib.tensor(idx, device=device) if lib is dg else torch.tensor(idx)
        return t[:, i] + t[1, i[:3]].sum()

    check(by_tensor, by_tensor, X, device=device)
    check(lambda t: t[t > 0.5], lambda t: t[t > 0.5], X, device=device)  # boolean mask (its own tensor)
    check(lambda t, m: t[m], lambda t, m: t[m], X, X[..., 0] > 0, device=device)
    check(lambda t, m: t[:, m], lambda t, m: t[:, m], X, X[0, 0, :3] > 0, device=device)
    zero_d = np.array(1)
    check(lambda t, i: t[i], lambda t, i: t[i], X, zero_d, device=device)


@SETTINGS
@given(seed=seeds, n=st.integers(1, 6))
def test_advanced_index_repeats_accumulate(seed, n):
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, 2, n), rng.integers(-4, 4, n)
    check(lambda t: t[rows, :, cols], lambda t: t[rows, :, cols], X)


def test_index_errors_name_shape():
    with pytest.raises(IndexError, match=r"\(2, 3, 4\)"):
        dg.tensor(X)[5]


# ----------------------------------------------------------------------------- setitem
SETITEMS = {
    "slice_scalar": ((slice(None), 1), 0.5),
    "int_tensor_value": (1, "value_3x4"),
    "broadcast_value": ((slice(None), slice(None), 0), "value_3"),
    "leading_one_value": (0, "value_1x3x4"),
    "bool_mask": ("mask", 0.0),
    "int_array": (([0, 1], [2, 0]), "value_4"),
    "ellipsis": (Ellipsis, "value_4"),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(SETITEMS))
def test_setitem_on_a_non_leaf_is_recorded(name, device):
    index, value = SETITEMS[name]
    shapes = {"value_3x4": (3, 4), "value_3": (3,), "value_1x3x4": (1, 3, 4), "value_4": (4,)}
    v = randn(shapes[value], 9) if isinstance(value, str) else None

    def fn(t, *val):
        out = t * 2.0
        idx = (t > 0.5) if index == "mask" else index
        out[idx] = val[0] if val else value
        return out * out

    if v is None:
        check(fn, fn, X, device=device)
    else:
        check(fn, fn, X, v, device=device)


def test_setitem_under_no_grad_and_plain_tensors_write_in_place():
    x = dg.zeros(2, 3)
    alias = x.array
    x[0, 1:] = dg.tensor([1.0, 2.0])
    x[1] = 3.0
    assert x.array is alias and x.tolist() == [[0.0, 1.0, 2.0], [3.0, 3.0, 3.0]] and x.grad_fn is None
    w = dg.ones(2, requires_grad=True)
    with dg.no_grad():
        w[0] = 5.0
    assert w.tolist() == [5.0, 1.0] and w.is_leaf
    with pytest.raises(RuntimeError, match="leaf"):
        w[0] = 1.0


# ----------------------------------------------------------------------------- joining and splitting
@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack(dim, device):
    a, b, c = randn((2, 3), 1), randn((2, 3), 2), randn((2, 3), 3)
    check(lambda *t: dg.cat(t, dim), lambda *t: torch.cat(t, dim), a, b, c, device=device)
    check(lambda *t: dg.stack(t, dim), lambda *t: torch.stack(t, dim), a, b, c, device=device)
    check(lambda *t: dg.stack(list(t), dim=2), lambda *t: torch.stack(list(t), dim=2), a, b, device=device)
    d = randn((2, 5), 4) if dim != 0 else randn((4, 3), 4)
    check(lambda x, y: dg.cat([x, y], dim), lambda x, y: torch.cat([x, y], dim), a, d, device=device)
    e = np.zeros((0, 3), np.float32) if dim == 0 else np.zeros((2, 0), np.float32)
    check(lambda x, y: dg.cat([x, y], dim), lambda x, y: torch.cat([x, y], dim), a, e, device=device)


def test_cat_stack_promote_and_errors():
    check(lambda x, y: dg.cat([x, y]), lambda x, y: torch.cat([x, y]), randn((2,), 1), np.array([1, 2]))
    check(lambda x, y: dg.stack([x, y]), lambda x, y: torch.stack([x, y]), randn((2,), 1), randn((2,), 2, np.float64))
    with pytest.raises(RuntimeError, match=r"cat.*\(2, 3\).*\(2, 4\)"):
        dg.cat([dg.zeros(2, 3), dg.zeros(2, 4)])
    with pytest.raises(RuntimeError, match="stack"):
        dg.stack([dg.zeros(2, 3), dg.zeros(3, 2)])
    with pytest.raises(RuntimeError, match="cat"):
        dg.cat([])


SPLITS = {
    "split_int": lambda t: t.split(2, 2),
    "split_int_uneven": lambda t: t.split(3, -1),
    "split_list": lambda t: t.split([1, 2], 1),
    "split_list_zero": lambda t: t.split([0, 3, 0], 1),
    "chunk": lambda t: t.chunk(2, 2),
    "chunk_uneven": lambda t: t.chunk(3, 2),
    "chunk_more_than_size": lambda t: t.chunk(5, 0),
    "unbind": lambda t: t.unbind(1),
    "unbind_fn": lambda t: (dg if isinstance(t, dg.Tensor) else torch).unbind(t, -1),
}


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("name", list(SPLITS))
def test_split_chunk_unbind(name, device):
    check(SPLITS[name], SPLITS[name], X, device=device)


def test_split_only_some_pieces_used():
    check(lambda t: t.split(1, 0)[1] * 3, lambda t: t.split(1, 0)[1] * 3, X)
    check(lambda t: t.unbind(2)[0], lambda t: t.unbind(2)[0], X)
    with pytest.raises(RuntimeError, match="split"):
        dg.tensor(X).split([1, 1], 1)


# ----------------------------------------------------------------------------- pad
PADS = [(1, 2), (0, 0, 2, 1), (1, 1, 1, 1, 1, 1), (-1, 1), (-1, -2), (2, -1, -1, 0), (0, 0, 0, 0, -1, 0)]


@pytest.mark.parametrize("device", devices)
@pytest.mark.parametrize("pad", PADS)
def test_pad_constant_and_negative_crop(pad, device):
    check(lambda t: F.pad(t, pad), lambda t: TF.pad(t, pad), X, device=device)
    check(lambda t: F.pad(t, pad, value=-1.5), lambda t: TF.pad(t, pad, value=-1.5), X, device=device)


def test_pad_errors():
    with pytest.raises(RuntimeError, match="pad"):
        F.pad(dg.zeros(2, 3), (1,))
    with pytest.raises(RuntimeError, match="pad"):
        F.pad(dg.zeros(2, 3), (-2, -2))
    with pytest.raises(NotImplementedError, match="pad"):  # the other modes: tests/test_ops_pad_interpolate.py
        F.pad(dg.zeros(2, 3), (1, 1), mode="mirror")


def test_setitem_shape_mismatch_is_explained():
    with pytest.raises(RuntimeError, match=r"setitem.*\(3,\).*\(2, 4\)"):
        dg.zeros(2, 4)[...] = dg.ones(3)
