"""einsum and tensordot, built from differentiable ops (their backward comes from those ops).

einsum parses the equation (``"bij,bjk->bik"``, ``...`` for broadcast dims, implicit output when ``->`` is
absent: the labels seen once, in alphabetical order, after the ellipsis dims), then for each operand takes
diagonals of repeated labels, drops size-1 dims that broadcast against a larger size elsewhere, and sums
out labels nobody else needs. The operands are then contracted left to right, each pair as one batched
matmul: batch labels first, the labels only the left one has as rows, the shared labels as the contracted
dim, the right one's own labels as columns — so the heavy lifting is one BLAS call per pair.

>>> import deepgrad as dg
>>> dg.einsum("ij,jk->ik", dg.ones(2, 3), dg.ones(3, 4)).shape
(2, 4)
"""

from __future__ import annotations

import math
import string

from ..tensor import Tensor
from .diagonal import diagonal
from .linalg import matmul
from .promotion import torch_name
from .reduce import sum as reduce_sum
from .shape import permute, reshape

_LETTERS = string.ascii_uppercase + string.ascii_lowercase  # torch's implicit output order (A-Z, then a-z)

__all__ = [  # the public ops (deepgrad.functional exports them)
    "einsum", "tensordot",
]


def _parse_terms(equation: str, operands) -> tuple:
    """(input label lists, output label list) with '...' replaced by shared broadcast labels."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation"
                           if len(operands) > len(terms) else
                           "einsum(): fewer operands were provided than specified in the equation")
    pos = 0
    for k, term in enumerate(terms + ([rhs] if arrow else [])):
        for ch in term.replace("...", ""):
            if ch not in _LETTERS:
                bad = eq.index(ch, pos) if ch in eq[pos:] else pos
                raise RuntimeError(f"einsum(): invalid subscript given at index {bad} in the equation string, "
                                   f"subscripts must be in [a-zA-Z]")
        pos += len(term) + 1
        if term.count("...") > 1 or term.replace("...", "").count(".") or (term.count(".") % 3):
            raise RuntimeError(f"einsum(): found '.' for operand {k} that is not part of any ellipsis")
    # the ellipsis covers the dims a term does not name; all ellipses broadcast together, right-aligned
    ell_dims = []
    for term, op in zip(terms, operands):
        named = len(term.replace("...", ""))
        if "..." in term:
            if op.ndim < named:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({named}) is more than the "
                                   f"number of dimensions ({op.ndim}) for operand {terms.index(term)}")
            ell_dims.append(op.ndim - named)
        elif named != op.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({named}) does not match the "
                               f"number of dimensions ({op.ndim}) for operand {terms.index(term)} and no ellipsis "
                               f"was given")
    n_ell = max(ell_dims, default=0)
    ell = [chr(0x100 + i) for i in range(n_ell)]  # the ellipsis dims' own labels, never letters

    def expand(term, ndim):
        if "..." not in term:
            return list(term)
        before, _, after = term.partition("...")
        k = ndim - len(before) - len(after)
        return list(before) + ell[n_ell - k:] + list(after)

    inputs = [expand(t, op.ndim) for t, op in zip(terms, operands)]
    if arrow:
        if "..." not in rhs and n_ell and any("..." in t for t in terms):
            output = list(rhs)  # ellipsis dims not in the output are summed
        else:
            output = expand(rhs, len(rhs.replace("...", "")) + n_ell)
        for ch in output:
            if output.count(ch) > 1:
                raise RuntimeError(f"einsum(): output subscript {ch} appears more than once in the output")
            if not any(ch in labels for labels in inputs):
                raise RuntimeError(f"einsum(): output subscript {ch} does not appear in the equation for any input "
                                   f"operand")
    else:
        counts = {}
        for labels in inputs:
            for ch in labels:
                counts[ch] = counts.get(ch, 0) + 1
        output = ell + sorted((c for c, n in counts.items() if n == 1 and c not in ell), key=_LETTERS.index)
    return inputs, output


def _label_sizes(inputs, operands) -> dict:
    sizes = {}
    for k, (labels, op) in enumerate(zip(inputs, operands)):
        for ch, n in zip(labels, op.shape):
            seen = sizes.get(ch)
            if seen is None or seen == 1:
                sizes[ch] = n
            elif n not in (1, seen):
                name = "..." if ord(ch) >= 0x100 else ch
                raise RuntimeError(f"einsum(): subscript {name} has size {n} for operand {k} which does not broadcast "
                                   f"with previously seen size {seen}")
    return sizes


def _prepare(k: int, x: Tensor, labels: list, sizes: dict) -> tuple:
    """Take the diagonal of repeated labels and drop size-1 dims that broadcast (the label stays elsewhere)."""
    labels = list(labels)
    while True:
        dup = next((ch for i, ch in enumerate(labels) if ch in labels[:i]), None)
        if dup is None:
            break
        i, j = labels.index(dup), labels.index(dup, labels.index(dup) + 1)
        if x.shape[i] != x.shape[j]:
            raise RuntimeError(f"einsum(): subscript {dup} is repeated for operand {k} but the sizes don't match, "
                               f"{x.shape[j]} != {x.shape[i]}")
        x = diagonal(x, 0, i, j)  # the diagonal becomes the last dim
        labels = [c for n, c in enumerate(labels) if n not in (i, j)] + [dup]
    keep = [i for i, ch in enumerate(labels) if not (x.shape[i] == 1 and sizes[ch] != 1)]
    if len(keep) != len(labels):
        x = reshape(x, tuple(x.shape[i] for i in keep))
        labels = [labels[i] for i in keep]
    return x, labels


def _sum_out(x: Tensor, labels: list, needed: set) -> tuple:
    drop = [i for i, ch in enumerate(labels) if ch not in needed]
    if drop:
        x = reduce_sum(x, tuple(drop))
        labels = [ch for ch in labels if ch in needed]
    return x, labels


def _contract(a: Tensor, la: list, b: Tensor, lb: list, needed: set) -> tuple:
    """``a`` and ``b`` joined over their shared labels as one batched matmul; labels not ``needed`` summed."""
    batch = [c for c in la if c in lb and c in needed]
    summed = [c for c in la if c in lb and c not in needed]
    left = [c for c in la if c not in lb]
    right = [c for c in lb if c not in la]
    size = {**dict(zip(la, a.shape)), **dict(zip(lb, b.shape))}

    def prod(labels):
        return math.prod(size[c] for c in labels)

    a = permute(a, *[la.index(c) for c in batch + left + summed])
    b = permute(b, *[lb.index(c) for c in batch + summed + right])
    bshape = tuple(size[c] for c in batch)
    a = reshape(a, bshape + (prod(left), prod(summed)))
    b = reshape(b, bshape + (prod(summed), prod(right)))
    out = reshape(matmul(a, b), bshape + tuple(size[c] for c in left + right))
    return out, batch + left + right


def einsum(equation, *operands) -> Tensor:
    """Sum of products over the labelled dims of the operands (Einstein summation), as torch.einsum.

    >>> einsum("bi,bi->b", ones(2, 3), ones(2, 3))
    tensor([3., 3.])
    """
    if not isinstance(equation, str):  # the sublist form: einsum(op1, [0, 1], op2, [1, 2], [0, 2])
        return einsum(*_from_sublists((equation,) + operands))
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): must provide at least one operand")
    for op in operands:
        if not isinstance(op, Tensor):
            raise TypeError(f"einsum(): operands must be Tensors, got {type(op).__name__}")
        if op.array.dtype != operands[0].array.dtype:
            raise RuntimeError(f"expected scalar type {torch_name(operands[0].dtype)} but found "
                               f"{torch_name(op.dtype)}")
    inputs, output = _parse_terms(equation, operands)
    sizes = _label_sizes(inputs, operands)
    prepared = [_prepare(k, x, labels, sizes) for k, (x, labels) in enumerate(zip(operands, inputs))]
    wanted = set(output)

    def needed_after(k):
        rest = set(wanted)
        for _, labels in prepared[k + 1:]:
            rest.update(labels)
        return rest

    x, labels = _sum_out(*prepared[0], needed_after(0) | set().union(*[set(lb) for _, lb in prepared[1:]]))
    for k in range(1, len(prepared)):
        y, ly = prepared[k]
        after = needed_after(k)
        y, ly = _sum_out(y, ly, after | set(labels))
        x, labels = _contract(x, labels, y, ly, after)
    x, labels = _sum_out(x, labels, wanted)
    if labels != output or x is operands[0]:  # a new tensor (a view, as torch's) even for "ij->ij"
        x = permute(x, *[labels.index(c) for c in output])
    return x


def _from_sublists(args) -> tuple:
    """einsum's sublist form as an equation and its operands."""
    args = list(args)
    out = args.pop() if len(args) % 2 else None
    ops, terms = args[0::2], args[1::2]

    def term(sub):
        return "".join("..." if s is Ellipsis else _LETTERS[s] for s in sub)

    eq = ",".join(term(t) for t in terms) + ("" if out is None else "->" + term(out))
    return (eq, *ops)


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Sum of products over ``dims``: the last ``dims`` dims of a with the first of b, or two lists of dims.

    >>> tensordot(ones(2, 3, 4), ones(3, 4, 5)).shape
    (2, 5)
    """
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(da) != len(db):
        raise RuntimeError(f"both dimension lists should have same length, got {len(da)} and {len(db)}")
    da, db = [d % a.ndim for d in da], [d % b.ndim for d in db]
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a.shape[i]} in dim {i} and "
                               f"second has size {b.shape[j]} in dim {j}")
    free_a = [d for d in range(a.ndim) if d not in da]
    free_b = [d for d in range(b.ndim) if d not in db]
    k = math.prod(a.shape[d] for d in da)
    left = reshape(permute(a, *(free_a + da)), (math.prod(a.shape[d] for d in free_a), k))
    right = reshape(permute(b, *(db + free_b)), (k, math.prod(b.shape[d] for d in free_b)))
    return reshape(matmul(left, right), tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b))
