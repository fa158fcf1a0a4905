"""recv_frames and send_frames: the wire format, frames split anywhere, sizes, identity."""

import io
import itertools
import socket as stdsocket

import numpy as np
import pytest
from helpers import AVAILABLE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tcp_helpers import encode, in_thread, recv_all_frames, take_available, tcp_pair, wait_queued

import fastnet

LAYOUTS = [(size, order) for size in (2, 4, 8) for order in ("big", "little")]


def _frames(count, longest, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, longest + 1, size=count)
    return [rng.integers(0, 256, size=int(n), dtype=np.uint8).tobytes() for n in sizes]


@pytest.mark.parametrize("prefix_size,byteorder", LAYOUTS)
def test_wire_format_is_prefix_then_payload(backend, prefix_size, byteorder):
    frames = [b"", b"a", b"hello", bytes(range(256)) * 3]
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        server_side.set_framing(prefix_size=prefix_size, byteorder=byteorder)
        batch = fastnet.Batch.from_payloads(frames, slot_size=1000)
        assert server_side.send_frames(batch) == 4
        expected = encode(frames, prefix_size, byteorder)
        got = b""
        while len(got) < len(expected):
            got += client.recv(65536)
        assert got == expected


@pytest.mark.parametrize("prefix_size,byteorder", LAYOUTS)
def test_frames_from_a_plain_socket_peer(backend, prefix_size, byteorder):
    frames = _frames(50, 700, seed=prefix_size)
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        server_side.set_framing(prefix_size=prefix_size, byteorder=byteorder)
        client.sendall(encode(frames, prefix_size, byteorder))
        assert recv_all_frames(server_side, 700, count=50) == frames


def test_round_trip_and_sources_on_both_families(backend, family_host):
    family, host = family_host
    frames = _frames(300, 1500, seed=3)
    with tcp_pair(backend, family=family, host=host) as (client, server_side):
        batch = fastnet.Batch.from_payloads(frames, slot_size=1500, family=family)
        assert client.send_frames(batch) == 300
        inbound = fastnet.Batch(512, 1500, family=family)
        got = []
        while len(got) < 300:
            n = server_side.recv_frames(inbound, timeout=5)
            assert n == inbound.count == len(inbound)
            got += [bytes(inbound.payload(i)) for i in range(n)]
            assert {inbound.address(i) for i in range(n)} == {client.getsockname()}
            assert not inbound.truncated[:n].any()
        assert got == frames


def test_both_directions_and_senders_of_either_backend():
    frames = _frames(200, 3000, seed=4)
    for sender, receiver in itertools.product(AVAILABLE, repeat=2):
        with tcp_pair(receiver, sender) as (client, server_side):
            batch = fastnet.Batch.from_payloads(frames, slot_size=3000)
            assert client.send_frames(batch) == 200
            assert server_side.send_frames(batch) == 200
            assert recv_all_frames(server_side, 3000, count=200) == frames
            assert recv_all_frames(client, 3000, count=200) == frames


def test_many_frames_need_several_gathered_writes(backend):
    frames = [i.to_bytes(3, "big") for i in range(5000)]  # > 512 frames per write
    with tcp_pair(backend) as (client, server_side):
        assert client.send_frames(fastnet.Batch.from_payloads(frames)) == 5000
        assert recv_all_frames(server_side, 3, count=5000, capacity=4096) == frames


@pytest.mark.parametrize("prefix_size", [4, 8])
def test_frames_larger_than_the_receive_buffer(backend, prefix_size):
    frames = _frames(3, 3 * 2**20, seed=5) + [b"end"]
    with tcp_pair(backend) as (client, server_side):
        for sock in (client, server_side):
            sock.set_framing(prefix_size=prefix_size)
        client.settimeout(10)
        batch = fastnet.Batch.from_payloads(frames, slot_size=3 * 2**20)
        sender = in_thread(client.send_frames, batch)
        assert recv_all_frames(server_side, 3 * 2**20, count=4, capacity=2, timeout=10) == frames
        assert sender.result() == 4


def test_start_sends_the_remaining_rows(backend):
    frames = [b"zero", b"one", b"two", b"three"]
    with tcp_pair(backend) as (client, server_side):
        batch = fastnet.Batch.from_payloads(frames)
        assert client.send_frames(batch, start=2) == 2
        assert client.send_frames(batch, start=4) == 0
        assert recv_all_frames(server_side, 8, count=2) == [b"two", b"three"]


def test_capacity_limits_each_call_and_order_is_kept(backend):
    frames = [bytes([i]) * i for i in range(40)]
    with tcp_pair(backend) as (client, server_side):
        client.send_frames(fastnet.Batch.from_payloads(frames, slot_size=40))
        wait_queued(server_side, len(encode(frames)))
        batch = fastnet.Batch(7, 40)
        counts, got = [], []
        while len(got) < 40:
            counts.append(server_side.recv_frames(batch, timeout=5))
            got += [bytes(p) for p, _ in batch]
        assert got == frames
        assert counts == [7, 7, 7, 7, 7, 5]


def test_every_byte_boundary(backend):
    """The stream arrives one byte at a time; each frame comes out when its last byte does."""
    frames = [b"", b"a", b"hello", bytes(range(200)), b"", b"z" * 3]
    stream = encode(frames, 4)
    ends = list(itertools.accumulate(4 + len(f) for f in frames))
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        batch = fastnet.Batch(8, 256)
        got = []
        for offset in range(len(stream)):
            client.sendall(stream[offset : offset + 1])
            wait_queued(server_side, 1)
            got += [payload for payload, _ in take_available(server_side, batch)]
            complete = sum(1 for end in ends if end <= offset + 1)
            assert got == frames[:complete], f"after byte {offset + 1}"
        assert got == frames


@st.composite
def _split_streams(draw):
    prefix_size = draw(st.sampled_from([2, 4, 8]))
    byteorder = draw(st.sampled_from(["big", "little"]))
    frames = draw(st.lists(st.binary(max_size=300), max_size=25))
    stream = encode(frames, prefix_size, byteorder)
    cuts = draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=12, unique=True))
    capacity = draw(st.integers(1, 8))
    return prefix_size, byteorder, frames, stream, sorted(c for c in cuts if c < len(stream)), capacity


# The backend fixture is only a name: nothing in it needs resetting between examples.
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_split_streams())
def test_frames_split_anywhere_come_out_whole_and_in_order(backend, case):
    prefix_size, byteorder, frames, stream, cuts, capacity = case
    ends = list(itertools.accumulate(prefix_size + len(f) for f in frames))
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        server_side.set_framing(prefix_size=prefix_size, byteorder=byteorder)
        batch = fastnet.Batch(capacity, 300)
        got = []
        for begin, end in zip([0] + cuts, cuts + [len(stream)], strict=True):
            client.sendall(stream[begin:end])
            wait_queued(server_side, end - begin)
            got += [payload for payload, _ in take_available(server_side, batch)]
            # exactly the frames complete so far: never a part, never a later one
            assert got == frames[: sum(1 for e in ends if e <= end)]
        client.shutdown(stdsocket.SHUT_WR)
        assert server_side.recv_frames(batch, timeout=5) == 0  # clean end at a boundary
        assert got == frames


def test_changing_framing_mid_stream_parses_buffered_bytes_anew(backend):
    # A greeting in 4-byte framing, then the peer switches to 2-byte framing;
    # both arrive in one piece.
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        client.sendall(encode([b"switch"], 4) + encode([b"a", b"bc"], 2))
        wait_queued(server_side, 6 + 4 + 3 + 4)
        one = fastnet.Batch(1, 16)
        assert server_side.recv_frames(one, timeout=5) == 1
        assert bytes(one.payload(0)) == b"switch"
        server_side.set_framing(prefix_size=2)
        assert recv_all_frames(server_side, 16, count=2) == [b"a", b"bc"]


# -- frames longer than a slot -------------------------------------------------


def test_oversize_frame_is_an_error_and_stays_queued(backend):
    frames = [b"x" * 10, b"y" * 100, b"z" * 10]
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        client.sendall(encode(frames))
        wait_queued(server_side, len(encode(frames)))
        small = fastnet.Batch(8, 50)
        assert server_side.recv_frames(small, timeout=5) == 1  # the frames before it first
        assert bytes(small.payload(0)) == b"x" * 10
        for _ in range(2):  # it stays first in line: every call says so
            with pytest.raises(fastnet.SlotTooSmallError, match="100 bytes") as info:
                server_side.recv_frames(small, timeout=5)
            assert isinstance(info.value, ValueError)
            assert (info.value.length, info.value.slot_size) == (100, 50)
            assert small.count == 0
        big = fastnet.Batch(8, 100)
        assert server_side.recv_frames(big, timeout=5) == 2
        assert [bytes(p) for p, _ in big] == frames[1:]


def test_truncate_mode_cuts_and_flags(backend):
    frames = [b"a" * 10, bytes(range(100)), b"", b"b" * 51, b"c" * 50]
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        server_side.set_framing(on_oversize="truncate")
        client.sendall(encode(frames))
        wait_queued(server_side, len(encode(frames)))
        batch = fastnet.Batch(8, 50)
        batch.data[:] = 0xEE  # anything past a row's length must not matter
        assert server_side.recv_frames(batch, timeout=5) == 5
        assert [bytes(p) for p, _ in batch] == [f[:50] for f in frames]
        assert list(batch.lengths[:5]) == [10, 50, 0, 50, 50]
        assert list(batch.truncated[:5]) == [False, True, False, True, False]


def test_truncate_mode_with_a_frame_longer_than_the_receive_buffer(backend):
    frames = [bytes(range(256)) * 4096, b"after"]  # 1 MiB: more than one read's worth
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        server_side.set_framing(on_oversize="truncate")
        sender = in_thread(client.sendall, encode(frames))
        batch = fastnet.Batch(4, 300)
        got = []
        while len(got) < 2:
            server_side.recv_frames(batch, timeout=5)
            got += [(bytes(p), bool(batch.truncated[i])) for i, (p, _) in enumerate(batch)]
        sender.result()
        assert got == [(frames[0][:300], True), (b"after", False)]


# -- settings and argument checks ----------------------------------------------


def test_framing_defaults_and_settings(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend) as sock:
        assert sock.framing == fastnet.Framing(4, "big", 16 * 2**20, "error")
        assert sock.set_framing(prefix_size=8) == fastnet.Framing(8, "big", 16 * 2**20, "error")
        sock.set_framing(byteorder="little", max_frame=1000, on_oversize="truncate")
        assert sock.framing == fastnet.Framing(8, "little", 1000, "truncate")


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"prefix_size": 3}, ValueError),
        ({"prefix_size": "4"}, TypeError),
        ({"prefix_size": True}, TypeError),
        ({"byteorder": "middle"}, ValueError),
        ({"max_frame": -1}, ValueError),
        ({"max_frame": 2**63}, ValueError),
        ({"max_frame": 1.5}, TypeError),
        ({"on_oversize": "drop"}, ValueError),
    ],
)
def test_bad_framing_settings_are_refused(backend, kwargs, error):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend) as sock:
        with pytest.raises(error):
            sock.set_framing(**kwargs)
        assert sock.framing == fastnet.Framing()
    with pytest.raises(TypeError):
        sock.set_framing(4)  # keyword-only


def test_frame_methods_need_a_stream_socket_and_a_batch(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as udp:
        with pytest.raises(io.UnsupportedOperation, match="SOCK_STREAM"):
            udp.recv_frames(fastnet.Batch(1, 1))
        with pytest.raises(io.UnsupportedOperation, match="SOCK_STREAM"):
            udp.send_frames(fastnet.Batch.from_payloads([b"x"]))
    with tcp_pair(backend) as (client, server_side):
        with pytest.raises(TypeError, match="fastnet.Batch"):
            server_side.recv_frames(bytearray(10))
        with pytest.raises(TypeError, match="fastnet.Batch"):
            client.send_frames([b"x"])
        with pytest.raises(ValueError, match="AF_INET6"):
            server_side.recv_frames(fastnet.Batch(1, 1, family=fastnet.AF_INET6), timeout=0)


def test_send_checks_lengths_and_start_before_sending(backend):
    with tcp_pair(backend) as (client, server_side):
        client.set_framing(prefix_size=2)
        batch = fastnet.Batch.from_payloads([b"ok", bytes(70000)])
        with pytest.raises(ValueError, match="65535"):
            client.send_frames(batch)  # a 2-byte prefix cannot count 70000
        client.set_framing(prefix_size=4, max_frame=1000)
        with pytest.raises(ValueError, match="max_frame 1000"):
            client.send_frames(batch)
        batch.count = 1
        batch.lengths[0] = -1
        with pytest.raises(ValueError, match="lengths"):
            client.send_frames(batch)
        batch.lengths[0] = 2
        for start, error in [(2, ValueError), (-1, ValueError), (True, TypeError), (1.0, TypeError)]:
            with pytest.raises(error):
                client.send_frames(batch, start=start)
        with pytest.raises(BlockingIOError):  # and nothing was sent
            server_side.recv(10, stdsocket.MSG_DONTWAIT)


# -- both engines give the same bytes --------------------------------------------


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs both engines")
@pytest.mark.parametrize("on_oversize,slot", [("error", 2048), ("truncate", 100)])
def test_engines_fill_batches_byte_identically(on_oversize, slot):
    frames = _frames(400, 2048, seed=7)
    stream = encode(frames, 8, "little")
    results = {}
    for backend in AVAILABLE:
        with tcp_pair(backend, raw_client=True) as (client, server_side):
            server_side.set_framing(prefix_size=8, byteorder="little", on_oversize=on_oversize)
            client.sendall(stream)
            client.shutdown(stdsocket.SHUT_WR)
            batch = fastnet.Batch(64, slot)
            batch.data[:] = 0  # same starting memory for both engines
            rows, lengths, flags = [], [], []
            while server_side.recv_frames(batch, timeout=5):
                n = batch.count
                rows.append(batch.data[:n].copy())
                lengths.append(batch.lengths[:n].copy())
                flags.append(batch.truncated[:n].copy())
            results[backend] = (np.concatenate(rows), np.concatenate(lengths), np.concatenate(flags))
    (data_a, len_a, cut_a), (data_b, len_b, cut_b) = results.values()
    assert len(len_a) == 400
    for i in range(400):
        assert bytes(data_a[i, : len_a[i]]) == frames[i][:slot]
    assert np.array_equal(len_a, len_b) and np.array_equal(cut_a, cut_b)
    for i in range(400):  # the filled part of every row is identical
        assert np.array_equal(data_a[i, : len_a[i]], data_b[i, : len_b[i]])
