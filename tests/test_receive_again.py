"""A Batch received into again and again: the common case and every way out of it.

On the Cython engine the common case of ``recv_batch`` is one engine call,
its waits included (src/_recv_lane.pxi); any other case goes, before
anything is done, to the socket's general path (``socket._recv_batch``),
which the pure-Python engine takes every time. Each case below must give
what the general path gives, and take the path it should.
"""

import sys
import threading
import time

import pytest
from helpers import numbered_payloads

import fastnet


@pytest.fixture
def general_calls(pair, monkeypatch):
    """The timeouts of the calls that took the receiver's general path, in order."""
    receiver, _ = pair
    calls = []
    general = receiver._recv_batch

    def counted(batch, timeout):
        calls.append(timeout)
        return general(batch, timeout)

    monkeypatch.setattr(receiver, "_recv_batch", counted)
    return calls


def lane_taken(receiver) -> bool:
    """The engine has a receive lane: the common case does not reach the general path."""
    return receiver._recv_lane is not None


def received_once(pair, family_host):
    """``(receiver, sender, batch)`` after one receive of one datagram: the next call is the same again."""
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(4, 8, family=family)
    sender.sendto(b"one", receiver.getsockname())
    assert receiver.recv_batch(batch, timeout=30) == 1
    return receiver, sender, batch


def test_the_cython_engine_has_a_receive_lane(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        assert lane_taken(sock) == (backend == "cython")
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend) as stream:
        assert not lane_taken(stream)  # recv_batch refuses a stream socket on the general path


@pytest.mark.parametrize("timeout", [None, 2, 2.5, 0, float("inf")], ids=str)
def test_receives_again_and_again_in_the_common_case(pair, family_host, general_calls, timeout):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(16, 32, family=family)
    for round_ in range(3):
        payloads = [b"%d-%d" % (round_, i) for i in range(5)]
        sender.send_batch(fastnet.Batch.from_payloads(payloads, family=family), receiver.getsockname())
        got = []
        for _ in range(1000):  # loopback queues a datagram before its send returns: one call, in practice
            if len(got) == 5:
                break
            try:
                n = receiver.recv_batch(batch, timeout=timeout)
            except BlockingIOError:
                assert timeout == 0
                continue
            assert n == batch.count > 0
            got += [bytes(batch.payload(i)) for i in range(n)]
        assert got == payloads
    assert (general_calls == []) == lane_taken(receiver)


def test_a_wait_in_the_common_case_takes_what_comes_during_it(pair, family_host, general_calls):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(4, 8, family=family)
    for i in range(3):  # each call after a drained one waits before it reads
        late = threading.Timer(0.05, sender.sendto, [b"late%d" % i, receiver.getsockname()])
        late.start()
        try:
            assert receiver.recv_batch(batch, timeout=30) == 1
        finally:
            late.join()
        assert bytes(batch.payload(0)) == b"late%d" % i
    assert len(general_calls) == (0 if lane_taken(receiver) else 3)


def test_the_common_case_times_out_and_says_so(pair, family_host, general_calls):
    receiver, _ = pair
    family, _ = family_host
    batch = fastnet.Batch(4, 8, family=family)
    receiver.settimeout(0.05)
    for timeout in (None, 0.05):
        with pytest.raises(TimeoutError, match="timed out"):
            receiver.recv_batch(batch, timeout=timeout)
        assert batch.count == 0 and batch._user is None
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv_batch(batch)
    assert len(general_calls) == (0 if lane_taken(receiver) else 3)


def test_a_gro_receive_again_and_again_in_the_common_case(pair, family_host, general_calls):
    receiver, sender = pair
    family, _ = family_host
    receiver.enable_gro(True)
    payloads = numbered_payloads(100, 64)
    batch = fastnet.Batch(40, 64, family=family)  # fewer rows than datagrams: rows are carried over
    sender.send_batch(fastnet.Batch.from_payloads(payloads, family=family), receiver.getsockname(), gso=True)
    got = []
    while len(got) < 100:
        n = receiver.recv_batch(batch, timeout=30)
        got += [bytes(batch.payload(i)) for i in range(n)]
    assert got == payloads
    assert (general_calls == []) == lane_taken(receiver)


class SubBatch(fastnet.Batch):
    pass


def test_a_batch_subclass_takes_the_general_path(pair, family_host, general_calls):
    receiver, sender = pair
    family, _ = family_host
    sender.sendto(b"sub", receiver.getsockname())
    batch = SubBatch(4, 8, family=family)
    assert receiver.recv_batch(batch, timeout=30) == 1
    assert bytes(batch.payload(0)) == b"sub"
    assert general_calls == [30]


def test_a_timeout_of_centuries_takes_the_general_path(pair, family_host, general_calls):
    receiver, sender = pair
    family, _ = family_host
    sender.sendto(b"now", receiver.getsockname())
    batch = fastnet.Batch(4, 8, family=family)
    assert receiver.recv_batch(batch, timeout=1e12) == 1
    assert general_calls == [1e12]


@pytest.mark.parametrize(
    "timeout,error", [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError)]
)
def test_a_bad_timeout_after_receives_is_refused(pair, family_host, general_calls, timeout, error):
    receiver, sender, batch = received_once(pair, family_host)
    sender.sendto(b"two", receiver.getsockname())
    with pytest.raises(error):
        receiver.recv_batch(batch, timeout=timeout)
    assert batch._user is None
    assert receiver.recv_batch(batch, timeout=30) == 1  # the datagram is still queued
    assert bytes(batch.payload(0)) == b"two"
    assert len(general_calls) == (1 if lane_taken(receiver) else 3)


def test_a_reshaped_batch_or_another_family_is_refused_after_receives(pair, family_host):
    receiver, _, batch = received_once(pair, family_host)
    other = fastnet.AF_INET6 if batch.family == fastnet.AF_INET else fastnet.AF_INET
    with pytest.raises(ValueError, match="batch is for"):
        receiver.recv_batch(fastnet.Batch(4, 8, family=other), timeout=30)
    batch._data.shape = (8, 4)
    with pytest.raises(ValueError, match="reshaped"):
        receiver.recv_batch(batch, timeout=30)
    batch._data.shape = (4, 8)
    rows, width = batch._addresses.shape
    batch._addresses.shape = (rows * 2, width // 2)
    with pytest.raises(ValueError, match="reshaped"):
        receiver.recv_batch(batch, timeout=30)


def test_a_batch_in_use_is_refused_after_receives(pair, family_host):
    receiver, _, batch = received_once(pair, family_host)
    batch._claim("send_batch")  # as a call in another thread would hold it
    try:
        with pytest.raises(RuntimeError, match="in use by send_batch"):
            receiver.recv_batch(batch, timeout=30)
    finally:
        batch._release()


def test_a_kept_error_is_raised_after_receives(pair, family_host, general_calls):
    receiver, _, batch = received_once(pair, family_host)
    receiver._engine_state.keep_error(ConnectionRefusedError(111, "refused"))
    with pytest.raises(ConnectionRefusedError):
        receiver.recv_batch(batch, timeout=30)
    assert len(general_calls) == (1 if lane_taken(receiver) else 2)


def test_a_receive_while_another_thread_holds_the_lock_waits_for_it(pair, family_host, general_calls):
    receiver, sender = pair
    family, _ = family_host
    sender.sendto(b"one", receiver.getsockname())
    batch = fastnet.Batch(4, 8, family=family)
    held, release = threading.Event(), threading.Event()

    def hold():
        with receiver._lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        threading.Timer(0.1, release.set).start()
        assert receiver.recv_batch(batch, timeout=30) == 1
    finally:
        release.set()
        holder.join()
    assert bytes(batch.payload(0)) == b"one"
    assert general_calls == [30]


def test_a_closed_socket_refuses_the_next_receive(pair, family_host):
    receiver, _, batch = received_once(pair, family_host)
    receiver.close()
    with pytest.raises(OSError) as raised:
        receiver.recv_batch(batch, timeout=30)
    assert raised.value.errno == 9  # EBADF
    assert batch._user is None


def test_receives_in_two_threads_each_take_their_own(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    batches = [fastnet.Batch(64, 16, family=family) for _ in range(2)]
    got = [[], []]

    end = time.monotonic() + 30

    def take(k):
        while sum(map(len, got)) < 200 and time.monotonic() < end:
            try:
                n = receiver.recv_batch(batches[k], timeout=0.2)
            except TimeoutError:
                continue
            got[k] += [bytes(batches[k].payload(i)) for i in range(n)]

    threads = [threading.Thread(target=take, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    payloads = numbered_payloads(200, 16)
    for start in range(0, 200, 20):
        rows = fastnet.Batch.from_payloads(payloads[start : start + 20], family=family)
        sender.send_batch(rows, receiver.getsockname())
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert sorted(got[0] + got[1]) == sorted(payloads)


class _Tagged(fastnet.socket):
    """A subclass with an attribute of its own: the lanes read the socket's fields for its type."""

    def __init__(self, *args, tag, **kwargs):
        super().__init__(*args, **kwargs)
        self.tag = tag


def test_a_subclass_of_socket_sends_receives_and_closes_through_the_lanes(backend, family_host):
    family, host = family_host
    with (
        _Tagged(family, fastnet.SOCK_DGRAM, backend=backend, tag="rx") as receiver,
        _Tagged(family, fastnet.SOCK_DGRAM, backend=backend, tag="tx") as sender,
    ):
        receiver.bind((host, 0))
        assert lane_taken(receiver) == (backend == "cython")
        payloads = numbered_payloads(40, 16)
        batch = fastnet.Batch(64, 16, family=family)
        for _ in range(3):  # again and again, as a receiver that keeps up calls it
            assert (
                sender.send_batch(
                    fastnet.Batch.from_payloads(payloads, family=family), receiver.getsockname()
                )
                == 40
            )
            got = 0
            while got < 40:
                n = receiver.recv_batch(batch, timeout=30)
                assert [bytes(batch.payload(i)) for i in range(n)] == payloads[got : got + n]
                got += n
        assert (receiver.tag, sender.tag) == ("rx", "tx")
        closer = threading.Timer(0.2, receiver.close)
        closer.start()
        with pytest.raises(OSError) as info:
            receiver.recv_batch(batch, timeout=30)  # waits until the close ends it
        closer.join()
        assert info.value.errno == 9
        assert receiver.closed and receiver.fileno() == -1


class _Watched(fastnet.socket):
    """A subclass that makes one of the socket's slot fields a property, counting its writes."""

    def __init__(self, *args, **kwargs):
        self.drained_writes = []
        super().__init__(*args, **kwargs)

    @property
    def _drained(self):
        return self._drained_value

    @_drained.setter
    def _drained(self, value):
        self.drained_writes.append(value)
        self._drained_value = value


def test_a_subclass_that_makes_a_field_a_property_is_honoured(backend, family_host):
    """A name that is no longer a slot in the socket's type is read and written as Python would."""
    family, host = family_host
    with (
        _Watched(family, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind((host, 0))
        batch = fastnet.Batch(8, 16, family=family)
        before = len(receiver.drained_writes)
        for i in range(5):
            sender.sendto(b"%d" % i, receiver.getsockname())
            assert receiver.recv_batch(batch, timeout=30) == 1
            assert bytes(batch.payload(0)) == b"%d" % i
        # Each receive of one row into eight slots emptied the queue.
        assert receiver.drained_writes[before:] == [True] * 5


def test_the_lanes_keep_every_reference_they_store(backend, family_host):
    """The in-use mark (the method's name), stored and cleared on every call, keeps its references exact."""
    family, host = family_host
    with (
        fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind((host, 0))
        rows = fastnet.Batch.from_payloads([b"x" * 8] * 4, family=family)
        batch = fastnet.Batch(8, 16, family=family)
        names = [sys.intern("send_batch"), sys.intern("recv_batch")]
        for _ in range(3):  # warm up: the lanes' first calls bind their fields
            sender.send_batch(rows, receiver.getsockname())
            assert receiver.recv_batch(batch, timeout=30) == 4
        counts = [sys.getrefcount(name) for name in names]
        for _ in range(200):
            sender.send_batch(rows, receiver.getsockname())
            got = 0
            while got < 4:
                got += receiver.recv_batch(batch, timeout=30)
        assert [sys.getrefcount(name) for name in names] == counts
        assert batch._user is None and rows._user is None
