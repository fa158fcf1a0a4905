"""Synthetic frames (what ``fastnet send --frames`` sends): every row as encode_packet makes it."""

import numpy as np
import pytest

import fastnet
from fastnet import Field, FrameSpec
from fastnet.frames.synthetic import encode_packet, fill_batch, frame_pattern, pattern

SPECS = [
    FrameSpec(8, 10, 4, counter=Field(0, 4, "little", mask=0xFFFFFF)),
    FrameSpec(8, 10, 4, frame_id=Field(0, 4) * 4 + Field(4, 2), index=Field(6, 1)),
    FrameSpec(8, 10, 4, frame_id=Field(0, 4, shift=2), offset=Field(4, 4, "little"), packet_size=20),
    FrameSpec(0, 7, 3, counter=Field(7, 8)),  # the header after the payload
]


@pytest.mark.parametrize("spec", SPECS)
def test_fill_batch_matches_encode_packet_and_assembles(backend, spec):
    batch = fastnet.Batch(64, 32)
    batch.data[:] = 0xA5  # left-over bytes must not show
    packets = [(f, i) for f in range(1000, 1012) for i in range(spec.packets_per_frame)]
    assert fill_batch(batch, spec, packets) == len(packets)
    for row, (frame_id, index) in enumerate(packets):
        assert batch.payload(row).tobytes() == encode_packet(spec, frame_id, index)
    frames = fastnet.FrameAssembler(spec, backend=backend).add(batch)
    assert [f.frame_id for f in frames] == list(range(1000, 1012))
    for f in frames:
        assert np.array_equal(f.data, frame_pattern(spec, f.frame_id))
        assert f.data[1].tobytes() == pattern(spec, f.frame_id, 1)


def test_ids_the_fields_cannot_carry_are_refused():
    spec = FrameSpec(8, 4, 1, counter=Field(0, 1))
    with pytest.raises(ValueError):
        fill_batch(fastnet.Batch(4, 64), spec, [(300, 0)])
    with pytest.raises(ValueError):
        encode_packet(spec, 300, 0)
    with pytest.raises(ValueError):
        fill_batch(fastnet.Batch(1, 64), spec, [(1, 0), (2, 0)])  # more rows than the Batch
    with pytest.raises(ValueError):
        fill_batch(fastnet.Batch(4, 64), spec, [(1, 1)])  # index past the frame
