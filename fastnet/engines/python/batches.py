"""The pure-Python engine's datagram batches: recv_batch and send_batch.

It is the fallback where the extension is not built and the baseline the
Cython engine is compared with, so it is written to be as fast as plain
Python allows (bound methods hoisted, row views made once by the Batch, an
address cache), not as a straw man.

Contract shared with the Cython engine (fastnet/engines/_cengine.pyi):

* ``state`` is the engine's own per-socket object (``SocketState``,
  fastnet/engines/python/state.py), made by the socket and passed to every
  call; the engine touches no attribute of the socket.
* ``recv_batch(state, batch, ancillary, gro=False)`` takes the datagrams
  already queued, up to ``batch.capacity``, without blocking, and returns how
  many (0 when none). The caller has checked the socket and the batch. With
  ``gro`` (the caller chose the GRO path: ``state.gro_path``) coalesced
  super-datagrams are split into rows (fastnet/engines/python/offload.py).
  An error after some datagrams is kept (``state.keep_error``) for the next call.
* ``send_batch(state, batch, start, stop, address, gso_size=0, gso_segments=0)``
  sends rows ``start..stop-1`` without blocking and returns how many went out
  (0 when the kernel would block). An error on the first row raises
  ``OSError``; an error after some rows raises it with ``exc.sent`` set to the
  rows sent. A ``gso_size`` sends ``gso_segments`` rows per UDP GSO message.
"""

from __future__ import annotations

import socket as _stdsocket

from ...errors import with_sent
from .ancillary import ANCILLARY_SPACE, receive_fields
from .offload import checked_lengths, recv_gro, send_gso

__all__ = ["recv_batch", "send_batch", "FEATURES"]

FEATURES = {
    "recvmmsg": False,
    "sendmmsg": False,
    "gso": True,
    "gro": True,
}

# MSG_TRUNC makes a UDP receive return the datagram's real length, which is
# how truncation is detected (udp(7): "MSG_TRUNC ... return the real length
# of the packet or datagram, even when it was longer than the passed buffer").
_RECV_FLAGS = _stdsocket.MSG_DONTWAIT | _stdsocket.MSG_TRUNC
_SEND_FLAGS = _stdsocket.MSG_DONTWAIT


def _address_bytes(family, address, cache):
    packed = cache.get(address[0])
    if packed is None:
        packed = _stdsocket.inet_pton(family, address[0])
        if len(cache) > 256:
            cache.clear()
        cache[address[0]] = packed
    return packed


def recv_batch(state, batch, ancillary, gro=False):
    if gro:  # the caller chose the GRO path, holding its GRO lock
        return recv_gro(state, batch)
    if ancillary:
        return _recv_with_ancillary(state, batch)
    rows = batch._rows
    slot = batch._slot_size
    lengths = batch._lengths
    addresses = batch._addresses
    ports = batch._ports
    flowinfo = batch._flowinfo
    scope_ids = batch._scope_ids
    truncated = batch._truncated_u8
    timestamps = batch._timestamps
    family = batch._family
    is_v6 = family == _stdsocket.AF_INET6
    cache: dict[str, bytes] = {}  # host -> inet_pton of it
    receive = state.io.recvfrom_into
    n = 0
    capacity = batch._capacity
    while n < capacity:
        try:
            size, address = receive(rows[n], slot, _RECV_FLAGS)
        except BlockingIOError:
            break
        except OSError as exc:
            if n == 0:
                raise
            # Like recvmmsg, keep what arrived and report the error next call.
            state.keep_error(exc)
            break
        if size > slot:
            lengths[n] = slot
            truncated[n] = 1
        else:
            lengths[n] = size
            truncated[n] = 0
        addresses[n] = memoryview(_address_bytes(family, address, cache))
        ports[n] = address[1]
        if is_v6:
            flowinfo[n] = address[2]
            scope_ids[n] = address[3]
        timestamps[n] = 0
        n += 1
    return n


def _recv_with_ancillary(state, batch):
    rows = batch._rows
    slot = batch._slot_size
    family = batch._family
    is_v6 = family == _stdsocket.AF_INET6
    cache: dict[str, bytes] = {}  # host -> inet_pton of it
    receive = state.io.recvmsg_into
    n = 0
    while n < batch._capacity:
        try:
            size, ancdata, msg_flags, address = receive([rows[n]], ANCILLARY_SPACE, _RECV_FLAGS)
        except BlockingIOError:
            break
        except OSError as exc:
            if n == 0:
                raise
            state.keep_error(exc)
            break
        if msg_flags & _stdsocket.MSG_CTRUNC:  # the timestamp, first, is never what is cut
            state.control_truncated += 1
        stamp, _ = receive_fields(ancdata)
        batch._lengths[n] = min(size, slot)
        batch._truncated_u8[n] = size > slot or bool(msg_flags & _stdsocket.MSG_TRUNC)
        batch._addresses[n] = memoryview(_address_bytes(family, address, cache))
        batch._ports[n] = address[1]
        if is_v6:
            batch._flowinfo[n] = address[2]
            batch._scope_ids[n] = address[3]
        batch._timestamps[n] = stamp
        n += 1
    return n


def send_batch(state, batch, start, stop, address, gso_size=0, gso_segments=0):
    lengths = checked_lengths(batch, start, stop, gso_size)
    if gso_size:
        return send_gso(state, batch, start, stop, address, gso_size, gso_segments, lengths)
    rows = batch._rows
    sent = 0
    try:
        if address is None:
            send = state.io.send
            for i, size in enumerate(lengths, start):
                send(rows[i][:size], _SEND_FLAGS)
                sent += 1
        else:
            sendto = state.io.sendto
            for i, size in enumerate(lengths, start):
                sendto(rows[i][:size], _SEND_FLAGS, address)
                sent += 1
    except BlockingIOError:
        if sent == 0:
            return 0
    except OSError as exc:
        if sent:
            with_sent(exc, sent)
        raise
    return sent
