"""What ``fastnet recv`` shows: the live status line, the summary, the JSON report.

Shared by its three ways of receiving (one UDP Receiver, UDP fan-out over
worker processes, TCP frames). Stats are plain dicts with the keys of
``fastnet.ReceiverStats`` (those that apply); ``unit`` names what was
counted: datagrams, or frames on TCP.
"""

from __future__ import annotations

import json
import sys
import time

from ..receive.diagnosis import diagnose, hints

STATUS_INTERVAL = 0.5  # seconds between status line updates


def fail(message: str, status: int) -> int:
    print(f"fastnet recv: error: {message}", file=sys.stderr)
    return status


def where(address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Meter:
    """Rates over the time data was arriving (first batch to last)."""

    def __init__(self):
        self.started = time.monotonic()
        self.first = self.last = None

    def saw_batch(self, at=None) -> None:
        self.last = time.monotonic() if at is None else at
        if self.first is None:
            self.first = self.last

    def active_seconds(self) -> float:
        if self.first is None or self.last <= self.first:
            return time.monotonic() - self.started
        return self.last - self.first


class StatusLine:
    """The self-overwriting line on stderr, only when stderr is a terminal."""

    def __init__(self, stats: dict, unit: str = "datagrams"):
        self.unit = unit
        self.live = sys.stderr.isatty()
        self.previous = stats
        self.previous_at = time.monotonic()
        self.due = self.previous_at + STATUS_INTERVAL

    def update(self, read_stats) -> None:
        """If the interval has passed: show ``read_stats()`` against the last ones."""
        now = time.monotonic()
        if now < self.due:
            return
        stats = read_stats()
        if self.live:
            sys.stderr.write("\r" + self._line(stats, now - self.previous_at) + "\x1b[K")
            sys.stderr.flush()
        self.previous, self.previous_at, self.due = stats, now, now + STATUS_INTERVAL

    def _line(self, stats: dict, interval: float) -> str:
        packets = stats["packets"] - self.previous["packets"]
        line = f"{packets / interval:12,.0f} {self.unit}/s"
        if "bytes" in stats:
            bits = 8 * (stats["bytes"] - self.previous["bytes"])
            line += f" {bits / interval / 1e9:7.3f} Gbit/s"
        line += f"  total {stats['packets']:,}"
        if "kernel_drops" in stats:
            line += f"  dropped: kernel {stats['kernel_drops']:,} ring {stats['ring_overruns']:,}"
        if stats.get("seq_gaps") is not None:
            line += f"  seq gaps {stats['seq_gaps']:,} lost {stats['seq_lost']:,}"
        if stats.get("frames_complete") is not None:
            line += "  frames/s: " + " ".join(
                f"{kind} {(stats[f'frames_{kind}'] - self.previous[f'frames_{kind}']) / interval:,.1f}"
                for kind in ("complete", "incomplete", "missing")
            )
        found = hints(stats, self.previous)
        if found:
            line += "  <- " + "; ".join(found)
        return line

    def end(self) -> None:
        if self.live:
            sys.stderr.write("\n")


def rates(stats: dict, seconds: float) -> tuple:
    """(packets per second, payload Gbit/s)."""
    if seconds <= 0:
        return 0.0, 0.0
    return stats["packets"] / seconds, 8 * stats["bytes"] / seconds / 1e9


def summary(
    stats: dict, seconds: float, interrupted: bool, *, unit="datagrams", out=None, workers=None
) -> str:
    """The summary lines; each part only where its counters are present."""
    rate, gbits = rates(stats, seconds)
    lines = [
        f"received {stats['packets']:,} {unit} ({stats['bytes']:,} bytes in "
        f"{stats['batches']:,} batches) in {seconds:.3f} s: {rate:,.0f} {unit}/s, "
        f"{gbits:.3f} Gbit/s" + ("  [interrupted]" if interrupted else ""),
    ]
    if "kernel_drops" in stats:
        lines.append(
            f"dropped: kernel {stats['kernel_drops']:,}, ring overruns "
            f"{stats['ring_overruns']:,} ({stats['ring_overrun_batches']:,} batches), unread at "
            f"stop {stats['unread']:,}; accounted for {stats['accounted']:,}"
        )
    lines.append(f"truncated: {stats['truncated']:,}")
    if workers is not None:
        lines.append(
            f"per worker ({len(workers)}): " + ", ".join("failed" if n is None else f"{n:,}" for n in workers)
        )
    if stats.get("seq_gaps") is not None:
        lines.append(
            f"seq: lost {stats['seq_lost']:,} in {stats['seq_gaps']:,} gaps, reordered "
            f"{stats['seq_reordered']:,}, duplicates {stats['seq_duplicates']:,}, "
            f"too short {stats['seq_short']:,}"
        )
    if stats.get("frames_complete") is not None:
        lines.append(
            f"frames: complete {stats['frames_complete']:,}, incomplete {stats['frames_incomplete']:,}, "
            f"missing {stats['frames_missing']:,}; packets placed {stats['packets_placed']:,}, late "
            f"{stats['packets_late']:,}, duplicate {stats['packets_duplicate']:,}, rejected "
            f"{stats['packets_rejected']:,}"
        )
    if stats.get("frames_written") is not None:
        lines.append(f"frames written {stats['frames_written']:,}; not written {stats['frames_dropped']:,}")
    if stats.get("recorded") is not None:
        lines.append(
            f"recorded {stats['recorded']:,} {unit} to {out}; capture dropped {stats['capture_dropped']:,}"
        )
    if "kernel_drops" in stats:  # a UDP receiver: say why anything was lost, and what to change
        lines += [f"why: {sentence}" for sentence in diagnose(stats, cli=True)]
    return "\n".join(lines)


def json_report(stats: dict, seconds: float, interrupted: bool, *, unit="datagrams", **extra) -> str:
    """The final stats as one JSON object, with the rates and ``extra`` keys."""
    rate, gbits = rates(stats, seconds)
    report = dict(stats, seconds=round(seconds, 6), gbit_per_s=gbits, interrupted=interrupted)
    report[f"{unit}_per_s"] = rate
    if "kernel_drops" in stats:
        report["diagnosis"] = diagnose(stats, cli=True)
    report.update(extra)
    return json.dumps(report)
