"""The loop and the ending shared by ``fastnet recv``'s three ways of receiving.

One UDP Receiver, UDP fan-out over worker processes and TCP frames differ
only in how they take what arrived (``take``) and what their stats hold; the
deadline, the count, the live status line and the final report are here;
``run_receiver`` is the whole run of a started Receiver, with or without
frames.
"""

from __future__ import annotations

import sys
import time

from ._recv_report import Meter, StatusLine, json_report, summary

__all__ = ["Run", "receiver_stats", "run_receiver"]


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


def receiver_stats(rx) -> dict:
    """A Receiver's stats as the report's dict (with ``accounted``; frame counters None without frames)."""
    stats = rx.stats
    return dict(stats.as_dict(), accounted=stats.accounted)


def run_receiver(args, rx, take, banner: str, metrics, *, json_extra: dict, summary_extra: dict):
    """Run a started Receiver until done, close it and ``metrics``, print the report.

    ``take`` is as for ``Run.loop``; ``banner`` goes to stderr first. At the
    end the Receiver is stopped and what it had captured (or, with frames,
    assembled, and written to its frame file) is taken too. Returns
    ``(interrupted, error)``: whether Ctrl-C ended the run, and the error
    that ended it or that closing the Receiver (its recording) raised.
    """
    import fastnet

    run = Run(args, receiver_stats(rx))
    interrupted = False
    error = None
    try:
        print(banner, file=sys.stderr, flush=True)
        run.loop(take, lambda: receiver_stats(rx))
        rx.stop()  # a frame file is complete then: the rows left in the ring are assembled and written
        for _ in rx:  # what was captured (or assembled) before the stop is counted too
            run.meter.saw_batch()
    except KeyboardInterrupt:
        interrupted = True
    except fastnet.ReceiverStopped:
        pass
    except Exception as exc:  # noqa: BLE001 - reported by the caller in one line
        error = exc
    finally:
        try:
            rx.close()  # finishes the recording (after Ctrl-C too), if stop() did not
        except Exception as exc:  # noqa: BLE001 - a recording error: reported by the caller
            error = error or exc
        if metrics is not None:
            metrics.close()
    run.report(receiver_stats(rx), interrupted, json_extra=json_extra, summary_extra=summary_extra)
    return interrupted, error
