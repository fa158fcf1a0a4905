"""One framed-message measurement over loopback TCP: its two worker processes.

Each measurement runs two fresh processes, so neither side's CPU time or GIL
disturbs the other: a receiver (``create_server``, ``accept``, then
``recv_frames`` until the sender closes) and a sender (``create_connection``,
then ``send_frames`` of a full batch over and over for ``duration`` seconds).
Both use the backend measured; the ``python`` rows are the pure-Python
framing loop the ``cython`` rows are compared with.

The processes are started and read by the UDP bench's runner
(``runner._Peer``), and their reports have the UDP peers' keys, so the rows,
tables and JSON are the UDP bench's own (fastnet/_bench/tcp.py,
``fastnet bench --proto tcp``). The CPU figures are process CPU time
(user + system) over the loop; the receiver's window runs from the accepted
connection to the sender's close.

    python -m fastnet._bench.tcp_run --worker recv BACKEND SIZE DURATION
        print "ready PORT", accept one connection, count frames, print one JSON line
    python -m fastnet._bench.tcp_run --worker send BACKEND SIZE DURATION PORT
        send frames for DURATION seconds, print one JSON line
"""

from __future__ import annotations

import json
import socket as _stdsocket
import subprocess
import sys
import time
from typing import Optional

from .runner import PEER_FAILURES, Job, Outcome, PeerError, _Peer, failed_outcome

__all__ = ["measure", "main"]

#: Bytes of rows per batch: big enough to amortise a call, small enough for caches.
BATCH_BYTES = 4 * 2**20
#: A worker that has not finished this long after its duration is killed.
GRACE_SECONDS = 60.0


def _capacity(size: int) -> int:
    return max(1, min(1024, BATCH_BYTES // max(size, 1)))


def _worker_command(*args) -> list:
    return [sys.executable, "-m", "fastnet._bench.tcp_run", "--worker", *map(str, args)]


def measure(job: Job, duration: float) -> Outcome:
    """One row's measurement; never raises for a worker's failure (the outcome says it)."""
    outcome = Outcome(job)
    receiver: Optional[_Peer] = None
    sender: Optional[_Peer] = None
    try:
        receiver = _Peer(
            "receiver", _worker_command("recv", job.backend, job.size, duration), None, subprocess.DEVNULL
        )
        words = receiver.read_line(GRACE_SECONDS).split()
        if len(words) != 2 or words[0] != "ready" or not words[1].isdigit():
            raise PeerError(f"the receiver said {' '.join(words)[:80]!r} instead of 'ready PORT'")
        sender = _Peer(
            "sender",
            _worker_command("send", job.backend, job.size, duration, words[1]),
            None,
            subprocess.DEVNULL,
        )
        outcome.sender = sender.read_report(duration + GRACE_SECONDS)
        outcome.receiver = receiver.read_report(GRACE_SECONDS)
        for peer in (sender, receiver):
            peer.proc.wait(timeout=GRACE_SECONDS)
            if peer.proc.returncode != 0:
                raise peer.failure()
    except PEER_FAILURES as exc:
        failed_outcome(outcome, exc, "a worker", "a worker")
    finally:
        for child in (sender, receiver):
            if child is not None:
                if child.proc.poll() is None:
                    child.proc.kill()
                child.stop()
    if outcome.status == "ok":
        # TCP drops nothing: every frame sent must have been received.
        outcome.kernel_drops = outcome.queued_bytes = 0
        if outcome.sender["sent"] != outcome.receiver["received"]:
            outcome.note = "the receiver gave up before the sender finished"
    return outcome


# -- the two workers (run in their own processes) ----------------------------------


def _receive(backend: str, size: int, duration: float) -> dict:
    import fastnet

    with fastnet.create_server(("127.0.0.1", 0), backend=backend) as server:
        print(f"ready {server.getsockname()[1]}", flush=True)
        server.settimeout(GRACE_SECONDS)
        conn, _ = server.accept()
    batch = fastnet.Batch(_capacity(size), max(size, 1))
    frames = 0
    with conn:
        started, cpu = time.monotonic(), time.process_time()
        deadline = started + duration + GRACE_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                print("receiver: gave up waiting for the sender to finish", file=sys.stderr)
                break
            n = conn.recv_frames(batch, timeout=remaining)
            if n == 0:  # the sender closed at a frame boundary: all is in
                break
            frames += n
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    return {"received": frames, "first_count": 0, "window_s": seconds, "cpu_s": cpu, "rcvbuf": None}


def _send(backend: str, size: int, duration: float, port: int) -> dict:
    import fastnet

    batch = fastnet.Batch.from_payloads([bytes(size)] * _capacity(size), slot_size=max(size, 1))
    frames = 0
    with fastnet.create_connection(("127.0.0.1", port), timeout=GRACE_SECONDS, backend=backend) as sock:
        started, cpu = time.monotonic(), time.process_time()
        end = started + duration
        while time.monotonic() < end:
            frames += sock.send_frames(batch)
        sock.flush_frames()
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
        sock.shutdown(_stdsocket.SHUT_WR)
    return {"sent": frames, "wall_s": seconds, "cpu_s": cpu}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (5, 6) or argv[0] != "--worker" or argv[1] not in ("recv", "send"):
        sys.stderr.write(
            "usage: python -m fastnet._bench.tcp_run --worker recv|send BACKEND SIZE DURATION [PORT]\n"
            "(the TCP benchmark itself: fastnet bench --proto tcp)\n"
        )
        return 2
    role, backend, size, duration, *rest = argv[1:]
    if role == "recv":
        result = _receive(backend, int(size), float(duration))
    else:
        result = _send(backend, int(size), float(duration), int(rest[0]))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
