"""``fastnet recv --tcp HOST:PORT``: accept one connection, receive length-prefixed frames.

``create_server`` on the address, the framing from the flags (the accepted
socket inherits it), one ``accept`` (bounded by ``--duration``, Ctrl-C at
any time), then ``recv_frames`` until the peer closes at a frame boundary
(``recv_frames`` returns 0), ``--count`` frames or ``--duration``. The stats
are the UDP ones that apply to a stream: frames (``packets``), bytes,
batches, truncated, the sequence counters with ``--seq``, and with ``--out``
(``.npy`` only: a pcap file would need UDP/IP headers) what was recorded;
recording waits for the disk, so over TCP it slows the sender down rather
than drop frames from the file.
Exit status 1, after the summary, if the stream broke: cut by the peer
(``IncompleteFrameError``), a length prefix over ``--max-frame``
(``FrameLimitError``) or a frame longer than ``--slot-size`` without
``--truncate`` (``SlotTooSmallError``).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from . import _args
from ._bind import notice_if_wildcard
from ._recv_loop import Run
from ._recv_report import fail, where

#: How often a wait for the connection re-checks --duration.
ACCEPT_SLICE_S = 0.2
#: Longest wait for a free recording buffer before a batch is let go (and
#: counted in capture_dropped): the disk has stalled.
DISK_WAIT_S = 30.0
_DISK_POLL_S = 0.0005


def _accept(server, deadline):
    """``(connection, peer)``, or ``(None, None)`` if ``deadline`` passed first."""
    server.settimeout(ACCEPT_SLICE_S)
    while deadline is None or time.monotonic() < deadline:
        try:
            return server.accept()
        except TimeoutError:
            continue
    return None, None


def _broken_stream(exc) -> str:
    """One line for the errors that end a framed stream."""
    import fastnet

    if isinstance(exc, fastnet.IncompleteFrameError):
        return (
            f"the sender closed the connection in the middle of a frame: {exc.received} "
            f"bytes of it had arrived and are lost"
        )
    if isinstance(exc, fastnet.FrameLimitError):
        return (
            f"a length prefix announces {exc.length} bytes, over --max-frame "
            f"{exc.max_frame}: the sender uses another framing (--prefix-size, --byteorder) "
            f"or longer frames (--max-frame)"
        )
    if isinstance(exc, fastnet.SlotTooSmallError):
        return (
            f"a frame of {exc.length} bytes does not fit --slot-size {exc.slot_size}: "
            f"raise --slot-size to at least {exc.length}, or add --truncate to keep its "
            f"first {exc.slot_size} bytes"
        )
    return f"receiving failed: {exc}"


class _Counts:
    """The stream's counters, as the report's dict."""

    def __init__(self, seq: bool, recorder):
        from .. import SeqField
        from ..receive.seq import SeqTracker

        self.packets = self.bytes = self.batches = self.truncated = 0
        self.tracker = SeqTracker(SeqField()) if seq else None
        self.recorder = recorder

    def add(self, batch, n: int) -> None:
        self.packets += n
        self.batches += 1
        self.bytes += int(batch.lengths[:n].sum())
        self.truncated += int(np.count_nonzero(batch.truncated[:n]))
        if self.tracker is not None:
            self.tracker.update(batch, n)
        if self.recorder is not None:
            self._record(batch)

    def _record(self, batch) -> None:
        """Hand the batch to the recorder once it has a free buffer.

        Over UDP a receiver must not wait for the disk (the kernel would drop
        datagrams meanwhile); over TCP waiting only slows the sender down,
        so nothing is dropped from the file unless the disk stalls.
        """
        recorder = self.recorder
        give_up = time.monotonic() + DISK_WAIT_S
        while recorder.backlog >= recorder.buffers and time.monotonic() < give_up:
            time.sleep(_DISK_POLL_S)
        recorder(batch)

    def as_dict(self) -> dict:
        stats = dict(packets=self.packets, bytes=self.bytes, batches=self.batches, truncated=self.truncated)
        tracker = self.tracker
        if tracker is not None:
            stats.update(
                seq_lost=tracker.lost,
                seq_gaps=tracker.gaps,
                seq_reordered=tracker.reordered,
                seq_duplicates=tracker.duplicates,
                seq_short=tracker.short,
            )
        if self.recorder is not None:
            recorded = self.recorder.stats
            stats.update(recorded=recorded.written, capture_dropped=recorded.capture_dropped)
        return stats


#: Bytes per frame row on TCP when --slot-size is not given (frames have no MTU).
TCP_SLOT_SIZE = 9000


def run_tcp(args) -> int:
    import fastnet

    if args.slot_size is None:
        args.slot_size = TCP_SLOT_SIZE
    if args.seq and args.slot_size < 8:
        return fail(f"--seq needs 8 bytes per frame but --slot-size is {args.slot_size}", 2)
    host, port = args.address
    server = recorder = None
    try:
        server = fastnet.create_server((host, port), family=_args.family_of(host), backend=args.backend)
        server.set_framing(**_args.framing_options(args))  # accept() hands it on
        if args.out is not None:
            recorder = fastnet.open_recorder(args.out, local_address=server.getsockname())
        batch = fastnet.Batch(args.batch_size, args.slot_size, family=server.family)
    except (ValueError, TypeError, OSError, ImportError, MemoryError) as exc:
        for thing in (server, recorder):
            if thing is not None:
                thing.close()
        return fail(f"cannot receive on {where(args.address)}: {exc}", 2)
    address, backend = server.getsockname(), server.backend
    notice_if_wildcard("recv", address)
    counts = _Counts(args.seq, recorder)
    run = Run(args, counts.as_dict(), unit="frames")
    conn: fastnet.socket | None = None
    peer = None
    interrupted = False
    error = None

    def take(wait):
        if conn is None:
            return 0
        try:
            n = conn.recv_frames(batch, timeout=wait)
        except (TimeoutError, BlockingIOError):
            return None
        if n:  # 0: the peer closed at a frame boundary, everything is in
            counts.add(batch, n)
        return n

    try:
        print(
            f"receiving on {where(address)} ({backend} engine, TCP): waiting for a connection"
            + (f", recording to {args.out}" if args.out else ""),
            file=sys.stderr,
            flush=True,
        )
        conn, peer = _accept(server, run.deadline)
        server.close()  # one connection: nobody else may connect
        if conn is not None:
            print(f"connection from {where(peer)}", file=sys.stderr, flush=True)
            run.loop(take, counts.as_dict)
    except KeyboardInterrupt:
        interrupted = True
    except (OSError, ValueError) as exc:  # the framing errors and the kernel's
        error = _broken_stream(exc)
    finally:
        for thing in (conn, server):
            if thing is not None:
                thing.close()
        if recorder is not None:
            try:
                recorder.close()
            except Exception as exc:  # noqa: BLE001 - reported in one line below
                error = error or f"recording to {args.out} failed: {exc}"
    extra = {"out": args.out} if args.out else {}
    run.report(
        counts.as_dict(),
        interrupted,
        json_extra=dict(
            proto="tcp",
            address=list(address),
            peer=None if peer is None else list(peer),
            backend=backend,
            **extra,
        ),
        summary_extra=dict(out=args.out),
    )
    if error is not None:
        return fail(error, 1)
    return 130 if interrupted else 0
