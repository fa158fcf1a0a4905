"""Argument types shared by the subcommands: each raises argparse.ArgumentTypeError
with a one-line message, which argparse turns into exit status 2."""

from __future__ import annotations

import argparse
import ipaddress

DEFAULT_HOST = "127.0.0.1"  # loopback unless the user names an address


def host_port(text: str) -> tuple:
    """``HOST:PORT``, ``[IPv6]:PORT``, or ``:PORT`` / ``PORT`` for loopback."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise argparse.ArgumentTypeError(f"malformed address {text!r}: expected [IPv6]:PORT")
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" not in text:
        host, port = "", text
    else:
        raise argparse.ArgumentTypeError(
            f"malformed address {text!r}: write IPv6 addresses as [ADDR]:PORT")
    host = host or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed address {text!r}: port must be a number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"malformed address {text!r}: port must be 0-65535")
    return host, number


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
            raise argparse.ArgumentTypeError(
                f"unknown name {text!r}; choose from {', '.join(names)}")
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
            f"{text!r} is not a rate: write bits/s as a number with an optional K, M or G "
            f"suffix, e.g. 400M") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite rate greater than 0")
    return value
