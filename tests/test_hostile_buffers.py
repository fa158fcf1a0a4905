"""Odd buffers and arrays handed to fastnet: a defined result or a clear exception.

Users hand fastnet bytes-like objects (Batch.fill, Batch.from_payloads) and
get arrays back that they can write into, reshape or re-type in place.
Whatever they do, fastnet copies exactly the bytes the buffer protocol
describes, or refuses with TypeError/ValueError/BufferError; and no engine
ever writes or reads outside a Batch's memory: the batches here have guard
bytes around their arrays (tests/guards.py), checked untouched afterwards,
and what was sent from them may hold no guard byte.
"""

import array
import socket as stdsocket
import warnings

import numpy as np
import pytest
from guards import ARRAY_SLOTS, GUARD, guarded_batch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastnet

REFUSED = (TypeError, ValueError, BufferError)
HOSTILE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# numpy arrays of many dtypes, shapes and layouts: C order, Fortran order,
# strided (every other element), reversed, zero-size, 0-d.
_DTYPES = st.sampled_from(["u1", "i1", "<u2", ">i4", "<f8", "c16", "?", "S3", "U2", "M8[ns]"])


@st.composite
def odd_arrays(draw):
    base = draw(hnp.arrays(draw(_DTYPES), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
    layout = draw(st.sampled_from(["c", "fortran", "strided", "reversed", "transposed"]))
    if layout == "fortran":
        return np.asfortranarray(base)
    if layout == "strided" and base.ndim:
        return base[::2]
    if layout == "reversed" and base.ndim:
        return base[::-1]
    if layout == "transposed":
        return base.T
    return base


def _flat_bytes(obj):
    """The bytes the buffer protocol gives for ``obj`` in C order, or None if refused."""
    try:
        view = memoryview(obj)
    except (TypeError, ValueError):  # no buffer; numpy exports no datetime buffers
        return None
    if not view.c_contiguous:
        return None
    return view.tobytes()


odd_objects = st.one_of(
    odd_arrays(),
    st.binary(max_size=40).map(lambda b: memoryview(b)[::2]),  # non-contiguous
    st.binary(max_size=40).map(lambda b: memoryview(b)[::-1]),
    st.binary(max_size=40).map(bytearray),
    st.binary(min_size=8, max_size=40).map(lambda b: memoryview(b[:8]).cast("B", (2, 4))),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6).map(lambda v: array.array("i", v)),
    st.text(max_size=8),
    st.integers(),
    st.none(),
    st.floats(),
    st.lists(st.integers(0, 255)),
    st.just(np.array([1, 2], dtype=object)),
)


@HOSTILE
@given(obj=odd_objects, row=st.integers(-2, 5))
def test_fill_copies_exactly_the_buffer_or_refuses(obj, row):
    batch, guards = guarded_batch(4, 32)
    batch.data[:] = 0xEE
    expected = _flat_bytes(obj)
    try:
        batch.fill(row, obj)
    except IndexError:
        assert not 0 <= row < 4
        guards.check()
        return
    except REFUSED:
        guards.check()
        return  # no buffer, not C-contiguous, a format memoryview cannot cast, or too long
    guards.check()
    assert expected is not None, f"accepted {obj!r}, which has no C-contiguous buffer"
    assert len(expected) <= 32
    assert batch.lengths[row] == len(expected)
    assert bytes(batch.payload(row)) == expected
    assert (batch.data[row, len(expected) :] == 0xEE).all()  # nothing past the payload
    assert batch.count == row + 1 and not batch.truncated[row]


@HOSTILE
@given(
    items=st.lists(odd_objects, min_size=0, max_size=4),
    slot_size=st.one_of(st.none(), st.integers(-1, 64), st.floats(), st.text(max_size=2)),
    family=st.sampled_from([stdsocket.AF_INET, stdsocket.AF_INET6, stdsocket.AF_UNIX, 0, "AF_INET", None]),
)
def test_from_payloads_builds_exactly_the_payloads_or_refuses(items, slot_size, family):
    try:
        batch = fastnet.Batch.from_payloads(items, slot_size, family=family)
    except REFUSED:
        return
    expected = [_flat_bytes(item) for item in items]
    assert None not in expected
    assert batch.count == len(items) and batch.family == family
    assert [bytes(batch.payload(i)) for i in range(batch.count)] == expected


@HOSTILE
@given(
    payloads=st.one_of(
        st.integers(),
        st.none(),
        st.text(max_size=3),
        st.binary(max_size=3),
        st.just(iter([b"a", 5])),
        st.just({b"a": 1}),
    )
)
def test_from_payloads_needs_an_iterable_of_buffers(payloads):
    try:
        batch = fastnet.Batch.from_payloads(payloads)
    except REFUSED:
        return
    # Only an iterable of bytes-like items can get here (a dict iterates its keys).
    assert batch.count >= 1


# -- a Batch's own arrays, changed in place --------------------------------------


def _reshape(array_):
    array_.shape = (1, array_.size) if array_.ndim == 2 else (array_.size // 2, 2)


def _reshape_rows(array_):
    if array_.ndim == 2:
        array_.shape = (array_.shape[0] * 2, array_.shape[1] // 2)


def _retype(array_):
    array_.dtype = np.uint16 if array_.dtype.itemsize == 1 else np.uint8


def _resize(array_):
    array_.resize((1, 1) if array_.ndim == 2 else (1,), refcheck=False)


def _restride(array_):
    array_.strides = (0,) * array_.ndim  # every element aliases the first: still in bounds


CHANGES = {
    "reshape": _reshape,
    "reshape-rows": _reshape_rows,
    "retype": _retype,
    "resize": _resize,
    "restride": _restride,
}
ARRAYS = ("data", "lengths", "addresses", "ports", "flowinfo", "scope_ids", "timestamps", "truncated")


def _changed_batch(name, change):
    """A 4 x 8 Batch with rows filled, its arrays between guard bytes, then one
    array changed in place (if numpy allows): ``(batch, changed, guards)``."""
    batch, guards = guarded_batch(4, 8)
    for row in range(4):
        batch.fill(row, b"abcdefgh")
    array_ = getattr(batch, name)
    if name == "truncated":
        array_ = batch._truncated_u8  # the engines write this one
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # setting strides (numpy 2.4)
            CHANGES[change](array_)
    except (ValueError, AttributeError, TypeError):
        return batch, False, guards  # numpy refused the change itself
    return batch, True, guards


def _datagrams_left(receiver):
    """The payloads still queued on ``receiver`` (a handful at most), without waiting."""
    rows = fastnet.Batch(16, 2048)
    payloads = []
    for _ in range(16):
        try:
            n = receiver.recv_batch(rows, timeout=0)
        except BlockingIOError:
            break
        payloads.extend(bytes(rows.payload(i)) for i in range(n))
    return payloads


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("name", ARRAYS)
def test_changed_arrays_never_let_an_engine_stray(backend, name, change):
    batch, changed, guards = _changed_batch(name, change)
    if change == "resize":
        assert not changed or batch.capacity == 1, "a Batch's arrays must refuse resizing"
    with (
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as receiver,
        fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as helper:
            helper.send_batch(fastnet.Batch.from_payloads([b"12345678"] * 4), receiver.getsockname())
        for call in (
            lambda: sender.send_batch(batch, receiver.getsockname()),
            lambda: receiver.recv_batch(batch, timeout=1),
        ):
            try:
                call()
            # The pure-Python engine writes through numpy, which checks bounds
            # and ranges: a re-shaped or re-typed 1-d array can end in
            # IndexError or OverflowError there (the Cython engine's typed
            # views refuse it with ValueError).
            except (ValueError, TypeError, BufferError, IndexError, OverflowError):
                pass
        # Whatever the sender sent came from inside the batch: no guard byte.
        left = _datagrams_left(receiver)
    assert all(bytes([GUARD]) not in payload for payload in left), left
    # Nothing outside the batch's arrays was written, whatever was refused.
    guards.check()
    # And its other arrays are whole.
    for other in ARRAYS:
        if other != name:
            assert getattr(batch, other).size == {"data": 32, "addresses": 16}.get(other, 4)


def test_guard_bytes_show_a_write_just_outside_an_array():
    # The check above can fail: one byte written past the end, or before the
    # start, of any of a batch's arrays is seen and named.
    for slot in ARRAY_SLOTS:
        for side in ("after", "before"):
            batch, guards = guarded_batch(4, 8)
            guards.check()
            flat = getattr(batch, slot).reshape(-1).view(np.uint8)
            if side == "before":
                flat = flat[::-1]
            stray = np.lib.stride_tricks.as_strided(flat, shape=(flat.size + 1,), strides=flat.strides)
            stray[-1] = 0
            with pytest.raises(AssertionError, match=f"{side} batch.{slot[1:]} were written"):
                guards.check()


@pytest.mark.parametrize("name", ["data", "addresses"])
def test_reshaped_rows_are_refused_before_any_system_call(backend, name):
    batch, changed, _ = _changed_batch(name, "reshape")
    assert changed
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(ValueError, match="reshaped"):
            sock.recv_batch(batch, timeout=0)
        with pytest.raises(ValueError, match="reshaped"):
            sock.send_batch(batch, sock.getsockname())


def test_resizing_a_batch_array_is_refused():
    batch = fastnet.Batch(4, 8)
    for name in ARRAYS:
        with pytest.raises(ValueError):
            getattr(batch, name).resize(1, refcheck=False)
