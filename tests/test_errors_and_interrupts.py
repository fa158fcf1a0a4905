"""Bad input, timeouts, close from another thread, Ctrl-C, non-blocking partial sends."""

import io
import os
import socket as stdsocket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from helpers import HANG_S, ROOT, assert_ctrl_c_interrupts, in_thread
from netns import needs_netns

import fastnet


def test_non_batch_is_a_type_error(pair):
    receiver, sender = pair
    with pytest.raises(TypeError, match="fastnet.Batch"):
        receiver.recv_batch(bytearray(100))
    with pytest.raises(TypeError, match="fastnet.Batch"):
        sender.send_batch([b"x"], receiver.getsockname())


def test_family_mismatch_is_a_value_error(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        with pytest.raises(ValueError, match="AF_INET6"):
            sock.recv_batch(fastnet.Batch(1, 1, family=fastnet.AF_INET6), timeout=0)


def test_stream_socket_is_refused(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend) as sock:
        with pytest.raises(io.UnsupportedOperation, match="SOCK_DGRAM"):
            sock.recv_batch(fastnet.Batch(1, 1))
        with pytest.raises(io.UnsupportedOperation):
            sock.send_batch(fastnet.Batch.from_payloads([b"x"]), ("127.0.0.1", 9))


def test_closed_socket_raises_oserror(backend):
    sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    sock.close()
    with pytest.raises(OSError) as info:
        sock.recv_batch(fastnet.Batch(1, 1), timeout=0)
    assert info.value.errno == 9  # EBADF, as the standard library says
    with pytest.raises(OSError):
        sock.send_batch(fastnet.Batch.from_payloads([b"x"]), ("127.0.0.1", 9))


@pytest.mark.parametrize(
    "address,error",
    [
        (("::1", 9), OSError),  # an IPv6 host on an IPv4 socket cannot resolve
        ("127.0.0.1:9", TypeError),
        (("127.0.0.1",), TypeError),
        (("127.0.0.1", "9"), TypeError),
        (("127.0.0.1", 70000), ValueError),
        ((b"127.0.0.1", 9), TypeError),
    ],
)
def test_bad_addresses_are_refused(backend, address, error):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        with pytest.raises(error):
            sock.send_batch(fastnet.Batch.from_payloads([b"x"]), address)


def test_lengths_out_of_range_are_refused_before_sending(pair):
    receiver, sender = pair
    batch = fastnet.Batch(2, 4, family=sender.family)
    batch.count = 2
    batch.lengths[1] = 5
    with pytest.raises(ValueError, match="lengths"):
        sender.send_batch(batch, receiver.getsockname())
    batch.lengths[1] = -1
    with pytest.raises(ValueError, match="lengths"):
        sender.send_batch(batch, receiver.getsockname())
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):  # and nothing was sent
        receiver.recvfrom(10)


@pytest.mark.parametrize(
    "timeout,error", [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError)]
)
def test_bad_timeouts_are_refused(backend, timeout, error):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(error):
            sock.recv_batch(fastnet.Batch(1, 1), timeout=timeout)


def test_timeout_raises_timeout_error(pair):
    receiver, sender = pair
    batch = fastnet.Batch(4, 4, family=receiver.family)
    with pytest.raises(TimeoutError):
        receiver.recv_batch(batch, timeout=0.1)
    assert batch.count == 0
    # A timeout is a wait, not a poll: a datagram that comes during it is taken.
    # (An engine that gave up at once would raise TimeoutError here, unless this
    # thread stalled for longer than the timer; the datagram is never missed.)
    late = threading.Timer(0.2, sender.sendto, [b"late", receiver.getsockname()])
    late.start()
    try:
        assert receiver.recv_batch(batch, timeout=HANG_S) == 1
    finally:
        late.join()
    assert bytes(batch.payload(0)) == b"late"


def test_socket_timeout_is_used_by_default(pair):
    receiver, _ = pair
    receiver.settimeout(0.05)
    with pytest.raises(TimeoutError):
        receiver.recv_batch(fastnet.Batch(4, 4, family=receiver.family))


def test_non_blocking_receive_raises_blocking_io_error(pair):
    receiver, _ = pair
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv_batch(fastnet.Batch(4, 4, family=receiver.family))
    with pytest.raises(BlockingIOError):
        receiver.recv_batch(fastnet.Batch(4, 4, family=receiver.family), timeout=0)


@pytest.mark.parametrize("waits_before", [0, 3], ids=["first-wait", "kept-poll-object"])
def test_close_from_another_thread_ends_blocked_receive(pair, waits_before):
    # Each wait keeps its poll object for the next: a kept one (after waits
    # that timed out) must still see the close's wake-up, as a new one does.
    receiver, _ = pair
    batch = fastnet.Batch(4, 4, family=receiver.family)
    for _ in range(waits_before):
        with pytest.raises(TimeoutError):
            receiver.recv_batch(batch, timeout=0.02)
    closer = threading.Timer(0.2, receiver.close)
    closer.start()
    # Had close() not ended it, the wait would end in TimeoutError (errno not EBADF).
    with pytest.raises(OSError) as info:
        receiver.recv_batch(batch, timeout=HANG_S)
    closer.join()
    assert info.value.errno == 9, "close() did not end the blocked receive"
    assert receiver.closed and receiver.fileno() == -1


def test_two_threads_wait_on_one_socket_at_once(pair):
    # One poll object cannot be polled by two threads at once (CPython raises
    # RuntimeError): a second waiter must get its own, and both must wake.
    receiver, sender = pair
    batches = [fastnet.Batch(1, 8, family=receiver.family) for _ in range(2)]
    with pytest.raises(TimeoutError):  # a poll object is kept from here on
        receiver.recv_batch(batches[0], timeout=0.02)
    waiting = [in_thread(receiver.recv_batch, batch, HANG_S) for batch in batches]
    time.sleep(0.2)  # both in their waits, most likely (the outcome is checked either way)
    sender.sendto(b"one", receiver.getsockname())
    sender.sendto(b"two", receiver.getsockname())
    assert [w.result() for w in waiting] == [1, 1]
    assert sorted(bytes(b.payload(0)) for b in batches) == [b"one", b"two"]


def test_close_while_idle_from_another_thread_really_closes(pair):
    receiver, _ = pair
    thread = threading.Thread(target=receiver.close)
    thread.start()
    thread.join()
    assert receiver.fileno() == -1


SIGINT_CHILD = textwrap.dedent("""
    import sys, time, fastnet
    sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=sys.argv[1])
    sock.bind(("127.0.0.1", 0))
    started = time.monotonic()
    try:
        print("ready", flush=True)   # in the try: Ctrl-C from now on is caught
        sock.recv_batch(fastnet.Batch(4, 4), timeout=20)
    except KeyboardInterrupt:
        print("interrupted after %.3f" % (time.monotonic() - started), flush=True)
        sys.exit(0)
    sys.exit(3)
""")


def test_ctrl_c_interrupts_blocked_receive(backend):
    assert_ctrl_c_interrupts(SIGINT_CHILD, backend)


# A private network namespace whose loopback has a slow token bucket: queued
# datagrams hold the sender's buffer, so a non-blocking send really meets
# EAGAIN (the host's loopback frees the buffer at once and never would).
NETNS_CHILD = textwrap.dedent("""
    import sys, socket, fastnet
    receiver = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=sys.argv[1])
    receiver.bind(("127.0.0.1", 0))
    sender = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=sys.argv[1])
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sender.setblocking(False)
    batch = fastnet.Batch.from_payloads([bytes(1000)] * 500)
    first = sender.send_batch(batch, receiver.getsockname())
    try:
        sender.send_batch(batch, receiver.getsockname())
        second = "sent"
    except BlockingIOError as exc:
        second = "blocked sent=%d" % exc.sent
    print(first, second)
""")


@needs_netns("tc")
def test_non_blocking_send_returns_partial_count(backend):
    name = f"fastnet-test-{os.getpid()}-{backend}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run = lambda *cmd: subprocess.run(
            ["ip", "netns", "exec", name, *cmd],
            check=True,  # noqa: E731
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        run("ip", "link", "set", "lo", "up")
        run(
            "tc",
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "tbf",
            "rate",
            "1mbit",
            "burst",
            "64kb",
            "latency",
            "2s",
        )
        out = run(sys.executable, "-c", NETNS_CHILD, backend).stdout.split()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
    first, second = int(out[0]), " ".join(out[1:])
    assert 0 < first < 500, f"expected a partial send, got {first}"
    assert second == "blocked sent=0"


def test_drained_queue_does_not_wait_out_the_sockets_timeout(pair):
    # CPython polls before each call on a socket with a timeout; the engines
    # must not: with one datagram queued and room for four, recv_batch
    # returns the one at once, not after the socket's 20 s timeout.
    receiver, sender = pair
    receiver.settimeout(3600)
    sender.sendto(b"only", receiver.getsockname())
    batch = fastnet.Batch(4, 8, family=receiver.family)
    # in_thread's bound (HANG_S) is far below the socket's hour.
    assert in_thread(receiver.recv_batch, batch).result() == 1


def test_explicit_timeout_wins_over_the_sockets(pair):
    receiver, _ = pair
    receiver.settimeout(3600)
    # in_thread's bound (HANG_S) is far below the socket's hour.
    waiting = in_thread(receiver.recv_batch, fastnet.Batch(4, 8, family=receiver.family), 0.1)
    with pytest.raises(TimeoutError):
        waiting.result()
    assert receiver.gettimeout() == 3600  # the socket's own setting is untouched


def test_making_a_python_socket_keeps_the_fds_blocking_mode():
    stdsocket.setdefaulttimeout(3)
    try:
        sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="python")
    finally:
        stdsocket.setdefaulttimeout(None)
    with sock:
        assert sock.gettimeout() == 3
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(TimeoutError):  # still a timeout socket, not a non-blocking one
            sock.settimeout(0.05)
            sock.recvfrom(10)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="python") as sock:
        sock.bind(("127.0.0.1", 0))
        assert os.get_blocking(sock.fileno())  # blocking mode left as the standard library set it
