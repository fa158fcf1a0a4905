"""``fastnet recv HOST:PORT``: receive with a Receiver, show rates and losses, summarize.

On a terminal a status line (datagrams/s, Gbit/s, drops, sequence gaps) is
refreshed about twice a second on stderr. At the end (``--count``,
``--duration``, or Ctrl-C) the receiver stops, the batches it had already
captured are taken too, and a summary goes to stdout (``--json``: the final
stats as one JSON object). Exit status: 0, or 130 after Ctrl-C (the summary
is still printed), 1 if receiving failed, 2 for bad arguments or an address
that cannot be bound.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

from . import _args
from ._bind import notice_if_wildcard

DESCRIPTION = __doc__.split("\n\n")[0]
STATUS_INTERVAL = 0.5  # seconds between status line updates


def byte_size(text: str) -> int:
    """A byte count: ``4194304``, ``4M``, ``512K``, ``1G`` (powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    stripped = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = units.get(stripped[-1:], 1)
    if scale != 1:
        stripped = stripped[:-1]
    return _args.positive_int(stripped) * scale if stripped else _args.positive_int(text)


def add_parser(subparsers) -> None:
    from .._backend import BACKENDS
    parser = subparsers.add_parser(
        "recv", help="receive datagrams and count every loss", description=DESCRIPTION)
    parser.add_argument("address", type=_args.host_port, metavar="HOST:PORT",
                        help="address to bind: HOST:PORT, [IPv6]:PORT, or PORT alone for "
                             "loopback (port 0: any free port, printed at start)")
    parser.add_argument("--count", type=_args.positive_int, metavar="N",
                        help="stop after at least N datagrams")
    parser.add_argument("--duration", type=_args.positive_float, metavar="S",
                        help="stop after S seconds")
    parser.add_argument("--json", action="store_true", help="print the final stats as JSON")
    parser.add_argument("--seq", action="store_true",
                        help="track the 64-bit big-endian counter at offset 0 that "
                             "'fastnet send' writes: gaps, lost, reordered, duplicates")
    parser.add_argument("--slot-size", type=_args.positive_int, default=9000, metavar="BYTES",
                        help="bytes per datagram; longer ones are cut and counted (default 9000)")
    parser.add_argument("--batch-size", type=_args.positive_int, default=1024, metavar="N",
                        help="datagrams per batch (default 1024)")
    parser.add_argument("--ring-size", type=_args.positive_int, default=64, metavar="N",
                        help="batches in the ring (default 64)")
    parser.add_argument("--rcvbuf", type=byte_size, metavar="BYTES",
                        help="socket receive buffer to ask for, e.g. 64M")
    parser.add_argument("--on-full", choices=("block", "drop"), default="block",
                        help="when the ring is full: stop reading (the kernel queues, then "
                             "drops) or read and discard (counted as ring overruns)")
    parser.add_argument("--backend", choices=tuple(BACKENDS),
                        help="engine (default: fastnet.backend)")
    parser.set_defaults(func=run)


def _fail(message: str, status: int) -> int:
    print(f"fastnet recv: error: {message}", file=sys.stderr)
    return status


def _open(args):
    import fastnet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", fastnet.BufferSizeWarning)
        rx = fastnet.Receiver(
            args.address, slot_size=args.slot_size, batch_size=args.batch_size,
            ring_size=args.ring_size, rcvbuf=args.rcvbuf, on_full=args.on_full,
            seq=fastnet.SeqField() if args.seq else None, backend=args.backend)
    for warning in caught:
        print(f"fastnet recv: warning: {warning.message}", file=sys.stderr)
    return rx


class _Meter:
    """Rates over the time datagrams were arriving (first batch to last)."""

    def __init__(self):
        self.started = time.monotonic()
        self.first = self.last = None

    def saw_batch(self) -> None:
        self.last = time.monotonic()
        if self.first is None:
            self.first = self.last

    def active_seconds(self) -> float:
        if self.first is None or self.last <= self.first:
            return time.monotonic() - self.started
        return self.last - self.first


def _status_line(stats, previous, interval: float) -> str:
    packets = stats.packets - previous.packets
    bits = 8 * (stats.bytes - previous.bytes)
    line = (f"{packets / interval:12,.0f} datagrams/s {bits / interval / 1e9:7.3f} Gbit/s  "
            f"total {stats.packets:,}  dropped: kernel {stats.kernel_drops:,} "
            f"ring {stats.ring_overruns:,}")
    if stats.seq_gaps is not None:
        line += f"  seq gaps {stats.seq_gaps:,} lost {stats.seq_lost:,}"
    return line


def _summary(stats, seconds: float, interrupted: bool) -> str:
    rate = stats.packets / seconds if seconds > 0 else 0.0
    gbits = 8 * stats.bytes / seconds / 1e9 if seconds > 0 else 0.0
    lines = [
        f"received {stats.packets:,} datagrams ({stats.bytes:,} bytes in {stats.batches:,} "
        f"batches) in {seconds:.3f} s: {rate:,.0f} datagrams/s, {gbits:.3f} Gbit/s"
        + ("  [interrupted]" if interrupted else ""),
        f"dropped: kernel {stats.kernel_drops:,}, ring overruns {stats.ring_overruns:,} "
        f"({stats.ring_overrun_batches:,} batches), unread at stop {stats.unread:,}; "
        f"accounted for {stats.accounted:,}",
        f"truncated: {stats.truncated:,}",
    ]
    if stats.seq_gaps is not None:
        lines.append(f"seq: lost {stats.seq_lost:,} in {stats.seq_gaps:,} gaps, reordered "
                     f"{stats.seq_reordered:,}, duplicates {stats.seq_duplicates:,}, "
                     f"too short {stats.seq_short:,}")
    return "\n".join(lines)


def run(args) -> int:
    import fastnet
    try:
        rx = _open(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        host, port = args.address
        return _fail(f"cannot receive on {host}:{port}: {exc}", 2)
    notice_if_wildcard("recv", rx.address)
    live = sys.stderr.isatty()
    meter = _Meter()
    interrupted = False
    error = None
    with rx:
        print(f"receiving on {rx.address[0]}:{rx.address[1]} ({rx.backend} engine)",
              file=sys.stderr, flush=True)
        deadline = None if args.duration is None else meter.started + args.duration
        previous, previous_at = rx.stats, time.monotonic()
        next_status = previous_at + STATUS_INTERVAL
        delivered = 0
        try:
            while args.count is None or delivered < args.count:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                wait = next_status - now
                if deadline is not None:
                    wait = min(wait, deadline - now)
                try:
                    batch = rx.get(timeout=max(0.0, wait))
                except TimeoutError:
                    pass
                else:
                    delivered += batch.count
                    meter.saw_batch()
                if time.monotonic() >= next_status:
                    stats, at = rx.stats, time.monotonic()
                    if live:
                        sys.stderr.write("\r" + _status_line(stats, previous, at - previous_at)
                                         + "\x1b[K")
                        sys.stderr.flush()
                    previous, previous_at, next_status = stats, at, at + STATUS_INTERVAL
            rx.stop()
            for batch in rx:   # what was captured before the stop is counted too
                meter.saw_batch()
        except KeyboardInterrupt:
            interrupted = True
        except fastnet.ReceiverStopped:
            pass
        except Exception as exc:  # noqa: BLE001 - reported in one line below
            error = exc
    if live:
        sys.stderr.write("\n")
    stats = rx.stats
    seconds = meter.active_seconds()
    if args.json:
        report = dict(stats.as_dict(), accounted=stats.accounted, address=list(rx.address),
                      backend=rx.backend, seconds=round(seconds, 6),
                      datagrams_per_s=stats.packets / seconds if seconds > 0 else 0.0,
                      gbit_per_s=8 * stats.bytes / seconds / 1e9 if seconds > 0 else 0.0,
                      interrupted=interrupted)
        print(json.dumps(report))
    else:
        print(_summary(stats, seconds, interrupted))
    if error is not None:
        return _fail(f"receiving failed: {error}", 1)
    return 130 if interrupted else 0
