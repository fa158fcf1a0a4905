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
import warnings

import numpy as np

from ..errors import CaptureError

__all__ = ["record_dtype", "NpyEncoder", "iter_npy", "MAGIC"]

MAGIC = b"\x93NUMPY"
_VERSION = b"\x01\x00"  # format 1.0: a 2-byte header length
_ALIGN = 64  # numpy pads the header so the data starts 64-aligned
_FIELDS = (
    "timestamp",
    "length",
    "truncated",
    "ip_version",
    "port",
    "flowinfo",
    "scope_id",
    "address",
    "payload",
)
#: Longest header text read, as numpy.load's default max_header_size: the
#: text is parsed with ast.literal_eval, whose time and memory grow with it.
MAX_HEADER = 10000
#: Widest payload accepted: a Batch's largest slot (wider files were not
#: written by fastnet, and one record would not fit a Batch row).
MAX_WIDTH = 1 << 26
#: Bytes of records read per call, whatever the record size.
READ_BYTES = 1 << 26


def record_dtype(width: int) -> np.dtype:
    """The record layout for payloads of up to ``width`` bytes."""
    return np.dtype(
        [
            ("timestamp", "<i8"),
            ("length", "<u4"),
            ("truncated", "?"),
            ("ip_version", "u1"),
            ("port", "<u2"),
            ("flowinfo", "<u4"),
            ("scope_id", "<u4"),
            ("address", "u1", (16,)),
            ("payload", "u1", (width,)),
        ]
    )


def _header(dtype: np.dtype, count: int, size: int | None = None) -> bytes:
    """A format-1.0 header for ``count`` records, padded to ``size`` bytes if given."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (
        np.lib.format.dtype_to_descr(dtype),
        count,
    )
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
    if size > MAX_HEADER:
        raise CaptureError(
            f"{path}: .npy header of {size} bytes, more than the {MAX_HEADER} read (numpy.load's limit too)",
            8,
        )
    text = handle.read(size)
    if len(text) < size:
        raise CaptureError(f"{path}: .npy header cut short", offset + len(text))
    try:
        with warnings.catch_warnings():
            # Text Python only warns about ("1if") is no header of fastnet's;
            # nor is a descr numpy only warns about (and will refuse).
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("error", DeprecationWarning)
            header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin1"))
            dtype = np.lib.format.descr_to_dtype(header["descr"])
        shape = header["shape"]
    # A deeply nested text exhausts the parser (MemoryError, RecursionError).
    except (
        ValueError,
        SyntaxError,
        KeyError,
        TypeError,
        IndexError,
        MemoryError,
        RecursionError,
        DeprecationWarning,
    ) as exc:
        raise CaptureError(
            f"{path}: unreadable .npy header ({type(exc).__name__}: {str(exc)[:200]})", offset
        ) from None
    names = dtype.names or ()
    if (
        names[: len(_FIELDS)] != _FIELDS
        or not isinstance(shape, tuple)
        or len(shape) != 1
        or type(shape[0]) is not int
        or shape[0] < 0
    ):
        raise CaptureError(
            f"{path}: an .npy file, but not a fastnet capture "
            f"(needs a 1-d array with fields {', '.join(_FIELDS)})",
            offset,
        )
    payload_shape = dtype["payload"].shape
    width = payload_shape[0] if len(payload_shape) == 1 else 0
    if not 0 < width <= MAX_WIDTH or dtype != record_dtype(width):
        raise CaptureError(
            f"{path}: fastnet capture fields with unexpected types or sizes "
            f"(payload {dtype['payload'].str}{payload_shape})",
            offset,
        )
    return dtype, width, shape[0], offset + size


def iter_npy(path, handle, chunk: int):
    """Yield ``(records, byte_offset)`` arrays of up to ``chunk`` records.

    The array is reused: convert it before asking for the next one. Raises
    CaptureError, naming the byte offset, after yielding everything intact.
    """
    dtype, width, promised, data_start = _parse_header(handle, path)
    itemsize = dtype.itemsize
    size = os.fstat(handle.fileno()).st_size
    complete = max(0, size - data_start) // itemsize
    chunk = max(1, min(chunk, READ_BYTES // itemsize, complete))
    buffer = np.empty(chunk, dtype=dtype)
    done = 0
    while done < complete:
        n = min(chunk, complete - done)
        got = handle.readinto(buffer[:n].data.cast("B"))
        if got != n * itemsize:  # the file shrank while being read
            size = data_start + done * itemsize + got
            complete = done + got // itemsize
            n = got // itemsize
            if not n:
                break
        records = buffer[:n]
        bad = np.flatnonzero(
            (records["length"] > width) | ((records["ip_version"] != 4) & (records["ip_version"] != 6))
        )
        if bad.size:
            first = int(bad[0])
            if first:
                yield records[:first], data_start + done * itemsize
            offset = data_start + (done + first) * itemsize
            raise CaptureError(
                f"{path}: corrupt record at byte {offset} (length or ip_version out of range)", offset
            )
        yield records, data_start + done * itemsize
        done += n
    end = data_start + complete * itemsize
    if complete < promised:
        raise CaptureError(
            f"{path}: file ends at byte {end} after {complete} complete records; "
            f"its header promises {promised}",
            end,
        )
    if size > end:
        raise CaptureError(
            f"{path}: partial record at byte {end} ({size - end} of {itemsize} "
            f"bytes; the writer stopped mid-write)",
            end,
        )
