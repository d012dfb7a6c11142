"""deepgrad.distributed end to end: helper scripts under tests/distributed_scripts run on 2 ranks with mpiexec.

Skipped cleanly when mpi4py (or an mpiexec) is missing: install the `distributed` extra. Every run has a
timeout, so a hang fails the test instead of stalling the suite.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import deepgrad.distributed as dist
from deepgrad.distributed.launch import find_mpiexec

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "distributed_scripts"
RANKS = 2
MPIEXEC = find_mpiexec()

needs_mpi = pytest.mark.skipif(not dist.is_mpi_available() or MPIEXEC is None,
                               reason="needs mpi4py and mpiexec (pip install 'deepgrad[distributed]')")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def _check(proc: subprocess.CompletedProcess, what: str, ranks: int) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{what} failed (exit {proc.returncode}):\n{out[-4000:]}"
    for r in range(ranks):
        assert f"rank {r}/{ranks}" in out, f"{what}: rank {r} did not report OK:\n{out[-4000:]}"


def run_ranks(script: str, *args: str, ranks: int = RANKS, timeout: float = 60) -> str:
    # python -m mpi4py: an exception on one rank aborts the job instead of leaving the others waiting
    cmd = [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py", str(SCRIPTS / script), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script} on {ranks} ranks hung (no exit within {timeout} s):\n{e.stdout}\n{e.stderr}")
    _check(proc, script, ranks)
    return proc.stdout


@needs_mpi
def test_collectives_all_reduce_broadcast_all_gather():
    run_ranks("collectives_check.py")


@needs_mpi
def test_ddp_matches_single_process_on_the_global_batch():
    out = run_ranks("ddp_parity.py")
    for case in ("plain", "syncbn", "accumulate", "one_bucket"):
        assert out.count(f"OK {case} ") == RANKS, out


@needs_mpi
def test_ddp_parameter_without_gradient_does_not_hang():
    out = run_ranks("ddp_unused.py", timeout=45)
    for mode in ("find_unused", "finish", "error_then_finish"):
        assert out.count(f"OK {mode} ") == RANKS, out


@needs_mpi
def test_trainer_under_deepgrad_launch(tmp_path):
    cmd = [sys.executable, "-m", "deepgrad.distributed.launch", "-n", str(RANKS),
           str(SCRIPTS / "trainer_check.py"), str(tmp_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=_env(), cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"trainer_check.py hung:\n{e.stdout}\n{e.stderr}")
    _check(proc, "trainer_check.py", RANKS)
    assert not (tmp_path / "rank1").exists() and (tmp_path / "rank0" / "history.csv").exists()


@needs_mpi
def test_an_exception_on_one_rank_ends_the_job(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("import deepgrad.distributed as dist\n"
                      "dist.init_process_group('mpi')\n"
                      "if dist.get_rank() == 1:\n    raise ValueError('boom')\n"
                      "dist.barrier()\n")
    cmd = [sys.executable, "-m", "deepgrad.distributed.launch", "-n", "2", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_env(), cwd=ROOT)
    assert proc.returncode != 0 and "boom" in proc.stderr


@pytest.mark.skipif(not dist.is_nccl_available(), reason="needs a CUDA GPU and CuPy with NCCL")
def test_nccl_backend_one_rank_end_to_end():
    proc = subprocess.run([sys.executable, str(SCRIPTS / "nccl_check.py")], capture_output=True, text=True,
                          timeout=120, env=_env(), cwd=ROOT)
    _check(proc, "nccl_check.py", 1)
