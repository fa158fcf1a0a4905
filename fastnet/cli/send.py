"""``fastnet send``: send numbered datagrams at a rate, or replay a capture.

The default payload is a 64-bit big-endian sequence number at offset 0 (so a
receiver can count gaps), the rest zero. ``--pps`` paces datagrams/s,
``--rate`` payload bits/s (K/M/G suffixes). ``--replay FILE`` sends a pcap or
.npy capture again at its recorded timing, ``--speed`` times faster, or as
fast as possible with ``--speed max``. Ctrl-C stops and prints the summary.
``--tcp`` connects and sends the same numbered payloads as length-prefixed
frames (fastnet/cli/_send_tcp.py).
"""

from __future__ import annotations

import json
import socket
import sys
import time

import numpy as np

from . import _args, _send_report
from ._args import (
    DEFAULT_COUNT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    UNSET,
    bit_rate,
    host_port,
    positive_float,
    positive_int,
)
from ._bind import bind_source

SEQUENCE_BYTES = 8
#: Largest UDP payload: 65535 minus the UDP header (8) and IPv4 header (20);
#: over IPv6 the 40-byte header is not counted in the payload length field.
MAX_PAYLOAD = {4: 65507, 6: 65527}
#: Rows handed to the Sender per call: about this long of traffic, so
#: --duration is checked often even at low rates.
CHUNK_WINDOW_S = 0.01


def _speed(text: str):
    if text.strip().lower() == "max":
        return None
    return positive_float(text)


def add_parser(subparsers) -> None:
    from ..engines import BACKENDS

    parser = subparsers.add_parser(
        "send",
        help="send numbered datagrams at a rate, or replay a capture",
        description="Send UDP datagrams holding a 64-bit big-endian sequence number (the rest "
        "zero) at a chosen rate, or send a pcap/.npy capture again.",
    )
    parser.add_argument(
        "address",
        nargs="?",
        type=host_port,
        default=(DEFAULT_HOST, DEFAULT_PORT),
        metavar="HOST:PORT",
        help=f"destination (default {DEFAULT_HOST}:{DEFAULT_PORT}; [ADDR]:PORT for IPv6)",
    )
    parser.add_argument(
        "--count",
        type=positive_int,
        metavar="N",
        help=f"datagrams to send (default {DEFAULT_COUNT}, or all of --replay, unless --duration)",
    )
    parser.add_argument(
        "--size", type=positive_int, metavar="S", help="payload bytes per datagram (default 64; at least 8)"
    )
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--pps", type=positive_float, metavar="N", help="datagrams per second")
    rate.add_argument(
        "--rate", type=bit_rate, metavar="BITS", help="payload bits per second, K/M/G suffixes (e.g. 400M)"
    )
    parser.add_argument("--duration", type=positive_float, metavar="S", help="stop after this many seconds")
    parser.add_argument(
        "--burst",
        type=positive_int,
        metavar="N",
        help="most datagrams per system call (default: 1 ms of traffic, <= 1024)",
    )
    parser.add_argument("--gso", action="store_true", help="send with UDP GSO where available")
    parser.add_argument("--backend", choices=sorted(BACKENDS), help="engine (default: fastnet.backend)")
    parser.add_argument(
        "--interface", metavar="IFACE", help="outgoing interface for a multicast HOST (name or address)"
    )
    parser.add_argument("--replay", metavar="FILE", help="send this pcap/.npy capture again")
    parser.add_argument(
        "--speed",
        type=_speed,
        default=UNSET,
        metavar="X|max",
        help="with --replay: X times the recorded pace, or max (default 1)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--frames",
        metavar="SPEC",
        help="send synthetic instrument frames laid out as this TOML/JSON FrameSpec",
    )
    parser.add_argument("--tcp", action="store_true", help="connect over TCP and send length-prefixed frames")
    _args.add_framing_arguments(parser, receiving=False)
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"fastnet send: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    from .. import Sender, load_frame_spec
    from ..capture.reader import CaptureError, read_capture

    if args.tcp:
        from ._send_tcp import run_tcp

        return run_tcp(args)
    framing = _args.framing_flags_given(args)
    if framing:
        return _fail(f"{', '.join(framing)} apply to --tcp only")
    host, port = args.address
    replaying = args.replay is not None
    if replaying and args.size is not None:
        return _fail("--size does not apply to --replay (the capture's payloads are sent)")
    if not replaying and args.speed is not UNSET:
        return _fail("--speed applies to --replay only")
    speed = 1.0 if args.speed is UNSET else args.speed
    size = 64 if args.size is None else args.size
    spec = None
    if args.frames is not None:
        from ._send_frames import send_frames_refusal

        problem = send_frames_refusal(args)
        if problem is not None:
            return _fail(problem)
        try:
            spec = load_frame_spec(args.frames)
        except (OSError, ValueError, TypeError, ImportError) as exc:
            return _fail(str(exc))
        size = spec.packet_size or spec.min_length
    if not replaying and spec is None and size < SEQUENCE_BYTES:
        return _fail(f"--size {size} is too small: at least {SEQUENCE_BYTES} bytes (the sequence number)")
    reader = sender = None
    try:
        if replaying:
            reader = read_capture(args.replay)
        sender = Sender(
            (host, port),
            pps=args.pps,
            bps=args.rate,
            burst=args.burst,
            gso=True if args.gso else None,
            backend=args.backend,
            interface=args.interface,
        )
        bind_source(sender.socket, sender.address, args.interface)  # never all interfaces
        version = 6 if sender.socket.family == socket.AF_INET6 else 4
        if not replaying and size > MAX_PAYLOAD[version]:
            raise ValueError(
                f"--size {size} is larger than a UDP datagram can be over "
                f"IPv{version} ({MAX_PAYLOAD[version]} bytes)"
            )
    except (ValueError, TypeError, OSError) as exc:
        for thing in (reader, sender):
            if thing is not None:
                thing.close()
        return _fail(str(exc))
    interrupted = False
    error = None
    try:
        with sender:
            try:
                if replaying:
                    sender.replay(reader, speed=speed, count=args.count, duration=args.duration)
                elif spec is not None:
                    from ._send_frames import send_synthetic_frames

                    send_synthetic_frames(sender, spec, args.count, args.duration)
                else:
                    count = args.count
                    if count is None and args.duration is None:
                        count = DEFAULT_COUNT
                    _send_numbered(sender, size, count, args.duration, args.pps, args.rate)
            except KeyboardInterrupt:
                interrupted = True
            except (OSError, CaptureError) as exc:
                error = exc
            stats = sender.stats
            backend = sender.socket.backend
    finally:
        if reader is not None:
            reader.close()
    _print_summary(args, speed, stats, backend, interrupted, error, reader)
    if error is not None:
        return 2 if isinstance(error, CaptureError) else 1
    return 130 if interrupted else 0


def _send_numbered(sender, size, count, duration, pps, bps) -> None:
    from .. import Batch

    rate = pps if pps is not None else (bps / (8 * size) if bps is not None else None)
    rows = 1024 if rate is None else int(min(1024, max(1, rate * CHUNK_WINDOW_S)))
    if count is not None:
        rows = min(rows, count)
    family = sender.socket.family
    batch = Batch(rows, size, family=family)
    batch.lengths[:] = size
    heads = batch.data[:, :SEQUENCE_BYTES]
    steps = np.arange(rows, dtype=np.uint64)
    numbers = np.empty(rows, dtype=">u8")
    end = None if duration is None else time.monotonic() + duration
    sent = 0
    while count is None or sent < count:
        if end is not None and time.monotonic() >= end:
            break
        n = rows if count is None else min(rows, count - sent)
        np.add(steps[:n], sent, out=numbers[:n], casting="unsafe")
        heads[:n] = numbers[:n, None].view(np.uint8)
        batch.count = n
        sender.send_batch(batch)
        sent += n


def _print_summary(args, speed, stats, backend, interrupted, error, reader) -> None:
    summary = _send_report.summary(args, stats, backend, interrupted, error, "udp")
    if reader is not None:
        summary.update(replay=args.replay, speed="max" if speed is None else speed, skipped=reader.skipped)
    if args.json:
        print(json.dumps(summary))
        return
    where = _send_report.where(*args.address)
    line = (
        f"sent {stats.sent} datagrams ({stats.bytes} payload bytes) to {where} in "
        f"{stats.elapsed:.3f} s: {stats.pps:,.0f} datagrams/s, "
        f"{stats.bps / 1e6:,.1f} Mbit/s payload [{backend}, {stats.calls} send calls]"
    )
    if reader is not None:
        line += f", replayed from {args.replay}"
        if reader.skipped:
            line += f" ({reader.skipped} non-UDP packets skipped)"
    if interrupted:
        line += " (interrupted)"
    print(line)
    _send_report.print_error(error)
