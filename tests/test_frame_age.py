"""max_frame_age: frames in flight too long are evicted in order, even when no newer packet comes."""

import math
import random
import time

import numpy as np
import pytest
from frame_traffic import datagram, frame_tuple, make_batch
from helpers import AVAILABLE, HANG_S

import fastnet
from fastnet import Field, FrameAssembler, FrameSpec
from fastnet.frames.synthetic import fill_batch, frame_pattern

SPEC = FrameSpec(16, 200, 8, frame_id=Field(0, 8), index=Field(8, 2, "little"), packet_size=216)
#: Long enough that a frame is never evicted before its own packets are placed on a loaded
#: machine, short enough to keep the tests quick; nothing asserts how long anything took.
AGE = 0.3


def _batch(packets):
    batch = fastnet.Batch(max(1, len(packets)), 256)
    fill_batch(batch, SPEC, packets)
    return batch


def _send(rx, backend, packets):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
        assert tx.send_batch(_batch(packets), rx.address) == len(packets)


def _receiver(backend, **options):
    return fastnet.Receiver(
        0, backend=backend, rcvbuf=8 << 20, batch_size=32, slot_size=256, frames=SPEC, **options
    )


def test_an_assembler_evicts_what_waited_too_long_in_order(backend):
    asm = FrameAssembler(SPEC, 8, backend=backend)
    # frame 0 and 2 partial, frame 1 whole (waiting for 0), frame 3 partial
    packets = [(0, 0), (0, 1)] + [(1, i) for i in range(8)] + [(2, 3), (3, 7)]
    assert asm.add(_batch(packets)) == []
    since = asm.in_flight_since()
    assert since is not None and since <= time.monotonic()
    assert asm.evict_older_than(3600) == []  # nothing is an hour old
    time.sleep(0.01)  # so the clock has moved past the placement
    frames = [(f.frame_id, f.complete, f.present.tolist()) for f in asm.evict_older_than(0)]
    assert [f[:2] for f in frames] == [(0, False), (1, True), (2, False), (3, False)]
    assert frames[0][2] == [True, True] + [False] * 6
    assert asm.in_flight_since() is None
    stats = asm.stats
    assert (stats.frames_complete, stats.frames_incomplete, stats.packets_placed) == (1, 3, 12)
    # the window has moved past the evicted frames: their packets are late now
    asm.add(_batch([(0, 5), (3, 0)]))
    assert asm.stats.packets_late == 2


def test_eviction_keeps_the_younger_frames_in_flight(backend):
    asm = FrameAssembler(SPEC, 8, backend=backend)
    asm.add(_batch([(0, 0)]))
    time.sleep(0.05)
    cut = time.monotonic()
    time.sleep(0.05)
    asm.add(_batch([(1, 0), (1, 1)]))
    out = asm.evict_older_than(time.monotonic() - cut)  # frame 0 began before the cut, frame 1 after
    assert [f.frame_id for f in out] == [0]
    assert [f.frame_id for f in asm.flush()] == [1]


@pytest.mark.parametrize("bad,error", [(-1, ValueError), (math.nan, ValueError), ("1", TypeError)])
def test_evict_older_than_checks_its_argument(backend, bad, error):
    with pytest.raises(error):
        FrameAssembler(SPEC, backend=backend).evict_older_than(bad)


def test_get_returns_a_stalled_senders_last_frames(backend):
    # frame 0 whole; frame 1 missing a packet; frame 2 whole, waiting for 1; frame 3 missing one.
    packets = [(0, i) for i in range(8)] + [(1, i) for i in range(7)]
    packets += [(2, i) for i in range(8)] + [(3, i) for i in range(1, 8)]
    with _receiver(backend, max_frame_age=AGE) as rx:
        assert rx.max_frame_age == AGE
        _send(rx, backend, packets)
        got = []
        deadline = time.monotonic() + HANG_S
        while len(got) < 4:  # no newer packet comes: only the age brings frames 1 to 3 out
            assert time.monotonic() < deadline, "the frames did not come"
            frame = rx.get(timeout=HANG_S)
            got.append((frame.frame_id, frame.complete, frame.packets))
            if frame.complete:
                assert np.array_equal(frame.data, frame_pattern(SPEC, frame.frame_id))
        with pytest.raises(TimeoutError):
            rx.get(timeout=0.05)  # nothing is left in flight
        _send(rx, backend, [(1, 7)])  # the packet frame 1 missed, after it went: late
        deadline = time.monotonic() + HANG_S
        while rx.stats.packets_late < 1:
            assert time.monotonic() < deadline, "the late packet was not counted"
            with pytest.raises(TimeoutError):
                rx.get(timeout=0.05)
        stats = rx.stats
    assert got == [(0, True, 8), (1, False, 7), (2, True, 8), (3, False, 7)]
    assert (stats.frames_complete, stats.frames_incomplete, stats.frames_missing) == (2, 2, 0)
    assert stats.packets_placed == len(packets) and stats.packets_late == 1
    assert stats.packets == stats.packets_placed + stats.packets_late


def test_without_an_age_a_stalled_frame_waits(backend):
    with _receiver(backend) as rx:
        _send(rx, backend, [(0, 0), (0, 1)])
        with pytest.raises(TimeoutError):
            rx.get(timeout=2 * AGE)
        assert rx.stats.frames_incomplete == 0
        rx.stop()
        assert [(f.frame_id, f.complete) for f in rx] == [(0, False)]


def test_async_iteration_evicts_aged_frames_too(backend):
    import asyncio

    async def first(rx):
        async for frame in rx:
            return frame.frame_id, frame.complete

    with _receiver(backend, max_frame_age=AGE) as rx:
        _send(rx, backend, [(5, 0), (5, 1)])
        assert asyncio.run(asyncio.wait_for(first(rx), HANG_S)) == (5, False)


@pytest.mark.parametrize(
    "age,error",
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("1", TypeError),
        (True, TypeError),
        ([1], TypeError),
    ],
)
def test_max_frame_age_is_checked(backend, age, error):
    with pytest.raises(error, match="max_frame_age"):
        _receiver(backend, max_frame_age=age)


def test_max_frame_age_needs_frames(backend):
    with pytest.raises(ValueError, match="frames="):
        fastnet.Receiver(0, backend=backend, max_frame_age=1.0)


@pytest.mark.skipif(len(AVAILABLE) < 2, reason="needs both engines")
@pytest.mark.parametrize("seed", range(6))
def test_both_engines_evict_the_same_frames(seed):
    """Random streams in phases; each eviction cuts between two phases, so both engines see one order."""
    rng = random.Random(seed)
    spec = FrameSpec(16, 4, 4, frame_id=Field(0, 8), index=Field(8, 1), fill=0xAA)
    window = rng.choice([2, 4, 8])
    assemblers = [FrameAssembler(spec, window, backend=name) for name in AVAILABLE]
    got: list = [[] for _ in assemblers]
    base = 0
    marks = []
    for phase in range(6):
        base += rng.randrange(0, 3)
        packets = [
            (base + rng.randrange(0, window + 2), rng.randrange(4)) for _ in range(rng.randrange(1, 20))
        ]
        items = [(datagram(spec, f, i, spec.min_length, k), 0, False, 1) for k, (f, i) in enumerate(packets)]
        for asm, out in zip(assemblers, got, strict=True):
            out += [frame_tuple(f) for f in asm.add(make_batch(items, spec.min_length))]
        time.sleep(0.002)
        marks.append(time.monotonic())
        time.sleep(0.002)
        if phase and rng.random() < 0.7:
            cut = rng.choice(marks)  # frames begun before this mark go, with the older ones
            for asm, out in zip(assemblers, got, strict=True):
                out += [frame_tuple(f) for f in asm.evict_older_than(0, now=cut)]
    for asm, out in zip(assemblers, got, strict=True):
        out += [frame_tuple(f) for f in asm.flush()]
    assert all(out == got[0] for out in got[1:])
    assert all(asm.stats == assemblers[0].stats for asm in assemblers[1:])
    ids = [frame[0] for frame in got[0]]
    assert ids == sorted(set(ids))  # increasing, each once
