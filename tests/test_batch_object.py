"""The Batch object itself: shapes, filling, access, validation."""

import socket as stdsocket

import numpy as np
import pytest

import fastnet


def test_arrays_have_documented_shapes_and_dtypes():
    batch = fastnet.Batch(8, 100)
    assert batch.data.shape == (8, 100) and batch.data.dtype == np.uint8
    assert batch.lengths.shape == (8,) and batch.lengths.dtype == np.int64
    assert batch.addresses.shape == (8, 4)
    assert batch.ports.dtype == np.uint16
    assert batch.timestamps.dtype == np.int64
    assert batch.truncated.dtype == np.bool_
    assert batch.count == len(batch) == 0
    assert fastnet.Batch(2, 10, family=fastnet.AF_INET6).addresses.shape == (2, 16)


def test_arrays_cannot_be_replaced():
    batch = fastnet.Batch(2, 10)
    for name in ("data", "lengths", "addresses", "ports", "timestamps", "truncated"):
        with pytest.raises(AttributeError):
            setattr(batch, name, np.zeros(2))
    with pytest.raises(AttributeError):
        batch.slot_size = 20


@pytest.mark.parametrize(
    "capacity,slot_size,error",
    [
        (0, 10, ValueError),
        (-1, 10, ValueError),
        (10, 0, ValueError),
        (10, -5, ValueError),
        (1.5, 10, TypeError),
        ("3", 10, TypeError),
        (10, None, TypeError),
        (True, 10, TypeError),
    ],
)
def test_bad_shapes_are_rejected(capacity, slot_size, error):
    with pytest.raises(error):
        fastnet.Batch(capacity, slot_size)


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError):
        fastnet.Batch(1, 1, family=stdsocket.AF_UNIX)


def test_fill_and_from_payloads():
    batch = fastnet.Batch.from_payloads([b"ab", b"", bytearray(b"xyz")])
    assert batch.count == 3 and batch.slot_size == 3
    assert [bytes(batch.payload(i)) for i in range(3)] == [b"ab", b"", b"xyz"]
    assert list(batch.lengths[:3]) == [2, 0, 3]
    batch.clear()
    batch.fill(0, memoryview(b"q"))
    assert batch.count == 1 and bytes(batch.payload(0)) == b"q"
    with pytest.raises(ValueError):
        batch.fill(1, b"toolong")
    with pytest.raises(IndexError):
        batch.fill(3, b"x")
    with pytest.raises(TypeError):
        batch.fill(0, "text is not bytes")
    with pytest.raises(ValueError):
        fastnet.Batch.from_payloads([])
    with pytest.raises(ValueError):
        fastnet.Batch.from_payloads([b"abc"], slot_size=2)


def test_payload_is_a_view_and_indexes_are_checked():
    batch = fastnet.Batch.from_payloads([b"abc", b"de"])
    view = batch.payload(0)
    batch.data[0, 0] = ord("z")
    assert bytes(view) == b"zbc"
    assert bytes(batch.payload(-1)) == b"de"
    with pytest.raises(IndexError):
        batch.payload(2)
    with pytest.raises(IndexError):
        batch.address(5)


def test_count_is_validated():
    batch = fastnet.Batch(4, 4)
    batch.count = 4
    assert len(batch) == 4
    for bad in (-1, 5):
        with pytest.raises(ValueError):
            batch.count = bad
    with pytest.raises(TypeError):
        batch.count = 1.0


def test_repr_names_shape():
    assert "capacity=4" in repr(fastnet.Batch(4, 4))
