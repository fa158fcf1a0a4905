"""Both engines against the one-packet-at-a-time model (tests/frame_model.py), byte for byte.

Hypothesis draws a spec (any of the three placements; fields of 1 to 8 bytes
in either byte order, with masks, shifts and linear sums; a fixed packet size
or none) and a stream of datagrams: packets of nearby frames in any order,
drops, duplicates, late and far-ahead frames, gaps of whole frames, short,
long, cut and misaligned datagrams, random bytes, ids near 2**64. The
stream is cut into batches of random sizes; every batch's frames, the flush
and the counts must equal the model's. With ``borrow=True`` too: there each
batch's rows are overwritten as soon as its frames are read, as a ring
reuses them, so a frame still in flight that kept a reference to them would
come out wrong.
"""

import pytest
from frame_model import ModelAssembler
from frame_traffic import datagram, frame_tuple, make_batch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnet
from fastnet import Field, FrameSpec


@st.composite
def fields(draw, max_offset=12):
    size = draw(st.integers(1, 8))
    mask = draw(
        st.one_of(st.none(), st.integers(1, 20).map(lambda b: (1 << b) - 1), st.integers(0, 2**64 - 1))
    )
    return Field(
        offset=draw(st.integers(0, max_offset)),
        size=size,
        byteorder=draw(st.sampled_from(["big", "little"])),
        mask=mask,
        shift=draw(st.integers(0, min(5, 8 * size - 1))),
    )


@st.composite
def placements(draw, ppf):
    field = draw(fields())
    if draw(st.booleans()):
        return field
    scale = draw(st.sampled_from([1, 2, 3, ppf, 1000, 2**63]))
    return field * scale + draw(fields())


@st.composite
def specs(draw):
    ppf = draw(st.integers(1, 6))
    payload_size = draw(st.integers(1, 8))
    payload_offset = draw(st.integers(0, 16))
    mode = draw(st.sampled_from(["counter", "index", "offset"]))
    kw = {}
    if mode == "counter":
        kw["counter"] = draw(placements(ppf))
    else:
        kw["frame_id"] = draw(placements(ppf))
        kw[mode] = draw(fields())
    spec = FrameSpec(payload_offset, payload_size, ppf, fill=draw(st.integers(0, 255)), **kw)
    if draw(st.booleans()):
        spec = FrameSpec(
            payload_offset,
            payload_size,
            ppf,
            fill=spec.fill,
            packet_size=spec.min_length + draw(st.integers(0, 3)),
            **kw,
        )
    return spec


@st.composite
def streams(draw, spec):
    """(datagram, timestamp, truncated, port) items."""
    ppf = spec.packets_per_frame
    start = draw(st.sampled_from([0, 5, 2**32 - 3, 2**64 // ppf - 4]))
    items = []
    for n in range(draw(st.integers(0, 120))):
        kind = draw(st.integers(0, 19))
        length = spec.packet_size or spec.min_length + draw(st.sampled_from([0, 0, 0, 1, 5]))
        frame = start + draw(st.integers(0, 12))
        index = draw(st.integers(0, ppf - 1))
        if kind == 0:  # far ahead: a gap of whole frames
            frame += draw(st.integers(10, 40))
        elif kind == 1:  # an index past the frame's end
            index = ppf + draw(st.integers(0, 3))
        elif kind == 2:  # short
            length = draw(st.integers(0, max(0, spec.min_length - 1)))
        elif kind == 3:  # one byte long
            length += 1
        data = datagram(spec, frame, index, length, n, junk=draw(st.integers(0, 255)), misalign=(kind == 4))
        if kind == 5:  # random bytes
            data = draw(st.binary(min_size=0, max_size=spec.min_length + 4))
        truncated = kind == 6
        stamp = 0 if kind == 7 else 1000 + n
        items.append((data, stamp, truncated, 5000 + n))
        if kind == 8 and items:  # a duplicate of an earlier datagram
            items.append(items[draw(st.integers(0, len(items) - 1))])
    if draw(st.booleans()):  # reorder some of it
        items = draw(st.permutations(items))
    return items


@st.composite
def cases(draw):
    spec = draw(specs())
    items = draw(streams(spec))
    window = draw(st.integers(1, 5))
    cuts, rest = [], len(items)
    while rest > 0:
        size = draw(st.integers(1, max(1, min(rest, 40))))
        cuts.append(size)
        rest -= size
    return spec, window, items, cuts


def run_model(spec, window, items, cuts):
    model = ModelAssembler(spec, window)
    calls, at = [], 0
    for size in cuts:
        calls.append(model.feed(items[at : at + size]))
        at += size
    calls.append(model.flush())
    return calls, model.counts


def run_engine(backend, spec, window, items, cuts, borrow=False):
    asm = fastnet.FrameAssembler(spec, window, backend=backend)
    slot = max([len(d) for d, *_ in items] + [1])
    calls, at = [], 0
    for size in cuts:
        batch = make_batch(items[at : at + size], slot)
        calls.append([frame_tuple(f) for f in asm.add(batch, borrow=borrow)])
        if borrow:
            batch.data[:] = 0xA5  # the rows reused: only the frames just read may have used them
        at += size
    calls.append([frame_tuple(f) for f in asm.flush()])
    return calls, asm.stats


def _addressed(calls):
    # the model keeps a port; the engines give Batch.address
    return [[f[:-1] + (("127.0.0.1", f[-1]),) for f in call] for call in calls]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@pytest.mark.parametrize("borrow", [False, True], ids=["copy", "borrow"])
@given(case=cases())
def test_engines_match_the_model(backend, borrow, case):
    spec, window, items, cuts = case
    want_calls, want_counts = run_model(spec, window, items, cuts)
    got_calls, stats = run_engine(backend, spec, window, items, cuts, borrow)
    assert got_calls == _addressed(want_calls)
    assert stats.as_dict() == want_counts
    assert stats.packets == len(items)


@st.composite
def orderly_cases(draw):
    """Whole frames in order (their packets in order, or not), with a few drops, duplicates and swaps:
    mostly complete frames, long batches."""
    ppf = draw(st.integers(1, 16))
    spec = FrameSpec(4, draw(st.integers(1, 64)), ppf, counter=Field(0, 4, "little"))
    packets = []
    counters = list(range(draw(st.integers(0, 40)) * ppf))
    if draw(st.booleans()):  # each frame's packets in an order of its own
        for start in range(0, len(counters), ppf):
            counters[start : start + ppf] = draw(st.permutations(counters[start : start + ppf]))
    for counter in counters:
        roll = draw(st.integers(0, 99))
        if roll < 3:
            continue  # dropped
        packets.append(counter)
        if roll < 6:
            packets.append(counter)  # duplicated
    for _ in range(draw(st.integers(0, 5))):  # swaps, near or far
        if len(packets) > 1:
            i = draw(st.integers(0, len(packets) - 1))
            j = min(len(packets) - 1, i + draw(st.integers(1, 3 * ppf)))
            packets[i], packets[j] = packets[j], packets[i]
    items = [
        (datagram(spec, c // ppf, c % ppf, spec.min_length, n), n, False, n) for n, c in enumerate(packets)
    ]
    cuts, rest = [], len(items)
    while rest > 0:
        size = draw(st.integers(1, max(1, min(rest, 300))))
        cuts.append(size)
        rest -= size
    return spec, draw(st.integers(1, 8)), items, cuts


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("borrow", [False, True], ids=["copy", "borrow"])
@given(case=orderly_cases())
def test_engines_match_the_model_on_orderly_streams(backend, borrow, case):
    spec, window, items, cuts = case
    want_calls, want_counts = run_model(spec, window, items, cuts)
    got_calls, stats = run_engine(backend, spec, window, items, cuts, borrow)
    assert got_calls == _addressed(want_calls)
    assert stats.as_dict() == want_counts
