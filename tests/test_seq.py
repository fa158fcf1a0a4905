"""SeqField and SeqTracker: exact counts for known patterns, and against a per-datagram model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnet
from fastnet.receive.seq import SeqTracker


class ReferenceTracker:
    """The semantics of fastnet/receive/seq.py, one datagram at a time, with plain sets."""

    def __init__(self, size, window):
        self.modulus = 1 << (8 * size)
        self.window = window
        self.started = False
        self.last_raw = 0
        self.last = 0
        self.top = -1
        self.received = set()
        self.missing = set()
        self.gaps = self.lost = self.reordered = self.duplicates = 0

    def feed(self, raw):
        if not self.started:
            self.started, self.last_raw = True, raw
        step = (raw - self.last_raw) % self.modulus
        if step >= self.modulus // 2:
            step -= self.modulus
        number = self.last + step
        self.last, self.last_raw = number, raw
        if number > self.top:
            if number > self.top + 1:
                self.gaps += 1
                self.lost += number - self.top - 1
                # Only the last `window` numbers can ever be looked up again.
                self.missing.update(range(max(self.top + 1, number - self.window), number))
            self.received.add(number)
            self.top = number
        elif number <= self.top - self.window:
            self.reordered += 1
        elif number in self.received:
            self.duplicates += 1
        elif number in self.missing:
            self.missing.discard(number)
            self.received.add(number)
            self.lost -= 1
            self.reordered += 1
        else:  # below the first number seen: never counted lost
            self.received.add(number)
            self.reordered += 1

    def counts(self):
        return (self.gaps, self.lost, self.reordered, self.duplicates)


def counts_of(tracker):
    return (tracker.gaps, tracker.lost, tracker.reordered, tracker.duplicates)


def batch_of(values, field, *, pad=3):
    """One payload per value: the counter at field.offset, other bytes 0xAB."""
    payloads = []
    for value in values:
        payload = bytearray(b"\xab" * (field.end + pad))
        payload[field.offset : field.end] = value.to_bytes(field.size, field.byteorder)
        payloads.append(bytes(payload))
    return fastnet.Batch.from_payloads(payloads, slot_size=field.end + pad)


def track(values, field, *, splits=(), window=fastnet.receive.seq.DEFAULT_WINDOW):
    tracker = SeqTracker(field, window=window)
    bounds = [0, *sorted(set(s for s in splits if 0 < s < len(values))), len(values)]
    for start, stop in zip(bounds, bounds[1:], strict=False):
        tracker.update(batch_of(values[start:stop], field))
    return tracker


FIELDS = [
    fastnet.SeqField(offset, size, order)
    for size in (2, 4, 8)
    for order in ("big", "little")
    for offset in (0, 5)
]


# -- SeqField ------------------------------------------------------------------
@pytest.mark.parametrize("field", FIELDS, ids=str)
def test_values_are_read_in_the_fields_byte_order(field):
    top = (1 << (8 * field.size)) - 1
    values = [0, 1, 258, top - 1, top]
    raw, readable = field.values(batch_of(values, field))
    assert raw.dtype == np.uint64
    assert raw.tolist() == values
    assert readable.all()


def test_defaults_are_a_64_bit_big_endian_counter_at_offset_0():
    field = fastnet.SeqField()
    assert (field.offset, field.size, field.byteorder, field.end) == (0, 8, "big", 8)


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(size=3), ValueError),
        (dict(size=16), ValueError),
        (dict(offset=-1), ValueError),
        (dict(byteorder="network"), ValueError),
        (dict(offset=1.0), TypeError),
        (dict(size="8"), TypeError),
        (dict(offset=True), TypeError),
    ],
)
def test_bad_fields_are_refused(kwargs, error):
    with pytest.raises(error):
        fastnet.SeqField(**kwargs)


def test_short_rows_are_counted_and_skipped():
    field = fastnet.SeqField(offset=2, size=4)
    batch = fastnet.Batch.from_payloads(
        [b"\0\0\0\0\0\0", b"\0\0\0\0\0", b"", b"\0\0\0\0\0\1", b"xx"], slot_size=8
    )
    tracker = SeqTracker(field)
    tracker.update(batch)
    assert tracker.short == 3
    assert counts_of(tracker) == (0, 0, 0, 0)
    tracker.update(batch_of([3, 4], field))  # 2 is missing
    assert counts_of(tracker) == (1, 1, 0, 0)
    assert tracker.short == 3


# -- known patterns -------------------------------------------------------------
PATTERNS = [
    # (values, (gaps, lost, reordered, duplicates))
    ([0, 1, 2, 3], (0, 0, 0, 0)),
    ([7], (0, 0, 0, 0)),
    ([0, 1, 3, 4], (1, 1, 0, 0)),
    ([0, 3, 4, 8, 9], (2, 5, 0, 0)),
    ([0, 1, 4, 2, 3, 5], (1, 0, 2, 0)),  # a gap of 2, both filled late
    ([0, 1, 4, 3, 5], (1, 1, 1, 0)),  # one of the two filled
    ([0, 1, 1, 2, 2, 2], (0, 0, 0, 3)),
    ([0, 2, 2, 1, 1], (1, 0, 1, 2)),  # duplicate, late fill, duplicate of it
    ([5, 3, 4, 6], (0, 0, 2, 0)),  # below the first: late, never lost
    ([5, 3, 3], (0, 0, 1, 1)),
    ([10, 11, 12, 20, 15, 12, 21], (1, 6, 1, 1)),
]


@pytest.mark.parametrize("field", FIELDS, ids=str)
@pytest.mark.parametrize("values,expected", PATTERNS)
def test_known_patterns(field, values, expected):
    assert counts_of(track(values, field)) == expected
    # The same datagrams split into batches differently count the same.
    for cut in range(1, len(values)):
        assert counts_of(track(values, field, splits=[cut])) == expected
    assert counts_of(track(values, field, splits=range(len(values)))) == expected


@pytest.mark.parametrize("size", [2, 4, 8])
@pytest.mark.parametrize("order", ["big", "little"])
def test_wrap_around_is_a_continuation(size, order):
    field = fastnet.SeqField(0, size, order)
    top = (1 << (8 * size)) - 1
    assert counts_of(track([top - 2, top - 1, top, 0, 1, 2], field)) == (0, 0, 0, 0)
    assert counts_of(track([top - 1, top, 1, 2], field, splits=[2])) == (1, 1, 0, 0)
    assert counts_of(track([top - 1, 1, top, 0, 2], field)) == (1, 0, 2, 0)
    assert counts_of(track([top, 0, top], field)) == (0, 0, 0, 1)
    # Many wraps in one run: 3 laps of a 16-bit counter, one datagram in ten lost.
    if size == 2:
        sent = range(3 * (top + 1))
        values = [i % (top + 1) for i in sent if i % 10 != 5]
        missing = sum(1 for i in sent if i % 10 == 5)
        tracker = track(values, field, splits=range(0, len(values), 1000))
        assert counts_of(tracker) == (missing, missing, 0, 0)


def test_too_old_arrivals_are_reordered_and_stay_lost():
    field = fastnet.SeqField()
    # Window of 4: when 1 arrives the highest is 10, so 1 is too old to tell.
    assert counts_of(track([0, 10, 1], field, window=4)) == (1, 9, 1, 0)
    assert counts_of(track([0, 10, 7, 7], field, window=4)) == (1, 8, 1, 1)
    assert counts_of(track([0, 10, 6, 6], field, window=4)) == (1, 9, 2, 0)


def test_huge_jump_counts_every_number_skipped():
    field = fastnet.SeqField()
    assert counts_of(track([0, 1 << 40, (1 << 40) + 1], field)) == (1, (1 << 40) - 1, 0, 0)


def test_tracker_refuses_bad_arguments():
    with pytest.raises(TypeError):
        SeqTracker("8 bytes at 0")
    with pytest.raises(ValueError):
        SeqTracker(fastnet.SeqField(), window=0)
    with pytest.raises(ValueError, match="slot_size"):
        SeqTracker(fastnet.SeqField(offset=4)).update(fastnet.Batch(2, 8))


# -- against the reference model ------------------------------------------------
@st.composite
def streams(draw):
    size = draw(st.sampled_from([2, 4, 8]))
    modulus = 1 << (8 * size)
    start = draw(st.one_of(st.integers(0, modulus - 1), st.integers(modulus - 40, modulus - 1)))
    steps = draw(st.lists(st.one_of(st.just(1), st.integers(-12, 20)), min_size=1, max_size=300))
    values, position = [], start
    for step in steps:
        position += step
        values.append(position % modulus)
    splits = draw(st.lists(st.integers(1, max(1, len(values) - 1)), max_size=12))
    window = draw(st.sampled_from([4, 16, 1 << 16]))
    order = draw(st.sampled_from(["big", "little"]))
    offset = draw(st.integers(0, 6))
    return fastnet.SeqField(offset, size, order), values, splits, window


@settings(max_examples=300, deadline=None)
@given(streams())
def test_matches_the_per_datagram_model(stream):
    field, values, splits, window = stream
    reference = ReferenceTracker(field.size, window)
    for value in values:
        reference.feed(value)
    assert counts_of(track(values, field, splits=splits, window=window)) == reference.counts()
