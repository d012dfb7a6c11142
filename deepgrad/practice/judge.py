"""The judge: run a candidate's file in a sandboxed process on hidden cases, grade against deepgrad.

Order of events, which is what keeps the grading honest:

1. the cases are drawn here from a fresh OS-random seed (never written anywhere, dropped at once);
2. only the *inputs* go to a child process (``_child.py``, which never imports deepgrad), run with
   ``resource`` limits (address space, CPU seconds, file size, no core dumps), in its own session,
   under a wall-clock timeout after which its whole process group is killed;
3. only after the child has exited are the expected outputs computed, with deepgrad, so while the
   candidate runs no expected output exists anywhere it could read (not even in this process's memory);
4. outputs are compared strictly (exact shape and dtype, then values), gradients also against float64
   finite differences of deepgrad's forward under a random upstream gradient, and random layers
   statistically.

>>> from deepgrad.practice import judge
>>> verdict = judge.judge("relu", "relu.py")
>>> print(verdict.report)
"""

from __future__ import annotations

import io
import json
import os
import pickle
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .exercise import FD, Case, Exercise, Unsupported, compare

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")
MAX_RESULT_BYTES = 64 << 20


@dataclass
class Limits:
    """Resource limits of one judged run."""

    timeout: float = 10.0          # wall-clock seconds
    cpu: float | None = None       # CPU seconds (default: the timeout)
    memory_mb: int = 1024          # address space of the child
    file_mb: int = 64              # the largest file the child may write (its results, its prints)


@dataclass
class RunResult:
    """What came back from the sandbox."""

    status: str                    # ok | timeout | cpu | crashed | import_error | no_result
    results: list = field(default_factory=list)
    message: str = ""
    output: str = ""               # tail of what the candidate printed
    running: int | None = None     # the call in progress when the child died
    wall: float = 0.0


@dataclass
class Verdict:
    """The judge's answer. ``report`` is what the CLI prints."""

    exercise: str
    passed: bool
    status: str                    # passed | failed | error | timeout | crashed
    cases_passed: int
    cases_total: int
    report: str
    wall: float
    failures: list[tuple[int, list[str]]] = field(default_factory=list)


def _draw_seed() -> int:
    """A fresh seed from the OS; it lives only in this call's frame."""
    return secrets.randbits(128)


def draw_cases(ex: Exercise) -> list[Case]:
    rng = np.random.default_rng(_draw_seed())
    cases = ex.cases(rng)
    del rng
    return cases


# ----------------------------------------------------------------------------- the sandbox
def _child_env(work: str) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "LANG": "C.UTF-8", "TMPDIR": work}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = "1"  # one thread: less address space reserved, and the CPU limit means what it says
    return env


def _set_limits(limits: Limits):
    cpu = int(np.ceil(limits.cpu if limits.cpu is not None else limits.timeout))

    def apply() -> None:  # runs in the child between fork and exec
        def cap(which, value):
            _, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))

        cap(resource.RLIMIT_CPU, cpu)
        cap(resource.RLIMIT_AS, limits.memory_mb << 20)
        cap(resource.RLIMIT_FSIZE, limits.file_mb << 20)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply, cpu


def _tail(path: str, n: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            text = f.read().decode("utf-8", "replace")
        return ("..." if size > n else "") + text
    except OSError:
        return ""


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_sandboxed(path: str, calls: list[tuple[str, dict]], limits: Limits | None = None) -> RunResult:
    """Run ``func(**args)`` for each call from the candidate file ``path`` in a limited child process."""
    limits = limits or Limits()
    work = tempfile.mkdtemp(prefix="deepgrad-judge-")
    try:
        with open(os.path.join(work, "inputs.pkl"), "wb") as f:
            pickle.dump(calls, f, protocol=pickle.HIGHEST_PROTOCOL)
        log_path = os.path.join(work, "output.txt")
        preexec, cpu = _set_limits(limits)
        t0 = time.perf_counter()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", CHILD, work, os.path.abspath(path)],
                cwd=work, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_child_env(work),
                preexec_fn=preexec, start_new_session=True, close_fds=True,
            )
            timed_out = False
            try:
                rc = proc.wait(timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                rc = proc.wait()
            _kill_group(proc.pid)  # anything the candidate forked dies with it
        wall = time.perf_counter() - t0
        output = _tail(log_path)
        running = _progress(work)
        res = RunResult("ok", output=output, running=running, wall=wall)
        if timed_out:
            res.status, res.message = "timeout", (f"time limit exceeded: still running after {limits.timeout:g} s "
                                                  f"(an infinite loop, or a far too slow solution?)")
        elif rc < 0:
            sig = -rc
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
            if sig in (signal.SIGXCPU, signal.SIGKILL) and wall >= 0.8 * cpu:
                res.status, res.message = "cpu", f"CPU time limit of {cpu} s exceeded (an infinite loop?)"
            elif sig == signal.SIGXFSZ:
                res.status, res.message = "crashed", f"wrote more than {limits.file_mb} MB (printing in a loop?)"
            else:
                what = {signal.SIGSEGV: "a segmentation fault", signal.SIGABRT: "an abort (SIGABRT)",
                        signal.SIGBUS: "a bus error", signal.SIGFPE: "a floating-point exception"}.get(sig, name)
                res.status, res.message = "crashed", f"your process crashed with {what}"
        else:
            _read_results(work, res, rc)
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _progress(work: str) -> int | None:
    try:
        with open(os.path.join(work, "progress"), "rb") as f:
            text = f.read(8).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def _read_results(work: str, res: RunResult, rc: int) -> None:
    path = os.path.join(work, "result.bin")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        res.status = "no_result"
        res.message = f"your process exited (status {rc}) before reporting its results (sys.exit / os._exit?)"
        return
    if os.path.getsize(path) > MAX_RESULT_BYTES:
        res.status, res.message = "no_result", "your results are far too large"
        return
    with open(path, "rb") as f:
        blob = f.read()
    try:
        head, _, rest = blob.partition(b"\n")
        header = json.loads(head)
        arrays = np.load(io.BytesIO(rest), allow_pickle=False)  # never unpickle what a candidate wrote
        if header.get("import_error"):
            res.status, res.message = "import_error", "your file failed to run:\n" + str(header["import_error"])
            return
        res.results = [
            {"error": str(r["error"])} if "error" in r else {"value": _decode(r["value"], arrays), "time": r["time"]}
            for r in header["results"]
        ]
    except Exception as exc:  # noqa: BLE001 - a malformed result is the candidate's doing
        res.status, res.message = "no_result", f"could not read your results ({type(exc).__name__})"


def _decode(v: dict, arrays) -> Any:
    t = v["t"]
    if t == "nd":
        return arrays[v["k"]]
    if t == "np":
        return arrays[v["k"]][()]
    if t == "bool":
        return bool(v["v"])
    if t == "int":
        return int(v["v"])
    if t == "float":
        return float(v["v"])
    if t == "none":
        return None
    if t in ("list", "tuple"):
        items = [_decode(e, arrays) for e in v["v"]]
        return items if t == "list" else tuple(items)
    if t == "dict":
        return {k: _decode(e, arrays) for k, e in v["v"]}
    return Unsupported(str(v.get("type", "?")))


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


def judge(exercise: Exercise | str, path: str, limits: Limits | None = None) -> Verdict:
    """Judge the candidate file ``path`` on freshly drawn hidden cases of ``exercise``."""
    from .exercises import get

    ex = get(exercise) if isinstance(exercise, str) else exercise
    if not os.path.isfile(path):
        raise FileNotFoundError(f"judge: no such file {path!r}")
    limits = limits or Limits(timeout=ex.timeout)
    cases = draw_cases(ex)
    run = run_sandboxed(path, [(c.func, c.args) for c in cases], limits)
    # Only now, with the child gone, are the expected outputs computed (in grade_case).
    head = f"{ex.id}: "
    if run.status != "ok":
        lines = [f"FAILED  {head}{run.message}"]
        if run.running is not None and run.running < len(cases) and run.status in ("timeout", "cpu", "crashed"):
            lines.append(f"  while running case {run.running + 1} of {len(cases)}: {cases[run.running].label()}")
        if run.output.strip():
            lines.append("  your program's output (last lines):\n" + _indent(run.output, 4))
        status = {"timeout": "timeout", "cpu": "timeout", "crashed": "crashed"}.get(run.status, "error")
        return Verdict(ex.id, False, status, 0, len(cases), "\n".join(lines), run.wall)
    failures = []
    for i, (case, result) in enumerate(zip(cases, run.results)):
        problems = grade_case(ex, case, result)
        if problems:
            failures.append((i, problems))
    n = len(cases)
    passed = not failures and len(run.results) == n
    if passed:
        grads = " Gradients agree with float64 finite differences." if any(c.fd for c in cases) else ""
        report = (f"PASSED  {head}all {n} hidden cases (freshly drawn shapes and values) agree with deepgrad's "
                  f"reference.{grads} ({run.wall:.2f} s)")
        return Verdict(ex.id, True, "passed", n, n, report, run.wall)
    lines = [f"FAILED  {head}{n - len(failures)} of {n} hidden cases passed"]
    for i, problems in failures[:2]:
        lines.append(f"\ncase {i + 1} of {n}: {cases[i].label()}")
        lines += [_indent(p, 4) for p in problems]
    if len(failures) > 2:
        lines.append(f"\n({len(failures) - 2} more failing case(s) not shown)")
    if run.output.strip():
        lines.append("\nyour program printed (last lines):\n" + _indent(run.output, 4))
    return Verdict(ex.id, False, "failed", n - len(failures), n, "\n".join(lines), run.wall, failures)
