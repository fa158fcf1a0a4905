"""Fuzz target: frame placement (src/_frames.pxi, fastnet/engines/python/frames.py) on every engine.

The input chooses a frame spec (any value, bad ones too: FrameSpec must
refuse those with ValueError/TypeError, the only exceptions allowed), a
window, and batches of rows of any length up to the slot, cut or not, with
bytes from the input. Each engine's FrameAssembler must give exactly the
frames and counts of the one-packet-at-a-time model (tests/frame_model.py)
for the same rows, and evicting every frame in flight by age
(``evict_older_than``) between batches must equal the model's flush. Each
engine runs twice, the second time with ``add(batch, borrow=True)`` and each
batch's rows overwritten once its frames are read. A
read outside a row is what AddressSanitizer would report here
(tools/sanitize.sh): fields sit at any offset, rows are of any length, and
the C placement reads headers in place.

The engine's FramePlacer is also called directly with rows out of range
and lengths past the slot: a ValueError, before anything is read.
"""

from __future__ import annotations

import itertools
import os
import socket as stdsocket
import sys
import time

import numpy as np
from _fuzzlib import Choices, fuzz_main

import fastnet

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from frame_model import ModelAssembler  # noqa: E402  (tests/frame_model.py)

SLOTS = (1, 8, 17, 64, 200)
MASKS = (None, 0, 1, 0xFF, 0xFFF, (1 << 64) - 1)
SCALES = (0, 1, 2, 3, 1000, (1 << 64) - 1)


def field_from(choose: Choices):
    field = fastnet.Field(
        offset=choose.byte() % 48,
        size=choose.byte() % 10,
        byteorder=choose.pick(("big", "little", "middle")),
        mask=choose.pick(MASKS) if choose.flag() else choose.uint(8),
        shift=choose.byte() % 70,
    )
    if choose.byte() % 3 == 0:
        return field * choose.pick(SCALES) + field_from(choose)
    return field


def spec_from(choose: Choices):
    mode = choose.pick(("counter", "index", "offset"))
    kw = {"counter": field_from(choose)} if mode == "counter" else {"frame_id": field_from(choose)}
    if mode != "counter":
        kw[mode] = field_from(choose)
    return fastnet.FrameSpec(
        payload_offset=choose.byte() % 40,
        payload_size=choose.byte() % 17,
        packets_per_frame=choose.byte() % 9,
        packet_size=choose.uint(1) if choose.flag() else None,
        fill=choose.byte(),
        **kw,
    )


def batches_from(choose: Choices):
    out = []
    for _ in range(1 + choose.byte() % 4):
        slot = choose.pick(SLOTS)
        rows = []
        for n in range(choose.byte() % 17):
            length = choose.byte() % (slot + 1)
            rows.append((choose.take(length).ljust(length, b"\0"), choose.uint(2), choose.byte() % 8 == 0, n))
        out.append((slot, rows))
    return out


def as_batch(slot, rows):
    batch = fastnet.Batch(max(1, len(rows)), slot)
    for i, (data, stamp, cut, port) in enumerate(rows):
        batch.fill(i, data)
        batch.timestamps[i] = stamp
        batch.truncated[i] = cut
        batch.addresses[i] = list(stdsocket.inet_aton("127.0.0.1"))
        batch.ports[i] = port
    batch.count = len(rows)
    return batch


def frames_of(frames):
    return [
        (f.frame_id, f.data.tobytes(), tuple(bool(p) for p in f.present), f.complete, f.first_timestamp,
         f.last_timestamp, f.source)
        for f in frames
    ]  # fmt: skip


def check_placer_arguments(backend: str, spec, choose: Choices) -> None:
    placer = fastnet.engines.load(backend).FramePlacer(*spec._engine_args(), 2)
    data = np.zeros((4, 16), dtype=np.uint8)
    lengths = np.full(4, choose.byte() % 40 - 8, dtype=np.int64)
    flags, stamps = np.zeros(4, dtype=np.uint8), np.zeros(4, dtype=np.int64)
    start, stop = choose.byte() % 8 - 2, choose.byte() % 8 - 2
    try:
        placer.place(data, lengths, flags, stamps, start, stop)
    except ValueError:
        return
    if not (0 <= start <= stop <= 4 and (start == stop or 0 <= lengths[0] <= 16)):
        raise AssertionError(f"place({start}, {stop}) with lengths {lengths[0]} was not refused")


def test_one_input(data: bytes) -> None:
    choose = Choices(data)
    try:
        spec = spec_from(choose)
        window = choose.byte() % 6
        if window == 0:
            fastnet.FrameAssembler(spec, window)  # must raise ValueError
            raise AssertionError("frames_in_flight=0 was accepted")
    except (ValueError, TypeError):
        return
    batches = batches_from(choose)
    # After some batches every frame in flight is evicted by age (an hour
    # from now, all are older): the same as a flush, in the model. Chosen
    # from the rows, not from more input bytes, so the corpus keeps its meaning.
    aged = [len(rows) % 3 == 1 for _, rows in batches]
    model = ModelAssembler(spec, window)
    want = []
    for (_, rows), evict in zip(batches, aged, strict=True):
        want.append([f[:-1] + (("127.0.0.1", f[-1]),) for f in model.feed(rows)])
        if evict:
            want.append([f[:-1] + (("127.0.0.1", f[-1]),) for f in model.flush()])
    want.append([f[:-1] + (("127.0.0.1", f[-1]),) for f in model.flush()])
    later = time.monotonic() + 3600
    for backend, borrow in itertools.product(fastnet.available_backends(), (False, True)):
        asm = fastnet.FrameAssembler(spec, window, backend=backend)
        got = []
        for (slot, rows), evict in zip(batches, aged, strict=True):
            batch = as_batch(slot, rows)
            got.append(frames_of(asm.add(batch, borrow=borrow)))
            batch.data[:] = 0xA5  # reused, as a ring's rows: no frame in flight may still read them
            if evict:
                got.append(frames_of(asm.evict_older_than(0, now=later)))
        got.append(frames_of(asm.flush()))
        if got != want:
            raise AssertionError(f"{backend} (borrow={borrow}): frames differ from the model's")
        if asm.stats.as_dict() != model.counts:
            raise AssertionError(
                f"{backend} (borrow={borrow}): counts {asm.stats.as_dict()} != the model's {model.counts}"
            )
        check_placer_arguments(backend, spec, choose)


if __name__ == "__main__":
    fuzz_main(test_one_input)
