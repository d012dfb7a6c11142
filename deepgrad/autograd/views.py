"""Views: tensors that share another tensor's memory (and version counter), and how an in-place
op on one rebuilds the graph of its base (see ops/inplace.py's CopySlices).

A view records its base (never itself a view), the chain of view ops from the base to it, and the
base's version when its ``grad_fn`` was made; after the base is written in place the view's
``grad_fn`` is rebuilt by replaying the chain on the base (torch regenerates it the same way).
"""

from __future__ import annotations

import weakref

from ..backend import array_module
from ..tensor import Tensor
from . import core
from .grad_mode import enable_grad


class _ViewInfo:
    """What makes a tensor a view: its base (never itself a view), the view ops that lead from the
    base to it (replayed to rebuild its graph node after an in-place op), and the base's version
    when its ``grad_fn`` was made. ``kind`` is torch's creation meta: ``"default"``, ``"no_grad"``
    (made under no_grad) or ``"multi"`` (an output of split/chunk/unbind)."""

    __slots__ = ("base", "chain", "gen", "kind")

    def __init__(self, base, chain, gen, kind):
        self.base, self.chain, self.gen, self.kind = base, chain, gen, kind


def as_view(out: Tensor, src: Tensor, cls, params) -> None:
    """Record that ``out`` (just made by view op ``cls`` from ``src``) shares ``src``'s memory."""
    if cls.view == "maybe":
        base = out.array.base  # NumPy's view of a view points at the memory's owner
        if base is None or not (base is src.array or base is src.array.base):
            if not array_module(out.array).may_share_memory(out.array, src.array):
                return  # reshape of a non-contiguous array: a copy, not a view
    vc = src._vc
    if vc is None:
        vc = src._vc = core._VersionCounter()
    out._vc = vc
    sv = src._view
    if sv is None:
        base, chain, kind = src, ((cls, params),), "default"
    else:
        base, chain, kind = sv.base, sv.chain + ((cls, params),), sv.kind
    if not core.state.grad_enabled:
        kind = "no_grad"
    elif cls.view_kind is not None:
        kind = cls.view_kind
    out._view = _ViewInfo(base, chain, vc.value, kind)
    if core.state.grad_enabled and not base.requires_grad:
        views = vc.views
        if views is None:
            views = vc.views = []
        elif len(views) > 64 and len(views) & (len(views) - 1) == 0:  # prune dead references now and then
            views[:] = [r for r in views if r() is not None]
        views.append(weakref.ref(out))


def replay_view(base, chain):
    """Apply a view's chain of view ops to ``base`` (a Tensor, recorded; or a raw array)."""
    if isinstance(base, Tensor):
        for cls, params in chain:
            base = cls.apply(base, **params)
        return base
    for cls, params in chain:
        base = cls().forward(base, **params)
    return base


def regenerate_view(t: Tensor) -> None:
    """Rebuild a view's ``grad_fn`` from its base after the base's memory was written in place."""
    v = t._view
    with enable_grad():
        fresh = replay_view(v.base, v.chain)
    t.grad_fn, t.requires_grad = fresh.grad_fn, fresh.requires_grad
    v.gen = t._vc.value
