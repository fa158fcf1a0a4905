"""The ``fastnet`` command: one subcommand per module in this package.

Each subcommand module exposes ``add_parser(subparsers)``, which registers
its arguments and sets ``func`` to the function that runs it; that function
returns the exit status. Bad arguments exit with status 2 and a one-line
message, as argparse does.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

#: Subcommand modules, in the order ``fastnet --help`` lists them.
SUBCOMMANDS = ("bench", "info", "recv", "send")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastnet", description="Move UDP datagrams fast: measure, receive, send."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"fastnet.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fastnet.cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    for each in (parser, *subparsers.choices.values()):
        if "error" not in vars(each):  # a subcommand may say it its own way
            _one_line_errors(each)
    return parser


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Bad arguments exit with status 2 and one line on stderr (argparse prints the usage too)."""

    def error(message):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error  # type: ignore[method-assign]  # set per instance, subparsers too


def _terminate(signum, frame):
    # SIGTERM (kill, timeout(1), a service manager) ends a command as Ctrl-C
    # does: the subcommands catch KeyboardInterrupt, stop cleanly and still
    # print their summary.
    raise KeyboardInterrupt


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    else:  # pragma: no cover - signal handlers can only be set in the main thread
        previous = None
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
