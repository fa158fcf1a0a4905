"""``fastnet info``: what this machine offers fastnet.

Prints the engines, the kernel release, what the kernel supports (probed at
run time, see ``fastnet.features()``) and the socket buffer limits that cap
``SO_RCVBUF``/``SO_SNDBUF``; ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import json
import platform

#: sysctl name -> file; values in bytes, except udp_mem (pages: min, pressure, max).
LIMITS = {
    "net.core.rmem_max": "/proc/sys/net/core/rmem_max",
    "net.core.wmem_max": "/proc/sys/net/core/wmem_max",
    "net.core.rmem_default": "/proc/sys/net/core/rmem_default",
    "net.core.wmem_default": "/proc/sys/net/core/wmem_default",
    "net.ipv4.udp_mem": "/proc/sys/net/ipv4/udp_mem",
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show engines, kernel features and socket buffer limits",
        description="Show the fastnet engines, what the kernel supports (UDP GSO/GRO, "
        "recvmmsg/sendmmsg, timestamps, drop counters) and socket buffer limits.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _read_limit(path: str):
    """The sysctl's value: an int, a list of ints, or None where it cannot be read."""
    try:
        with open(path) as handle:
            numbers = [int(word) for word in handle.read().split()]
    except (OSError, ValueError):
        return None
    return numbers[0] if len(numbers) == 1 else numbers


def collect() -> dict:
    """Everything ``fastnet info`` reports, as plain data."""
    import fastnet
    from fastnet import engines as _backend

    engines = {}
    for name in _backend.BACKENDS:
        try:
            engines[name] = dict(_backend.load(name).FEATURES)
        except ImportError as exc:
            engines[name] = {"error": str(exc)}
    return {
        "version": fastnet.__version__,
        "backend": fastnet.backend,
        "available_backends": fastnet.available_backends(),
        "engines": engines,
        "kernel": {"system": platform.system(), "release": platform.release()},
        "features": fastnet.features(),
        "limits": {name: _read_limit(path) for name, path in LIMITS.items()},
    }


def _yes_no(value) -> str:
    return "yes" if value else "no"


def _format(info: dict) -> str:
    lines = [
        f"fastnet {info['version']}",
        f"backend: {info['backend']} (available: {', '.join(info['available_backends'])})",
    ]
    for name, implemented in info["engines"].items():
        if "error" in implemented:
            lines.append(f"  {name}: cannot load ({implemented['error']})")
        else:
            have = [key for key, value in implemented.items() if value]
            lines.append(f"  {name} engine implements: {', '.join(have) or 'plain loops only'}")
    kernel = info["kernel"]
    lines.append(f"kernel: {kernel['system']} {kernel['release']}")
    lines.append("kernel supports:")
    for name, value in info["features"].items():
        lines.append(f"  {name:<12} {_yes_no(value)}")
    lines.append("socket buffer limits:")
    for name, value in info["limits"].items():
        if value is None:
            shown = "unavailable"
        elif isinstance(value, list):
            shown = " ".join(str(v) for v in value) + "  (pages: min pressure max)"
        else:
            shown = f"{value} bytes"
        lines.append(f"  {name:<22} {shown}")
    return "\n".join(lines)


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(_format(info))
    return 0
