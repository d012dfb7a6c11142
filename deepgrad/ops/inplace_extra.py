"""The in-place forms of the newer ops (``masked_fill_``, ``scatter_``, ``tril_``, ``addcmul_``...), each the
out-of-place op written into the tensor's memory by :func:`deepgrad.ops.inplace.inplace` (version counter,
graph rebasing and torch's refusals included).

>>> import deepgrad as dg
>>> x = dg.zeros(3)
>>> x.masked_fill_(dg.tensor([True, False, True]), 1.0)
tensor([1., 0., 1.])
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor
from .inplace import inplace


def in_place_version(name: str, outofplace):
    """``self.NAME_(*args)``: ``outofplace(self, *args)`` written into ``self``. Tensor arguments are handed
    to ``inplace`` so that one requiring grad records the op."""

    def op(self: Tensor, *args, **kwargs) -> Tensor:
        tensors = [a for a in args if isinstance(a, Tensor)]
        rest = [a for a in args if not isinstance(a, Tensor)]
        order = [isinstance(a, Tensor) for a in args]

        def compute(x, *ts):
            it, ir = iter(ts), iter(rest)
            return outofplace(x, *[next(it) if is_tensor else next(ir) for is_tensor in order], **kwargs)

        return inplace(self, compute, name, *tensors)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"In-place ``{name[:-1]}``: writes ``self``'s memory."
    return op


def _index_put(x, indices, values, accumulate=False):
    return F.index_put(x, indices, values, accumulate)


_OPS = {
    "masked_fill_": F.masked_fill, "scatter_": F.scatter, "scatter_add_": F.scatter_add,
    "scatter_reduce_": F.scatter_reduce, "index_add_": F.index_add, "index_copy_": F.index_copy,
    "index_fill_": F.index_fill, "masked_scatter_": F.masked_scatter, "index_put_": _index_put,
    "tril_": F.tril, "triu_": F.triu, "cumsum_": F.cumsum, "cumprod_": F.cumprod, "clamp_min_": F.clamp_min,
    "clamp_max_": F.clamp_max, "copysign_": F.copysign, "fmod_": F.fmod, "remainder_": F.remainder,
    "lerp_": F.lerp, "addcmul_": F.addcmul, "addcdiv_": F.addcdiv, "hypot_": F.hypot, "atan2_": F.atan2,
    "xlogy_": F.xlogy, "nan_to_num_": F.nan_to_num, "round_": F.round, "logit_": F.logit,
    "floor_divide_": F.floor_divide, "square_": F.square, "sign_": F.sign, "sin_": F.sin, "cos_": F.cos,
    "log1p_": F.log1p, "addmm_": F.addmm, "baddbmm_": F.baddbmm, "addmv_": F.addmv, "addr_": F.addr,
    "addbmm_": F.addbmm, "float_power_": F.float_power, "ldexp_": F.ldexp,
    **{f"{n}_": getattr(F, n) for n in (
        "floor", "ceil", "trunc", "fix", "frac", "rsqrt", "reciprocal", "log2", "log10", "exp2", "expm1", "tan",
        "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "erf", "erfc", "erfinv", "lgamma",
        "digamma", "sinc", "deg2rad", "rad2deg")},
}
globals().update({name: in_place_version(name, fn) for name, fn in _OPS.items()})


def fill_diagonal_(self: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """Write ``fill_value`` on the main diagonal (all dims equal; a tall matrix restarts it every ``cols + 1``
    rows with ``wrap``)."""
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    mask = np.zeros(self.shape, dtype=bool)
    flat = mask.reshape(-1)
    step = sum(mask.strides[d] // mask.itemsize for d in range(self.ndim))  # one step along every dim at once
    end = flat.size if (wrap and self.ndim == 2) or self.ndim > 2 else min(self.shape) * self.shape[-1]
    flat[:end:step] = True
    mask = Tensor._make(backend.move_to(mask, self.device), None)
    return inplace(self, lambda x: F.where(mask, fill_value, x), "fill_diagonal_")
