"""Issue 9's benchmark additions: DCGAN step, inference throughput workloads, the GPU-only VGG batch,
samples/s in the report, and the conv-layers-vs-GEMM-rate report (machinery only, no speed assertions)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deepgrad  # noqa: E402
from benchmarks import gemm_fraction, get_workload, list_workloads, runner  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NEW_CPU = ("dcgan_step", "lenet5_infer_b1", "lenet5_infer_b256", "lstm_infer_b1", "lstm_infer_b256")
LIBS = (("deepgrad", deepgrad), ("torch", torch))


def _run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _values(step, n):
    return [np.asarray(step().detach().cpu().numpy(), dtype=np.float64) for _ in range(n)]


def test_registration_devices_and_samples():
    cpu = {w.name for w in list_workloads("cpu")}
    cuda = {w.name for w in list_workloads("cuda")}
    assert set(NEW_CPU) <= cpu and set(NEW_CPU) <= cuda
    assert "vgg_small_adam_b512" in cuda and "vgg_small_adam_b512" not in cpu
    assert "batch 512" in get_workload("vgg_small_adam_b512").description
    for batch in (1, 256):
        assert get_workload(f"lenet5_infer_b{batch}").samples == batch
        assert get_workload(f"lstm_infer_b{batch}").samples == batch
    assert get_workload("dcgan_step").samples is None and get_workload("dcgan_step").comparable_steps == 2


def test_dcgan_agrees_over_three_steps_and_updates_both_nets():
    values = {name: _values(get_workload("dcgan_step").build(name, lib, "cpu"), 3) for name, lib in LIBS}
    for a, b in zip(values["deepgrad"], values["torch"]):
        assert a.shape == (2,)  # (D loss, G loss)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    d_losses = [v[0] for v in values["deepgrad"]]
    assert len(set(np.round(d_losses, 6))) == 3  # the parameters moved between steps


@pytest.mark.parametrize("name", ["lenet5_infer_b1", "lenet5_infer_b256", "lstm_infer_b1", "lstm_infer_b256"])
def test_inference_is_forward_only_and_matches_torch(name):
    wl = get_workload(name)
    outs = {}
    for lib_name, lib in LIBS:
        step = wl.build(lib_name, lib, "cpu")
        first, second = step(), step()
        assert not first.requires_grad and first.grad_fn is None  # no_grad: no graph recorded
        assert first.shape[0] == wl.samples
        np.testing.assert_array_equal(first.numpy(), second.numpy())  # eval: a pure function of the input
        outs[lib_name] = first.numpy()
    np.testing.assert_allclose(outs["deepgrad"], outs["torch"], rtol=1e-4, atol=1e-6)


def test_table_shows_samples_per_second_only_where_declared():
    base = {"check": {"agree": True}, "deepgrad_ms": 2.0, "torch_ms": 1.0, "ratio": 2.0, "ratio_q1": 1.9,
            "ratio_q3": 2.1, "deepgrad_peak_rss_mib": 100.0, "deepgrad_peak_rss_increase_mib": 1.0,
            "torch_peak_rss_mib": 200.0, "torch_peak_rss_increase_mib": 2.0}
    plain = runner.format_table([dict(base, workload="train")], "t")
    assert "samples/s" not in plain
    infer = dict(base, workload="infer", samples=256, deepgrad_samples_per_s=128000.0, torch_samples_per_s=256000.0)
    text = runner.format_table([dict(base, workload="train"), infer], "t")
    assert "deepgrad samples/s" in text and "128000" in text and "256000" in text
    train_line = next(line for line in text.splitlines() if line.startswith("train"))
    assert train_line.rstrip().endswith("-")


def test_quick_inference_run_reports_samples_per_second(tmp_path):
    out = tmp_path / "bench.json"
    proc = _run_cli("--quick", "--only", "lstm_infer_b1", "--threads", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "samples/s" in proc.stdout and "WARNING" not in proc.stdout
    assert "conv layers vs the float32 GEMM rate" not in proc.stdout  # --only: no GEMM report
    row = json.loads(out.read_text())["results"][0]
    assert row["samples"] == 1 and row["check"]["agree"] is True
    for lib in ("deepgrad", "torch"):
        assert row[f"{lib}_samples_per_s"] == pytest.approx(1e3 / row[f"{lib}_ms"])


def test_conv_layer_flops_and_shapes():
    layer = gemm_fraction.ConvLayer("x", 2, 3, 8, 8, 4, 3, stride=2, padding=1)
    assert layer.out_hw == (4, 4)
    assert layer.flops_fwd == 2 * 2 * 4 * 3 * 3 * 3 * 4 * 4 and layer.flops_bwd == 2 * layer.flops_fwd
    by_name = {la.name: la for la in gemm_fraction.LAYERS}
    assert by_name["lenet5.conv1"].out_hw == (28, 28) and by_name["lenet5.conv2"].out_hw == (10, 10)
    assert by_name["vgg_small.conv4"].shape == "64x64x16x16 -> 64x16x16 k3 s1 p1"


def test_conv_timing_through_both_public_apis():
    layer = gemm_fraction.ConvLayer("tiny", 2, 3, 6, 6, 4, 3, padding=1)
    effort = gemm_fraction.Effort.quick()
    for _, lib in LIBS:
        times = gemm_fraction._conv_times(lib, layer, effort, np.random.default_rng(0))
        assert times["fwd_s"] > 0 and times["bwd_s"] > 0


def test_combine_and_report_fractions():
    layers = {la.name: {"fwd_s": 0.01, "bwd_s": 0.02} for la in gemm_fraction.LAYERS}
    broken = dict(layers, **{"lenet5.conv1": {"error": "Traceback ...\nValueError: conv2d: bad"}})
    replies = {"deepgrad": {"numpy_gemm_gflops": 100.0, "numpy_gemm_gflops_before_after": [90.0, 100.0],
                            "layers": broken, "threads": 1, "blas": "openblas"},
               "torch": {"torch_mm_gflops": 80.0, "layers": layers, "threads": 1}}
    run = gemm_fraction.combine(1, replies)
    row = run["layers"][-1]
    expected = gemm_fraction.LAYERS[-1].flops_fwd / 0.01 / 1e9
    assert row["deepgrad_fwd_gflops"] == pytest.approx(expected)
    assert row["deepgrad_fwd_fraction"] == pytest.approx(expected / 100.0)
    assert row["torch_bwd_gflops"] == pytest.approx(expected)  # twice the FLOPs in twice the time
    assert "deepgrad_error" in run["layers"][0] and "torch_fwd_gflops" in run["layers"][0]
    text = gemm_fraction.format_report({"runs": [run]})
    assert "100.0 GFLOP/s" in text and "FAILED" in text and "ValueError: conv2d: bad" in text
    assert f"{expected:.1f} ({expected / 100:.2f})" in text


def test_gemm_fraction_cli_quick(tmp_path):
    out = tmp_path / "gemm.json"
    proc = _run_cli("--gemm-fraction", "--quick", "--threads", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "conv layers vs the float32 GEMM rate, threads = 1" in proc.stdout
    result = json.loads(out.read_text())
    (run,) = result["gemm_fraction"]["runs"]
    assert run["numpy_gemm_gflops"] > 0 and run["torch_mm_gflops"] > 0
    assert [r["layer"] for r in run["layers"]] == [la.name for la in gemm_fraction.LAYERS]
    for r in run["layers"]:
        for key in ("deepgrad_fwd_fraction", "deepgrad_bwd_fraction", "torch_fwd_gflops", "torch_bwd_gflops"):
            assert r[key] > 0


def test_gemm_fraction_refuses_cuda():
    proc = _run_cli("--gemm-fraction", "--device", "cuda", timeout=60)
    assert proc.returncode != 0 and "CPU report" in proc.stderr


def _canned_gemm(thread_settings, quick=False, timeout=600.0, log=print):
    layers = {la.name: {"fwd_s": 0.01, "bwd_s": 0.02} for la in gemm_fraction.LAYERS}
    replies = {"deepgrad": {"numpy_gemm_gflops": 50.0, "numpy_gemm_gflops_before_after": [50.0, 49.0],
                            "layers": layers, "threads": 1, "blas": "openblas"},
               "torch": {"torch_mm_gflops": 40.0, "layers": layers, "threads": 1}}
    return {"method": "m", "quick": quick, "runs": [gemm_fraction.combine(t, replies) for t in thread_settings]}


@pytest.mark.parametrize("extra, expected", [((), True), (("--no-gemm-fraction",), False),
                                             (("--only", "mlp_tiny"), False)])
def test_full_cpu_suite_ends_with_the_gemm_report(monkeypatch, tmp_path, capsys, extra, expected):
    from benchmarks import __main__ as cli

    def fake_suite(workloads, thread_settings, settings, log=print):
        return {"suite": "cpu", "device": "cpu", "machine": runner.machine_info(), "libraries": {}, "results": []}

    monkeypatch.setattr(runner, "run_suite", fake_suite)
    monkeypatch.setattr(gemm_fraction, "run", _canned_gemm)
    out = tmp_path / "r.json"
    assert cli.main(["--quick", "--threads", "1", "--json", str(out), *extra]) == 0
    text = capsys.readouterr().out
    assert ("conv layers vs the float32 GEMM rate, threads = 1" in text) is expected
    assert ("gemm_fraction" in json.loads(out.read_text())) is expected
