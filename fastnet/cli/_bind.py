"""Where the command-line tools bind: loopback unless an address is named, never all
interfaces without saying so.

A receiving command binds the address the user names, ``127.0.0.1`` by
default; binding a wildcard (``0.0.0.0``, ``::``: every interface, so any
host that can reach this one may send to it) prints a one-line notice on
stderr. A sending socket that is not bound gets the wildcard address from
its first send (udp(7): "Otherwise, the socket layer will automatically
assign a free local port out of the range defined by
/proc/sys/net/ipv4/ip_local_port_range and bind the socket to INADDR_ANY"),
and would then take datagrams to that port from any interface; so the
sending commands bind it first to the one address the kernel would send from.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

__all__ = ["is_wildcard", "notice_if_wildcard", "bind_source"]


def is_wildcard(host) -> bool:
    """True for an address that binds every interface: ``0.0.0.0``, ``::`` (or ``""``)."""
    if host in ("", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_unspecified
    except ValueError:
        return False


def notice_if_wildcard(command: str, address, stream=None) -> bool:
    """Print one line on stderr if ``address`` (host, port, ...) binds every interface."""
    if not is_wildcard(address[0]):
        return False
    shown = f"[{address[0]}]:{address[1]}" if ":" in str(address[0]) else f"{address[0]}:{address[1]}"
    print(
        f"fastnet {command}: note: listening on all interfaces ({shown}); any host that can "
        f"reach this one can send to it",
        file=stream or sys.stderr,
    )
    return True


def bind_source(sock, destination, interface=None):
    """Bind ``sock`` (unbound) to the address the kernel would send from to ``destination``.

    Found with a throwaway UDP socket: connect(2) on a datagram socket only
    looks up the route (and, for a multicast destination, honours the
    outgoing interface set with ``interface``); nothing is sent. Returns the
    bound address, or None where the kernel names no source (the socket then
    stays unbound and the kernel chooses at the first send).
    """
    from ..core.multicast import prepare_multicast_sender

    host = destination[0].split("%", 1)[0]
    with socket.socket(sock.family, socket.SOCK_DGRAM) as probe:
        try:
            if ipaddress.ip_address(host).is_multicast:
                prepare_multicast_sender(probe, interface=interface)
            probe.connect(destination)
        except (OSError, ValueError):
            return None
        local = probe.getsockname()
    if is_wildcard(local[0]):
        return None
    sock.bind((local[0], 0, *local[2:]))
    return sock.getsockname()
