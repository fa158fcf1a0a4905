"""FrameAssembler: Batches in, Frames out, in increasing frame id order.

The placement itself is the engine's (``FramePlacer``: ``src/_frames.pxi``
on the Cython engine, ``fastnet/engines/python/frames.py`` on the other);
this module owns the frame buffers, turns what the engine emitted into
:class:`Frame` objects and checks the arguments.

Frame buffers come from a pool: the frames returned by one ``add`` keep
theirs until the next ``add`` or ``flush``, and are then reused. The pool
grows when one call emits more frames than it has slots for; it never
shrinks.

Ordering and eviction: frames in flight have ids in a window of
``frames_in_flight`` ids. A packet for an id at or past the window's end
moves the window, and the frames left behind it are emitted, complete or
not; a packet for an id below the window is late. A frame is emitted as
soon as it is complete and no older frame is in flight.
"""

from __future__ import annotations

import math
import time
from typing import List, Optional

import numpy as np

from .. import engines
from ..core.batch import Batch
from ..core.checks import int_between
from .frame import Frame, FrameStats, SourceTable
from .spec import FrameSpec

__all__ = ["FrameAssembler", "MAX_FRAMES_IN_FLIGHT"]

#: Upper bound on the window, so a typo does not allocate a million frames.
MAX_FRAMES_IN_FLIGHT = 1 << 16


class FrameAssembler:
    """Put datagrams into frames as ``spec`` says; usable offline and inside a receive loop.

    ``add(batch)`` places rows ``0..batch.count-1`` and returns the frames
    this completed or evicted; ``flush()`` returns the frames still in
    flight, at the end. ``backend`` chooses the engine (default:
    ``fastnet.backend``); both give the same frames and counts.
    """

    def __init__(self, spec: FrameSpec, frames_in_flight: int = 8, *, backend: Optional[str] = None):
        if not isinstance(spec, FrameSpec):
            raise TypeError(f"spec must be a fastnet.FrameSpec, not {type(spec).__name__}")
        window = int_between(frames_in_flight, "frames_in_flight", 1, MAX_FRAMES_IN_FLIGHT)
        name = engines.default_backend() if backend is None else backend
        engine = engines.load(name)
        self._spec = spec
        self._window = window
        self._backend = name
        self._placer = engine.FramePlacer(*spec._engine_args(), window)
        self._data: List[np.ndarray] = []  # slot -> its frame's data
        self._present: List[np.ndarray] = []  # slot -> its presence flags (bool view)
        self._handed_out: List[int] = []  # slots of the frames the last call returned
        self._sources = SourceTable(self._placer)  # slot -> its frame's first packet's address
        self._grow(window + 1)

    @property
    def spec(self) -> FrameSpec:
        """The FrameSpec the datagrams are placed by."""
        return self._spec

    @property
    def frames_in_flight(self) -> int:
        """Frame ids the window spans."""
        return self._window

    @property
    def backend(self) -> str:
        """The engine doing the placement."""
        return self._backend

    @property
    def stats(self) -> FrameStats:
        """The counters so far."""
        placed, late, duplicate, rejected, complete, incomplete, missing = self._placer.counters
        return FrameStats(
            frames_complete=complete,
            frames_incomplete=incomplete,
            frames_missing=missing,
            packets_placed=placed,
            packets_late=late,
            packets_duplicate=duplicate,
            packets_rejected=rejected,
        )

    def _grow(self, k: int) -> None:
        spec = self._spec
        data = np.zeros((k, spec.packets_per_frame, spec.payload_size), dtype=np.uint8)
        present = np.zeros((k, spec.packets_per_frame), dtype=np.uint8)
        self._placer.add_slots(data, present)
        self._data.extend(data)
        self._present.extend(present.view(np.bool_))

    def _release(self) -> None:
        if self._handed_out:
            self._placer.release_all(self._handed_out)
            self._handed_out = []

    def add(self, batch: Batch, *, borrow: bool = False) -> List[Frame]:
        """Place the batch's rows; return the frames completed or evicted, oldest first.

        The frames returned by the previous call are invalid from here on.

        ``borrow=True`` is for a caller that leaves the batch's rows
        unchanged for as long as it uses the frames this call returns (at
        most until the next call here, when they become invalid anyway), as
        a Receiver does with its ring. Then a complete frame whose packets
        came in order, in consecutive rows of this batch, may be returned as
        a view on those rows (its ``data`` not C-contiguous, as it skips
        each row's header), so its payload is not copied at all. The Cython
        engine does so; the frames and counts are the same either way.
        """
        if not isinstance(batch, Batch):
            raise TypeError(f"add needs a fastnet.Batch, not {type(batch).__name__}")
        batch._check_layout()
        batch._claim("FrameAssembler.add")
        try:
            self._release()
            row, stop = 0, batch.count
            while True:
                # Each frame begun keeps its first packet's source, in the
                # engine: no per-batch array work here.
                row = self._placer.place(
                    batch.data,
                    batch.lengths,
                    batch._truncated_u8,
                    batch.timestamps,
                    row,
                    stop,
                    family=int(batch.family),
                    addresses=batch.addresses,
                    ports=batch.ports,
                    flowinfo=batch.flowinfo,
                    scope_ids=batch.scope_ids,
                    borrow=borrow,
                )
                if row >= stop:
                    break
                self._grow(self._placer.slots)  # every slot is in flight or handed out
            return self._frames()
        finally:
            batch._release()

    def evict_older_than(self, seconds: float, *, now: Optional[float] = None) -> List[Frame]:
        """Evict the frames in flight whose first packet was placed more than ``seconds`` ago.

        For a receive loop whose sender may stall: such a frame is emitted
        (``complete`` False unless it is), and with it every older frame in
        flight, so frames still come out in increasing id order; packets
        for them that come later are late. The clock is ``time.monotonic()``
        read when each ``add`` placed the rows; ``now`` (default: the clock
        now) is the time the age is measured at. Returns the frames emitted,
        as ``add`` does (the previous call's frames are invalid from here on).
        """
        for name, value in (("seconds", seconds), ("now", 0.0 if now is None else now)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and 0 or more, got {value}")
        now_ns = time.monotonic_ns() if now is None else int(now * 1e9)
        self._release()
        self._placer.evict_begun_before(now_ns - int(seconds * 1e9))
        return self._frames()

    def in_flight_since(self) -> Optional[float]:
        """``time.monotonic()`` when the longest-waiting frame in flight got its first packet, or None."""
        begun = self._placer.oldest_begun_ns
        return None if begun < 0 else begun / 1e9

    def keep(self) -> None:
        """Keep the frames the last ``add``/``flush`` returned valid for good.

        Their buffers leave the pool (which grows again as needed), so the
        next call does not reuse them: for a caller that still holds them
        when more frames must be assembled, as a Receiver does at ``stop()``.
        """
        self._handed_out = []

    def flush(self) -> List[Frame]:
        """Emit every frame still in flight, oldest first (incomplete ones too)."""
        self._release()
        self._placer.flush()
        return self._frames()

    def _frames(self) -> List[Frame]:
        # One engine call makes every Frame, without calling the class: a
        # Python loop over the emitted slots, or Frame.__init__ per frame,
        # cost more per frame than placing its packets.
        return self._placer.take_frames(Frame, self._data, self._present, self._sources, self._handed_out)

    def __repr__(self) -> str:
        return f"<fastnet.FrameAssembler {self.stats} backend={self._backend!r}>"
