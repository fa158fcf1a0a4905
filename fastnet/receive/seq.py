"""Sequence numbers carried in each payload: where they are, and what their order says.

An instrument that numbers its datagrams lets the receiver count what went
missing on the way, independently of what the kernel says it dropped.
``SeqField`` names the counter; ``SeqTracker`` counts gaps, losses, late
arrivals and duplicates one whole Batch at a time with numpy (a loop per
batch, never a Python loop per datagram).

Semantics (exact; tests/test_seq.py checks them against a per-datagram model)
-------------------------------------------------------------------------------
Each counter value is "unwrapped" into an unbounded integer: the first value
seen becomes 0, and every later value is placed relative to the datagram that
arrived just before it, taking the difference modulo 2**(8*size) as the
signed number nearest to zero. So a 16-bit counter that wraps from 65535 to 0
simply continues, and a datagram a few numbers late lands just behind. (A
jump of half the counter's range or more cannot be told from a step back: a
16-bit counter cannot show more than 32767 datagrams lost in a row.)

With ``top`` the highest unwrapped number seen so far, each datagram is, in
this order of checks:

* **new highest** (number > top): if number > top + 1, that is one **gap**
  (``gaps += 1``) and the numbers skipped are **lost**
  (``lost += number - top - 1``).
* **too old** (number <= top - window): the tracker remembers the fate of
  only the last ``window`` numbers, so it cannot tell whether this one is a
  late arrival or a duplicate: it is counted as **reordered**, and ``lost``
  is left as it is.
* **duplicate**: a number already received is counted in ``duplicates``.
* **late** (a number below top not yet received): counted as **reordered**.
  If it was counted lost (it is above the first number seen), it is no
  longer: ``lost -= 1``. A number below the very first one seen was never
  counted lost, so only ``reordered`` grows.

So at any moment ``lost`` is the number of values between the first and the
highest seen that have not arrived (as far as the window reaches), ``gaps``
is how many jumps opened holes (filling a hole later does not reduce it), and
every datagram with a readable counter is exactly one of: in order, opening a
gap, reordered, or duplicate. Losses after the last datagram received cannot
be seen (nothing later shows them), nor can losses before the first.

Rows shorter than ``offset + size`` carry no counter: they are counted in
``short`` and otherwise ignored.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

from ..core.checks import positive_int

__all__ = ["SeqField", "SeqTracker", "DEFAULT_WINDOW"]

#: How many numbers below the highest the tracker remembers (received or not).
DEFAULT_WINDOW = 1 << 16

_MISSING, _RECEIVED, _UNTRACKED = 0, 1, 2


@dataclass(frozen=True)
class SeqField:
    """An unsigned counter of ``size`` bytes (2, 4 or 8) at ``offset`` in each payload.

    ``byteorder`` is ``"big"`` (network order, the default) or ``"little"``.
    The default, a 64-bit big-endian counter at offset 0, is what
    ``fastnet send`` writes.
    """

    offset: int = 0
    size: int = 8
    byteorder: str = "big"

    def __post_init__(self):
        for name in ("offset", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"SeqField {name} must be an int, not {type(value).__name__}")
        if self.offset < 0:
            raise ValueError(f"SeqField offset must be 0 or more, got {self.offset}")
        if self.size not in (2, 4, 8):
            raise ValueError(f"SeqField size must be 2, 4 or 8 bytes, got {self.size}")
        if self.byteorder not in ("big", "little"):
            raise ValueError(f"SeqField byteorder must be 'big' or 'little', got {self.byteorder!r}")

    @property
    def end(self) -> int:
        """First byte after the field: a payload needs at least this many bytes."""
        return self.offset + self.size

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(("<" if self.byteorder == "little" else ">") + f"u{self.size}")

    def values(self, batch, count: int | None = None):
        """``(values, readable)`` for rows ``0..count-1`` (default ``batch.count``).

        ``values`` is ``uint64`` holding the counter of each row long enough
        to carry it; ``readable`` is the boolean mask of those rows.
        """
        if count is None:
            n = batch.count
        else:
            if isinstance(count, bool):
                raise TypeError("count must be an integer, not bool")
            n = operator.index(count)
            if not 0 <= n <= batch.capacity:
                raise ValueError(
                    f"count must be between 0 and the batch's capacity ({batch.capacity}), got {n}"
                )
        if self.end > batch.slot_size:
            raise ValueError(f"{self} does not fit in slot_size {batch.slot_size}")
        readable = batch.lengths[:n] >= self.end
        # A strided [n, size] view made contiguous: one copy of n*size bytes.
        field = np.ascontiguousarray(batch.data[:n, self.offset : self.end])
        values = field.view(self.dtype).reshape(n).astype(np.uint64)
        return values[readable], readable


class SeqTracker:
    """Counts gaps, lost, reordered and duplicate datagrams by a SeqField (see module doc).

    Feed it every batch in arrival order with :meth:`update`; read the
    counters as attributes. Not thread-safe: one feeding thread.
    """

    def __init__(self, field: SeqField, window: int = DEFAULT_WINDOW):
        if not isinstance(field, SeqField):
            raise TypeError(f"field must be a fastnet.SeqField, not {type(field).__name__}")
        window = positive_int(window, "window")
        self.field = field
        self.window = window
        bits = 8 * field.size
        # Shifting the difference into the top bits and back (arithmetic
        # shift) turns "difference modulo 2**bits" into the nearest signed value.
        self._shift = np.uint64(64 - bits)
        self._mask = np.uint64((1 << bits) - 1)
        # Fate of numbers top-window+1 .. top, at index number % window.
        self._state = np.full(window, _UNTRACKED, dtype=np.uint8)
        self._started = False
        self._last_raw = np.uint64(0)  # counter value of the last arrival
        self._last = 0  # its unwrapped number
        self._top = -1  # highest unwrapped number seen
        self.gaps = 0
        self.lost = 0
        self.reordered = 0
        self.duplicates = 0
        self.short = 0

    # -- unwrapping ---------------------------------------------------------
    def _unwrap(self, raw: np.ndarray) -> np.ndarray:
        """Unwrapped int64 numbers for ``raw`` (uint64 counter values, arrival order)."""
        if not self._started:
            self._started = True
            self._last_raw = raw[0]
        previous = np.empty_like(raw)
        previous[0] = self._last_raw
        previous[1:] = raw[:-1]
        with np.errstate(over="ignore"):
            step = ((raw - previous) << self._shift).view(np.int64) >> self._shift.astype(np.int64)
        numbers = np.cumsum(step) + self._last
        self._last_raw = raw[-1]
        self._last = int(numbers[-1])
        return numbers

    # -- the per-batch update -----------------------------------------------
    def update(self, batch, count: int | None = None) -> None:
        """Count rows ``0..count-1`` of ``batch`` (default ``batch.count``)."""
        raw, readable = self.field.values(batch, count)
        self.short += int(readable.size - raw.size)
        if raw.size:
            self._classify(self._unwrap(raw))

    def _classify(self, u: np.ndarray) -> None:
        n = u.size
        top = self._top
        window = self.window
        # Highest number seen before each arrival.
        before = np.empty(n, dtype=np.int64)
        before[0] = top
        if n > 1:
            np.maximum.accumulate(u[:-1], out=before[1:])
            np.maximum(before[1:], top, out=before[1:])
        new_top = max(top, int(u.max()))

        is_high = u > before
        jumps = u[is_high] - before[is_high] - 1
        self.gaps += int(np.count_nonzero(jumps))
        self.lost += int(jumps.sum())

        late = ~is_high
        too_old = late & (u <= before - window)
        remembered = late & ~too_old
        # An earlier arrival of the same number in this batch makes this one a duplicate.
        order = np.argsort(u, kind="stable")
        sorted_u = u[order]
        repeat_sorted = np.zeros(n, dtype=bool)
        repeat_sorted[1:] = sorted_u[1:] == sorted_u[:-1]
        repeat = np.empty(n, dtype=bool)
        repeat[order] = repeat_sorted
        duplicate = remembered & repeat
        first_time = remembered & ~repeat
        # First time in this batch, below the highest: above the old top it is
        # a hole this batch opened; at or below it, the remembered state says.
        opened_here = first_time & (u > top)
        looked_up = first_time & (u <= top)
        state = self._state[u[looked_up] % window]
        self.duplicates += int(np.count_nonzero(duplicate)) + int(np.count_nonzero(state == _RECEIVED))
        filled = int(np.count_nonzero(opened_here)) + int(np.count_nonzero(state == _MISSING))
        self.lost -= filled
        self.reordered += filled + int(np.count_nonzero(state == _UNTRACKED)) + int(np.count_nonzero(too_old))

        # Remember: numbers newly below the top start missing, arrivals are received.
        self._fill_range(top + 1, new_top + 1, _MISSING)
        keep = u[u > new_top - window]
        self._state[keep % window] = _RECEIVED
        self._top = new_top

    def _fill_range(self, start: int, stop: int, value: int) -> None:
        """Set the state of numbers ``start..stop-1`` (only the last ``window`` matter)."""
        start = max(start, stop - self.window)
        if start >= stop:
            return
        window = self.window
        first, last = start % window, (stop - 1) % window
        if first <= last:
            self._state[first : last + 1] = value
        else:
            self._state[first:] = value
            self._state[: last + 1] = value
