"""Host and port: parsing ``HOST:PORT``, checking tuples, resolving, the defaults.

The one place the library and the command line share for addresses, so an
address is accepted, refused and reported the same way by ``fastnet.socket``,
``Sender``, ``Receiver`` and ``fastnet recv``/``send``. Bad input raises
``TypeError``/``ValueError`` before any system call (the command line turns
``ValueError`` into argparse's one-line usage error).
"""

from __future__ import annotations

import socket as _stdsocket

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "parse_host_port", "check_host_port", "resolve", "bind_address"]

#: Loopback unless the user names an address: never all interfaces by default.
DEFAULT_HOST = "127.0.0.1"
#: The port ``fastnet recv`` and ``fastnet send`` use when none is given.
DEFAULT_PORT = 7788


def parse_host_port(text: str) -> tuple:
    """``HOST:PORT``, ``[IPv6]:PORT``, or ``:PORT`` / ``PORT`` for loopback -> ``(host, port)``.

    Raises ValueError, naming the text, when it is malformed.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"malformed address {text!r}: expected [IPv6]:PORT")
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" not in text:
        host, port = "", text
    else:
        raise ValueError(f"malformed address {text!r}: write IPv6 addresses as [ADDR]:PORT")
    host = host or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"malformed address {text!r}: port must be a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"malformed address {text!r}: port must be 0-65535")
    return host, number


def check_host_port(address, expected: str = "a (host, port) tuple") -> None:
    """``address`` is a tuple of 2 to 4 items starting with a str host and a port 0-65535."""
    if not isinstance(address, tuple) or not 2 <= len(address) <= 4:
        raise TypeError(f"address must be {expected}, not {address!r}")
    host, port = address[0], address[1]
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, not {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535, got {port}")


def resolve(address, family: int = 0, flags: int = 0) -> tuple:
    """``(family, sockaddr)`` of a checked ``(host, port[, flowinfo, scope_id])``.

    The first answer of getaddrinfo for a datagram socket; an IPv6 address
    given with flowinfo and scope_id keeps them.
    """
    check_host_port(address)
    sockaddr: tuple  # its shape depends on the family found
    found, _, _, _, sockaddr = _stdsocket.getaddrinfo(
        address[0], address[1], family, _stdsocket.SOCK_DGRAM, 0, flags
    )[0]
    if found == _stdsocket.AF_INET6 and len(address) == 4:
        sockaddr = (sockaddr[0], sockaddr[1], address[2], address[3])
    return found, sockaddr


def bind_address(address) -> tuple:
    """``(family, sockaddr)`` to bind for ``address``: a port, ``"HOST:PORT"`` or a tuple.

    A port alone, or ``":PORT"``, binds loopback (:data:`DEFAULT_HOST`).
    """
    expected = "a port, 'HOST:PORT' or a (host, port) tuple"
    if isinstance(address, bool):
        raise TypeError(f"address must be {expected}, not bool")
    if isinstance(address, int):
        address = (DEFAULT_HOST, address)
    elif isinstance(address, str):
        address = parse_host_port(address)
    check_host_port(address, expected)
    return resolve(address, _stdsocket.AF_UNSPEC, _stdsocket.AI_PASSIVE)
