"""Receiver: delivery, exact loss accounting under overload, stop, errors, bad input."""

import os
import signal
import socket as stdsocket
import subprocess
import sys
import threading
import time
import warnings

import pytest
from conftest import HAS_IPV6
from helpers import HANG_S, in_thread, numbers_in, proc_net_udp_drops, refuse_rcvbuf_force, send_numbered

import fastnet


def take_until_accounted(rx, sent, delay=0.0):
    """Take batches (sleeping ``delay`` s after each) until each of the ``sent``
    datagrams was taken or counted lost (kernel drops, ring overruns).

    Returns the numbers taken, in order. A batch that does not come within
    HANG_S (counted losses too low) fails the test; each batch takes at least
    one datagram, so the loop ends.
    """
    seen = []
    while True:
        stats = rx.stats
        if len(seen) + stats.kernel_drops + stats.ring_overruns >= sent:
            return seen
        seen.extend(numbers_in(rx.get(timeout=HANG_S)))
        time.sleep(delay)


def wait_for(condition, timeout=HANG_S):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def sender(backend):
    sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    yield sock
    sock.close()


# -- delivery -------------------------------------------------------------------
def test_delivers_every_datagram_in_order(backend, sender):
    # The socket's queue holds the whole burst while the small ring is full.
    with fastnet.Receiver(
        0, backend=backend, batch_size=16, ring_size=4, rcvbuf=4 << 20, seq=fastnet.SeqField()
    ) as rx:
        assert send_numbered(sender, rx.address, 0, 500) == 500
        seen = []
        while len(seen) < 500:
            batch = rx.get(timeout=5)
            assert isinstance(batch, fastnet.Batch) and batch.count > 0
            seen.extend(numbers_in(batch))
        stats = rx.stats
    assert seen == list(range(500))
    assert (stats.packets, stats.delivered, stats.in_ring) == (500, 500, 0)
    assert stats.bytes == 500 * 64
    assert stats.batches >= 500 // 16
    assert (stats.kernel_drops, stats.ring_overruns, stats.unread, stats.truncated) == (0, 0, 0, 0)
    assert (stats.seq_lost, stats.seq_gaps, stats.seq_reordered, stats.seq_duplicates) == (0, 0, 0, 0)


def test_address_port_and_loopback_default(backend):
    with fastnet.Receiver(0, backend=backend, ring_size=1, batch_size=1) as rx:
        host, port = rx.address
        assert host == "127.0.0.1" and port != 0
        assert rx.family == stdsocket.AF_INET
    with fastnet.Receiver(":0", backend=backend, ring_size=1, batch_size=1) as rx:
        assert rx.address[0] == "127.0.0.1"
    with fastnet.Receiver(("127.0.0.2", 0), backend=backend, ring_size=1, batch_size=1) as rx:
        assert rx.address[0] == "127.0.0.2"


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")
def test_ipv6(backend):
    with (
        fastnet.Receiver(("::1", 0), backend=backend, batch_size=8, ring_size=2) as rx,
        fastnet.socket(fastnet.AF_INET6, fastnet.SOCK_DGRAM, backend=backend) as tx,
    ):
        assert rx.family == stdsocket.AF_INET6
        send_numbered(tx, rx.address, 0, 10)
        batch = rx.get(timeout=5)
        assert batch.family == stdsocket.AF_INET6
        assert numbers_in(batch)[0] == 0
        assert batch.address(0)[0] == "::1"


def test_truncated_datagrams_are_counted(backend, sender):
    # A ring with room for each datagram in its own batch: all 4 get in.
    with fastnet.Receiver(0, backend=backend, slot_size=16, batch_size=8, ring_size=4) as rx:
        for size in (8, 16, 17, 100):
            sender.sendto(bytes(size), rx.address)
        wait_for(lambda: rx.stats.packets == 4)
        assert rx.stats.truncated == 2
        assert rx.stats.bytes == 8 + 16 + 16 + 16


def test_timestamps(backend, sender):
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2, timestamps=True) as rx:
        before = time.time_ns()
        sender.sendto(b"x", rx.address)
        batch = rx.get(timeout=5)
        assert before <= batch.timestamps[0] <= time.time_ns()


def test_sinks_see_every_batch_before_the_consumer(backend, sender):
    seen_by_sink = []
    with fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=4) as rx:
        rx._sinks.append(lambda batch: seen_by_sink.append(numbers_in(batch)))
        send_numbered(sender, rx.address, 0, 100)
        taken = []
        while sum(map(len, taken)) < 100:
            batch = rx.get(timeout=5)
            taken.append(numbers_in(batch))
            # The sink ran before the consumer could take this batch.
            assert seen_by_sink[: len(taken)] == taken
    assert sum(seen_by_sink, []) == list(range(100))


# -- loss accounting ------------------------------------------------------------
def overload(rx, sender, count):
    """Burst ``count`` datagrams while the consumer takes nothing, then drain slowly."""
    assert send_numbered(sender, rx.address, 0, count, size=200) == count
    return take_until_accounted(rx, count, delay=0.002)


def test_overload_block_counts_add_up_exactly(backend, sender):
    sent = 3000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastnet.BufferSizeWarning)
        rx = fastnet.Receiver(
            0,
            backend=backend,
            batch_size=8,
            ring_size=2,
            rcvbuf=16 * 1024,
            on_full="block",
            seq=fastnet.SeqField(),
        )
    with rx:
        seen = overload(rx, sender, sent)
        stats = rx.stats
        assert stats.kernel_drops == proc_net_udp_drops(rx.fileno())
        assert sent == stats.packets + stats.kernel_drops + stats.ring_overruns
        assert stats.kernel_drops > 0
        assert stats.ring_overruns == 0 and stats.ring_overrun_batches == 0
        assert stats.packets == stats.delivered == len(seen)
        assert seen == sorted(seen) and seen[0] == 0
        # One more datagram after the burst shows the losses at its tail too.
        send_numbered(sender, rx.address, sent, 1)
        assert numbers_in(rx.get(timeout=5)) == [sent]
        stats = rx.stats
        assert stats.seq_lost == stats.kernel_drops == sent - len(seen)
        assert stats.seq_reordered == stats.seq_duplicates == 0
        assert stats.kernel_drops == proc_net_udp_drops(rx.fileno())
    assert rx.stats.unread == 0
    assert rx.stats.accounted == sent + 1


def test_overload_drop_counts_ring_overruns(backend, sender):
    sent = 3000
    with fastnet.Receiver(
        0, backend=backend, batch_size=8, ring_size=2, rcvbuf=4 << 20, on_full="drop", seq=fastnet.SeqField()
    ) as rx:
        # Let the capture thread read the whole burst into a full ring first.
        assert send_numbered(sender, rx.address, 0, sent, size=200) == sent
        wait_for(lambda: rx.stats.accounted == sent)
        seen = take_until_accounted(rx, sent)
        stats = rx.stats
        assert stats.kernel_drops == proc_net_udp_drops(rx.fileno())
        assert sent == stats.packets + stats.kernel_drops + stats.ring_overruns
        assert stats.ring_overruns > 0
        assert stats.ring_overrun_batches * 8 >= stats.ring_overruns >= stats.ring_overrun_batches
        assert stats.packets == len(seen)
        assert seen == sorted(seen) and seen[0] == 0
        send_numbered(sender, rx.address, sent, 1)
        assert numbers_in(rx.get(timeout=5)) == [sent]
        stats = rx.stats
        assert stats.seq_lost == stats.kernel_drops + stats.ring_overruns == sent - len(seen)


def test_kernel_drops_are_read_when_stats_are_read(backend, family_host):
    # No datagram is taken after the drops happen: the count must still be current.
    family, host = family_host
    with (
        fastnet.Receiver((host, 0), backend=backend, batch_size=4, ring_size=1, rcvbuf=8192) as rx,
        fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        send_numbered(sender, rx.address, 0, 500, size=200)
        # The capture thread fills the one ring slot, then waits: the queue stays full.
        wait_for(lambda: rx.stats.packets > 0)
        drops = rx.stats.kernel_drops
        assert drops > 0
        assert drops == proc_net_udp_drops(rx.fileno(), family)
        packets = rx.stats.packets
        send_numbered(sender, rx.address, 500, 100, size=200)
        stats = rx.stats
        assert stats.kernel_drops == proc_net_udp_drops(rx.fileno(), family) > drops
        assert stats.packets == packets


def test_stop_counts_what_is_left_queued_as_unread(backend, sender):
    rx = fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2, rcvbuf=1 << 20)
    with rx:
        send_numbered(sender, rx.address, 0, 50)
        wait_for(lambda: rx.stats.packets == 8)  # the ring's 2 x 4 rows are full, the rest wait in the socket
        packets = rx.stats.packets
        rx.stop()
        stats = rx.stats
        assert (stats.packets, stats.unread, stats.kernel_drops) == (packets, 50 - packets, 0)
        drained = [n for batch in rx for n in numbers_in(batch)]
        assert drained == list(range(packets))  # captured batches are still delivered
    assert rx.stats.accounted == 50


def test_close_counts_datagrams_that_came_after_stop(backend, sender):
    rx = fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2)
    rx.start()
    rx.stop()
    send_numbered(sender, rx.address, 0, 5)
    rx.close()
    assert rx.stats.unread == 5 and rx.stats.packets == 0
    assert rx.fileno() == -1


# -- stopping -------------------------------------------------------------------
def test_stop_from_another_thread_ends_blocked_iteration(backend):
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2) as rx:
        stopper = threading.Timer(0.2, rx.stop)
        stopper.start()
        iterating = in_thread(list, rx)
        assert iterating.result() == []  # fails if the stop did not end it
        stopper.join()


def test_stop_from_another_thread_ends_blocked_get(backend):
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2) as rx:
        stopper = threading.Timer(0.2, rx.stop)
        stopper.start()
        # Had the stop not ended it, the wait would end in TimeoutError.
        with pytest.raises(fastnet.ReceiverStopped):
            rx.get(timeout=HANG_S)
        stopper.join()
        with pytest.raises(fastnet.ReceiverStopped):
            rx.get(timeout=0)


def test_stop_ends_a_capture_thread_waiting_for_a_full_ring(backend, sender):
    with fastnet.Receiver(0, backend=backend, batch_size=1, ring_size=1) as rx:
        send_numbered(sender, rx.address, 0, 3)
        wait_for(lambda: rx.stats.packets == 1)
        in_thread(rx.stop).result()  # fails if the stop hangs
        assert not rx._thread.is_alive()
        assert [numbers_in(b) for b in rx] == [[0]]
        assert rx.stats.unread == 2


def test_batches_captured_before_stop_are_delivered(backend, sender):
    with fastnet.Receiver(0, backend=backend, slot_size=64, batch_size=10, ring_size=100) as rx:
        send_numbered(sender, rx.address, 0, 100)
        wait_for(lambda: rx.stats.packets == 100)
        rx.stop()
        assert [n for batch in rx for n in numbers_in(batch)] == list(range(100))
        assert rx.stats.delivered == 100


def test_get_times_out(backend):
    with fastnet.Receiver(0, backend=backend, batch_size=1, ring_size=1) as rx:
        with pytest.raises(TimeoutError):
            rx.get(timeout=0.05)
        with pytest.raises(TimeoutError):
            rx.get(timeout=0)


def test_life_cycle_errors(backend):
    rx = fastnet.Receiver(0, backend=backend, batch_size=1, ring_size=1)
    with pytest.raises(RuntimeError, match="start"):
        rx.get(timeout=0)
    rx.start()
    assert rx.start() is rx and rx.running
    rx.stop()
    with pytest.raises(RuntimeError):
        rx.start()
    rx.close()
    rx.close()
    with pytest.raises(fastnet.ReceiverStopped):
        rx.get()
    assert rx.stats.packets == 0


def test_stop_before_start_ends_iteration(backend):
    rx = fastnet.Receiver(0, backend=backend, batch_size=1, ring_size=1)
    rx.stop()
    assert list(rx) == []
    rx.close()


# -- errors in the capture thread -----------------------------------------------
def test_sink_error_reaches_the_consumer_after_its_batch(backend, sender):
    def failing_sink(batch):
        raise ValueError("disk full")

    with fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=4) as rx:
        rx._sinks.append(failing_sink)
        sender.sendto(bytes(8), rx.address)
        first = rx.get(timeout=5)  # the batch the sink failed on is not lost
        assert first.count == 1
        with pytest.raises(ValueError, match="disk full"):
            rx.get(timeout=5)
        with pytest.raises(fastnet.ReceiverStopped):
            rx.get(timeout=5)
        assert rx.stats.packets == 1


def test_socket_error_in_capture_thread_reaches_iteration(backend):
    with fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=4) as rx:
        rx._sock.close()  # the capture thread's recv_batch fails with EBADF
        with pytest.raises(OSError) as info:
            for _ in rx:
                pass
        assert info.value.errno == 9


# -- socket options and bad input -----------------------------------------------
def test_rcvbuf_is_what_the_kernel_set(backend):
    wanted = 256 * 1024
    with open("/proc/sys/net/core/rmem_max") as f:
        granted = wanted if os.geteuid() == 0 else min(wanted, int(f.read()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastnet.BufferSizeWarning)
        rx = fastnet.Receiver(0, backend=backend, rcvbuf=wanted, batch_size=1, ring_size=1)
    with rx:
        assert rx.rcvbuf == rx._sock.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF)
        assert rx.rcvbuf == 2 * granted  # socket(7): the kernel doubles the value
    assert rx.rcvbuf == 2 * granted  # still known after close


def test_capped_rcvbuf_warns(backend, monkeypatch):
    rmem_max = refuse_rcvbuf_force(monkeypatch)
    with pytest.warns(fastnet.BufferSizeWarning, match="net.core.rmem_max"):
        rx = fastnet.Receiver(0, backend=backend, rcvbuf=4 * rmem_max, batch_size=1, ring_size=1)
    with rx:
        assert rx.rcvbuf == 2 * rmem_max


def test_busy_port_raises_from_the_constructor(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(OSError) as info:
            fastnet.Receiver(taken.getsockname(), backend=backend, batch_size=1, ring_size=1)
        assert info.value.errno == 98  # EADDRINUSE


def test_reuse_port_lets_receivers_share_a_port(backend):
    first = fastnet.Receiver(0, backend=backend, batch_size=1, ring_size=1, reuse_port=True)
    with (
        first,
        fastnet.Receiver(
            first.address, backend=backend, batch_size=1, ring_size=1, reuse_port=True
        ) as second,
    ):
        assert second.address == first.address


def test_interface_is_kept_for_multicast(backend):
    with fastnet.Receiver(0, backend=backend, batch_size=1, ring_size=1, interface="lo") as rx:
        assert rx.interface == "lo"


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(slot_size=0), ValueError),
        (dict(batch_size=-1), ValueError),
        (dict(ring_size=0), ValueError),
        (dict(slot_size=1.5), TypeError),
        (dict(batch_size="8"), TypeError),
        (dict(ring_size=True), TypeError),
        (dict(on_full="wait"), ValueError),
        (dict(on_full=None), TypeError),
        (dict(seq=fastnet.SeqField(offset=9000 - 7)), ValueError),
        (dict(slot_size=4, seq=fastnet.SeqField(size=8)), ValueError),
        (dict(seq=(0, 8)), TypeError),
        (dict(rcvbuf=0), ValueError),
        (dict(rcvbuf=1.0), TypeError),
        (dict(backend="java"), ValueError),
        (dict(interface=3.0), TypeError),
    ],
)
def test_bad_arguments_are_refused_before_any_socket(backend, kwargs, error, monkeypatch):
    kwargs.setdefault("backend", backend)
    made = []
    monkeypatch.setattr(
        fastnet.receive.receiver, "_fastsocket", lambda *a, **k: made.append(1) or fastnet.socket(*a, **k)
    )
    with pytest.raises(error):
        fastnet.Receiver(0, **kwargs)
    assert made == []


@pytest.mark.parametrize(
    "address,error",
    [
        (70000, ValueError),
        (-1, ValueError),
        ("127.0.0.1:x", ValueError),
        (True, TypeError),
        (["127.0.0.1", 0], TypeError),
        ((b"127.0.0.1", 0), TypeError),
        (("127.0.0.1", "0"), TypeError),
        (3.5, TypeError),
    ],
)
def test_bad_addresses_are_refused(backend, address, error):
    with pytest.raises(error):
        fastnet.Receiver(address, backend=backend)


def test_seq_short_rows_are_counted(backend, sender):
    with fastnet.Receiver(
        0, backend=backend, slot_size=64, batch_size=8, ring_size=4, seq=fastnet.SeqField(offset=4, size=4)
    ) as rx:
        for payload in (b"\0" * 8, b"\0" * 7, b"", b"\0\0\0\0\0\0\0\2"):
            sender.sendto(payload, rx.address)
        wait_for(lambda: rx.stats.packets == 4)
        stats = rx.stats
        assert (stats.seq_short, stats.seq_gaps, stats.seq_lost) == (2, 1, 1)
        assert stats.as_dict()["seq_short"] == 2


SIGINT_CHILD = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import fastnet
with fastnet.Receiver(0, backend=sys.argv[1], batch_size=4, ring_size=2) as rx:
    try:
        print("ready", flush=True)   # in the try: Ctrl-C from now on is caught
        for batch in rx:
            pass
    except KeyboardInterrupt:
        print("interrupted", flush=True)
print("closed", rx.fileno(), flush=True)
"""


def test_ctrl_c_ends_a_blocked_iteration(backend):
    child = subprocess.Popen(
        [sys.executable, "-c", SIGINT_CHILD, backend],
        text=True,
        stdout=subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.2)  # only so that Ctrl-C most often finds the loop blocked
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=HANG_S)
    finally:
        child.kill()
    assert out.split("\n")[:2] == ["interrupted", "closed -1"]
    assert child.returncode == 0
