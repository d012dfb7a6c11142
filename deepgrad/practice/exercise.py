"""What an exercise is, and how one output is compared with the reference.

An :class:`Exercise` holds everything about one coding task: the statement, the starter file,
hints in levels, a reference solution written as a candidate would (NumPy only), a generator of
hidden cases, the reference outputs (computed with deepgrad in the judge's process) and the
recognisers of typical mistakes. The judge (:mod:`deepgrad.practice.judge`) runs the candidate
on the cases in a separate process and compares here, strictly: the exact shape, the exact
dtype, then the values within a tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A placeholder the judge sends in place of a random generator: the sandbox replaces it with a
# fresh ``np.random.default_rng()`` of its own (the candidate's randomness is never the judge's).
RNG = ("__deepgrad_practice_rng__",)

DIFFICULTY = {1: "easy", 2: "medium", 3: "hard"}


@dataclass
class FD:
    """A float64 finite-difference check of the candidate's gradients.

    ``fn(**args)`` is deepgrad's forward as a tuple of float64 arrays; the scalar checked is
    ``sum_k <upstream_k, fn(x)_k>`` (``upstream[k]`` names the argument holding output k's
    upstream gradient, None for weight 1). ``wrt`` names the inputs whose gradients the candidate
    returns, in order, at positions ``grad_slice`` of its outputs.
    """

    fn: Callable[..., tuple]
    wrt: tuple[str, ...]
    upstream: tuple[str | None, ...]
    grad_slice: slice = field(default_factory=lambda: slice(None))


@dataclass
class Case:
    """One hidden call ``func(**args)``. ``fd`` and ``meta`` stay in the judge's process."""

    func: str
    args: dict[str, Any]
    fd: FD | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def label(self) -> str:
        """The call described by shapes and parameters (never the values of the arrays)."""
        parts = [f"{k}={describe(v)}" for k, v in self.args.items()]
        text = f"{self.func}({', '.join(parts)})"
        return f"{text} [{self.note}]" if self.note else text


@dataclass
class Mistake:
    """A typical mistake: ``alt(case)`` returns what a solution making it would return."""

    message: str
    alt: Callable[[Case], Any]
    applies: Callable[[Case], bool] | None = None


@dataclass
class Mutant:
    """A plausible wrong solution the judge must reject: the classic bug, as an edit of the reference.

    ``edit`` replaces text that occurs exactly once in the reference solution (``(old, new)``; several pairs
    may follow each other); ``source`` gives a whole file instead. ``mentions``, when set, is a fragment the
    failure report must contain (the recogniser that names the mistake).
    """

    bug: str
    edit: tuple[str, ...] = ()
    source: str | None = None
    mentions: str = ""

    def apply(self, solution: str) -> str:
        """The mutant's source file."""
        if self.source is not None:
            return self.source
        if not self.edit or len(self.edit) % 2:
            raise ValueError(f"mutant {self.bug!r}: edit must be (old, new) pairs")
        text = solution
        for old, new in zip(self.edit[::2], self.edit[1::2]):
            if text.count(old) != 1:
                raise ValueError(f"mutant {self.bug!r}: {old!r} occurs {text.count(old)} times in the solution")
            text = text.replace(old, new)
        return text


@dataclass
class Exercise:
    """One coding exercise. ``outputs`` maps each function to its output names (one name: the
    function returns one value; several: a tuple in that order)."""

    id: str
    title: str
    topic: str
    question: str
    difficulty: int
    statement: str
    starter: str
    hints: list[str]
    solution: str
    outputs: dict[str, tuple[str, ...]]
    cases: Callable[[np.random.Generator], list[Case]]
    reference: Callable[[Case], Any] | None = None
    mistakes: list[Mistake] = field(default_factory=list)
    judge_case: Callable[[Case, Any], list[str]] | None = None  # statistical exercises judge themselves
    tolerance: dict[str, tuple[float, float]] = field(default_factory=dict)  # dtype name -> (rtol, atol)
    timeout: float = 10.0
    mutants: list[Mutant] = field(default_factory=list)  # at least two; a test runs them through the judge

    @property
    def functions(self) -> tuple[str, ...]:
        return tuple(self.outputs)

    def tol(self, dtype) -> tuple[float, float]:
        name = np.dtype(dtype).name if dtype is not None else "float64"
        return self.tolerance.get(name, DEFAULT_TOL.get(name, DEFAULT_TOL["float64"]))


DEFAULT_TOL = {"float64": (1e-6, 1e-9), "float32": (2e-4, 2e-5), "float16": (1e-2, 1e-3)}


def describe(v: Any) -> str:
    """A short description of an argument: shape and dtype for arrays, the value for scalars."""
    if isinstance(v, np.ndarray):
        return f"<{v.dtype} array {tuple(v.shape)}>"
    if v is RNG or v == RNG:
        return "<numpy Generator>"
    if isinstance(v, (list, tuple)):
        if len(v) and all(isinstance(e, np.ndarray) for e in v):
            return f"<list of {len(v)} arrays: {', '.join(str(tuple(e.shape)) for e in v)}>"
        if len(v) and all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in v):
            if isinstance(v, list) or len(v) > 8:  # values stay hidden; a short tuple is a shape
                return f"<list of {len(v)} numbers>"
        return repr(type(v)(describe(e) if isinstance(e, np.ndarray) else e for e in v))
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {describe(e)}" for k, e in v.items()) + "}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return repr(v)


# ----------------------------------------------------------------------------- comparison
def _fmt(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.6g}"


@dataclass
class Unsupported:
    """A value of a type the judge does not accept, as returned by a candidate (only its type name)."""

    type: str

    def __repr__(self) -> str:
        return f"<a {self.type}>"


def _kind(v) -> str:
    if isinstance(v, Unsupported):
        return f"a {v.type}"
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, np.floating)):
        return "float"
    return type(v).__name__


def compare(name: str, got: Any, exp: Any, tol: Callable[[Any], tuple[float, float]], strict: bool = True) -> list[str]:
    """Problems of ``got`` against ``exp`` (empty when they agree). ``strict`` checks dtypes."""
    if isinstance(exp, np.ndarray):
        return _compare_array(name, got, exp, tol, strict)
    if isinstance(exp, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)):
            return [f"{name}: expected a bool, got {_kind(got)} {got!r:.40}"]
        return [] if bool(got) == bool(exp) else [f"{name}: expected {bool(exp)}, got {bool(got)}"]
    if isinstance(exp, (int, np.integer)):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
            return [f"{name}: expected an int, got {_kind(got)} {got!r:.40}"]
        return [] if int(got) == int(exp) else [f"{name}: expected {int(exp)}, got {int(got)}"]
    if isinstance(exp, float):
        if isinstance(got, np.ndarray) and got.ndim == 0 and got.dtype.kind == "f":
            got = got[()]
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (float, int, np.floating, np.integer)):
            return [f"{name}: expected a number (float), got {_kind(got)} {got!r:.40}"]
        rtol, atol = tol(np.float64)
        g = float(got)
        if math.isclose(g, exp, rel_tol=rtol, abs_tol=atol) or (math.isnan(g) and math.isnan(exp)):
            return []
        return [f"{name}: expected {_fmt(exp)}, got {_fmt(g)}" + _scalar_ratio(g, exp)]
    if isinstance(exp, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return [f"{name}: expected a list of {len(exp)}, got {_kind(got)}"]
        if len(got) != len(exp):
            return [f"{name}: expected {len(exp)} items, got {len(got)}"]
        out = []
        for i, (g, e) in enumerate(zip(got, exp)):
            out += compare(f"{name}[{i}]", g, e, tol, strict)
        return out
    if isinstance(exp, dict):
        if not isinstance(got, dict):
            return [f"{name}: expected a dict with keys {sorted(exp)}, got {_kind(got)}"]
        if set(got) != set(exp):
            return [f"{name}: expected keys {sorted(exp)}, got {sorted(map(str, got))}"]
        out = []
        for k in exp:
            out += compare(f"{name}[{k!r}]", got[k], exp[k], tol, strict)
        return out
    raise TypeError(f"compare: unsupported reference value of type {type(exp).__name__}")


def _scalar_ratio(g: float, e: float) -> str:
    if e != 0 and g != 0 and math.isfinite(g):
        r = g / e
        if abs(r + 1) < 1e-6:
            return " (the sign is flipped)"
        if abs(r - round(r)) < 1e-6 and abs(r) > 1 or abs(1 / r - round(1 / r)) < 1e-6 and abs(r) < 1:
            return f" (off by a factor of {r:.6g})"
    return ""


def _compare_array(name, got, exp, tol, strict) -> list[str]:
    if isinstance(got, (np.generic, float, int)) and not isinstance(got, (bool, np.bool_)) and exp.ndim == 0:
        got = np.asarray(got, dtype=exp.dtype if isinstance(got, (float, int)) else None)
    if not isinstance(got, np.ndarray):
        return [f"{name}: expected a NumPy array of shape {exp.shape} and dtype {exp.dtype}, got {_kind(got)}"]
    if got.shape != exp.shape:
        return [f"{name}: wrong shape {got.shape}, expected {exp.shape}" + shape_hint(got.shape, exp.shape)]
    if strict and got.dtype != exp.dtype:
        return [f"{name}: wrong dtype {got.dtype}, expected {exp.dtype}" + dtype_hint(got.dtype, exp.dtype)]
    if exp.dtype.kind in "biu":
        bad = got != exp
        if not bad.any():
            return []
        return [f"{name}: {int(bad.sum())} of {bad.size} elements differ" + _worst(bad.astype(float), got, exp)]
    rtol, atol = tol(exp.dtype)
    g, e = got.astype(np.float64), exp.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g - e)
        excess = np.where(np.isnan(e) & np.isnan(g), 0.0, err / (atol + rtol * np.abs(e)))
    excess = np.where(np.isnan(excess), np.inf, excess)
    bad = excess > 1
    if not bad.any():
        return []
    head = f"{name}: {int(bad.sum())} of {bad.size} elements wrong"
    finite = np.isfinite(e)
    if (~np.isfinite(g) & finite).any():
        head += " (you returned NaN or inf where the answer is finite: an overflow? use a numerically stable form)"
    elif np.isfinite(err).all():
        head += f" (max abs error {err.max():.3g})"
    return [head + _worst(excess, got, exp) + value_hint(g, e)]


def _worst(score: np.ndarray, got: np.ndarray, exp: np.ndarray, k: int = 3) -> str:
    flat = np.argsort(-score.reshape(-1), kind="stable")[:k]
    lines = []
    for f in flat:
        if score.reshape(-1)[f] <= 0:
            break
        idx = np.unravel_index(int(f), score.shape) if score.ndim else ()
        lines.append(f"\n      at index {tuple(int(i) for i in idx)}: expected {_fmt(exp[idx])}, got {_fmt(got[idx])}")
    return "".join(lines)


def shape_hint(got: tuple, exp: tuple) -> str:
    """A guess at why a shape is wrong (the judge never broadcasts)."""
    if len(got) == len(exp) >= 2 and got == exp[::-1]:
        return " — looks transposed"
    if len(got) == len(exp) >= 2 and got[:-2] == exp[:-2] and got[-2:] == exp[-2:][::-1]:
        return " — the last two axes look swapped (transposed)"
    if len(got) > len(exp) and (got[len(got) - len(exp):] == exp or got[:len(exp)] == exp):
        return " — extra axes: did you forget to sum over the batch (or spatial) axes?"
    if math.prod(got) == math.prod(exp):
        return " — same number of elements: a reshape or axis-order problem"
    if tuple(d for d in got if d != 1) == tuple(d for d in exp if d != 1):
        return " — differs only in axes of size 1 (keepdims? squeeze?); the judge does not broadcast"
    try:
        if np.broadcast_shapes(got, exp) == exp:
            return " — it would broadcast to the right shape, but the judge does not broadcast: did you forget a " \
                   "sum over the batch, or keep a reduced axis?"
    except ValueError:
        pass
    return ""


def dtype_hint(got, exp) -> str:
    if np.dtype(exp) == np.float32 and np.dtype(got) == np.float64:
        return (" — something upcast to float64: np.zeros(shape)/np.ones without dtype=, or a float64 array "
                "constant? create buffers with dtype=x.dtype (or np.zeros_like)")
    if np.dtype(exp).kind == "f" and np.dtype(got).kind in "iub":
        return " — integer/bool result: did you build it from an integer array or forget a float cast?"
    return ""


def value_hint(g: np.ndarray, e: np.ndarray) -> str:
    """Generic recognisers for a wrong array of the right shape."""
    if not (np.isfinite(g).all() and np.isfinite(e).all()) or not e.size:
        return ""
    ee = float((e * e).sum())
    if ee == 0:
        return ""
    c = float((g * e).sum()) / ee
    resid = float(((g - c * e) ** 2).sum())
    if resid <= 1e-10 * max(ee * c * c, 1e-300):
        if abs(c + 1) < 1e-6:
            return "\n    likely mistake: the sign is flipped"
        return f"\n    likely mistake: off by a constant factor {c:.6g} (a missing or extra mean / scale?)"
    if e.ndim >= 2 and e.shape[-1] == e.shape[-2] and np.allclose(g, np.swapaxes(e, -1, -2), rtol=1e-4, atol=1e-6):
        return "\n    likely mistake: the result is the transpose of the expected one"
    return ""
