"""Fuzz target: the pure-Python engine's ancillary-data handling and GRO split.

The kernel's control messages reach the pure-Python engine as recvmsg's
``[(level, type, data), ...]``. The input builds such a list (timestamps,
UDP_GRO segment sizes, unknown kinds, short or long data, in any number
and order), a received super-datagram (its size, its MSG_TRUNC flag, its
source), and a Batch; then runs what ``recv_batch`` runs on them:
``receive_fields`` (fastnet/engines/python/ancillary.py) and GroArea's load and split
(fastnet/engines/python/offload.py), batch after batch until the super-datagram is used
up.

The rows must be exactly the independent split below: the buffer cut into
pieces of the segment size (the whole buffer when there is none), each cut
to the slot and flagged truncated if longer, all with the source address,
port and the timestamp.
"""

from __future__ import annotations

import socket as stdsocket
import struct
import sys

import numpy as np
from _fuzzlib import Choices, fuzz_main

import fastnet
from fastnet import constants as C
from fastnet.engines.python.ancillary import receive_fields
from fastnet.engines.python.offload import GRO_BUFFER, GroArea

LEVELS = (stdsocket.SOL_SOCKET, C.SOL_UDP, stdsocket.IPPROTO_IP, 0, -1, 2**31 - 1)
KINDS = (C.SCM_TIMESTAMPNS, C.SCM_TIMESTAMP, C.UDP_GRO, C.SO_RXQ_OVFL, 0, 12345)
CAPACITIES = (1, 2, 3, 16, 64, 1024)
SLOTS = (1, 2, 5, 64, 1500, 65536)
SOURCES = {stdsocket.AF_INET: ("127.0.0.1", 40000), stdsocket.AF_INET6: ("::1", 40000, 0x12345, 7)}
#: Splits allowed per input (keeps one input short whatever its segment size).
MAX_CALLS = 4096


def ancdata_from(choose: Choices):
    items = []
    for _ in range(choose.byte() % 6):
        level, kind = choose.pick(LEVELS), choose.pick(KINDS)
        size = choose.pick((0, 3, 4, 8, 15, 16, 24))
        payload = choose.take(size).ljust(size, b"\0")
        if kind == C.UDP_GRO and choose.flag():  # a plausible segment size, often
            payload = struct.pack("=i", choose.uint(2) - 1000) + payload[4:]
        items.append((level, kind, payload))
    return items


def expected_fields(ancdata):
    """(stamp, segment) by the rules the engines follow, written out separately."""
    stamp = segment = 0
    for level, kind, payload in ancdata:
        if level == C.SOL_UDP and kind == C.UDP_GRO and len(payload) >= 4:
            segment = int.from_bytes(payload[:4], sys.byteorder, signed=True)
        elif level == stdsocket.SOL_SOCKET and len(payload) >= 16:
            first = int.from_bytes(payload[:8], sys.byteorder, signed=True)
            second = int.from_bytes(payload[8:16], sys.byteorder, signed=True)
            if kind == C.SCM_TIMESTAMPNS:
                stamp = first * 10**9 + second
            elif kind == C.SCM_TIMESTAMP:
                stamp = first * 10**9 + second * 1000
    stamp = (stamp + 2**63) % 2**64 - 2**63
    return stamp, max(segment, 0)


def test_one_input(data: bytes) -> None:
    choose = Choices(data)
    family = choose.pick((stdsocket.AF_INET, stdsocket.AF_INET6))
    ancdata = ancdata_from(choose)
    size = choose.uint(3) % (GRO_BUFFER + 1)
    cut = choose.flag()
    capacity, slot = choose.pick(CAPACITIES), choose.pick(SLOTS)
    stamp, segment = receive_fields(ancdata)
    assert (stamp, segment) == expected_fields(ancdata), ancdata
    piece = segment or size
    if size and piece and -(-size // piece) > MAX_CALLS * capacity:
        capacity = 1024  # keep the number of calls bounded; the split is the same

    area = GroArea()
    fill = np.frombuffer(choose.rest()[:64] or b"\x5a", dtype=np.uint8)
    area.array[:size] = np.resize(fill, size)
    address = SOURCES[family]
    area.load(size, ancdata, stdsocket.MSG_TRUNC if cut else 0, address, family)

    batch = fastnet.Batch(capacity, slot, family=family)
    rows = []
    for _ in range(MAX_CALLS + 1):
        if not area.pending:
            break
        n = area.split(batch, 0)
        assert 1 <= n <= capacity
        batch.count = n
        for i in range(n):
            assert batch.address(i) == address
            rows.append((bytes(batch.payload(i)), bool(batch.truncated[i])))
        assert (batch.timestamps[:n] == stamp).all()
    assert not area.pending, "the split did not finish"

    source = area.buffer[:size]
    pieces = [source[i : i + piece] for i in range(0, size, piece)] if size else [b""]
    want = [(bytes(p[:slot]), len(p) > slot) for p in pieces]
    if cut:
        want[-1] = (want[-1][0], True)
    assert rows == want, (size, segment, slot, capacity, len(rows), len(want))


if __name__ == "__main__":
    fuzz_main(test_one_input)
