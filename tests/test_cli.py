"""The ``deepgrad`` command: version and argument errors. The ``guide`` sub-command is tested in
tests/test_guide_cli.py, the others next to their modules."""

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
