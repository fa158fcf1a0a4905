"""UDP GSO send and GRO receive against plain batches, per engine (pytest-benchmark).

Not part of the test run (tests/ only). Run on a quiet machine:

    .venv/bin/python -m pytest bench/test_gso_bench.py --benchmark-group-by=func,param:backend

Each round moves 64 datagrams of 1024 bytes over loopback. Send rounds
drain the receiver outside the timed part, so its queue never overflows;
receive rounds send outside the timed part, as one GSO super-buffer, which
a GRO receiver takes whole and a plain receiver as 64 datagrams.
"""

import socket as stdsocket

import pytest

import fastnet

ROWS, SIZE = 64, 1024
ROUNDS = 2000

needs_offload = pytest.mark.skipif(
    not (fastnet.features()["gso"] and fastnet.features()["gro"]), reason="kernel without UDP GSO/GRO"
)


@pytest.fixture(params=fastnet.available_backends())
def backend(request):
    return request.param


def _receiver(backend, gro):
    sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend, gro=gro)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 8 << 20)
    return sock


def _drain(sock, batch):
    while True:
        try:
            sock.recv_batch(batch, timeout=0)
        except BlockingIOError:
            return


@needs_offload
@pytest.mark.parametrize("gso", [False, True], ids=["plain", "gso"])
def test_send_batch(benchmark, backend, gso):
    payloads = [bytes([i]) * SIZE for i in range(ROWS)]
    with (
        _receiver(backend, gro=False) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        out = fastnet.Batch.from_payloads(payloads)
        sink = fastnet.Batch(1024, SIZE)
        address = receiver.getsockname()
        sent = benchmark.pedantic(
            sender.send_batch,
            args=(out, address),
            kwargs={"gso": gso},
            setup=lambda: _drain(receiver, sink),
            rounds=ROUNDS,
        )
        assert sent == ROWS


@needs_offload
@pytest.mark.parametrize("gro", [False, True], ids=["plain", "gro"])
def test_recv_batch(benchmark, backend, gro):
    payloads = [bytes([i]) * SIZE for i in range(ROWS)]
    with (
        _receiver(backend, gro=gro) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        out = fastnet.Batch.from_payloads(payloads)
        batch = fastnet.Batch(ROWS, SIZE)
        address = receiver.getsockname()

        def receive_all():
            got = 0
            while got < ROWS:
                got += receiver.recv_batch(batch, timeout=2)
            return got

        def send_one_super_buffer():
            sender.send_batch(out, address, gso=True)  # returns None: no arguments for the target

        got = benchmark.pedantic(receive_all, setup=send_one_super_buffer, rounds=ROUNDS)
        assert got == ROWS
