"""Running the real ``deepgrad`` command in a subprocess, as a user does, with this tree's package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def deepgrad_command() -> list[str]:
    """The installed console script beside this interpreter (what `make` puts on PATH), else ``python -m deepgrad``.
    PYTHONPATH (see :func:`cli_env`) makes either import this tree's package."""
    script = Path(sys.executable).with_name("deepgrad")
    return [str(script)] if script.is_file() and os.access(script, os.X_OK) else [sys.executable, "-m", "deepgrad"]


def cli_env(extra_path: str | os.PathLike | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(extra_path)] if extra_path is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("COLUMNS", None)
    return env


def run_deepgrad(*args: str, cwd: str | os.PathLike, prefix: list[str] = (), extra_path=None,
                 timeout: float = 180) -> subprocess.CompletedProcess:
    """``deepgrad ARGS`` in ``cwd`` (optionally behind ``prefix``, e.g. an ``unshare`` wrapper)."""
    return subprocess.run([*prefix, *deepgrad_command(), *args], cwd=cwd, env=cli_env(extra_path),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_line_error(done: subprocess.CompletedProcess, command: str, status: int, *fragments: str,
                          only_line: bool = True) -> str:
    """The command failed with ``status`` and said why in one line ``deepgrad COMMAND: ...`` (the last line of
    stderr; the only one unless ``only_line`` is False), never with a traceback. Returns that line."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines, f"no error message (status {done.returncode})"
    if only_line:
        assert len(lines) == 1, done.stderr
    line = lines[-1]
    assert line.startswith(f"deepgrad {command}: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert done.returncode == status, (done.returncode, line)
    return line


def mount_prefix(directory: str | os.PathLike, options: str) -> list[str] | None:
    """A command prefix that runs the command with a fresh tmpfs (``options``, e.g. ``size=64k`` or ``ro``)
    mounted on ``directory``, in a private mount namespace (no root needed where user namespaces are
    allowed); ``None`` where this machine does not allow it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefix = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c",
              'mount -t tmpfs -o "$0" tmpfs "$1" && shift && exec "$@"', options, str(directory)]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None
