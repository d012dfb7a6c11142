"""Ops that exist for differentiable backwards (``create_graph=True``): the adjoint pairs and graph links an
op's ``backward_graph`` is written with.

- :class:`IndexScatter` puts a gradient back where indexing took its elements from (``zeros[index] = g``, or
  ``+=`` where an integer index may repeat): the backward of indexing, gather, embedding and max pooling.
  Its own adjoint is the indexing again (:class:`~.shape.AdvancedIndex` / :class:`~.shape.BasicIndex`), so a
  gradient that went through a scatter can be differentiated once more, and again.
- :func:`zero_link` gives a gradient zero-derivative edges to an op's inputs, where torch's backward formula
  reads an input through a function whose derivative is zero (relu's ``threshold_backward``, max pooling,
  ``sgn``): a second derivative through it is then a tensor of zeros, as in torch, not "unused".
- :func:`value_node` re-enters a private array of a fused op into the graph as the output of the op it fused
  (cross-entropy's log-probabilities as a log-softmax of the logits), so the fused backward can be written
  in the unfused ops torch differentiates.

>>> import deepgrad as dg
>>> x = dg.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (g,) = dg.autograd.grad((x[[0, 0, 2]] ** 2).sum(), x, create_graph=True)   # 2x, scattered: [4, 0, 6]
>>> g
tensor([4., 0., 6.], grad_fn=<IndexScatterBackward>)
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function, _edge
from ..backend import array_module
from ..tensor import Tensor


class IndexScatter(Function):
    """``out = zeros(shape); out[basic][advanced] = g`` (``+=`` when ``accumulate``: integer indices may
    repeat): the adjoint of ``x[basic][advanced]``, whose backward is that indexing of the gradient."""

    saved = ()

    def forward(self, g, shape, basic, advanced, accumulate):
        self.basic, self.advanced, self.accumulate = basic, advanced, accumulate
        out = array_module(g).zeros(shape, dtype=g.dtype)
        target = out[basic] if basic is not None else out  # a view: writes land in out
        if advanced is None:
            target[...] = g
        elif accumulate:
            backend.scatter_add(target, advanced, g)
        else:
            target[advanced] = g
        return out

    def backward(self, g):
        picked = g[self.basic] if self.basic is not None else g
        return picked[self.advanced] if self.advanced is not None else picked

    def backward_graph(self, g):
        from .shape import AdvancedIndex, BasicIndex

        if self.advanced is None:
            return BasicIndex.apply(g, index=self.basic)
        return AdvancedIndex.apply(g, basic=self.basic, advanced=self.advanced, scatter=self.accumulate)


def index_scatter(g: Tensor, shape: tuple, basic, advanced, accumulate: bool) -> Tensor:
    """:class:`IndexScatter` of ``g`` into a zero tensor of ``shape`` (recorded)."""
    return IndexScatter.apply(g, shape=tuple(shape), basic=basic, advanced=advanced, accumulate=accumulate)


class ZeroLink(Function):
    """Its first input unchanged; zero gradients for the other edges (see :func:`zero_link`). Made by hand,
    never applied: its extra edges are another node's input edges."""

    saved = ()

    def backward(self, g):
        xp = array_module(g)
        return (g,) + tuple(xp.zeros(shape, dtype=g.dtype) for shape in self.shapes)

    def backward_graph(self, g):
        xp = array_module(g.array)
        return (g,) + tuple(Tensor._make(xp.zeros(shape, dtype=g.array.dtype), None) for shape in self.shapes)


def zero_link(grad: Tensor, node: Function, shapes: dict) -> Tensor:
    """``grad`` with zero-derivative edges to the inputs ``shapes`` (index -> shape) of ``node`` that need a
    gradient — torch's graph when its backward formula reads those inputs through a step function."""
    picks = [(node.next[i], shape) for i, shape in shapes.items() if i < len(node.next) and node.next[i] is not None]
    if not picks:
        return grad
    link = ZeroLink()
    link.next = (_edge(grad) if grad.requires_grad else None,) + tuple(edge for edge, _ in picks)
    link.shapes = tuple(tuple(shape) for _, shape in picks)
    return Tensor._make(grad.array, link)


def value_node(cls, array, edges: tuple, **attrs) -> Tensor:
    """``array`` as a tensor made by a ``cls`` node over ``edges`` (input edges of the node asking), the node
    holding ``attrs`` as that op's forward would have left them: a fused op's intermediate re-entering the
    graph as the op it fused (e.g. ``value_node(LogSoftmax, logp, (logits_edge,), out=logp, dim=1)``)."""
    node = cls()
    node.__dict__.update(attrs)
    node.next = tuple(edges)
    return Tensor._make(array, node)
