"""Helpers shared by the exercise families: deepgrad references, gradient cases, random inputs.

deepgrad is imported inside the functions: ``deepgrad practice list`` must stay instant.
"""

from __future__ import annotations

from collections.abc import Callable
from textwrap import dedent

import numpy as np

from ..exercise import FD, Case


def T(a, grad: bool = False):  # noqa: N802 - reads like a constructor
    """A deepgrad Tensor on a copy of ``a``."""
    from ...tensor import Tensor

    return Tensor(np.array(a), requires_grad=grad)


def arr(t) -> np.ndarray:
    """The NumPy array of a deepgrad Tensor (a copy)."""
    return np.array(t.array)


def src(text: str) -> str:
    """Source text of a starter or solution file."""
    return dedent(text).strip() + "\n"


def grad_case(func: str, args: dict, forward: Callable, wrt: tuple[str, ...], upstream: tuple[str | None, ...],
              n_values: int = 0, note: str = "") -> Case:
    """A case whose outputs are ``n_values`` forward values followed by the gradients w.r.t. ``wrt``.

    ``forward(**tensors)`` builds deepgrad's forward (a tuple of Tensors) from Tensor arguments;
    the same function gives the reference (autograd) and the finite-difference check (no_grad).
    """

    def numpy_forward(**a):
        from ...autograd import no_grad

        with no_grad():
            return tuple(arr(o) for o in forward(**_tensors(a, ())))

    case = Case(func, args, note=note, fd=FD(numpy_forward, wrt, upstream, slice(n_values, None)))
    case.meta["forward"] = forward
    case.meta["n_values"] = n_values
    return case


def _tensors(args: dict, wrt: tuple[str, ...]) -> dict:
    out = {}
    for k, v in args.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            out[k] = T(v, grad=k in wrt)
        else:
            out[k] = v
    return out


def autograd_reference(case: Case) -> tuple:
    """Forward values and gradients of a :func:`grad_case` computed by deepgrad's autograd."""
    fd: FD = case.fd
    ts = _tensors(case.args, fd.wrt)
    outs = case.meta["forward"](**ts)
    loss = None
    for o, u in zip(outs, fd.upstream):
        term = o.sum() if u is None else (o * T(case.args[u])).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    values = [_value(o) for o in outs[:case.meta["n_values"]]]
    grads = [arr(ts[n].grad) if ts[n].grad is not None else np.zeros_like(case.args[n]) for n in fd.wrt]
    return tuple(values + grads)


def _value(t):
    a = arr(t)
    return float(a) if a.ndim == 0 else a


def single(fn: Callable[[Case], tuple]) -> Callable[[Case], object]:
    """Unwrap a one-output reference."""
    return lambda case: fn(case)[0]


def normal(rng: np.random.Generator, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(dtype)


def away_from_zero(rng: np.random.Generator, shape, dtype=np.float64, low: float = 0.05) -> np.ndarray:
    """Values with |x| >= low: finite differences never straddle a kink at 0."""
    mag = rng.uniform(low, 2.0, size=shape)
    return (mag * rng.choice([-1.0, 1.0], size=shape)).astype(dtype)


def distinct(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    """Values at least 0.1 apart (no ties, and no max/argmax flips under finite differences)."""
    n = int(np.prod(shape))
    vals = (rng.permutation(n) - n / 2) * 0.1 + rng.uniform(-0.02, 0.02, size=n)
    return vals.reshape(shape).astype(dtype)


def pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]
