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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per product."""
    parser = argparse.ArgumentParser(
        prog="deepgrad",
        description="deepgrad: a deep-learning system from first principles, and an interview lab that "
                    "backs each answer with a measurement.",
    )
    parser.add_argument("--version", action="version", version=f"deepgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from .guide.cli import add_guide_parser

    add_guide_parser(commands)

    from .cli_export import add_export_parser
    from .cli_train import add_gan_parser, add_train_parser
    from .distributed.launch import add_launch_parser
    from .practice.cli import add_practice_parser

    add_train_parser(commands)
    add_gan_parser(commands)
    add_practice_parser(commands)
    add_export_parser(commands)
    add_launch_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``deepgrad`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args, parser)
    except BrokenPipeError:  # output piped into `head` or a closed pager: stop quietly, like other CLIs
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
