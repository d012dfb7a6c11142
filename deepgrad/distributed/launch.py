"""``deepgrad launch -n K script.py [args]``: run a training script on K ranks with ``mpiexec``.

It finds the ``mpiexec`` that belongs to this Python (the mpich wheel installs it next to the
interpreter; else the one on PATH), sets one BLAS/OpenMP thread per rank unless ``--threads`` says
otherwise (K ranks each using every core would oversubscribe the machine) and runs
``mpiexec -n K [--hostfile FILE] python -m mpi4py script.py args`` (``-m mpi4py`` turns an uncaught
exception on one rank into an abort of the job, instead of a hang of the others). Also runnable as
``python -m deepgrad.distributed.launch -n K script.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def find_mpiexec() -> str | None:
    """The mpiexec beside this interpreter (a venv with the mpich wheel), else the first on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.path.isfile(local) and os.access(local, os.X_OK):
        return local
    return shutil.which("mpiexec") or shutil.which("mpirun")


def _is_open_mpi(mpiexec: str) -> bool:
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in out or "OpenRTE" in out


def build_command(nprocs: int, script: str, script_args: list[str] = (), hostfile: str | None = None,
                  mpiexec: str | None = None, threads: int | None = 1, module: bool = False) -> list[str]:
    """The mpiexec command line that :func:`launch` runs.

    >>> build_command(2, "train.py", ["--epochs", "3"], mpiexec="mpiexec")[:3]
    ['mpiexec', '-n', '2']
    """
    if isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"deepgrad launch: -n must be a positive number of processes, got {nprocs!r}")
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise RuntimeError("deepgrad launch: no mpiexec found; pip install 'deepgrad[distributed]' (the mpich "
                           "wheel puts mpiexec next to python) or install an MPI (e.g. apt install mpich)")
    cmd = [mpiexec, "-n", str(nprocs)]
    if hostfile is not None:
        if not os.path.isfile(hostfile):
            raise FileNotFoundError(f"deepgrad launch: host file {hostfile!r} does not exist")
        cmd += ["--hostfile", hostfile]
    if threads is not None and _is_open_mpi(mpiexec):
        for var in _THREAD_VARS:  # Open MPI forwards only the variables named with -x
            cmd += ["-x", var]
    target = ["-m", script] if module else [script]
    if importlib.util.find_spec("mpi4py") is not None:
        # python -m mpi4py: an uncaught exception on one rank aborts the whole job instead of leaving
        # the other ranks blocked in a collective forever
        target = ["-m", "mpi4py", *target]
    return cmd + [sys.executable, *target, *script_args]


def launch(nprocs: int, script: str, script_args: list[str] = (), hostfile: str | None = None,
           threads: int | None = 1, mpiexec: str | None = None, module: bool = False) -> int:
    """Run ``script`` on ``nprocs`` ranks and return mpiexec's exit status (a missing script is refused
    before any rank starts: K ranks each failing to open it would bury the reason in K tracebacks)."""
    _check_script(script, module)
    cmd = build_command(nprocs, script, list(script_args), hostfile, mpiexec, threads, module)
    env = dict(os.environ)
    if threads is not None:
        for var in _THREAD_VARS:
            env[var] = str(threads)
    return subprocess.call(cmd, env=env)


def _check_script(script: str, module: bool) -> None:
    if not module:
        if not os.path.isfile(script):
            raise FileNotFoundError(f"deepgrad launch: no such script {script!r}: give the path of the training "
                                    f"script (or -m MODULE for a module)")
        return
    cwd = os.getcwd()  # the ranks run `python -m MODULE` here, so the current directory is on their path
    sys.path.insert(0, cwd)
    try:
        found = importlib.util.find_spec(script) is not None
    except (ImportError, ValueError):
        found = False
    finally:
        sys.path.remove(cwd)
    if not found:
        raise FileNotFoundError(f"deepgrad launch: no module named {script!r}: give an importable module name, or "
                                f"the path of a script without -m")


def add_launch_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``launch`` subcommand to the ``deepgrad`` CLI (``handler(args, parser) -> int``)."""
    parser = subparsers.add_parser(
        "launch",
        help="run a training script on K processes with mpiexec (data-parallel training)",
        description="Run SCRIPT on K ranks: mpiexec -n K python SCRIPT ARGS. Several machines: "
                    "--hostfile FILE with one 'hostname:slots' line per machine.",
    )
    _add_arguments(parser)
    parser.set_defaults(handler=_handler)
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--nprocs", type=int, required=True, metavar="K", help="number of processes (ranks)")
    parser.add_argument("--hostfile", default=None, help="MPI host file for several machines")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads per rank (default 1; 0 leaves the environment alone)")
    parser.add_argument("--mpiexec", default=None, help="the mpiexec to use (default: beside python, else PATH)")
    parser.add_argument("-m", dest="module", action="store_true", help="SCRIPT is a module name (python -m)")
    parser.add_argument("script", metavar="SCRIPT", help="the training script")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments of the script")


def _handler(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.nprocs < 1:
        parser.error(f"launch: -n must be at least 1, got {args.nprocs}")
    try:
        return launch(args.nprocs, args.script, args.script_args, args.hostfile,
                      args.threads if args.threads > 0 else None, args.mpiexec, args.module)
    except (RuntimeError, FileNotFoundError) as e:
        parser.error(str(e))
        return 2


def main(argv: list[str] | None = None) -> int:
    """``python -m deepgrad.distributed.launch -n K script.py [args]``."""
    parser = argparse.ArgumentParser(prog="python -m deepgrad.distributed.launch",
                                     description="Run a script on K ranks with mpiexec.")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return _handler(args, parser)


if __name__ == "__main__":
    sys.exit(main())
