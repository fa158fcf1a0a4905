"""Synthetic frames: datagrams with a FrameSpec's headers and a payload a test can check.

``fastnet send --frames spec.toml`` sends these; a receiver can check each
frame's rows against :func:`pattern`. The payload byte ``j`` of packet
``index`` of frame ``frame_id`` is ``(frame_id * 131 + index * 7 + j) % 251``
(251 is prime, so neighbouring frames and packets differ).
"""

from __future__ import annotations

from typing import Iterable, Union

import numpy as np

from ..core.batch import Batch
from .field import Field, LinearField
from .spec import FrameSpec

__all__ = ["pattern", "frame_pattern", "encode_packet", "fill_batch"]


def pattern(spec: FrameSpec, frame_id: int, index: int) -> bytes:
    """The payload of packet ``index`` of frame ``frame_id``."""
    start = (frame_id * 131 + index * 7) % 251
    return bytes((start + j) % 251 for j in range(spec.payload_size))


def frame_pattern(spec: FrameSpec, frame_id: int) -> np.ndarray:
    """The whole frame's data, ``uint8[packets_per_frame, payload_size]``, as :func:`pattern` makes it."""
    rows = (frame_id * 131 + np.arange(spec.packets_per_frame)[:, None] * 7) % 251
    return ((rows + np.arange(spec.payload_size)[None, :]) % 251).astype(np.uint8)


def _write_field(buf: bytearray, field: Field, value: int) -> None:
    raw = (value & field.mask) << field.shift
    buf[field.offset : field.end] = (raw & ((1 << (8 * field.size)) - 1)).to_bytes(
        field.size, field.byteorder
    )


def _write(buf: bytearray, placement: Union[Field, LinearField], value: int, name: str) -> None:
    if isinstance(placement, Field):
        _write_field(buf, placement, value)
    else:  # the first terms take what they can, the last the rest
        rest = value
        for field, scale in placement.terms:
            part = rest // scale if scale else 0
            _write_field(buf, field, part)
            rest -= part * scale
    if placement.read(buf) != value:
        raise ValueError(f"the spec's {name} field cannot carry the value {value}")


def encode_packet(spec: FrameSpec, frame_id: int, index: int, payload: bytes | None = None) -> bytes:
    """One datagram: packet ``index`` of frame ``frame_id`` (payload: :func:`pattern` unless given)."""
    if not 0 <= index < spec.packets_per_frame:
        raise ValueError(f"index must be between 0 and {spec.packets_per_frame - 1}, got {index}")
    buf = bytearray(spec.packet_size or spec.min_length)
    body = pattern(spec, frame_id, index) if payload is None else payload
    buf[spec.payload_offset : spec.payload_end] = body
    # headers after the payload, so a field inside the payload area wins
    if spec.counter is not None:
        _write(buf, spec.counter, frame_id * spec.packets_per_frame + index, "counter")
    else:
        assert spec.frame_id is not None
        _write(buf, spec.frame_id, frame_id, "frame_id")
        if spec.index is not None:
            _write(buf, spec.index, index, "index")
        else:
            assert spec.offset is not None
            _write(buf, spec.offset, index * spec.payload_size, "offset")
    return bytes(buf)


def fill_batch(batch: Batch, spec: FrameSpec, packets: Iterable[tuple]) -> int:
    """Fill rows 0.. of ``batch`` with the datagrams of ``(frame_id, index)`` pairs; return how many."""
    n = 0
    for frame_id, index in packets:
        batch.fill(n, encode_packet(spec, frame_id, index))
        n += 1
    batch.count = n
    return n
