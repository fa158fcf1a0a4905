"""FrameAssembler on each engine: placement, order, eviction, counts, pooled frames, bad input."""

import socket

import numpy as np
import pytest
from frame_traffic import datagram, frame_tuple, make_batch

import fastnet
from fastnet import Field, FrameAssembler, FrameSpec

SPEC = FrameSpec(payload_offset=8, payload_size=4, packets_per_frame=4, counter=Field(0, 8))


def packets(spec, counters, length=None, stamp0=100):
    length = length or spec.min_length
    ppf = spec.packets_per_frame
    return [
        (datagram(spec, c // ppf, c % ppf, length, c), stamp0 + n, False, 6000 + n)
        for n, c in enumerate(counters)
    ]


def payloads(spec, frame_id):
    """The bytes of a whole frame of ``packets()``: each packet's payload, in order."""
    ppf, payload = spec.packets_per_frame, slice(spec.payload_offset, spec.payload_end)
    rows = [datagram(spec, frame_id, i, spec.min_length, ppf * frame_id + i) for i in range(ppf)]
    return b"".join(row[payload] for row in rows)


def add(asm, spec, counters, **kw):
    items = packets(spec, counters, **kw)
    return [frame_tuple(f) for f in asm.add(make_batch(items, max(len(d) for d, *_ in items)))]


def test_whole_frames_come_out_complete_and_in_order(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    frames = add(asm, SPEC, range(12))
    assert [f[0] for f in frames] == [0, 1, 2]
    assert all(f[3] for f in frames)
    first = frames[0]
    # row i holds packet i's payload: the datagram's bytes 8..11
    assert first[1] == payloads(SPEC, 0)
    assert first[4:] == (100, 103, ("127.0.0.1", 6000))
    assert asm.flush() == []
    assert asm.stats.as_dict() == dict(
        frames_complete=3,
        frames_incomplete=0,
        frames_missing=0,
        packets_placed=12,
        packets_late=0,
        packets_duplicate=0,
        packets_rejected=0,
    )


def test_reordered_packets_within_a_frame_and_across_frames(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    # frame 1 completes first but waits for frame 0, which is in flight
    frames = add(asm, SPEC, [0, 4, 5, 6, 7, 2, 1, 3])
    assert [(f[0], f[3]) for f in frames] == [(0, True), (1, True)]
    # frame 3 completes with no older frame in flight: out at once, and frame 2 is then late
    frames = add(asm, SPEC, [12, 13, 14, 15, 8, 9, 10, 11])
    assert [(f[0], f[3]) for f in frames] == [(3, True)]
    assert asm.stats.packets_late == 4


def test_a_packet_far_ahead_evicts_older_frames_incomplete(backend):
    asm = FrameAssembler(SPEC, frames_in_flight=2, backend=backend)
    frames = add(asm, SPEC, [0, 1, 4, 8])  # frames 0, 1 and 2 in flight: 2 is two ids past 0
    assert [(f[0], f[2], f[3]) for f in frames] == [(0, (True, True, False, False), False)]
    frames = add(asm, SPEC, [40])  # frame 10: 1 and 2 are evicted, 3..9 never seen
    assert [(f[0], f[3]) for f in frames] == [(1, False), (2, False)]
    flushed = [frame_tuple(f) for f in asm.flush()]
    assert [f[0] for f in flushed] == [10]
    stats = asm.stats
    assert (stats.frames_complete, stats.frames_incomplete, stats.frames_missing) == (0, 4, 7)


def test_late_duplicate_and_rejected_are_counted_once_each(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    add(asm, SPEC, [0, 1, 2, 3, 5, 5])  # frame 0 out; 5 twice
    add(asm, SPEC, [1])  # frame 0 was emitted: late
    items = packets(SPEC, [6])
    items.append((b"short", 0, False, 1))
    items.append((datagram(SPEC, 1, 3, SPEC.min_length, 0), 0, True, 1))  # cut by the slot
    asm.add(make_batch(items, SPEC.min_length))
    stats = asm.stats
    assert stats.packets_placed == 6
    assert stats.packets_duplicate == 1
    assert stats.packets_late == 1
    assert stats.packets_rejected == 2
    assert stats.packets == 10


def test_missing_packets_get_the_fill_value(backend):
    spec = FrameSpec(8, 4, 4, counter=Field(0, 8), fill=0xEE)
    asm = FrameAssembler(spec, backend=backend)
    add(asm, spec, [0, 2])
    (frame,) = asm.flush()
    assert frame.present.tolist() == [True, False, True, False]
    assert frame.data[1].tolist() == [0xEE] * 4 and frame.data[3].tolist() == [0xEE] * 4
    assert not frame.complete and frame.packets == 2


def test_frames_are_valid_until_the_next_call_and_copy_keeps_one(backend):
    asm = FrameAssembler(SPEC, frames_in_flight=1, backend=backend)
    items = packets(SPEC, range(4))
    (frame,) = asm.add(make_batch(items, SPEC.min_length))
    kept = frame.copy()
    before = frame.data.copy()
    for _ in range(3):  # the pool's slots are reused
        asm.add(make_batch(packets(SPEC, range(4 * (_ + 1), 4 * (_ + 2)), stamp0=0), SPEC.min_length))
    assert np.array_equal(kept.data, before)
    assert kept.frame_id == 0 and kept.complete


def test_one_batch_can_complete_more_frames_than_the_pool_holds(backend):
    asm = FrameAssembler(SPEC, frames_in_flight=2, backend=backend)
    frames = add(asm, SPEC, range(4 * 100))
    assert [f[0] for f in frames] == list(range(100))
    for f in frames:  # each frame kept its own bytes
        assert f[1] == payloads(SPEC, f[0])


def test_borrowing_hands_in_order_frames_out_as_views_on_the_rows(backend):
    asm = FrameAssembler(SPEC, frames_in_flight=4, backend=backend)
    # frame 0 in order; frame 1 complete but out of order; frame 2 begun, in flight at the end
    batch = make_batch(packets(SPEC, [0, 1, 2, 3, 5, 4, 6, 7, 8, 9]), SPEC.min_length)
    frames = asm.add(batch, borrow=True)
    assert [(f.frame_id, f.complete) for f in frames] == [(0, True), (1, True)]
    assert [f.data.tobytes() for f in frames] == [payloads(SPEC, 0), payloads(SPEC, 1)]
    # The one copy skipped: frame 0 is the rows' own bytes (the Cython engine
    # borrows; the other engine copies, which the contract allows).
    shared = [np.shares_memory(f.data, batch.data) for f in frames]
    assert shared == ([True, False] if backend == "cython" else [False, False])
    batch.data[:] = 0xA5  # the rows reused: frame 2, still in flight, must not depend on them
    (last,) = asm.add(make_batch(packets(SPEC, [10, 11]), SPEC.min_length), borrow=True)
    assert (last.frame_id, last.complete, last.data.tobytes()) == (2, True, payloads(SPEC, 2))
    assert asm.stats.packets_placed == 12 and asm.stats.frames_complete == 3


def test_without_borrowing_no_frame_shares_the_rows(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    batch = make_batch(packets(SPEC, range(8)), SPEC.min_length)
    frames = asm.add(batch)
    assert len(frames) == 2
    assert not any(np.shares_memory(f.data, batch.data) for f in frames)


def test_a_borrowed_frame_evicted_incomplete_keeps_its_packets_and_the_fill(backend):
    spec = FrameSpec(8, 4, 4, counter=Field(0, 8), fill=0x33)
    asm = FrameAssembler(spec, frames_in_flight=1, backend=backend)
    # frame 0 gets packets 0 and 1 in order, then frame 1 evicts it
    batch = make_batch(packets(spec, [0, 1, 4, 5, 6, 7]), spec.min_length)
    frames = asm.add(batch, borrow=True)
    assert [(f.frame_id, f.complete) for f in frames] == [(0, False), (1, True)]
    want = payloads(spec, 0)[:8] + bytes([0x33]) * 8
    assert frames[0].data.tobytes() == want
    assert not np.shares_memory(frames[0].data, batch.data)  # incomplete: its own buffer


@pytest.mark.parametrize("placement", ["index", "offset"])
def test_frame_id_with_index_or_offset(backend, placement):
    second = Field(4, 2, "little")
    spec = FrameSpec(6, 10, 3, frame_id=Field(0, 4), **{placement: second})
    asm = FrameAssembler(spec, backend=backend)
    items = [(datagram(spec, 7, i, spec.min_length, i), 0, False, 1) for i in (2, 0, 1)]
    (frame,) = asm.add(make_batch(items, spec.min_length))
    assert frame.frame_id == 7 and frame.complete
    assert frame.data[2].tobytes() == items[0][0][6:16]


def test_offset_not_a_multiple_of_the_payload_size_is_rejected(backend):
    spec = FrameSpec(6, 10, 3, frame_id=Field(0, 4), offset=Field(4, 2))
    asm = FrameAssembler(spec, backend=backend)
    items = [(datagram(spec, 7, 1, spec.min_length, 0, misalign=True), 0, False, 1)]
    items.append((datagram(spec, 7, 3, spec.min_length, 0), 0, False, 1))  # offset 30: past the frame
    asm.add(make_batch(items, spec.min_length))
    assert asm.stats.packets_rejected == 2


def test_vdif_like_linear_counter(backend):
    # frame number = seconds * 4 + frame-in-second; 2 packets per frame by an index field
    spec = FrameSpec(8, 4, 2, frame_id=Field(0, 4) * 4 + Field(4, 2), index=Field(6, 1))
    asm = FrameAssembler(spec, backend=backend)
    rows = []
    for seconds in (10, 11):
        for number in range(4):
            for index in range(2):
                head = seconds.to_bytes(4, "big") + number.to_bytes(2, "big") + bytes([index, 0])
                rows.append((head + bytes([seconds, number, index, 0]), 0, False, 1))
    frames = asm.add(make_batch(rows, 12))
    assert [f.frame_id for f in frames] == [40 + i for i in range(8)]
    assert frames[5].data[1].tolist() == [11, 1, 1, 0]


def test_fields_at_the_datagrams_edge(backend):
    spec = FrameSpec(0, 4, 1, counter=Field(4, 4))  # counter in bytes 4..7, after the payload
    asm = FrameAssembler(spec, backend=backend)
    rows = [(b"abcd" + (3).to_bytes(4, "big"), 0, False, 1), (b"abcd" + b"\0\0\0", 0, False, 1)]
    (frame,) = asm.add(make_batch(rows, 8))
    assert frame.frame_id == 3
    assert asm.stats.packets_rejected == 1
    # a batch whose rows are all shorter than the field
    assert asm.add(fastnet.Batch.from_payloads([b"abc"])) == []
    assert asm.stats.packets_rejected == 2


def test_packet_size_rejects_every_other_length(backend):
    spec = FrameSpec(8, 4, 1, counter=Field(0, 8), packet_size=16)
    asm = FrameAssembler(spec, backend=backend)
    rows = [(datagram(spec, 0, 0, n, 0), 0, False, 1) for n in (12, 15, 16, 17)]
    frames = asm.add(make_batch(rows, 17))
    assert [f.frame_id for f in frames] == [0]
    assert asm.stats.packets_rejected == 3


def test_the_last_frame_id_ends_the_stream(backend):
    spec = FrameSpec(8, 4, 1, frame_id=Field(0, 8), index=Field(0, 1, mask=0))
    asm = FrameAssembler(spec, backend=backend)
    top = 2**64 - 1
    rows = [
        ((top - 1).to_bytes(8, "big") + b"abcd", 0, False, 1),
        (top.to_bytes(8, "big") + b"efgh", 0, False, 1),
    ]
    rows.append(rows[0])
    rows.append((b"\0" * 8 + b"ijkl", 0, False, 1))
    frames = asm.add(make_batch(rows, 12))
    assert [f.frame_id for f in frames] == [top - 1, top]
    assert asm.stats.packets_late == 2


def test_an_empty_batch_gives_nothing(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    assert asm.add(fastnet.Batch(4, 64)) == []
    assert asm.flush() == []
    assert asm.stats.packets == 0


def test_timestamps_and_source_of_a_frame(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    (frame,) = asm.add(make_batch(packets(SPEC, [2, 0, 3, 1], stamp0=5), SPEC.min_length))
    assert (frame.first_timestamp, frame.last_timestamp) == (5, 8)
    assert frame.source == ("127.0.0.1", 6000)


def test_bad_arguments(backend):
    with pytest.raises(TypeError):
        FrameAssembler("spec", backend=backend)
    for bad, error in ((0, ValueError), (1 << 17, ValueError), (True, TypeError), (2.0, TypeError)):
        with pytest.raises(error):
            FrameAssembler(SPEC, bad, backend=backend)
    asm = FrameAssembler(SPEC, backend=backend)
    with pytest.raises(TypeError):
        asm.add(b"datagrams")
    with pytest.raises(ValueError):
        FrameAssembler(SPEC, backend="nonesuch")


def test_a_length_past_the_row_is_refused_before_anything_is_read(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    batch = make_batch(packets(SPEC, [0, 1]), SPEC.min_length)
    batch.lengths[1] = SPEC.min_length + 1
    with pytest.raises(ValueError):
        asm.add(batch)
    batch.lengths[1] = -1
    with pytest.raises(ValueError):
        asm.add(batch)
    assert asm.stats.packets == 0


def test_the_engine_placer_refuses_slots_it_did_not_hand_out(backend):
    placer = fastnet.engines.load(backend).FramePlacer(*SPEC._engine_args(), 2)
    placer.add_slots(np.zeros((3, 4, 4), np.uint8), np.zeros((3, 4), np.uint8))
    batch = make_batch(packets(SPEC, range(4)), SPEC.min_length)
    assert placer.place(batch.data, batch.lengths, batch._truncated_u8, batch.timestamps, 0, 4) == 4
    with pytest.raises(ValueError):
        placer.release(0)  # emitted, but not taken yet
    ((slot, frame_id, complete, *_),) = placer.take_emitted()
    assert (frame_id, complete) == (0, True)
    placer.release(slot)
    with pytest.raises(ValueError):
        placer.release(slot)  # twice
    for bad in (-1, 3):
        with pytest.raises(ValueError):
            placer.release(bad)
    with pytest.raises(ValueError):
        placer.add_slots(np.zeros((1, 4, 5), np.uint8), np.zeros((1, 4), np.uint8))
    with pytest.raises(ValueError):
        fastnet.engines.load(backend).FramePlacer(*SPEC._engine_args(), 0)


class _Made:
    """A class with the slots take_frames sets, and an __init__ it must not call."""

    __slots__ = ("frame_id", "data", "present", "complete", "first_timestamp", "last_timestamp", "_source")

    def __init__(self):
        raise AssertionError("take_frames called the class")


class _NoSlots:
    pass


def test_the_engine_makes_the_emitted_frames_in_one_call(backend):
    placer = fastnet.engines.load(backend).FramePlacer(*SPEC._engine_args(), 2)
    data, present = np.zeros((3, 4, 4), np.uint8), np.zeros((3, 4), np.uint8)
    placer.add_slots(data, present)
    batch = make_batch(packets(SPEC, range(8)), SPEC.min_length)
    batch.timestamps[:8] = np.arange(100, 108)
    assert placer.place(batch.data, batch.lengths, batch._truncated_u8, batch.timestamps, 0, 8) == 8
    with pytest.raises(ValueError):
        placer.take_frames(_Made, list(data[:2]), list(present), None, [])  # an entry short: not read past
    with pytest.raises(ValueError):
        placer.take_frames(_Made, list(data), list(present[:2]), None, [])
    with pytest.raises(TypeError, match="not a __slots__ attribute"):
        placer.take_frames(_NoSlots, list(data), list(present), None, [])
    placer.flush()
    handed_out: list = []
    made = placer.take_frames(_Made, list(data), list(present), "sources", handed_out)
    assert all(type(m) is _Made for m in made)
    assert [m.frame_id for m in made] == [0, 1]
    assert [m.complete for m in made] == [True, True]
    assert all(type(m.complete) is bool for m in made)
    assert [(m.first_timestamp, m.last_timestamp) for m in made] == [(100, 103), (104, 107)]
    assert [m._source for m in made] == [("sources", s) for s in handed_out]
    assert all(
        np.shares_memory(m.data, data[s]) and np.shares_memory(m.present, present[s])
        for m, s in zip(made, handed_out, strict=True)
    )
    assert placer.take_frames(_Made, list(data), list(present), None, []) == []  # taken once
    placer.release_all(handed_out)
    assert placer.free_slots == 3
    with pytest.raises(ValueError):
        placer.release_all(handed_out)  # given back already


def test_the_engine_keeps_each_frames_first_source(backend):
    placer = fastnet.engines.load(backend).FramePlacer(*SPEC._engine_args(), 2)
    placer.add_slots(np.zeros((3, 4, 4), np.uint8), np.zeros((3, 4), np.uint8))
    batch = fastnet.Batch(8, SPEC.min_length, family=socket.AF_INET6)
    for i, (data, *_) in enumerate(packets(SPEC, [1, 0, 2, 3, 5, 4, 6, 7])):
        batch.fill(i, data)
    batch.count = 8
    batch.addresses[:] = np.arange(8 * 16, dtype=np.uint8).reshape(8, 16)
    batch.ports[:] = np.arange(1000, 1008)
    batch.flowinfo[:] = np.arange(10, 18)
    batch.scope_ids[:] = np.arange(20, 28)
    rows = (batch.data, batch.lengths, batch._truncated_u8, batch.timestamps)
    with pytest.raises(ValueError, match="need ports"):
        placer.place(*rows, 0, 8, family=int(batch.family), addresses=batch.addresses)
    short = dict(ports=batch.ports, flowinfo=batch.flowinfo, scope_ids=batch.scope_ids)
    with pytest.raises(ValueError, match="out of range"):
        placer.place(*rows, 0, 8, family=int(batch.family), addresses=batch.addresses[:7], **short)
    assert placer.free_slots == 3  # refused before any row was placed
    sources = dict(short, family=int(batch.family), addresses=batch.addresses)
    assert placer.place(*rows, 0, 8, **sources) == 8
    ((first, *_), (second, *_)) = placer.take_emitted()
    # each frame's first packet is the row placed first in it: rows 0 and 4
    assert placer.source(first) == (int(socket.AF_INET6), bytes(range(0, 16)), 1000, 10, 20)
    assert placer.source(second) == (int(socket.AF_INET6), bytes(range(64, 80)), 1004, 14, 24)
    with pytest.raises(ValueError):
        placer.source(3)


def test_offline_over_a_capture_file(backend, tmp_path):
    # frames recorded to pcap, then assembled from the file: the same frames as live
    from fastnet.frames.synthetic import fill_batch, frame_pattern

    spec = FrameSpec(16, 100, 4, frame_id=Field(0, 8), index=Field(8, 1))
    batch = fastnet.Batch(64, 128)
    fill_batch(batch, spec, [(f, i) for f in range(10) for i in range(4)])
    batch.addresses[:] = [127, 0, 0, 1]
    batch.ports[:] = 4000
    path = str(tmp_path / "run.pcap")
    with fastnet.open_recorder(path, local_address=("127.0.0.1", 7788)) as recorder:
        recorder(batch)
    asm = FrameAssembler(spec, backend=backend)
    frames = []
    for part in fastnet.read_capture(path, batch_size=7):
        frames += [f.copy() for f in asm.add(part)]
    frames += asm.flush()
    assert [f.frame_id for f in frames] == list(range(10))
    assert all(np.array_equal(f.data, frame_pattern(spec, f.frame_id)) for f in frames)
    assert frames[0].source == ("127.0.0.1", 4000)


def test_an_ipv6_source(backend):
    import socket as stdsocket

    from fastnet.frames.synthetic import fill_batch

    spec = FrameSpec(8, 4, 2, counter=Field(0, 8))
    batch = fastnet.Batch(4, 16, family=stdsocket.AF_INET6)
    fill_batch(batch, spec, [(0, 0), (0, 1)])
    batch.addresses[:] = list(stdsocket.inet_pton(stdsocket.AF_INET6, "fe80::1"))
    batch.ports[:] = 5000
    batch.flowinfo[:] = 7
    batch.scope_ids[:] = 1
    asm = FrameAssembler(spec, backend=backend)
    (frame,) = asm.add(batch)
    kept = frame.copy()
    assert frame.source == ("fe80::1", 5000, 7, 1) == batch.address(0)
    asm.add(make_batch(packets(spec, [2, 3]), 16))  # the slot is reused; the copy keeps its source
    assert kept.source == ("fe80::1", 5000, 7, 1)


def test_frame_source_of_an_ipv6_batch(backend):
    asm = FrameAssembler(SPEC, backend=backend)
    batch = fastnet.Batch(8, SPEC.min_length, family=socket.AF_INET6)
    for i, (data, *_) in enumerate(packets(SPEC, range(8))):
        batch.fill(i, data)
    packed = socket.inet_pton(socket.AF_INET6, "fe80::1")
    batch.addresses[:] = np.frombuffer(packed, dtype=np.uint8)
    batch.ports[:] = np.arange(7000, 7008)
    batch.flowinfo[:] = 5
    batch.scope_ids[:] = np.arange(1, 9)
    frames = asm.add(batch)
    assert [f.source for f in frames] == [("fe80::1", 7000, 5, 1), ("fe80::1", 7004, 5, 5)]
    kept = frames[0].copy()
    asm.add(make_batch(packets(SPEC, range(8, 12)), SPEC.min_length))  # reuses the slots
    assert kept.source == ("fe80::1", 7000, 5, 1)
