"""The judge: run a candidate's code in the sandbox on hidden cases, grade it against deepgrad.

Order of events, which is what keeps the grading honest:

1. every deepgrad module the grading needs is imported first (:func:`.exercises.preload`), so nothing is
   imported from disk after the candidate ran;
2. the cases are drawn here from a fresh OS-random seed (never written anywhere, dropped at once);
3. only the *inputs* and the candidate's source go to the sandbox (:mod:`.sandbox`): on Linux a jail of
   namespaces with a read-only root holding Python and NumPy only, where every process it starts dies
   with the check; elsewhere rlimits only, and the verdict says that the run was not isolated;
4. only after the sandbox is gone are the expected outputs computed, with deepgrad, so while the candidate
   runs no expected output exists anywhere;
5. outputs are compared strictly (exact shape and dtype, then values), gradients also against float64
   finite differences of deepgrad's forward under a random upstream gradient, random layers statistically.

>>> from deepgrad.practice import get, judge
>>> with open("relu.py", "w") as f:         # a candidate's answer (here the exercise's model solution)
...     _ = f.write(get("relu").solution)
>>> verdict = judge("relu", "relu.py")
>>> print(verdict.report)   # the cases are drawn afresh on every run
PASSED  relu: all ... hidden cases (freshly drawn shapes and values) agree with deepgrad's reference. Gradients
agree with float64 finite differences. (... s)
"""

from __future__ import annotations

import os
import secrets
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..kernels import numpy_code_only
from . import sandbox
from .exercise import FD, Case, Exercise, compare
from .sandbox import Limits, RunResult  # noqa: F401 - part of the judge's API

MAX_SOURCE_BYTES = 1 << 20

# deepgrad's grad mode is one switch for the whole process (torch's is per thread), and grading flips it: the
# finite-difference forwards run under no_grad. Two judges grading at once in two threads would turn off each
# other's autograd references, and could leave grad mode off for good (each restores the mode it saw on entry).
# Grading is short beside the sandboxed run, so it takes turns; the sandboxed runs still overlap.
_GRADING = threading.Lock()


@dataclass
class Verdict:
    """The judge's answer. ``report`` is what the CLI prints; ``reason`` is its gist on one line."""

    exercise: str
    passed: bool
    status: str                    # passed | failed | error | timeout | crashed
    cases_passed: int
    cases_total: int
    report: str
    wall: float
    failures: list[tuple[int, list[str]]] = field(default_factory=list)
    reason: str = ""
    isolated: bool = True
    isolation: str = ""

    def __str__(self) -> str:
        return self.report


def _draw_seed() -> int:
    """A fresh seed from the OS; it lives only in this call's frame."""
    return secrets.randbits(128)


# Drawing cases and grading run deepgrad's NumPy code, never its numba-compiled kernels: those would be loaded from
# numba's on-disk cache after the candidate ran (see preload()).
@numpy_code_only()
def draw_cases(ex: Exercise) -> list[Case]:
    rng = np.random.default_rng(_draw_seed())
    cases = ex.cases(rng)
    del rng
    return cases


def run_sandboxed(source: str, filename: str, calls: list[tuple[str, dict]], limits: Limits | None = None) -> RunResult:
    """Run the candidate's ``source`` on ``calls`` in the sandbox (see :mod:`.sandbox`)."""
    return sandbox.run(source, filename, calls, limits)


# ----------------------------------------------------------------------------- grading
def _split_outputs(ex: Exercise, case: Case, got: Any) -> tuple[list, list[str]]:
    names = ex.outputs[case.func]
    if len(names) == 1:
        return [got], []
    if not isinstance(got, (tuple, list)) or len(got) != len(names):
        what = f"a {type(got).__name__}" + (f" of {len(got)}" if isinstance(got, (tuple, list)) else "")
        return [], [f"expected a tuple of {len(names)} values ({', '.join(names)}), got {what}"]
    return list(got), []


def check_outputs(ex: Exercise, case: Case, got: Any, expected: Any, strict: bool = True,
                  tol=None) -> list[str]:
    """Problems of the candidate's outputs against the expected ones."""
    names = ex.outputs[case.func]
    outs, problems = _split_outputs(ex, case, got)
    if problems:
        return problems
    exp = [expected] if len(names) == 1 else list(expected)
    tol = tol or ex.tol
    problems = []
    for name, g, e in zip(names, outs, exp):
        problems += compare(name, g, e, tol, strict)
    return problems


def _loose(dtype) -> tuple[float, float]:
    return (1e-4, 1e-6) if np.dtype(dtype) == np.float64 else (2e-3, 1e-4)


def recognise(ex: Exercise, case: Case, got: Any, expected: Any = None) -> list[str]:
    """Messages of the typical mistakes that the candidate's outputs match (and that the right answer
    does not: on a 1x1 kernel a flipped kernel is no mistake)."""
    found = []
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a mistaken formula may overflow: that is the point
        for m in ex.mistakes:
            try:
                if m.applies is not None and not m.applies(case):
                    continue
                alt = m.alt(case)
                if expected is not None and not check_outputs(ex, case, alt, expected, strict=False, tol=_loose):
                    continue
                if not check_outputs(ex, case, got, alt, strict=False, tol=_loose):
                    found.append(m.message)
            except Exception:  # noqa: BLE001, S112 - a recogniser that does not apply to this output
                continue
    return found


def fd_check(fd: FD, case: Case, grads: list, h: float = 1e-6) -> list[str]:
    """Directional float64 finite differences of deepgrad's forward vs the candidate's gradients."""
    args = case.args
    for n, g in zip(fd.wrt, grads):
        if not isinstance(g, np.ndarray) or g.shape != np.shape(args[n]):
            return []  # the shape problem is already reported
    rng = np.random.default_rng()
    ups = [None if u is None else np.asarray(args[u], np.float64) for u in fd.upstream]

    def scalar(over: dict) -> float:
        outs = fd.fn(**{**args, **over})
        return sum(float(np.sum(o) if u is None else np.sum(o * u)) for o, u in zip(outs, ups))

    for _ in range(2):
        v = {n: rng.standard_normal(np.shape(args[n])) for n in fd.wrt}
        plus = scalar({n: args[n] + h * v[n] for n in fd.wrt})
        minus = scalar({n: args[n] - h * v[n] for n in fd.wrt})
        numeric = (plus - minus) / (2 * h)
        analytic = sum(float((np.asarray(g, np.float64) * v[n]).sum()) for g, n in zip(grads, fd.wrt))
        if not np.isfinite(analytic) or abs(numeric - analytic) > 1e-6 + 1e-5 * max(abs(numeric), abs(analytic)):
            return [f"gradient check: along a random direction your gradients give {analytic:.8g}, float64 central "
                    f"finite differences of the forward give {numeric:.8g} (random upstream gradient)"]
    return []


@numpy_code_only()
def grade_case(ex: Exercise, case: Case, result: dict) -> list[str]:
    """Everything wrong with one case's result (empty: passed)."""
    if "error" in result:
        err = result["error"]
        msg = "raised an exception:\n" + _indent(err, 6)
        if "MemoryError" in err or "Unable to allocate" in err:
            msg += "\n    (the memory limit was hit: are you building something far larger than needed?)"
        return [msg]
    got = result["value"]
    if ex.judge_case is not None:
        return ex.judge_case(case, got)
    expected = ex.reference(case)
    problems = check_outputs(ex, case, got, expected)
    if case.fd is not None:
        outs, bad = _split_outputs(ex, case, got)
        if not bad:
            problems += fd_check(case.fd, case, outs[case.fd.grad_slice])
    if problems:
        for msg in recognise(ex, case, got, expected):
            problems.append("likely mistake: " + msg)
    return problems


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.rstrip().splitlines())


def read_source(path: str) -> str:
    """The candidate's file as text (bounded, UTF-8), with a clear error otherwise."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"judge: no such file {path!r}")
    if os.path.getsize(path) > MAX_SOURCE_BYTES:
        raise ValueError(f"judge: {path} is larger than {MAX_SOURCE_BYTES >> 10} KB: not a solution file")
    with open(path, "rb") as f:
        data = f.read(MAX_SOURCE_BYTES + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"judge: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def judge(exercise: Exercise | str, path: str, limits: Limits | None = None) -> Verdict:
    """Judge the candidate file ``path`` on freshly drawn hidden cases of ``exercise``."""
    return judge_source(exercise, read_source(path), os.path.basename(path), limits)


def judge_source(exercise: Exercise | str, source: str, filename: str = "solution.py",
                 limits: Limits | None = None) -> Verdict:
    """Judge candidate source text (what :func:`judge` reads from a file)."""
    from .exercises import get, preload

    ex = get(exercise) if isinstance(exercise, str) else exercise
    preload()  # nothing is imported after the candidate ran
    limits = limits or Limits(timeout=ex.timeout)
    cases = draw_cases(ex)
    run = run_sandboxed(source, filename, [(c.func, c.args) for c in cases], limits)
    # Only now, with the sandbox gone, are the expected outputs computed (in grade_case).
    verdict = _verdict(ex, cases, run)
    verdict.isolated, verdict.isolation = run.isolation.isolated, run.isolation.describe()
    if not run.isolation.isolated:
        verdict.report += f"\n\nnote: this check was {run.isolation.describe()}."
    return verdict


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]


def _verdict(ex: Exercise, cases: list[Case], run: RunResult) -> Verdict:
    head, n = f"{ex.id}: ", len(cases)
    if run.status != "ok":
        if run.status == "file_error":
            lines = [f"FAILED  {head}your file failed before any case ran (reported once, not per case):",
                     _indent(run.message, 4)]
            reason = _first_line(run.message.splitlines()[-1] if run.message.strip() else run.message)
        else:
            lines, reason = [f"FAILED  {head}{run.message}"], run.message
        if run.running is not None and run.running < n and run.status in ("timeout", "cpu", "crashed", "no_result"):
            lines.append(f"  while running case {run.running + 1} of {n}: {cases[run.running].label()}")
        if run.output.strip():
            lines.append("  your program's output (last lines):\n" + _indent(run.output, 4))
        status = {"timeout": "timeout", "cpu": "timeout", "crashed": "crashed"}.get(run.status, "error")
        return Verdict(ex.id, False, status, 0, n, "\n".join(lines), run.wall, reason=_first_line(reason))
    failures = []
    with _GRADING:
        for i, case in enumerate(cases):
            result = run.results[i] if i < len(run.results) else None
            problems = ["no result came back for this case"] if result is None else grade_case(ex, case, result)
            if problems:
                failures.append((i, problems))
    if len(run.results) > n:
        failures.append((n - 1, [f"{len(run.results)} results came back for {n} cases"]))
    if not failures:
        grads = " Gradients agree with float64 finite differences." if any(c.fd for c in cases) else ""
        report = (f"PASSED  {head}all {n} hidden cases (freshly drawn shapes and values) agree with deepgrad's "
                  f"reference.{grads} ({run.wall:.2f} s)")
        return Verdict(ex.id, True, "passed", n, n, report, run.wall, reason="")
    failed = len({i for i, _ in failures})
    lines = [f"FAILED  {head}{n - failed} of {n} hidden cases passed"]
    for i, problems in failures[:2]:
        lines.append(f"\ncase {i + 1} of {n}: {cases[i].label()}")
        lines += [_indent(p, 4) for p in problems]
    if len(failures) > 2:
        lines.append(f"\n({len(failures) - 2} more failing case(s) not shown)")
    if run.output.strip():
        lines.append("\nyour program printed (last lines):\n" + _indent(run.output, 4))
    reason = f"case {failures[0][0] + 1}: {_first_line(failures[0][1][0])}"
    return Verdict(ex.id, False, "failed", n - failed, n, "\n".join(lines), run.wall, failures, reason=reason)
