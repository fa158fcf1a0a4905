"""Reading capture files back as Batches: ``fastnet.read_capture``.

A capture read back looks like a live receive: the same ``fastnet.Batch``
with payload rows, lengths, source addresses and ports, receive timestamps
and truncated flags, so offline analysis runs the same code as a live
receiver. The format is recognised by the file's first bytes, not its name:

* classic pcap (either byte order, µs or ns timestamps) with link type RAW,
  IPV4, IPV6, ETHERNET, LINUX_SLL, LINUX_SLL2, NULL or LOOP; packets that are
  not UDP over IP (or are IP fragments) are skipped and counted;
* the ``.npy`` capture written by fastnet (see fastnet/capture/npy.py).

A file that is cut short or corrupt yields every batch that was intact, then
raises :class:`CaptureError` naming the byte offset where it went wrong.
"""

from __future__ import annotations

import collections
import os
import socket as _stdsocket

import numpy as np

from ..core.checks import positive_int
from ..errors import CaptureError

__all__ = ["CaptureError", "CaptureReader", "read_capture", "detect_format", "format_for_path"]

#: Capture formats by file name suffix (for writing).
SUFFIXES = {".pcap": "pcap", ".npy": "npy"}

_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_FAMILY_OF_VERSION = {4: _stdsocket.AF_INET, 6: _stdsocket.AF_INET6}


def format_for_path(path, format=None) -> str:
    """``"pcap"`` or ``"npy"``, from ``format`` if given, else the file name suffix."""
    if format is not None:
        if format not in SUFFIXES.values():
            raise ValueError(f"unknown capture format {format!r}; choose pcap or npy")
        return format
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    try:
        return SUFFIXES[suffix]
    except KeyError:
        raise ValueError(
            f"unknown capture file format {suffix or '(no suffix)'!r} for "
            f"{os.fspath(path)!r}: name it .pcap or .npy"
        ) from None


def detect_format(head: bytes, path) -> str:
    """The format of a file from its first bytes; CaptureError if unknown."""
    if head[:4] in _PCAP_MAGICS:
        return "pcap"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:4] == _PCAPNG_MAGIC:
        raise CaptureError(f"{path}: pcapng is not supported; convert it with 'editcap -F pcap IN OUT'", 0)
    if not head:
        raise CaptureError(f"{path}: empty file, not a capture", 0)
    raise CaptureError(f"{path}: unknown capture format (not pcap or fastnet .npy)", 0)


def _at_most(value: int, name: str, limit: int) -> int:
    if value > limit:  # the Batches yielded could not be made
        raise ValueError(f"{name} must be at most {limit}, got {value}")
    return value


class CaptureReader:
    """Iterate over a capture file's datagrams as Batches (see :func:`read_capture`).

    After (or during) iteration: ``datagrams`` counts the rows yielded,
    ``skipped`` the packets that were not UDP datagrams (pcap only) and
    ``skip_reasons`` says why, by reason.
    """

    def __init__(self, path, batch_size: int = 1024, *, slot_size: int | None = None):
        from ..core.batch import MAX_CAPACITY, MAX_SLOT_SIZE, MAX_TOTAL_BYTES

        self.batch_size = _at_most(positive_int(batch_size, "batch_size"), "batch_size", MAX_CAPACITY)
        self.slot_size = (
            None
            if slot_size is None
            else _at_most(positive_int(slot_size, "slot_size"), "slot_size", MAX_SLOT_SIZE)
        )
        if self.slot_size is not None and self.batch_size * self.slot_size > MAX_TOTAL_BYTES:
            raise ValueError(
                f"batch_size x slot_size is {self.batch_size * self.slot_size} "
                f"bytes, more than a Batch may hold ({MAX_TOTAL_BYTES})"
            )
        self.path = os.fspath(path)
        self._handle = open(self.path, "rb")
        try:
            self.format = detect_format(self._handle.read(8), self.path)
        except BaseException:
            self._handle.close()
            raise
        self._handle.seek(0)
        self.datagrams = 0
        self.skip_reasons: collections.Counter = collections.Counter()
        self._started = False

    @property
    def skipped(self) -> int:
        """Packets passed over so far because they were not UDP datagrams (``skip_reasons`` says why)."""
        return sum(self.skip_reasons.values())

    def __iter__(self):
        if self._started:
            raise RuntimeError("a CaptureReader can be iterated once; call read_capture again")
        self._started = True
        try:
            if self.format == "pcap":
                from .pcap_reader import iter_pcap

                batches = iter_pcap(
                    self.path, self._handle, self.batch_size, self.slot_size, self.skip_reasons
                )
            else:
                batches = self._npy_batches()
            for batch in batches:
                self.datagrams += batch.count
                yield batch
        finally:
            self.close()

    def _npy_batches(self):
        from .npy import iter_npy

        for records, _ in iter_npy(self.path, self._handle, self.batch_size):
            versions = records["ip_version"]
            cuts = np.flatnonzero(versions[1:] != versions[:-1]) + 1
            bounds = [0, *cuts.tolist(), len(records)]
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
                yield batch_from_records(records[start:stop], self.slot_size)

    def close(self) -> None:
        """Close the file (a ``with`` block does it)."""
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"<fastnet.CaptureReader {self.path!r} format={self.format}>"


def batch_from_records(records, slot_size=None):
    """A new Batch holding ``.npy`` capture records of one IP version."""
    from ..core.batch import Batch

    n = len(records)
    lengths = records["length"].astype(np.int64)
    slot = slot_size or max(1, int(lengths.max()))
    family = _FAMILY_OF_VERSION[int(records["ip_version"][0])]
    batch = Batch(n, slot, family=family)
    width = min(slot, records.dtype["payload"].shape[0])
    batch.data[:, :width] = records["payload"][:, :width]
    batch.lengths[:] = np.minimum(lengths, slot)
    batch.truncated[:] = records["truncated"] | (lengths > slot)
    batch.addresses[:] = records["address"][:, : batch.addresses.shape[1]]
    batch.ports[:] = records["port"]
    batch.flowinfo[:] = records["flowinfo"]
    batch.scope_ids[:] = records["scope_id"]
    batch.timestamps[:] = records["timestamp"]
    batch.count = n
    return batch


def read_capture(path, batch_size: int = 1024, *, slot_size: int | None = None) -> CaptureReader:
    """Open a capture (pcap or fastnet .npy) and iterate over it as ``fastnet.Batch`` objects.

    Each Batch holds up to ``batch_size`` datagrams of one address family
    (a file holding both yields separate batches as the family changes), in
    file order. ``slot_size`` defaults to the longest payload of each batch;
    a smaller one cuts longer payloads and flags them ``truncated``, as a
    live receive does. Every yielded Batch is new, so it may be kept.

    Raises :class:`CaptureError` (a ValueError) at once for a file of
    unknown format, and, after yielding every intact batch, for a file cut
    short or corrupt, naming the byte offset.

    >>> for batch in fastnet.read_capture("run.pcap"):   # doctest: +SKIP
    ...     print(batch.count, batch.address(0), bytes(batch.payload(0)))
    """
    return CaptureReader(path, batch_size, slot_size=slot_size)
