"""What the ``deepgrad`` commands share: the one-line user error, run directories that never overwrite an
earlier run, and JSON config files read defensively.

A command reports a user error by raising :class:`CommandError`; :func:`deepgrad.cli.main` prints it as one
line ``deepgrad CMD: what was wrong, what to do`` and exits with its status, never with a traceback.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import sys
from collections.abc import Callable
from typing import Any

MAX_CONFIG_NESTING = 16  # a run's settings nest 2 levels deep; deeper is a corrupt or hostile file


class CommandError(Exception):
    """A user error: ``main`` prints ``deepgrad CMD: <message>`` on one line and exits with ``status``.

    >>> raise CommandError("--lr must be a positive number, got -1: give e.g. --lr 1e-3")
    Traceback (most recent call last):
    deepgrad.cli_common.CommandError: --lr must be a positive number, got -1: give e.g. --lr 1e-3
    >>> CommandError("no such file").status   # the exit status main() returns
    2
    """

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def report_errors(command: str, run: Callable[[], int], output_option: str | None = None) -> int:
    """``run()``'s exit status; a user error it raises is printed as ``deepgrad COMMAND: ...`` on one line
    (stderr) and turned into a non-zero status. A bug (any other exception) propagates with its traceback.

    User errors: :class:`CommandError`, ``OSError`` (a missing file, a full disk, a read-only or unwritable
    output directory), ``MemoryError``, Ctrl-C, a malformed checkpoint, a non-finite loss or gradient.
    """
    try:
        return run()
    except BrokenPipeError:  # the caller (main) silences output piped into `head`
        raise
    except KeyboardInterrupt:
        return _fail(command, "interrupted", 130)
    except CommandError as e:
        return _fail(command, str(e), e.status)
    except OSError as e:
        return _fail(command, describe_os_error(e, output_option), 1)
    except MemoryError:
        return _fail(command, "out of memory: try a smaller --batch-size or a smaller model", 1)
    except Exception as e:
        from .train import CheckpointError, NonFiniteLossError
        from .train.guards import NonFiniteGradientError

        if isinstance(e, (CheckpointError, NonFiniteLossError, NonFiniteGradientError)):
            return _fail(command, str(e), 1)
        raise


def handles_errors(command: str, output_option: str | None = None):
    """Decorator for a command handler ``(args, parser) -> int``: :func:`report_errors` around it, so the
    handler reports user errors in one line whether it runs from ``main`` or is called directly."""
    def wrap(handler):
        @functools.wraps(handler)
        def run(args, parser=None) -> int:
            return report_errors(command, lambda: handler(args, parser), output_option)
        return run
    return wrap


def _fail(command: str, message: str, status: int) -> int:
    print(f"deepgrad {command}: {one_line(message)}", file=sys.stderr)
    return status


def one_line(message: str) -> str:
    """``message`` on one line (a multi-line report joined with '; ')."""
    parts = [part.strip() for part in str(message).splitlines() if part.strip()]
    return "; ".join(parts)


_WRITE_FAILURES = {
    errno.ENOSPC: "the disk is full: free some space or write the output elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write the output elsewhere",
    errno.EROFS: "the file system is read-only: write the output to a writable directory",
}
_ACCESS_FAILURES = {
    errno.EACCES: "permission denied: use a path you may access (for the output, a directory you can write to)",
    errno.EPERM: "operation not permitted: use a path you may access (for the output, a directory you can write to)",
    errno.ENOENT: "no such file or directory: check the path",
    errno.EISDIR: "it is a directory: give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a directory: check the path",
}


def describe_os_error(error: OSError, option: str | None = None) -> str:
    """A one-line account of a failed file operation and what to do (``option`` names the command's output
    option, e.g. ``--out``, suggested when writing failed).

    >>> describe_os_error(OSError(28, "No space left on device", "runs/a/best.ckpt"), "--out")
    "cannot write 'runs/a/best.ckpt': the disk is full: free some space or write the output elsewhere (--out DIR)"
    """
    target = repr(error.filename) if error.filename is not None else "a file"
    if error.errno in _WRITE_FAILURES:
        where = f" ({option} DIR)" if option else ""
        return f"cannot write {target}: {_WRITE_FAILURES[error.errno]}{where}"
    return f"{target}: {_ACCESS_FAILURES.get(error.errno, error.strerror or str(error))}"


def check_number(name: str, value, minimum: float | None = None, above: float | None = None,
                 example: str | None = None) -> None:
    """Raise :class:`CommandError` unless ``value`` is finite and ``>= minimum`` / ``> above`` (zero is a
    value like any other: it is accepted or rejected by these bounds, never replaced by a default)."""
    if value is None:
        return
    bad = not math.isfinite(value) or (minimum is not None and value < minimum) or (above is not None and
                                                                                      value <= above)
    if bad:
        need = f">= {minimum:g}" if minimum is not None else f"> {above:g}"
        hint = f", e.g. {name} {example}" if example else ""
        raise CommandError(f"{name} must be a finite number {need}, got {value:g}: give a valid value{hint}")


def _holds_files(path: str) -> bool:
    try:
        return any(True for _ in os.scandir(path))
    except NotADirectoryError:
        return True
    except FileNotFoundError:
        return False


def claim_run_dir(out: str | None, default: str, overwrite: bool, command: str) -> tuple[str, str | None]:
    """The directory a run writes to, created, and a note when it is not the one asked for.

    An explicit ``out`` that already holds files is refused unless ``overwrite``; without ``out`` the run
    takes ``default`` or, when that holds an earlier run, the first free ``default-2``, ``default-3`` ...
    (created with ``mkdir``, so two runs started at once never share one).
    """
    if out is not None:
        if _holds_files(out) and not overwrite:
            raise CommandError(f"--out {out} already holds files of an earlier run: pass --overwrite to replace "
                               f"them, --resume {out} to continue that run, or choose another --out"
                               if command == "train" else
                               f"--out {out} already holds files of an earlier run: pass --overwrite to replace "
                               f"them or choose another --out")
        os.makedirs(out, exist_ok=True)
        return out, None
    if overwrite or not _holds_files(default):
        os.makedirs(default, exist_ok=True)
        return default, None
    parent = os.path.dirname(default)
    if parent:
        os.makedirs(parent, exist_ok=True)
    for n in range(2, 10_000):
        candidate = f"{default}-{n}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate, f"{default} holds an earlier run"
    raise CommandError(f"no free run directory next to {default}: give --out DIR")


def read_json_config(path: str, what: str = "config file", max_depth: int = MAX_CONFIG_NESTING) -> dict[str, Any]:
    """The JSON object in ``path``; a file that is missing, not JSON, nested deeper than ``max_depth`` or not
    an object raises :class:`CommandError` naming the file and the fault.

    >>> import pathlib
    >>> run = pathlib.Path("runs/lenet5-digits"); run.mkdir(parents=True)
    >>> _ = (run / "run.json").write_text('{"args": {"epochs": 10}}')
    >>> read_json_config("runs/lenet5-digits/run.json", "run settings")["args"]["epochs"]
    10
    >>> read_json_config("runs/nowhere/run.json", "run settings")
    Traceback (most recent call last):
    deepgrad.cli_common.CommandError: runs/nowhere/run.json: no such run settings
    """
    from .train.checkpoint import nesting_depth

    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except FileNotFoundError:
        raise CommandError(f"{path}: no such {what}", 1) from None
    except UnicodeDecodeError as e:
        raise CommandError(f"{path}: the {what} is not UTF-8 text ({e.reason} at byte {e.start})", 1) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise CommandError(f"{path}: the {what} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                           f"fix or delete the file", 1) from None
    except RecursionError:
        raise CommandError(f"{path}: the {what} nests deeper than {max_depth} levels; it is corrupt", 1) from None
    if nesting_depth(value, max_depth) > max_depth:
        raise CommandError(f"{path}: the {what} nests deeper than {max_depth} levels; it is corrupt", 1)
    if not isinstance(value, dict):
        raise CommandError(f"{path}: the {what} is a JSON {type(value).__name__}, not an object", 1)
    return value
