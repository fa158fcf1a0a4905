"""Reading recvmsg's ancillary data, for the pure-Python engine.

``socket.recvmsg_into`` hands the control messages over as a list of
``(level, type, data)``; this is the one place that turns them into what a
Batch row records. A pure function of that list, so it can be tested and
fuzzed without a socket. The Cython engine reads the same messages from the
raw cmsghdr chain (src/_cengine.pyx ``_timestamp_of``, src/_gro.pxi ``parse``),
with the same rules: the last message of a kind wins, and a GRO segment size
that is not positive counts as none.
"""

from __future__ import annotations

import socket as _stdsocket
import struct

from ... import constants as C

__all__ = ["receive_fields", "ANCILLARY_SPACE", "GRO_ANCILLARY_SPACE"]

#: Room for a timestamp and two 32-bit values (drop counter, GRO segment size).
ANCILLARY_SPACE = _stdsocket.CMSG_SPACE(16) + _stdsocket.CMSG_SPACE(4) * 2
#: Room per GRO receive: every SOL_SOCKET message and UDP_GRO, which the
#: kernel puts before the IP-level ones, with room to spare for those (the
#: Cython engine's GRO_CONTROL_SPACE, src/_gro.pxi, says why). The segment
#: size is never the message cut.
GRO_ANCILLARY_SPACE = 1024

_SOL_SOCKET = _stdsocket.SOL_SOCKET
_INT = struct.Struct("=i")
_TIMESPEC = struct.Struct("@qq")


def receive_fields(ancdata):
    """``(timestamp_ns, gro_segment)`` from ``recvmsg``'s ancillary data; 0 for absent.

    SCM_TIMESTAMPNS holds a timespec, SCM_TIMESTAMP a timeval (both two
    64-bit fields here); udp(7) on UDP_GRO: the cmsg "holds the segment
    size" (an int). Messages shorter than their kind needs are ignored. The
    timestamp always fits the Batch's int64 column.
    """
    stamp = segment = 0
    for level, kind, payload in ancdata:
        if level == C.SOL_UDP and kind == C.UDP_GRO and len(payload) >= 4:
            segment = _INT.unpack_from(payload)[0]
        elif level == _SOL_SOCKET and len(payload) >= 16:
            if kind == C.SCM_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
                stamp = seconds * 1_000_000_000 + nanoseconds
            elif kind == C.SCM_TIMESTAMP:
                seconds, microseconds = _TIMESPEC.unpack_from(payload)
                stamp = seconds * 1_000_000_000 + microseconds * 1000
    if not -(2**63) <= stamp < 2**63:  # never from a kernel; wrap as 64-bit arithmetic does
        stamp = (stamp + 2**63) % 2**64 - 2**63
    return stamp, (segment if segment > 0 else 0)
