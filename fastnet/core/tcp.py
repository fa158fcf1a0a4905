"""create_server and create_connection: the standard helpers, returning fastnet sockets.

They follow the standard library's ``socket.create_server`` and
``socket.create_connection`` step for step (same arguments, options and
errors); the only difference is the class of the socket they make and the
``backend`` keyword that chooses its engine.
"""

from __future__ import annotations

import builtins
import os
import socket as _stdsocket
from typing import Any, List

from .socket import _engine_for, socket

__all__ = ["create_server", "create_connection"]

# The stdlib's own sentinel, so a caller passing it means what it means there;
# typeshed does not declare it.
_GLOBAL_DEFAULT_TIMEOUT = _stdsocket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]
_ExceptionGroup: Any = getattr(builtins, "ExceptionGroup", None)  # Python 3.11+


def create_connection(
    address, timeout=_GLOBAL_DEFAULT_TIMEOUT, source_address=None, *, all_errors=False, backend=None
):
    """Connect to ``(host, port)``; return the connected ``fastnet.socket``.

    As ``socket.create_connection``: every address ``host`` resolves to is
    tried in turn and the last error is raised if none connects
    (``ConnectionRefusedError``, ``TimeoutError``, ...), or, with
    ``all_errors=True`` (Python 3.11+), an ``ExceptionGroup`` of them all.
    ``timeout`` sets the socket's timeout before connecting (default: the
    global default); ``source_address`` is bound first if given.
    """
    _engine_for(backend)  # an unknown backend is refused before any look-up
    if all_errors and _ExceptionGroup is None:
        raise TypeError("create_connection(all_errors=True) needs Python 3.11 or later")
    host, port = address
    exceptions: List[OSError] = []
    for family, kind, proto, _, sockaddr in _stdsocket.getaddrinfo(host, port, 0, _stdsocket.SOCK_STREAM):
        sock = None
        try:
            sock = socket(family, kind, proto, backend=backend)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            exceptions.clear()  # break the traceback's reference cycle, as the stdlib does
            return sock
        except OSError as exc:
            if not all_errors:
                exceptions.clear()  # only the last error is raised
            exceptions.append(exc)
            if sock is not None:
                sock.close()
    if exceptions:
        try:
            if not all_errors:
                raise exceptions[0]
            raise _ExceptionGroup("create_connection failed", exceptions)
        finally:
            exceptions.clear()
    raise OSError("getaddrinfo returns an empty list")


def create_server(
    address, *, family=_stdsocket.AF_INET, backlog=None, reuse_port=False, dualstack_ipv6=False, backend=None
):
    """A listening TCP ``fastnet.socket`` bound to ``address``, as ``socket.create_server``.

    SO_REUSEADDR is set (on POSIX); ``reuse_port`` sets SO_REUSEPORT;
    an AF_INET6 socket is IPv6-only unless ``dualstack_ipv6`` is true.
    """
    _engine_for(backend)  # an unknown backend is refused before any socket is made
    if reuse_port and not hasattr(_stdsocket, "SO_REUSEPORT"):
        raise ValueError("SO_REUSEPORT not supported on this platform")
    if dualstack_ipv6:
        if not _stdsocket.has_dualstack_ipv6():
            raise ValueError("dualstack_ipv6 not supported on this platform")
        if family != _stdsocket.AF_INET6:
            raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = socket(family, _stdsocket.SOCK_STREAM, backend=backend)
    try:
        if os.name not in ("nt", "cygwin") and hasattr(_stdsocket, "SO_REUSEADDR"):
            try:
                sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
            except OSError:
                pass  # as the stdlib: fail later on bind() where unsupported
        if reuse_port:
            sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEPORT, 1)
        if _stdsocket.has_ipv6 and family == _stdsocket.AF_INET6:
            if dualstack_ipv6:
                sock.setsockopt(_stdsocket.IPPROTO_IPV6, _stdsocket.IPV6_V6ONLY, 0)
            elif hasattr(_stdsocket, "IPV6_V6ONLY") and hasattr(_stdsocket, "IPPROTO_IPV6"):
                sock.setsockopt(_stdsocket.IPPROTO_IPV6, _stdsocket.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
        except OSError as err:
            msg = f"{err.strerror} (while attempting to bind on address {address!r})"
            raise OSError(err.errno, msg) from None
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
        return sock
    except OSError:
        sock.close()
        raise
