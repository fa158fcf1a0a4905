"""Fuzz target: arbitrary bytes as a fastnet .npy capture, through fastnet.read_capture.

The input's first byte chooses how it becomes a file:

* raw: the rest is the file as it is;
* header text: the .npy magic and version, then the input as the header's
  text (the dictionary numpy's format parses), then records;
* header fields: a header dictionary whose ``descr`` and ``shape`` are
  chosen from near misses of a capture's (a field of the wrong shape or
  type, a count that is not a count, an enormous payload width, deep
  nesting), then records;
* records: a valid capture header for a payload width and record count
  chosen by the input, then the rest as the records, so the input's bytes
  reach the record checks (lengths, IP versions, a partial last record).

read_capture must yield well-formed Batches and then end or raise
CaptureError; anything else is a finding.
"""

from __future__ import annotations

import atexit

from _fuzzlib import Choices, ScratchFile, fuzz_main
from fuzz_pcap import read_all

import fastnet
from fastnet.capture.npy import MAGIC, NpyEncoder, record_dtype

_scratch = ScratchFile(".npy")
atexit.register(_scratch.remove)
_WIDTHS = (1, 2, 3, 8, 64)


def _descr(width=8, payload=None, drop=None, extra=()):
    fields = [list(field) for field in record_dtype(width).descr]
    if payload is not None:
        fields[-1] = ["payload", *payload]
    if drop is not None:
        del fields[drop]
    return [tuple(field) for field in fields] + list(extra)


_DESCRS = (
    _descr(),
    _descr(1),
    _descr(payload=("|u1",)),
    _descr(payload=("|u1", (2, 4))),
    _descr(payload=("|i1", (8,))),
    _descr(payload=("|O", (8,))),
    _descr(payload=("<f8", (8,))),
    _descr(payload=("|u1", (0,))),
    _descr(payload=("|u1", (2**26 + 1,))),
    _descr(payload=("|u1", (2**30,))),
    _descr(drop=0),
    _descr(extra=[("more", "|u1")]),
    "|u1",
    "|O",
    "<i8",
    [],
    [("a",)],
    [("timestamp", "|O")],
    7,
    None,
)
_SHAPES = (
    "(%d,)",
    "()",
    "(%d, 2)",
    "%d",
    "('x',)",
    "(1.5,)",
    "(-%d,)",
    "(True,)",
    "(None,)",
    "(2**70,)",
    "(%d" + "0" * 4400 + ",)",
    "[%d]",
    "{0: %d}",
)
_NESTING = ("(", "[", "-", "not ", "~")


def build_file(data: bytes) -> bytes:
    choose = Choices(data)
    mode = choose.byte() % 5
    if mode == 0:
        return choose.rest()
    if mode == 3:
        shape = choose.pick(_SHAPES)
        text = "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (
            choose.pick(_DESCRS),
            choose.pick(("False", "True", "0")),
            shape % (choose.byte() % 8,) if "%d" in shape else shape,
        )
        return _npy_header(text.encode("latin1")) + choose.rest()
    if mode == 4:
        depth = choose.uint(2)
        text = choose.pick(_NESTING) * depth + "1"
        return _npy_header(text.encode("latin1")[:60000]) + choose.rest()
    if mode == 1:
        version = choose.pick((1, 2, 3, 4))
        text = choose.take(choose.uint(2) % 512)
        size_field = len(text).to_bytes(2 if version == 1 else 4, "little")
        if choose.flag():  # a header length that lies
            size_field = choose.take(len(size_field)).ljust(len(size_field), b"\0")
        return MAGIC + bytes([version, 0]) + size_field + text + choose.rest()
    encoder = NpyEncoder(choose.pick(_WIDTHS))
    encoder.count = choose.byte() % 8
    return encoder.file_header() + choose.rest()


def _npy_header(text: bytes) -> bytes:
    return MAGIC + b"\x01\x00" + len(text).to_bytes(2, "little") + text


def test_one_input(data: bytes) -> None:
    path = _scratch.write(build_file(data))
    try:
        read_all(path)
        read_all(path, batch_size=2, slot_size=3)
    except fastnet.CaptureError:
        pass  # refused at open: not a capture at all


if __name__ == "__main__":
    fuzz_main(test_one_input)
