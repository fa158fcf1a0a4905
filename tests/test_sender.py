"""Sender: everything arrives, pacing holds (on a virtual clock), bad input is refused."""

import inspect
import math
import socket as stdsocket

import pytest
from helpers import numbered_payloads, receive_exactly, use_virtual_clock

import fastnet


@pytest.mark.parametrize("burst", [None, 3])
def test_send_batch_delivers_every_row_in_order(pair, burst):
    receiver, _ = pair
    payloads = numbered_payloads(20, 30)
    with fastnet.Sender(receiver.getsockname(), burst=burst, backend=receiver.backend) as sender:
        batch = fastnet.Batch.from_payloads(payloads, family=receiver.family)
        assert sender.send_batch(batch) == 20
        assert batch.count == 20  # the caller's batch is left as it was
        stats = sender.stats
    got, addresses, _ = receive_exactly(receiver, 20, 64, family=receiver.family)
    assert got == payloads
    assert stats.sent == 20 and stats.bytes == 600
    assert stats.calls >= (1 if burst is None else 7)
    assert sender.closed


def test_a_batch_of_the_other_family_is_sent_too(pair):
    receiver, _ = pair
    other = stdsocket.AF_INET6 if receiver.family == stdsocket.AF_INET else stdsocket.AF_INET
    batch = fastnet.Batch.from_payloads([b"one", b"two"], family=other)
    with fastnet.Sender(receiver.getsockname(), backend=receiver.backend) as sender:
        assert sender.send_batch(batch) == 2
    assert receive_exactly(receiver, 2, 16, family=receiver.family)[0] == [b"one", b"two"]


def test_send_single_datagrams(pair):
    receiver, _ = pair
    with fastnet.Sender(receiver.getsockname(), pps=10_000, backend=receiver.backend) as sender:
        for i in range(5):
            sender.send(bytes([i]) * 3)
        assert sender.stats.sent == 5 and sender.stats.bytes == 15
        assert sender.stats.calls == 5  # one system call each
    got = receive_exactly(receiver, 5, 8, family=receiver.family)[0]
    assert got == [bytes([i]) * 3 for i in range(5)]


@pytest.mark.parametrize(
    "kwargs,expected_pps",
    [
        (dict(pps=2000), 2000),
        (dict(pps=20000), 20000),
        (dict(bps=8_000_000), 1000),  # 1000-byte payloads: 8 Mbit/s is 1000 datagrams/s
    ],
)
def test_pacing_holds_the_rate(backend, monkeypatch, kwargs, expected_pps):
    """Half a second of traffic, paced on a clock that moves only when the Sender
    waits (helpers.VirtualClock): the schedule is exact whatever the machine's load.
    How close real sends come to it: bench/pacing_accuracy.py --tolerance."""
    clock = use_virtual_clock(monkeypatch)
    sink = stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    batch = fastnet.Batch(64, 1000)
    batch.count = 64
    batch.lengths[:] = 1000
    rounds = expected_pps // 2 // 64 + 1
    try:
        with fastnet.Sender(sink.getsockname(), backend=backend, **kwargs) as sender:
            for _ in range(rounds):
                assert sender.send_batch(batch) == 64
            stats = sender.stats
    finally:
        sink.close()
    assert stats.sent == rounds * 64 and stats.bytes == stats.sent * 1000
    # The bucket starts empty, so sent / elapsed is the rate from the first send
    # on (the clock's own ticks, 1 us a reading, cost a few parts per million).
    assert stats.pps == pytest.approx(expected_pps, rel=1e-3)
    assert stats.pps <= expected_pps  # never ahead of the rate
    assert stats.bps == pytest.approx(stats.pps * 8000, rel=1e-9)
    # It waited by sleeping, polling the clock only for the last 50 us of a wait.
    assert clock.slept_ns >= 0.8 * stats.elapsed * 1e9


def test_unpaced_sender_sends_in_bursts_of_up_to_1024(backend):
    sink = stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        with fastnet.Sender(sink.getsockname(), backend=backend) as sender:
            sender.send_batch(fastnet.Batch.from_payloads([b"x"] * 3000))
            assert sender.burst == 1024
            assert sender.stats.sent == 3000
            assert sender.stats.calls >= 3
    finally:
        sink.close()


def test_error_part_way_counts_what_was_sent(backend):
    """An IPv4 datagram over 65507 bytes fails (EMSGSIZE) after the rows before it went."""
    sink = stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    batch = fastnet.Batch(4, 70000)
    batch.count = 4
    batch.lengths[:] = [10, 10, 70000, 10]
    try:
        with fastnet.Sender(sink.getsockname(), backend=backend) as sender:
            with pytest.raises(OSError) as info:
                sender.send_batch(batch)
            assert info.value.sent == 2
            assert sender.stats.sent == 2 and sender.stats.bytes == 20
    finally:
        sink.close()


def test_multicast_destination_sets_the_sending_options(backend):
    with fastnet.Sender(("239.1.2.3", 9), backend=backend) as sender:
        sock = sender.socket
        assert sock.getsockopt(stdsocket.IPPROTO_IP, stdsocket.IP_MULTICAST_TTL) == 1
        assert sock.getsockopt(stdsocket.IPPROTO_IP, stdsocket.IP_MULTICAST_LOOP) == 1


@pytest.mark.parametrize("gso", [False, True])
def test_gso_is_passed_through_to_the_socket(pair, gso):
    # This fastnet's socket.send_batch has the gso option on every engine, so
    # the Sender accepts it (it refuses it only for a socket without one).
    assert "gso" in inspect.signature(fastnet.socket.send_batch).parameters
    receiver, _ = pair
    payloads = [b"x" * 100] * 3
    with fastnet.Sender(receiver.getsockname(), gso=gso, backend=receiver.backend) as sender:
        assert sender.send_batch(fastnet.Batch.from_payloads(payloads)) == 3
    assert receive_exactly(receiver, 3, 128, family=receiver.family)[0] == payloads


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(pps=-1), ValueError),
        (dict(pps=0), ValueError),
        (dict(pps=math.nan), ValueError),
        (dict(pps=math.inf), ValueError),
        (dict(bps=-5e6), ValueError),
        (dict(pps="100"), TypeError),
        (dict(pps=True), TypeError),
        (dict(burst=0), ValueError),
        (dict(burst=1.5), TypeError),
    ],
)
def test_bad_rates_are_refused(backend, kwargs, error):
    with pytest.raises(error):
        fastnet.Sender(("127.0.0.1", 9), backend=backend, **kwargs)


@pytest.mark.parametrize(
    "address,error",
    [
        ("127.0.0.1:9", TypeError),
        (("127.0.0.1",), TypeError),
        (("127.0.0.1", "9"), TypeError),
        (("127.0.0.1", 70000), ValueError),
        ((b"127.0.0.1", 9), TypeError),
    ],
)
def test_bad_addresses_are_refused(backend, address, error):
    with pytest.raises(error):
        fastnet.Sender(address, backend=backend)


def test_send_batch_needs_a_batch(backend):
    with fastnet.Sender(("127.0.0.1", 9), backend=backend) as sender:
        with pytest.raises(TypeError, match="fastnet.Batch"):
            sender.send_batch([b"x"])
        assert sender.send_batch(fastnet.Batch(4, 4)) == 0
