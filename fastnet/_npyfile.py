"""The ``.npy`` capture: one structured numpy array, one record per datagram.

``numpy.load("run.npy")`` (or ``mmap_mode="r"``) opens it directly; fields:

=============  ===========  ==================================================
field          dtype        meaning
=============  ===========  ==================================================
``timestamp``  ``<i8``      receive time, ns since the epoch
``length``     ``<u4``      payload bytes stored in ``payload``
``truncated``  ``?``        the datagram was longer than what is stored
``ip_version`` ``u1``       4 or 6: how many bytes of ``address`` are used
``port``       ``<u2``      source port
``flowinfo``   ``<u4``      IPv6 flow information (0 for IPv4)
``scope_id``   ``<u4``      IPv6 scope id (0 for IPv4)
``address``    ``u1[16]``   source address, network order (IPv4 in the first 4)
``payload``    ``u1[W]``    the datagram; bytes past ``length`` are zero
=============  ===========  ==================================================

``W`` is fixed per file (the receiver's slot size unless chosen). The file is
written in append order: records first, then the header's record count is
rewritten in place (``os.pwrite``), so the header never claims a record that
is not on disk. If the writer is killed, ``numpy.load`` sees every record up
to the last header update, and ``fastnet.read_capture`` recovers every
complete record after it too, then names the offset of a partial one.
"""

from __future__ import annotations

import ast
import os

import numpy as np

from ._capture import CaptureError

__all__ = ["record_dtype", "NpyEncoder", "iter_npy", "MAGIC"]

MAGIC = b"\x93NUMPY"
_VERSION = b"\x01\x00"        # format 1.0: a 2-byte header length
_ALIGN = 64                   # numpy pads the header so the data starts 64-aligned
_FIELDS = ("timestamp", "length", "truncated", "ip_version", "port", "flowinfo",
           "scope_id", "address", "payload")


def record_dtype(width: int) -> np.dtype:
    """The record layout for payloads of up to ``width`` bytes."""
    return np.dtype([
        ("timestamp", "<i8"), ("length", "<u4"), ("truncated", "?"), ("ip_version", "u1"),
        ("port", "<u2"), ("flowinfo", "<u4"), ("scope_id", "<u4"),
        ("address", "u1", (16,)), ("payload", "u1", (width,)),
    ])


def _header(dtype: np.dtype, count: int, size: int | None = None) -> bytes:
    """A format-1.0 header for ``count`` records, padded to ``size`` bytes if given."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (
        np.lib.format.dtype_to_descr(dtype), count)
    if size is None:
        # Room for the largest count, so later rewrites never move the data.
        reserve = len(str(2**63)) - len(str(count))
        size = -(-(10 + len(text) + reserve + 1) // _ALIGN) * _ALIGN
    body = text.ljust(size - 10 - 1) + "\n"
    if len(body) + 10 != size or len(body) > 0xFFFF:
        raise ValueError("npy header does not fit")
    return MAGIC + _VERSION + len(body).to_bytes(2, "little") + body.encode("latin1")


class NpyEncoder:
    """Keeps the header of a ``.npy`` capture in step with the records written."""

    def __init__(self, width: int):
        self.width = width
        self.dtype = record_dtype(width)
        self.count = 0
        self._header_size = len(_header(self.dtype, 0))

    def file_header(self) -> bytes:
        return _header(self.dtype, self.count, self._header_size)

    def update_header(self, fd: int) -> None:
        """Rewrite the record count in place; call after the records are written."""
        os.pwrite(fd, self.file_header(), 0)


# -- reading -----------------------------------------------------------------

def _parse_header(handle, path):
    start = handle.read(10)
    if len(start) < 10 or not start.startswith(MAGIC):
        raise CaptureError(f"{path}: not an .npy file", 0)
    major = start[6]
    if major == 1:
        size, offset = int.from_bytes(start[8:10], "little"), 10
    elif major in (2, 3):
        start += handle.read(2)
        size, offset = int.from_bytes(start[8:12], "little"), 12
    else:
        raise CaptureError(f"{path}: unsupported .npy version {major}", 6)
    text = handle.read(size)
    if len(text) < size:
        raise CaptureError(f"{path}: .npy header cut short", offset + len(text))
    try:
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
        dtype = np.lib.format.descr_to_dtype(header["descr"])
        count = header["shape"][0]
    except (ValueError, SyntaxError, KeyError, TypeError, IndexError) as exc:
        raise CaptureError(f"{path}: unreadable .npy header ({exc})", offset) from None
    names = dtype.names or ()
    if names[:len(_FIELDS)] != _FIELDS or len(header["shape"]) != 1:
        raise CaptureError(f"{path}: an .npy file, but not a fastnet capture "
                           f"(needs a 1-d array with fields {', '.join(_FIELDS)})", offset)
    width = dtype["payload"].shape[0]
    if dtype != record_dtype(width):
        raise CaptureError(f"{path}: fastnet capture fields with unexpected types", offset)
    return dtype, width, count, offset + size


def iter_npy(path, handle, chunk: int):
    """Yield ``(records, byte_offset)`` arrays of up to ``chunk`` records.

    The array is reused: convert it before asking for the next one. Raises
    CaptureError, naming the byte offset, after yielding everything intact.
    """
    dtype, width, promised, data_start = _parse_header(handle, path)
    itemsize = dtype.itemsize
    size = os.fstat(handle.fileno()).st_size
    complete = max(0, size - data_start) // itemsize
    buffer = np.empty(chunk, dtype=dtype)
    done = 0
    while done < complete:
        n = min(chunk, complete - done)
        got = handle.readinto(memoryview(buffer[:n]).cast("B"))
        if got != n * itemsize:  # the file shrank while being read
            size = data_start + done * itemsize + got
            complete = done + got // itemsize
            n = got // itemsize
            if not n:
                break
        records = buffer[:n]
        bad = np.flatnonzero((records["length"] > width)
                             | ((records["ip_version"] != 4) & (records["ip_version"] != 6)))
        if bad.size:
            first = int(bad[0])
            if first:
                yield records[:first], data_start + done * itemsize
            offset = data_start + (done + first) * itemsize
            raise CaptureError(f"{path}: corrupt record at byte {offset} (length or "
                               f"ip_version out of range)", offset)
        yield records, data_start + done * itemsize
        done += n
    end = data_start + complete * itemsize
    if complete < promised:
        raise CaptureError(f"{path}: file ends at byte {end} after {complete} complete records; "
                           f"its header promises {promised}", end)
    if size > end:
        raise CaptureError(f"{path}: partial record at byte {end} ({size - end} of {itemsize} "
                           f"bytes; the writer stopped mid-write)", end)
