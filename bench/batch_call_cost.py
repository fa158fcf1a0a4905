"""Whole-process cost of N send_batch + recv_batch pairs (64 rows of 64 B, loopback).

    python bench/batch_call_cost.py BACKEND N

Only the public API is used, so the same script runs against two checkouts
(each with its own venv) to compare them side by side: time each process
(e.g. ``/usr/bin/time -f "%U %S"``) alternately, A B A B, and compare the
medians of user and system CPU.
"""

import socket
import sys

import fastnet


def main(backend: str, pairs: int) -> None:
    rx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    tx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    out = fastnet.Batch.from_payloads([b"x" * 64] * 64)
    into = fastnet.Batch(64, 64)
    address = rx.getsockname()
    for _ in range(pairs):
        tx.send_batch(out, address, gso=False)
        got = 0
        while got < 64:
            got += rx.recv_batch(into, timeout=1)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
