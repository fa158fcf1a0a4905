"""UDP GSO for send_batch: may the rows go out as super-buffers, and how many per buffer.

udp(7), UDP_SEGMENT: "Segmentation offload reduces send(2) cost by
transferring multiple datagrams worth of data as a single large packet
through the kernel transmit path [...]. The segment size must be chosen such
that at most 64 datagrams are sent in a single call and that the datagrams
after segmentation meet the same MTU rules that apply to datagrams sent
without this option." The kernel cuts a super-buffer into datagrams of the
segment size, the last one possibly shorter; so rows qualify when all have
the same length except a shorter (non-empty) last one.

Written once here, above the engines: the engines only receive a segment
size and a number of rows per super-buffer, and check every row against it
as they read the lengths, before any system call. So a batch sent again
with rows of one length needs no pass over its lengths here: ``proposed``
reads row 0 alone, and only a proposal the engine refuses costs the full
``plan``.
"""

from __future__ import annotations

import errno
import socket as _stdsocket
from typing import Optional, Tuple

from .features import supported

__all__ = ["plan", "proposed", "refused", "MAX_SEGMENTS"]

#: udp(7): "at most 64 datagrams are sent in a single call" (6.x kernels
#: accept 128; 64 is what every kernel with UDP_SEGMENT accepts).
MAX_SEGMENTS = 64

#: Largest UDP payload: 65535 less the UDP header and, for IPv4, the IPv4
#: header (IPv6's 40-byte header is outside its 65535-byte payload length).
#: A super-buffer's whole payload must fit too, or sendmsg fails with EMSGSIZE.
MAX_PAYLOAD = {_stdsocket.AF_INET: 65507, _stdsocket.AF_INET6: 65527}

#: Errors with which the kernel refuses GSO on a socket where plain sends
#: still work. net/ipv4/udp.c, udp_send_skb(): EINVAL when the socket sends
#: without checksums (SO_NO_CHECK; UDP_NO_CHECK6_TX for IPv6) or with too
#: many segments, EIO for UDP-Lite or IPsec routes (and, on older kernels,
#: a device without checksum offload; 6.18 checksums in software instead);
#: ENOPROTOOPT and EOPNOTSUPP where the option is unknown.
REFUSED_OUTRIGHT = frozenset({errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP})

#: ``sock._gso_refused_from`` of a socket that never saw a refusal.
NEVER_REFUSED = 1 << 16


def _shape_problem(lengths, family, shortest, longest) -> Optional[str]:
    """Why these row lengths cannot go out as GSO super-buffers, or None if they can.

    ``shortest`` and ``longest`` are the lengths' min and max, already known
    to the caller: rows all of one length (the usual case) need no more.
    """
    segment = int(lengths[0])
    if segment <= 0:
        return "GSO cannot carry empty datagrams (row 0 has length 0)"
    if segment > MAX_PAYLOAD[family]:
        return f"rows of {segment} bytes exceed the largest UDP payload ({MAX_PAYLOAD[family]})"
    if shortest == longest:
        return None
    head = lengths[:-1]
    if len(head) and (head != segment).any():
        row = int((head != segment).argmax())
        return (
            f"GSO needs rows of equal length (the last may be shorter): row {row} has "
            f"{int(lengths[row])} bytes, row 0 has {segment}"
        )
    last = int(lengths[-1])
    if last > segment:
        return f"GSO allows only a shorter last row: the last has {last} bytes, row 0 has {segment}"
    if last == 0:
        return "GSO cannot carry empty datagrams (the last row has length 0)"
    return None


def proposed(sock, batch, count: int, gso) -> Optional[Tuple[int, int]]:
    """The plan of rows ``0..count-1`` if they are all of row 0's length (the last may be shorter).

    Read from row 0 alone: the engine checks the rest against it in the pass
    it makes over the lengths anyway, and raises ValueError, before any
    system call, for a row off the proposal or outside the slot; the caller
    then makes the full :func:`plan`. None when only :func:`plan` can answer
    (a bad ``gso``, a row 0 GSO cannot carry, a refusal on this socket).
    """
    if gso is not None and gso is not True and gso is not False:
        return None
    if gso is False or count == 0 or (gso is None and count < 2):
        return 0, 0
    segment = batch._lengths.item(0)
    largest = MAX_PAYLOAD[sock._af]
    if not 0 < segment <= largest or segment >= sock._gso_refused_from or not supported("gso"):
        return None
    return segment, min(MAX_SEGMENTS, largest // segment)


def plan(sock, batch, count: int, gso, shortest: int, longest: int) -> Tuple[int, int]:
    """``(segment size, rows per super-buffer)`` for rows ``0..count-1``, or ``(0, 0)`` for plain.

    ``shortest``/``longest`` are the min and max of those rows' lengths.
    ``gso=True`` raises ValueError when the rows cannot be carried; ``None``
    uses GSO when the kernel has it and the rows allow it; ``False`` never.
    A socket on which the kernel refused this segment size sends plain.
    """
    if gso is not None and not isinstance(gso, bool):
        raise TypeError(f"gso must be True, False or None, not {type(gso).__name__}")
    if gso is False or count == 0:
        return 0, 0
    lengths = batch._lengths[:count]
    if gso is None and count < 2:
        return 0, 0
    problem = _shape_problem(lengths, sock._af, shortest, longest)
    if problem is not None:
        if gso:
            raise ValueError(f"gso=True: {problem}")
        return 0, 0
    segment = int(lengths[0])
    if segment >= sock._gso_refused_from or not supported("gso"):
        return 0, 0
    return segment, min(MAX_SEGMENTS, MAX_PAYLOAD[sock._af] // segment)


def refused(sock, exc: OSError, segment: int) -> bool:
    """True if ``exc`` is the kernel refusing GSO with ``segment``; the socket remembers.

    EMSGSIZE refuses a size, not GSO: "the datagrams after segmentation
    [must] meet the same MTU rules that apply to datagrams sent without this
    option" (udp(7)), and unlike a plain send a GSO segment is never
    fragmented. So on loopback (MTU 65536) IPv6 segments over 65488 bytes
    are refused, and on a 1500-byte MTU link segments over 1472 (IPv4).
    Smaller segments keep using GSO on that socket.
    """
    if exc.errno == errno.EMSGSIZE:
        sock._gso_refused_from = min(sock._gso_refused_from, segment)
        return True
    if exc.errno in REFUSED_OUTRIGHT:
        sock._gso_refused_from = 0
        return True
    return False
