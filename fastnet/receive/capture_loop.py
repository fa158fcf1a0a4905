"""The Receiver's capture loop for the pure-Python engine: a ring of rows and its cursors.

Same contract as ``CaptureRing`` in src/_capture.pxi (the Cython engine's,
which runs without the GIL); the Receiver (fastnet/receive/receiver.py)
uses whichever its socket's engine has. This one is GIL-bound: the capture
thread is Python, so it reads only while the interpreter lets it run. A
consumer holding the GIL (pure-Python work) stops it; one that sleeps or
waits in a system call does not. It is the baseline the Cython loop is
measured against, and the loop where the extension is not built.

Cursors count rows since the start; row ``k`` lives at index
``(k - base) % rows``. ``freed <= taken <= produced <= freed + rows``: the
capture writes only rows ``produced .. freed + rows - 1``, so rows below
``produced`` stay as written until the consumer frees them (at its next
``take``). When the ring is empty and the consumer holds nothing, the
capture moves ``base`` to ``produced``: at low rates the first rows are used
again, and only as much memory is touched as the backlog needs.
"""

from __future__ import annotations

import select
import threading
import time

import numpy as np

from ..core.batch import Batch

__all__ = ["CaptureRing"]

#: How long the capture waits in one receive or one wait for room before it
#: looks at the stop flag again; ``take`` callers wait in slices this long.
SLICE_S = 0.1


class CaptureRing:
    """The ring of rows (``ring``, a Batch) and the capture loop over it.

    ``scratch``: a Batch of at least ``batch_size`` rows that datagrams are
    read into and discarded (``drop`` when the ring is full, and what is
    left at stop). ``max_delay_ns``: how long a partly filled hand-over may
    wait for more rows.
    """

    def __init__(self, ring: Batch, scratch: Batch, batch_size: int, drop: bool, max_delay_ns: int):
        if not 0 < batch_size <= min(ring.capacity, scratch.capacity):
            raise ValueError("batch_size must be 1 to the ring's and the scratch's rows")
        if ring.family != scratch.family:
            raise ValueError("the ring and the scratch must be of one address family")
        if max_delay_ns < 0:
            raise ValueError("max_delay_ns must be 0 or more")
        self._ring = ring
        self._nrows = ring.capacity
        self._batch = batch_size
        self._drop = bool(drop)
        self._max_delay_ns = int(max_delay_ns)
        # Datagrams are received into this staging batch, then copied into
        # the ring: its row views are made once, where a window on the ring
        # would make them on every receive.
        self._staging = Batch(batch_size, ring.slot_size, family=ring.family)
        self._staging_rows = self._staging._rows
        self._scratch = Batch._rows_of(scratch, 0, batch_size, scratch._rows)
        self._ready_ns = np.zeros(self._nrows, dtype=np.int64)
        self._cond = threading.Condition(threading.Lock())
        self._produced = self._taken = self._freed = self._base = 0
        self._stop_requested = self._finished = self._consumer_closed = False
        self._running = False
        self._packets = self._bytes = self._receives = self._truncated = 0
        self._overruns = self._overrun_receives = self._unread = 0

    # -- the capture thread ---------------------------------------------------
    def run(self, sock, waker_fd: int, unread_limit: int) -> None:
        """Capture until request_stop(), an error, or the socket's close; then sweep.

        ``waker_fd`` is unused here: ``sock.recv_batch`` itself ends with
        OSError(EBADF) when the socket is closed. Raises the error that
        ended the capture; call finish() after it, in any case.
        """
        del waker_fd
        if self._running:
            raise RuntimeError("this ring is already being captured into")
        self._running = True
        try:
            if self._loop(sock):
                self._sweep(sock)
                self._count_unread(sock, unread_limit)
        finally:
            self._running = False

    def _room(self):
        """Free contiguous rows to read into now, waiting for some (block); None once stopped."""
        with self._cond:
            while True:
                if self._stop_requested:
                    return None
                room = self._freed + self._nrows - self._produced
                if self._freed == self._produced:
                    self._base = self._produced
                if room > 0 or self._drop:
                    break
                self._cond.wait(SLICE_S)
        start = self._index(self._produced)
        return min(room, self._batch, self._nrows - start)

    def _loop(self, sock) -> bool:
        recv = sock.recv_batch
        while True:
            room = self._room()
            if room is None:
                return True
            if room:
                view = Batch._rows_of(self._staging, 0, room, self._staging_rows)
                try:
                    n = recv(view, timeout=SLICE_S)
                except TimeoutError:
                    continue
                self._publish(view, n)
            else:
                # Ring full: read only what is queued now, so that a datagram
                # that arrives once rows came free goes into the ring.
                try:
                    n = recv(self._scratch, timeout=0)
                except BlockingIOError:
                    self._wait_readable(sock)
                    continue
                # on_full="drop": read on and discard, tail drop as the kernel does.
                self._overruns += n
                self._overrun_receives += 1

    def _wait_readable(self, sock) -> None:
        """Wait up to a slice for a datagram, reading nothing (a closed socket returns at once)."""
        fd = sock.fileno()
        if fd < 0:
            return  # the next receive raises the socket's EBADF
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(SLICE_S * 1000)

    def _index(self, cursor: int) -> int:
        return (cursor - self._base) % self._nrows

    def _publish(self, view: Batch, n: int) -> None:
        """Copy ``n`` received rows into the ring at the producer cursor and publish them."""
        with self._cond:
            if self._freed == self._produced:  # emptied while the receive waited
                self._base = self._produced
        start = self._index(self._produced)
        end = start + n
        ring = self._ring
        ring._data[start:end] = view._data[:n]
        ring._lengths[start:end] = view._lengths[:n]
        ring._addresses[start:end] = view._addresses[:n]
        ring._ports[start:end] = view._ports[:n]
        ring._flowinfo[start:end] = view._flowinfo[:n]
        ring._scope_ids[start:end] = view._scope_ids[:n]
        ring._timestamps[start:end] = view._timestamps[:n]
        ring._truncated_u8[start:end] = view._truncated_u8[:n]
        self._ready_ns[start:end] = time.monotonic_ns()
        self._bytes += int(view._lengths[:n].sum())
        self._truncated += int(np.count_nonzero(view._truncated_u8[:n]))
        self._receives += 1
        with self._cond:
            waiting = self._produced - self._taken
            self._produced += n
            self._packets += n
            if waiting == 0 or waiting + n >= self._batch:
                self._cond.notify_all()

    def _sweep(self, sock) -> None:
        """At stop: move what is queued into the free rows, without waiting for the consumer."""
        for _ in range(self._nrows // self._batch + 2):  # bounded, even if rows keep coming free
            with self._cond:
                room = self._freed + self._nrows - self._produced
            if room <= 0:
                return
            start = self._index(self._produced)
            room = min(room, self._batch, self._nrows - start)
            view = Batch._rows_of(self._staging, 0, room, self._staging_rows)
            try:
                n = sock.recv_batch(view, timeout=0)
            except BlockingIOError:
                return
            self._publish(view, n)

    def _count_unread(self, sock, limit: int) -> None:
        """At stop: read off and count what is still queued."""
        total = 0
        while total < limit:
            try:
                n = sock.recv_batch(self._scratch, timeout=0)
            except (BlockingIOError, OSError):
                break
            total += n
        self._unread += total

    def request_stop(self) -> None:
        """Have the capture stop within about 0.1 s (any thread)."""
        with self._cond:
            self._stop_requested = True
            self._cond.notify_all()

    def finish(self) -> None:
        """The capture is over: take() ends once the ring is empty."""
        with self._cond:
            self._stop_requested = self._finished = True
            self._cond.notify_all()

    def close_consumer(self) -> None:
        """No more hand-overs: take() returns -1 from now on."""
        with self._cond:
            self._consumer_closed = self._stop_requested = True
            self._cond.notify_all()

    # -- the consumer ---------------------------------------------------------
    def _ready(self, now: int):
        """(rows to hand over now or -1 at the end, the time to look again or 0); lock held."""
        if self._consumer_closed:
            return -1, 0
        waiting = self._produced - self._taken
        if waiting == 0:
            return (-1 if self._finished else 0), 0
        start = self._index(self._taken)
        if waiting < self._batch and not (self._finished or self._stop_requested):
            due = int(self._ready_ns[start]) + self._max_delay_ns
            if now < due:
                return 0, due
        return min(waiting, self._batch, self._nrows - start), 0

    def _wait(self, wait: float, take: bool, flush: bool = False):
        now = time.monotonic_ns()
        # NaN and negatives: no wait; at most an hour in one call.
        end = now + (int(min(wait, 3600.0) * 1e9) if wait > 0 else 0)
        with self._cond:
            if take:
                self._freed = self._taken
                self._cond.notify_all()
            while True:
                n, wake_at = self._ready(now)
                if n != 0 or now >= end:
                    break
                until = end if wake_at == 0 or wake_at > end else wake_at
                self._cond.wait((until - now) / 1e9)
                now = time.monotonic_ns()
            start = self._index(self._taken)
            cursor = self._taken
            if n == 0 and flush and self._produced > self._taken:
                n = min(self._produced - self._taken, self._batch, self._nrows - start)
            if take and n > 0:
                self._taken += n
        return start, n, cursor

    def take(self, wait: float, flush: bool = False):
        """Free the last hand-over, then wait up to ``wait`` s for the next: ``(start, n, cursor)``.

        ``n`` rows from ring row ``start`` (contiguous, at most batch_size),
        the first of them row ``cursor`` counted since the start;
        0 if none came in time, -1 once the capture is over and every row
        was handed over (or close_consumer() was called). ``flush``: at the
        end of the wait, hand over the rows waiting, however few.
        """
        return self._wait(wait, True, flush)

    def wait_ready(self, wait: float) -> bool:
        """Wait up to ``wait`` s until take() would return rows (or the end) at once."""
        return self._wait(wait, False)[1] != 0

    @property
    def counts(self):
        """(packets, bytes, receives, truncated, overruns, overrun_receives, unread, delivered)."""
        with self._cond:
            taken = self._taken
        return (
            self._packets,
            self._bytes,
            self._receives,
            self._truncated,
            self._overruns,
            self._overrun_receives,
            self._unread,
            taken,
        )

    @property
    def position(self):
        """``(produced, base)``: rows published so far, and the cursor of ring row 0."""
        with self._cond:
            return self._produced, self._base
