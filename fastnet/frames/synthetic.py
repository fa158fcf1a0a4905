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


_BODIES: dict = {}


def _bodies(size: int) -> np.ndarray:
    """The 251 payloads :func:`pattern` can make, by their first byte: ``uint8[251, size]``."""
    bodies = _BODIES.get(size)
    if bodies is None:
        bodies = ((np.arange(251)[:, None] + np.arange(size)[None, :]) % 251).astype(np.uint8)
        if len(_BODIES) < 16:
            _BODIES[size] = bodies
    return bodies


def _write_column(data: np.ndarray, field: Field, values: np.ndarray) -> None:
    """Write ``values`` (uint64) where ``field`` reads them, in every row of ``data``."""
    raw = (values & np.uint64(field.mask)) << np.uint64(field.shift)
    for k in range(field.size):
        shift = 8 * (field.size - 1 - k) if field.byteorder == "big" else 8 * k
        data[:, field.offset + k] = (raw >> np.uint64(shift)) & np.uint64(0xFF)


def _write_columns(data: np.ndarray, placement: Union[Field, LinearField], values: np.ndarray) -> None:
    if isinstance(placement, Field):
        _write_column(data, placement, values)
        return
    rest = values.copy()
    for field, scale in placement.terms:  # as _write does: the first terms take what they can
        part = rest // np.uint64(scale) if scale else np.zeros_like(rest)
        _write_column(data, field, part)
        rest -= part * np.uint64(scale)


def fill_batch(batch: Batch, spec: FrameSpec, packets: Union[Iterable[tuple], np.ndarray]) -> int:
    """Fill rows 0.. of ``batch`` with the datagrams of ``(frame_id, index)`` pairs; return how many.

    ``packets`` may also be an array of shape ``[n, 2]``.

    The rows are written with array operations; the first and the last are
    checked against :func:`encode_packet` (ValueError if the spec's fields
    cannot carry the ids).
    """
    pairs = packets if isinstance(packets, np.ndarray) else np.array(list(packets), dtype=np.uint64)
    pairs = pairs.astype(np.uint64, copy=False).reshape(-1, 2)
    n = len(pairs)
    if n > batch.capacity:
        raise ValueError(f"{n} packets do not fit a Batch of {batch.capacity} rows")
    length = spec.packet_size or spec.min_length
    if length > batch.slot_size:
        raise ValueError(f"datagrams of {length} bytes do not fit slot_size {batch.slot_size}")
    if n == 0:
        batch.count = 0
        return 0
    frames, index = pairs[:, 0], pairs[:, 1]
    if int(index.max()) >= spec.packets_per_frame:
        raise ValueError(f"an index is not below packets_per_frame ({spec.packets_per_frame})")
    rows = batch.data[:n, :length]
    rows[:, : spec.payload_offset] = 0
    rows[:, spec.payload_end :] = 0
    start = ((frames % np.uint64(251)) * np.uint64(131) + index * np.uint64(7)) % np.uint64(251)
    rows[:, spec.payload_offset : spec.payload_end] = _bodies(spec.payload_size)[start.astype(np.intp)]
    ppf = np.uint64(spec.packets_per_frame)
    if spec.counter is not None:
        _write_columns(rows, spec.counter, frames * ppf + index)
    else:
        assert spec.frame_id is not None
        _write_columns(rows, spec.frame_id, frames)
        if spec.index is not None:
            _write_columns(rows, spec.index, index)
        else:
            assert spec.offset is not None
            _write_columns(rows, spec.offset, index * np.uint64(spec.payload_size))
    for i in {0, n - 1}:
        if rows[i].tobytes() != encode_packet(spec, int(frames[i]), int(index[i])):
            batch.count = 0
            raise ValueError(f"the spec's fields cannot carry frame {int(frames[i])}, packet {int(index[i])}")
    batch.lengths[:n] = length
    batch.truncated[:n] = False
    batch.count = n
    return n
