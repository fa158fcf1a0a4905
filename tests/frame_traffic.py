"""Datagrams for frame tests: packets of planned frames, written field by field into headers."""

import socket as stdsocket

import fastnet


def write_field(buf: bytearray, field, value: int, junk: int = 0) -> None:
    """Write ``value`` where ``field`` reads it (cut to the bytes the field has; skipped past ``buf``)."""
    if field.end > len(buf):
        return
    raw = ((value & field.mask) << field.shift) | (junk & ((1 << field.shift) - 1))
    raw &= (1 << (8 * field.size)) - 1
    buf[field.offset : field.end] = raw.to_bytes(field.size, field.byteorder)


def write_value(buf: bytearray, placement, value: int, junk: int = 0) -> None:
    """Write ``value`` into a Field, or split it over a LinearField's terms (first term takes the most)."""
    if isinstance(placement, fastnet.Field):
        write_field(buf, placement, value, junk)
        return
    terms = placement.terms
    for field, scale in terms[:-1]:
        part = value // scale if scale else 0
        write_field(buf, field, part, junk)
        value -= part * scale if scale else 0
        value = max(value, 0)
    field, scale = terms[-1]
    write_field(buf, field, value // scale if scale else value, junk)


def datagram(spec, frame_id: int, index: int, length: int, marker: int, *, junk: int = 0, misalign=False):
    """``length`` bytes for packet ``index`` of ``frame_id``; the other bytes follow ``marker``."""
    buf = bytearray((marker * 7 + j) % 256 for j in range(length))
    if spec.placement == "counter":
        write_value(buf, spec.counter, frame_id * spec.packets_per_frame + index, junk)
    else:
        write_value(buf, spec.frame_id, frame_id, junk)
        if spec.placement == "index":
            write_value(buf, spec.index, index, junk)
        else:
            write_value(buf, spec.offset, index * spec.payload_size + (1 if misalign else 0), junk)
    return bytes(buf)


def make_batch(items, slot_size: int) -> fastnet.Batch:
    """A Batch of (datagram, timestamp, truncated, port) items, from 127.0.0.1."""
    batch = fastnet.Batch(max(1, len(items)), slot_size)
    for i, (data, stamp, truncated, port) in enumerate(items):
        batch.fill(i, data)
        batch.timestamps[i] = stamp
        batch.truncated[i] = truncated
        batch.addresses[i] = list(stdsocket.inet_aton("127.0.0.1"))
        batch.ports[i] = port
    batch.count = len(items)
    return batch


def frame_tuple(frame):
    return (
        frame.frame_id,
        frame.data.tobytes(),
        tuple(bool(p) for p in frame.present),
        frame.complete,
        frame.first_timestamp,
        frame.last_timestamp,
        frame.source,
    )
