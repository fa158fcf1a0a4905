"""Receiver(frames=spec).record(path): the frames get() gives, and those left at stop, in the file."""

import json
import threading
import time

import numpy as np
import pytest
from helpers import HANG_S

import fastnet
from fastnet import Field, FrameSpec
from fastnet.frames.synthetic import fill_batch, frame_pattern

SPEC = FrameSpec(16, 200, 8, frame_id=Field(0, 8), index=Field(8, 2, "little"), packet_size=216)
FORMATS = ["h5", "zarr"]


def need(fmt):
    pytest.importorskip("h5py" if fmt == "h5" else "zarr")


def read_back(path):
    names = ("data", "present", "frame_id", "first_timestamp")
    if str(path).endswith(".zarr"):
        import zarr

        root = zarr.open_group(str(path), mode="r")
        return {name: root["frames"][name][:] for name in names}, dict(root.attrs)
    import h5py

    with h5py.File(path, "r") as f:
        return {name: f["frames"][name][()] for name in names}, {key: f.attrs[key] for key in f.attrs}


def _receiver(backend, **options):
    return fastnet.Receiver(
        0, backend=backend, rcvbuf=8 << 20, batch_size=32, slot_size=256, frames=SPEC, **options
    )


def _send(rx, backend, packets):
    batch = fastnet.Batch(len(packets), 256)
    fill_batch(batch, SPEC, packets)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
        assert tx.send_batch(batch, rx.address) == len(packets)


def _wait_for_packets(rx, count):
    deadline = time.monotonic() + HANG_S
    while rx.stats.packets < count:
        assert time.monotonic() < deadline, "the datagrams did not arrive"
        time.sleep(0.01)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_file_holds_the_frames_the_consumer_got(backend, tmp_path, fmt):
    need(fmt)
    path = tmp_path / f"run.{fmt}"
    # frames 0-3 whole, frame 4 missing packet 5, frame 5 whole but for packet 0 (flushed at stop)
    packets = [(f, i) for f in range(4) for i in range(8)]
    packets += [(4, i) for i in range(8) if i != 5] + [(5, i) for i in range(1, 8)]
    with _receiver(backend, frames_in_flight=2) as rx:
        writer = rx.record(path)
        assert rx.recorder is writer
        _send(rx, backend, packets)
        got = []
        deadline = time.monotonic() + HANG_S
        while len(got) < 4:  # frames 4 and 5 stay in flight: the window of 2 holds both
            assert time.monotonic() < deadline, "the frames did not come"
            got.append(rx.get(timeout=1.0).copy())
        _wait_for_packets(rx, len(packets))
        rx.stop()  # the file is complete now
        arrays, attrs = read_back(path)
        got += [frame.copy() for frame in rx]  # the consumer still gets what stop() assembled
        stats = rx.stats
    assert [f.frame_id for f in got] == list(range(6))
    assert [f.complete for f in got] == [True] * 4 + [False, False]
    assert arrays["frame_id"].tolist() == [f.frame_id for f in got]
    assert np.array_equal(arrays["data"], np.stack([f.data for f in got]))
    assert np.array_equal(arrays["present"], np.stack([f.present for f in got]))
    assert arrays["first_timestamp"].tolist() == [f.first_timestamp for f in got]
    assert all(f.first_timestamp > 0 for f in got)  # record() turns kernel timestamps on
    for frame in got[:4]:
        assert np.array_equal(frame.data, frame_pattern(SPEC, frame.frame_id))
    assert (stats.frames_written, stats.frames_dropped) == (6, 0)
    assert stats.frames_complete + stats.frames_incomplete == stats.frames_written + stats.frames_dropped
    saved = json.loads(attrs["stats"])
    assert saved["writer"]["frames_written"] == 6 and saved["writer"]["frames_dropped"] == 0
    assert saved["source"]["packets_placed"] == len(packets) == stats.packets_placed
    assert json.loads(attrs["spec"]) == json.loads(SPEC.to_json())


@pytest.mark.parametrize("fmt", FORMATS)
def test_frames_the_consumer_never_took_are_in_the_file(backend, tmp_path, fmt):
    need(fmt)
    path = tmp_path / f"run.{fmt}"
    packets = [(f, i) for f in range(5) for i in range(8)]
    with _receiver(backend) as rx:
        rx.record(path)
        _send(rx, backend, packets)
        _wait_for_packets(rx, len(packets))
    # the with block's close() stopped it: every row left in the ring was assembled and written
    arrays, attrs = read_back(path)
    assert arrays["frame_id"].tolist() == list(range(5))
    assert arrays["present"].all()
    for k in range(5):
        assert np.array_equal(arrays["data"][k], frame_pattern(SPEC, k))
    stats = rx.stats
    assert (stats.frames_written, stats.frames_dropped, stats.frames_complete) == (5, 0, 5)
    assert stats.packets == stats.delivered == stats.packets_placed == len(packets)
    assert json.loads(attrs["stats"])["source"]["frames_written"] == 5


def test_a_writer_that_falls_behind_counts_what_it_did_not_write(backend, tmp_path):
    need("h5")
    path = tmp_path / "run.h5"
    packets = [(f, i) for f in range(40) for i in range(8)]
    with _receiver(backend) as rx:
        writer = rx.record(path, max_queue=1)
        # Hold the writer's thread up (its store is busy), so its queue of one overflows.
        store = writer._store
        blocked = threading.Event()
        original = store.append

        def slow_append(*arrays):
            blocked.wait(HANG_S)
            original(*arrays)

        store.append = slow_append
        _send(rx, backend, packets)
        got = 0
        deadline = time.monotonic() + HANG_S
        while got < 40:
            assert time.monotonic() < deadline, "the frames did not come"
            rx.get(timeout=1.0)
            got += 1
        blocked.set()
    stats = rx.stats
    arrays, attrs = read_back(path)
    assert stats.frames_dropped > 0
    assert stats.frames_written + stats.frames_dropped == 40
    assert len(arrays["frame_id"]) == stats.frames_written
    saved = json.loads(attrs["stats"])["writer"]
    assert (saved["frames_written"], saved["frames_dropped"]) == (stats.frames_written, stats.frames_dropped)


def test_a_capture_file_beside_the_frames_holds_every_datagram(backend, tmp_path):
    path = tmp_path / "raw.pcap"
    packets = [(f, i) for f in range(2) for i in range(8)]
    with _receiver(backend) as rx:
        rx.record(path)
        _send(rx, backend, packets)
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
            tx.sendto(b"short", rx.address)  # rejected by the spec, recorded all the same
        ids = [rx.get(timeout=HANG_S).frame_id for _ in range(2)]
        _wait_for_packets(rx, len(packets) + 1)
        # The short datagram may come in a batch of its own, after the two
        # frames' batch: a get() places it (no frame comes of it), or the
        # close would leave it in the ring (stats.in_ring).
        with pytest.raises(TimeoutError):
            rx.get(timeout=0.5)
    assert ids == [0, 1]
    assert rx.stats.in_ring == 0
    records = list(fastnet.read_capture(path))
    assert sum(batch.count for batch in records) == len(packets) + 1
    assert rx.stats.recorded == len(packets) + 1 and rx.stats.packets_rejected == 1


def test_a_frame_file_needs_frames(backend, tmp_path):
    with fastnet.Receiver(0, backend=backend, ring_size=1, batch_size=4) as rx:
        with pytest.raises(ValueError, match="frames="):
            rx.record(tmp_path / "run.h5")
    assert not (tmp_path / "run.h5").exists()


def test_one_recording_per_receiver(backend, tmp_path):
    need("h5")
    with _receiver(backend) as rx:
        rx.record(tmp_path / "run.h5")
        with pytest.raises(RuntimeError, match="already records"):
            rx.record(tmp_path / "raw.pcap")
        with pytest.raises(RuntimeError, match="already records"):
            rx.record(tmp_path / "again.h5")
