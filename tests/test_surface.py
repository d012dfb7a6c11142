"""Every public op is reachable where torch users look for it: an op of deepgrad's functional layer
that torch has as ``torch.NAME`` is ``deepgrad.NAME``; one torch has as a Tensor method is a deepgrad
Tensor method; and the activations and losses torch has in ``torch.nn.functional`` are in
``deepgrad.nn.functional``. One place to add an op (ops/ + functional.py) and this test says where
else it must appear."""

from __future__ import annotations

import inspect

import pytest

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn.functional as NF

torch = pytest.importorskip("torch")


def _public(module) -> list[str]:
    return sorted(n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
                  and not inspect.isclass(v) and getattr(v, "__module__", "").startswith("deepgrad"))


def test_functional_ops_are_in_the_top_namespace_where_torch_has_them():
    missing = [n for n in _public(F) if hasattr(torch, n) and not hasattr(dg, n)]
    assert not missing, f"deepgrad.functional has these torch.* ops, but deepgrad.* does not: {missing}"


def test_functional_ops_are_tensor_methods_where_torch_has_them():
    missing = [n for n in _public(F) if hasattr(torch.Tensor, n) and not hasattr(dg.Tensor, n)]
    assert not missing, f"torch.Tensor has these methods, deepgrad.Tensor does not: {missing}"


def test_nn_functional_has_what_torch_nn_functional_has_of_ours():
    ours = set(_public(F)) | set(_public(NF))
    missing = [n for n in sorted(ours) if hasattr(torch.nn.functional, n) and not hasattr(NF, n)]
    assert not missing, f"torch.nn.functional has these, deepgrad.nn.functional does not: {missing}"


def test_tensor_methods_are_written_in_the_class_body():
    """Reading tensor.py shows what a Tensor can do: no method is attached from outside the class."""
    own = set(vars(dg.Tensor))
    methods = [n for n, v in vars(dg.Tensor).items() if callable(v) and not n.startswith("__")]
    assert len(methods) > 100 and "add_" in own and "masked_fill" in own
    source = inspect.getsource(dg.tensor)
    assert "setattr(Tensor" not in source
