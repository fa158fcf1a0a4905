"""Receiver's ring counted in rows: capacity, max_delay, capture while the consumer holds
the GIL, exact accounting, stopping and closing from threads, errors, recording, pinning."""

import mmap
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from helpers import HANG_S, ROOT, in_thread, numbers_in, send_numbered

import fastnet


def wait_for(condition, timeout=HANG_S):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def take_all(rx, count):
    """Numbers of the next ``count`` datagrams, taken batch by batch (each batch within HANG_S)."""
    seen = []
    while len(seen) < count:
        seen.extend(numbers_in(rx.get(timeout=HANG_S)))
    return seen


@pytest.fixture
def sender(backend):
    sock = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    yield sock
    sock.close()


# -- capacity in rows -------------------------------------------------------------
def test_a_trickle_fills_every_row_before_block_stops_reading(backend, sender):
    # One datagram at a time, each captured before the next is sent: each
    # receive call finds one. A ring counted in batches would be full after
    # ring_size of them; this one holds ring_size x batch_size.
    with fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=4, rcvbuf=1 << 20) as rx:
        for number in range(32):
            send_numbered(sender, rx.address, number, 1)
            wait_for(lambda n=number: rx.stats.packets == n + 1)
        assert rx.stats.batches == 32  # one receive call per datagram
        send_numbered(sender, rx.address, 32, 10)
        time.sleep(0.05)  # not needed for the assertions: lets the capture try (and wait)
        assert rx.stats.packets == 32  # full: the rest waits in the socket's queue
        rx.stop()
        stats = rx.stats
        assert (stats.packets, stats.unread, stats.kernel_drops) == (32, 10, 0)
        batches = list(rx)
    assert [n for batch in batches for n in numbers_in(batch)] == list(range(32))
    assert all(batch.count <= 8 for batch in batches)
    assert rx.stats.delivered == 32 and rx.stats.accounted == 42


def _first_byte(batch):
    return batch.data.__array_interface__["data"][0]


def test_hand_overs_are_windows_on_the_ring_split_at_its_end(backend, sender):
    # 3 x 4 rows. The consumer keeps holding a hand-over, so the ring is never
    # empty and the rows go round it: 0-3, 4-5, then 6-11 and 0-1 again.
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=3, rcvbuf=1 << 20) as rx:
        send_numbered(sender, rx.address, 0, 6)
        wait_for(lambda: rx.stats.packets == 6)
        first = rx.get(timeout=HANG_S)
        ring_start = _first_byte(first)
        counts, seen = [first.count], numbers_in(first)
        second = rx.get(timeout=HANG_S)  # (first's rows are free again from here on)
        counts.append(second.count)
        seen.extend(numbers_in(second))
        send_numbered(sender, rx.address, 6, 8)
        wait_for(lambda: rx.stats.packets == 14)
        batches = [second]
        while len(seen) < 14:
            batch = rx.get(timeout=HANG_S)
            counts.append(batch.count)
            seen.extend(numbers_in(batch))
            batches.append(batch)
        last = batches[-1]
    assert seen == list(range(14))
    assert counts == [4, 2, 4, 2, 2]  # the fourth stops at the ring's last row
    assert _first_byte(last) == ring_start  # and the rows after it are the ring's first again


def test_a_drained_ring_starts_again_at_its_first_row(backend, sender):
    # At low rates the same few rows are used again, so a large ring costs
    # memory only for the backlog it holds.
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=8, rcvbuf=1 << 20) as rx:
        starts = set()
        for number in range(20):
            send_numbered(sender, rx.address, number, 1)
            batch = rx.get(timeout=HANG_S)
            assert numbers_in(batch) == [number]
            starts.add(_first_byte(batch))
            with pytest.raises(TimeoutError):
                rx.get(timeout=0)  # gives the row back: the ring is empty when the next comes
    # Row 0 each time (row 1 only if a datagram came before the row was given back).
    assert len(starts) <= 2


def test_the_consumers_batch_stays_valid_until_the_next_get(backend, sender):
    with fastnet.Receiver(0, backend=backend, batch_size=2, ring_size=1, rcvbuf=1 << 20) as rx:
        send_numbered(sender, rx.address, 0, 2)
        first = rx.get(timeout=HANG_S)
        while first.count < 2:  # (the two may come in two hand-overs)
            first = rx.get(timeout=HANG_S)
        send_numbered(sender, rx.address, 2, 2)
        time.sleep(0.05)  # the capture would overwrite the rows now, were they free
        assert numbers_in(first) == [0, 1]
        assert take_all(rx, 2) == [2, 3]


# -- max_delay -------------------------------------------------------------------
def test_max_delay_hands_a_trickle_over_without_waiting_for_a_full_batch(backend, sender):
    with fastnet.Receiver(0, backend=backend, batch_size=1024, ring_size=2, max_delay=0.001) as rx:
        assert rx.max_delay == 0.001
        for number in range(5):
            send_numbered(sender, rx.address, number, 1)
            # No timeout: it comes after max_delay, long before 1024 rows could.
            assert numbers_in(in_thread(rx.get).result()) == [number]


def test_a_full_batch_goes_at_once_and_a_partial_one_at_the_deadline(backend, sender):
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2, max_delay=3600) as rx:
        send_numbered(sender, rx.address, 0, 4)
        wait_for(lambda: rx.stats.packets == 4)
        assert numbers_in(in_thread(rx.get).result()) == [0, 1, 2, 3]
        send_numbered(sender, rx.address, 4, 3)
        wait_for(lambda: rx.stats.packets == 7)
        # An hour of max_delay, but the caller's timeout ends first.
        assert numbers_in(rx.get(timeout=0.05)) == [4, 5, 6]
        with pytest.raises(TimeoutError):
            rx.get(timeout=0)


def test_a_consumer_blocked_on_an_empty_ring_gets_a_single_datagram(backend, sender):
    # The capture wakes a waiting consumer only for a full batch or for rows
    # due by max_delay: a lone datagram must still reach a get() already waiting.
    with fastnet.Receiver(0, backend=backend, batch_size=1024, ring_size=2, max_delay=0.001) as rx:
        waiting = in_thread(rx.get, HANG_S)
        send_numbered(sender, rx.address, 0, 1)
        assert numbers_in(waiting.result()) == [0]
        assert rx.stats.packets == 1


def test_what_a_full_batch_leaves_is_handed_over_by_max_delay(backend, sender):
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=4, max_delay=0.001) as rx:
        send_numbered(sender, rx.address, 0, 6)
        wait_for(lambda: rx.stats.packets == 6)
        assert numbers_in(rx.get(timeout=HANG_S)) == [0, 1, 2, 3]
        # No caller's timeout: the two rows left come by max_delay alone.
        assert numbers_in(in_thread(rx.get).result()) == [4, 5]


def test_a_partial_batch_goes_to_a_blocked_consumer_at_stop(backend, sender):
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2, max_delay=3600) as rx:
        send_numbered(sender, rx.address, 0, 3)
        wait_for(lambda: rx.stats.packets == 3)
        waiting = in_thread(rx.get)
        rx.stop()
        assert numbers_in(waiting.result()) == [0, 1, 2]


@pytest.mark.parametrize(
    "max_delay,error",
    [
        (-1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("1ms", TypeError),
        (True, TypeError),
    ],
)
def test_bad_max_delay_is_refused(backend, max_delay, error):
    with pytest.raises(error):
        fastnet.Receiver(0, backend=backend, max_delay=max_delay)


def test_a_ring_of_too_many_rows_is_refused(backend):
    with pytest.raises(ValueError, match="rows"):
        fastnet.Receiver(0, backend=backend, slot_size=1, batch_size=1024, ring_size=2048)


# -- capture goes on while the consumer holds the GIL --------------------------------
SENDER = """
import mmap, sys, time
import numpy as np
import fastnet
port, count, flag_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(flag_path, "r+b") as f:
    flag = mmap.mmap(f.fileno(), 8)
tx = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="cython")
batch = fastnet.Batch(64, 1024)
batch.lengths[:] = 1024
print("ready", flush=True)
sys.stdin.readline()
sent = 0
while sent < count:
    n = min(64, count - sent)
    numbers = np.arange(sent, sent + n, dtype=">u8")
    batch.data[:n, :8] = numbers.view(np.uint8).reshape(n, 8)
    batch.count = n
    sent += tx.send_batch(batch, ("127.0.0.1", port))
    time.sleep(0.001)  # paced: 64 datagrams a millisecond at most
flag[:8] = sent.to_bytes(8, "little")
"""


def test_capture_goes_on_while_the_consumer_holds_the_gil(tmp_path):
    if "cython" not in fastnet.available_backends():
        pytest.skip("the Cython engine is not built")
    with fastnet.Receiver(
        0, backend="cython", slot_size=1024, batch_size=256, ring_size=64, rcvbuf=1 << 20
    ) as rx:
        # More than the socket's queue could hold: the kernel charges each
        # datagram more than its 1024 bytes (rcvbuf is what it reports). The
        # queue still holds over 10 ms of this sender, so the capture thread
        # may be kept off a CPU that long (the machine has two, and this
        # thread spins on one) without a drop.
        count = 4 * (rx.rcvbuf // 1024)
        assert count <= 256 * 64
        flag_path = str(tmp_path / "sent")
        with open(flag_path, "wb") as f:
            f.write(bytes(8))
        child = subprocess.Popen(
            [sys.executable, "-c", SENDER, str(rx.address[1]), str(count), flag_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            with open(flag_path, "r+b") as f:
                flag = mmap.mmap(f.fileno(), 8)
            assert child.stdout.readline().strip() == "ready"
            switch = sys.getswitchinterval()
            sys.setswitchinterval(100.0)  # no other Python thread runs until this one waits
            try:
                child.stdin.write("go\n")
                child.stdin.flush()
                # Hold the GIL for 0.5 s, and on until the sender is done
                # (bounded): reading the mapped flag never releases it.
                start = time.monotonic()
                for _ in range(10**9):
                    now = time.monotonic()
                    if now - start >= 0.5 and int.from_bytes(flag[:8], "little") == count:
                        break
                    if now - start > HANG_S:
                        break
                captured_while_held = rx.stats.packets  # the consumer took nothing yet
            finally:
                sys.setswitchinterval(switch)
            flag.close()
            assert child.wait(timeout=HANG_S) == 0
        finally:
            child.kill()
        wait_for(lambda: rx.stats.packets == count)
        assert captured_while_held == count
        assert take_all(rx, count) == list(range(count))
        stats = rx.stats
        assert (stats.kernel_drops, stats.ring_overruns, stats.delivered) == (0, 0, count)


# -- exact accounting under overload ---------------------------------------------
def test_overload_with_no_consumer_is_counted_exactly(backend, sender):
    sent = 5000
    rx = fastnet.Receiver(0, backend=backend, batch_size=16, ring_size=4, rcvbuf=64 << 10, on_full="drop")
    with rx:
        assert send_numbered(sender, rx.address, 0, sent, size=200) == sent
        wait_for(lambda: rx.stats.accounted == sent)
        stats = rx.stats
        assert stats.packets == 64  # every row of the ring, then overruns
        assert stats.ring_overruns > 0
    stats = rx.stats
    assert stats.accounted == sent and stats.in_ring == 64 and stats.delivered == 0


# -- stopping and closing from other threads ---------------------------------------------
def test_close_from_another_thread_ends_a_blocked_get_and_the_capture(backend):
    rx = fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2)
    rx.start()
    closer = threading.Timer(0.2, rx.close)
    closer.start()
    with pytest.raises(fastnet.ReceiverStopped):
        in_thread(rx.get).result()  # fails if the close did not end it
    closer.join()
    assert not rx._thread.is_alive() and rx.fileno() == -1


def test_closing_the_socket_under_a_stream_ends_the_capture_with_ebadf(backend, sender):
    rx = fastnet.Receiver(0, backend=backend, batch_size=64, ring_size=64, on_full="drop", rcvbuf=1 << 20)
    with rx:
        stop = threading.Event()

        def stream():
            number = 0
            while not stop.is_set() and number < 10**6:
                send_numbered(sender, rx.address, number, 64)
                number += 64

        streaming = in_thread(stream)
        try:
            wait_for(lambda: rx.stats.packets > 0)
            rx._sock.close()  # while datagrams keep coming
            with pytest.raises(OSError) as info:
                for _ in rx:
                    pass
            assert info.value.errno == 9
        finally:
            stop.set()
            streaming.result()
        rx._thread.join(HANG_S)
        assert not rx._thread.is_alive()


def test_an_error_reaches_the_consumer_after_the_rows_captured_before_it(backend, sender):
    with fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=8, rcvbuf=1 << 20) as rx:
        send_numbered(sender, rx.address, 0, 20)
        wait_for(lambda: rx.stats.packets == 20)
        rx._sock.close()
        rx._thread.join(HANG_S)
        seen = []
        with pytest.raises(OSError) as info:
            for batch in rx:
                seen.extend(numbers_in(batch))
        assert info.value.errno == 9
        assert seen == list(range(20))
        with pytest.raises(fastnet.ReceiverStopped):
            rx.get(timeout=0)


# -- recording under load ----------------------------------------------------------
def test_recording_under_load_counts_every_datagram(backend, sender, tmp_path):
    path = tmp_path / "load.npy"
    sent = 20000
    rx = fastnet.Receiver(0, backend=backend, slot_size=256, batch_size=64, ring_size=8, rcvbuf=4 << 20)
    recorder = rx.record(path, buffers=2)
    rx.start()
    try:
        taken = 0
        for start in range(0, sent, 1000):
            send_numbered(sender, rx.address, start, 1000, size=200)
            for _ in range(3):  # a slow consumer: the ring fills, the recorder falls behind
                try:
                    taken += rx.get(timeout=0.001).count
                except TimeoutError:
                    pass
        deadline = time.monotonic() + HANG_S
        while rx.stats.accounted < sent:  # take the rest: the queue empties into the ring
            assert time.monotonic() < deadline, "not every datagram was accounted for"
            try:
                taken += rx.get(timeout=0.1).count
            except TimeoutError:
                pass
    finally:
        rx.close()
    stats = rx.stats
    assert stats.accounted == sent
    assert stats.recorded + stats.capture_dropped == stats.packets + stats.ring_overruns
    written = len(np.load(path))
    assert stats.recorded == recorder.stats.written == written > 0
    numbers = np.load(path)["payload"][:, :8].copy().view(">u8").ravel().tolist()
    assert numbers == sorted(numbers) and len(set(numbers)) == written


# -- pinning -------------------------------------------------------------------------
def _allowed_cpus(tid):
    with open(f"/proc/self/task/{tid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    raise LookupError("no Cpus_allowed_list")


def test_cpu_pins_the_capture_thread(backend, sender):
    cpu = max(os.sched_getaffinity(0))
    with fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=2, cpu=cpu) as rx:
        assert rx.cpu == cpu
        send_numbered(sender, rx.address, 0, 1)
        assert take_all(rx, 1) == [0]  # the capture thread runs (and has pinned itself)
        assert _allowed_cpus(rx._thread.native_id) == str(cpu)
    assert threading.current_thread().native_id != rx._thread.native_id


@pytest.mark.parametrize(
    "cpu,error", [(-1, ValueError), (1 << 20, ValueError), (1.0, TypeError), (True, TypeError)]
)
def test_bad_cpu_is_refused_before_any_socket(backend, cpu, error, monkeypatch):
    made = []
    monkeypatch.setattr(
        fastnet.receive.receiver, "_fastsocket", lambda *a, **k: made.append(1) or fastnet.socket(*a, **k)
    )
    with pytest.raises(error):
        fastnet.Receiver(0, backend=backend, cpu=cpu)
    assert made == []


# -- GRO into the ring -----------------------------------------------------------------
def test_gro_super_datagrams_become_rows_of_the_ring(backend, sender):
    if not fastnet.features().get("gro") or not fastnet.features().get("gso"):
        pytest.skip("no UDP GRO/GSO in this kernel")
    with fastnet.Receiver(
        0, backend=backend, slot_size=512, batch_size=32, ring_size=4, rcvbuf=4 << 20, gro=True
    ) as rx:
        batch = fastnet.Batch(64, 512)
        seen = []
        for start in range(0, 640, 64):
            numbers = np.arange(start, start + 64, dtype=">u8")
            batch.data[:, :8] = numbers.view(np.uint8).reshape(64, 8)
            batch.lengths[:] = 512
            batch.count = 64
            assert sender.send_batch(batch, rx.address, gso=True) == 64
            while len(seen) < start + 64:
                got = rx.get(timeout=HANG_S)
                assert got.count <= 32 and (got.lengths[: got.count] == 512).all()
                seen.extend(numbers_in(got))
        assert seen == list(range(640))
        assert rx.stats.kernel_drops == 0 and rx.stats.packets == 640


@pytest.mark.parametrize("batch_size", [16, 64])
def test_gro_bursts_of_every_length_stay_in_order_in_the_ring(backend, sender, batch_size):
    """Super-datagrams shorter and longer than the last ones, a segment size change and
    plain datagrams, queued together: the ring's rows follow the datagrams one for one,
    and the counts add up."""
    if not fastnet.features().get("gro") or not fastnet.features().get("gso"):
        pytest.skip("no UDP GRO/GSO in this kernel")
    with fastnet.Receiver(
        0, backend=backend, slot_size=512, batch_size=batch_size, ring_size=8, rcvbuf=8 << 20, gro=True
    ) as rx:
        expected = []  # (number, length)
        for count, size in [
            (8, 512),
            (64, 512),
            (5, 512),
            (70, 512),
            (1, 512),
            (30, 300),
            (40, 512),
            (3, 100),
        ]:
            numbers = np.arange(len(expected), len(expected) + count, dtype=">u8")
            batch = fastnet.Batch(count, 512)
            batch.data[:, :8] = numbers.view(np.uint8).reshape(count, 8)
            batch.lengths[:] = size
            batch.count = count
            if count == 1:
                assert sender.sendto(bytes(batch.payload(0)), rx.address) == size
            else:
                assert sender.send_batch(batch, rx.address, gso=True) == count
            expected += [(int(n), size) for n in numbers]
        seen = []
        deadline = time.monotonic() + HANG_S
        while len(seen) < len(expected) and time.monotonic() < deadline:
            got = rx.get(timeout=HANG_S)
            seen += list(zip(numbers_in(got), got.lengths[: got.count].tolist(), strict=True))
        assert seen == expected
        assert rx.stats.kernel_drops == 0 and rx.stats.packets == len(expected)
    assert rx.stats.accounted


# -- the engines' ring objects themselves ------------------------------------------------
def _ring_class(backend):
    from fastnet.receive import receiver

    return receiver._ring_class(backend)


@pytest.mark.parametrize(
    "make,error",
    [
        (lambda: (fastnet.Batch(8, 16), fastnet.Batch(4, 1), 0, False, 0), ValueError),
        (lambda: (fastnet.Batch(8, 16), fastnet.Batch(4, 1), 5, False, 0), ValueError),
        (
            lambda: (fastnet.Batch(8, 16), fastnet.Batch(4, 1, family=fastnet.AF_INET6), 4, False, 0),
            ValueError,
        ),
        (lambda: (fastnet.Batch(8, 16), fastnet.Batch(4, 1), 4, False, -1), ValueError),
    ],
)
def test_a_capture_ring_refuses_bad_arguments(backend, make, error):
    with pytest.raises(error):
        _ring_class(backend)(*make())


@pytest.mark.parametrize("wait", [float("nan"), -1.0, 0.0, 1e-300])
def test_a_capture_ring_takes_nothing_from_an_empty_ring_at_once(backend, wait):
    ring = _ring_class(backend)(fastnet.Batch(8, 16), fastnet.Batch(4, 1), 4, False, 0)
    assert ring.take(wait)[1] == 0
    ring.finish()
    assert ring.take(wait)[1] == -1 and ring.wait_ready(wait)
