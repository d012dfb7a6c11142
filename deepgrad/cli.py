"""The ``deepgrad`` command.

    deepgrad --version
    deepgrad guide                        # list the interview-guide topics
    deepgrad guide pooling                # run one topic
    deepgrad guide --all --report DIR     # run every topic and write an HTML report
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .cli_common import one_line, report_errors


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``deepgrad CMD: what was wrong; see deepgrad CMD --help`` (status 2).

    The sub-command parsers are of this class too (``add_subparsers`` makes them with the parent's class).
    A handler's ``parser.error("CMD: ...")`` on the top-level parser is reported under that command.
    """

    def error(self, message: str):  # noqa: D401 - argparse's hook
        prog, message = self.prog, one_line(message)
        if message.startswith("deepgrad "):  # a message that already names the program
            message = message[len("deepgrad "):]
        head, sep, rest = message.partition(": ")
        commands = getattr(self, "_command_names", ())
        if sep and head in commands:
            prog, message = f"{self.prog} {head}", rest
        elif " " not in prog:  # the bare `deepgrad` with no or an unknown command: the usage helps
            self.print_usage(sys.stderr)
        self.exit(2, f"{prog}: {message}; see {prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per product."""
    parser = _Parser(
        prog="deepgrad",
        description="deepgrad: a deep-learning system from first principles, and an interview lab that "
                    "backs each answer with a measurement.",
    )
    parser.add_argument("--version", action="version", version=f"deepgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from .guide import TOPICS  # light: the topics import their heavy dependencies when run

    guide = commands.add_parser(
        "guide",
        help="the interview lab: list topics, or run them as measured experiments",
        description="Each topic prints the question, a concise answer and the evidence it measured, and "
                    "checks the claims behind the answer (PASS/FAIL). With no topic, lists the topics.",
    )
    guide.add_argument("topics", nargs="*", metavar="TOPIC", help=f"topics to run: {', '.join(TOPICS)}")
    guide.add_argument("--all", action="store_true", help="run every topic")
    mode = guide.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="quick", action="store_true", default=True,
                      help="CI-sized runs, a few minutes for all topics on 2 cores (the default)")
    mode.add_argument("--full", dest="quick", action="store_false", help="longer runs, closer to textbook results")
    guide.add_argument("--seed", type=int, default=0, help="random seed (runs are reproducible)")
    guide.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (needs CuPy and an NVIDIA GPU)")
    guide.add_argument("--out", default=None,
                       help="directory for figures (default: the report dir, else ./guide-output)")
    guide.add_argument("--report", default=None, metavar="DIR", help="write a self-contained HTML report in DIR")
    guide.set_defaults(handler=_guide)

    from .cli_export import add_export_parser
    from .cli_train import add_gan_parser, add_train_parser
    from .distributed.launch import add_launch_parser
    from .practice.cli import add_practice_parser

    add_train_parser(commands)
    add_gan_parser(commands)
    add_practice_parser(commands)
    add_export_parser(commands)
    add_launch_parser(commands)
    parser._command_names = tuple(commands.choices)
    return parser


def _guide(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import guide

    unknown = [t for t in args.topics if t not in guide.TOPICS]
    if unknown:
        parser.error(f"guide: unknown topic(s) {', '.join(unknown)}; available: {', '.join(guide.TOPICS)}")
    if not args.topics and not args.all:
        ready = guide.available()
        print("deepgrad guide: the interview lab. Topics (run one with `deepgrad guide TOPIC`, all with --all):")
        for slug in guide.TOPICS:
            if slug in ready:
                m = guide.load(slug)
                print(f"  {m.NUMBER:>2}. {slug:<18} {m.QUESTION}")
        return 0
    if args.device != "cpu":
        from .backend import Device, cuda_is_available

        if Device(args.device).type == "cuda" and not cuda_is_available():
            parser.error("guide: --device cuda needs CuPy and a visible NVIDIA GPU")
    out_dir = args.out or args.report or "guide-output"
    results = guide.run_topics(args.topics or None, quick=args.quick, seed=args.seed, device=args.device,
                               out_dir=out_dir)
    if args.report:
        from .guide.report import write_report

        path = write_report(results, args.report, quick=args.quick, seed=args.seed)
        print(f"\nreport: {path}")
    n_claims = sum(len(r.claims) for r in results)
    n_pass = sum(c.passed for r in results for c in r.claims)
    failed = [r.slug for r in results if not r.passed]
    print(f"\n{n_pass}/{n_claims} claims PASS across {len(results)} topic(s), "
          f"{sum(r.seconds for r in results):.0f} s")
    if failed:
        print(f"claims failed in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deepgrad`` console script; returns the exit status.

    User errors (bad values, missing or malformed files, a full disk, a read-only output directory, a
    missing optional package, a non-finite loss or gradient) end with one line on stderr,
    ``deepgrad CMD: what was wrong, what to do``, and a non-zero status; only a bug shows a traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return report_errors(args.command, lambda: args.handler(args, parser), _OUTPUT_OPTION.get(args.command))
    except BrokenPipeError:  # output piped into `head` or a closed pager: stop quietly, like other CLIs
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


_OUTPUT_OPTION = {"train": "--out", "gan": "--out", "export": "-o", "guide": "--out"}


if __name__ == "__main__":
    sys.exit(main())
