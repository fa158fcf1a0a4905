"""Sender: send datagrams at a target rate, in datagrams/s or bits/s.

Rates are paced with token buckets (fastnet/send/pacing.py): the sender sleeps
until the next send is due and only polls the clock for the last 50 µs, so a
slow sender barely uses the CPU; a fast one sends ``burst`` datagrams per
system call (sendmmsg). ``bps`` counts bits of UDP payload, not of IP or
Ethernet framing: 1000 datagrams of 1000 bytes per second is 8 Mbit/s here.

The socket is non-blocking and the Sender waits for buffer space itself with
poll(2), so every datagram the kernel accepted is counted in ``stats`` even
when Ctrl-C interrupts a wait.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import math
import select
import socket as _stdsocket
import time

from ..core.addresses import resolve
from ..core.batch import Batch
from ..core.checks import positive_int
from ..core.multicast import prepare_multicast_sender
from ..core.socket import socket as _fastsocket
from ..errors import with_sent
from .pacing import TokenBucket, sleep_until

__all__ = ["Sender", "SenderStats"]

#: Datagrams per system call when not paced: sendmmsg's limit (UIO_MAXIOV).
MAX_BURST = 1024
#: A paced sender's default burst: what the rate sends in this long (1..MAX_BURST).
BURST_WINDOW_S = 0.001
#: Tokens a bucket may save up, in seconds of traffic (see fastnet/send/pacing.py).
DEPTH_WINDOW_S = 0.010
#: A socket that cannot take a datagram for this long is stuck: TimeoutError.
WRITABLE_TIMEOUT_S = 30.0

_monotonic_ns = time.monotonic_ns


@dataclasses.dataclass(frozen=True)
class SenderStats:
    """Datagrams ``sent`` and their payload ``bytes``; ``elapsed`` seconds from the
    first send call to the end of the last; ``pps`` and ``bps`` (payload bits/s)
    achieved over that time; ``calls``: send system calls (batches) made."""

    sent: int
    bytes: int
    elapsed: float
    pps: float
    bps: float
    calls: int


def _rate(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number greater than 0, got {value!r}")
    return float(value)


class Sender:
    """Send to one ``address`` at ``pps`` datagrams/s and/or ``bps`` payload bits/s.

    Without either, sends as fast as the socket takes datagrams. ``burst``:
    most datagrams per system call (default: 1 ms of traffic at the rate,
    1 to 1024; 1024 unpaced). ``gso``: passed to ``socket.send_batch``.
    ``backend``: the engine. ``interface``: outgoing interface for a
    multicast address (name, index or address; see prepare_multicast_sender).

    >>> with fastnet.Sender(("127.0.0.1", 7788), pps=1000) as tx:  # doctest: +SKIP
    ...     tx.send_batch(fastnet.Batch.from_payloads([b"x" * 64] * 1000))
    ...     print(tx.stats)
    """

    def __init__(self, address, *, pps=None, bps=None, burst=None, gso=None, backend=None, interface=None):
        self._pps = _rate(pps, "pps")
        self._bps = _rate(bps, "bps")
        self._burst = None if burst is None else positive_int(burst, "burst")
        family, self._address = resolve(address)
        sock = _fastsocket(family, _stdsocket.SOCK_DGRAM, backend=backend)
        try:
            self._send_options = {} if gso is None else {"gso": gso}
            if ipaddress.ip_address(self._address[0].split("%", 1)[0]).is_multicast:
                prepare_multicast_sender(sock, interface=interface)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLOUT)
        self._buckets = None  # made at the first send, when the sizes are known
        self._staging = None
        self._sent = 0
        self._bytes = 0
        self._calls = 0
        self._started_ns = None
        self._last_ns = None

    # -- properties ----------------------------------------------------------------
    @property
    def socket(self) -> _fastsocket:
        """The fastnet.socket used (bind it before the first send to choose the source)."""
        return self._sock

    @property
    def address(self):
        """The destination, resolved."""
        return self._address

    @property
    def burst(self):
        """Datagrams per system call (None until the first send decides a default)."""
        return self._burst

    @property
    def stats(self) -> SenderStats:
        """What was sent so far, and the rate over the time since the first datagram."""
        if self._started_ns is None:
            return SenderStats(0, 0, 0.0, 0.0, 0.0, 0)
        elapsed = (self._last_ns - self._started_ns) / 1e9
        pps = self._sent / elapsed if elapsed > 0 else 0.0
        bps = self._bytes * 8 / elapsed if elapsed > 0 else 0.0
        return SenderStats(self._sent, self._bytes, elapsed, pps, bps, self._calls)

    # -- pacing --------------------------------------------------------------------
    def _begin(self, mean_size: float) -> None:
        """At the first send: start the clock, choose the burst, make the buckets."""
        if self._started_ns is not None:
            return
        now = _monotonic_ns()
        self._started_ns = self._last_ns = now
        pps = self._pps
        if pps is None and self._bps is not None:
            pps = self._bps / (8 * max(mean_size, 1.0))
        if self._burst is None:
            self._burst = (
                MAX_BURST if pps is None else int(min(MAX_BURST, max(1, round(pps * BURST_WINDOW_S))))
            )
        buckets = []
        if self._pps is not None:
            depth = max(2 * self._burst, self._pps * DEPTH_WINDOW_S)
            buckets.append((False, TokenBucket(self._pps, depth, now)))
        if self._bps is not None:
            depth = max(2 * self._burst * 8 * max(mean_size, 1.0), self._bps * DEPTH_WINDOW_S)
            buckets.append((True, TokenBucket(self._bps, depth, now)))
        self._buckets = buckets

    def _chosen_burst(self) -> int:
        """``burst`` as ``_begin`` chose it; sending before ``_begin`` is a bug."""
        if self._burst is None:
            raise RuntimeError("Sender sent before _begin chose its burst")
        return self._burst

    def _pace(self, datagrams: int, nbytes: int) -> None:
        """Wait until ``datagrams`` of ``nbytes`` payload bytes may go, then pay for them."""
        if not self._buckets:
            return
        while True:
            now = _monotonic_ns()
            due = max(
                bucket.ready_at(nbytes * 8 if in_bits else datagrams, now)
                for in_bits, bucket in self._buckets
            )
            if due <= now:
                break
            sleep_until(due)
        for in_bits, bucket in self._buckets:
            bucket.take(nbytes * 8 if in_bits else datagrams, now)

    # -- sending -------------------------------------------------------------------
    def send(self, data) -> None:
        """Send one datagram (bytes-like), paced."""
        size = memoryview(data).nbytes
        self._begin(size)
        self._pace(1, size)
        deadline = None
        while True:
            try:
                self._sock.sendto(data, self._address)
                break
            except BlockingIOError:
                deadline = self._wait_writable(deadline)
        self._calls += 1  # one system call sent it, as stats.calls counts for batches
        self._account(1, size)

    def send_batch(self, batch: Batch) -> int:
        """Send rows ``0..batch.count-1``, paced, ``burst`` per system call; return how many.

        An OSError part way carries ``exc.sent`` (rows sent before it), as
        ``socket.send_batch`` does; ``stats`` counts them too.
        """
        if not isinstance(batch, Batch):
            raise TypeError(f"send_batch needs a fastnet.Batch, not {type(batch).__name__}")
        count = batch.count
        if not count:
            return 0
        self._begin(float(batch.lengths[:count].mean()))
        burst = self._chosen_burst()
        start = 0
        while start < count:
            stop = min(count, start + burst)
            self._send_rows(batch, start, stop, already=start)
            start = stop
        return count

    def _send_rows(self, batch, start, stop, already=0):
        """Pace and send rows start..stop-1 (at most ``burst``); errors carry ``exc.sent``."""
        lengths = batch.lengths[start:stop]
        self._pace(stop - start, int(lengths.sum()))
        deadline = None
        row = start
        try:
            while row < stop:
                sent = self._transmit(batch, row, stop)
                if sent:
                    self._account(sent, int(batch.lengths[row : row + sent].sum()))
                    row += sent
                    deadline = None
                else:
                    deadline = self._wait_writable(deadline)
        except OSError as exc:
            partial = getattr(exc, "sent", 0)  # rows that went out in the failed call
            if partial:
                self._account(partial, int(batch.lengths[row : row + partial].sum()))
            with_sent(exc, already + (row - start) + partial)
            raise

    def _transmit(self, batch, start, stop) -> int:
        """One non-blocking send_batch of rows start..stop-1; 0 if the buffer is full."""
        sock = self._sock
        if start == 0 and batch.family == sock.family:
            # Rows 0..stop-1 of the caller's batch: send them in place.
            count = batch.count
            batch.count = stop
            try:
                return self._send(batch)
            finally:
                batch.count = count
        staging = self._staging_for(batch, stop - start)
        rows = stop - start
        width = int(batch.lengths[start:stop].max())
        staging.data[:rows, :width] = batch.data[start:stop, :width]
        staging.lengths[:rows] = batch.lengths[start:stop]
        staging.count = rows
        return self._send(staging)

    def _send(self, batch) -> int:
        try:
            sent = self._sock.send_batch(batch, self._address, **self._send_options)
        except BlockingIOError:
            return 0
        self._calls += 1
        return sent

    def _staging_for(self, batch, rows):
        staging = self._staging
        if (
            staging is None
            or staging.capacity < rows
            or staging.slot_size < batch.slot_size
            or staging.family != self._sock.family
        ):
            staging = Batch(
                max(rows, min(self._chosen_burst(), MAX_BURST)), batch.slot_size, family=self._sock.family
            )
            self._staging = staging
        return staging

    def _wait_writable(self, deadline):
        """Wait (interruptibly) for room in the socket buffer; TimeoutError if stuck."""
        now = time.monotonic()
        if deadline is None:
            deadline = now + WRITABLE_TIMEOUT_S
        elif now >= deadline:
            raise TimeoutError(errno.ETIMEDOUT, f"socket not writable for {WRITABLE_TIMEOUT_S} s")
        self._poller.poll(max(1, int((deadline - now) * 1000)))
        return deadline

    def _account(self, datagrams: int, nbytes: int) -> None:
        self._sent += datagrams
        self._bytes += nbytes
        self._last_ns = _monotonic_ns()

    # -- replay and lifetime -------------------------------------------------------
    def replay(self, source, *, speed=1.0, count=None, duration=None) -> int:
        """Send a capture again: a path (pcap or .npy) or an iterable of Batches.

        Datagrams leave at their recorded timing (relative timestamps) divided
        by ``speed``; ``speed=None`` (or ``"max"``) sends as fast as the
        pacing allows. Stops after ``count`` datagrams or ``duration``
        seconds if given. Returns the number sent. See fastnet/send/replay.py.
        """
        from .replay import replay

        return replay(self, source, speed=speed, count=count, duration=duration)

    def close(self) -> None:
        """Close the socket (a ``with`` block does it); sending afterwards raises OSError."""
        self._sock.close()

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._sock.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        rate = ", ".join(
            f"{name}={value:g}" for name, value in (("pps", self._pps), ("bps", self._bps)) if value
        )
        return f"<fastnet.Sender to {self._address[:2]} {rate or 'unpaced'} sent={self._sent}>"
