"""Cost of one framed-batch call on each backend, over loopback TCP (pytest-benchmark).

    python -m pytest bench/test_frames_bench.py --benchmark-columns=min,median,iqr,ops

* recv_frames taking a batch of frames already queued on the socket;
* send_frames of a batch into an emptied receive queue.

About 32 KiB of frames per call (512 x 64 B, 32 x 1 KiB, 1 x 64 KiB), so a
call never waits for the peer. Each round starts from the same state in an
untimed setup step; ``extra_info`` adds the median per frame.
"""

import fcntl
import struct
import termios
import time

import pytest

import fastnet

ROUNDS = 200
SIZES = [64, 1024, 65536]


@pytest.fixture
def connection(backend):
    """``(sender, receiver)``: a connected loopback pair on ``backend``."""
    with fastnet.create_server(("127.0.0.1", 0), backend=backend) as server:
        sender = fastnet.create_connection(server.getsockname(), timeout=5, backend=backend)
        receiver, _ = server.accept()
    receiver.settimeout(5)
    yield sender, receiver
    sender.close()
    receiver.close()


def _frames_per_call(size):
    return max(1, 32768 // size)


def _queued(sock):
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _wait_queued(sock, nbytes):
    deadline = time.monotonic() + 5
    while _queued(sock) < nbytes:
        assert time.monotonic() < deadline, "the frames did not arrive"
        time.sleep(0.0001)


def _receive(receiver, batch, count):
    got = 0
    while got < count:
        got += receiver.recv_frames(batch)
    return got


def _per_frame(benchmark, frames):
    benchmark.extra_info["frames_per_call"] = frames
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing timed
        return
    benchmark.extra_info["median_ns_per_frame"] = round(benchmark.stats.stats.median * 1e9 / frames, 1)


@pytest.mark.parametrize("size", SIZES)
def test_recv_frames_per_call(benchmark, connection, size):
    sender, receiver = connection
    count = _frames_per_call(size)
    outgoing = fastnet.Batch.from_payloads([bytes(size)] * count, slot_size=max(size, 1))
    incoming = fastnet.Batch(count, max(size, 1))
    wire_bytes = count * (4 + size)

    def fill():
        assert sender.send_frames(outgoing) == count
        _wait_queued(receiver, wire_bytes)

    benchmark.pedantic(_receive, args=(receiver, incoming, count), setup=fill, rounds=ROUNDS, warmup_rounds=5)
    assert incoming.count > 0 and bytes(incoming.payload(0)) == bytes(size)
    _per_frame(benchmark, count)


@pytest.mark.parametrize("size", SIZES)
def test_send_frames_per_call(benchmark, connection, size):
    sender, receiver = connection
    count = _frames_per_call(size)
    outgoing = fastnet.Batch.from_payloads([bytes(size)] * count, slot_size=max(size, 1))
    incoming = fastnet.Batch(count, max(size, 1))
    rounds = {"sent": 0}

    def drain():
        if rounds["sent"]:
            _receive(receiver, incoming, count)
        rounds["sent"] = 1

    result = benchmark.pedantic(
        sender.send_frames, args=(outgoing,), setup=drain, rounds=ROUNDS, warmup_rounds=5
    )
    assert result == count
    _per_frame(benchmark, count)
