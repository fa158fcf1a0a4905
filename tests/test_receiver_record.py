"""Receiver.record: every datagram read goes to a capture file, complete after stop()."""

import errno
import os
import time

import numpy as np
import pytest
from helpers import numbers_in, send_numbered

import fastnet


def take(rx, count, timeout=5.0):
    """Take batches until ``count`` datagrams were delivered; their numbers."""
    numbers = []
    deadline = time.monotonic() + timeout
    while len(numbers) < count:
        assert time.monotonic() < deadline, f"only {len(numbers)} of {count} arrived"
        numbers.extend(numbers_in(rx.get(timeout=deadline - time.monotonic())))
    return numbers


def read_back(path):
    """(numbers, sources, timestamps) of every datagram in a capture file."""
    numbers, sources, stamps = [], [], []
    with fastnet.read_capture(path) as reader:
        for batch in reader:
            numbers.extend(numbers_in(batch))
            sources.extend(batch.address(i) for i in range(batch.count))
            stamps.extend(batch.timestamps[: batch.count].tolist())
    return numbers, sources, stamps


@pytest.mark.parametrize("suffix", [".pcap", ".npy"])
def test_everything_received_is_in_the_file_after_stop(backend, family_host, tmp_path, suffix):
    family, host = family_host
    path = tmp_path / f"run{suffix}"
    with fastnet.Receiver((host, 0), backend=backend, batch_size=32, ring_size=8, rcvbuf=4 << 20) as rx:
        # A staging buffer for every batch there can be (allocated as
        # needed): none is dropped for a slow disk.
        recorder = rx.record(path, buffers=300)
        assert rx.recorder is recorder
        with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as tx:
            tx.bind((host, 0))
            sent = send_numbered(tx, rx.address, 0, 300, size=100)
            source = tx.getsockname()
        assert sorted(take(rx, sent)) == list(range(sent))
        rx.stop()
        assert recorder.closed  # finished when stop() returned
        stats = rx.stats
    assert stats.recorded == stats.packets == sent
    assert stats.capture_dropped == 0
    numbers, sources, stamps = read_back(path)
    assert numbers == list(range(sent))  # in arrival order, as the ring got them
    assert {s[:2] for s in sources} == {source[:2]}
    assert all(stamp > 0 for stamp in stamps)  # kernel receive times were on
    assert recorder.stats.written == sent


def test_pcap_destination_is_the_bound_address(backend, tmp_path):
    path = tmp_path / "run.pcap"
    with fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=2) as rx:
        rx.record(path)
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
            send_numbered(tx, rx.address, 0, 3)
        take(rx, 3)
    raw = path.read_bytes()
    # The first record: 24-byte file header, 16-byte record header, then IPv4
    # (20 bytes, destination at 16) and UDP (destination port at 2).
    ip = raw[24 + 16 :]
    assert ip[16:20] == bytes([127, 0, 0, 1])
    assert int.from_bytes(ip[20 + 2 : 20 + 4], "big") == rx.address[1]


def test_unknown_suffix_is_refused_before_any_file_exists(backend, tmp_path):
    with fastnet.Receiver(0, backend=backend, batch_size=1, ring_size=1) as rx:
        for name in ("run.txt", "run", "run.pcapng"):
            with pytest.raises(ValueError, match="pcap or .npy"):
                rx.record(tmp_path / name)
        assert rx.recorder is None and rx.stats.recorded is None
    assert os.listdir(tmp_path) == []


def test_one_recording_per_receiver_and_none_once_stopped(backend, tmp_path):
    rx = fastnet.Receiver(0, backend=backend, batch_size=1, ring_size=1)
    try:
        rx.record(tmp_path / "a.pcap")
        with pytest.raises(RuntimeError, match="already records"):
            rx.record(tmp_path / "b.pcap")
    finally:
        rx.close()
    with pytest.raises(RuntimeError, match="stopped"):
        rx.record(tmp_path / "c.pcap")
    assert sorted(os.listdir(tmp_path)) == ["a.pcap"]


def test_a_receiver_that_never_started_leaves_a_valid_empty_file(backend, tmp_path):
    rx = fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=1)
    rx.record(tmp_path / "empty.npy")
    rx.close()
    assert rx.stats.recorded == 0 and rx.stats.capture_dropped == 0
    assert len(np.load(tmp_path / "empty.npy")) == 0


def test_batches_the_ring_has_no_room_for_are_recorded_too(backend, tmp_path):
    # One ring slot and no consumer: the capture thread reads on into its
    # spare batch and discards (ring_overruns), but the recorder saw them.
    path = tmp_path / "overrun.npy"
    rx = fastnet.Receiver(0, backend=backend, batch_size=4, ring_size=1, on_full="drop", rcvbuf=4 << 20)
    recorder = rx.record(path)
    rx.start()
    try:
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
            for start in range(0, 200, 20):
                send_numbered(tx, rx.address, start, 20)
        deadline = time.monotonic() + 5
        while rx.stats.packets + rx.stats.ring_overruns < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rx.close()
    stats = rx.stats
    assert stats.ring_overruns > 0
    assert stats.packets + stats.kernel_drops + stats.ring_overruns + stats.unread == 200
    assert stats.recorded + stats.capture_dropped == stats.packets + stats.ring_overruns
    assert stats.recorded == recorder.stats.written == len(np.load(path))


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_write_error_is_raised_by_stop_and_nothing_goes_uncounted(backend):
    rx = fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=4)
    rx.record("/dev/full", format="npy")  # the first write (at the first batch) fails
    rx.start()
    try:
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
            send_numbered(tx, rx.address, 0, 5)
        take(rx, 5)
        with pytest.raises(OSError) as info:
            rx.stop()
        assert info.value.errno == errno.ENOSPC
        rx.stop()  # raised once
    finally:
        rx.close()
    stats = rx.stats
    assert stats.recorded == 0 and stats.capture_dropped == stats.packets == 5


def test_close_raises_the_write_error_after_closing(backend):
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    rx = fastnet.Receiver(0, backend=backend, batch_size=8, ring_size=4)
    rx.record("/dev/full", format="npy")
    with pytest.raises(OSError):
        with rx:
            with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
                send_numbered(tx, rx.address, 0, 2)
            take(rx, 2)
    assert rx.fileno() == -1
