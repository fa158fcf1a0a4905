"""SO_REUSEPORT fan-out: sockets of one group together receive exactly what was sent."""

import collections
import socket as stdsocket
import time

import pytest
from helpers import HANG_S

import fastnet
from fastnet.receive.fanout import FanOut, FanOutError, bind_reuse_port, merge_stats

FLOWS = 16  # distinct source ports: the kernel spreads flows, not datagrams
PER_FLOW = 25


def _send_numbered(address, family, host):
    """FLOWS senders (one source port each) send PER_FLOW numbered datagrams each."""
    senders = [stdsocket.socket(family, stdsocket.SOCK_DGRAM) for _ in range(FLOWS)]
    try:
        for tx in senders:
            tx.bind((host, 0))
        for i in range(FLOWS * PER_FLOW):
            senders[i % FLOWS].sendto(i.to_bytes(8, "big"), address)
    finally:
        for tx in senders:
            tx.close()
    return list(range(FLOWS * PER_FLOW))


def _drain(sock, seen):
    batch = fastnet.Batch(64, 16, family=sock.family)
    while True:
        try:
            n = sock.recv_batch(batch, timeout=0)
        except BlockingIOError:
            return
        seen.extend(batch.data[:n, :8].copy().view(">u8").ravel().tolist())


def test_two_reuse_port_sockets_together_receive_exactly_what_was_sent(backend, family_host):
    family, host = family_host
    standard = bind_reuse_port((host, 0), 2, rcvbuf=4 << 20)
    sockets = [
        fastnet.socket(family, fastnet.SOCK_DGRAM, fileno=s.detach(), backend=backend) for s in standard
    ]
    try:
        address = sockets[0].getsockname()
        assert sockets[1].getsockname() == address
        sent = _send_numbered(address, family, host)
        per_socket = [[], []]
        deadline = time.monotonic() + HANG_S
        while sum(map(len, per_socket)) < len(sent) and time.monotonic() < deadline:
            for sock, seen in zip(sockets, per_socket, strict=True):
                _drain(sock, seen)
    finally:
        for sock in sockets:
            sock.close()
    together = per_socket[0] + per_socket[1]
    assert sorted(together) == sent  # nothing lost, nothing twice
    assert all(per_socket), "the kernel spread the flows over both sockets"


def counting_loop(sock, should_stop):
    """A worker's receive loop for the test: the sequence numbers it received."""
    batch = fastnet.Batch(256, 16, family=sock.family)
    seen = []
    started = time.monotonic()
    while not should_stop():
        try:
            n = sock.recv_batch(batch, timeout=0.05)
        except TimeoutError:
            continue
        seen.extend(batch.data[:n, :8].copy().view(">u8").ravel().tolist())
    # What was sent before the stop request is already queued: it is counted
    # too (read without waiting until the queue is empty).
    while True:
        try:
            n = sock.recv_batch(batch, timeout=0)
        except BlockingIOError:
            break
        seen.extend(batch.data[:n, :8].copy().view(">u8").ravel().tolist())
    return {
        "received": len(seen),
        "numbers": seen,
        "elapsed": time.monotonic() - started,
        "backend": sock.backend,
    }


def failing_loop(sock, should_stop):
    raise RuntimeError("this worker fails")


def test_worker_processes_merge_their_stats(backend):
    with FanOut(("127.0.0.1", 0), 2, counting_loop, backend=backend, rcvbuf=4 << 20) as fan:
        sent = _send_numbered(fan.address, stdsocket.AF_INET, "127.0.0.1")
    merged = fan.stats  # leaving the block stopped the workers and merged their stats
    assert merged["workers"] == 2
    assert merged["received"] == len(sent)
    assert sorted(merged["numbers"]) == sent
    assert [w["received"] for w in fan.worker_stats] == [len(w["numbers"]) for w in fan.worker_stats]
    assert merged["backend"] == backend
    assert merged["elapsed"] == max(w["elapsed"] for w in fan.worker_stats)


def test_a_failing_worker_is_reported_with_its_traceback():
    with pytest.raises(FanOutError, match="this worker fails"):
        with FanOut(("127.0.0.1", 0), 2, failing_loop) as fan:
            fan.wait(5)


def test_merge_stats_rules():
    merged = merge_stats(
        [
            {
                "received": 3,
                "bytes": 30,
                "elapsed": 1.0,
                "truncated": False,
                "ids": [1],
                "drops": {"kernel": 1},
                "mode": "seq",
                "first_timestamp": 5,
            },
            {
                "received": 4,
                "bytes": 40,
                "elapsed": 2.5,
                "truncated": True,
                "ids": [2],
                "drops": {"kernel": 2},
                "mode": "seq",
                "first_timestamp": 3,
            },
        ]
    )
    assert merged == {
        "received": 7,
        "bytes": 70,
        "elapsed": 2.5,
        "truncated": True,
        "ids": [1, 2],
        "drops": {"kernel": 3},
        "mode": "seq",
        "first_timestamp": 3,
        "workers": 2,
    }
    assert collections.Counter(merge_stats([{"a": "x"}, {"a": "y"}])["a"]) == {"x": 1, "y": 1}


@pytest.mark.parametrize("workers", [0, -1, True, 1.5])
def test_bad_worker_counts(workers):
    with pytest.raises(ValueError):
        bind_reuse_port(("127.0.0.1", 0), workers)
