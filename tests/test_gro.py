"""recv_batch with UDP GRO: super-datagrams split back into the datagrams sent, carry-over."""

import socket as stdsocket
import time

import numpy as np
import pytest
from helpers import AVAILABLE, receive_exactly

import fastnet
from fastnet import constants as C

pytestmark = pytest.mark.skipif(
    not (fastnet.features()["gso"] and fastnet.features()["gro"]), reason="kernel without UDP GSO/GRO"
)


def rows_of(count, size, last=None):
    sizes = [size] * count
    if last is not None:
        sizes[-1] = last
    return [(i.to_bytes(4, "big") + bytes([i % 251]) * size)[:n] for i, n in enumerate(sizes)]


@pytest.fixture
def gro_pair(backend, family_host):
    """A GRO receiver and a sender on loopback, closed afterwards."""
    family, host = family_host
    receiver = fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend, gro=True)
    receiver.bind((host, 0))
    receiver.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 8 << 20)
    sender = fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend)
    sender.bind((host, 0))
    yield receiver, sender
    receiver.close()
    sender.close()


def send_gso(sender, receiver, payloads):
    batch = fastnet.Batch.from_payloads(payloads, family=sender.family)
    assert sender.send_batch(batch, receiver.getsockname(), gso=True) == len(payloads)


def kernel_queue_is_empty(sock):
    try:
        sock.recv(1, stdsocket.MSG_PEEK | stdsocket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    return False


def test_gro_option_is_on(gro_pair):
    receiver, _ = gro_pair
    assert receiver.getsockopt(C.SOL_UDP, C.UDP_GRO) == 1


@pytest.mark.parametrize(
    "count,size,last",
    [
        (2, 1, None),
        (64, 1024, None),
        (200, 1000, 17),
        (130, 1023, None),
        (10, 20000, 5),
        (1000, 64, 1),
    ],
)
def test_gro_rows_are_the_datagrams_sent(gro_pair, family_host, count, size, last):
    receiver, sender = gro_pair
    family, _ = family_host
    payloads = rows_of(count, size, last)
    send_gso(sender, receiver, payloads)
    got, addresses, truncated = receive_exactly(receiver, count, size, family=family)
    assert got == payloads
    assert set(addresses) == {sender.getsockname()}
    assert not any(truncated)


def test_gro_mixed_plain_and_coalesced_traffic_stays_in_order(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    expected = []
    for round_ in range(5):
        for size in (0, 1, 700, 3000):
            payload = bytes([round_]) * size
            sender.sendto(payload, receiver.getsockname())
            expected.append(payload)
        burst = rows_of(70, 100 + round_, 9)
        send_gso(sender, receiver, burst)
        expected += burst
    got, _, truncated = receive_exactly(receiver, len(expected), 3000, family=family)
    assert got == expected
    assert not any(truncated)


def test_gro_cuts_long_segments_to_the_slot_and_flags_them(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    payloads = rows_of(10, 300, 50)
    send_gso(sender, receiver, payloads)
    batch = fastnet.Batch(16, 100, family=family)
    batch.data[:] = 0xEE  # sentinel: nothing may be written past a row's length
    assert receiver.recv_batch(batch, timeout=2) == 10
    assert [bytes(batch.payload(i)) for i in range(10)] == [p[:100] for p in payloads]
    assert list(batch.truncated[:10]) == [True] * 9 + [False]
    assert (batch.data[9, 50:] == 0xEE).all() and (batch.data[10:] == 0xEE).all()


def test_carry_over_returns_every_datagram_across_calls(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    payloads = rows_of(64, 1000)  # one super-datagram of 64
    send_gso(sender, receiver, payloads)
    batch = fastnet.Batch(5, 1000, family=family)
    assert receiver.recv_batch(batch, timeout=2) == 5
    # The kernel handed over the whole super-datagram in one piece: its queue
    # is empty, and the 59 other datagrams are kept on the socket.
    assert kernel_queue_is_empty(receiver)
    got = [bytes(p) for p, _ in batch]
    for _ in range(11):
        assert receiver.recv_batch(batch, timeout=0) == 5  # no waiting: already here
        got += [bytes(p) for p, _ in batch]
    assert receiver.recv_batch(batch, timeout=0) == 4
    got += [bytes(p) for p, _ in batch]
    assert got == payloads
    with pytest.raises(BlockingIOError):
        receiver.recv_batch(batch, timeout=0)


def test_blocking_calls_take_carried_rows_at_once_and_wait_once_drained(gro_pair, family_host):
    """Rows carried over come back without a wait for new data; a call after the
    carry was drained waits for the queue, and takes what comes."""
    receiver, sender = gro_pair
    family, _ = family_host
    payloads = rows_of(12, 1000)  # one super-datagram of 12
    send_gso(sender, receiver, payloads)
    batch = fastnet.Batch(5, 1000, family=family)
    got = []
    for expected in (5, 5, 2):  # the last two calls find nothing queued, only the carry
        assert receiver.recv_batch(batch, timeout=5) == expected
        got += [bytes(p) for p, _ in batch]
    assert got == payloads
    assert kernel_queue_is_empty(receiver)
    with pytest.raises(TimeoutError):
        receiver.recv_batch(batch, timeout=0.05)
    more = rows_of(3, 1000, 7)
    send_gso(sender, receiver, more)
    assert receiver.recv_batch(batch, timeout=5) == 3
    assert [bytes(p) for p, _ in batch] == more


def test_carry_over_across_many_super_datagrams(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    payloads = rows_of(300, 500, 3)
    send_gso(sender, receiver, payloads)
    got, addresses, _ = receive_exactly(receiver, 300, 500, family=family, capacity=7)
    assert got == payloads
    assert set(addresses) == {sender.getsockname()}


def test_batch_of_one_row_takes_one_datagram_at_a_time(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    payloads = rows_of(20, 40, 1)
    send_gso(sender, receiver, payloads)
    got, _, _ = receive_exactly(receiver, 20, 40, family=family, capacity=1)
    assert got == payloads


def test_timestamps_are_copied_to_each_row(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    receiver.enable_timestamps()
    before = time.time_ns()
    send_gso(sender, receiver, rows_of(10, 100))
    batch = fastnet.Batch(4, 100, family=family)
    stamps = []
    while len(stamps) < 10:
        receiver.recv_batch(batch, timeout=2)
        stamps += list(batch.timestamps[: batch.count])
    after = time.time_ns()  # loopback delivery may finish after send_batch returns
    assert len(set(stamps)) == 1  # one super-datagram, one arrival time
    assert before <= stamps[0] <= after


def test_empty_datagram_is_one_empty_row(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    sender.sendto(b"", receiver.getsockname())
    sender.sendto(b"x", receiver.getsockname())
    got, _, _ = receive_exactly(receiver, 2, 4, family=family)
    assert got == [b"", b"x"]


def test_enable_gro_turns_the_option_on_and_off(backend):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        assert receiver.getsockopt(C.SOL_UDP, C.UDP_GRO) == 0
        receiver.enable_gro()
        assert receiver.getsockopt(C.SOL_UDP, C.UDP_GRO) == 1
        send_gso(sender, receiver, rows_of(30, 10))
        got, _, _ = receive_exactly(receiver, 30, 10, capacity=8)
        assert got == rows_of(30, 10)
        receiver.enable_gro(False)
        assert receiver.getsockopt(C.SOL_UDP, C.UDP_GRO) == 0
        send_gso(sender, receiver, rows_of(30, 10))
        got, _, _ = receive_exactly(receiver, 30, 10, capacity=8)
        assert got == rows_of(30, 10)  # segmented by the kernel, received plain


def test_rows_carried_over_are_kept_when_gro_is_turned_off(backend):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend, gro=True) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        send_gso(sender, receiver, rows_of(20, 10))
        batch = fastnet.Batch(6, 10)
        assert receiver.recv_batch(batch, timeout=2) == 6
        got = [bytes(p) for p, _ in batch]
        receiver.enable_gro(False)
        sender.sendto(b"later", receiver.getsockname())
        got += receive_exactly(receiver, 15, 10, capacity=6)[0]
        assert got == rows_of(20, 10) + [b"later"]


def test_socket_from_a_gro_fd_splits_too(backend):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend, gro=True) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        with receiver.dup() as twin:
            send_gso(sender, receiver, rows_of(40, 100))
            got, _, _ = receive_exactly(twin, 40, 100)
            assert got == rows_of(40, 100)


def test_close_with_rows_carried_over(backend):
    receiver = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend, gro=True)
    receiver.bind(("127.0.0.1", 0))
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender:
        send_gso(sender, receiver, rows_of(64, 100))
    assert receiver.recv_batch(fastnet.Batch(2, 100), timeout=2) == 2
    receiver.close()
    assert receiver.fileno() == -1
    with pytest.raises(OSError):
        receiver.recv_batch(fastnet.Batch(2, 100), timeout=0)


def test_gro_on_a_stream_socket_is_an_os_error(backend):
    with pytest.raises(OSError):
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend, gro=True)


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs both backends")
@pytest.mark.parametrize("capacity,slot_size", [(7, 600), (64, 2048), (1, 16)])
def test_backends_fill_identical_batches_with_gro(capacity, slot_size):
    receivers = {}
    try:
        for name in AVAILABLE:
            sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=name, gro=True)
            sock.bind(("127.0.0.1", 0))
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 8 << 20)
            receivers[name] = sock
        traffic = [rows_of(100, 1000, 10), [b"", b"plain" * 200], rows_of(9, 50), rows_of(3, 700)]
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="python") as sender:
            for receiver in receivers.values():
                for payloads in traffic:
                    if len(set(map(len, payloads[:-1]))) == 1 and len(payloads) > 2:
                        send_gso(sender, receiver, payloads)
                    else:
                        for payload in payloads:
                            sender.sendto(payload, receiver.getsockname())
        total = sum(map(len, traffic))
        calls = {name: [] for name in receivers}
        for name, receiver in receivers.items():
            batch = fastnet.Batch(capacity, slot_size)
            received = 0
            while received < total:
                n = receiver.recv_batch(batch, timeout=2)
                received += n
                calls[name].append(
                    (
                        n,
                        [bytes(batch.payload(i)) for i in range(n)],
                        *(
                            getattr(batch, array)[:n].tolist()
                            for array in (
                                "lengths",
                                "truncated",
                                "addresses",
                                "ports",
                                "flowinfo",
                                "scope_ids",
                                "timestamps",
                            )
                        ),
                    )
                )
        reference, *others = calls.values()
        for other in others:
            assert other == reference
        assert np.sum([call[0] for call in reference]) == total
    finally:
        for sock in receivers.values():
            sock.close()


# -- the direct path: slot_size equal to the sender's segment size ----------------


def test_direct_path_is_taken_when_slot_matches_segment(gro_pair, family_host, backend):
    receiver, sender = gro_pair
    family, _ = family_host
    payloads = rows_of(64, 512)
    for _ in range(3):
        send_gso(sender, receiver, payloads)
    got, _, truncated = receive_exactly(receiver, 192, 512, family=family, capacity=1024)
    assert got == payloads * 3 and not any(truncated)
    if backend == "cython":
        assert receiver._engine_state.gro_area.direct_segment_size == 512


@pytest.mark.parametrize("capacity", [1, 5, 63, 64, 65])
def test_direct_path_carries_over_what_does_not_fit(gro_pair, family_host, capacity):
    receiver, sender = gro_pair
    family, _ = family_host
    first = rows_of(64, 256, 7)
    send_gso(sender, receiver, first)  # teaches the receiver the segment size
    second = rows_of(64, 256, 100)
    send_gso(sender, receiver, second)
    got, _, truncated = receive_exactly(receiver, 128, 256, family=family, capacity=capacity)
    assert got == first + second
    assert not any(truncated)


def test_direct_path_survives_a_change_of_segment_size(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    expected = []
    for size, last in ((300, None), (300, 1), (120, 50), (300, None), (600, None)):
        burst = rows_of(40, size, last)
        send_gso(sender, receiver, burst)
        expected += burst
    # slot 300: the 600-byte datagrams are cut to the slot and flagged.
    got, _, truncated = receive_exactly(receiver, len(expected), 300, family=family, capacity=50)
    assert got == [p[:300] for p in expected]
    assert truncated == [len(p) > 300 for p in expected]


def test_plain_datagrams_in_direct_mode_are_cut_to_the_slot(gro_pair, family_host):
    receiver, sender = gro_pair
    family, _ = family_host
    burst = rows_of(10, 200)
    send_gso(sender, receiver, burst)
    plain = [b"a" * 50, b"b" * 200, b"c" * 450, b""]
    for payload in plain:
        sender.sendto(payload, receiver.getsockname())
    got, _, truncated = receive_exactly(receiver, 14, 200, family=family, capacity=3)
    assert got == burst + [p[:200] for p in plain]
    assert truncated == [False] * 10 + [False, False, True, False]


# -- the direct path with several super-datagrams per call -------------------------------
# The Cython engine gives each message of one recvmmsg a run of rows as long as
# the longest super-datagram it saw last; these bursts are shorter, longer, of
# another segment size, or plain, in one queue, so one call meets each case.


def teach_direct_path(receiver, sender, family, rows, slot=256):
    """Turn the direct path on for ``slot`` with one burst of ``rows`` segments, taken whole."""
    burst = rows_of(rows, slot)
    send_gso(sender, receiver, burst)
    got, _, _ = receive_exactly(receiver, rows, slot, family=family, capacity=64)
    assert got == burst


def queue_bursts(receiver, sender, bursts):
    """Send each (count, size, last) burst as one GSO send, or a plain datagram for count 0."""
    expected = []
    for number, (count, size, last) in enumerate(bursts):
        if count == 0:
            payload = bytes([number]) * size
            sender.sendto(payload, receiver.getsockname())
            expected.append(payload)
            continue
        burst = [bytes([number]) + p[1:] for p in rows_of(count, size, last)]
        send_gso(sender, receiver, burst)
        expected += burst
    return expected


@pytest.mark.parametrize("capacity", [3, 17, 40, 1024])
def test_direct_path_moves_short_super_datagrams_down(gro_pair, family_host, backend, capacity):
    """Super-datagrams shorter than their run of rows, then a plain one: no empty rows between,
    in order, each with its source address, across calls when the rows run out."""
    receiver, sender = gro_pair
    family, _ = family_host
    teach_direct_path(receiver, sender, family, 16)
    expected = queue_bursts(
        receiver,
        sender,
        [(16, 256, None), (5, 256, 9), (16, 256, None), (2, 256, None), (0, 80, None), (16, 256, 1)],
    )
    got, addresses, truncated = receive_exactly(
        receiver, len(expected), 256, family=family, capacity=capacity
    )
    assert got == expected
    assert set(addresses) == {sender.getsockname()}
    assert not any(truncated)
    assert kernel_queue_is_empty(receiver)


@pytest.mark.parametrize("capacity", [1, 7, 33, 200])
def test_direct_path_super_datagram_longer_than_its_run(gro_pair, family_host, capacity):
    """A super-datagram longer than the run the last one taught (mid-call, then the rest of
    the call from the area): every datagram once, in order, across calls."""
    receiver, sender = gro_pair
    family, _ = family_host
    teach_direct_path(receiver, sender, family, 4)
    expected = queue_bursts(
        receiver, sender, [(20, 256, None), (30, 256, 3), (4, 256, None), (0, 256, None), (10, 256, None)]
    )
    got, _, truncated = receive_exactly(receiver, len(expected), 256, family=family, capacity=capacity)
    assert got == expected and not any(truncated)
    assert kernel_queue_is_empty(receiver)


@pytest.mark.parametrize("capacity", [5, 12, 64, 500])
def test_direct_path_segment_size_changes_mid_call(gro_pair, family_host, capacity):
    """The sender changes its segment size between super-datagrams queued for one call:
    the rows follow the datagrams, those longer than the slot cut and flagged."""
    receiver, sender = gro_pair
    family, _ = family_host
    teach_direct_path(receiver, sender, family, 16)
    expected = queue_bursts(
        receiver,
        sender,
        [(16, 256, None), (10, 100, 7), (16, 256, None), (5, 600, None), (16, 256, 30), (3, 256, None)],
    )
    got, _, truncated = receive_exactly(receiver, len(expected), 256, family=family, capacity=capacity)
    assert got == [p[:256] for p in expected]
    assert truncated == [len(p) > 256 for p in expected]


@pytest.mark.parametrize("capacity", [17, 40, 100])
def test_direct_path_carries_over_between_calls_with_several_messages(
    gro_pair, family_host, backend, capacity
):
    """Ten bursts of 16 segments taken by batches that end inside a burst: the rest of it is
    carried over into the next call, ahead of what is still queued."""
    receiver, sender = gro_pair
    family, _ = family_host
    teach_direct_path(receiver, sender, family, 16)
    expected = queue_bursts(receiver, sender, [(16, 256, None)] * 9 + [(16, 256, 200)])
    batch = fastnet.Batch(capacity, 256, family=family)
    got = []
    deadline = time.monotonic() + 10
    while len(got) < len(expected) and time.monotonic() < deadline:
        n = receiver.recv_batch(batch, timeout=2)
        got += [bytes(batch.payload(i)) for i in range(n)]
    assert got == expected
    if backend == "cython":
        assert receiver._engine_state.gro_area.direct_segment_size == 256


@pytest.mark.parametrize("capacity", [50, 140, 1024])
def test_direct_path_fixed_size_batches_with_a_short_last_buffer(gro_pair, family_host, capacity):
    """Batches of 70 datagrams sent as a 64-segment buffer and a 6-segment one, again and
    again: the short buffers come at a fixed interval, wherever the calls end."""
    receiver, sender = gro_pair
    family, _ = family_host
    teach_direct_path(receiver, sender, family, 16)
    expected = []
    for number in range(8):
        payloads = [bytes([number]) + p[1:] for p in rows_of(70, 256)]
        send_gso(sender, receiver, payloads)
        expected += payloads
    got, _, truncated = receive_exactly(receiver, len(expected), 256, family=family, capacity=capacity)
    assert got == expected and not any(truncated)
    assert kernel_queue_is_empty(receiver)
