"""UDP GSO send and GRO receive for the pure-Python engine.

The same contract and results as the Cython engine (src/_cengine.pyx,
src/_gro.pxi); see fastnet/core/gso.py for when GSO is used and
fastnet/engines/_cengine.pyi for the engine interface.
"""

from __future__ import annotations

import socket as _stdsocket
import struct

import numpy as np

from ... import constants as C
from ...errors import with_sent
from .ancillary import GRO_ANCILLARY_SPACE, receive_fields

__all__ = ["send_gso", "recv_gro", "checked_lengths"]

_SEND_FLAGS = _stdsocket.MSG_DONTWAIT
_UINT16 = struct.Struct("=H")

#: Bytes received per super-datagram: more than the largest UDP payload
#: (65535 - 8), so the kernel never cuts one.
GRO_BUFFER = 65536


def checked_lengths(batch, start, stop, segment=0):
    """The lengths of rows start..stop-1, read once and checked, as the Cython engine does.

    The caller proposed the GSO plan from row 0 (fastnet/core/gso.py
    proposed) and checks all rows only when this refuses them; another
    thread may write the array meanwhile too: only these values are sent (a
    row's slice would silently shorten a length past the row), and with a
    GSO ``segment`` every row but the last must be one segment. ValueError
    otherwise, and for rows out of range.
    """
    if not 0 <= start <= stop <= batch._capacity:
        raise ValueError(f"rows {start}..{stop} out of range for capacity {batch._capacity}")
    lengths = batch._lengths[start:stop].tolist()
    if lengths:
        slot = batch._slot_size
        head = lengths[:-1]
        if (min(lengths) < 0 or max(lengths) > slot) or (
            segment and ((head and not min(head) == max(head) == segment) or not 0 < lengths[-1] <= segment)
        ):
            raise _off_plan(lengths, start, slot, segment)
    return lengths


def _off_plan(lengths, start, slot, segment):
    """The ValueError naming the first of ``lengths`` (rows from ``start``) outside the slot or the plan.

    The Cython engine's words. Looked for only once the one-pass test in
    checked_lengths failed, so rows on the plan pay nothing for it.
    """
    last = len(lengths) - 1
    for i, length in enumerate(lengths):
        row = f"batch.lengths[{start + i}] = {length}"
        if not 0 <= length <= slot:
            return ValueError(f"{row} is outside 0..{slot}")
        if segment and (length == 0 or length > segment or (length != segment and i != last)):
            return ValueError(f"{row} changed from the GSO plan (segment {segment})")
    raise AssertionError("the lengths passed the check they failed")


def send_gso(state, batch, start, stop, address, segment, per_buffer, lengths=None):
    """Send rows start..stop-1 as super-buffers of ``per_buffer`` rows; return rows sent.

    Each super-buffer is one sendmsg whose buffers are the rows themselves,
    with a UDP_SEGMENT control message; the kernel cuts it into datagrams of
    ``segment`` bytes. A refused super-buffer is not sent at all.
    ``lengths``: those of the rows, already read by checked_lengths.
    """
    rows = batch._rows
    if lengths is None:
        lengths = checked_lengths(batch, start, stop, segment)
    ancillary = [(C.SOL_UDP, C.UDP_SEGMENT, _UINT16.pack(segment))]
    target = () if address is None else (address,)
    sendmsg = state.io.sendmsg
    sent = 0
    try:
        for first in range(0, stop - start, per_buffer):
            last = min(first + per_buffer, stop - start)
            buffers = [rows[start + i][: lengths[i]] for i in range(first, last)]
            sendmsg(buffers, ancillary, _SEND_FLAGS, *target)
            sent = last
    except BlockingIOError:
        if sent == 0:
            return 0
    except OSError as exc:
        if sent:
            with_sent(exc, sent)
        raise
    return sent


class GroArea:
    """One received super-datagram, and how much of it is already in rows.

    Kept in the socket's engine state (``state.gro_area``) between calls: what did not fit
    in one batch is carried over to the next.
    """

    __slots__ = (
        "buffer",
        "array",
        "length",
        "segment",
        "offset",
        "packed",
        "address",
        "stamp",
        "cut",
        "pending",
    )

    def __init__(self):
        self.buffer = bytearray(GRO_BUFFER)
        self.array = np.frombuffer(self.buffer, dtype=np.uint8)
        self.pending = False

    def load(self, size, ancdata, msg_flags, address, family):
        stamp, segment = receive_fields(ancdata)
        self.length = size
        self.segment = segment or size
        self.offset = 0
        self.packed = np.frombuffer(_stdsocket.inet_pton(family, address[0]), dtype=np.uint8)
        self.address = address
        self.stamp = stamp
        # MSG_CTRUNC without a segment size: that may be what was cut, so the
        # buffer is one row, flagged, not split by a guess.
        self.cut = bool(msg_flags & _stdsocket.MSG_TRUNC) or bool(
            msg_flags & _stdsocket.MSG_CTRUNC and not segment
        )
        self.pending = True

    def split(self, batch, n):
        """Copy the next datagrams of the held super-datagram into rows n..; return the new n."""
        segment, offset, slot = self.segment, self.offset, batch._slot_size
        remaining = self.length - offset
        if segment and remaining:
            pieces = -(-remaining // segment)
            full = remaining // segment
        else:  # an empty datagram (whatever segment size came with it): one row of length 0
            pieces, full = 1, 0
        k = min(pieces, batch._capacity - n)
        full = min(full, k)
        if full:
            keep = min(segment, slot)
            source = self.array[offset : offset + full * segment].reshape(full, segment)
            batch._data[n : n + full, :keep] = source[:, :keep]
            batch._lengths[n : n + full] = keep
            batch._truncated_u8[n : n + full] = segment > slot
            offset += full * segment
        if k > full:  # the shorter last datagram
            piece = self.length - offset
            keep = min(piece, slot)
            batch._data[n + full, :keep] = self.array[offset : offset + keep]
            batch._lengths[n + full] = keep
            batch._truncated_u8[n + full] = piece > slot
            offset += piece
        end = n + k
        batch._addresses[n:end] = self.packed
        batch._ports[n:end] = self.address[1]
        if batch._family == _stdsocket.AF_INET6:
            batch._flowinfo[n:end] = self.address[2]
            batch._scope_ids[n:end] = self.address[3]
        else:
            batch._flowinfo[n:end] = 0
            batch._scope_ids[n:end] = 0
        batch._timestamps[n:end] = self.stamp
        self.offset = offset
        if offset >= self.length:
            self.pending = False
            if self.cut:  # never expected: the buffer outsizes any UDP payload
                batch._truncated_u8[end - 1] = 1
        return end


def recv_gro(state, batch):
    """Rows carried over first, then super-datagrams split into rows, up to capacity.

    Returns the number of rows (0 if nothing was queued or carried). Once
    UDP_GRO is off (``state.gro`` false) the area is dropped when it holds
    nothing more. The caller holds the socket's GRO lock.
    """
    area = state.gro_area
    if area is None:
        area = state.gro_area = GroArea()
    receive = state.io.recvmsg_into
    buffers = [area.buffer]
    family = batch._family
    capacity = batch._capacity
    n = 0
    while n < capacity:
        if not area.pending:
            try:
                size, ancdata, msg_flags, address = receive(
                    buffers, GRO_ANCILLARY_SPACE, _stdsocket.MSG_DONTWAIT
                )
            except BlockingIOError:
                break
            except OSError as exc:
                if n == 0:
                    raise
                state.keep_error(exc)
                break
            if msg_flags & _stdsocket.MSG_CTRUNC:
                state.control_truncated += 1
            area.load(size, ancdata, msg_flags, address, family)
        n = area.split(batch, n)
    if not state.gro and not area.pending:
        state.gro_area = None
    return n
