"""Holding a rate: a token bucket and a sleep that wakes on time.

The bucket counts in units (datagrams, or bits): ``rate`` units accrue per
second, up to ``depth``. Sending ``cost`` units waits until the bucket holds
``min(cost, depth)``, then takes ``cost`` (the balance may go negative, so a
send larger than the bucket is paid for by waiting longer afterwards). It
starts empty: the first send waits for its own tokens, so ``sent / elapsed``
measured from the first call is the rate itself, not the rate plus a free
initial burst.

``depth`` is more than one send's worth so that a late wake-up (sleep(3)
overshoots by the kernel's timer slack, 50 µs by default, more on a busy
machine) is made up by the next sends instead of being lost: the long-run
average holds even when individual waits are late.
"""

from __future__ import annotations

import time

__all__ = ["TokenBucket", "sleep_until", "SPIN_NS", "MAX_SLEEP_S"]

#: Sleep until this close to a deadline, then poll the clock. Short enough
#: that a sender at a low rate barely uses the CPU, long enough to absorb the
#: usual oversleep of a timed sleep.
SPIN_NS = 50_000
#: Longest single sleep: a very slow rate waits in slices, since time.sleep
#: refuses a wait beyond what its clock can count (OverflowError).
MAX_SLEEP_S = 1.0

_monotonic_ns = time.monotonic_ns
_sleep = time.sleep


def sleep_until(deadline_ns: int) -> None:
    """Return at ``deadline_ns`` (time.monotonic_ns), sleeping most of the wait.

    Ctrl-C interrupts the sleep (time.sleep raises KeyboardInterrupt).
    """
    while True:
        remaining = deadline_ns - _monotonic_ns()
        if remaining <= 0:
            return
        if remaining > SPIN_NS:
            _sleep(min((remaining - SPIN_NS) / 1e9, MAX_SLEEP_S))
        # else: poll the clock for the last few tens of microseconds


class TokenBucket:
    """``rate`` units per second, at most ``depth`` saved up (see module docs)."""

    __slots__ = ("rate", "depth", "tokens", "stamp", "_per_ns")

    def __init__(self, rate: float, depth: float, now_ns: int):
        if not rate > 0 or not depth > 0:
            raise ValueError("rate and depth must be greater than 0")
        self.rate = float(rate)
        self.depth = float(depth)
        self.tokens = 0.0
        self.stamp = now_ns
        self._per_ns = self.rate / 1e9

    def ready_at(self, cost: float, now_ns: int) -> int:
        """The monotonic_ns time at which ``cost`` units may be sent (<= now if at once)."""
        tokens = min(self.depth, self.tokens + (now_ns - self.stamp) * self._per_ns)
        self.tokens, self.stamp = tokens, now_ns
        need = min(cost, self.depth)
        if tokens >= need:
            return now_ns
        return now_ns + int((need - tokens) / self._per_ns) + 1

    def take(self, cost: float, now_ns: int) -> None:
        """Pay for ``cost`` units sent at ``now_ns``."""
        self.tokens = min(self.depth, self.tokens + (now_ns - self.stamp) * self._per_ns) - cost
        self.stamp = now_ns
