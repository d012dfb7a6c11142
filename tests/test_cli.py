"""The ``deepgrad`` command: version, argument errors, and the guide's end-to-end demo."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import deepgrad
from deepgrad.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_via_python_m():
    done = subprocess.run([sys.executable, "-m", "deepgrad", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"deepgrad {deepgrad.__version__}"


def test_version_via_main(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"deepgrad {deepgrad.__version__}"


def test_installed_metadata_matches_the_package():
    from importlib import metadata

    try:
        installed = metadata.version("deepgrad")
    except metadata.PackageNotFoundError:
        pytest.skip("deepgrad is not pip-installed in this environment (make test installs it)")
    assert installed == deepgrad.__version__  # pyproject.toml reads it from deepgrad.__version__


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "usage: deepgrad" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["guide", "no-such-topic"], ["guide", "--epochs", "0"]])
def test_guide_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "guide:" in capsys.readouterr().err


def test_guide_quick_trains_the_mlp(capsys):
    assert main(["guide", "backprop", "--quick", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    for step in ("1. forward", "2. loss", "3. backward", "4. update"):
        assert step in out
    losses = [float(v) for v in re.findall(r"epoch +\d+/\d+ +loss ([0-9.]+)", out)]
    assert len(losses) == 5  # --quick: 5 epochs
    assert losses[-1] < 0.5 * losses[0]
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    # A correct engine gets ~0.97 here; chance is 0.10 and a broken gradient lands far below.
    assert accuracy >= 0.90
    assert "[FAIL]" not in out and "all claims held" in out


def test_guide_default_runs_every_topic(monkeypatch, capsys):
    from deepgrad import guide

    seen = []

    class Ok:
        passed = True

    def fake_run(name):
        def run(quick, seed, epochs, out):
            seen.append((name, quick, seed, epochs))
            return Ok()
        return run

    fake = {name: type("Topic", (), {"TITLE": name, "run": staticmethod(fake_run(name))}) for name in guide.TOPICS}
    monkeypatch.setattr(guide, "TOPICS", fake)
    assert main(["guide", "--epochs", "3", "--seed", "7"]) == 0
    assert seen == [(name, False, 7, 3) for name in fake]


def test_guide_exit_status_reports_a_failed_claim(monkeypatch, capsys):
    from deepgrad import guide

    class Failed:
        passed = False

    topic = type("Topic", (), {"TITLE": "fails", "run": staticmethod(lambda **kw: Failed())})
    monkeypatch.setattr(guide, "TOPICS", {"backprop": topic})
    assert main(["guide", "backprop"]) == 1
    assert "claims failed in: backprop" in capsys.readouterr().err
