"""scripts/gpu_check.sh on a machine without a usable GPU: it refuses in seconds with one clear line and exit
status 2 (never hangs, never runs the suites), and its dry run lists every stage with its timeout.

A fake ``cupy`` package (put on the path through DEEPGRAD_GPU_DEPS, as the script allows for carried packages)
plays the broken machines: one that sees no device, one whose driver call never returns.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import deepgrad

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
STAGES = ("probe", "env", "tests", "bench", "tests_fused", "bench_extra", "nccl2")

pytestmark = pytest.mark.skipif(os.environ.get("DEEPGRAD_GPU_CHECK") == "1",
                                reason="running inside scripts/gpu_check.sh itself")


def _run(*args, env_extra=None, timeout=60):
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop("DEEPGRAD_GPU_DEPS", None)
    env.update(env_extra or {})
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd="/")


def _fake_cupy(tmp_path, body: str) -> str:
    pkg = tmp_path / "deps" / "cupy"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body))
    return str(tmp_path / "deps")


def test_script_is_committed_executable():
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK)


def test_dry_run_lists_every_stage_with_a_timeout(tmp_path):
    proc = _run(tmp_path / "out", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    header, *lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(STAGES)
    timeouts = [int(line.split()[1].rstrip("s")) for line in lines]
    # each stage's own timeout is capped by what is left of the whole run's budget (plus 10 s to kill)
    budget = int(header.split("budget ")[1].split("s")[0])
    assert all(0 < t <= budget for t in timeouts) and budget + 30 < 8 * 60, (budget, timeouts)
    assert "--device cuda" in proc.stdout and "DEEPGRAD_CUDA_FUSED=1" in proc.stdout
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_usage_errors():
    assert _run().returncode == 64
    assert _run("a", "b").returncode == 64
    assert _run("a", "--bogus").returncode == 64


@pytest.mark.skipif(deepgrad.cuda_is_available(), reason="a GPU is present")
def test_without_cupy_it_refuses_in_one_line(tmp_path):
    deps = tmp_path / "empty"
    deps.mkdir()
    # an empty DEEPGRAD_GPU_DEPS folder; CuPy is not installed on the CPU test machines
    proc = _run(tmp_path / "out", env_extra={"DEEPGRAD_GPU_DEPS": str(deps)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("gpu_check: no usable CUDA GPU: CuPy does not import")
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert summary.startswith("probe: failed") and "nothing was run" in summary
    assert not (tmp_path / "out" / "tests.log").exists()


def test_a_machine_that_sees_no_device(tmp_path):
    deps = _fake_cupy(tmp_path, """
        class cuda:
            class runtime:
                @staticmethod
                def getDeviceCount():
                    return 0
    """)
    proc = _run(tmp_path / "out", env_extra={"DEEPGRAD_GPU_DEPS": deps})
    assert proc.returncode == 2
    assert "no usable CUDA GPU: CuPy sees no CUDA device (device count 0)" in proc.stderr


def test_a_hanging_driver_is_cut_off(tmp_path):
    deps = _fake_cupy(tmp_path, """
        import time
        class cuda:
            class runtime:
                @staticmethod
                def getDeviceCount():
                    time.sleep(3600)
    """)
    proc = _run(tmp_path / "out", env_extra={"DEEPGRAD_GPU_DEPS": deps, "GPU_CHECK_PROBE_TIMEOUT": "3"}, timeout=45)
    assert proc.returncode == 2
    assert "the CuPy probe hung (no answer in 3s)" in proc.stderr
