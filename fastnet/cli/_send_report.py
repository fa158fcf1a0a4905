"""What `fastnet send` reports at the end, over UDP (cli/send.py) or TCP (cli/_send_tcp.py)."""

from __future__ import annotations

import sys


def where(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def summary(args, stats, backend: str, interrupted: bool, error, proto: str) -> dict:
    """The summary's fields, as ``--json`` prints them."""
    host, port = args.address
    return {
        "sent": stats.sent,
        "bytes": stats.bytes,
        "elapsed": round(stats.elapsed, 6),
        "pps": round(stats.pps, 1),
        "bps": round(stats.bps, 1),
        "calls": stats.calls,
        "host": host,
        "port": port,
        "backend": backend,
        "interrupted": interrupted,
        "error": None if error is None else str(error),
        "proto": proto,
    }


def print_error(error) -> None:
    if error is not None:
        print(f"fastnet send: error: {error}", file=sys.stderr)
