"""Whole-process cost of N send_batch + recv_batch pairs (ROWS rows of 64 B, default 64; loopback).

    python bench/batch_call_cost.py BACKEND N [ROWS]

Only the public API is used, so the same script runs against two checkouts
(each with its own venv) to compare them side by side: time each process
(e.g. ``/usr/bin/time -f "%U %S"``) alternately, A B A B, and compare the
medians of user and system CPU. For the cost of the calls themselves, count
instructions instead (user space, deterministic, with no noise from a shared
host): run under ``valgrind --tool=callgrind`` for two values of N and divide
the difference in instructions by the difference in N.
"""

import socket
import sys

import fastnet


def main(backend: str, pairs: int, rows: int = 64) -> None:
    rx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    tx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    out = fastnet.Batch.from_payloads([b"x" * 64] * rows)
    into = fastnet.Batch(rows, 64)
    address = rx.getsockname()
    for _ in range(pairs):
        tx.send_batch(out, address, gso=False)
        got = 0
        while got < rows:
            got += rx.recv_batch(into, timeout=1)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:4]))
