"""The judge's sandbox: limits, crashes, hostile solutions, and the order that keeps expected outputs
out of reach while a candidate runs."""

from __future__ import annotations

import importlib
import textwrap

import numpy as np
import pytest

from deepgrad.practice import Limits, all_exercises, judge
from deepgrad.practice.exercise import compare

judge_mod = importlib.import_module("deepgrad.practice.judge")  # the package's `judge` is the function

RELU_OK = """
import numpy as np
def relu_forward(x): return np.maximum(x, 0)
def relu_backward(x, grad_out): return grad_out * (x > 0)
"""


def _file(tmp_path, text, name="cand.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def _relu_with(body: str) -> str:
    backward = "\ndef relu_backward(x, grad_out): return grad_out * (x > 0)\n"
    return "import numpy as np\n" + textwrap.dedent(body) + backward


def test_infinite_loop_hits_the_time_limit(tmp_path):
    path = _file(tmp_path, _relu_with("def relu_forward(x):\n    while True:\n        pass\n"))
    v = judge("relu", path, Limits(timeout=2.0))
    assert not v.passed and v.status == "timeout"
    assert "limit" in v.report and "while running case 1 of" in v.report and "relu_forward(x=" in v.report
    assert v.wall < 6


def test_cpu_limit_when_the_wall_limit_is_generous(tmp_path):
    path = _file(tmp_path, _relu_with("def relu_forward(x):\n    while True:\n        pass\n"))
    v = judge("relu", path, Limits(timeout=20.0, cpu=1))
    assert v.status == "timeout" and "CPU time limit" in v.report and v.wall < 10


def test_abort_is_a_crash_not_a_judge_failure(tmp_path):
    path = _file(tmp_path, _relu_with("import os\ndef relu_forward(x):\n    os.abort()\n"))
    v = judge("relu", path)
    assert v.status == "crashed" and "SIGABRT" in v.report


def test_segfault_is_a_crash(tmp_path):
    path = _file(tmp_path, _relu_with("import ctypes\ndef relu_forward(x):\n    return ctypes.string_at(0)\n"))
    v = judge("relu", path)
    assert v.status == "crashed" and "segmentation fault" in v.report
    assert "Fatal Python error" in v.report  # faulthandler's traceback reaches the user


@pytest.mark.parametrize("alloc", ["np.ones((100_000, 100_000))", "[0] * 10**10", "bytearray(10**10)"])
def test_huge_memory_is_refused_in_the_child(tmp_path, alloc):
    path = _file(tmp_path, _relu_with(f"def relu_forward(x):\n    big = {alloc}\n    return x\n"))
    v = judge("relu", path, Limits(timeout=10, memory_mb=512))
    assert not v.passed and v.status == "failed"
    assert "MemoryError" in v.report and "memory limit" in v.report


def test_exit_without_results_and_import_errors(tmp_path):
    v = judge("relu", _file(tmp_path, _relu_with("import os\ndef relu_forward(x):\n    os._exit(3)\n")))
    assert v.status == "error" and "status 3" in v.report
    v = judge("relu", _file(tmp_path, "import numpy as np\ndef relu_forward(x) return x\n", "syntax.py"))
    assert v.status == "error" and "SyntaxError" in v.report
    v = judge("relu", _file(tmp_path, "import deepgrad\n", "cheat.py"))
    assert v.status == "error" and "not allowed" in v.report


def test_unpicklable_or_odd_return_values_are_reported(tmp_path):
    path = _file(tmp_path, _relu_with("""
        class Sneaky:
            def __eq__(self, other): return True
        def relu_forward(x):
            return Sneaky() if x.ndim == 1 else np.array([object()], dtype=object)
        """))
    v = judge("relu", path)
    assert v.status == "failed" and "got Unsupported" not in v.report
    assert "expected a NumPy array" in v.report


def test_a_solution_cannot_find_the_seed(tmp_path, monkeypatch):
    """The seed lives only in the judge's memory: not in the child's argv, env, files, nor the parent's
    environ/cmdline; and deepgrad (the reference) cannot be imported from the sandbox."""
    seed = 0x5EED_C0FFEE_1234_5678_9ABC_DEF0
    monkeypatch.setattr(judge_mod, "_draw_seed", lambda: seed)
    dump = tmp_path / "dump.txt"
    spy = f"""
        import glob, os, sys
        import numpy as np
        seen = [repr(sys.argv), repr(dict(os.environ))]
        ppid = os.getppid()
        for name in ("environ", "cmdline"):
            try:
                seen.append(open(f"/proc/{{ppid}}/{{name}}", "rb").read().decode("latin1"))
            except OSError as e:
                seen.append(repr(e))
        for root in (os.getcwd(), os.path.dirname(os.getcwd()), os.environ.get("HOME", ".")):
            for f in glob.glob(os.path.join(root, "**"), recursive=True):
                if os.path.isfile(f):
                    seen.append(f + ":" + open(f, "rb").read().decode("latin1"))
        for fd in os.listdir("/proc/self/fd"):
            try:
                seen.append(os.readlink(f"/proc/self/fd/{{fd}}"))
            except OSError:
                pass
        try:
            import deepgrad
            seen.append("IMPORTED deepgrad")
        except ImportError as e:
            seen.append("blocked: " + str(e))
        open({str(dump)!r}, "w").write("\\n".join(seen))
        def relu_forward(x): return x
        def relu_backward(x, grad_out): return grad_out
        """
    v = judge("relu", _file(tmp_path, spy))
    assert not v.passed
    text = dump.read_text()
    for form in (str(seed), hex(seed), format(seed, "x"), seed.to_bytes(16, "little").decode("latin1")):
        assert form not in text
    assert "blocked: importing 'deepgrad' is not allowed" in text and "IMPORTED" not in text


def test_expected_outputs_are_computed_only_after_the_child_exits(tmp_path, monkeypatch):
    ex = all_exercises()["relu"]
    events = []
    real_run, real_ref = judge_mod.run_sandboxed, ex.reference

    def run(*a, **k):
        events.append("child start")
        out = real_run(*a, **k)
        events.append("child exited")
        return out

    def ref(case):
        events.append("reference")
        return real_ref(case)

    monkeypatch.setattr(judge_mod, "run_sandboxed", run)
    monkeypatch.setattr(ex, "reference", ref)
    v = judge(ex, _file(tmp_path, RELU_OK))
    assert v.passed
    assert events[:2] == ["child start", "child exited"] and set(events[2:]) == {"reference"}


def test_fresh_cases_each_run():
    ex = all_exercises()["conv2d-forward"]
    a, b = judge_mod.draw_cases(ex), judge_mod.draw_cases(ex)
    assert any(x.args["x"].shape != y.args["x"].shape or not np.array_equal(x.args["x"], y.args["x"])
               for x, y in zip(a, b))


def test_strict_shape_and_dtype_no_broadcasting():
    tol = lambda dt: (1e-6, 1e-9)  # noqa: E731
    exp = np.zeros((3, 1), np.float32)
    assert "wrong shape (3,)" in compare("y", np.zeros(3, np.float32), exp, tol)[0]
    assert "wrong shape (1, 3)" in compare("y", np.zeros((1, 3), np.float32), exp, tol)[0]
    assert "wrong dtype float64" in compare("y", np.zeros((3, 1)), exp, tol)[0]
    assert "dtype=x.dtype" in compare("y", np.zeros((3, 1)), exp, tol)[0]
    assert compare("y", np.zeros((3, 1), np.float32), exp, tol) == []
    msg = compare("g", np.ones((4, 5)), np.ones(5), tol)[0]
    assert "sum over the batch" in msg


def test_failure_shows_worst_elements_not_whole_inputs(tmp_path):
    v = judge("softmax", _file(tmp_path, """
        import numpy as np
        def softmax(x, dim):
            e = np.exp(x - x.max(axis=dim, keepdims=True))
            out = e / e.sum(axis=dim, keepdims=True)
            out.reshape(-1)[0] += 0.5
            return out
        """))
    assert not v.passed
    assert "at index (0" in v.report and "expected" in v.report and "got" in v.report
    assert "<float" in v.report and "array(" not in v.report  # inputs are described by shape, never printed


def test_gradient_check_uses_finite_differences(tmp_path):
    """A backward that is wrong is also caught by float64 finite differences."""
    v = judge("tanh", _file(tmp_path, """
        import numpy as np
        def tanh_forward(x): return np.tanh(x)
        def tanh_backward(x, grad_out): return grad_out * (1 - np.tanh(x) ** 2) * 1.01
        """))
    assert not v.passed and "finite differences" in v.report and "off by a constant factor 1.01" in v.report
