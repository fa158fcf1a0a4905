"""Recording batches to a capture file, off the receiving thread.

A Recorder is a callable ``recorder(batch)``: it copies the batch into one of
a few preallocated staging buffers and returns (a memcpy of the filled rows,
up to the longest payload, plus the per-row fields). A writer thread of its
own turns each staged batch into file records (headers built with numpy for
the whole batch) and writes them with one system call. When every buffer is
still waiting for the disk, the batch is not copied: its datagrams are
counted in ``stats.capture_dropped``, so the receiver never waits for the
disk and nothing is lost silently.

Files are created with mode 0o664 minus the process umask (so 0o644 under
the usual umask 022) and never world-writable, whatever the umask.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import socket as _stdsocket
import stat
import threading
import time

import numpy as np

from .npy import NpyEncoder
from .pcap import PcapEncoder, file_header, header_size
from .reader import format_for_path

__all__ = ["Recorder", "RecorderStats", "open_recorder"]

_FILE_MODE = 0o664  # then the umask applies; never o+w (see _open_for_writing)
_NPY_HEADER_EVERY_NS = 200_000_000  # rewrite the .npy record count at most 5 times/s
_IDLE_POLL_S = 0.2
_MAX_V6_HEADER = header_size(_stdsocket.AF_INET6)


@dataclasses.dataclass(frozen=True)
class RecorderStats:
    """What a Recorder has done so far.

    ``written``: datagrams in the file. ``capture_dropped``: datagrams handed
    to the recorder that are not in the file (no free buffer, or after a
    write error). ``bytes``: payload bytes written. ``file_bytes``: bytes in
    the file. ``cut``: rows stored shorter than received because the .npy
    file's payload width is smaller (flagged truncated in the file).
    ``error``: the exception that stopped writing, if any.
    """

    written: int
    capture_dropped: int
    bytes: int
    file_bytes: int
    batches: int
    cut: int
    error: BaseException | None


def _open_for_writing(path):
    def opener(name, flags):
        return os.open(name, flags | os.O_CLOEXEC, _FILE_MODE)

    handle = open(path, "wb", buffering=0, opener=opener)
    try:
        mode = os.fstat(handle.fileno()).st_mode
        # An existing file keeps its mode when truncated: take away o+w, but
        # only from a regular file (never from a device such as /dev/null).
        if stat.S_ISREG(mode) and mode & 0o002:
            os.fchmod(handle.fileno(), stat.S_IMODE(mode) & ~0o002)
    except BaseException:
        handle.close()
        raise
    return handle


class _Staged:
    """One staging buffer: a copy of one batch, owned by the writer until written."""

    __slots__ = (
        "capacity",
        "slot",
        "count",
        "family",
        "width",
        "payload",
        "lengths",
        "truncated",
        "addresses",
        "ports",
        "flowinfo",
        "timestamps",
        "scope_ids",
        "records",
    )

    def __init__(self, capacity, slot, npy_dtype=None):
        self.capacity, self.slot, self.count, self.family, self.width = capacity, slot, 0, None, 0
        self.lengths = np.zeros(capacity, np.int64)
        self.truncated = np.zeros(capacity, np.bool_)
        self.addresses = np.zeros((capacity, 16), np.uint8)
        self.ports = np.zeros(capacity, np.uint16)
        self.flowinfo = np.zeros(capacity, np.uint32)
        self.scope_ids = np.zeros(capacity, np.uint32)
        self.timestamps = np.zeros(capacity, np.int64)
        self.payload: np.ndarray | None
        self.records: np.ndarray | None
        if npy_dtype is None:  # pcap: flat bytes, viewed per batch as [n, header + width]
            self.payload = np.zeros(capacity * (_MAX_V6_HEADER + slot + 1), np.uint8)
            self.records = None
        else:  # npy: the records themselves
            self.payload = None
            self.records = np.zeros(capacity, npy_dtype)

    def fits(self, batch):
        return batch.count <= self.capacity and batch.slot_size <= self.slot


class Recorder:
    """Write every batch it is called with to a capture file (see :func:`open_recorder`)."""

    def __init__(
        self, path, *, local_address=None, format=None, buffers: int = 4, payload_bytes: int | None = None
    ):
        self.format = format_for_path(path, format)
        if isinstance(buffers, bool) or not isinstance(buffers, int) or buffers < 1:
            raise ValueError(f"buffers must be a whole number of at least 1, got {buffers!r}")
        if payload_bytes is not None and (
            isinstance(payload_bytes, bool)
            or not isinstance(payload_bytes, int)
            or not 0 < payload_bytes <= 65535
        ):
            raise ValueError(f"payload_bytes must be 1-65535, got {payload_bytes!r}")
        if payload_bytes is not None and self.format != "npy":
            # The .npy header would be rewritten over the pcap file's own.
            raise ValueError(f"payload_bytes applies to .npy captures only, not {self.format}")
        self.path = os.fspath(path)
        self._pcap = PcapEncoder(local_address) if self.format == "pcap" else None
        self._npy = None if payload_bytes is None else NpyEncoder(payload_bytes)
        self._buffers = buffers
        #: Rows each staging buffer is made with, at least: a Receiver sets it
        #: to its batch_size, as the batches it hands over are windows on its
        #: ring of up to that many rows (a buffer sized to a smaller first
        #: window would be replaced by the next larger one).
        self.rows_per_buffer = 1
        self._free: list = []  # staging buffers the caller may fill
        self._allocated = 0
        self._ready: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()  # the free list (caller and writer)
        self._call_lock = threading.Lock()  # one call at a time; close() waits for it
        self._closing = False
        self._closed = False
        self._dropped = 0  # by the caller's thread (no buffer free, closed)
        self._lost = 0  # by the writer thread (after a write error)
        self._written = 0
        self._bytes = 0
        self._file_bytes = 0
        self._batches = 0
        self._cut = 0
        self._error: BaseException | None = None
        self._npy_synced_ns = 0
        self._npy_synced_count = -1
        self._handle = _open_for_writing(self.path)
        try:
            if self.format == "pcap":
                self._write(file_header())
            elif self._npy is not None:
                self._write(self._npy.file_header())
                self._npy_synced_count = 0
        except BaseException:
            self._handle.close()
            raise
        self._thread = threading.Thread(target=self._run, name=f"fastnet-recorder {self.path}")
        self._thread.start()

    # -- the caller's side: copy and return ------------------------------------
    def __call__(self, batch) -> None:
        """Stage ``batch`` for writing (rows ``0..count-1``), or count it dropped.

        Never blocks on the disk and never raises for a write problem: after a
        write error, or once closed, batches are counted in
        ``stats.capture_dropped`` (``stats.error`` holds the error).
        """
        n = batch.count
        if not n:
            return
        with self._call_lock:
            if self._closing or self._error is not None:
                self._dropped += n
                return
            staged = self._take_buffer(batch)
            if staged is None:
                self._dropped += n
                return
            self._stage(staged, batch, n)
            self._ready.put(staged)

    def _take_buffer(self, batch):
        with self._lock:
            if self._free:
                staged = self._free.pop()
                if staged.fits(batch):
                    return staged
                self._allocated -= 1  # too small for this batch: replace it
            elif self._allocated >= self._buffers:
                return None
            self._allocated += 1
        if self._npy is None and self.format == "npy":
            self._npy = NpyEncoder(batch.slot_size)  # first batch fixes the payload width
        try:
            rows = max(batch.capacity, self.rows_per_buffer)
            return _Staged(rows, batch.slot_size, None if self._npy is None else self._npy.dtype)
        except MemoryError:
            with self._lock:
                self._allocated -= 1
            return None

    def _stage(self, staged, batch, n):
        staged.count = n
        staged.family = batch.family
        lengths = batch.lengths[:n]
        longest = int(lengths.max())
        stamps = staged.timestamps[:n]
        stamps[:] = batch.timestamps[:n]
        if not stamps.all():
            # No kernel timestamp (SO_TIMESTAMPNS off): the time it reached us.
            stamps[stamps == 0] = time.time_ns()
        staged.lengths[:n] = lengths
        staged.truncated[:n] = batch.truncated[:n]
        size = batch.addresses.shape[1]
        staged.addresses[:n, :size] = batch.addresses[:n]
        staged.ports[:n] = batch.ports[:n]
        staged.flowinfo[:n] = batch.flowinfo[:n]
        staged.scope_ids[:n] = batch.scope_ids[:n]
        if staged.records is None:
            width = PcapEncoder.row_width(batch.family, longest)
            staged.width = width
            rows = staged.payload[: n * width].reshape(n, width)
            start = header_size(batch.family)
            rows[:, start : start + longest] = batch.data[:n, :longest]
        else:
            records = staged.records[:n]
            keep = min(longest, self._npy_encoder().width)
            payload = records["payload"]
            payload[:, :keep] = batch.data[:n, :keep]
            records["address"][:, :size] = batch.addresses[:n]
            if size < 16:
                records["address"][:, size:] = 0

    # -- the writer thread -------------------------------------------------------
    def _run(self) -> None:
        main = threading.main_thread()
        while True:
            try:
                staged = self._ready.get(timeout=_IDLE_POLL_S)
            except queue.Empty:
                self._sync_npy_header(force=True)
                if not main.is_alive():
                    # The program ended without close(): finish the file anyway.
                    with self._call_lock:
                        self._closing = True
                    self._drain()
                    self._finish()
                    return
                continue
            if staged is None:
                self._drain()
                return
            self._write_staged(staged)

    def _drain(self) -> None:
        while True:
            try:
                staged = self._ready.get_nowait()
            except queue.Empty:
                return
            if staged is not None:
                self._write_staged(staged)

    def _write_staged(self, staged) -> None:
        n = staged.count
        try:
            if self._error is not None:
                self._lost += n
                return
            if staged.records is None:
                out, payload_bytes = self._pcap_records(staged, n), int(staged.lengths[:n].sum())
            else:
                out, payload_bytes = self._npy_records(staged, n)
                if self._npy_synced_count < 0:  # width known only now: header first
                    self._write(self._npy_encoder().file_header())
                    self._npy_synced_count = 0
            self._write(out)
            self._written += n
            self._bytes += payload_bytes
            self._batches += 1
            if self._npy is not None:
                self._npy.count += n
                self._sync_npy_header(force=False)
        except Exception as exc:  # noqa: BLE001 - disk full, I/O error: keep counting, report on close
            self._error = exc
            self._lost += n
        finally:
            with self._lock:
                self._free.append(staged)

    def _pcap_records(self, staged, n):
        rows = staged.payload[: n * staged.width].reshape(n, staged.width)
        size = 4 if staged.family == _stdsocket.AF_INET else 16
        if self._pcap is None:
            raise RuntimeError(f"pcap records staged for a {self.format} recorder")
        return self._pcap.encode(
            staged.family,
            rows,
            staged.lengths[:n],
            staged.truncated[:n],
            staged.addresses[:n, :size],
            staged.ports[:n],
            staged.flowinfo[:n],
            staged.timestamps[:n],
        )

    def _npy_records(self, staged, n):
        records = staged.records[:n]
        width = self._npy_encoder().width
        lengths = staged.lengths[:n]
        cut = lengths > width
        kept = np.minimum(lengths, width)
        payload = records["payload"]
        # Bytes past each row's length are zero in the file (stale in the copy).
        shortest = int(kept.min())
        if shortest == int(kept.max()):
            payload[:, shortest:] = 0
        else:
            payload[np.arange(width) >= kept[:, None]] = 0
        records["timestamp"] = staged.timestamps[:n]
        records["length"] = kept
        records["truncated"] = staged.truncated[:n] | cut
        records["ip_version"] = 4 if staged.family == _stdsocket.AF_INET else 6
        records["port"] = staged.ports[:n]
        records["flowinfo"] = staged.flowinfo[:n]
        records["scope_id"] = staged.scope_ids[:n]
        self._cut += int(cut.sum())
        return records, int(kept.sum())

    def _npy_encoder(self) -> NpyEncoder:
        """The encoder that npy records are staged for: made before the first of them."""
        if self._npy is None:
            raise RuntimeError("npy records staged before the recorder had an NpyEncoder")
        return self._npy

    def _write(self, data) -> None:
        view = memoryview(data).cast("B")
        while view.nbytes:
            done = self._handle.write(view)
            self._file_bytes += done
            view = view[done:]

    def _sync_npy_header(self, force: bool) -> None:
        if (
            self._npy is None
            or self._error is not None
            or self._handle.closed
            or self._npy_synced_count in (-1, self._npy.count)
        ):
            return
        now = time.monotonic_ns()
        if force or now - self._npy_synced_ns >= _NPY_HEADER_EVERY_NS:
            try:
                self._npy.update_header(self._handle.fileno())
            except OSError as exc:
                self._error = exc
            self._npy_synced_ns = now
            self._npy_synced_count = self._npy.count

    def _finish(self) -> None:
        """Final header, then close the file (writer thread or close())."""
        if self._handle.closed:
            return
        if self.format == "npy" and self._npy_synced_count < 0:
            # Nothing was recorded: an empty but valid .npy.
            self._npy = self._npy or NpyEncoder(1)
            self._write(self._npy.file_header())
            self._npy_synced_count = 0
        self._sync_npy_header(force=True)
        self._handle.close()

    # -- control -----------------------------------------------------------------
    @property
    def stats(self) -> RecorderStats:
        return RecorderStats(
            written=self._written,
            capture_dropped=self._dropped + self._lost,
            bytes=self._bytes,
            file_bytes=self._file_bytes,
            batches=self._batches,
            cut=self._cut,
            error=self._error,
        )

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def backlog(self) -> int:
        """Batches staged but not yet written (0 .. buffers)."""
        with self._lock:
            return self._allocated - len(self._free)

    @property
    def buffers(self) -> int:
        """Number of staging buffers; a batch finding all of them busy is dropped."""
        return self._buffers

    def close(self) -> None:
        """Write everything staged, finish the file, stop the thread.

        Raises the error that stopped writing, if there was one (once).
        """
        if self._closed:
            return
        with self._call_lock:  # a call in progress finishes staging first
            self._closing = True
        self._ready.put(None)
        self._thread.join()
        self._closed = True
        error = self._error
        try:
            if error is None:
                self._finish()
        finally:
            if not self._handle.closed:
                self._handle.close()
        if error is not None:
            raise error

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"<fastnet.Recorder {self.path!r} format={self.format} written={self._written}>"


def open_recorder(
    path, *, local_address=None, format=None, buffers: int = 4, payload_bytes: int | None = None
) -> Recorder:
    """A :class:`Recorder` writing to ``path`` (``.pcap`` or ``.npy``, or ``format=``).

    ``local_address`` is the receiver's bound ``(host, port)``: pcap records
    show it as each datagram's destination. ``buffers`` staging buffers (each
    the size of one batch) absorb bursts while the disk is slow. For .npy,
    ``payload_bytes`` fixes the stored payload width (default: the first
    batch's slot size); longer rows are cut, flagged truncated, and counted
    in ``stats.cut``.

    Use as ``recorder(batch)`` after every receive (it returns quickly), and
    ``close()`` (or a ``with`` block) to finish the file.
    """
    return Recorder(
        path, local_address=local_address, format=format, buffers=buffers, payload_bytes=payload_bytes
    )
