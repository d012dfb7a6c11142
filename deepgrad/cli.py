"""The ``deepgrad`` command.

    deepgrad --version
    deepgrad guide                 # every interview-guide topic
    deepgrad guide backprop        # one topic
    deepgrad guide --quick         # CI-sized runs
"""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per product."""
    parser = argparse.ArgumentParser(
        prog="deepgrad",
        description="deepgrad: a deep-learning system from first principles, and an interview lab that "
                    "backs each answer with a measurement.",
    )
    parser.add_argument("--version", action="version", version=f"deepgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from .guide import TOPICS  # light: the topics import their heavy dependencies when run

    guide = commands.add_parser(
        "guide",
        help="run interview-guide topics as experiments",
        description="Run interview-guide topics; each prints its measurements and checks its claims.",
    )
    guide.add_argument("topics", nargs="*", metavar="TOPIC",
                       help=f"topics to run (default: all). Available: {', '.join(TOPICS)}")
    guide.add_argument("--quick", action="store_true", help="small, CI-sized runs (a few seconds)")
    guide.add_argument("--epochs", type=int, default=None, help="training epochs (default: per topic)")
    guide.add_argument("--seed", type=int, default=0, help="random seed for data split and initialisation")
    guide.set_defaults(handler=_guide)
    return parser


def _guide(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .guide import TOPICS, run_topics

    unknown = [t for t in args.topics if t not in TOPICS]
    if unknown:
        parser.error(f"guide: unknown topic(s) {', '.join(unknown)}; available: {', '.join(TOPICS)}")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"guide: --epochs must be >= 1, got {args.epochs}")
    results = run_topics(args.topics, quick=args.quick, seed=args.seed, epochs=args.epochs)
    failed = [name for name, r in results.items() if not r.passed]
    if failed:
        print(f"claims failed in: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all claims held ({len(results)} topic{'s' if len(results) != 1 else ''})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deepgrad`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args, parser)


if __name__ == "__main__":
    sys.exit(main())
