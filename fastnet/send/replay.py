"""Sending a capture again, at its recorded timing or faster.

Each datagram is due at ``start + (timestamp - first timestamp) / speed``.
Due times are made non-decreasing (a running maximum), so a file whose
timestamps step backwards sends the late-stamped datagram right after its
predecessor instead of early. All datagrams already due go out together, up
to the sender's ``burst`` per system call; the sender's own pacing (pps/bps),
if any, applies on top as a ceiling.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from ..errors import with_sent
from .pacing import sleep_until

__all__ = ["replay", "check_speed"]


def check_speed(speed):
    """None for "as fast as possible" (None, "max", inf), else a positive float."""
    if speed is None or speed == "max":
        return None
    if isinstance(speed, bool) or not isinstance(speed, (int, float)):
        raise TypeError(f"speed must be a number or 'max', not {speed!r}")
    if math.isnan(speed) or speed <= 0:
        raise ValueError(f"speed must be greater than 0, got {speed!r}")
    return None if math.isinf(speed) else float(speed)


def _batches(source):
    if isinstance(source, (str, bytes, os.PathLike)):
        from ..capture.reader import read_capture

        return read_capture(source)
    return source


def replay(sender, source, *, speed=1.0, count=None, duration=None) -> int:
    """Send ``source`` (path or Batches) through ``sender``; return datagrams sent."""
    speed = check_speed(speed)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError(f"count must be a whole number of 0 or more, got {count!r}")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0
    ):
        raise ValueError(f"duration must be a number greater than 0, got {duration!r}")
    batches = _batches(source)
    start_ns = time.monotonic_ns()
    end_ns = None if duration is None else start_ns + int(duration * 1e9)
    first_stamp = None
    floor = start_ns  # running maximum of due times
    sent = 0
    for batch in batches:
        n = batch.count
        if count is not None:
            n = min(n, count - sent)
        if n <= 0:
            break
        sender._begin(float(batch.lengths[:n].mean()))
        if speed is None:
            due = np.full(n, start_ns, dtype=np.int64)
        else:
            stamps = batch.timestamps[:n]
            if first_stamp is None:
                first_stamp = int(stamps[0])
            offsets = (stamps - first_stamp).astype(np.float64) / speed
            due = np.maximum.accumulate(np.maximum(start_ns + offsets.astype(np.int64), floor))
            floor = int(due[-1])
        row = 0
        while row < n:
            now = time.monotonic_ns()
            if end_ns is not None and now >= end_ns:
                return sent
            if due[row] > now:
                wake = int(due[row]) if end_ns is None else min(int(due[row]), end_ns)
                sleep_until(wake)
                continue
            ready = int(np.searchsorted(due, now, side="right"))
            stop = min(n, ready, row + sender.burst)
            try:
                sender._send_rows(batch, row, stop)
            except OSError as exc:
                with_sent(exc, sent + getattr(exc, "sent", 0))
                raise
            sent += stop - row
            row = stop
        if count is not None and sent >= count:
            break
    return sent
