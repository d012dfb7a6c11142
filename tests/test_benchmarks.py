"""The benchmark runner: its machinery, output fields and workload parity (no speed assertions)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deepgrad  # noqa: E402
from benchmarks import list_workloads, runner  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_quick_run_prints_table_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = _run_cli("--quick", "--only", "op_overhead,mlp_tiny", "--threads", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    result = json.loads(out.read_text())
    for needle in ("machine :", result["machine"]["cpu"], "cores", "numpy", "torch 2.", "BLAS", "threads = 1",
                   "workload", "deepgrad ms/step", "torch ms/step", "ratio dg/torch", "RSS MiB", "op_overhead",
                   "mlp_tiny", str(out)):
        assert needle in text, f"{needle!r} missing from the output:\n{text}"
    assert "WARNING" not in text

    assert result["suite"] == "cpu" and result["device"] == "cpu"
    assert result["machine"]["logical_cores"] >= 1 and result["machine"]["cpu"]
    assert [r["workload"] for r in result["results"]] == ["op_overhead", "mlp_tiny"]
    for row in result["results"]:
        assert row["threads"] == 1 and row["rotations"] == 3
        assert row["check"]["agree"] is True
        assert len(row["ratios"]) == 3
        for lib in ("deepgrad", "torch"):
            assert row[f"{lib}_ms"] > 0
            assert len(row[f"{lib}_block_ms"]) == 3 and min(row[f"{lib}_block_ms"]) > 0
            assert row[f"{lib}_peak_rss_mib"] > 0 and row[f"{lib}_peak_rss_increase_mib"] >= 0
            assert row["block_steps"][lib] >= 1
            assert row["libraries"][lib]["threads"] == 1  # the single-thread setting reached the worker
        assert row["ratio"] > 0 and row["ratio_q1"] <= row["ratio"] <= row["ratio_q3"]
        assert row["ratio"] == pytest.approx(float(np.median(row["ratios"])))


@pytest.mark.skipif(deepgrad.cuda_is_available() and torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_suite_skips_cleanly_without_gpu():
    proc = _run_cli("--quick", "--device", "cuda", "--only", "mlp_tiny", "--threads", "1", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "GPU suite skipped" in proc.stdout


@pytest.mark.parametrize("wl", list_workloads("cpu"), ids=lambda w: w.name)
def test_workload_computes_the_same_on_both_libraries(wl):
    checks = {}
    for name, lib in (("deepgrad", deepgrad), ("torch", torch)):
        step = wl.build(name, lib, "cpu")
        values = [np.asarray(step().detach().cpu().numpy(), dtype=np.float64) for _ in range(wl.comparable_steps)]
        checks[name] = values
    for a, b in zip(checks["deepgrad"], checks["torch"]):  # later steps: after a parameter update
        assert a.shape == b.shape
        scale = max(np.abs(a).sum(), np.abs(b).sum())
        assert abs(a.sum() - b.sum()) <= runner.CHECK_RTOL * scale, (a.sum(), b.sum())


def test_summarize_median_of_per_rotation_ratios():
    blocks = {"deepgrad": [(2.0, 10), (3.0, 10), (9.0, 10)], "torch": [(1.0, 10), (1.0, 10), (0.5, 5)]}
    s = runner.summarize(blocks)
    assert s["ratios"] == pytest.approx([2.0, 3.0, 9.0])  # per-step: 0.2/0.1, 0.3/0.1, 0.9/0.1
    assert s["ratio"] == pytest.approx(3.0)
    assert s["deepgrad_ms"] == pytest.approx(300.0) and s["torch_ms"] == pytest.approx(100.0)
    assert s["ratio_q1"] == pytest.approx(2.5) and s["ratio_q3"] == pytest.approx(6.0)


def test_check_agreement_flags_a_different_computation():
    a = {"check_sum": 1.0, "check_abs_sum": 1.0, "check_shape": []}
    assert runner.check_agreement({"deepgrad": a, "torch": dict(a, check_sum=1.0 + 1e-6)})[0]
    assert not runner.check_agreement({"deepgrad": a, "torch": dict(a, check_sum=1.01)})[0]
    assert not runner.check_agreement({"deepgrad": a, "torch": dict(a, check_shape=[2])})[0]


def test_select_workloads_rejects_unknown_names():
    assert [w.name for w in runner.select_workloads("mlp_tiny", "cpu")] == ["mlp_tiny"]
    with pytest.raises(SystemExit, match="unknown workload"):
        runner.select_workloads("mlp_tiny,no_such_thing", "cpu")
