"""Helpers shared by the TCP tests: connected pairs, a reference encoder, queue probes."""

import contextlib
import fcntl
import socket as stdsocket
import struct
import termios
import time

from helpers import HANG_S, in_thread  # noqa: F401 - in_thread: for the TCP tests

import fastnet


def encode(frames, prefix_size=4, byteorder="big"):
    """The wire bytes of ``frames``, written independently of fastnet."""
    return b"".join(len(f).to_bytes(prefix_size, byteorder) + bytes(f) for f in frames)


@contextlib.contextmanager
def tcp_pair(
    server_backend,
    client_backend=None,
    family=stdsocket.AF_INET,
    host="127.0.0.1",
    *,
    rcvbuf=None,
    sndbuf=None,
    raw_client=False,
):
    """``(client, server_side)``: a connected loopback pair, closed afterwards.

    ``raw_client`` makes the client a plain ``socket.socket`` (a peer that is
    not fastnet). ``rcvbuf``/``sndbuf`` are set on the server side's
    listener / the client before connecting, so the window is small from the
    start.
    """
    listener = fastnet.socket(family, stdsocket.SOCK_STREAM, backend=server_backend)
    if rcvbuf:
        listener.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, rcvbuf)
    listener.bind((host, 0))
    listener.listen()
    if raw_client:
        client = stdsocket.socket(family, stdsocket.SOCK_STREAM)
    else:
        client = fastnet.socket(family, stdsocket.SOCK_STREAM, backend=client_backend or server_backend)
    if sndbuf:
        client.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, sndbuf)
    # Small writes go out at once instead of waiting for an ACK (Nagle).
    client.setsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY, 1)
    client.settimeout(5)
    client.connect(listener.getsockname())
    listener.settimeout(5)
    server_side, _ = listener.accept()
    listener.close()
    try:
        yield client, server_side
    finally:
        client.close()
        server_side.close()


def queued(sock):
    """Bytes waiting in the kernel's receive queue of ``sock`` (FIONREAD, alias SIOCINQ)."""
    raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return struct.unpack("i", raw)[0]


def wait_queued(sock, nbytes, timeout=HANG_S):
    """Wait until at least ``nbytes`` are in ``sock``'s receive queue (bounded)."""
    deadline = time.monotonic() + timeout
    while queued(sock) < nbytes:
        assert time.monotonic() < deadline, f"{nbytes} bytes did not arrive in {timeout} s"
        time.sleep(0.0005)


def take_available(sock, batch):
    """All whole frames available now, without waiting: a list of (payload, truncated)."""
    out = []
    while True:
        try:
            n = sock.recv_frames(batch, timeout=0)
        except BlockingIOError:
            return out
        if n == 0:
            return out
        out.extend((bytes(batch.payload(i)), bool(batch.truncated[i])) for i in range(n))


def recv_all_frames(sock, slot_size, count=None, capacity=64, timeout=HANG_S):
    """Frames until ``count`` arrived or the peer closed (bounded): list of payloads."""
    batch = fastnet.Batch(capacity, slot_size, family=sock.family)
    frames = []
    deadline = time.monotonic() + timeout
    while count is None or len(frames) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"only {len(frames)} frames arrived"
        n = sock.recv_frames(batch, timeout=remaining)
        if n == 0:
            break
        frames.extend(bytes(batch.payload(i)) for i in range(n))
    return frames
