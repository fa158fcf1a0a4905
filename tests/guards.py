"""Guard bytes around a Batch's arrays: writes out of bounds become visible.

An engine that writes past a row, before its first element or after its last
one, corrupts memory nobody looks at; a test that only checks the sizes of
the arrays afterwards cannot see it. ``guard(batch)`` moves each of the
batch's arrays (data, lengths, addresses, ports, flowinfo, scope_ids,
timestamps, truncated) into the middle of a larger allocation whose two ends
are filled with GUARD bytes, and returns a Guards whose ``check()`` fails if
any of those bytes changed. The batch keeps its shapes, dtypes and contents:
the engines get views of the middle, exactly as they would get its own arrays.

Used by the hostile tests (tests/test_hostile_*.py) and the framing fuzz
target (tests/fuzz/fuzz_frames.py).
"""

import numpy as np

#: The fill of the guard regions (no test payload next to a guard uses it).
GUARD = 0xA5
#: The Batch slots holding its arrays, as the engines read them.
ARRAY_SLOTS = (
    "_data",
    "_lengths",
    "_addresses",
    "_ports",
    "_flowinfo",
    "_scope_ids",
    "_timestamps",
    "_truncated_u8",
)


def _pad_for(array):
    """Guard bytes on each side: two rows (or elements) and at least 256, 64-aligned."""
    row = array.strides[0] if array.ndim else array.itemsize
    return -(-max(256, 2 * row) // 64) * 64


class Guards:
    """The guard regions around one Batch's arrays (see ``guard``)."""

    def __init__(self):
        self._regions = []

    def add(self, batch):
        for slot in ARRAY_SLOTS:
            array = getattr(batch, slot)
            pad, size = _pad_for(array), array.nbytes
            raw = np.full(pad + size + pad, GUARD, dtype=np.uint8)
            middle = raw[pad : pad + size].view(array.dtype).reshape(array.shape)
            middle[...] = array
            setattr(batch, slot, middle)
            self._regions.append((slot[1:], raw, pad, size))
        # The bool view of the flags, and what was made from the old arrays.
        batch._truncated = batch._truncated_u8.view(np.bool_)
        batch._row_cache = None
        batch._scratch = None
        return batch

    def check(self):
        """Fail if any guard byte changed, naming the array and the first offset."""
        for name, raw, pad, size in self._regions:
            for side, region, origin in (("before", raw[:pad], -pad), ("after", raw[pad + size :], size)):
                changed = np.flatnonzero(region != GUARD)
                assert changed.size == 0, (
                    f"{changed.size} guard byte(s) {side} batch.{name} were written, the "
                    f"first at byte {origin + int(changed[0])} from its start"
                )

    def clear(self):
        """Forget the regions (for a test that runs many examples)."""
        self._regions.clear()

    def __len__(self):
        return len(self._regions)


def guard(batch, guards=None):
    """Put ``batch``'s arrays between guard bytes; return the Guards (``guards`` if given)."""
    guards = Guards() if guards is None else guards
    guards.add(batch)
    return guards


def guarded_batch(capacity, slot_size, **kwargs):
    """A new ``fastnet.Batch(capacity, slot_size, **kwargs)`` and its Guards."""
    import fastnet

    batch = fastnet.Batch(capacity, slot_size, **kwargs)
    return batch, guard(batch)
