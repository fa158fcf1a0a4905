"""The loop and the ending shared by ``fastnet recv``'s three ways of receiving.

One UDP Receiver, UDP fan-out over worker processes and TCP frames differ
only in how they take what arrived (``take``) and what their stats hold; the
deadline, the count, the live status line and the final report are here.
"""

from __future__ import annotations

import time

from ._recv_report import Meter, StatusLine, json_report, summary

__all__ = ["Run"]


class Run:
    """One run of ``fastnet recv``: until ``--count`` items, ``--duration``, or the source ends."""

    def __init__(self, args, first_stats: dict, unit: str = "datagrams"):
        self.args = args
        self.unit = unit
        self.meter = Meter()
        self.deadline = None if args.duration is None else self.meter.started + args.duration
        self.status = StatusLine(first_stats, unit=unit)

    def remaining(self):
        """Seconds until the deadline (None without --duration)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def loop(self, take, read_stats) -> int:
        """Call ``take(wait)`` until done; return the number of items taken.

        ``take`` waits at most ``wait`` seconds and returns the number of
        items that arrived, None if none did in that time, or 0 once the
        source has ended (the peer closed, the workers stopped). The status
        line is refreshed from ``read_stats()`` as its interval passes.
        """
        count = self.args.count
        taken = 0
        while count is None or taken < count:
            now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                break
            wait = self.status.due - now
            if self.deadline is not None:
                wait = min(wait, self.deadline - now)
            n = take(max(0.0, wait))
            if n == 0:
                break
            if n:
                taken += n
                self.meter.saw_batch()
            self.status.update(read_stats)
        return taken

    def report(self, stats: dict, interrupted: bool, *, json_extra: dict, summary_extra: dict) -> None:
        """End the status line and print the summary, or the JSON report with ``--json``."""
        self.status.end()
        seconds = self.meter.active_seconds()
        if self.args.json:
            print(json_report(stats, seconds, interrupted, unit=self.unit, **json_extra))
        else:
            print(summary(stats, seconds, interrupted, unit=self.unit, **summary_extra))
