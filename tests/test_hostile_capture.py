"""Arbitrary bytes as capture files, and hostile arguments to reading and recording.

read_capture yields well-formed Batches and then ends or raises
CaptureError, whatever the file holds: never another exception, a crash, a
hang or an allocation the file's size does not justify.
"""

import os
import socket as stdsocket
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fastnet
from fastnet.capture.npy import MAGIC, record_dtype

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz"))
import fuzz_npy  # noqa: E402  (tests/fuzz/fuzz_npy.py)
import fuzz_pcap  # noqa: E402  (tests/fuzz/fuzz_pcap.py)

HOSTILE = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

_PCAP_HEADS = [bytes.fromhex(h) for h in ("d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d")]


@HOSTILE
@given(data=st.binary(max_size=800))
@example(data=b"\x00" + _PCAP_HEADS[0] + bytes(20))
def test_random_bytes_as_pcap(data):
    fuzz_pcap.test_one_input(data)


@HOSTILE
@given(
    head=st.sampled_from(_PCAP_HEADS + [MAGIC + b"\x01\x00", MAGIC + b"\x02\x00", b""]),
    body=st.binary(max_size=400),
)
def test_random_bytes_after_a_real_magic(tmp_path, head, body):
    path = tmp_path / "random.cap"
    path.write_bytes(head + body)
    try:
        fuzz_pcap.read_all(str(path))
    except fastnet.CaptureError:
        pass  # refused at open


@HOSTILE
@given(data=st.binary(max_size=800))
@example(data=b"\x03" + bytes(8))
@example(data=b"\x04\xff\xff")
def test_random_bytes_as_npy(data):
    fuzz_npy.test_one_input(data)


def _capture(tmp_path, suffix):
    path = str(tmp_path / f"whole{suffix}")
    with fastnet.open_recorder(path, local_address=("127.0.0.1", 9)) as recorder:
        for family in (stdsocket.AF_INET, stdsocket.AF_INET6):
            batch = fastnet.Batch.from_payloads([bytes([i]) * (i + 1) for i in range(5)], family=family)
            recorder(batch)
    with open(path, "rb") as handle:
        return handle.read()


@pytest.mark.parametrize("suffix", [".pcap", ".npy"])
def test_a_capture_cut_anywhere_yields_a_prefix_then_an_error(tmp_path, suffix):
    whole = _capture(tmp_path, suffix)
    complete = [bytes(p) for b in fastnet.read_capture(str(tmp_path / f"whole{suffix}")) for p, _ in b]
    assert len(complete) == 10
    path = tmp_path / f"cut{suffix}"
    for end in range(len(whole)):
        path.write_bytes(whole[:end])
        got = []
        try:
            for batch in fastnet.read_capture(str(path)):
                got.extend(bytes(p) for p, _ in batch)
        except fastnet.CaptureError as exc:
            assert 0 <= exc.offset <= end
        assert got == complete[: len(got)], end


# -- npy headers that are valid Python but not a capture ---------------------------


def _npy(text):
    body = text.encode("latin1")
    return MAGIC + b"\x01\x00" + len(body).to_bytes(2, "little") + body


_DESCR = repr(record_dtype(8).descr)


@pytest.mark.parametrize(
    "text",
    [
        "{'descr': %s, 'fortran_order': False, 'shape': ('x',), }" % _DESCR,
        "{'descr': %s, 'fortran_order': False, 'shape': (-1,), }" % _DESCR,
        "{'descr': %s, 'fortran_order': False, 'shape': (True,), }" % _DESCR,
        "{'descr': %s, 'fortran_order': False, 'shape': 3, }" % _DESCR,
        "{'descr': %s, 'fortran_order': False, 'shape': (1,), }" % _DESCR.replace("(8,)", "()"),
        "{'descr': %s, 'fortran_order': False, 'shape': (1,), }" % _DESCR.replace("(8,)", "(2, 4)"),
        "{'descr': %s, 'fortran_order': False, 'shape': (1,), }" % repr(record_dtype(2**27).descr),
        "{'descr': %s, 'fortran_order': False, 'shape': (1,), }" % repr(record_dtype(2**30).descr),
        "-" * 5000 + "1",
        "(" * 5000,
        "[" * 90 + "]" * 90,
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
        " " * 20000,
    ],
)
def test_npy_headers_that_are_not_captures_are_capture_errors(tmp_path, text):
    path = tmp_path / "header.npy"
    path.write_bytes(_npy(text) + bytes(256))
    with pytest.raises(fastnet.CaptureError):
        for _ in fastnet.read_capture(str(path)):
            pass


def test_a_wide_npy_capture_is_read_in_bounded_pieces(tmp_path):
    width = 1 << 20
    path = tmp_path / "wide.npy"
    with fastnet.open_recorder(str(path), payload_bytes=65535) as recorder:
        recorder(fastnet.Batch.from_payloads([b"x"]))
    # Rewrite it with a wide payload field and a few records: each read
    # allocates for what the file holds, not batch_size records of that width.
    dtype = record_dtype(width)
    records = np.zeros(3, dtype)
    records["length"] = 1
    records["ip_version"] = 4
    np.save(path, records)
    batches = list(fastnet.read_capture(str(path), batch_size=1024))
    assert sum(batch.count for batch in batches) == 3


# -- hostile arguments ----------------------------------------------------------------

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=4),
)


@HOSTILE
@given(batch_size=anything, slot_size=anything)
def test_read_capture_arguments(tmp_path, batch_size, slot_size):
    path = tmp_path / "one.pcap"
    if not path.exists():
        with fastnet.open_recorder(str(path)) as recorder:
            recorder(fastnet.Batch.from_payloads([b"abc", b"de"]))
    try:
        reader = fastnet.read_capture(str(path), batch_size, slot_size=slot_size)
    except (TypeError, ValueError):
        return
    rows = [bytes(p) for batch in reader for p, _ in batch]
    assert rows == [b"abc", b"de"][: len(rows)] or rows == [b"abc"[:slot_size], b"de"[:slot_size]]


@HOSTILE
@given(path=st.one_of(anything, st.sampled_from(["x.txt", "x", ".pcap", "dir/", "", "."])))
def test_read_capture_paths(tmp_path, path):
    (tmp_path / "dir").mkdir(exist_ok=True)
    if isinstance(path, str):
        path = str(tmp_path / path)
    elif isinstance(path, bytes):
        path = bytes(tmp_path) + b"/" + path.replace(b"\0", b"")
    with pytest.raises((TypeError, ValueError, OSError)):
        fastnet.read_capture(path)


# Hosts are numeric or "localhost": the recorder resolves a host name, and a
# free-text one would send DNS queries off this machine.
_HOSTS = st.sampled_from(
    ["127.0.0.1", "::1", "localhost", "0.0.0.0", "::", "fe80::1%lo", None, 5, b"127.0.0.1"]
)


@HOSTILE
@given(
    local_address=st.one_of(
        anything, st.tuples(_HOSTS, anything), st.tuples(_HOSTS, anything, anything, anything)
    ),
    buffers=anything,
    payload_bytes=anything,
    fmt=st.sampled_from([None, "pcap", "npy", "csv", 5]),
)
def test_open_recorder_arguments(tmp_path, local_address, buffers, payload_bytes, fmt):
    path = tmp_path / "rec.pcap"
    try:
        recorder = fastnet.open_recorder(
            str(path), local_address=local_address, buffers=buffers, payload_bytes=payload_bytes, format=fmt
        )
    except (TypeError, ValueError, OSError):
        return
    with recorder:
        recorder(fastnet.Batch.from_payloads([b"abc"]))
    assert recorder.stats.written == 1
    assert [bytes(p) for b in fastnet.read_capture(str(path)) for p, _ in b] == [b"abc"]
