"""Runs of ``deepgrad train`` / ``deepgrad gan``: a new run directory per run (never a silent overwrite),
``train --resume DIR`` continuing an interrupted run bit-exactly, plain progress lines off a terminal, and
zero taken as a value."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, cli_env, deepgrad_command, run_deepgrad

from deepgrad import gan
from deepgrad.cli_common import CommandError, claim_run_dir
from deepgrad.cli_train import add_gan_parser
from deepgrad.io import load_arrays, metadata
from deepgrad.train import load_checkpoint

EPOCHS = 20  # the interrupt comes at epoch 2: 18 epochs (~2 s) of margin for a loaded machine to deliver it
TRAIN = ["train", "mlp", "--data", "spirals", "--epochs", str(EPOCHS), "--batch-size", "8"]


def _start(args: list[str], cwd) -> subprocess.Popen:
    return subprocess.Popen([*deepgrad_command(), *args], cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def _same_tensors(a: str, b: str) -> None:
    left, right = load_arrays(a), load_arrays(b)
    assert list(left) == list(right)
    for key in left:
        if key.startswith("rng.numpy"):  # NumPy's legacy global generator: unseeded, unused by training
            continue
        assert left[key].dtype == right[key].dtype and np.array_equal(left[key], right[key]), key


@pytest.fixture
def ctrl_c_reaches_children():
    """Children take Ctrl-C as a terminal gives it: a shell that starts a job in the background (``cmd &``, as a CI
    script may) sets SIGINT to ignored, the children inherit that, and Python then installs no KeyboardInterrupt
    handler (the signal below would be lost). A handled signal resets to the default in an exec'd child."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_interrupted_run_resumes_bit_exactly_in_a_new_run_directory(tmp_path, ctrl_c_reaches_children):
    first = _start(TRAIN, tmp_path)  # the uninterrupted reference, in the default directory
    assert first.stdout.readline().strip() == "writing the run to runs/mlp-spirals"
    second = _start(TRAIN, tmp_path)  # the same command again: a new directory, and it says so
    assert second.stdout.readline().strip() == ("writing the run to runs/mlp-spirals-2 "
                                                "(runs/mlp-spirals holds an earlier run)")
    for line in second.stderr:  # plain per-epoch lines (stderr is a pipe): interrupt once epoch 2 is reported,
        assert "\r" not in line  # when epoch 1's last.ckpt is certainly written
        if line.startswith(f"Epoch 2/{EPOCHS}"):
            second.send_signal(signal.SIGINT)  # Ctrl-C
            break
    _, err = second.communicate(timeout=120)
    assert second.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == ("deepgrad train: interrupted; runs/mlp-spirals-2/last.ckpt holds the last "
                                            "finished epoch: continue the run with deepgrad train --resume "
                                            "runs/mlp-spirals-2")
    run = tmp_path / "runs" / "mlp-spirals-2"
    done_before = load_checkpoint(run / "last.ckpt")["trainer"]["epoch"]
    assert 1 <= done_before < EPOCHS  # it really stopped part-way
    assert first.wait(timeout=120) == 0, first.stderr.read()

    resumed = run_deepgrad("train", "--resume", "runs/mlp-spirals-2", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"resuming runs/mlp-spirals-2 after epoch {done_before} of {EPOCHS}\n")
    reference = tmp_path / "runs" / "mlp-spirals"
    _same_tensors(reference / "model.safetensors", run / "model.safetensors")  # the final weights
    assert metadata(reference / "model.safetensors") == metadata(run / "model.safetensors")
    _same_tensors(reference / "last.ckpt", run / "last.ckpt")  # weights, Adam moments, best weights
    _same_tensors(reference / "best.ckpt", run / "best.ckpt")
    assert (reference / "history.csv").read_text() == (run / "history.csv").read_text()

    # an explicit --out holding a run is refused, with the ways forward
    again = run_deepgrad(*TRAIN, "--out", "runs/mlp-spirals", cwd=tmp_path)
    assert_one_line_error(again, "train", 2, "--out runs/mlp-spirals already holds files of an earlier run",
                          "--overwrite", "--resume runs/mlp-spirals")
    assert sorted(os.listdir(tmp_path / "runs")) == ["mlp-spirals", "mlp-spirals-2"]


def test_claim_run_dir_never_reuses_a_run_unless_told(tmp_path):
    base = str(tmp_path / "runs" / "gan-ring")
    assert claim_run_dir(None, base, False, "gan") == (base, None)  # empty: taken as it is
    open(os.path.join(base, "metrics.json"), "w").close()
    assert claim_run_dir(None, base, False, "gan") == (base + "-2", f"{base} holds an earlier run")
    open(os.path.join(base + "-2", "x"), "w").close()
    assert claim_run_dir(None, base, False, "gan")[0] == base + "-3"
    assert claim_run_dir(None, base, True, "gan") == (base, None)  # --overwrite: the default itself
    with pytest.raises(CommandError, match="already holds files of an earlier run: pass --overwrite") as e:
        claim_run_dir(base, base, False, "gan")
    assert "--resume" not in str(e.value)  # a GAN run cannot be resumed: not offered
    assert claim_run_dir(base, base, True, "gan") == (base, None)
    assert os.listdir(base) == ["metrics.json"]  # claiming never deletes anything


def _gan(argv):
    parser = argparse.ArgumentParser(prog="deepgrad")
    add_gan_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, parser)


def test_gan_honours_zero_and_prints_plain_progress_off_a_terminal(tmp_path, capsys, monkeypatch):
    seen = {}
    real = gan.ring_trainer

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(gan, "ring_trainer", spy)
    out = tmp_path / "ring"
    assert _gan(["gan", "--steps", "20", "--instance-noise", "0", "--label-smoothing", "0", "--sample-every", "0",
                 "--batch-size", "64", "--out", str(out)]) == 0
    assert seen["instance_noise"] == 0.0 and seen["label_smoothing"] == 0.0  # 0 kept, not the ring's default 0.3
    captured = capsys.readouterr()
    assert f"writing the run to {out}\n" in captured.out
    lines = captured.err.splitlines()
    assert "\r" not in captured.err and [line.split()[1] for line in lines] == [f"{k}/20" for k in range(2, 21, 2)]
    assert lines[-1].startswith("step 20/20  d_loss ")
    assert not (out / "samples").exists()  # --sample-every 0: no intermediate samples, as its help says
    assert _gan(["gan", "--steps", "0", "--out", str(tmp_path / "zero")]) == 2
    assert capsys.readouterr().err.startswith("deepgrad gan: --steps must be a finite number >= 1, got 0")
    assert not (tmp_path / "zero").exists()


def test_gan_wgan_gp_on_the_ring_uses_the_measured_settings_and_reports_coverage(tmp_path, monkeypatch):
    seen = {}
    real = gan.ring_wgan_gp_trainer

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(gan, "ring_wgan_gp_trainer", spy)
    out = tmp_path / "wgan"
    assert _gan(["gan", "--loss", "wgan_gp", "--steps", "10", "--batch-size", "64", "--sample-every", "0",
                 "--no-progress", "--out", str(out)]) == 0
    assert seen == {"lr": 2e-3, "d_lr": None, "betas": (0.5, 0.9), "gp_weight": 1.0, "n_critic": 5}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 10 and 0 <= metrics["modes_covered"] <= 8
    assert _gan(["gan", "--loss", "wgan_gp", "--steps", "2", "--batch-size", "8", "--n-critic", "1", "--gp-weight",
                 "0", "--sample-every", "0", "--no-progress", "--out", str(tmp_path / "w0")]) == 0
    assert seen["gp_weight"] == 0.0 and seen["n_critic"] == 1  # 0 is a value, not "use the default"
