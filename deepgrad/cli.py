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
    parser._command_names = tuple(commands.choices)
    return parser


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
