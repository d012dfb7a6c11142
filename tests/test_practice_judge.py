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
sandbox_mod = importlib.import_module("deepgrad.practice.sandbox")

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
    """The seed lives only in the judge's memory: not in the child's argv, env, files, nor anything of the
    parent it can reach; and deepgrad (the reference) cannot be imported from the sandbox."""
    seed = 0x5EED_C0FFEE_1234_5678_9ABC_DEF0
    monkeypatch.setattr(judge_mod, "_draw_seed", lambda: seed)
    runs = []
    real = judge_mod.run_sandboxed
    monkeypatch.setattr(judge_mod, "run_sandboxed", lambda *a, **k: runs.append(real(*a, **k)) or runs[-1])
    spy = """
        import glob, os, sys
        import numpy as np
        seen = [repr(sys.argv), repr(dict(os.environ))]
        for pid in [os.getppid(), 1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            for name in ("environ", "cmdline"):
                try:
                    seen.append(open(f"/proc/{pid}/{name}", "rb").read().decode("latin1"))
                except OSError as e:
                    seen.append(repr(e))
        files = glob.glob("/*") + glob.glob("/etc/*") + glob.glob("/dev/*")
        for root in (os.getcwd(), os.environ.get("HOME", "."), "/tmp"):
            files += glob.glob(os.path.join(root, "**"), recursive=True)
        for f in files:
            if os.path.isfile(f) and not f.endswith(".so"):
                try:
                    seen.append(f + ":" + open(f, "rb").read(1 << 16).decode("latin1"))
                except OSError:
                    pass
        for fd in os.listdir("/proc/self/fd"):
            try:
                seen.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass
        try:
            import deepgrad
            seen.append("IMPORTED deepgrad")
        except ImportError as e:
            seen.append("blocked: " + str(e))
        TEXT = "\\n".join(seen)
        def relu_forward(x): return TEXT
        def relu_backward(x, grad_out): return grad_out
        """
    v = judge("relu", _file(tmp_path, spy))
    assert not v.passed
    assert runs[-1].status == "ok", v.report
    text = runs[-1].results[0]["value"]
    assert isinstance(text, str) and len(text) > 100
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


def test_a_syntax_error_or_a_misnamed_function_is_reported_once(tmp_path):
    v = judge("relu", _file(tmp_path, "import numpy as np\ndef relu_forward(x) return x\n", "syntax.py"))
    assert v.status == "error" and v.report.count("SyntaxError") == 1 and "reported once" in v.report
    assert "case 2" not in v.report and "syntax.py" in v.report and v.reason.startswith("SyntaxError")
    v = judge("relu", _file(tmp_path, RELU_OK.replace("def relu_backward", "def relu_bakward"), "typo.py"))
    assert v.status == "error" and v.report.count("defines no function relu_backward") == 1
    assert "it defines: relu_bakward, relu_forward" in v.report and "case 1" not in v.report


def test_candidate_output_is_shown_without_terminal_control_sequences(tmp_path):
    v = judge("relu", _file(tmp_path, _relu_with("""
        import sys
        print("\\x1b[2J\\x1b[HPASSED\\x1b]0;title\\x07 relu\\r\\u202eevil\\x9b31m")
        def relu_forward(x):
            raise ValueError("\\x1b[31mred\\x1b[0m")
        """)))
    assert not v.passed and "\x1b" not in v.report and "\x07" not in v.report and "\u202e" not in v.report
    assert "\x9b" not in v.report and "\r" not in v.report
    assert "PASSED relu" in v.report and "ValueError: red" in v.report  # the text stays, the controls go


def test_a_check_that_is_not_isolated_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPGRAD_PRACTICE_SANDBOX", "none")
    v = judge("relu", _file(tmp_path, RELU_OK))
    assert v.passed and not v.isolated and "NOT ISOLATED" in v.report and "DEEPGRAD_PRACTICE_SANDBOX=none" in v.report
    v = judge("relu", _file(tmp_path, "x = 1\n"))
    assert not v.passed and "NOT ISOLATED" in v.report
    monkeypatch.setattr(sandbox_mod.shutil, "which", lambda name: None)
    monkeypatch.delenv("DEEPGRAD_PRACTICE_SANDBOX")
    iso = sandbox_mod.isolation()
    assert not iso.isolated and "unshare" in iso.reason


def test_a_jail_that_cannot_be_built_falls_back_and_says_why(monkeypatch):
    calls = []
    real = sandbox_mod._run_once

    def failing_once(iso, *a):
        calls.append(iso.mode)
        if iso.isolated:
            return sandbox_mod.RunResult("jail_failed", message="mount(tmpfs): Operation not permitted", isolation=iso)
        return real(iso, *a)

    monkeypatch.setattr(sandbox_mod, "_run_once", failing_once)
    monkeypatch.setattr(sandbox_mod, "_FAILED", {})
    monkeypatch.delenv("DEEPGRAD_PRACTICE_SANDBOX", raising=False)
    if not sandbox_mod.isolation().isolated:
        pytest.skip(sandbox_mod.isolation().reason)
    v = judge_mod.judge_source("relu", RELU_OK)
    assert v.passed and not v.isolated and calls[-1] == "none"
    assert "could not be built: mount(tmpfs): Operation not permitted" in v.report


def test_the_rootless_jail(tmp_path, monkeypatch):
    """The user-namespace jail (what a user without root gets): no capabilities, nothing of the host."""
    monkeypatch.setenv("DEEPGRAD_PRACTICE_SANDBOX", "userns")
    if not sandbox_mod.isolation().isolated:
        pytest.skip(sandbox_mod.isolation().reason)
    probe = sandbox_mod._PROBE + "\ndef caps():\n    return open('/proc/self/status').read()\n"
    paths = sandbox_mod._host_paths()
    res = sandbox_mod.run(probe, "probe.py", [("probe", {"paths": paths}), ("caps", {})])
    assert res.status == "ok" and res.isolation.mode == "userns" and res.isolation.own_user_ns, res
    assert res.identity.startswith("uid 0, capabilities 0000000000000000, user ns user:[")
    import json

    seen, status = json.loads(res.results[0]["value"]), res.results[1]["value"]
    assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status
    assert seen["writable"] == ["/tmp"] and not any(seen["visible"].values()) and seen["interfaces"] == ["lo"]
    assert len(seen["processes"]) == 2 and seen["importable"] == {"numpy": True, "deepgrad": False, "torch": False}
    v = judge("relu", _file(tmp_path, RELU_OK))
    assert v.passed and v.isolated


@pytest.mark.parametrize("blob, reason", [
    (b"R\xff\xff\xff\xff", "a frame of 4294967295 bytes"),
    (b"P\x04\x00\x00\x00\x00", "a frame of 4 bytes with only 1 left"),
    (b"E\x00\x00\x00\x00P\x04", "a truncated frame header"),
    (b"Q\x00\x00\x00\x00", "an unknown frame kind"),
    (b"R\x08\x00\x00\x00\xff\xff\xff\x00abcd", "a result header longer than its frame"),
])
def test_the_result_parser_refuses_malformed_streams_before_allocating(blob, reason):
    with pytest.raises(sandbox_mod.BadStream, match=reason):
        sandbox_mod.parse_stream(blob)


def test_the_result_parser_checks_every_array_against_its_bytes():
    import json
    import struct

    def frame(header: dict, body: bytes = b"") -> bytes:
        head = json.dumps(header).encode()
        payload = struct.pack("<I", len(head)) + head + body
        return b"R" + struct.pack("<I", len(payload)) + payload

    ok = frame({"i": 0, "time": 0.1, "value": {"t": "tuple", "v": [{"t": "nd", "k": 0}, {"t": "float", "v": "2.5"}]},
                "arrays": [{"dtype": "<f4", "shape": [2, 3]}]}, np.arange(6, dtype=np.float32).tobytes())
    out = sandbox_mod.parse_stream(ok + b"E\x00\x00\x00\x00")
    value = out["results"][0]["value"]
    assert out["ended"] and value[1] == 2.5 and value[0].dtype == np.float32 and value[0].shape == (2, 3)
    assert np.array_equal(value[0], np.arange(6, dtype=np.float32).reshape(2, 3)) and value[0].flags.writeable
    huge = {"i": 0, "value": {"t": "nd", "k": 0}, "arrays": [{"dtype": "<f8", "shape": [2**20, 2**19]}]}
    for header, body, reason in [
        (huge, b"", "an array of 4398046511104 bytes with only 0 sent"),
        ({**huge, "arrays": [{"dtype": "|O", "shape": [1]}]}, b"", "unsupported dtype"),
        ({**huge, "arrays": [{"dtype": "<f8", "shape": [-1]}]}, b"", "invalid shape"),
        ({**huge, "arrays": [{"dtype": "<f8", "shape": [1] * 40}]}, b"", "invalid shape"),
        ({**huge, "arrays": [{"dtype": "<f8", "shape": [1]}]}, b"\0" * 9, "1 stray bytes"),
        ({"i": 0, "value": {"t": "nd", "k": 3}, "arrays": []}, b"", "malformed value of type 'nd'"),
        ({"i": 0, "value": {"t": "int", "v": "9" * 5000}, "arrays": []}, b"", "malformed value"),
        ({"i": "x", "value": {"t": "none"}, "arrays": []}, b"", "valid case index"),
    ]:
        with pytest.raises(sandbox_mod.BadStream, match=reason):
            sandbox_mod.parse_stream(frame(header, body))
    nested = {"t": "list", "v": []}
    for _ in range(30):
        nested = {"t": "list", "v": [nested]}
    with pytest.raises(sandbox_mod.BadStream, match="nested too deeply"):
        sandbox_mod.parse_stream(frame({"i": 0, "value": nested, "arrays": []}))
    deep_json = b"[" * 100_000
    with pytest.raises(sandbox_mod.BadStream, match="unreadable header"):
        sandbox_mod.parse_stream(b"R" + struct.pack("<I", len(deep_json) + 4) + struct.pack("<I", len(deep_json))
                                 + deep_json)
