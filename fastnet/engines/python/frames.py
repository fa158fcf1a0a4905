"""Frame placement in numpy: datagrams put into instrument frames by their header fields.

Pairs with ``src/_frames.pxi``; same interface (FramePlacer in
fastnet/engines/_cengine.pyx's stub, fastnet/engines/_cengine.pyi) and, for the
same rows, the same frames and counts, byte for byte.

The C placement takes one datagram at a time. Here a batch is worked in
rounds, each over a run of rows, with array operations only: the fields of
every row are read at once, then each round classifies its rows (late,
duplicate, placed) as if no frame were emitted during it, finds the first
row at which one is (a frame evicted by the window moving, or completed as
the oldest in flight), and keeps the rows up to that one. Emitting a frame
changes which later rows are late, so the next round starts after it. There
is a round per emitted frame, not a loop per datagram. Before each round, a
leading run of whole frames (ids one after another, each frame's packets
together, each once, nothing in flight) is taken in a single pass: the
common case, where each frame is emitted at its last packet.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..contract import FRAME_FIELDS, frame_slot_descriptors

__all__ = ["FramePlacer"]

COUNTER, INDEX, OFFSET = 0, 1, 2  # fastnet.frames.spec's placement modes
MAX_TERMS = 8
_U64MAX = (1 << 64) - 1
_NONE = np.uint64(_U64MAX)  # "no frame": above every id in the running minimum
#: Rows a round looks at: enough for a frame or two of typical sizes, few
#: enough that a round that stops early wastes little work.
_ROUND_ROWS = 64
_FREE, _IN_FLIGHT, _EMITTED, _HANDED_OUT = 0, 1, 2, 3
_NO_SOURCE = (0, bytes(16), 0, 0, 0)  # a slot whose frame came from rows without sources


def _check_terms(terms, name: str) -> Tuple[Tuple[int, int, bool, int, int, int], ...]:
    checked = []
    for offset, size, big, mask, shift, scale in terms:
        if not 1 <= size <= 8 or not 0 <= shift < 8 * size or offset < 0:
            raise ValueError("a field must be 1 to 8 bytes at a non-negative offset")
        checked.append((int(offset), int(size), bool(big), int(mask), int(shift), int(scale)))
    if len(checked) > MAX_TERMS:
        raise ValueError(f"at most {MAX_TERMS} terms")
    return tuple(checked)


def _read_sum(data: np.ndarray, rows: np.ndarray, terms) -> np.ndarray:
    """The sum of the fields in each of ``rows`` (uint64, wrapping as the C ``uint64_t`` does)."""
    total = np.zeros(len(rows), dtype=np.uint64)
    for offset, size, big, mask, shift, scale in terms:
        raw = data[rows, offset : offset + size].astype(np.uint64)
        value = np.zeros(len(rows), dtype=np.uint64)
        for k in range(size):
            column = raw[:, k] if big else raw[:, size - 1 - k]
            value = (value << np.uint64(8)) | column
        value = (value >> np.uint64(shift)) & np.uint64(mask)
        total += value * np.uint64(scale)
    return total


class FramePlacer:
    """The pure-Python engine's frame placement (see fastnet/engines/_cengine.pyi)."""

    def __init__(
        self,
        payload_offset: int,
        payload_size: int,
        packets_per_frame: int,
        packet_size: int,
        fill: int,
        mode: int,
        first_terms,
        second_terms,
        frames_in_flight: int,
    ):
        if (
            payload_offset < 0
            or payload_size < 1
            or packets_per_frame < 1
            or not 1 <= frames_in_flight <= (1 << 20)
            or not 0 <= fill <= 255
            or mode not in (COUNTER, INDEX, OFFSET)
        ):
            raise ValueError("FramePlacer: a value is out of range (fastnet.FrameSpec checks them)")
        self._first = _check_terms(first_terms, "first")
        self._second = _check_terms(second_terms, "second")
        if not self._first or (mode != COUNTER and not self._second):
            raise ValueError("FramePlacer: a placement field is missing")
        ends = [payload_offset + payload_size] + [t[0] + t[1] for t in self._first + self._second]
        self._min_length = max(ends)
        if packet_size >= 0 and packet_size < self._min_length:
            raise ValueError("FramePlacer: packet_size does not hold the payload and fields")
        self._po, self._ps, self._ppf = payload_offset, payload_size, packets_per_frame
        self._packet_size, self._fill, self._mode = packet_size, fill, mode
        self._window = frames_in_flight
        # Slots: views into the arrays given to add_slots.
        self._data: List[np.ndarray] = []
        self._present: List[np.ndarray] = []
        self._state: List[int] = []
        self._frame_id: List[int] = []
        self._count: List[int] = []
        self._first_ts: List[int] = []
        self._last_ts: List[int] = []
        self._begun_ns: List[int] = []  # time.monotonic_ns() when its first packet was placed
        self._now_ns = 0  # the reading for the rows being placed: one per place() call
        self._free: List[int] = []
        self._in_flight: Dict[int, int] = {}  # frame id -> slot
        self._emitted: List[int] = []
        # slot -> (family, address (16 bytes), port, flowinfo, scope_id) of its frame's first packet
        self._source: List[Tuple[int, bytes, int, int, int]] = []
        self._row_sources: Optional[tuple] = None  # the source arrays of the rows being placed
        # Frame ids below base are late; base passes 2**64 - 1 once the last possible id is emitted.
        self._base = 0
        self._last_emitted: int | None = None
        self.placed = self.late = self.duplicate = self.rejected = 0
        self.frames_complete = self.frames_incomplete = self.frames_missing = 0

    # -- slots ------------------------------------------------------------
    def add_slots(self, data: np.ndarray, present: np.ndarray) -> None:
        k = data.shape[0]
        if (
            data.dtype != np.uint8
            or present.dtype != np.uint8
            or data.shape[1:] != (self._ppf, self._ps)
            or present.shape != (k, self._ppf)
            or not data.flags.c_contiguous
            or not present.flags.c_contiguous
        ):
            raise ValueError("add_slots: arrays of the wrong shape")
        for j in range(k):
            self._free.append(len(self._data))
            self._data.append(data[j])
            self._present.append(present[j])
            self._state.append(_FREE)
            self._frame_id.append(0)
            self._count.append(0)
            self._first_ts.append(0)
            self._last_ts.append(0)
            self._begun_ns.append(0)
            self._source.append(_NO_SOURCE)

    def release(self, s: int) -> None:
        if not 0 <= s < len(self._data) or self._state[s] != _HANDED_OUT:
            raise ValueError(f"release: slot {s} is not one take_emitted handed out")
        self._state[s] = _FREE
        self._free.append(s)

    def release_all(self, slots: list) -> None:
        for s in slots:
            self.release(s)

    @property
    def free_slots(self) -> int:
        return len(self._free)

    @property
    def slots(self) -> int:
        return len(self._data)

    @property
    def counters(self) -> Tuple[int, int, int, int, int, int, int]:
        return (
            self.placed,
            self.late,
            self.duplicate,
            self.rejected,
            self.frames_complete,
            self.frames_incomplete,
            self.frames_missing,
        )

    def take_emitted(self) -> list:
        out = [
            (s, self._frame_id[s], self._count[s] == self._ppf, self._first_ts[s], self._last_ts[s])
            for s in self._emitted
        ]
        for s in self._emitted:
            self._state[s] = _HANDED_OUT
        self._emitted = []
        return out

    def take_frames(self, frame_type: type, data: list, present: list, sources, handed_out: list) -> list:
        if len(data) < len(self._data) or len(present) < len(self._data):
            raise ValueError("take_frames: data and present need an entry per slot")
        frame_slot_descriptors(frame_type)  # TypeError unless each field is a plain slot
        out = []
        for s in self._emitted:
            self._state[s] = _HANDED_OUT
            handed_out.append(s)
            frame: Any = object.__new__(frame_type)  # no __init__, as the C placement makes them
            values = (
                self._frame_id[s],
                data[s],
                present[s],
                bool(self._count[s] == self._ppf),
                self._first_ts[s],
                self._last_ts[s],
                (sources, s),
            )
            for name, value in zip(FRAME_FIELDS, values, strict=True):
                setattr(frame, name, value)
            out.append(frame)
        self._emitted = []
        return out

    def source(self, s: int) -> Tuple[int, bytes, int, int, int]:
        if not 0 <= s < len(self._data):
            raise ValueError(f"source: no slot {s}")
        return self._source[s]

    def _keep_source(self, s: int, row: int) -> None:
        """Slot s's frame begins at ``row``: keep that row's source, as the C placement does."""
        if self._row_sources is None:
            self._source[s] = _NO_SOURCE
            return
        family, addresses, ports, flowinfo, scope_ids = self._row_sources
        self._source[s] = (
            family,
            addresses[row].tobytes().ljust(16, b"\0"),
            int(ports[row]),
            int(flowinfo[row]),
            int(scope_ids[row]),
        )

    # -- emitting ---------------------------------------------------------
    def _emit(self, s: int) -> None:
        fid = self._frame_id[s]
        del self._in_flight[fid]
        if self._count[s] == self._ppf:
            self.frames_complete += 1
        else:
            self.frames_incomplete += 1
            self._data[s][self._present[s] == 0] = self._fill
        if self._last_emitted is not None:
            self.frames_missing += fid - self._last_emitted - 1
        self._last_emitted = fid
        self._state[s] = _EMITTED
        self._emitted.append(s)

    def _cascade(self) -> None:
        """Emit the oldest frames in flight while they are complete."""
        while self._in_flight:
            oldest = min(self._in_flight)
            s = self._in_flight[oldest]
            if self._count[s] != self._ppf:
                return
            self._emit(s)
            self._base = oldest + 1

    def _advance(self, new_base: int) -> None:
        """Evict every frame in flight below new_base (in order), then move the window there."""
        for fid in sorted(f for f in self._in_flight if f < new_base):
            self._emit(self._in_flight[fid])
        self._base = max(self._base, new_base)
        self._cascade()

    def flush(self) -> None:
        for fid in sorted(self._in_flight):
            self._emit(self._in_flight[fid])
        if self._last_emitted is not None:
            self._base = max(self._base, self._last_emitted + 1)

    def evict_begun_before(self, cutoff_ns: int) -> None:
        """Evict, oldest first, the frames in flight up to the newest begun before cutoff_ns."""
        aged = [fid for fid, s in self._in_flight.items() if self._begun_ns[s] < cutoff_ns]
        if aged:
            self._advance(max(aged) + 1)  # past 2**64 - 1: every id is passed, as in C

    @property
    def oldest_begun_ns(self) -> int:
        return min((self._begun_ns[s] for s in self._in_flight.values()), default=-1)

    # -- placing ----------------------------------------------------------
    def place(
        self,
        data,
        lengths,
        truncated,
        timestamps,
        start: int,
        stop: int,
        *,
        family: int = 0,
        addresses=None,
        ports=None,
        flowinfo=None,
        scope_ids=None,
        borrow: bool = False,
    ) -> int:
        # borrow lets an engine hand frames out as views on data; this one
        # always copies, so its frames are the same by value.
        data = np.asarray(data)
        if data.ndim != 2 or data.dtype != np.uint8:
            raise ValueError("place: data must be a 2-d uint8 array")
        if (
            not 0 <= start <= stop <= data.shape[0]
            or len(lengths) < stop
            or len(truncated) < stop
            or len(timestamps) < stop
        ):
            raise ValueError("place: rows out of range")
        self._row_sources = None
        if addresses is not None:
            if ports is None or flowinfo is None or scope_ids is None:
                raise ValueError("place: addresses need ports, flowinfo and scope_ids too")
            addresses = np.asarray(addresses)
            if len(addresses) < stop or len(ports) < stop or len(flowinfo) < stop or len(scope_ids) < stop:
                raise ValueError("place: source rows out of range")
            if addresses.ndim != 2 or addresses.shape[1] not in (4, 16) or not 0 <= family <= 0xFFFF:
                raise ValueError("place: addresses must be 4 or 16 bytes a row, family 0..65535")
            self._row_sources = (int(family), addresses, ports, flowinfo, scope_ids)
        try:
            return self._place(data, lengths, truncated, timestamps, start, stop)
        finally:
            self._row_sources = None  # not kept past the call: they are the caller's arrays

    def _place(self, data, lengths, truncated, timestamps, start: int, stop: int) -> int:
        if start == stop:
            return start
        self._now_ns = time.monotonic_ns()  # CLOCK_MONOTONIC on Linux, as the C placement reads
        lengths = np.asarray(lengths[start:stop], dtype=np.int64)
        bad = np.flatnonzero((lengths < 0) | (lengths > data.shape[1]))
        if len(bad):
            j = start + int(bad[0])
            raise ValueError(f"place: row {j} has length {int(lengths[bad[0]])}, outside 0..{data.shape[1]}")
        rows = np.arange(start, stop)
        ok = (np.asarray(truncated[start:stop]) == 0) & (lengths >= self._min_length)
        if self._packet_size >= 0:
            ok &= lengths == self._packet_size
        rows = rows[ok]
        if not len(rows):  # every row rejected; the fields may lie past a short batch's rows
            self.rejected += stop - start
            return stop
        value = _read_sum(data, rows, self._first)
        if self._mode == COUNTER:
            ppf = np.uint64(self._ppf)
            fids, index = value // ppf, (value % ppf).astype(np.int64)
        else:
            second = _read_sum(data, rows, self._second)
            if self._mode == INDEX:
                fits = second < np.uint64(self._ppf)
                index = second
            else:
                ps = np.uint64(self._ps)
                fits = (second % ps == 0) & (second // ps < np.uint64(self._ppf))
                index = second // ps
            rows, fids, index = rows[fits], value[fits], index[fits].astype(np.int64)
        stamps = np.asarray(timestamps, dtype=np.int64)[rows]
        cursor = 0
        while cursor < len(rows):
            taken = self._whole_frames(data, rows[cursor:], fids[cursor:], index[cursor:], stamps[cursor:])
            if taken:
                cursor += taken
                continue
            end = min(len(rows), cursor + _ROUND_ROWS)
            taken = self._round(
                data, rows[cursor:end], fids[cursor:end], index[cursor:end], stamps[cursor:end]
            )
            if taken == 0:  # no free slot for the frame this row begins: stop before it
                resume = int(rows[cursor])
                self.rejected += (resume - start) - cursor
                return resume
            cursor += taken
        self.rejected += (stop - start) - len(rows)
        return stop

    def _whole_frames(self, data, rows, fids, index, stamps) -> int:
        """Take a leading run of whole frames, one after another, each packet once; return its rows.

        The common case, done in one go: frame ids f, f+1, ..., each frame's
        packets next to each other in any order. With no frame in flight,
        each of these frames is complete at its last packet with no older
        frame in flight, so it is emitted there and nothing in the run is
        late, duplicate or evicted. Anything else is left to _round.
        """
        ppf = self._ppf
        if self._in_flight or len(rows) < ppf or self._base > _U64MAX or int(fids[0]) < self._base:
            return 0
        first = int(fids[0])
        k = np.arange(len(rows) - len(rows) % ppf)
        # ids past 2**64 - 1 cannot follow in order: the run stops before them
        in_order = (fids[: len(k)] == np.uint64(first) + (k // ppf).astype(np.uint64)) & (
            k // ppf <= _U64MAX - first
        )
        broken = np.flatnonzero(~in_order)
        frames = (int(broken[0]) if len(broken) else len(k)) // ppf
        blocks = index[: frames * ppf].reshape(frames, ppf)
        each_once = (np.sort(blocks, axis=1) == np.arange(ppf)).all(axis=1)
        if not each_once.all():
            frames = int(np.argmin(each_once))
        frames = min(frames, len(self._free))
        if frames == 0:
            return 0
        taken = frames * ppf
        if self._last_emitted is not None:
            self.frames_missing += first - self._last_emitted - 1
        payload = data[rows[:taken], self._po : self._po + self._ps].reshape(frames, ppf, self._ps)
        for j in range(frames):  # a loop per frame
            s = self._free.pop()
            fid = first + j
            self._frame_id[s], self._count[s] = fid, ppf
            self._data[s][blocks[j]] = payload[j]
            self._present[s][:] = 1
            self._first_ts[s] = int(stamps[j * ppf])
            self._last_ts[s] = int(stamps[j * ppf + ppf - 1])
            self._keep_source(s, int(rows[j * ppf]))
            self._state[s] = _EMITTED
            self._emitted.append(s)
        self.placed += taken
        self.frames_complete += frames
        self._last_emitted = first + frames - 1
        self._base = first + frames
        return taken

    def _round(self, data, rows, fids, index, stamps) -> int:
        """Take a run of accepted rows up to the first that emits a frame; return how many."""
        m = len(rows)
        if self._base > _U64MAX:  # the last possible frame id was emitted
            self.late += m
            return m
        window = self._window
        # The window's start after each row: it follows the highest id seen.
        highest = np.maximum.accumulate(fids)
        lowest = np.where(highest >= window - 1, highest - np.uint64(window - 1), np.uint64(0))
        starts = np.maximum(lowest, np.uint64(self._base))
        late = fids < starts
        on_time = np.flatnonzero(~late)
        f_ok, i_ok = fids[on_time], index[on_time]
        # Duplicates: the slot was filled before this round, or by an earlier row of it.
        frames, which = np.unique(f_ok, return_inverse=True)
        filled = np.zeros((len(frames), self._ppf), dtype=bool)
        counts = np.zeros(len(frames), dtype=np.int64)
        known = np.zeros(len(frames), dtype=bool)
        for j, fid in enumerate(frames.tolist()):  # a loop per frame
            s = self._in_flight.get(fid)
            if s is not None:
                filled[j] = self._present[s] != 0
                counts[j] = self._count[s]
                known[j] = True
        order = np.lexsort((on_time, i_ok, f_ok))
        first_copy = np.ones(len(order), dtype=bool)
        first_copy[1:] = (f_ok[order][1:] != f_ok[order][:-1]) | (i_ok[order][1:] != i_ok[order][:-1])
        first = np.zeros(len(order), dtype=bool)
        first[order[first_copy]] = True
        placed = first & ~filled[which, i_ok]
        # Frames begun in this round: at the first row placed in each.
        p_rows = on_time[placed]
        p_which = which[placed]
        begun = np.zeros(m, dtype=bool)
        new_frames, first_at = np.unique(p_which, return_index=True)
        keep = ~known[new_frames]
        begun[p_rows[first_at[keep]]] = True
        # The oldest frame in flight after each row (nothing is emitted before the round's end).
        opened = np.where(begun, fids, _NONE)
        oldest_before = min(self._in_flight) if self._in_flight else _U64MAX
        oldest = np.minimum(np.minimum.accumulate(opened), np.uint64(oldest_before))
        evicts = starts > oldest
        # A frame completed as the oldest in flight is emitted at once.
        order_p = np.argsort(p_which, kind="stable")
        sorted_which = p_which[order_p]
        group_start = np.searchsorted(sorted_which, sorted_which, side="left")
        rank = np.empty(len(p_which), dtype=np.int64)
        rank[order_p] = np.arange(len(p_which)) - group_start + 1
        completes = counts[p_which] + rank == self._ppf
        emits = evicts.copy()
        done_rows = p_rows[completes]
        emits[done_rows] |= fids[done_rows] <= oldest[done_rows]
        events = np.flatnonzero(emits)
        taken = int(events[0]) + 1 if len(events) else m
        # Frames begun up to there need free slots; stop before the first that finds none.
        begun_rows = np.flatnonzero(begun[:taken])
        if len(begun_rows) > len(self._free):
            taken = int(begun_rows[len(self._free)])
            if taken == 0:
                return 0
            event = False
        else:
            event = bool(len(events)) and taken == int(events[0]) + 1
        # Apply rows 0..taken-1.
        self.late += int(np.count_nonzero(late[:taken]))
        in_run = p_rows < taken
        self.placed += int(np.count_nonzero(in_run))
        self.duplicate += int(np.count_nonzero(on_time < taken)) - int(np.count_nonzero(in_run))
        self._place_frames(data, rows, fids, index, stamps, p_rows[in_run], frames[p_which[in_run]])
        if event:
            self._advance(int(starts[taken - 1]))
        else:
            self._base = max(self._base, int(starts[taken - 1]))
        return taken

    def _place_frames(self, data, rows, fids, index, stamps, placed_rows, placed_frames) -> None:
        """Copy the placed rows' payloads into their frames, beginning frames as needed."""
        if not len(placed_rows):
            return
        order = np.argsort(placed_frames, kind="stable")
        by_frame = placed_frames[order]
        cuts = np.flatnonzero(by_frame[1:] != by_frame[:-1]) + 1
        groups = np.split(placed_rows[order], cuts)
        # Frames in order of their first row, so slots are taken as the C placement takes them.
        groups.sort(key=lambda g: int(g[0]))
        payload = slice(self._po, self._po + self._ps)
        for group in groups:  # a loop per frame
            fid = int(fids[group[0]])
            s = self._in_flight.get(fid)
            if s is None:
                s = self._free.pop()
                self._in_flight[fid] = s
                self._state[s] = _IN_FLIGHT
                self._frame_id[s] = fid
                self._count[s] = 0
                self._begun_ns[s] = self._now_ns
                self._present[s][:] = 0
                self._keep_source(s, int(rows[group[0]]))
            slots = index[group]
            self._data[s][slots] = data[rows[group], payload]
            self._present[s][slots] = 1
            if self._count[s] == 0:
                self._first_ts[s] = int(stamps[group[0]])
            self._last_ts[s] = int(stamps[group[-1]])
            self._count[s] += len(group)
