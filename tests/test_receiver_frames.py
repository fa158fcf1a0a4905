"""Receiver(frames=spec): get(), iteration and async iteration give Frames, counted in rx.stats."""

import asyncio
import random
import time

import numpy as np
import pytest
from helpers import HANG_S

import fastnet
from fastnet import Field, FrameSpec
from fastnet.frames.synthetic import fill_batch, frame_pattern

SPEC = FrameSpec(16, 200, 8, frame_id=Field(0, 8), index=Field(8, 2, "little"), packet_size=216)


def _send(rx, backend, packets):
    batch = fastnet.Batch(len(packets), 256)
    fill_batch(batch, SPEC, packets)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
        assert tx.send_batch(batch, rx.address) == len(packets)


def _receiver(backend, **options):
    sizes = {"rcvbuf": 8 << 20, "batch_size": 32, "slot_size": 256} | options
    return fastnet.Receiver(0, backend=backend, frames=SPEC, **sizes)


def _take(rx, n, keep):
    """``keep(frame)`` of the next ``n`` frames, each called before the next get(), which invalidates it."""
    kept = []
    deadline = time.monotonic() + HANG_S
    while len(kept) < n:
        assert time.monotonic() < deadline, "the frames did not come"
        kept.append(keep(rx.get(timeout=1.0)))
    return kept


def test_get_gives_frames_in_order_with_their_payloads(backend):
    packets = [(f, i) for f in range(6) for i in range(8)]
    random.Random(3).shuffle(packets[8:24])  # frames 1 and 2 interleaved: inside the window
    with _receiver(backend, frames_in_flight=4) as rx:
        _send(rx, backend, packets)
        got = _take(rx, 6, lambda frame: (type(frame), frame.copy()))
        stats = rx.stats
    assert {kind for kind, _ in got} == {fastnet.Frame}
    got = [frame for _, frame in got]
    assert [f.frame_id for f in got] == list(range(6))
    for frame in got:
        assert frame.complete and frame.present.all()
        assert np.array_equal(frame.data, frame_pattern(SPEC, frame.frame_id))
    assert (stats.frames_complete, stats.frames_incomplete, stats.frames_missing) == (6, 0, 0)
    assert stats.packets_placed == 48 and stats.packets_rejected == stats.packets_late == 0


def test_frames_are_right_while_the_ring_reuses_their_rows(backend):
    # 24 rows in the ring for 480 datagrams, windows of up to 12 rows for
    # frames of 8: frames begin in one window and end in the next, or lie
    # in one (and may then be views on its rows), while the capture thread
    # writes the rows given back. Each frame is checked before the next get().
    packets = [(f, i) for f in range(60) for i in range(8)]

    def checked(frame):
        assert frame.complete
        assert np.array_equal(frame.data, frame_pattern(SPEC, frame.frame_id)), frame.frame_id
        return frame.frame_id

    with _receiver(backend, batch_size=12, ring_size=2, frames_in_flight=4) as rx:
        _send(rx, backend, packets)
        seen = _take(rx, 60, checked)
        stats = rx.stats
    assert seen == list(range(60))
    assert stats.packets_placed == 480 and stats.frames_complete == 60


def test_stopping_flushes_the_frames_in_flight_then_ends(backend):
    # frame 0 whole, frame 1 missing its packet 3, one datagram of the wrong length
    packets = [(0, i) for i in range(8)] + [(1, i) for i in range(8) if i != 3]
    with _receiver(backend) as rx:
        _send(rx, backend, packets)
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
            tx.sendto(b"short", rx.address)
        deadline = time.monotonic() + HANG_S
        while rx.stats.packets < len(packets) + 1:
            assert time.monotonic() < deadline, "the datagrams did not arrive"
            time.sleep(0.01)
        rx.stop()
        frames = [(f.frame_id, f.complete, f.present.tolist()) for f in rx]  # iteration ends by itself
        stats = rx.stats
    assert frames == [(0, True, [True] * 8), (1, False, [i != 3 for i in range(8)])]
    assert (stats.frames_complete, stats.frames_incomplete, stats.packets_rejected) == (1, 1, 1)
    assert stats.packets_placed == 15
    assert stats.packets == stats.packets_placed + stats.packets_rejected  # every datagram, once
    with pytest.raises(fastnet.ReceiverStopped):
        rx.get(timeout=0)


def test_async_iteration_gives_frames(backend):
    packets = [(f, i) for f in range(3) for i in range(8)]

    async def collect(rx):
        ids = []
        async for frame in rx:
            ids.append(frame.frame_id)
            if len(ids) == 3:
                break
        return ids

    with _receiver(backend) as rx:
        _send(rx, backend, packets)
        ids = asyncio.run(asyncio.wait_for(collect(rx), HANG_S))
    assert ids == [0, 1, 2]


def test_a_timeout_without_a_whole_frame_raises(backend):
    with _receiver(backend) as rx:
        _send(rx, backend, [(0, 0), (0, 1)])  # frame 0 is not complete
        with pytest.raises(TimeoutError):
            rx.get(timeout=0.3)
        assert rx.stats.packets_placed == 2


@pytest.mark.parametrize("frames,error", [("spec.toml", TypeError), (object(), TypeError)])
def test_frames_must_be_a_spec(backend, frames, error):
    with pytest.raises(error):
        fastnet.Receiver(0, backend=backend, frames=frames)


def test_no_frames_no_frame_counters(backend):
    with fastnet.Receiver(0, backend=backend, ring_size=1, batch_size=4) as rx:
        assert rx.stats.frames_complete is None and rx.stats.packets_placed is None


def test_frame_losses_are_diagnosed():
    lines = fastnet.ReceiverStats(packets_late=3, packets_rejected=1).diagnose()
    assert len(lines) == 2
    assert "frames_in_flight" in lines[0] and "frame spec" in lines[1]
