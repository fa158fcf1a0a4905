"""``fastnet info``: what this machine offers fastnet.

Prints the engines, the kernel release, what the kernel supports (probed at
run time, see ``fastnet.features()``), the socket buffer limits that cap
``SO_RCVBUF``/``SO_SNDBUF`` and which CPUs the network interfaces'
interrupts run on (from /proc/interrupts, where the kernel tells), so that a
Receiver's capture thread can be pinned elsewhere (``--cpu``); ``--json``
prints the same as one JSON object.
"""

from __future__ import annotations

import json
import os
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


def interrupt_cpus(table: str, devices: dict) -> dict:
    """``{interface: {"irqs": [...], "cpus": [...]}}`` from the text of /proc/interrupts.

    ``devices`` maps each interface to the names its interrupts may carry
    (its own name, and its device's, such as ``virtio3`` for ``virtio3-rx``).
    ``cpus`` are the CPUs that have handled at least one of its interrupts.
    """
    lines = table.splitlines()
    if not lines:
        return {}
    ncpu = len(lines[0].split())
    found: dict = {name: {"irqs": [], "cpus": set()} for name in devices}
    for line in lines[1:]:
        irq, _, rest = line.partition(":")
        if not irq.strip().isdigit():
            continue
        fields = rest.split()
        counts, label = fields[:ncpu], fields[-1] if len(fields) > ncpu else ""
        for name, tokens in devices.items():
            if any(label == token or label.startswith(token + "-") for token in tokens):
                found[name]["irqs"].append(int(irq))
                busy = (i for i, count in enumerate(counts) if count.isdigit() and int(count))
                found[name]["cpus"].update(busy)
    return {name: {"irqs": v["irqs"], "cpus": sorted(v["cpus"])} for name, v in found.items() if v["irqs"]}


def _interface_devices() -> dict:
    """Interfaces with a device behind them (not loopback), and the names to look for."""
    devices: dict[str, set] = {}
    try:
        names = sorted(os.listdir("/sys/class/net"))
    except OSError:
        return devices
    for name in names:
        link = f"/sys/class/net/{name}/device"
        if not os.path.exists(link):
            continue  # virtual: lo, bridges, tunnels raise no interrupts of their own
        devices[name] = {name, os.path.basename(os.path.realpath(link))}
    return devices


def _nic_interrupts():
    """What interrupt_cpus says for this machine, or None where /proc/interrupts cannot be read."""
    try:
        with open("/proc/interrupts") as handle:
            table = handle.read()
    except OSError:
        return None
    return interrupt_cpus(table, _interface_devices())


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
        "nic_interrupts": _nic_interrupts(),
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
    interrupts = info.get("nic_interrupts")
    lines.append("network interrupts (pin a Receiver elsewhere: fastnet recv --cpu N):")
    if interrupts is None:
        lines.append("  unavailable (/proc/interrupts cannot be read)")
    elif not interrupts:
        lines.append("  none found for any interface")
    for name, seen in (interrupts or {}).items():
        cpus = ", ".join(str(cpu) for cpu in seen["cpus"]) or "none yet"
        lines.append(f"  {name:<12} CPU {cpus}  (IRQ {', '.join(str(irq) for irq in seen['irqs'])})")
    # Loopback raises no interrupt: the receive work runs on the sending CPU.
    lines.append("  lo           none: on loopback the sender's CPU does the kernel's receive work")
    return "\n".join(lines)


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(_format(info))
    return 0
