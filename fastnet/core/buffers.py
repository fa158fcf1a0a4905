"""Socket buffer sizes: ask for the FORCE options, fall back, report what the kernel set.

socket(7): "SO_RCVBUFFORCE (since Linux 2.6.14): Using this socket option, a
privileged (CAP_NET_ADMIN) process can perform the same task as SO_RCVBUF,
but the rmem_max limit can be overridden." And for SO_RCVBUF: "The kernel
doubles this value (to allow space for bookkeeping overhead) when it is set
using setsockopt(2), and this doubled value is returned by getsockopt(2)."
So the size reported back is compared with twice the request.
"""

from __future__ import annotations

import socket as _stdsocket
import warnings

from .. import constants as C
from ..errors import BufferSizeWarning

__all__ = ["BufferSizeWarning", "set_buffers"]

_SYSCTL = {"rcvbuf": "net.core.rmem_max", "sndbuf": "net.core.wmem_max"}
_OPTIONS = {
    "rcvbuf": (C.SO_RCVBUFFORCE, _stdsocket.SO_RCVBUF),
    "sndbuf": (C.SO_SNDBUFFORCE, _stdsocket.SO_SNDBUF),
}


def _check_size(name: str, size) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"{name} must be an int or None, not {type(size).__name__}")
    if not 0 < size <= 2**31 - 1:
        raise ValueError(f"{name} must be between 1 and 2**31-1 bytes, got {size}")
    return size


def ask(sock, name: str, size: int) -> tuple[int, bool]:
    """Ask for a ``name`` ("rcvbuf"/"sndbuf") of ``size``: ``(granted, capped)``, no warning."""
    force, plain = _OPTIONS[name]
    try:
        sock.setsockopt(_stdsocket.SOL_SOCKET, force, size)
    except PermissionError:  # EPERM: no CAP_NET_ADMIN; the plain option is capped
        sock.setsockopt(_stdsocket.SOL_SOCKET, plain, size)
    granted = sock.getsockopt(_stdsocket.SOL_SOCKET, plain)
    # The kernel stores min(2 * size, limit); anything below 2 * size was capped.
    return granted, granted < 2 * size and granted < 2**31 - 1


def _set_one(sock, name: str, size: int) -> int:
    granted, capped = ask(sock, name, size)
    if capped:
        warnings.warn(
            f"{name} of {size} bytes was capped to {granted // 2} by the kernel "
            f"(it reports {granted}, doubled for bookkeeping); raise it with "
            f"'sysctl -w {_SYSCTL[name]}={size}' or run with CAP_NET_ADMIN",
            BufferSizeWarning,
            stacklevel=3,
        )
    return granted


def set_buffers(sock, rcvbuf=None, sndbuf=None):
    """Set receive/send buffer sizes; return ``(rcvbuf, sndbuf)`` as the kernel reports them.

    Uses SO_RCVBUFFORCE/SO_SNDBUFFORCE where permitted (CAP_NET_ADMIN), else
    the plain options, which ``net.core.rmem_max``/``wmem_max`` cap; warns
    with :class:`BufferSizeWarning` naming the sysctl when capped. The
    reported values are the kernel's (twice the request when granted).
    """
    sizes = {"rcvbuf": rcvbuf, "sndbuf": sndbuf}
    checked = {name: _check_size(name, size) for name, size in sizes.items() if size is not None}
    for name, size in checked.items():
        _set_one(sock, name, size)
    return (
        sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_RCVBUF),
        sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_SNDBUF),
    )
