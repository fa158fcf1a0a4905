"""Cost of receiving ROUNDS x SENT GRO-coalesced datagrams of SIZE bytes with recv_batch (loopback).

    python bench/gro_call_cost.py SIZE ROUNDS [SENT]

Each round, a GSO send_batch queues SENT datagrams (default 1024; super-
datagrams of as many segments as a UDP payload holds, the last one shorter
unless SENT is a multiple of that), then recv_batch on a GRO socket takes
them into a Batch of 1024 rows of SIZE bytes (the direct path: slot size =
segment size), carrying over what does not fit into the next round. Prints
the recv_batch and recvmmsg counts. As bench/batch_call_cost.py: run under
``valgrind --tool=callgrind`` for two values of ROUNDS and divide the
difference in instructions by the difference in datagrams (user space,
deterministic); run each checkout on ``PYTHONPATH`` to compare them.
"""

import socket
import sys

import fastnet

ROWS = 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def main(size: int, rounds: int, sent: int = ROWS) -> None:
    rx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="cython")
    rx.bind(("127.0.0.1", 0))
    try:  # room for a round at any size (SO_RCVBUFFORCE: past rmem_max, with CAP_NET_ADMIN)
        rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    except PermissionError:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    rx.setsockopt(fastnet.SOL_UDP, fastnet.UDP_GRO, 1)
    tx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="cython")
    out = fastnet.Batch.from_payloads([bytes([i % 251]) * size for i in range(sent)])
    into = fastnet.Batch(ROWS, size)
    address = rx.getsockname()
    calls = got = 0
    for _ in range(rounds):
        tx.send_batch(out, address, gso=True)
        want = got + sent
        while got < want:
            got += rx.recv_batch(into, timeout=1)
            calls += 1
    print(f"{got} datagrams in {calls} recv_batch calls")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:4]))
