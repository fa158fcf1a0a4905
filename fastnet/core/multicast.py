"""Multicast: joining and leaving groups, and preparing a socket to send to one.

Receiving: bind the socket to the group's port (and usually to the group
address or the wildcard), then ``join_group(sock, group)``. The kernel keeps
memberships per socket and drops them when the socket is closed
(ip(7): "IP_ADD_MEMBERSHIP ... Join a multicast group"; the kernel's
inet_release -> ip_mc_drop_socket, and ipv6_sock_mc_close for IPv6), so
``leave_group`` is only needed to leave while keeping the socket open.

One surprise worth knowing (ip(7), IP_MULTICAST_ALL, default 1): an IPv4
socket bound to the wildcard address receives datagrams for *every* group
any socket on the host joined on that port, not only its own groups; bind to
the group address to receive only that group.

Which interface: ``interface`` may be an interface name (``"lo"``,
``"eth0"``), an index (int), or one of the interface's addresses; ``None``
lets the kernel choose by the routing table. Names become indexes with
socket.if_nametoindex.

Structures (Linux, <linux/in.h>, <netinet/in.h>):

* ``ip_mreqn {in_addr multiaddr; in_addr address; int ifindex}``:
  IP_ADD_MEMBERSHIP / IP_DROP_MEMBERSHIP, IP_MULTICAST_IF. Linux takes the
  longer ip_mreqn where the shorter ip_mreq is documented, by its size.
* ``ip_mreq_source {multiaddr; interface; sourceaddr}`` (this order on Linux;
  BSD puts the source second): IP_ADD_SOURCE_MEMBERSHIP.
* ``ipv6_mreq {in6_addr multiaddr; unsigned int ifindex}``: IPV6_JOIN_GROUP.
* ``group_source_req {uint32 ifindex; sockaddr_storage group, source}``:
  MCAST_JOIN_SOURCE_GROUP, for IPv6 source-specific joins and IPv4 ones
  given an interface index (ip_mreq_source can only name an address).
"""

from __future__ import annotations

import ipaddress
import operator
import socket as _stdsocket
import struct

__all__ = ["join_group", "leave_group", "prepare_multicast_sender", "interface_index"]

# <linux/in.h>; the socket module lacks these.
IP_ADD_SOURCE_MEMBERSHIP = 39
IP_DROP_SOURCE_MEMBERSHIP = 40
MCAST_JOIN_SOURCE_GROUP = 46
MCAST_LEAVE_SOURCE_GROUP = 47

_SOCKADDR_STORAGE = 128
_MAX_INDEX = 2**31 - 1
# group_source_req: a 4-byte index, then sockaddr_storage aligned like a
# pointer (so 4 bytes of padding on 64-bit platforms).
_GSR_PAD = struct.calcsize("P") - 4


def _address(text, what):
    if not isinstance(text, str):
        raise TypeError(f"{what} must be an address string, not {type(text).__name__}")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"{what} {text!r} is not an IP address") from None


def _group_of(sock, group):
    address = _address(group, "group")
    if not address.is_multicast:
        raise ValueError(f"{group!r} is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)")
    family = _stdsocket.AF_INET if address.version == 4 else _stdsocket.AF_INET6
    if sock.family != family:
        raise ValueError(
            f"group {group} is IPv{address.version} but the socket is "
            f"{_stdsocket.AddressFamily(sock.family).name}"
        )
    return address


def _index_of_v6_address(address) -> int:
    """Interface index owning an IPv6 address, from /proc/net/if_inet6."""
    wanted = address.packed.hex()
    try:
        with open("/proc/net/if_inet6") as table:
            for line in table:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == wanted:
                    return int(fields[1], 16)
    except OSError:
        pass
    raise ValueError(f"no interface has the address {address}")


def interface_index(interface, version: int):
    """(index, IPv4 address or None) for an interface given by name, index or address."""
    if interface is None:
        return 0, None
    if isinstance(interface, bool):
        raise TypeError("interface must be a name, an index or an address, not bool")
    if isinstance(interface, int):
        index = operator.index(interface)
        # The kernel's interface indexes are ints (ip_mreqn.imr_ifindex).
        if not 0 <= index <= _MAX_INDEX:
            raise ValueError(f"interface index must be 0 or more, at most {_MAX_INDEX}, got {index}")
        return index, None
    if not isinstance(interface, str):
        raise TypeError(f"interface must be a name, an index or an address, not {type(interface).__name__}")
    try:
        address = ipaddress.ip_address(interface.split("%", 1)[0])
    except ValueError:
        try:
            return _stdsocket.if_nametoindex(interface), None
        except OSError:
            raise ValueError(f"no network interface named {interface!r}") from None
    if address.version != version:
        raise ValueError(f"interface address {interface} is IPv{address.version}, the group IPv{version}")
    if version == 6:
        return _index_of_v6_address(address), None
    return 0, address


def _sockaddr(address) -> bytes:
    """A sockaddr_storage holding ``address`` (port 0)."""
    if address.version == 4:
        raw = struct.pack("=HH4s", _stdsocket.AF_INET, 0, address.packed)
    else:
        raw = struct.pack("=HHI16sI", _stdsocket.AF_INET6, 0, 0, address.packed, 0)
    return raw.ljust(_SOCKADDR_STORAGE, b"\0")


def _group_source_req(index, group, source) -> bytes:
    return struct.pack("=I", index) + bytes(_GSR_PAD) + _sockaddr(group) + _sockaddr(source)


def _membership(sock, group, interface, source, join):
    group_address = _group_of(sock, group)
    version = group_address.version
    index, local = interface_index(interface, version)
    if source is not None:
        source_address = _address(source, "source")
        if source_address.version != version:
            raise ValueError(f"source {source} is IPv{source_address.version}, the group IPv{version}")
        if source_address.is_multicast:
            raise ValueError(f"source {source} must be a unicast address")
    if version == 4:
        level = _stdsocket.IPPROTO_IP
        if source is None:
            option = _stdsocket.IP_ADD_MEMBERSHIP if join else _stdsocket.IP_DROP_MEMBERSHIP
            value = struct.pack(
                "=4s4si", group_address.packed, (local or ipaddress.IPv4Address(0)).packed, index
            )
        elif index:
            option = MCAST_JOIN_SOURCE_GROUP if join else MCAST_LEAVE_SOURCE_GROUP
            value = _group_source_req(index, group_address, source_address)
        else:
            option = IP_ADD_SOURCE_MEMBERSHIP if join else IP_DROP_SOURCE_MEMBERSHIP
            value = struct.pack(
                "=4s4s4s",
                group_address.packed,
                (local or ipaddress.IPv4Address(0)).packed,
                source_address.packed,
            )
    else:
        level = _stdsocket.IPPROTO_IPV6
        if source is None:
            option = _stdsocket.IPV6_JOIN_GROUP if join else _stdsocket.IPV6_LEAVE_GROUP
            value = struct.pack("=16sI", group_address.packed, index)
        else:
            option = MCAST_JOIN_SOURCE_GROUP if join else MCAST_LEAVE_SOURCE_GROUP
            value = _group_source_req(index, group_address, source_address)
    sock.setsockopt(level, option, value)


def join_group(sock, group: str, interface=None, source: str | None = None) -> None:
    """Have ``sock`` receive datagrams sent to multicast ``group``.

    ``interface``: name, index or address of the interface to join on
    (default: the kernel's choice by route). ``source``: join only that
    sender's traffic (source-specific multicast). The membership ends when
    the socket closes, or with :func:`leave_group`. A group that is not a
    multicast address, or of the other family than the socket, raises
    ValueError before any system call; the kernel's refusals are OSError
    (EADDRINUSE for a group already joined, ENODEV for no such interface).
    """
    _membership(sock, group, interface, source, join=True)


def leave_group(sock, group: str, interface=None, source: str | None = None) -> None:
    """Undo :func:`join_group` (same arguments); closing the socket does it too."""
    _membership(sock, group, interface, source, join=False)


def prepare_multicast_sender(sock, *, interface=None, ttl: int = 1, loop: bool = True) -> None:
    """Set up ``sock`` to send to multicast groups.

    ``interface``: name, index or address of the outgoing interface (default:
    by route; a host without a multicast route needs one). ``ttl``: hop limit,
    1 keeps datagrams on the local network (the kernel's default is also 1).
    ``loop``: deliver a copy to listeners on this host (the kernel default).
    """
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 255:
        raise ValueError(f"ttl must be 0-255, got {ttl!r}")
    if sock.family == _stdsocket.AF_INET:
        level = _stdsocket.IPPROTO_IP
        if interface is not None:
            index, local = interface_index(interface, 4)
            sock.setsockopt(
                level,
                _stdsocket.IP_MULTICAST_IF,
                struct.pack("=4s4si", bytes(4), (local or ipaddress.IPv4Address(0)).packed, index),
            )
        sock.setsockopt(level, _stdsocket.IP_MULTICAST_TTL, ttl)
        sock.setsockopt(level, _stdsocket.IP_MULTICAST_LOOP, int(bool(loop)))
    elif sock.family == _stdsocket.AF_INET6:
        level = _stdsocket.IPPROTO_IPV6
        if interface is not None:
            index, _ = interface_index(interface, 6)
            sock.setsockopt(level, _stdsocket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(level, _stdsocket.IPV6_MULTICAST_HOPS, ttl)
        sock.setsockopt(level, _stdsocket.IPV6_MULTICAST_LOOP, int(bool(loop)))
    else:
        raise ValueError(f"multicast needs an AF_INET or AF_INET6 socket, not {sock.family!r}")
