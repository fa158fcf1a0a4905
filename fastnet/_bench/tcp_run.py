"""Framed-message throughput over loopback TCP, per backend and message size.

Each measurement runs two fresh processes, so neither side's CPU time or GIL
disturbs the other: a receiver (``create_server``, ``accept``, then
``recv_frames`` until the sender closes) and a sender (``create_connection``,
then ``send_frames`` of a full batch over and over for ``duration`` seconds).
Both use the backend measured; the ``python`` rows are the pure-Python
framing loop the ``cython`` rows are compared with.

Rows have the keys of the UDP benchmark's: ``backend, size, sent, received,
loss_pct, send_pps, recv_pps, gbit_s, send_cpu_us, recv_cpu_us``. On TCP
nothing may be lost, so ``loss_pct`` is 0 unless the receiver gave up (it
then says why on stderr). ``gbit_s`` counts payload bits received per
second (the length prefixes are not counted); the CPU figures are process
CPU time (user + system) per frame, in microseconds.

``fastnet bench --proto tcp`` shows these rows in the bench tables
(fastnet/_bench/tcp.py). Run it on its own for a short table::

    python -m fastnet._bench.tcp_run --quick
    python -m fastnet._bench.tcp_run --duration 5 --sizes 64,1024,65536
"""

from __future__ import annotations

import argparse
import json
import os
import socket as _stdsocket
import subprocess
import sys
import time
from typing import IO, Callable, Iterable, List, Optional, cast

from .runner import peer_directory, peer_environment

__all__ = ["run_tcp_bench", "DEFAULT_SIZES", "format_table", "main"]

DEFAULT_SIZES = (64, 1024, 65536)
#: Bytes of rows per batch: big enough to amortise a call, small enough for caches.
BATCH_BYTES = 4 * 2**20
#: A worker that has not finished this long after its duration is killed.
GRACE_SECONDS = 60.0


def _capacity(size: int) -> int:
    return max(1, min(1024, BATCH_BYTES // max(size, 1)))


def run_tcp_bench(
    backends: Optional[Iterable[str]] = None,
    sizes: Iterable[int] = DEFAULT_SIZES,
    duration: float = 2.0,
    progress: Optional[Callable[[str], None]] = None,
) -> List[dict]:
    """Measure framed messages/s and Gbit/s; one row per (backend, size).

    ``backends`` defaults to every backend that loads; ``progress``, if
    given, is called with a one-line description before each measurement.
    """
    import fastnet

    names = list(backends) if backends is not None else fastnet.available_backends()
    for name in names:
        fastnet.engines.load(name)  # fail now, with the reason, not in a worker
    sizes = [int(size) for size in sizes]
    if any(size < 0 for size in sizes):
        raise ValueError(f"sizes must be 0 or more bytes, got {sizes}")
    if not duration > 0:
        raise ValueError(f"duration must be greater than 0, got {duration}")
    rows = []
    for name in names:
        for size in sizes:
            if progress is not None:
                progress(f"tcp {name}: {size}-byte frames for {duration:g} s")
            rows.append(_measure(name, size, duration))
    return rows


def _worker_command(*args) -> list:
    return [sys.executable, "-m", "fastnet._bench.tcp_run", "--worker", *map(str, args)]


def _worker_env() -> dict:
    # The workers import the same fastnet as this process.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = peer_environment()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _measure(backend: str, size: int, duration: float) -> dict:
    env = _worker_env()
    limit = duration + GRACE_SECONDS
    receiver = subprocess.Popen(
        _worker_command("recv", backend, size, duration),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=peer_directory(),
    )
    sender = None
    try:
        port = cast(IO[str], receiver.stdout).readline().strip()  # stdout=PIPE: never None
        if not port.isdigit():
            raise RuntimeError(f"the receiver did not start (it said {port!r})")
        sender = subprocess.Popen(
            _worker_command("send", backend, size, duration, port),
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=peer_directory(),
        )
        sent_out, _ = sender.communicate(timeout=limit)
        received_out, _ = receiver.communicate(timeout=limit)
    finally:
        for child in (sender, receiver):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
    if sender.returncode or receiver.returncode:
        raise RuntimeError(
            f"a benchmark worker failed (sender {sender.returncode}, "
            f"receiver {receiver.returncode}); see its error above"
        )
    sent = json.loads(sent_out.strip().splitlines()[-1])
    received = json.loads(received_out.strip().splitlines()[-1])
    count_sent, count_received = sent["frames"], received["frames"]
    return {
        "backend": backend,
        "size": size,
        "sent": count_sent,
        "received": count_received,
        "loss_pct": 100.0 * (count_sent - count_received) / count_sent if count_sent else 0.0,
        "send_pps": count_sent / sent["seconds"],
        "recv_pps": count_received / received["seconds"],
        "gbit_s": count_received * size * 8 / received["seconds"] / 1e9,
        "send_cpu_us": 1e6 * sent["cpu"] / count_sent if count_sent else 0.0,
        "recv_cpu_us": 1e6 * received["cpu"] / count_received if count_received else 0.0,
    }


# -- the two workers (run in their own processes) ----------------------------------


def _receive(backend: str, size: int, duration: float) -> dict:
    import fastnet

    with fastnet.create_server(("127.0.0.1", 0), backend=backend) as server:
        print(server.getsockname()[1], flush=True)
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
    return {"frames": frames, "seconds": seconds, "cpu": cpu}


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
    return {"frames": frames, "seconds": seconds, "cpu": cpu}


# -- table -------------------------------------------------------------------------


def format_table(rows: List[dict]) -> str:
    """The rows as a text table, with each backend's speed-up over ``python``."""
    baseline = {row["size"]: row["recv_pps"] for row in rows if row["backend"] == "python"}
    header = (
        "backend",
        "size B",
        "sent",
        "received",
        "loss %",
        "send msg/s",
        "recv msg/s",
        "Gbit/s",
        "send us/msg",
        "recv us/msg",
        "vs python",
    )
    lines = [header]
    for row in rows:
        base = baseline.get(row["size"])
        lines.append(
            (
                row["backend"],
                str(row["size"]),
                str(row["sent"]),
                str(row["received"]),
                f"{row['loss_pct']:.2f}",
                f"{row['send_pps']:,.0f}",
                f"{row['recv_pps']:,.0f}",
                f"{row['gbit_s']:.2f}",
                f"{row['send_cpu_us']:.3f}",
                f"{row['recv_cpu_us']:.3f}",
                f"{row['recv_pps'] / base:.1f}x" if base else "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in lines
    )


def _sizes(text: str) -> List[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of sizes") from None
    if not sizes or any(size < 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be 0 or more bytes")
    return sizes


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        role, backend, size, duration, *rest = argv[1:]
        if role == "recv":
            result = _receive(backend, int(size), float(duration))
        else:
            result = _send(backend, int(size), float(duration), int(rest[0]))
        print(json.dumps(result), flush=True)
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m fastnet._bench.tcp_run",
        description="Framed messages over loopback TCP: messages/s and Gbit/s per backend.",
    )
    parser.add_argument("--quick", action="store_true", help="0.5 s per measurement")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="payload sizes in bytes, comma-separated (default 64,1024,65536)",
    )
    parser.add_argument(
        "--backends", default=None, help="comma-separated backends (default: every one that loads)"
    )
    args = parser.parse_args(argv)
    duration = 0.5 if args.quick else args.duration
    backends = args.backends.split(",") if args.backends else None
    rows = run_tcp_bench(
        backends, args.sizes, duration, progress=lambda line: print(line, file=sys.stderr, flush=True)
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
