"""Whole-process cost of N batch calls on loopback: send_batch + recv_batch pairs, or sends alone.

    python bench/batch_call_cost.py BACKEND N [ROWS] [--size BYTES] [--send-only] [--gso] [--connect]

Default: N pairs of ``send_batch(gso=False)`` and ``recv_batch`` of ROWS rows
(default 64) of 64 B. ``--send-only`` makes N ``send_batch`` calls alone,
as ``fastnet bench`` sends (``--gso``: ``gso=True``; ``--connect``: a
connected socket, no address), into a socket nobody reads: the kernel drops
what its queue cannot hold, so every call is the same work.

Only the public API is used, so the same script runs against two checkouts
(each with its own venv or on ``PYTHONPATH``) to compare them side by side:
time each process (e.g. ``/usr/bin/time -f "%U %S"``) alternately, A B A B,
and compare the medians of user and system CPU. For the cost of the calls
themselves, count instructions instead (user space, deterministic, with no
noise from a shared host): run under ``valgrind --tool=callgrind`` for two
values of N and divide the difference in instructions by the difference in N.
"""

import argparse
import socket

import fastnet


def pairs(backend: str, calls: int, rows: int, size: int) -> None:
    rx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    tx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    out = fastnet.Batch.from_payloads([b"x" * size] * rows)
    into = fastnet.Batch(rows, size)
    address = rx.getsockname()
    for _ in range(calls):
        tx.send_batch(out, address, gso=False)
        got = 0
        while got < rows:
            got += rx.recv_batch(into, timeout=1)


def sends(backend: str, calls: int, rows: int, size: int, gso: bool, connect: bool) -> None:
    rx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    rx.bind(("127.0.0.1", 0))
    tx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    address = rx.getsockname()
    if connect:
        tx.connect(address)
        address = None
    # Rows as fastnet bench sends them: all of one length, slot_size the length.
    batch = fastnet.Batch(rows, size)
    batch.lengths[:] = size
    batch.count = rows
    for _ in range(calls):
        tx.send_batch(batch, address, gso=gso)
    rx.close()
    tx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend")
    parser.add_argument("calls", type=int)
    parser.add_argument("rows", type=int, nargs="?", default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--send-only", action="store_true")
    parser.add_argument("--gso", action="store_true")
    parser.add_argument("--connect", action="store_true")
    args = parser.parse_args()
    if args.send_only:
        sends(args.backend, args.calls, args.rows, args.size, args.gso, args.connect)
    else:
        pairs(args.backend, args.calls, args.rows, args.size)


if __name__ == "__main__":
    main()
