"""``deepgrad guide``: list the interview-guide topics, run some or all of them, write the HTML report.

Wired into the ``deepgrad`` command by :func:`add_guide_parser`. A topic is named by its number or its
name, in any case (``deepgrad guide 7``, ``deepgrad guide Pooling``); a near miss gets a suggestion.

    deepgrad guide                          # list the topics
    deepgrad guide 7 --out figures          # run topic 7 (pooling), its figures in ./figures
    deepgrad guide --all --report DIR       # every topic, and an HTML report in DIR
"""

from __future__ import annotations

import argparse
import os
import sys


def add_guide_parser(commands) -> argparse.ArgumentParser:
    """Add the ``guide`` command to an argparse ``subparsers`` object."""
    from . import TOPICS  # light: the topics import their heavy dependencies when run

    guide = commands.add_parser(
        "guide",
        help="the interview lab: list topics, or run them as measured experiments",
        description="Each topic prints the question, a concise answer and the evidence it measured, and "
                    "checks the claims behind the answer (PASS/FAIL). With no topic, lists the topics.",
    )
    guide.add_argument("topics", nargs="*", metavar="TOPIC",
                       help=f"topics to run, by number (1-{len(TOPICS)}) or name: {', '.join(TOPICS)}")
    guide.add_argument("--all", action="store_true", help="run every topic")
    mode = guide.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="quick", action="store_true", default=True,
                      help="CI-sized runs, a few minutes for all topics on 2 cores (the default)")
    mode.add_argument("--full", dest="quick", action="store_false", help="longer runs, closer to textbook results")
    guide.add_argument("--seed", type=int, default=0, help="random seed (runs are reproducible)")
    guide.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (needs CuPy and an NVIDIA GPU)")
    guide.add_argument("--out", default=None, metavar="DIR",
                       help="write the figures (PNG) in DIR (default: DIR/figures of --report, else ./guide-output)")
    guide.add_argument("--report", default=None, metavar="DIR", help="write a self-contained HTML report in DIR")
    guide.set_defaults(handler=run)
    return guide


def _fail(message: str) -> int:
    """A user error: one line on stderr, no traceback, exit status 2 (argparse's status for bad usage)."""
    print(f"deepgrad guide: {message}", file=sys.stderr)
    return 2


def _say(text: str = "") -> None:
    # flushed line by line: evidence appears as it is measured, also when stdout is a pipe or a file
    print(text, flush=True)


def list_topics() -> None:
    """Print the numbered topics."""
    from . import TOPICS, available, load

    ready = available()
    _say("deepgrad guide: the interview lab. Run a topic by number or name (`deepgrad guide 7`, "
         "`deepgrad guide pooling`), or all of them with --all. Topics:")
    for number, slug in enumerate(TOPICS, start=1):
        if slug in ready:
            _say(f"  {number:>2}. {slug:<18} {load(slug).QUESTION}")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Run a parsed ``guide`` command; returns the exit status."""
    from . import resolve_topic, run_topics

    try:
        slugs = list(dict.fromkeys(resolve_topic(t) for t in args.topics))  # in order, each once
    except ValueError as e:
        return _fail(str(e).removeprefix("guide: "))
    if not slugs and not args.all:
        list_topics()
        return 0
    if args.device != "cpu":
        from ..backend import Device, cuda_is_available

        try:
            wants_cuda = Device(args.device).type == "cuda"
        except (ValueError, RuntimeError) as e:
            return _fail(f"--device {args.device!r}: {e}")
        if wants_cuda and not cuda_is_available():
            return _fail("--device cuda needs CuPy and a visible NVIDIA GPU; run on the CPU with --device cpu")
    figures = args.out or (os.path.join(args.report, "figures") if args.report else "guide-output")
    for what, directory in (("--out", figures), ("--report", args.report)):
        if directory is None:
            continue
        try:  # fail before minutes of experiments, not after them
            os.makedirs(directory, exist_ok=True)
            if not os.access(directory, os.W_OK | os.X_OK):
                raise PermissionError(f"{directory!r} is not writable")
        except OSError as e:
            return _fail(f"cannot write {what} directory {directory!r} ({e.strerror or e}); choose another")

    results = run_topics(slugs or None, quick=args.quick, seed=args.seed, device=args.device, out_dir=figures,
                         log=_say)
    n_figures = sum(len(f.paths) for r in results for f in r.figures)
    _say(f"\nfigures: {n_figures} PNG file(s) in {figures}")
    if args.report:
        from .report import write_report

        try:
            path = write_report(results, args.report, quick=args.quick, seed=args.seed)
        except OSError as e:
            return _fail(f"cannot write the report in {args.report!r} ({e.strerror or e})")
        _say(f"report: {path}")
    n_claims = sum(len(r.claims) for r in results)
    n_pass = sum(c.passed for r in results for c in r.claims)
    failed = [r.slug for r in results if not r.passed]
    _say(f"\n{n_pass}/{n_claims} claims PASS across {len(results)} topic(s), {sum(r.seconds for r in results):.0f} s")
    if failed:
        print(f"claims failed in: {', '.join(failed)}", file=sys.stderr, flush=True)
        return 1
    return 0
