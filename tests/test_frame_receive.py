"""Frames over loopback: a Receiver's batches through a FrameAssembler into HDF5 and zarr, read back.

Synthetic frames (fastnet.frames.synthetic, what ``fastnet send --frames``
sends) in a shuffled order, with some packets sent twice; every datagram
is accounted for, and every row read back is the pattern that was sent.
"""

import random
import time

import numpy as np
import pytest
from helpers import HANG_S

import fastnet
from fastnet import Field, FrameAssembler, FrameSpec, FrameWriter
from fastnet.frames.synthetic import fill_batch, frame_pattern

SPEC = FrameSpec(16, 200, 8, frame_id=Field(0, 8), index=Field(8, 2, "little"), packet_size=216)


def send_and_assemble(backend, packets, writer_path=None):
    """Send the packets to a Receiver on loopback; return (frames read, assembler, receiver stats)."""
    frames = []
    asm = FrameAssembler(SPEC, frames_in_flight=4, backend=backend)
    writer = None if writer_path is None else FrameWriter(writer_path, SPEC, stats_of=asm, background=True)
    with (
        fastnet.Receiver(
            ("127.0.0.1", 0), backend=backend, rcvbuf=8 << 20, batch_size=64, slot_size=256
        ) as rx,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx,
    ):
        rx.start()
        batch = fastnet.Batch(len(packets), 256)
        fill_batch(batch, SPEC, packets)
        assert tx.send_batch(batch, rx.address) == len(packets)
        deadline = time.monotonic() + HANG_S
        while asm.stats.packets + rx.stats.kernel_drops < len(packets):
            assert time.monotonic() < deadline, "datagrams neither arrived nor were counted"
            try:
                got = asm.add(rx.get(timeout=1.0))
            except TimeoutError:
                continue
            frames += [f.copy() for f in got]
            if writer is not None:
                writer.write(got)
        rest = asm.flush()
        frames += [f.copy() for f in rest]
        if writer is not None:
            writer.write(rest)
            writer.close()
        stats = rx.stats
    return frames, asm, stats


def packet_order(frames, seed=7):
    packets = [(f, i) for f in range(frames) for i in range(SPEC.packets_per_frame)]
    rng = random.Random(seed)
    # shuffle within runs of two frames (inside the window); repeat three of frame 0 at the end
    for start in range(0, len(packets), 16):
        run = packets[start : start + 16]
        rng.shuffle(run)
        packets[start : start + 16] = run
    return packets + packets[5:8]


def check_frames(frames, asm, rx_stats, sent):
    stats = asm.stats
    assert stats.packets == rx_stats.packets  # every datagram offered is counted once
    assert rx_stats.packets + rx_stats.kernel_drops == sent
    assert [f.frame_id for f in frames] == sorted({f.frame_id for f in frames})
    for f in frames:
        want = frame_pattern(SPEC, f.frame_id)
        assert np.array_equal(f.data[f.present], want[f.present])
    if rx_stats.kernel_drops == 0:
        assert [f.frame_id for f in frames] == list(range(20))
        assert all(f.complete for f in frames)
        assert (
            stats.packets_late == 3 and stats.packets_placed == 160
        )  # the repeats came after frame 0 was out


def test_frames_over_loopback(backend):
    packets = packet_order(20)
    frames, asm, rx_stats = send_and_assemble(backend, packets)
    check_frames(frames, asm, rx_stats, len(packets))
    assert all(f.source[0] == "127.0.0.1" for f in frames)
    assert all(f.first_timestamp == 0 for f in frames)  # the Receiver was made without timestamps


@pytest.mark.parametrize("fmt", ["h5", "zarr"])
def test_frames_over_loopback_recorded_and_read_back(backend, tmp_path, fmt):
    pytest.importorskip("h5py" if fmt == "h5" else "zarr")
    path = tmp_path / f"run.{fmt}"
    packets = packet_order(20, seed=11)
    frames, asm, rx_stats = send_and_assemble(backend, packets, path)
    check_frames(frames, asm, rx_stats, len(packets))
    if fmt == "h5":
        import h5py

        with h5py.File(path, "r") as f:
            data, present, ids = f["frames/data"][()], f["frames/present"][()], f["frames/frame_id"][()]
    else:
        import zarr

        root = zarr.open_group(str(path), mode="r")
        data, present, ids = root["frames/data"][:], root["frames/present"][:], root["frames/frame_id"][:]
    assert ids.tolist() == [f.frame_id for f in frames]
    assert np.array_equal(data, np.stack([f.data for f in frames]))
    assert np.array_equal(present, np.stack([f.present for f in frames]))
