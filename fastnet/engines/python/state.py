"""SocketState: what the pure-Python engine keeps for one socket between calls.

fastnet.socket makes one when it is created (``engine.SocketState(fd,
family, kind, proto)``) and hands it to every engine call; the engine reads
and writes this object, never the socket's attributes. Its twin in the
Cython engine is ``SocketState`` in src/_state.pxi.
"""

from __future__ import annotations

import _socket
import fcntl

__all__ = ["SocketState"]


class SocketState:
    """Per-socket engine state: the untimed twin, the GRO area, a kept error, counts.

    ``gro``
        UDP_GRO is on (set by the socket whenever the option changes).
    ``gro_area``
        the GRO receive area (fastnet/engines/python/offload.py), with the
        rows carried over to the next call; None when GRO was never used or
        was turned off with nothing carried.
    ``control_truncated``
        datagrams received with MSG_CTRUNC (the socket's ``control_truncated``).
    """

    __slots__ = ("family", "io", "gro", "gro_area", "control_truncated", "_error")

    def __init__(self, fd: int, family: int, kind: int, proto: int):
        self.family = family
        self.io = _untimed_twin(fd, family, kind, proto)
        self.gro = False
        self.gro_area = None
        self.control_truncated = 0
        self._error: OSError | None = None

    @property
    def gro_path(self) -> bool:
        """Receives take the GRO path: GRO is on, or rows are still carried in the area."""
        return self.gro or self.gro_area is not None

    @property
    def carried(self) -> bool:
        """Rows are carried over in the GRO area: the next receive returns them before reading."""
        return self.gro_area is not None and self.gro_area.pending

    def keep_error(self, exc: OSError) -> None:
        """Keep an error met after some datagrams, for the next call (as recvmmsg does)."""
        self._error = exc

    def take_error(self) -> OSError | None:
        """The error kept by the last call, once."""
        error, self._error = self._error, None
        return error

    def close(self) -> None:
        """Forget the area; let go of the fd without closing it (the socket closes it)."""
        self.gro_area = None
        twin, self.io = self.io, None
        if twin is not None:
            twin.detach()


def _untimed_twin(fd, family, kind, proto):
    """A second socket object on the same fd, with no timeout.

    On a socket with a timeout, CPython polls before every call, for up
    to that timeout, even when MSG_DONTWAIT is passed (sock_call_ex in
    Modules/socketmodule.c waits with internal_select first). The engine
    must never wait (fastnet waits in core/socket.py _wait, with the user's
    timeout), so it calls this twin, whose timeout is None: CPython then
    calls the kernel at once and MSG_DONTWAIT keeps the call from blocking.

    The two objects share the fd and so its O_NONBLOCK flag, on which the
    user's object relies; making the twin must leave that flag as it was.
    """
    if fd < 0:
        return None
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    # The C type, not socket.socket: code that sets socket.socket =
    # fastnet.socket must not make this twin make a twin of its own.
    twin = _socket.socket(family, kind, proto, fd)
    if twin.gettimeout() is not None:  # socket.setdefaulttimeout() was used
        twin.settimeout(None)
    if fcntl.fcntl(fd, fcntl.F_GETFL) != flags:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return twin
