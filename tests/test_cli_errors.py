"""Every ``deepgrad`` command fails on a user error with one line ``deepgrad CMD: what was wrong, what to do``
and a non-zero status, never a traceback: bad values (zero is a value, not "the default"), unknown names,
missing scripts, training checkpoints given to export, a missing onnxruntime, malformed run files and
checkpoints, a read-only output directory and a full disk.

The real console script runs in subprocesses (several at once: each mostly waits for its imports)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, mount_prefix, run_deepgrad

import deepgrad as dg
from deepgrad.models import MLP, save_model
from deepgrad.train import save_checkpoint

# case id -> (argv, exit status, fragments the one line must hold)
SIMPLE = {
    "train-negative-lr": (["train", "mlp", "--lr", "-1"], 2, ["--lr must be", "> 0", "got -1", "e.g. --lr"]),
    "train-zero-lr": (["train", "mlp", "--lr", "0"], 2, ["--lr must be", "got 0"]),
    "train-zero-batch": (["train", "mlp", "--batch-size", "0"], 2, ["--batch-size must be", ">= 1", "got 0"]),
    "train-zero-epochs": (["train", "mlp", "--epochs", "0"], 2, ["--epochs must be", "got 0"]),
    "train-zero-limit": (["train", "mlp", "--limit", "0"], 2, ["--limit must be", "got 0"]),
    "train-unknown-pretrained": (["train", "vgg11_bn", "--pretrained", "vgg99_imagenet"], 2,
                                 ["'vgg99_imagenet'", "lenet5_digits", "vgg11_bn_digits", "safetensors file"]),
    "train-bad-float": (["train", "mlp", "--lr", "fast"], 2, ["--lr: invalid float value: 'fast'", "--help"]),
    "train-no-model": (["train"], 2, ["give a MODEL", "lenet5", "--resume DIR"]),
    "train-resume-missing": (["train", "--resume", "no-such-run"], 2, ["no-such-run", "no such run directory"]),
    "gan-zero-steps": (["gan", "--steps", "0"], 2, ["--steps must be", ">= 1", "got 0"]),
    "gan-zero-batch": (["gan", "--batch-size", "0"], 2, ["--batch-size must be", "got 0"]),
    "gan-zero-lr": (["gan", "--lr", "0"], 2, ["--lr must be", "> 0", "got 0"]),
    "gan-zero-pack": (["gan", "--pack", "0"], 2, ["--pack must be", "got 0"]),
    "gan-image-size-12": (["gan", "--data", "digits", "--image-size", "12"], 2, ["--image-size", "12", "8, 16, 32"]),
    "gan-wgan-digits": (["gan", "--data", "digits", "--loss", "wgan_gp"], 2, ["needs --data ring", "batch norm"]),
    "gan-gp-weight-alone": (["gan", "--gp-weight", "1"], 2, ["--gp-weight is for --loss wgan_gp"]),
    "gan-wgan-negative-gp": (["gan", "--loss", "wgan_gp", "--gp-weight", "-1"], 2, ["--gp-weight must be", "got -1"]),
    "gan-wgan-pack": (["gan", "--loss", "wgan_gp", "--pack", "2"], 2, ["--pack is not used with --loss wgan_gp"]),
    "launch-missing-script": (["launch", "-n", "2", "no_such_script.py"], 2, ["no such script 'no_such_script.py'"]),
    "export-missing-file": (["export", "missing.safetensors"], 2, ["no such checkpoint"]),
}

RUN_SETTINGS = {"model": "mlp", "data": "spirals", "data_dir": "data", "epochs": 2, "batch_size": 64, "lr": 1e-3,
                "optimizer": "adam", "width": None, "pretrained": None, "freeze": None, "patience": None,
                "limit": None, "seed": 0}


def _run_dir(root, name: str, run_json: str | None, last_ckpt: bytes | None = None) -> str:
    path = root / name
    path.mkdir()
    if run_json is not None:
        (path / "run.json").write_text(run_json)
    if last_ckpt is not None:
        (path / "last.ckpt").write_bytes(last_ckpt)
    return name


def _valid_run_json(**changes) -> str:
    return json.dumps({"format": "deepgrad.run/1", "settings": {**RUN_SETTINGS, **changes}})


def _prepare(root) -> dict[str, tuple]:
    """Files the cases need, and the cases that use them: (argv, status, fragments[, prefix, extra_path])."""
    cases = {k: v for k, v in SIMPLE.items()}
    # export: a training checkpoint next to the weights deepgrad train writes
    run = root / "run"
    run.mkdir()
    dg.manual_seed(0)
    model = MLP(2, [4], 2)
    save_checkpoint(run / "best.ckpt", {"model": model.state_dict(), "epoch": 3})
    save_model(model, run / "model.safetensors", "mlp", {"in_features": 2, "hidden_features": [4], "out_features": 2})
    cases["export-training-checkpoint"] = (["export", "run/best.ckpt"], 2,
                                           ["run/best.ckpt is a training checkpoint", "run/model.safetensors"])
    fake = root / "no_onnxruntime"  # an installation without onnxruntime: importing it fails
    fake.mkdir()
    (fake / "onnxruntime.py").write_text("raise ModuleNotFoundError(\"No module named 'onnxruntime'\")\n")
    cases["export-verify-without-onnxruntime"] = (
        ["export", "run/model.safetensors", "--verify"], 1,
        ["--verify needs onnxruntime", "pip install 'deepgrad[onnx]'", "drop --verify"], (), fake)
    cases["export-bad-config-json"] = (["export", "run/model.safetensors", "--config", "{num_classes: 3"], 1,
                                       ["--config is not valid JSON"])
    # --resume with a malformed run file or checkpoint: the file is named, the fault said
    cases["resume-bad-json"] = (["train", "--resume", _run_dir(root, "bad-json", '{"format": "deepgrad.run/1", ')],
                                1, ["bad-json/run.json", "not valid JSON", "line 1"])
    deep = "[" * 100_000 + "]" * 100_000  # past the parser's recursion limit
    cases["resume-deep-json"] = (["train", "--resume", _run_dir(root, "deep", deep)], 1,
                                 ["deep/run.json", "nests deeper than 16 levels"])
    nested = '{"format": "deepgrad.run/1", "settings": ' + "[" * 40 + "]" * 40 + "}"  # parses, but too deep
    cases["resume-nested-json"] = (["train", "--resume", _run_dir(root, "nested", nested)], 1,
                                   ["nested/run.json", "nests deeper than 16 levels"])
    cases["resume-json-list"] = (["train", "--resume", _run_dir(root, "as-list", "[1, 2]")], 1,
                                 ["as-list/run.json", "is a JSON list, not an object"])
    no_lr = json.loads(_valid_run_json())
    del no_lr["settings"]["lr"]
    cases["resume-missing-setting"] = (["train", "--resume", _run_dir(root, "no-lr", json.dumps(no_lr))], 1,
                                       ["no-lr/run.json", "setting 'lr' is missing"])
    cases["resume-wrong-type"] = (["train", "--resume", _run_dir(root, "str-epochs", _valid_run_json(epochs="2"))], 1,
                                  ["str-epochs/run.json", "setting 'epochs' is '2', expected int"])
    cases["resume-bad-value"] = (["train", "--resume", _run_dir(root, "zero-lr", _valid_run_json(lr=0))], 1,
                                 ["zero-lr/run.json", "--lr must be", "got 0"])
    cases["resume-corrupt-checkpoint"] = (
        ["train", "--resume", _run_dir(root, "corrupt", _valid_run_json(), b"\x80\x04\x95garbage, never unpickled")],
        1, ["corrupt/last.ckpt", "not a safetensors file", "never unpickles"])
    changed = _run_dir(root, "changed", _valid_run_json())
    cases["resume-change-setting"] = (["train", "--resume", changed, "--lr", "0.1"], 2,
                                      ["--lr cannot change when resuming", "changed/run.json"])
    return cases


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-errors")
    cases = _prepare(root)

    def run(item):
        name, case = item
        argv, prefix, extra = case[0], case[3] if len(case) > 3 else (), case[4] if len(case) > 4 else None
        return name, run_deepgrad(*argv, cwd=root, prefix=list(prefix), extra_path=extra)

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(pool.map(run, cases.items()))
    return cases, done, root


@pytest.mark.parametrize("name", [*SIMPLE, "export-training-checkpoint", "export-verify-without-onnxruntime",
                                  "export-bad-config-json", "resume-bad-json", "resume-deep-json",
                                  "resume-nested-json", "resume-json-list", "resume-missing-setting",
                                  "resume-wrong-type", "resume-bad-value", "resume-corrupt-checkpoint",
                                  "resume-change-setting"])
def test_user_error_is_one_line_with_status(results, name):
    cases, done, root = results
    argv, status, fragments = cases[name][:3]
    assert_one_line_error(done[name], argv[0], status, *fragments)
    if name == "launch-missing-script":
        assert done[name].stdout == ""  # no rank started
    if name.startswith(("train", "gan")):
        assert not os.path.exists(root / "runs")  # refused before any run directory was created


# ----------------------------------------------------------------------------- file-system failures
def _tiny_train(out: str) -> list[str]:
    return ["train", "mlp", "--data", "spirals", "--epochs", "1", "--limit", "64", "--out", out, "--no-progress"]


def test_read_only_output_directory_is_one_line(tmp_path):
    target = tmp_path / "readonly"
    target.mkdir()
    prefix = mount_prefix(target, "ro")
    if prefix is not None:  # a read-only file system, which even root cannot write
        done = run_deepgrad(*_tiny_train(str(target)), cwd=tmp_path, prefix=prefix)
        assert_one_line_error(done, "train", 1, f"cannot write '{target}/", "read-only", "--out DIR")
    elif os.geteuid() != 0:  # no mount namespace here: a directory without write permission
        target.chmod(0o555)
        try:
            done = run_deepgrad(*_tiny_train(str(target)), cwd=tmp_path)
        finally:
            target.chmod(0o755)
        assert_one_line_error(done, "train", 1, f"'{target}/", "permission denied")
    else:
        pytest.skip("running as root without mount namespaces: no way to make a directory read-only")


def test_full_disk_is_one_line_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "small"
    target.mkdir()
    prefix = mount_prefix(target, "size=64k")  # room for run.json, not for a 170 kB checkpoint
    if prefix is None:
        pytest.skip("no mount namespace for a tiny tmpfs here; tests/test_train_safety.py fakes ENOSPC instead")
    listing = ["sh", "-c", 'deepgrad_status=0; "$@" || deepgrad_status=$?; ls -A "$0" >&2; exit $deepgrad_status',
               str(target)]  # list the tmpfs before the namespace (and the tmpfs) goes away
    done = run_deepgrad(*_tiny_train(str(target)), cwd=tmp_path, prefix=[*prefix, *listing])
    line, *listed = done.stderr.strip().splitlines()  # deepgrad's line, then the listing
    assert "Traceback" not in done.stderr and done.returncode == 1, done.stderr
    assert line.startswith("deepgrad train: cannot write ") and "the disk is full" in line, line
    assert "run.json" in listed  # the small files fit; no half-written checkpoint or temporary is left:
    assert not [name for name in listed if name.startswith(".tmp-") or name.endswith(".ckpt")], listed


def test_export_verify_uses_varied_valid_token_ids_and_finds_cwd_modules(tmp_path):
    pytest.importorskip("onnxruntime")
    (tmp_path / "tokennet.py").write_text(
        "from deepgrad import nn\n\n"
        "class TokenNet(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.embedding = nn.Embedding(7, 3)\n"
        "        self.head = nn.Linear(3, 2)\n\n"
        "    def forward(self, ids):\n"
        "        return self.head(self.embedding(ids).mean(1))\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        import tokennet
    finally:
        sys.path.remove(str(tmp_path))
    dg.manual_seed(0)
    dg.save(tokennet.TokenNet().state_dict(), tmp_path / "tok.safetensors")
    done = run_deepgrad("export", "tok.safetensors", "--model", "tokennet:TokenNet", "--input-shape", "1,12",
                        "--input-dtype", "int64", "--verify", cwd=tmp_path)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr
    from deepgrad.cli_export import _example

    class Args:
        input_shape, input_dtype = "1,12", "int64"

    ids = _example(tokennet.TokenNet(), Args(), batch=2, seed=1)
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 7 and len(np.unique(ids)) >= 5
