"""What this machine's kernel supports, probed once per process at run time.

A feature compiled into an engine is not enough: the kernel running the
program decides. Each probe asks the kernel directly on a throwaway socket,
so an old kernel answers ENOPROTOOPT (or ENOSYS) and the feature reads False.
The engines' own ``FEATURES`` dicts say what each engine implements; this
module says what the kernel under it offers.
"""

from __future__ import annotations

import functools
import socket as _stdsocket
import sys
from typing import Dict

from .. import constants as C

__all__ = ["features"]


def _udp_socket() -> _stdsocket.socket:
    return _stdsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_DGRAM)


def _accepts(level: int, option: int, value: int) -> bool:
    """True if a UDP socket accepts ``setsockopt(level, option, value)``."""
    try:
        with _udp_socket() as probe:
            probe.setsockopt(level, option, value)
    except OSError:
        return False
    return True


def _meminfo() -> bool:
    try:
        with _udp_socket() as probe:
            probe.getsockopt(_stdsocket.SOL_SOCKET, C.SO_MEMINFO, 64)
    except OSError:
        return False
    return True


def _mmsg(name: str) -> bool:
    """True if the C library has ``name`` (recvmmsg/sendmmsg) and the kernel runs it.

    A call with zero messages does nothing where the system call exists and
    fails with ENOSYS where it does not.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        call = getattr(libc, name)
    except (ImportError, OSError, AttributeError):
        return False
    with _udp_socket() as probe:
        if name == "recvmmsg":
            result = call(probe.fileno(), None, 0, _stdsocket.MSG_DONTWAIT, None)
        else:
            result = call(probe.fileno(), None, 0, _stdsocket.MSG_DONTWAIT)
    return result == 0


@functools.lru_cache(maxsize=None)
def _probe() -> tuple:
    return (
        ("recvmmsg", _mmsg("recvmmsg")),
        ("sendmmsg", _mmsg("sendmmsg")),
        # udp(7): UDP_SEGMENT "takes a value between 0 and USHRT_MAX that
        # sets the segment size"; kernels before 4.18 do not know the option.
        ("gso", _accepts(C.SOL_UDP, C.UDP_SEGMENT, 1400)),
        ("gro", _accepts(C.SOL_UDP, C.UDP_GRO, 1)),
        ("timestamps", _accepts(_stdsocket.SOL_SOCKET, C.SO_TIMESTAMPNS, 1)),
        ("rxq_ovfl", _accepts(_stdsocket.SOL_SOCKET, C.SO_RXQ_OVFL, 1)),
        ("meminfo", _meminfo()),
    )


def features() -> Dict[str, bool]:
    """What the running kernel supports, probed once per process.

    Keys: ``recvmmsg``, ``sendmmsg`` (batched system calls), ``gso`` (UDP
    segmentation offload, ``UDP_SEGMENT``), ``gro`` (UDP receive offload,
    ``UDP_GRO``), ``timestamps`` (``SO_TIMESTAMPNS``), ``rxq_ovfl`` (drop
    counter, ``SO_RXQ_OVFL``), ``meminfo`` (``SO_MEMINFO``). Returns a new
    dict each time; the probes themselves run once.
    """
    return dict(_probe())


@functools.lru_cache(maxsize=None)
def supported(name: str) -> bool:
    """One entry of :func:`features`, without making a dict (for per-call paths)."""
    return dict(_probe())[name]
