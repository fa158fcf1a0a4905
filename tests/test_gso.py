"""send_batch with UDP GSO: same datagrams as plain sends, row counts, refusals, fallback.

Whether GSO was really used is seen from a plain GRO receiver: on loopback a
GSO super-buffer reaches a UDP_GRO socket whole, with a UDP_GRO control
message holding the segment size, while separately sent datagrams are never
coalesced (loopback delivery does not pass through the GRO engine).
"""

import os
import socket as stdsocket
import struct
import subprocess
import sys
import textwrap

import conftest
import pytest
from helpers import receive_exactly
from netns import needs_netns

import fastnet
from fastnet import constants as C
from fastnet.core.gso import MAX_PAYLOAD, NEVER_REFUSED

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_UDP4 = 65507
# Loopback's MTU (65536) less the IPv6 and UDP headers: GSO segments must fit
# unfragmented, so bigger IPv6 ones are refused (EMSGSIZE) and go plain.
MAX_UNFRAGMENTED_UDP6 = 65536 - 40 - 8
SO_NO_CHECK = 11  # asm-generic/socket.h: send IPv4 UDP without checksums
UDP_NO_CHECK6_TX = 101  # linux/udp.h: the same for IPv6 ...
UDP_NO_CHECK6_RX = 102  # ... and accept such datagrams on receive

needs_gso = pytest.mark.skipif(not fastnet.features()["gso"], reason="kernel without UDP GSO")
needs_gso_gro = pytest.mark.skipif(
    not (fastnet.features()["gso"] and fastnet.features()["gro"]), reason="kernel without UDP GSO/GRO"
)


def rows_of(count, size, last=None):
    """``count`` distinct payloads of ``size`` bytes, the last one ``last`` bytes if given."""
    sizes = [size] * count
    if last is not None:
        sizes[-1] = last
    return [(i.to_bytes(4, "big") + bytes([i % 251]) * size)[:n] for i, n in enumerate(sizes)]


def observer(family, host):
    """A plain socket with UDP_GRO on: it sees super-buffers as the kernel delivers them."""
    sock = stdsocket.socket(family, stdsocket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(C.SOL_UDP, C.UDP_GRO, 1)
    sock.settimeout(5)
    return sock


def observe(sock, total_bytes):
    """(length, GRO segment size or None) of each message until ``total_bytes`` arrived."""
    seen, got = [], 0
    while got < total_bytes or not seen:
        data, ancdata, _, _ = sock.recvmsg(1 << 16, stdsocket.CMSG_SPACE(4))
        segment = None
        for level, kind, payload in ancdata:
            if (level, kind) == (C.SOL_UDP, C.UDP_GRO):
                segment = struct.unpack("=i", payload[:4])[0]
        seen.append((len(data), segment))
        got += len(data)
    return seen


@needs_gso
@pytest.mark.parametrize(
    "count,size,last",
    [
        (2, 1, None),
        (64, 1024, None),
        (65, 1024, None),  # more than one super-buffer
        (200, 1000, 17),  # a shorter last row
        (130, 1023, None),  # 65507 // 1023 = 64: full 64-row super-buffers
        (10, 20000, 5),  # big rows: 3 per super-buffer
        (3, MAX_UDP4, 1),  # the largest IPv4 datagram: 1 per super-buffer (IPv6: plain)
        (1500, 64, 1),  # more than 1024 super-buffers' worth of rows
    ],
)
def test_gso_delivers_every_datagram_intact_and_in_order(pair, family_host, count, size, last):
    receiver, sender = pair
    family, _ = family_host
    payloads = rows_of(count, size, last)
    batch = fastnet.Batch.from_payloads(payloads, slot_size=size, family=family)
    assert sender.send_batch(batch, receiver.getsockname(), gso=True) == count
    got, addresses, truncated = receive_exactly(receiver, count, size, family=family)
    assert got == payloads
    assert set(addresses) == {sender.getsockname()}
    assert not any(truncated)
    if family == stdsocket.AF_INET or size <= MAX_UNFRAGMENTED_UDP6:
        assert sender._gso_refused_from == NEVER_REFUSED


@needs_gso_gro
@pytest.mark.parametrize(
    "count,size,expected",
    [
        (130, 1023, [64, 64, 2]),  # at most 64 datagrams per super-buffer
        (7, 20000, [3, 3, 1]),  # and at most 65507 bytes
    ],
)
def test_gso_super_buffers_are_what_the_kernel_receives(backend, count, size, expected):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
        observer(stdsocket.AF_INET, "127.0.0.1") as obs,
    ):
        batch = fastnet.Batch.from_payloads(rows_of(count, size), family=stdsocket.AF_INET)
        assert sender.send_batch(batch, obs.getsockname(), gso=True) == count
        seen = observe(obs, count * size)
    assert seen == [(k * size, size if k > 1 else None) for k in expected]


@needs_gso_gro
def test_gso_none_uses_gso_for_equal_rows_and_plain_for_others(backend, family_host):
    family, host = family_host
    with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender, observer(family, host) as obs:
        equal = fastnet.Batch.from_payloads([b"a" * 100] * 5 + [b"b" * 40], family=family)
        assert sender.send_batch(equal, obs.getsockname()) == 6
        assert observe(obs, 540) == [(540, 100)]
        mixed = fastnet.Batch.from_payloads([b"c" * 10, b"d" * 20, b"e" * 10], family=family)
        assert sender.send_batch(mixed, obs.getsockname()) == 3
        assert observe(obs, 40) == [(10, None), (20, None), (10, None)]
        single = fastnet.Batch.from_payloads([b"f" * 10], family=family)
        assert sender.send_batch(single, obs.getsockname()) == 1
        assert observe(obs, 10) == [(10, None)]


@needs_gso_gro
def test_gso_false_sends_every_row_alone(backend):
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
        observer(stdsocket.AF_INET, "127.0.0.1") as obs,
    ):
        batch = fastnet.Batch.from_payloads([b"x" * 50] * 4)
        assert sender.send_batch(batch, obs.getsockname(), gso=False) == 4
        assert observe(obs, 200) == [(50, None)] * 4


@pytest.mark.parametrize(
    "sizes,message",
    [
        ([10, 20], "row 0 has 10"),
        ([10, 9, 10], "row 1 has 9 bytes"),
        ([10, 10, 11], "only a shorter last row"),
        ([0, 0], "empty"),
        ([10, 0], "empty"),
        (["max + 1"] * 2, "largest UDP payload"),
    ],
)
def test_gso_true_refuses_rows_it_cannot_carry_before_sending(pair, family_host, sizes, message):
    receiver, sender = pair
    family, _ = family_host
    sizes = [MAX_PAYLOAD[family] + 1 if size == "max + 1" else size for size in sizes]
    batch = fastnet.Batch(len(sizes), max(max(sizes), 1), family=family)
    for i, size in enumerate(sizes):
        batch.fill(i, bytes(size))
    with pytest.raises(ValueError, match=message):
        sender.send_batch(batch, receiver.getsockname(), gso=True)
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing was sent
        receiver.recvfrom(16)


@pytest.mark.parametrize("gso", ["yes", 1, 0.0])
def test_gso_must_be_a_bool_or_none(backend, gso):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender:
        with pytest.raises(TypeError, match="gso"):
            sender.send_batch(fastnet.Batch.from_payloads([b"x"] * 2), ("127.0.0.1", 9), gso=gso)


def test_gso_true_with_one_row_sends_it(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch.from_payloads([b"only"], family=family)
    assert sender.send_batch(batch, receiver.getsockname(), gso=True) == 1
    assert receive_exactly(receiver, 1, 8, family=family)[0] == [b"only"]


@needs_gso
def test_connected_socket_sends_gso_without_address(pair, family_host):
    receiver, sender = pair
    family, _ = family_host
    sender.connect(receiver.getsockname())
    payloads = rows_of(100, 300, 7)
    assert sender.send_batch(fastnet.Batch.from_payloads(payloads, family=family), gso=True) == 100
    assert receive_exactly(receiver, 100, 300, family=family)[0] == payloads


def _turn_checksums_off(sender, receiver):
    """Make the kernel refuse GSO on ``sender``: udp_send_skb() returns EINVAL for a
    GSO send from a socket that sends without checksums; plain sends still go."""
    if sender.family == stdsocket.AF_INET:
        sender.setsockopt(stdsocket.SOL_SOCKET, SO_NO_CHECK, 1)
    else:
        sender.setsockopt(C.SOL_UDP, UDP_NO_CHECK6_TX, 1)
        receiver.setsockopt(C.SOL_UDP, UDP_NO_CHECK6_RX, 1)


@needs_gso
@pytest.mark.parametrize("gso", [True, None])
def test_kernel_refusal_falls_back_to_plain_sends_without_loss(pair, family_host, gso):
    receiver, sender = pair
    family, _ = family_host
    _turn_checksums_off(sender, receiver)
    payloads = rows_of(150, 500, 3)
    batch = fastnet.Batch.from_payloads(payloads, family=family)
    assert sender.send_batch(batch, receiver.getsockname(), gso=gso) == 150
    assert sender._gso_refused_from == 0  # remembered for this socket
    assert sender.send_batch(batch, receiver.getsockname(), gso=gso) == 150
    got, _, truncated = receive_exactly(receiver, 300, 500, family=family)
    assert got == payloads + payloads  # nothing lost, nothing twice
    assert not any(truncated)


@needs_gso_gro
def test_socket_marked_as_refused_sends_plain_identical_datagrams(backend, family_host):
    family, host = family_host
    payloads = rows_of(70, 200, 50)
    seen = {}
    for refused in (False, True):
        with (
            fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender,
            observer(family, host) as obs,
        ):
            if refused:
                sender._gso_refused_from = 0  # as after the kernel refused GSO
            batch = fastnet.Batch.from_payloads(payloads, family=family)
            assert sender.send_batch(batch, obs.getsockname(), gso=True) == 70
            seen[refused] = observe(obs, 69 * 200 + 50)
    assert seen[False] == [(64 * 200, 200), (5 * 200 + 50, 200)]
    assert seen[True] == [(200, None)] * 69 + [(50, None)]


@needs_gso_gro
@pytest.mark.skipif(not conftest.HAS_IPV6, reason="no IPv6 loopback")
def test_segment_refused_for_its_size_falls_back_for_that_size_only(backend):
    host = "::1"
    with (
        fastnet.socket(stdsocket.AF_INET6, stdsocket.SOCK_DGRAM, backend=backend) as sender,
        observer(stdsocket.AF_INET6, host) as obs,
    ):
        big = rows_of(2, MAX_UNFRAGMENTED_UDP6 + 1)
        assert (
            sender.send_batch(fastnet.Batch.from_payloads(big, family=stdsocket.AF_INET6), obs.getsockname())
            == 2
        )
        assert observe(obs, 2 * len(big[0])) == [(len(big[0]), None)] * 2  # sent plain
        assert sender._gso_refused_from == MAX_UNFRAGMENTED_UDP6 + 1
        small = fastnet.Batch.from_payloads(rows_of(3, 1000), family=stdsocket.AF_INET6)
        assert sender.send_batch(small, obs.getsockname()) == 3
        assert observe(obs, 3000) == [(3000, 1000)]  # smaller segments still use GSO


# Private network namespaces (root, ip and tc), as in test_errors_and_interrupts.py.
def _in_netns(backend, setup, script):
    name = f"fastnet-gso-{os.getpid()}-{backend}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:

        def run(*cmd):
            return subprocess.run(
                ["ip", "netns", "exec", name, *cmd],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )

        for command in setup:
            run(*command.split())
        return run(sys.executable, "-c", script, backend).stdout.split()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


# A loopback with a 1500-byte MTU: the kernel refuses GSO segments over the
# MTU (EMSGSIZE) but fragments the same datagrams sent plain.
MTU_CHILD = textwrap.dedent("""
    import sys, socket, fastnet
    receiver = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=sys.argv[1])
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sender = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=sys.argv[1])
    payloads = [bytes([i]) * 2000 for i in range(40)]
    sent = sender.send_batch(fastnet.Batch.from_payloads(payloads), receiver.getsockname(), gso=True)
    batch = fastnet.Batch(64, 4096)
    got = []
    while len(got) < sent:
        receiver.recv_batch(batch, timeout=5)
        got += [bytes(p) for p, _ in batch]
    print(sent, sender._gso_refused_from, got == payloads)
""")


@needs_netns("tc")
@needs_gso
def test_segments_over_the_mtu_fall_back_to_fragmented_plain_sends(backend):
    out = _in_netns(backend, ["ip link set lo mtu 1500 up"], MTU_CHILD)
    assert out == ["40", "2000", "True"]  # refused from 2000-byte segments, none lost


# As in test_errors_and_interrupts.py: a slow token bucket makes a
# non-blocking sender meet EAGAIN. A super-buffer goes whole or not at all,
# so the partial count is a whole number of 64-row super-buffers.
PARTIAL_CHILD = textwrap.dedent("""
    import sys, socket, fastnet
    receiver = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=sys.argv[1])
    receiver.bind(("127.0.0.1", 0))
    sender = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=sys.argv[1])
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sender.setblocking(False)
    batch = fastnet.Batch.from_payloads([bytes(1000)] * 500)
    first = sender.send_batch(batch, receiver.getsockname(), gso=True)
    try:
        sender.send_batch(batch, receiver.getsockname(), gso=True)
        second = "sent"
    except BlockingIOError as exc:
        second = "blocked sent=%d" % exc.sent
    print(first, second)
""")


@needs_netns("tc")
@needs_gso
def test_non_blocking_gso_send_counts_rows(backend):
    out = _in_netns(
        backend,
        ["ip link set lo up", "tc qdisc add dev lo root tbf rate 1mbit burst 64kb latency 2s"],
        PARTIAL_CHILD,
    )
    first, second = int(out[0]), " ".join(out[1:])
    assert 0 < first < 500 and first % 64 == 0, f"expected whole super-buffers, got {first}"
    assert second == "blocked sent=0"


# -- a Batch sent again: the plan follows its lengths as they are now -----------------
# send_batch proposes the plan from row 0 and the engines check every row
# against it before any system call; these hold both halves to the rows.


def _set_lengths(batch, sizes):
    for i, size in enumerate(sizes):
        batch.fill(i, (i.to_bytes(4, "big") + bytes([i % 251]) * size)[:size])
    batch.count = len(sizes)


@needs_gso_gro
def test_a_batch_sent_again_follows_its_new_lengths(backend, family_host):
    """Equal rows, then unequal, then equal of another size: never sent with the earlier plan."""
    family, host = family_host
    with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender, observer(family, host) as obs:
        batch = fastnet.Batch(6, 100, family=family)
        _set_lengths(batch, [100] * 6)  # segment = slot: one iovec per super-buffer
        assert sender.send_batch(batch, obs.getsockname()) == 6
        assert observe(obs, 600) == [(600, 100)]
        _set_lengths(batch, [100, 100, 100, 40, 100, 100])  # row 3 off the plan of row 0
        assert sender.send_batch(batch, obs.getsockname()) == 6
        assert observe(obs, 540) == [(100, None)] * 3 + [(40, None)] + [(100, None)] * 2
        _set_lengths(batch, [30] * 5 + [7])  # equal again, another segment, shorter last
        assert sender.send_batch(batch, obs.getsockname()) == 6
        assert observe(obs, 157) == [(157, 30)]
        _set_lengths(batch, [100] * 5 + [0])  # an empty last row cannot ride in a super-buffer
        assert sender.send_batch(batch, obs.getsockname()) == 6
        assert observe(obs, 500) == [(100, None)] * 5
        assert observe(obs, 0) == [(0, None)]


@pytest.mark.parametrize("count,row,size", [(1024, 777, 5), (1024, 1023, 0), (1024, 0, 5), (7, 1, 63)])
def test_a_row_off_the_plan_deep_in_the_batch_still_arrives_as_itself(pair, family_host, count, row, size):
    """gso=None: the rows go out plain, each datagram with its own length and bytes."""
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(count, 64, family=family)
    _set_lengths(batch, [64] * count)
    assert sender.send_batch(batch, receiver.getsockname()) == count  # on the plan of row 0
    assert len(receive_exactly(receiver, count, 64, family=family)[0]) == count
    sizes = [64] * count
    sizes[row] = size
    _set_lengths(batch, sizes)
    assert sender.send_batch(batch, receiver.getsockname()) == count
    payloads = receive_exactly(receiver, count, 64, family=family)[0]
    assert [len(p) for p in payloads] == sizes
    assert payloads == [bytes(batch.payload(i)) for i in range(count)]


@pytest.mark.parametrize(
    "sizes,message",
    [
        ([100, 100, 50, 100], "row 2 has 50 bytes"),
        ([100, 100, 100, 0], "empty"),
        ([50, 100], "only a shorter"),
    ],
)
def test_gso_true_refuses_a_batch_whose_lengths_left_its_last_plan(pair, family_host, sizes, message):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(len(sizes), 100, family=family)
    _set_lengths(batch, [100] * len(sizes))
    assert sender.send_batch(batch, receiver.getsockname(), gso=True) == len(sizes)
    receive_exactly(receiver, len(sizes), 100, family=family)
    _set_lengths(batch, sizes)
    with pytest.raises(ValueError, match=message) as info:
        sender.send_batch(batch, receiver.getsockname(), gso=True)
    assert not hasattr(info.value, "sent")  # refused before sending, as any bad argument
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing was sent
        receiver.recvfrom(16)


@pytest.mark.parametrize("gso", [None, True, False])
@pytest.mark.parametrize("bad", [-1, 101, 1 << 40])
def test_lengths_outside_the_slot_after_a_good_send_are_refused_before_sending(pair, family_host, gso, bad):
    receiver, sender = pair
    family, _ = family_host
    batch = fastnet.Batch(8, 100, family=family)
    _set_lengths(batch, [100] * 8)
    assert sender.send_batch(batch, receiver.getsockname(), gso=gso) == 8
    receive_exactly(receiver, 8, 100, family=family)
    for row in (0, 5, 7):
        batch.lengths[:] = 100
        batch.lengths[row] = bad
        with pytest.raises(ValueError, match=r"must be between 0 and slot_size \(100\)"):
            sender.send_batch(batch, receiver.getsockname(), gso=gso)
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):  # nothing was sent
        receiver.recvfrom(16)


@pytest.mark.parametrize("row,length", [(5, 50), (9, 0), (9, 101), (0, 99), (3, -1)])
def test_engine_refuses_contiguous_rows_off_its_plan_before_sending(backend, row, length):
    """The engines' own check, where the segment is the slot (one iovec per super-buffer)."""
    from fastnet import engines

    engine = engines.load(backend)
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        batch = fastnet.Batch(10, 100)
        _set_lengths(batch, [100] * 10)
        batch.lengths[row] = length
        with pytest.raises(ValueError, match="GSO plan|outside"):
            engine.send_batch(sender._engine_state, batch, 0, 10, receiver.getsockname(), 100, 10)
        with pytest.raises(BlockingIOError):
            receiver.recv_batch(fastnet.Batch(4, 100), timeout=0)


@pytest.mark.parametrize("count", [2, 5, 8, 9, 16, 17, 26])
@pytest.mark.parametrize("start", [0, 1, 3])
@pytest.mark.parametrize("length", [99, 1, 100 ^ (1 << 6)])
def test_engine_names_the_first_row_off_its_plan_wherever_it_lies(backend, count, start, length):
    """The check reads the rows several at a time: a row off the plan is found at any place in them.

    Every row before the last must be one segment; the row off the plan walks
    over each place (in a step of the check and in its tail), from the
    Batch's first row and from later ones; the error names the row, and the
    lengths are left as they were.
    """
    from fastnet import engines

    engine = engines.load(backend)
    stop = start + count
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        batch = fastnet.Batch(stop, 100)
        for row in range(start, stop - 1):
            _set_lengths(batch, [100] * stop)
            batch.lengths[row] = length
            before = batch.lengths.copy()
            named = rf"batch\.lengths\[{row}\] = {length} changed from the GSO plan"
            with pytest.raises(ValueError, match=named):
                engine.send_batch(sender._engine_state, batch, start, stop, receiver.getsockname(), 100, 10)
            assert (batch.lengths == before).all()
        with pytest.raises(BlockingIOError):  # nothing was sent
            receiver.recv_batch(fastnet.Batch(4, 100), timeout=0)
