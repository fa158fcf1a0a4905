"""Hostile arguments to the core entry points: a defined result or a clear exception.

A crash here would kill the test process, so each case has to return or raise
one of the documented exception types; where an engine reads a Batch's rows
for hostile lengths, guard bytes around the arrays (tests/guards.py) and the
datagrams that arrive show that it stayed inside them.
"""

import math
import socket as stdsocket

import numpy as np
import pytest
from guards import guarded_batch
from helpers import receive_exactly
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnet

CLEAR_ERRORS = (TypeError, ValueError, OverflowError, OSError, MemoryError)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.text(max_size=5), st.integers()),
)

settings.register_profile(
    "hostile", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool)


@settings(settings.get_profile("hostile"))
@given(capacity=anything, slot_size=anything)
def test_batch_shapes(capacity, slot_size):
    valid = (
        _whole(capacity)
        and _whole(slot_size)
        and 0 < capacity <= fastnet.Batch.MAX_CAPACITY
        and 0 < slot_size <= fastnet.Batch.MAX_SLOT_SIZE
        and capacity * slot_size <= fastnet.Batch.MAX_TOTAL_BYTES
    )
    if not valid:
        with pytest.raises((TypeError, ValueError)):
            fastnet.Batch(capacity, slot_size)
    elif capacity * slot_size <= 2**26:
        batch = fastnet.Batch(capacity, slot_size)
        assert batch.data.shape == (capacity, slot_size)


# Hosts are numeric, malformed before any lookup, or "localhost" (/etc/hosts):
# a free-text host would make the resolver send DNS queries off this machine.
HOSTS = st.sampled_from(
    [
        "127.0.0.1",
        "127.1",
        "::1",
        "localhost",
        "127.0.0.1\x00",
        "\x00",
        "x" * 300,
        b"127.0.0.1",
        None,
        127,
        ("127.0.0.1",),
    ]
)


@settings(settings.get_profile("hostile"))
@given(
    address=st.one_of(
        st.integers(),
        st.none(),
        st.text(alphabet="0123456789.:", max_size=12),
        st.tuples(HOSTS, anything),
        st.tuples(HOSTS, anything, anything),
        st.tuples(HOSTS, anything, anything, anything, anything),
    )
)
def test_send_batch_addresses(backend, address):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        batch = fastnet.Batch.from_payloads([b"x"])
        try:
            sent = sock.send_batch(batch, address)
        except CLEAR_ERRORS:
            return
        # Only a well-formed IPv4 loopback address can have been accepted.
        assert sent == 1
        assert address[0] in ("127.0.0.1", "127.1", "localhost")
        assert isinstance(address[1], int) and 0 <= address[1] <= 65535


@settings(settings.get_profile("hostile"))
@given(timeout=anything)
def test_recv_batch_timeouts(backend, timeout):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        sock.bind(("127.0.0.1", 0))
        batch = fastnet.Batch(2, 2)
        finite_small = (
            isinstance(timeout, (int, float))
            and not isinstance(timeout, bool)
            and not math.isnan(timeout)
            and 0 <= timeout <= 0.01
        )
        if finite_small:
            with pytest.raises((TimeoutError, BlockingIOError)):
                sock.recv_batch(batch, timeout=timeout)
        elif timeout is None or (
            isinstance(timeout, (int, float))
            and not isinstance(timeout, bool)
            and not math.isnan(timeout)
            and timeout > 0.01
        ):
            return  # a valid long wait: not waited for here
        else:
            with pytest.raises((TypeError, ValueError)):
                sock.recv_batch(batch, timeout=timeout)


@settings(settings.get_profile("hostile"))
@given(lengths=st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=1, max_size=8))
def test_send_batch_with_hostile_lengths_never_reads_out_of_bounds(backend, lengths):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        batch, guards = guarded_batch(len(lengths), 16)
        batch.data[:] = np.arange(1, 17, dtype=np.uint8)  # no guard byte in any row
        batch.count = len(lengths)
        batch.lengths[:] = lengths
        if all(0 <= n <= 16 for n in lengths):
            assert sender.send_batch(batch, receiver.getsockname()) == len(lengths)
            # Each datagram is its row's first bytes: nothing read from beyond them.
            got = receive_exactly(receiver, len(lengths), 64)[0]
            assert got == [bytes(range(1, 17))[:n] for n in lengths]
        else:
            with pytest.raises(ValueError):
                sender.send_batch(batch, receiver.getsockname())
            with pytest.raises(BlockingIOError):  # refused before anything was sent
                receiver.recv_batch(fastnet.Batch(1, 64), timeout=0)
        guards.check()


@settings(settings.get_profile("hostile"))
@given(index=anything)
def test_batch_accessors(index):
    batch = fastnet.Batch.from_payloads([b"ab", b"c"])
    try:
        view = batch.payload(index)
    except (TypeError, IndexError):
        return
    assert bytes(view) in (b"ab", b"c")


@settings(settings.get_profile("hostile"))
@given(value=anything)
def test_batch_fill_and_count(value):
    batch = fastnet.Batch(4, 4)
    try:
        batch.fill(0, value)
    except (TypeError, ValueError):
        pass
    else:
        assert batch.count == 1 and batch.lengths[0] <= 4
    try:
        batch.count = value
    except (TypeError, ValueError):
        pass
    else:
        assert 0 <= batch.count <= 4


@settings(settings.get_profile("hostile"))
@given(
    flowinfo=st.integers(min_value=-(2**40), max_value=2**40),
    scope_id=st.integers(min_value=-(2**40), max_value=2**40),
)
def test_ipv6_address_fields(backend, flowinfo, scope_id):
    with fastnet.socket(stdsocket.AF_INET6, stdsocket.SOCK_DGRAM, backend=backend) as sock:
        batch = fastnet.Batch.from_payloads([b"x"], family=stdsocket.AF_INET6)
        valid = 0 <= flowinfo < 2**20 and 0 <= scope_id < 2**32
        try:
            sock.send_batch(batch, ("::1", 9, flowinfo, scope_id))
        except ValueError:
            assert not valid
        except OSError:
            assert scope_id != 0  # a scope that names no interface is the kernel's to refuse
        else:
            assert valid
