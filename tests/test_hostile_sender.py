"""Sender and multicast with hostile parameters: a defined result or a clear exception."""

import math
import socket as stdsocket

import pytest
from helpers import receive_exactly
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fastnet
from fastnet.core.multicast import (
    IP_ADD_SOURCE_MEMBERSHIP,
    IP_DROP_SOURCE_MEMBERSHIP,
    MCAST_JOIN_SOURCE_GROUP,
    MCAST_LEAVE_SOURCE_GROUP,
)
from fastnet.send import pacing as _pacing

HOSTILE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CLEAR = (TypeError, ValueError, OverflowError, OSError)

RATES = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1e-300, 1e-9, 0.5, 1e5, 1e9, 1e300, 2**70, math.nan, math.inf, -math.inf]),
    st.floats(),
    st.integers(-5, 10**7),
    st.text(max_size=3),
    st.just(b"1"),
)
BURSTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 5000),
    st.floats(),
    st.text(max_size=2),
    st.sampled_from([2**63, 2**70]),
)
# Numeric hosts or "localhost" only: a free-text host would be looked up by DNS.
HOSTS = st.sampled_from(["127.0.0.1", "::1", "localhost", "127.0.0.1\x00", None, 7, b"127.0.0.1"])


def _rate_ok(value):
    return value is None or (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and value > 0
        and not math.isinf(value)
    )


@HOSTILE
@given(pps=RATES, bps=RATES, burst=BURSTS)
def test_sender_rates_and_bursts(pair, pps, bps, burst):
    receiver, _ = pair
    try:
        sender = fastnet.Sender(
            receiver.getsockname(), pps=pps, bps=bps, burst=burst, backend=receiver.backend
        )
    except CLEAR:
        assert not (
            _rate_ok(pps)
            and _rate_ok(bps)
            and (burst is None or (isinstance(burst, int) and not isinstance(burst, bool) and burst > 0))
        )
        return
    assert _rate_ok(pps) and _rate_ok(bps)
    with sender:
        # Only rates that send three datagrams in well under a second are run.
        fast = all(rate is None or rate >= 10_000 for rate in (pps, bps))
        if fast:
            batch = fastnet.Batch.from_payloads([b"abc"] * 3, family=receiver.family)
            assert sender.send_batch(batch) == 3
            assert sender.stats.sent == 3 and sender.stats.bytes == 9
            assert 1 <= sender.burst <= max(1024, burst or 0)
    if fast:
        assert receive_exactly(receiver, 3, 8, family=receiver.family)[0] == [b"abc"] * 3


@HOSTILE
@given(
    address=st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=5),
        st.tuples(HOSTS, st.one_of(st.integers(-1, 70000), st.none(), st.text(max_size=2))),
        st.tuples(HOSTS, st.integers(0, 9), st.integers(-1, 2**33), st.integers(-1, 2**33)),
        st.tuples(HOSTS),
    ),
    backend=st.sampled_from(fastnet.available_backends() + ["gpu", None, 5, [], ""]),
    gso=st.sampled_from([None, True, False, 1, "yes"]),
    interface=st.sampled_from([None, "lo", 1, -1, True, "no-such-if0", 2.5]),
)
def test_sender_construction(address, backend, gso, interface):
    try:
        sender = fastnet.Sender(address, backend=backend, gso=gso, interface=interface)
    except CLEAR:
        return
    with sender:
        assert sender.address[1] == address[1]
        assert sender.socket.backend in fastnet.available_backends()


def test_a_very_slow_rate_sleeps_in_bounded_slices(monkeypatch):
    """pps=1e-12 is one datagram per 31,000 years: waiting must not overflow time.sleep."""
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        raise KeyboardInterrupt  # stop at the first sleep

    monkeypatch.setattr(_pacing, "_sleep", sleep)
    with fastnet.Sender(("127.0.0.1", 9), pps=1e-12) as sender:
        with pytest.raises(KeyboardInterrupt):
            sender.send(b"x")
    assert slept and 0 < slept[0] <= _pacing.MAX_SLEEP_S
    assert sender.stats.sent == 0


# -- multicast: the arguments, checked before any system call ----------------------


class _Recorder:
    """Stands in for a socket: records setsockopt calls instead of making them."""

    def __init__(self, family):
        self.family = family
        self.calls = []

    def setsockopt(self, level, option, value):
        self.calls.append((level, option, value))


GROUPS = st.sampled_from(
    [
        "239.1.2.3",
        "224.0.0.1",
        "ff1e::1234",
        "ff02::1",
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "239.1.2.3%lo",
        "",
        "x",
        "239.1.2.300",
        None,
        239,
        b"239.1.2.3",
    ]
)
INTERFACES = st.sampled_from(
    [None, "lo", 1, 0, -1, 2**40, True, 1.5, "127.0.0.1", "::1", "no-such-if0", "lo\x00", "x" * 40, b"lo"]
)
SOURCES = st.sampled_from(
    [None, "127.0.0.1", "10.9.8.7", "::1", "fe80::1", "239.9.9.9", "ff1e::1", "x", 5, b"127.0.0.1"]
)


@HOSTILE
@given(
    family=st.sampled_from([stdsocket.AF_INET, stdsocket.AF_INET6]),
    group=GROUPS,
    interface=INTERFACES,
    source=SOURCES,
    join=st.booleans(),
)
@example(family=stdsocket.AF_INET, group="239.1.2.3", interface=2**40, source=None, join=True)
@example(family=stdsocket.AF_INET6, group="ff1e::1234", interface=2**40, source="::1", join=False)
def test_membership_arguments(family, group, interface, source, join):
    sock = _Recorder(family)
    call = fastnet.join_group if join else fastnet.leave_group
    try:
        call(sock, group, interface=interface, source=source)
    except (TypeError, ValueError, OverflowError):
        assert sock.calls == []  # refused before any system call
        return
    # Accepted: one option, on the socket family's level, with a whole structure.
    ((level, option, value),) = sock.calls
    if family == stdsocket.AF_INET:
        assert level == stdsocket.IPPROTO_IP
        sizes = {
            stdsocket.IP_ADD_MEMBERSHIP: 12,
            stdsocket.IP_DROP_MEMBERSHIP: 12,
            IP_ADD_SOURCE_MEMBERSHIP: 12,
            IP_DROP_SOURCE_MEMBERSHIP: 12,
            MCAST_JOIN_SOURCE_GROUP: 264,
            MCAST_LEAVE_SOURCE_GROUP: 264,
        }
    else:
        assert level == stdsocket.IPPROTO_IPV6
        sizes = {
            stdsocket.IPV6_JOIN_GROUP: 20,
            stdsocket.IPV6_LEAVE_GROUP: 20,
            MCAST_JOIN_SOURCE_GROUP: 264,
            MCAST_LEAVE_SOURCE_GROUP: 264,
        }
    assert len(value) == sizes[option]
    assert isinstance(group, str)


@HOSTILE
@given(
    family=st.sampled_from([stdsocket.AF_INET, stdsocket.AF_INET6]),
    interface=INTERFACES,
    ttl=st.one_of(st.integers(-2, 300), st.none(), st.booleans(), st.floats(), st.text(max_size=2)),
    loop=st.one_of(st.booleans(), st.none(), st.integers(), st.text(max_size=2)),
)
def test_prepare_multicast_sender_arguments(backend, family, interface, ttl, loop):
    with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sock:
        try:
            fastnet.prepare_multicast_sender(sock, interface=interface, ttl=ttl, loop=loop)
        except (TypeError, ValueError, OverflowError, OSError):
            return
        assert isinstance(ttl, int) and not isinstance(ttl, bool) and 0 <= ttl <= 255
        level, hops, looping = (
            (stdsocket.IPPROTO_IP, stdsocket.IP_MULTICAST_TTL, stdsocket.IP_MULTICAST_LOOP)
            if family == stdsocket.AF_INET
            else (stdsocket.IPPROTO_IPV6, stdsocket.IPV6_MULTICAST_HOPS, stdsocket.IPV6_MULTICAST_LOOP)
        )
        assert sock.getsockopt(level, hops) == ttl
        assert sock.getsockopt(level, looping) == int(bool(loop))
