"""Fuzz target: the Cython engine's GRO control parsing and split (src/_gro.pxi).

The input builds one received message as recvmmsg leaves it in the engine's
GRO area: the raw control bytes (a cmsghdr chain), msg_flags, the payload,
the area slot it lands in (0, or 31, the last, whose control room ends the
allocation) and where a carry-over would resume; then a Batch. It runs the
engine's own read_control and split on them (``_GroArea._load_for_test``,
``_split_for_test``), batch after batch until the message is used up.

Two kinds of control bytes:

* kernel-shaped: control messages laid out as put_cmsg(9) writes them,
  cut where the room ends as it cuts them (the message that does not fit
  keeps a header whose cmsg_len is the room left, MSG_CTRUNC is set, later
  ones are absent). The rows must then be exactly what the pure-Python
  engine makes of the same message, as recvmsg would hand it the control
  messages (fastnet/engines/python/offload.py GroArea), and what the independent split
  below says.
* raw: any bytes and any control length, any offset. Nothing to compare
  with; every row must lie inside the Batch and the split must finish.
  Under AddressSanitizer (tools/sanitize.sh) this is where a read past a
  cmsg's length or a negative copy size would be reported.

Without the Cython engine there is nothing to fuzz: every input passes.
"""

from __future__ import annotations

import socket as stdsocket
import sys

from _fuzzlib import Choices, fuzz_main

import fastnet
from fastnet import constants as C
from fastnet.engines.python.ancillary import receive_fields
from fastnet.engines.python.offload import GroArea as PyGroArea

try:
    from fastnet.engines._cengine import _GroArea
except ImportError:  # the pure-Python build
    _GroArea = None

SO_TIMESTAMPING = 37
LEVELS = (stdsocket.SOL_SOCKET, C.SOL_UDP, stdsocket.IPPROTO_IP, 0)
KINDS = (C.SCM_TIMESTAMPNS, C.SCM_TIMESTAMP, C.UDP_GRO, SO_TIMESTAMPING, C.SO_RXQ_OVFL, 8)
SIZES = (0, 3, 4, 8, 12, 16, 20, 48)
CAPACITIES = (1, 2, 3, 16, 64)
SLOTS = (1, 5, 64, 700, 1500, 65536)
GRO_BUFFER = 65536
CONTROL_ROOM = 1024  # GRO_CONTROL_SPACE in src/_gro.pxi
HEADER = 16  # sizeof(struct cmsghdr) on 64-bit Linux
MAX_CALLS = 4096


def _align(n: int) -> int:
    return (n + 7) & ~7


def _header(length: int, level: int, kind: int) -> bytes:
    return (
        length.to_bytes(8, sys.byteorder)
        + level.to_bytes(4, sys.byteorder, signed=True)
        + kind.to_bytes(4, sys.byteorder, signed=True)
    )


def kernel_control(choose: Choices):
    """(control bytes, ancdata as recvmsg gives it, MSG_CTRUNC or 0), cut as put_cmsg cuts."""
    items = []
    for _ in range(choose.byte() % 6):
        level, kind, size = choose.pick(LEVELS), choose.pick(KINDS), choose.pick(SIZES)
        payload = choose.take(size).ljust(size, b"\0")
        if kind == C.UDP_GRO and size >= 4 and choose.flag():  # a plausible segment size
            payload = (choose.uint(2) - 100).to_bytes(4, sys.byteorder, signed=True) + payload[4:]
        items.append((level, kind, payload))
    room = _align(choose.uint(2) % (CONTROL_ROOM + 1)) if choose.flag() else CONTROL_ROOM
    room = min(room, CONTROL_ROOM)
    control, ancdata, flags = bytearray(), [], 0
    for level, kind, payload in items:
        left = room - len(control)
        if left < HEADER:  # no room for even a header: dropped
            flags = stdsocket.MSG_CTRUNC
            break
        length = HEADER + len(payload)
        if length > left:  # cut: the header says what fits
            flags = stdsocket.MSG_CTRUNC
            control += _header(left, level, kind) + payload[: left - HEADER]
            ancdata.append((level, kind, payload[: left - HEADER]))
            break
        control += _header(length, level, kind) + payload
        control += bytes(min(_align(length), left) - length)
        ancdata.append((level, kind, payload))
    return bytes(control), ancdata, flags


def expected_rows(payload: bytes, segment: int, cut: bool, slot: int):
    piece = segment or len(payload)
    pieces = [payload[i : i + piece] for i in range(0, len(payload), piece)] if payload else [b""]
    rows = [(p[:slot], len(p) > slot) for p in pieces]
    if cut:
        rows[-1] = (rows[-1][0], True)
    return rows


def split_all(split, batch, more):
    """Rows of split(batch) calls while more() (bounded): (per-call counts, rows, stamps)."""
    counts, rows, stamps = [], [], set()
    for _ in range(MAX_CALLS + 1):
        if not more():
            break
        n = split(batch)
        assert 0 <= n <= batch.capacity
        assert ((0 <= batch.lengths[:n]) & (batch.lengths[:n] <= batch.slot_size)).all()
        batch.count = n
        counts.append(n)
        rows += [(bytes(batch.payload(i)), bool(batch.truncated[i])) for i in range(n)]
        stamps.update(batch.timestamps[:n].tolist())
    assert not more(), "the split did not finish"
    return counts, rows, stamps


def test_one_input(data: bytes) -> None:
    if _GroArea is None:
        return
    choose = Choices(data)
    raw = choose.flag()
    slot_index = choose.pick((0, 31))
    capacity, slot = choose.pick(CAPACITIES), choose.pick(SLOTS)
    size = choose.uint(3) % (GRO_BUFFER + 1)
    trunc = stdsocket.MSG_TRUNC if choose.byte() % 8 == 0 else 0
    if raw:
        controllen = choose.uint(2) % (CONTROL_ROOM + 1)
        control = choose.take(controllen)
        flags = trunc | (stdsocket.MSG_CTRUNC if choose.flag() else 0)
        offset = choose.pick((0, 0, 1, -1, size, size + 1, 2**40, -(2**40)))
    else:
        control, ancdata, flags = kernel_control(choose)
        flags |= trunc
        offset = 0
    fill = choose.rest()[:64] or b"\x5a"
    payload = (fill * (size // len(fill) + 1))[:size]

    area = _GroArea()
    segment, stamp, cut = area._load_for_test(slot_index, payload, control, flags, offset)
    assert segment >= 0
    batch = fastnet.Batch(capacity, slot)
    # A tiny segment with a small batch: bound the calls; the split is the same.
    if segment and size and -(-size // segment) > MAX_CALLS * capacity:
        batch = fastnet.Batch(1024, slot)
    counts, rows, stamps = split_all(area._split_for_test, batch, area._pending_for_test)
    assert stamps <= {stamp}
    if raw:
        assert sum(len(p) for p, _ in rows) <= size
        return

    # Kernel-shaped: the pure-Python engine reads the same message from what
    # recvmsg hands it, and must make the same rows, call by call.
    assert (stamp, segment) == receive_fields(ancdata), (ancdata, flags)
    py = PyGroArea()
    py.array[:size] = memoryview(payload)
    py.load(size, ancdata, flags, ("0.0.0.0", 0), stdsocket.AF_INET)
    assert py.cut == cut, (ancdata, flags)
    assert split_all(lambda b: py.split(b, 0), batch, lambda: py.pending) == (counts, rows, stamps)
    assert rows == expected_rows(payload, segment, cut, slot)


if __name__ == "__main__":
    fuzz_main(test_one_input)
