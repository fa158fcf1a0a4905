"""Argument types shared by the subcommands: each raises argparse.ArgumentTypeError
with a one-line message, which argparse turns into exit status 2."""

from __future__ import annotations

import argparse
import ipaddress

from ..core.addresses import DEFAULT_HOST, DEFAULT_PORT, parse_host_port  # noqa: F401 - re-exported

#: Datagrams ``fastnet send`` sends when neither --count nor --duration is given.
DEFAULT_COUNT = 1000
#: The default of an option whose absence must be told apart from any value (--speed).
UNSET = object()


def host_port(text: str) -> tuple:
    """``HOST:PORT``, ``[IPv6]:PORT``, or ``:PORT`` / ``PORT`` for loopback."""
    try:
        return parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def family_of(host: str):
    """AF_INET6 for an IPv6 literal, else AF_INET."""
    import socket

    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number greater than 0")
    return value


def comma_separated(parse):
    """An argument type for ``A,B,C``: each item parsed by ``parse``, duplicates dropped."""

    def parse_list(text: str) -> list:
        items = [item.strip() for item in text.split(",")]
        if not text.strip() or any(not item for item in items):
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list")
        return list(dict.fromkeys(parse(item) for item in items))

    parse_list.__name__ = f"list of {getattr(parse, '__name__', 'values')}"
    return parse_list


def choice_of(names):
    """An argument type accepting one of ``names``, with the choices in the error."""

    def parse_choice(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"unknown name {text!r}; choose from {', '.join(names)}")
        return text

    parse_choice.__name__ = "name"
    return parse_choice


_RATE_SUFFIXES = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def bit_rate(text: str) -> float:
    """Bits per second: a number with an optional K, M or G suffix (powers of 1000)."""
    body = text.strip()
    for unit in ("bit/s", "bps", "b/s", "bit"):
        if body.lower().endswith(unit):
            body = body[: -len(unit)]
            break
    suffix = body[-1:].lower() if body[-1:].isalpha() else ""
    try:
        value = float(body[: len(body) - len(suffix)]) * _RATE_SUFFIXES[suffix]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a rate: write bits/s as a number with an optional K, M or G suffix, e.g. 400M"
        ) from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite rate greater than 0")
    return value


def byte_size(text: str) -> int:
    """A byte count: ``4194304``, ``4M``, ``512K``, ``1G`` (powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    stripped = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = units.get(stripped[-1:], 1)
    if scale != 1:
        stripped = stripped[:-1]
    return positive_int(stripped) * scale if stripped else positive_int(text)


# -- TCP framing, shared by ``recv --tcp`` and ``send --tcp`` ---------------------

#: The framing flags, by attribute name (all default to None: not given).
FRAMING_FLAGS = {
    "prefix_size": "--prefix-size",
    "byteorder": "--byteorder",
    "max_frame": "--max-frame",
    "truncate": "--truncate",
}


def add_framing_arguments(parser, *, receiving: bool) -> None:
    """--prefix-size, --byteorder, --max-frame (and --truncate when receiving)."""
    group = parser.add_argument_group(
        "TCP framing", "with --tcp only; both ends must agree (see fastnet.socket.set_framing)"
    )
    group.add_argument(
        "--prefix-size",
        type=int,
        choices=(2, 4, 8),
        metavar="{2,4,8}",
        help="bytes of the length prefix before each frame (default 4)",
    )
    group.add_argument(
        "--byteorder", choices=("big", "little"), help="byte order of the length prefix (default big)"
    )
    group.add_argument(
        "--max-frame", type=byte_size, metavar="BYTES", help="longest frame accepted, e.g. 64K (default 16M)"
    )
    if receiving:
        group.add_argument(
            "--truncate",
            action="store_const",
            const=True,
            help="keep the first --slot-size bytes of a longer frame (flagged "
            "truncated) instead of stopping with an error",
        )


def framing_flags_given(args) -> list:
    """The framing flags on the command line, as written."""
    return [flag for name, flag in FRAMING_FLAGS.items() if getattr(args, name, None) is not None]


def framing_options(args) -> dict:
    """Keywords for ``socket.set_framing`` from the flags given."""
    options = {"prefix_size": args.prefix_size, "byteorder": args.byteorder, "max_frame": args.max_frame}
    if getattr(args, "truncate", None):
        options["on_oversize"] = "truncate"
    return options
