"""GSO and GRO with hostile parameters: a defined result or a clear exception.

Rows of any lengths, any ``gso`` argument, receive batches of any shape:
what was sent is what is received (cut to the slot and flagged when longer),
or the call is refused with TypeError/ValueError before any system call.
Receive batches have guard bytes around their arrays (tests/guards.py): a GRO
split that wrote past a row's slot or the batch's end is seen.
"""

import socket as stdsocket
import struct
import warnings

import pytest
from guards import guarded_batch
from helpers import receive_exactly
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import fastnet
from fastnet import constants as C
from fastnet.engines.python.ancillary import receive_fields
from fastnet.engines.python.offload import GroArea

HOSTILE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OFFLOAD = fastnet.features()["gso"] and fastnet.features()["gro"]
needs_offload = pytest.mark.skipif(not OFFLOAD, reason="kernel without UDP GSO/GRO")


@pytest.fixture
def offload_pair(backend):
    receiver = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    receiver.bind(("127.0.0.1", 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastnet.BufferSizeWarning)  # capped: drops are counted
        receiver.set_buffers(rcvbuf=32 << 20)
    sender = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    sender.bind(("127.0.0.1", 0))
    yield receiver, sender
    receiver.close()
    sender.close()


@HOSTILE
@given(
    gso=st.one_of(
        st.none(), st.booleans(), st.integers(-2, 2), st.floats(), st.text(max_size=3), st.just(b"")
    )
)
def test_gso_argument(offload_pair, gso):
    receiver, sender = offload_pair
    batch = fastnet.Batch.from_payloads([b"ab"] * 3)
    try:
        sent = sender.send_batch(batch, receiver.getsockname(), gso=gso)
    except TypeError:
        assert not (gso is None or isinstance(gso, bool))
        return
    assert gso is None or isinstance(gso, bool)
    assert sent == 3
    assert receive_exactly(receiver, 3, 8)[0] == [b"ab"] * 3


def _gso_shape_ok(lengths):
    head, last = lengths[:-1], lengths[-1]
    return lengths[0] > 0 and all(n == lengths[0] for n in head) and 0 < last <= lengths[0]


_SIZES = st.sampled_from([0, 1, 2, 7, 1000, 1472, 9000, 65507, 65508])


@st.composite
def row_lengths(draw):
    """Lengths GSO can carry (equal, the last shorter), now and then one row off."""
    size = draw(_SIZES)
    lengths = [size] * draw(st.integers(1, 140)) + [draw(st.integers(0, size))]
    if draw(st.booleans()):
        lengths[draw(st.integers(0, len(lengths) - 1))] = draw(_SIZES)
    return lengths


@needs_offload
@HOSTILE
@given(
    lengths=st.one_of(row_lengths(), st.lists(_SIZES, min_size=1, max_size=70)),
    gso=st.sampled_from([None, True]),
    gro=st.booleans(),
    capacity=st.sampled_from([1, 3, 64, 1024]),
    slot=st.sampled_from([1, 100, 9000, 65536]),
)
def test_any_row_lengths_arrive_as_sent(offload_pair, lengths, gso, gro, capacity, slot):
    receiver, sender = offload_pair
    receiver.enable_gro(gro)
    payloads = [bytes([i % 251]) * n for i, n in enumerate(lengths)]
    batch = fastnet.Batch(len(lengths), 65508)
    for i, payload in enumerate(payloads):
        batch.fill(i, payload)
    try:
        sent = sender.send_batch(batch, receiver.getsockname(), gso=gso)
    except ValueError:
        assert gso is True and not _gso_shape_ok(lengths) or max(lengths) > 65507
        return
    except OSError as exc:  # EMSGSIZE: a datagram longer than UDP allows
        assert max(lengths) > 65507, exc
        payloads = payloads[: getattr(exc, "sent", 0)]
        sent = len(payloads)
    assert sent == len(payloads)
    event(f"received {sent} rows, gro={gro}")
    got = []
    rows, guards = guarded_batch(capacity, slot)
    while len(got) + kernel_drops(receiver) < sent:
        try:
            n = receiver.recv_batch(rows, timeout=5)
        except TimeoutError:
            break
        guards.check()
        got.extend((bytes(rows.payload(i)), bool(rows.truncated[i])) for i in range(n))
    expected = [(p[:slot], len(p) > slot) for p in payloads]
    # Datagrams of 64 KiB can overflow a buffer capped by net.core.rmem_max:
    # the kernel counts each one it drops; the rest arrive whole and in order.
    assert len(got) + kernel_drops(receiver) == sent
    if len(got) == sent:
        assert got == expected
    else:
        remaining = iter(expected)
        assert all(row in remaining for row in got)  # an in-order subsequence
    receiver.enable_gro(False)


def kernel_drops(sock) -> int:
    """Datagrams the kernel dropped for ``sock`` (SO_MEMINFO's SK_MEMINFO_DROPS)."""
    raw = sock.getsockopt(stdsocket.SOL_SOCKET, C.SO_MEMINFO, 9 * 4)
    return struct.unpack("=9I", raw)[8]


@HOSTILE
@given(
    enabled=st.one_of(
        st.none(), st.booleans(), st.integers(), st.text(max_size=2), st.lists(st.integers(), max_size=1)
    )
)
def test_enable_gro_takes_any_truth_value(backend, enabled):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        try:
            sock.enable_gro(enabled)
        except OSError:  # ENOPROTOOPT: no UDP_GRO in this kernel
            assert not OFFLOAD
            return
        assert sock.getsockopt(C.SOL_UDP, C.UDP_GRO) == int(bool(enabled))


def test_enable_gro_on_a_stream_socket_is_the_kernels_error(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend) as sock:
        with pytest.raises(OSError):
            sock.enable_gro(True)


# -- the GRO control message, as the pure-Python engine reads it --------------------


@pytest.mark.parametrize("segment", [-5, 0, 1, 1000, 2**31 - 1])
def test_an_empty_datagram_is_one_row_whatever_segment_size_came_with_it(segment):
    ancdata = [(C.SOL_UDP, C.UDP_GRO, struct.pack("=i", segment))]
    area = GroArea()
    area.load(0, ancdata, 0, ("127.0.0.1", 9), stdsocket.AF_INET)
    batch, guards = guarded_batch(4, 8)
    assert area.split(batch, 0) == 1
    assert batch.lengths[0] == 0 and not area.pending
    guards.check()


@pytest.mark.parametrize(
    "ancdata,expected",
    [
        ([], (0, 0)),
        ([(C.SOL_UDP, C.UDP_GRO, b"\x01")], (0, 0)),  # too short
        ([(C.SOL_UDP, C.UDP_GRO, struct.pack("=i", -1))], (0, 0)),  # not positive
        ([(stdsocket.SOL_SOCKET, C.SCM_TIMESTAMPNS, struct.pack("@qq", 2, 5))], (2_000_000_005, 0)),
        ([(stdsocket.SOL_SOCKET, C.SCM_TIMESTAMP, struct.pack("@qq", 2, 5))], (2_000_005_000, 0)),
        ([(stdsocket.SOL_SOCKET, C.SCM_TIMESTAMPNS, bytes(15))], (0, 0)),  # too short
        (
            [(stdsocket.SOL_SOCKET, C.SCM_TIMESTAMPNS, struct.pack("@qq", 2**62, 0))],
            ((2**62 * 10**9 + 2**63) % 2**64 - 2**63, 0),
        ),  # wraps like int64
        (
            [(C.SOL_UDP, C.UDP_GRO, struct.pack("=i", 9)), (C.SOL_UDP, C.UDP_GRO, struct.pack("=i", 7))],
            (0, 7),
        ),  # the last one wins
        ([(7, 7, b"x" * 100)], (0, 0)),  # unknown: ignored
    ],
)
def test_receive_fields(ancdata, expected):
    assert receive_fields(ancdata) == expected
