"""Fuzz target: arbitrary bytes as a pcap file, through fastnet.read_capture.

The input's first byte chooses how it becomes a file:

* raw: the rest is the file, as it is (magic, header and all);
* framed: a valid pcap global header (one of the four magics, link type,
  snap length chosen by the input) and then the rest as the records;
* records: the same header, then records whose lengths are made to agree
  with their contents (``caplen`` fixed up), so the input's bytes reach the
  link, IP and UDP parsing instead of stopping at a bad record header.

Whatever the file, read_capture must yield well-formed Batches and then end
or raise CaptureError; anything else (another exception, a crash, a hang) is
a finding.
"""

from __future__ import annotations

import atexit
import struct

import numpy as np
from _fuzzlib import Choices, ScratchFile, fuzz_main

import fastnet
from fastnet.capture.pcap_reader import LINK_TYPES

_MAGICS = (0xA1B2C3D4, 0xA1B23C4D)
_LINKS = sorted(LINK_TYPES) + [0, 147, 0x0400_0001]  # plus unknown ones, FCS bits set
_SNAPLENS = (0, 1, 64, 65535, 262144, 0xFFFFFFFF)

_scratch = ScratchFile(".pcap")
atexit.register(_scratch.remove)


def build_file(data: bytes) -> bytes:
    choose = Choices(data)
    mode = choose.byte() % 3
    if mode == 0:
        return choose.rest()
    order = choose.pick("<>")
    header = struct.pack(
        order + "IHHiIII", choose.pick(_MAGICS), 2, 4, 0, 0, choose.pick(_SNAPLENS), choose.pick(_LINKS)
    )
    if mode == 1:
        return header + choose.rest()
    records = []
    for _ in range(64):
        size = choose.byte()
        body = choose.take(size)
        if not body and size:
            break
        seconds, fraction = choose.uint(4), choose.uint(4)
        origlen = len(body) + choose.byte() % 3
        records.append(struct.pack(order + "IIII", seconds, fraction, len(body), origlen) + body)
    return header + b"".join(records)


def check_batch(batch) -> int:
    n = batch.count
    assert 1 <= n <= batch.capacity, (n, batch.capacity)
    lengths = batch.lengths[:n]
    assert lengths.min() >= 0 and lengths.max() <= batch.slot_size
    assert batch.family in (fastnet.AF_INET, fastnet.AF_INET6)
    for i in range(n):
        assert len(batch.payload(i)) == lengths[i]
        batch.address(i)  # a valid address of the batch's family
    assert batch.truncated[:n].dtype == np.bool_
    return n


def read_all(path, batch_size=1024, slot_size=None) -> int:
    reader = fastnet.read_capture(path, batch_size, slot_size=slot_size)
    total = 0
    try:
        for batch in reader:
            total += check_batch(batch)
            assert batch.count <= batch_size
            if slot_size is not None:
                assert batch.slot_size == slot_size
    except fastnet.CaptureError as exc:
        assert isinstance(exc.offset, int) and exc.offset >= 0, exc.offset
    assert reader.datagrams == total
    assert reader.skipped == sum(reader.skip_reasons.values())
    return total


def test_one_input(data: bytes) -> None:
    path = _scratch.write(build_file(data))
    try:
        read_all(path)
        read_all(path, batch_size=3, slot_size=5)
    except fastnet.CaptureError:
        pass  # the file was refused at open: unknown format, cut header


if __name__ == "__main__":
    fuzz_main(test_one_input)
