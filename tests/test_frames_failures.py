"""Frames when things go wrong: peers closing, resets, limits, timeouts, partial writes."""

import errno
import select
import socket as stdsocket
import struct
import textwrap
import threading
import time

import numpy as np
import pytest
from helpers import HANG_S, assert_ctrl_c_interrupts
from tcp_helpers import encode, in_thread, recv_all_frames, tcp_pair, wait_queued

import fastnet

# -- the peer closes -----------------------------------------------------------


def test_clean_close_at_a_frame_boundary_returns_zero(backend):
    with tcp_pair(backend) as (client, server_side):
        client.send_frames(fastnet.Batch.from_payloads([b"one", b"two"]))
        client.close()
        batch = fastnet.Batch(8, 8)
        assert server_side.recv_frames(batch, timeout=5) == 2
        for _ in range(3):  # like recv() returning b"" on every call after EOF
            assert server_side.recv_frames(batch, timeout=5) == 0
            assert batch.count == 0


@pytest.mark.parametrize(
    "cut,received,expected",
    [
        (2, 2, None),  # inside the length prefix
        (4, 4, 4 + 100),  # right after the prefix
        (4 + 37, 41, 4 + 100),  # inside the payload
    ],
)
def test_close_mid_frame_returns_whole_frames_then_raises(backend, cut, received, expected):
    whole = [b"first", b"second"]
    partial = encode([bytes(100)])[:cut]
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        client.sendall(encode(whole) + partial)
        client.close()
        batch = fastnet.Batch(8, 100)
        assert server_side.recv_frames(batch, timeout=5) == 2
        assert [bytes(p) for p, _ in batch] == whole
        for _ in range(2):  # and it stays that way
            with pytest.raises(fastnet.IncompleteFrameError) as info:
                server_side.recv_frames(batch, timeout=5)
            assert isinstance(info.value, ConnectionError)
            assert isinstance(info.value, fastnet.FramingError)
            assert (info.value.received, info.value.expected) == (received, expected)
            assert f"{received} of" in str(info.value) and "lost" in str(info.value)
            assert batch.count == 0


def test_reset_raises_connection_reset_error(backend):
    with tcp_pair(backend) as (client, server_side):
        # SO_LINGER with a zero timeout: close() sends a reset (socket(7)).
        client.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        with pytest.raises(ConnectionResetError):
            server_side.recv_frames(fastnet.Batch(4, 4), timeout=5)


def test_sending_to_a_closed_peer_raises_and_counts(backend):
    with tcp_pair(backend) as (client, server_side):
        server_side.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, struct.pack("ii", 1, 0))
        server_side.close()
        batch = fastnet.Batch.from_payloads([b"x" * 100] * 10)
        with pytest.raises((ConnectionResetError, BrokenPipeError)) as info:
            for _ in range(100):  # the first write may still be accepted
                client.send_frames(batch)
                time.sleep(0.01)
        assert info.value.sent == 0


# -- lengths the stream must not be trusted with -----------------------------------


def test_length_over_max_frame_is_refused_before_allocating(backend):
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        client.sendall(encode([b"fine"]) + (2**32 - 1).to_bytes(4, "big") + b"junk")
        wait_queued(server_side, 8 + 8)
        batch = fastnet.Batch(8, 64)
        assert server_side.recv_frames(batch, timeout=5) == 1  # the good frame first
        assert bytes(batch.payload(0)) == b"fine"
        for _ in range(2):  # the stream is unusable from here on
            with pytest.raises(fastnet.FrameLimitError) as info:
                server_side.recv_frames(batch, timeout=5)
            assert isinstance(info.value, ConnectionError)
            assert (info.value.length, info.value.max_frame) == (2**32 - 1, 16 * 2**20)
            assert "4294967295" in str(info.value)


def test_max_frame_setting_is_the_limit(backend):
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        server_side.set_framing(prefix_size=8, max_frame=1000)
        client.sendall(encode([bytes(1000)], 8) + encode([bytes(1001)], 8))
        batch = fastnet.Batch(2, 2000)
        assert server_side.recv_frames(batch, timeout=5) == 1
        with pytest.raises(fastnet.FrameLimitError, match="1001"):
            server_side.recv_frames(batch, timeout=5)


def test_huge_eight_byte_length_is_refused(backend):
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        server_side.set_framing(prefix_size=8)
        client.sendall(b"\xff" * 8)
        with pytest.raises(fastnet.FrameLimitError, match=str(2**64 - 1)):
            server_side.recv_frames(fastnet.Batch(2, 16), timeout=5)


# -- waiting -------------------------------------------------------------------------


def test_timeout_with_a_partial_frame_keeps_it(backend):
    stream = encode([b"complete later"])
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        client.sendall(stream[:7])
        batch = fastnet.Batch(2, 32)
        with pytest.raises(TimeoutError):
            server_side.recv_frames(batch, timeout=0.1)
        server_side.settimeout(0.05)  # the socket's timeout is the default
        with pytest.raises(TimeoutError):
            server_side.recv_frames(batch)
        server_side.setblocking(False)
        with pytest.raises(BlockingIOError):
            server_side.recv_frames(batch)
        client.sendall(stream[7:])
        wait_queued(server_side, len(stream) - 7)
        assert server_side.recv_frames(batch) == 1
        assert bytes(batch.payload(0)) == b"complete later"


def test_socket_timeout_does_not_shorten_a_longer_call_timeout(backend):
    with tcp_pair(backend, raw_client=True) as (client, server_side):
        server_side.settimeout(0.05)
        threading.Timer(0.3, client.sendall, [encode([b"late"])]).start()
        batch = fastnet.Batch(2, 8)
        assert server_side.recv_frames(batch, timeout=HANG_S) == 1
        assert bytes(batch.payload(0)) == b"late"


def test_close_from_another_thread_ends_blocked_recv_frames(backend):
    with tcp_pair(backend) as (client, server_side):
        closer = threading.Timer(0.2, server_side.close)
        closer.start()
        # Had close() not ended it, the wait would end in TimeoutError (not EBADF).
        with pytest.raises(OSError) as info:
            server_side.recv_frames(fastnet.Batch(4, 4), timeout=HANG_S)
        closer.join()
        assert info.value.errno == errno.EBADF
        assert server_side.fileno() == -1


def test_close_from_another_thread_ends_blocked_send_frames(backend):
    with tcp_pair(backend, rcvbuf=4096, sndbuf=4096) as (client, server_side):
        batch = fastnet.Batch.from_payloads([bytes(1000)] * 1000)
        closer = threading.Timer(0.2, client.close)
        closer.start()
        sending = in_thread(client.send_frames, batch)  # the peer never reads: this blocks
        with pytest.raises(OSError) as info:
            sending.result()  # fails if close() did not end it
        closer.join()
        assert info.value.errno == errno.EBADF
        assert 0 <= info.value.sent < 1000


def test_second_receiving_thread_is_refused(backend):
    with tcp_pair(backend) as (client, server_side):
        first = in_thread(server_side.recv_frames, fastnet.Batch(4, 8), 5)
        deadline = time.monotonic() + 5
        while not (server_side._frames and server_side._frames.recv_busy):
            assert time.monotonic() < deadline
            time.sleep(0.001)
        with pytest.raises(RuntimeError, match="already running"):
            server_side.recv_frames(fastnet.Batch(4, 8), timeout=1)
        client.send_frames(fastnet.Batch.from_payloads([b"wake"]))
        assert first.result() == 1


def test_full_duplex_one_thread_each_way(backend):
    frames = [bytes([i % 256]) * (i % 700) for i in range(2000)]
    with tcp_pair(backend, rcvbuf=8192, sndbuf=8192) as (client, server_side):
        # A Batch serves one call at a time: each sending thread has its own.
        client_sends = in_thread(client.send_frames, fastnet.Batch.from_payloads(frames, slot_size=700))
        server_sends = in_thread(server_side.send_frames, fastnet.Batch.from_payloads(frames, slot_size=700))
        client_gets = in_thread(recv_all_frames, client, 700, 2000, 64, 20)
        assert recv_all_frames(server_side, 700, count=2000, timeout=20) == frames
        assert client_gets.result() == frames
        assert client_sends.result() == server_sends.result() == 2000


SIGINT_CHILD = textwrap.dedent("""
    import sys, time, fastnet
    server = fastnet.create_server(("127.0.0.1", 0), backend=sys.argv[1])
    client = fastnet.create_connection(server.getsockname(), backend=sys.argv[1])
    conn, _ = server.accept()
    started = time.monotonic()
    try:
        print("ready", flush=True)   # in the try: Ctrl-C from now on is caught
        conn.recv_frames(fastnet.Batch(4, 4), timeout=20)
    except KeyboardInterrupt:
        print("interrupted after %.3f" % (time.monotonic() - started), flush=True)
        sys.exit(0)
    sys.exit(3)
""")


def test_ctrl_c_interrupts_blocked_recv_frames(backend):
    assert_ctrl_c_interrupts(SIGINT_CHILD, backend)


# -- partial writes --------------------------------------------------------------------


def _varied_frames(count, longest, seed):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, size=int(n), dtype=np.uint8).tobytes()
        for n in rng.integers(0, longest + 1, size=count)
    ]


def _wait_writable(sock, timeout=5.0):
    _, writable, _ = select.select([], [sock], [], timeout)
    assert writable, "the socket did not become writable"


@pytest.mark.parametrize("prefix_size", [2, 4, 8])
def test_non_blocking_partial_writes_resume_exactly(backend, prefix_size):
    """The peer does not read at first: send_frames returns fewer, then finishes later."""
    frames = _varied_frames(3000, 97, seed=prefix_size)
    with tcp_pair(backend, rcvbuf=4096, sndbuf=4096) as (client, server_side):
        for sock in (client, server_side):
            sock.set_framing(prefix_size=prefix_size)
        batch = fastnet.Batch.from_payloads(frames, slot_size=97)
        client.setblocking(False)
        sent = client.send_frames(batch)
        assert 0 < sent < len(frames), "the kernel's buffers should have filled"
        with pytest.raises(BlockingIOError) as info:  # once full, a call that sends none raises
            for _ in range(1000):
                sent += client.send_frames(batch, start=sent)
                time.sleep(0.001)
        assert info.value.sent == 0
        assert sent < len(frames)
        reader = in_thread(recv_all_frames, server_side, 97, len(frames), 64, 20)
        held_seen = 0
        deadline = time.monotonic() + 20
        while sent < len(frames):
            assert time.monotonic() < deadline
            _wait_writable(client)
            try:
                sent += client.send_frames(batch, start=sent)
            except BlockingIOError:
                continue
            # Did this write stop inside a frame, its rest held for the next call?
            held_seen += client._frames.unsent > 0
        while client.flush_frames():
            _wait_writable(client)
        assert reader.result() == frames
        assert held_seen > 0, "no write ever stopped inside a frame"


def test_blocking_send_times_out_then_resumes(backend):
    frames = _varied_frames(2000, 300, seed=11)
    with tcp_pair(backend, rcvbuf=4096, sndbuf=4096) as (client, server_side):
        batch = fastnet.Batch.from_payloads(frames, slot_size=300)
        client.settimeout(0.2)
        with pytest.raises(TimeoutError) as info:
            client.send_frames(batch)
        sent = info.value.sent
        assert 0 < sent < len(frames)
        reader = in_thread(recv_all_frames, server_side, 300, len(frames), 64, 20)
        client.settimeout(20)
        assert client.send_frames(batch, start=sent) == len(frames) - sent
        assert client.flush_frames() == 0
        assert reader.result() == frames


def test_flush_frames_without_anything_held(backend):
    with tcp_pair(backend) as (client, server_side):
        assert client.flush_frames() == 0
        client.send_frames(fastnet.Batch.from_payloads([b"x"]))
        assert client.flush_frames() == 0
        assert recv_all_frames(server_side, 2, count=1) == [b"x"]


@pytest.mark.parametrize("prefix_size", [4, 8])
def test_write_stopping_inside_a_length_prefix_resumes_exactly(backend, prefix_size):
    """Tiny frames: most bytes are prefix bytes, so writes stop inside prefixes.

    (Not 2: with 2-byte prefixes a gathered write of 512 tiny frames fits one
    skb, and on loopback the kernel then takes or refuses it whole.)
    """
    inside_prefix = 0
    for round_number in range(5):  # bounded; one round is nearly always enough
        frames = _varied_frames(30000, 3, seed=100 + round_number)
        with tcp_pair(backend, rcvbuf=4096, sndbuf=4096) as (client, server_side):
            for sock in (client, server_side):
                sock.set_framing(prefix_size=prefix_size)
            batch = fastnet.Batch.from_payloads(frames, slot_size=3)
            client.setblocking(False)
            reader = None
            sent = 0
            deadline = time.monotonic() + 20
            while sent < len(frames):
                assert time.monotonic() < deadline
                try:
                    sent += client.send_frames(batch, start=sent)
                except BlockingIOError:
                    pass
                # More held than the last frame's payload: the write stopped
                # inside its prefix.
                inside_prefix += client._frames.unsent > len(frames[sent - 1]) if sent else 0
                if reader is None:
                    reader = in_thread(recv_all_frames, server_side, 3, len(frames), 1024, 20)
                _wait_writable(client)
            while client.flush_frames():
                _wait_writable(client)
            assert reader.result() == frames
        if inside_prefix:
            break
    assert inside_prefix > 0, "no write stopped inside a length prefix"
