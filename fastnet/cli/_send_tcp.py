"""``fastnet send --tcp HOST:PORT``: numbered payloads as length-prefixed frames.

One connection (``create_connection``), the framing from the flags, then
``send_frames`` of batches of frames (each payload begins with the 64-bit
big-endian sequence number, as over UDP) until ``--count`` frames or
``--duration`` seconds, paced by ``--pps``/``--rate`` if given. Then the
held rest of a partly written frame is flushed, the sending side shut down
(``SHUT_WR``: the receiver's ``recv_frames`` returns 0, a clean end) and the
socket closed.

The socket is non-blocking and this module waits for room itself (poll(2)),
so every frame the kernel took is counted even when Ctrl-C interrupts a
wait; after Ctrl-C the partly written frame is still completed, so the
receiver never sees a cut frame.
"""

from __future__ import annotations

import contextlib
import json
import select
import signal
import socket as _stdsocket
import sys
import threading
import time

import numpy as np

from . import _args, _send_report
from ._args import DEFAULT_COUNT, UNSET

#: Frames handed to send_frames per call: about this long of traffic when
#: paced (so --duration is checked often), at most MAX_ROWS.
CHUNK_WINDOW_S = 0.01
MAX_ROWS = 1024
#: Tokens the pacing bucket may save up, in seconds of traffic.
DEPTH_WINDOW_S = 0.010
CONNECT_TIMEOUT_S = 10.0
#: A receiver that takes nothing for this long: give up (TimeoutError).
STALL_TIMEOUT_S = 30.0
#: After Ctrl-C, how long to try to finish the frame in progress.
FINISH_TIMEOUT_S = 5.0
_POLL_SLICE_MS = 200


def _fail(message: str, status: int) -> int:
    print(f"fastnet send: error: {message}", file=sys.stderr)
    return status


def _wait_writable(sock, limit_s: float) -> None:
    """Wait until ``sock`` can take data (or has an error to report); Ctrl-C interrupts."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    deadline = time.monotonic() + limit_s
    while not poller.poll(_POLL_SLICE_MS):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the receiver took nothing for {limit_s:g} s")


class _HeldInterrupt:
    """Ctrl-C (or SIGTERM) during a frame write is held until the write is counted.

    A KeyboardInterrupt raised by the signal handler can land between
    ``send_frames`` returning and its count being added: frames on the wire
    that the summary would not count. While ``counting()`` is entered the
    handler only notes the signal; it is raised as soon as the count is in.
    Outside it (waiting for the socket, pacing) the signal interrupts at once.
    """

    def __init__(self):
        self.held = False
        self._holding = False

    def handler(self, signum, frame):
        if self._holding:
            self.held = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # pragma: no cover - handlers can only be set in the main thread
            return
        previous = {sig: signal.signal(sig, self.handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextlib.contextmanager
    def counting(self):
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            if self.held:
                self.held = False
                raise KeyboardInterrupt


class _FrameSender:
    """Sends numbered frames on a non-blocking framed socket and counts them."""

    def __init__(self, sock, size: int, rate):
        from .. import Batch
        from ..send.pacing import TokenBucket

        self.sock = sock
        self.size = size
        rows = MAX_ROWS if rate is None else int(min(MAX_ROWS, max(1, rate * CHUNK_WINDOW_S)))
        self.batch = Batch(rows, size, family=sock.family)
        self.batch.lengths[:] = size
        self._heads = self.batch.data[:, :8]
        self._steps = np.arange(rows, dtype=np.uint64)
        self._numbers = np.empty(rows, dtype=">u8")
        self.bucket = (
            None if rate is None else TokenBucket(rate, max(rows, rate * DEPTH_WINDOW_S), time.monotonic_ns())
        )
        self.sent = 0
        self.calls = 0
        self.started: float | None = None  # time.monotonic() of the first send
        self.finished: float | None = None
        self.interrupts = _HeldInterrupt()

    def send(self, count, duration) -> None:
        from ..send.pacing import sleep_until

        end = None if duration is None else time.monotonic() + duration
        rows = self.batch.capacity
        while count is None or self.sent < count:
            if end is not None and time.monotonic() >= end:
                break
            n = rows if count is None else min(rows, count - self.sent)
            np.add(self._steps[:n], self.sent, out=self._numbers[:n], casting="unsafe")
            self._heads[:n] = self._numbers[:n, None].view(np.uint8)
            self.batch.count = n
            if self.bucket is not None:
                sleep_until(self.bucket.ready_at(n, time.monotonic_ns()))
            if self.started is None:
                self.started = time.monotonic()
            done = 0
            try:
                while done < n:
                    try:
                        with self.interrupts.counting():
                            done += self.sock.send_frames(self.batch, done)
                            self.calls += 1
                    except BlockingIOError:
                        _wait_writable(self.sock, STALL_TIMEOUT_S)
                    except OSError as exc:
                        done += getattr(exc, "sent", 0)
                        raise
            finally:
                self.sent += done
                self.finished = time.monotonic()
                if self.bucket is not None:
                    self.bucket.take(done, time.monotonic_ns())

    def finish(self, limit_s: float) -> None:
        """Write the held rest of a partly sent frame, then shut the sending side down."""
        while self.sock.flush_frames():
            _wait_writable(self.sock, limit_s)
        self.sock.shutdown(_stdsocket.SHUT_WR)


def _refusal(args, size):
    from ..core.framing import DEFAULT_FRAMING

    not_tcp = [
        flag
        for flag, given in (
            ("--replay", args.replay is not None),
            ("--speed", args.speed is not UNSET),
            ("--gso", args.gso),
            ("--burst", args.burst is not None),
            ("--interface", args.interface is not None),
        )
        if given
    ]
    if not_tcp:
        return f"{', '.join(not_tcp)} do not apply to --tcp"
    if size < 8:
        return f"--size {size} is too small: at least 8 bytes (the sequence number)"
    try:
        framing = DEFAULT_FRAMING.replaced(**_args.framing_options(args))
    except ValueError as exc:
        return str(exc)
    if size > framing.frame_limit:
        return (
            f"--size {size} is longer than a frame may be ({framing.frame_limit} bytes: "
            f"--max-frame {framing.max_frame}, {framing.prefix_size}-byte prefix)"
        )
    return None


def run_tcp(args) -> int:
    from .. import SenderStats, create_connection

    host, port = args.address
    size = 64 if args.size is None else args.size
    problem = _refusal(args, size)
    if problem is not None:
        return _fail(problem, 2)
    try:
        sock = create_connection((host, port), timeout=CONNECT_TIMEOUT_S, backend=args.backend)
    except ConnectionRefusedError:
        return _fail(
            f"cannot connect to {_send_report.where(host, port)}: connection refused (nothing "
            f"listens there: start 'fastnet recv --tcp {_send_report.where(host, port)}' first)",
            1,
        )
    except (ValueError, TypeError, ImportError, _stdsocket.gaierror) as exc:
        return _fail(f"cannot connect to {_send_report.where(host, port)}: {exc}", 2)
    except OSError as exc:
        return _fail(f"cannot connect to {_send_report.where(host, port)}: {exc}", 1)
    interrupted = False
    error = None
    with sock:
        sock.set_framing(**_args.framing_options(args))
        # Frames go out as soon as send_frames writes them, paced or not.
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        sock.setblocking(False)
        rate = (
            args.pps if args.pps is not None else (args.rate / (8 * size) if args.rate is not None else None)
        )
        sender = _FrameSender(sock, size, rate)
        count = args.count
        if count is None and args.duration is None:
            count = DEFAULT_COUNT
        try:
            with sender.interrupts.installed():
                sender.send(count, args.duration)
                sender.finish(STALL_TIMEOUT_S)
        except KeyboardInterrupt:
            interrupted = True
            try:  # end on a frame boundary, so the receiver sees a clean close
                sender.finish(FINISH_TIMEOUT_S)
            except (OSError, KeyboardInterrupt):
                pass
        except OSError as exc:
            error = exc
        backend = sock.backend
    elapsed = ((sender.finished or 0.0) - sender.started) if sender.started is not None else 0.0
    payload = sender.sent * size
    stats = SenderStats(
        sent=sender.sent,
        bytes=payload,
        elapsed=elapsed,
        pps=sender.sent / elapsed if elapsed > 0 else 0.0,
        bps=8 * payload / elapsed if elapsed > 0 else 0.0,
        calls=sender.calls,
    )
    _print_summary(args, stats, backend, interrupted, error)
    if error is not None:
        return 1
    return 130 if interrupted else 0


def _print_summary(args, stats, backend, interrupted, error) -> None:
    if args.json:
        print(json.dumps(_send_report.summary(args, stats, backend, interrupted, error, "tcp")))
    else:
        print(
            f"sent {stats.sent} frames ({stats.bytes} payload bytes) to {_send_report.where(*args.address)} "
            f"over TCP in {stats.elapsed:.3f} s: {stats.pps:,.0f} frames/s, "
            f"{stats.bps / 1e6:,.1f} Mbit/s payload [{backend}, {stats.calls} send calls]"
            + (" (interrupted)" if interrupted else "")
        )
    _send_report.print_error(error)
