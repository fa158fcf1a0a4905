"""recv_batch and send_batch: counts, sizes, truncation, addresses, identity across backends."""

import socket as stdsocket

import numpy as np
import pytest
from helpers import AVAILABLE, numbered_payloads, receive_exactly
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnet

MAX_UDP4 = 65507  # 65535 - 8 (UDP header) - 20 (IPv4 header)


@pytest.mark.parametrize(
    "count,size",
    [
        (1, 0),
        (1, 1),
        (1, MAX_UDP4),
        (7, 1472),
        (1024, 0),
        (1024, 64),
        (1024, 1472),
        (48, MAX_UDP4),
    ],
)
def test_batch_round_trip(pair, family_host, count, size):
    receiver, sender = pair
    family, _ = family_host
    payloads = numbered_payloads(count, size)
    batch = fastnet.Batch.from_payloads(payloads, slot_size=max(size, 1), family=family)
    assert sender.send_batch(batch, receiver.getsockname()) == count
    got, addresses, truncated = receive_exactly(receiver, count, max(size, 1), family=family)
    assert got == payloads
    assert set(addresses) == {sender.getsockname()}
    assert not any(truncated)


def test_capacity_over_1024_takes_everything_queued(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    payloads = numbered_payloads(3000, 16)
    batch = fastnet.Batch.from_payloads(payloads, family=family)
    assert sender.send_batch(batch, receiver.getsockname()) == 3000
    big = fastnet.Batch(4096, 16, family=family)
    assert receiver.recv_batch(big, timeout=2) == 3000  # all queued, several recvmmsg chunks
    assert [bytes(p) for p, _ in big] == payloads


def test_receive_takes_what_is_queued_without_waiting_for_capacity(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    for i in range(3):
        sender.sendto(bytes([i]), receiver.getsockname())
    batch = fastnet.Batch(64, 8, family=family)
    # Returns at once with the 3 queued, although capacity is 64 and the
    # timeout is long: a test that hung here would fail by its own bound.
    assert receiver.recv_batch(batch, timeout=30) == 3
    assert [bytes(batch.payload(i)) for i in range(3)] == [b"\x00", b"\x01", b"\x02"]


def test_truncation_is_flagged_and_never_overflows_slot(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    sizes = [0, 5, 8, 9, 100, 2000]
    payloads = [bytes([65 + i]) * size for i, size in enumerate(sizes)]
    for payload in payloads:
        sender.sendto(payload, receiver.getsockname())
    batch = fastnet.Batch(8, 8, family=family)
    batch.data[:] = 0xEE  # sentinel: nothing may be written past a row's length
    assert receiver.recv_batch(batch, timeout=2) == len(sizes)
    for i, size in enumerate(sizes):
        stored = min(size, 8)
        assert batch.lengths[i] == stored
        assert bytes(batch.payload(i)) == payloads[i][:stored]
        assert bool(batch.truncated[i]) == (size > 8)
        assert (batch.data[i, stored:] == 0xEE).all()
    assert (batch.data[len(sizes) :] == 0xEE).all()


def test_addresses_match_recvfrom(pair, family_host, backend):
    receiver, sender = pair
    family, host = family_host
    other = fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend)
    other.bind((host, 0))
    try:
        sender.sendto(b"a", receiver.getsockname())
        other.sendto(b"b", receiver.getsockname())
        sender.sendto(b"c", receiver.getsockname())
        batch = fastnet.Batch(4, 4, family=family)
        assert receiver.recv_batch(batch, timeout=2) == 3
        expected = [sender.getsockname(), other.getsockname(), sender.getsockname()]
        assert [batch.address(i) for i in range(3)] == expected
        assert list(batch.ports[:3]) == [address[1] for address in expected]
        assert [address for _, address in batch] == expected
        packed = stdsocket.inet_pton(family, host)
        assert all(batch.addresses[i].tobytes() == packed for i in range(3))
    finally:
        other.close()


def test_timestamps_are_kernel_receive_times(pair, family_host):
    import time

    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(4, 8, family=family)
    sender.sendto(b"off", receiver.getsockname())
    receiver.recv_batch(batch, timeout=2)
    assert batch.timestamps[0] == 0
    receiver.enable_timestamps()
    before = time.time_ns()
    sender.sendto(b"on", receiver.getsockname())
    receiver.recv_batch(batch, timeout=2)
    after = time.time_ns()
    assert before <= batch.timestamps[0] <= after


def test_connected_socket_sends_without_address(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    sender.connect(receiver.getsockname())
    batch = fastnet.Batch.from_payloads([b"x", b"yy"], family=family)
    assert sender.send_batch(batch) == 2
    got, _, _ = receive_exactly(receiver, 2, 4, family=family)
    assert got == [b"x", b"yy"]


def test_send_to_a_hostname_resolves_like_sendto(backend):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        assert sender.send_batch(fastnet.Batch.from_payloads([b"hi"]), ("localhost", port)) == 1
        got, _, _ = receive_exactly(receiver, 1, 4)
        assert got == [b"hi"]


def test_empty_batch_sends_nothing(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(4, 4, family=family)
    assert sender.send_batch(batch, receiver.getsockname()) == 0


def test_error_after_partial_send_carries_the_count(backend):
    # The fourth row is over the largest IPv4 UDP datagram: the kernel sends
    # rows 0-2, then refuses row 3 with EMSGSIZE. The exception says 3 went.
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        batch = fastnet.Batch(5, MAX_UDP4 + 1)
        for i, size in enumerate([10, 10, 10, MAX_UDP4 + 1, 10]):
            batch.fill(i, bytes(size))
        with pytest.raises(OSError) as info:
            sender.send_batch(batch, receiver.getsockname())
        assert info.value.errno == 90  # EMSGSIZE
        assert info.value.sent == 3
        got, _, _ = receive_exactly(receiver, 3, 16)
        assert got == [bytes(10)] * 3


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs both backends")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=200),
    slot_size=st.integers(min_value=1, max_value=2048),
)
def test_backends_fill_byte_identical_batches(sizes, slot_size):
    """Identical traffic to one receiver per backend gives identical batches."""
    receivers = {}
    try:
        for name in AVAILABLE:
            sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=name)
            sock.bind(("127.0.0.1", 0))
            sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4 << 20)
            receivers[name] = sock
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="python") as sender:
            payloads = [bytes((i * 7 + j) % 256 for j in range(size)) for i, size in enumerate(sizes)]
            for receiver in receivers.values():
                for payload in payloads:
                    sender.sendto(payload, receiver.getsockname())
        batches = {}
        for name, receiver in receivers.items():
            batch = fastnet.Batch(256, slot_size)
            assert receiver.recv_batch(batch, timeout=2) == len(sizes)
            batches[name] = batch
        reference, *others = batches.values()
        n = len(sizes)
        for batch in others:
            for array in (
                "lengths",
                "truncated",
                "addresses",
                "ports",
                "flowinfo",
                "scope_ids",
                "timestamps",
            ):
                np.testing.assert_array_equal(
                    getattr(batch, array)[:n], getattr(reference, array)[:n], err_msg=array
                )
            for i in range(n):
                assert batch.payload(i) == reference.payload(i)
    finally:
        for sock in receivers.values():
            sock.close()


# -- a Batch sent again and again: the common case and every way out of it ----------
# Each call below is the common case but for one thing; each must behave as the
# first call of its kind does (on the Cython engine the common case takes one
# engine call, src/_send_lane.pxi, and hands any other case to the general path).


def test_a_batch_sent_again_to_an_equal_address_tuple_arrives_each_time(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    payloads = numbered_payloads(40, 100)
    batch = fastnet.Batch.from_payloads(payloads, family=family)
    for _ in range(3):  # a new tuple each time, equal to the last one
        assert sender.send_batch(batch, tuple(receiver.getsockname())) == 40
        got, _, _ = receive_exactly(receiver, 40, 100, family=family)
        assert got == payloads


def _sent_once(pair, family_host):
    """``(sender, batch, address)`` after one send of 8 rows: the next call is the same call again."""
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch.from_payloads(numbered_payloads(8, 10), family=family)
    address = receiver.getsockname()
    assert sender.send_batch(batch, address) == 8
    return sender, batch, address


def test_a_batch_in_use_by_another_call_is_refused_every_time(pair, family_host):
    receiver, _ = pair
    family, _ = family_host
    sender, batch, address = _sent_once(pair, family_host)
    batch._claim("recv_batch")  # as a call in another thread would hold it
    try:
        for _ in range(2):
            with pytest.raises(RuntimeError, match="in use by recv_batch"):
                sender.send_batch(batch, address)
    finally:
        batch._release()
    assert sender.send_batch(batch, address) == 8
    got, _, _ = receive_exactly(receiver, 16, 10, family=family)
    assert got == numbered_payloads(8, 10) * 2


def test_a_socket_closed_after_sends_refuses_the_next_one(pair, family_host):
    sender, batch, address = _sent_once(pair, family_host)
    sender.close()
    with pytest.raises(OSError) as raised:
        sender.send_batch(batch, address)
    assert raised.value.errno == 9  # EBADF, as socket.sendto on a closed socket
    assert batch._user is None  # the Batch is free for the next call


def test_a_reshaped_batch_is_refused_after_sends(pair, family_host):
    sender, batch, address = _sent_once(pair, family_host)
    rows, slot = batch._data.shape
    batch._data.shape = (rows // 2, slot * 2)
    with pytest.raises(ValueError, match="reshaped"):
        sender.send_batch(batch, address)
    batch._data.shape = (rows, slot)
    rows, width = batch._addresses.shape
    batch._addresses.shape = (rows * 2, width // 2)
    with pytest.raises(ValueError, match="reshaped"):
        sender.send_batch(batch, address)


def test_a_connection_refused_after_sends_is_raised_with_the_rows_sent(backend, family_host):
    """A connected socket whose peer is gone: the kernel reports it on a later send."""
    family, host = family_host
    with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as gone:
        gone.bind((host, 0))
        port = gone.getsockname()[1]
    with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender:
        sender.connect((host, port))
        batch = fastnet.Batch.from_payloads(numbered_payloads(8, 10), family=family)
        errors = []
        for _ in range(20):  # the ICMP error arrives after one of the first sends
            try:
                sender.send_batch(batch)
            except ConnectionRefusedError as exc:
                errors.append(exc)
                break
        assert errors, "no send reported the closed port"
        assert getattr(errors[0], "sent", None) == 0
