"""The Receiver's default sizes: slots by the interface MTU, a ring bounded in bytes, a buffer to match.

Each default is used only where the argument was left out (None); an explicit
``slot_size=``, ``ring_size=`` or ``rcvbuf=`` is kept as given.

Slot size
    The largest UDP payload the interface the receiver listens on carries
    without fragmenting: its MTU less the IP and UDP headers (1472 B on a
    1500 B Ethernet for IPv4, 1452 B for IPv6; 8972 B on a 9000 B jumbo
    link), at most ``MAX_DEFAULT_SLOT`` (9000 B). The interface is the one
    holding the bound address; for a wildcard or multicast address it is
    the largest MTU of any interface that is up, loopback included (so a
    wildcard receiver always gets the 9000 B cap, because loopback's MTU is
    64 KiB). Where the MTU cannot be read the slot is 9000 B. Longer
    datagrams (fragmented, or from loopback) are cut and counted in
    ``truncated``, and ``stats.diagnose()`` names ``slot_size``.
Ring size
    As many batches as fit ``DEFAULT_RING_BYTES`` (128 MiB), between
    ``MIN_DEFAULT_RING`` and ``MAX_DEFAULT_RING`` (64): 14 batches of 1024
    slots of 9000 B, or 64 of 1024 x 1472 B. The memory is reserved, not
    used: numpy's zeroed pages are backed by RAM only once written, so a
    receiver of 1 KiB datagrams touches about a page per slot it fills.
Receive buffer
    Enough for the ring's worth of datagrams (``rows x slot_size``), between
    ``MIN_DEFAULT_RCVBUF`` (4 MiB) and ``MAX_DEFAULT_RCVBUF`` (64 MiB), asked
    for with SO_RCVBUFFORCE where permitted. The kernel's own default (about
    208 KiB, ``net.core.rmem_default``) holds well under a millisecond of a
    fast stream: any pause of the capture thread would overflow it.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket as _stdsocket
import struct
import threading
import warnings
from typing import Iterable, Optional

from ..core import buffers
from ..errors import BufferSizeWarning

__all__ = [
    "DEFAULT_RING_BYTES",
    "MAX_DEFAULT_SLOT",
    "default_slot_size",
    "default_ring_size",
    "default_rcvbuf",
    "interface_mtus",
    "ask_default_rcvbuf",
]

MAX_DEFAULT_SLOT = 9000
DEFAULT_RING_BYTES = 128 << 20
MIN_DEFAULT_RING = 4
MAX_DEFAULT_RING = 64
MIN_DEFAULT_RCVBUF = 4 << 20
MAX_DEFAULT_RCVBUF = 64 << 20

#: IP header plus UDP header, per family: what the MTU holds besides the payload.
_HEADERS: dict[int, int] = {_stdsocket.AF_INET: 20 + 8, _stdsocket.AF_INET6: 40 + 8}

_SYS_NET = "/sys/class/net"
# netdevice(7): "SIOCGIFADDR ... Get or set the address of the device using
# ifr_addr"; struct ifreq is the 16-byte name then a sockaddr (16 bytes).
_SIOCGIFADDR = 0x8915
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip(), 0)
    except (OSError, ValueError):
        return None


def _interfaces() -> list[str]:
    try:
        return sorted(os.listdir(_SYS_NET))
    except OSError:
        return []


def _has_flag(name: str, flag: int) -> bool:
    flags = _read_int(f"{_SYS_NET}/{name}/flags")
    return flags is not None and bool(flags & flag)


def _ipv4_of(name: str) -> Optional[str]:
    """The interface's (first) IPv4 address, or None."""
    request = struct.pack("16s16x", name.encode()[:15])
    try:
        with _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_DGRAM) as probe:
            reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
    except OSError:  # EADDRNOTAVAIL: no IPv4 address on it
        return None
    return _stdsocket.inet_ntoa(reply[20:24])


def _ipv6_of() -> dict[str, list[str]]:
    """Interface name -> its IPv6 addresses (/proc/net/if_inet6), or {}."""
    found: dict[str, list[str]] = {}
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) == 6 and len(fields[0]) == 32:
            address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
            found.setdefault(fields[5], []).append(address)
    return found


def interface_mtus(family: int, host: str) -> list[int]:
    """MTUs of the interfaces a receiver bound to ``host`` listens on ([] if unknown).

    The interface holding ``host`` (the loopback one for 127.0.0.0/8 and ::1);
    for a wildcard or multicast address, every interface that is up.
    """
    names = _interfaces()
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return []
    if address.is_unspecified or address.is_multicast:
        chosen: Iterable[str] = [name for name in names if _has_flag(name, _IFF_UP)]
    elif address.is_loopback:  # all of 127.0.0.0/8 is on the loopback interface
        chosen = [name for name in names if _has_flag(name, _IFF_LOOPBACK)]
    elif family == _stdsocket.AF_INET:
        chosen = [name for name in names if _ipv4_of(name) == str(address)]
    else:
        v6 = _ipv6_of()
        chosen = [name for name in names if str(address) in v6.get(name, [])]
    mtus = [_read_int(f"{_SYS_NET}/{name}/mtu") for name in chosen]
    return [mtu for mtu in mtus if mtu]


def default_slot_size(family: int, host: str) -> int:
    """Bytes per slot for a receiver bound to ``host`` (see the module doc)."""
    mtus = interface_mtus(family, host)
    if not mtus:
        return MAX_DEFAULT_SLOT
    return max(1, min(MAX_DEFAULT_SLOT, max(mtus) - _HEADERS.get(family, 48)))


def default_ring_size(batch_size: int, slot_size: int) -> int:
    """Batches in the ring: as many as fit DEFAULT_RING_BYTES, within the bounds."""
    fit = DEFAULT_RING_BYTES // (batch_size * slot_size)
    return max(MIN_DEFAULT_RING, min(MAX_DEFAULT_RING, fit))


def default_rcvbuf(rows: int, slot_size: int) -> int:
    """Receive buffer to ask for: the ring's worth of datagrams, within the bounds."""
    return max(MIN_DEFAULT_RCVBUF, min(MAX_DEFAULT_RCVBUF, rows * slot_size))


_warned_lock = threading.Lock()
_warned = False


def ask_default_rcvbuf(sock, size: int) -> int:
    """Ask for the default receive buffer; warn once per process if the kernel capped it.

    Returns the size as the kernel reports it. The warning names the sysctl:
    without CAP_NET_ADMIN, SO_RCVBUF is capped at ``net.core.rmem_max``.
    """
    global _warned
    granted, capped = buffers.ask(sock, "rcvbuf", size)
    if capped:
        with _warned_lock:
            first, _warned = not _warned, True
        if first:
            warnings.warn(
                f"the default receive buffer of {size >> 20} MiB was capped to {granted // 2} "
                f"bytes by the kernel (net.core.rmem_max without CAP_NET_ADMIN): a pause of the "
                f"capture thread longer than that holds will drop datagrams; raise it with "
                f"'sysctl -w net.core.rmem_max={size}', or pass rcvbuf= (warned once)",
                BufferSizeWarning,
                stacklevel=4,
            )
    return granted
