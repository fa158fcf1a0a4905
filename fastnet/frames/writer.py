"""FrameWriter: frames to an HDF5 file or a zarr v3 store, in the order they are given.

Called in the receiving thread it writes at once. With ``background=True``
it copies each frame into a bounded queue and a writer thread does the
writing, so a slow disk never holds up the receive loop: a frame that finds
the queue full is not written and is counted in ``frames_dropped``. Either
way ``frames_written + frames_dropped`` is every frame given to ``write``,
once the writer is closed.

The file is made consistent at every flush (every ``flush_every`` frames,
and at the end), so what was flushed survives a crash; Ctrl-C reaches the
``with`` block's end, which writes the rest and the final stats.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from dataclasses import asdict, dataclass
from typing import Any, Iterable, List, Optional

import numpy as np

from .frame import Frame
from .spec import FrameSpec

__all__ = ["FrameWriter", "FrameWriterStats", "is_frame_path"]

#: File name endings FrameWriter writes: HDF5, then zarr.
HDF5_SUFFIXES = (".h5", ".hdf5")
ZARR_SUFFIXES = (".zarr",)


@dataclass(frozen=True)
class FrameWriterStats:
    """What a FrameWriter did with the frames it was given."""

    #: Frames in the file.
    frames_written: int = 0
    #: Frames not written: the background queue was full (the disk fell behind), or a write failed.
    frames_dropped: int = 0
    #: Payload bytes in the file (``frames_written * packets_per_frame * payload_size``).
    bytes_written: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def is_frame_path(path) -> bool:
    """True for a path FrameWriter writes (``.h5``, ``.hdf5``, ``.zarr``)."""
    return os.fspath(path).rstrip("/").lower().endswith(HDF5_SUFFIXES + ZARR_SUFFIXES)


def _store_for(path, spec: FrameSpec, compression):
    name = os.fspath(path).rstrip("/")
    if name.lower().endswith(ZARR_SUFFIXES):
        from .zarr_store import ZarrFrameStore

        return ZarrFrameStore(path, spec, compression)
    if name.lower().endswith(HDF5_SUFFIXES):
        from .hdf5 import Hdf5FrameStore

        return Hdf5FrameStore(path, spec, compression)
    raise ValueError(f"{name}: frames are written to .h5/.hdf5 (HDF5) or .zarr (zarr v3)")


class FrameWriter:
    """Write frames to ``path`` (``.h5``/``.hdf5``: HDF5, SWMR; ``.zarr``: zarr v3).

    ``stats_of`` is any object with a ``.stats`` (a FrameAssembler, a
    Receiver): its counters are saved in the ``stats`` attribute at each
    flush and at the end, with the writer's own. ``compression`` is passed
    to the format (``"gzip"`` or ``"lzf"`` for HDF5; any value turns zarr's
    default compressor on).
    """

    def __init__(
        self,
        path: "str | os.PathLike[str]",
        spec: FrameSpec,
        *,
        compression: Optional[str] = None,
        background: bool = False,
        max_queue: int = 256,
        flush_every: int = 64,
        stats_of: Any = None,
    ):
        if not isinstance(spec, FrameSpec):
            raise TypeError(f"spec must be a fastnet.FrameSpec, not {type(spec).__name__}")
        for name, value in (("max_queue", max_queue), ("flush_every", flush_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer of at least 1, got {value!r}")
        self._spec = spec
        self._path = path
        self._stats_of = stats_of
        self._flush_every = flush_every
        self._frame_bytes = spec.frame_bytes
        self._store = _store_for(path, spec, compression)
        self._lock = threading.Lock()  # the counters, read from any thread
        self._written = self._dropped = 0
        self._since_flush = 0
        self._error: Optional[BaseException] = None
        self._closed = False
        self._queue: Optional[queue.Queue] = None
        self._thread: Optional[threading.Thread] = None
        if background:
            self._queue = queue.Queue(maxsize=max_queue)
            self._thread = threading.Thread(target=self._drain, name="fastnet-frame-writer", daemon=True)
            self._thread.start()

    @property
    def path(self):
        return self._path

    @property
    def error(self) -> Optional[BaseException]:
        """The error that stopped writing, or None."""
        return self._error

    @property
    def stats(self) -> FrameWriterStats:
        with self._lock:
            return FrameWriterStats(self._written, self._dropped, self._written * self._frame_bytes)

    def write(self, frames: Iterable[Frame]) -> None:
        """Write these frames (or queue copies of them, with ``background``)."""
        if self._closed:
            raise ValueError("write to a closed FrameWriter")
        frames = list(frames)
        if not frames:
            return
        if self._queue is None:
            self._write_now(frames)
            return
        for frame in frames:
            if self._error is not None:
                self._count_dropped(1)
                continue
            try:
                self._queue.put_nowait(frame.copy())
            except queue.Full:
                self._count_dropped(1)

    def _count_dropped(self, n: int) -> None:
        with self._lock:
            self._dropped += n

    def _write_now(self, frames: List[Frame]) -> None:
        if self._error is not None:
            self._count_dropped(len(frames))
            return
        try:
            self._store.append(
                np.fromiter((f.frame_id for f in frames), dtype=np.uint64, count=len(frames)),
                np.stack([f.data for f in frames]),
                np.stack([f.present for f in frames]),
                np.fromiter((f.first_timestamp for f in frames), dtype=np.int64, count=len(frames)),
            )
        except Exception as exc:  # noqa: BLE001 - kept, counted and raised by close()
            self._error = exc
            self._count_dropped(len(frames))
            return
        with self._lock:
            self._written += len(frames)
        self._since_flush += len(frames)
        if self._since_flush >= self._flush_every:
            self._flush()

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            first = self._queue.get()
            if first is None:
                return
            frames = [first]
            while len(frames) < self._flush_every:  # write what waits in one go
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._write_now(frames)
                    return
                frames.append(more)
            self._write_now(frames)

    def _stats_json(self) -> str:
        out: dict = {"writer": self.stats.as_dict()}
        source = self._stats_of
        if source is not None:
            stats = source.stats
            out["source"] = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
        return json.dumps(out, sort_keys=True)

    def _flush(self) -> None:
        self._since_flush = 0
        try:
            self._store.flush(self._stats_json())
        except Exception as exc:  # noqa: BLE001 - kept and raised by close()
            self._error = self._error or exc

    def close(self) -> None:
        """Write what is queued, the final stats, and close the file; raise a write error met on the way."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)  # the queue is bounded: this waits until the writer makes room
            self._thread.join()
        self._flush()
        self._store.close()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<fastnet.FrameWriter {os.fspath(self._path)!r} {self.stats}>"
