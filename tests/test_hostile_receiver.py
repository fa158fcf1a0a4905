"""Receiver and SeqField with hostile parameters: a working receiver or a clear exception.

A Receiver that constructs must receive what is sent to it and close
cleanly, releasing its thread and socket; one that does not must have
raised TypeError/ValueError/OSError before allocating its ring. The ring's
batches have guard bytes around their arrays (tests/guards.py), checked
untouched once the receiver is closed.
"""

import math
import os
import threading
import time

import numpy as np
import pytest
from guards import Guards
from helpers import HANG_S
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import fastnet
from fastnet.receive import receiver as _receiver
from fastnet.receive.seq import SeqTracker

HOSTILE = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLEAR = (TypeError, ValueError, OverflowError, OSError)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=4),
)


def mostly(valid, hostile):
    """``valid`` five times in six, else ``hostile``: most receivers get built and used."""
    return st.tuples(st.integers(0, 5), valid, hostile).map(lambda t: t[2] if t[0] == 0 else t[1])


# Sizes that construct quickly (the ring is allocated up front), and hostile ones.
SIZES = mostly(st.integers(1, 64), st.sampled_from([0, -1, 2**31, 2**70, True, 1.5, "8"]))
# Addresses a Receiver accepts: a port, "HOST:PORT", or a tuple. Hosts are
# numeric or "localhost": a free-text host would be looked up by DNS.
_HOSTS = ["127.0.0.1", "::1", "localhost", "127.0.0.1\x00", None, 7]
ADDRESSES = mostly(
    st.sampled_from([0, "127.0.0.1:0", ("127.0.0.1", 0), "[::1]:0", ("::1", 0)]),
    st.one_of(
        st.integers(-1, 70000),
        st.none(),
        st.booleans(),
        st.floats(),
        st.sampled_from(
            [
                "0",
                "127.0.0.1:0",
                "[::1]:0",
                ":0",
                "localhost:0",
                "127.0.0.1:",
                "127.0.0.1:99999",
                "[::1]0",
                "1:2:3",
                "",
            ]
        ),
        st.text(alphabet="0123456789 +-_", max_size=6),
        st.tuples(st.sampled_from(_HOSTS), st.one_of(st.integers(-1, 70000), st.none())),
        st.tuples(st.sampled_from(_HOSTS), st.just(0), anything, anything),
    ),
)


def _fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def ring_guards(monkeypatch):
    """Guards around every Batch a Receiver allocates (its ring, spare and scratch)."""
    guards = Guards()
    real = _receiver.Batch

    def guarded(*args, **kwargs):
        return guards.add(real(*args, **kwargs))

    monkeypatch.setattr(_receiver, "Batch", guarded)
    return guards


@HOSTILE
@given(
    address=ADDRESSES,
    slot_size=SIZES,
    batch_size=SIZES,
    ring_size=SIZES,
    rcvbuf=mostly(st.sampled_from([None, 1, 65536]), st.sampled_from([0, -5, 2**31, 2**40, 1.5, "4M"])),
    on_full=mostly(st.sampled_from(["block", "drop"]), st.sampled_from(["BLOCK", "", None, 1])),
    seq=mostly(
        st.sampled_from([None, fastnet.SeqField()]),
        st.sampled_from([fastnet.SeqField(offset=60, size=2), 5, "seq"]),
    ),
)
@example(address=0, slot_size=64, batch_size=64, ring_size=2**17, rcvbuf=None, on_full="block", seq=None)
@example(address=0, slot_size=2**26, batch_size=1024, ring_size=64, rcvbuf=None, on_full="block", seq=None)
def test_receiver_construction(
    backend, ring_guards, address, slot_size, batch_size, ring_size, rcvbuf, on_full, seq
):
    ring_guards.clear()
    fds, threads = _fds(), threading.active_count()
    try:
        rx = fastnet.Receiver(
            address,
            slot_size=slot_size,
            batch_size=batch_size,
            ring_size=ring_size,
            rcvbuf=rcvbuf,
            on_full=on_full,
            seq=seq,
            backend=backend,
        )
    except CLEAR:
        assert (_fds(), threading.active_count()) == (fds, threads)  # nothing left open
        event("refused")
        return
    event("received")
    with rx:
        with fastnet.socket(rx.family, fastnet.SOCK_DGRAM, backend=backend) as sender:
            host = "::1" if rx.family == fastnet.AF_INET6 else "127.0.0.1"
            payload = bytes(range(8)) * 8
            sender.sendto(payload, (host, rx.address[1]))
            batch = rx.get(timeout=5)
            assert bytes(batch.payload(0)) == payload[:slot_size]
            assert bool(batch.truncated[0]) == (slot_size < 64)
    assert len(ring_guards) > 0  # the ring's batches were guarded
    ring_guards.check()
    stats = rx.stats
    assert stats.accounted == 1
    assert (_fds(), threading.active_count()) == (fds, threads)


@HOSTILE
@given(timeout=st.one_of(anything, st.sampled_from([math.inf, 1e10, 1e300, 0, 0.001, -0.0])))
def test_receiver_get_timeouts(backend, timeout):
    with fastnet.Receiver(0, slot_size=16, batch_size=4, ring_size=2, backend=backend) as rx:
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender:
            sender.sendto(b"x", rx.address)
        # Captured already: any valid timeout, 0 included, returns it at once.
        deadline = time.monotonic() + HANG_S
        while rx.stats.packets < 1:
            assert time.monotonic() < deadline, "the datagram was not captured"
            time.sleep(0.001)
        try:
            batch = rx.get(timeout=timeout)
        except (TypeError, ValueError):
            assert not (
                timeout is None
                or isinstance(timeout, (int, float))
                and not isinstance(timeout, bool)
                and timeout >= 0
            )
            return
        assert bytes(batch.payload(0)) == b"x"


def test_a_ring_too_large_is_refused_before_allocating(backend):
    with pytest.raises(ValueError, match="ring_size"):
        fastnet.Receiver(0, ring_size=2**40, backend=backend)
    with pytest.raises(ValueError, match="bytes"):
        fastnet.Receiver(0, ring_size=4096, batch_size=4096, slot_size=65536, backend=backend)


# -- SeqField and its tracker ------------------------------------------------------------


@HOSTILE
@given(offset=anything, size=anything, byteorder=anything)
def test_seqfield_arguments(offset, size, byteorder):
    try:
        field = fastnet.SeqField(offset=offset, size=size, byteorder=byteorder)
    except (TypeError, ValueError):
        return
    assert field.size in (2, 4, 8) and field.offset >= 0 and field.end == offset + size


@HOSTILE
@given(
    count=st.one_of(st.none(), anything),
    lengths=st.lists(st.integers(0, 16), min_size=1, max_size=6),
    offset=st.integers(0, 20),
    size=st.sampled_from([2, 4, 8]),
)
def test_seqfield_values_on_any_batch(count, lengths, offset, size):
    field = fastnet.SeqField(offset=offset, size=size)
    batch = fastnet.Batch(len(lengths), 16)
    batch.data[:] = np.arange(16, dtype=np.uint8)
    batch.lengths[:] = lengths
    batch.count = len(lengths)
    try:
        values, readable = field.values(batch, count)
    except (TypeError, ValueError):
        return
    n = batch.count if count is None else count
    assert 0 <= n <= batch.capacity and field.end <= 16
    assert readable.tolist() == [length >= field.end for length in lengths[:n]]
    assert len(values) == sum(readable)


@HOSTILE
@given(window=anything)
def test_seqtracker_window(window):
    if isinstance(window, int) and not isinstance(window, bool) and window > 2**20:
        window = 2**20 + 1  # a valid but large window is a large array: keep it small here
    try:
        tracker = SeqTracker(fastnet.SeqField(), window)
    except (TypeError, ValueError, OverflowError):
        return
    assert tracker.window >= 1


@HOSTILE
@given(payloads=st.lists(st.binary(min_size=0, max_size=10), min_size=1, max_size=20))
def test_seqtracker_counts_every_row_once_whatever_the_payloads(payloads):
    tracker = SeqTracker(fastnet.SeqField(size=2))
    batch = fastnet.Batch.from_payloads(payloads, slot_size=10)
    tracker.update(batch)
    readable = sum(len(p) >= 2 for p in payloads)
    assert tracker.short == len(payloads) - readable
    assert tracker.lost >= 0 and tracker.gaps >= 0
    assert tracker.duplicates + tracker.reordered <= readable
