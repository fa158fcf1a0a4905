"""Framing settings at and past their limits, and arbitrary bytes as a TCP stream.

Every stream, however hostile, comes out of recv_frames as exactly what an
independent parser makes of it (tests/fuzz/fuzz_frames.py, ``reference``):
whole frames, then a clean end or IncompleteFrameError / FrameLimitError /
SlotTooSmallError; never a crash, a hang, a frame in parts or a write outside
the receiving Batch's arrays (guard bytes around them: tests/guards.py).
"""

import os
import socket as stdsocket
import sys

import pytest
from guards import guarded_batch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tcp_helpers import tcp_pair

import fastnet
from fastnet.core.framing import MAX_FRAME_LIMIT

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz"))
import fuzz_frames  # noqa: E402  (tests/fuzz/fuzz_frames.py)

HOSTILE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=4),
    st.sampled_from([2, 4, 8, "big", "little", "error", "truncate", 0, 2**62, 2**62 + 1, -1]),
)


def _valid(prefix_size, byteorder, max_frame, on_oversize):
    def whole(value):
        return isinstance(value, int) and not isinstance(value, bool)

    return (
        (prefix_size is None or (whole(prefix_size) and prefix_size in (2, 4, 8)))
        and (byteorder is None or byteorder in ("big", "little"))
        and (max_frame is None or (whole(max_frame) and 0 <= max_frame <= MAX_FRAME_LIMIT))
        and (on_oversize is None or on_oversize in ("error", "truncate"))
    )


@HOSTILE
@given(prefix_size=anything, byteorder=anything, max_frame=anything, on_oversize=anything)
def test_set_framing_accepts_exactly_the_documented_values(
    backend, prefix_size, byteorder, max_frame, on_oversize
):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_STREAM, backend=backend) as sock:
        before = sock.framing
        try:
            framing = sock.set_framing(
                prefix_size=prefix_size, byteorder=byteorder, max_frame=max_frame, on_oversize=on_oversize
            )
        except (TypeError, ValueError):
            assert not _valid(prefix_size, byteorder, max_frame, on_oversize)
            assert sock.framing == before  # a refused change changes nothing
            return
        assert _valid(prefix_size, byteorder, max_frame, on_oversize)
        assert sock.framing == framing
        assert framing.frame_limit == min(framing.max_frame, 2 ** (8 * framing.prefix_size) - 1)


@pytest.mark.parametrize("prefix_size", [2, 4, 8])
def test_frames_at_the_limit_go_through_and_one_byte_more_is_refused(backend, prefix_size):
    limit = min(2 ** (8 * prefix_size) - 1, 70000)
    with tcp_pair(backend) as (client, server):
        for sock in (client, server):
            sock.set_framing(prefix_size=prefix_size, max_frame=limit, on_oversize="error")
        batch = fastnet.Batch(1, limit + 1)
        batch.fill(0, b"\x7f" * limit)
        assert client.send_frames(batch) == 1
        got, guards = guarded_batch(1, limit)
        assert server.recv_frames(got, timeout=5) == 1
        assert bytes(got.payload(0)) == b"\x7f" * limit and not got.truncated[0]
        guards.check()
        batch.fill(0, b"\x7f" * (limit + 1))
        with pytest.raises(ValueError):
            client.send_frames(batch)


@HOSTILE
@given(start=anything)
def test_send_frames_start_is_checked(backend, start):
    with tcp_pair(backend) as (client, server):
        batch = fastnet.Batch.from_payloads([b"ab", b"c"])
        try:
            sent = client.send_frames(batch, start)
        except (TypeError, ValueError):
            return
        assert isinstance(start, int) and 0 <= start <= 2 and sent == 2 - start


# -- arbitrary streams ----------------------------------------------------------------


@HOSTILE
@given(data=st.binary(max_size=600))
@example(data=b"")
@example(data=bytes(8))
@example(data=b"\x00\x03\x00\x00\x02\x00\x00\xff\xff\xff\xff\xff")  # a frame past max_frame
def test_random_streams_match_an_independent_parser(backend, data):
    fuzz_frames.run(data, backends=[backend])


@st.composite
def frames_near_the_limits(draw):
    """A stream of frames whose announced lengths sit at the framing's limits."""
    prefix = draw(st.sampled_from([2, 4, 8]))
    order = draw(st.sampled_from(["big", "little"]))
    max_frame = draw(st.sampled_from([0, 1, 5, 255, 256, 65535]))
    slot = draw(st.sampled_from([1, 4, 5, 6, 256]))
    limit = min(max_frame, 2 ** (8 * prefix) - 1)
    stream = b""
    for _ in range(draw(st.integers(0, 6))):
        size = draw(
            st.sampled_from([0, 1, slot - 1, slot, slot + 1, limit, limit + 1, 2 ** (8 * prefix) - 1])
        )
        size = min(max(size, 0), 2 ** (8 * prefix) - 1)  # what the prefix can say
        stream += size.to_bytes(prefix, order) + bytes(min(size, 300))
    framing = {
        "prefix_size": prefix,
        "byteorder": order,
        "max_frame": max_frame,
        "on_oversize": draw(st.sampled_from(["error", "truncate"])),
    }
    return stream, framing, slot, draw(st.sampled_from([1, 2, 64]))


@HOSTILE
@given(case=frames_near_the_limits())
def test_lengths_at_the_limits_match_an_independent_parser(backend, case):
    stream, framing, slot, capacity = case
    expected = fuzz_frames.reference(stream, framing, slot)
    got = fuzz_frames.through_engine(backend, stream, [], framing, capacity, slot)
    assert got == expected


def test_a_refused_stream_stays_refused_and_close_releases_it(backend):
    with tcp_pair(backend, raw_client=True) as (client, server):
        server.set_framing(max_frame=10)
        client.sendall((11).to_bytes(4, "big") + bytes(11))
        for _ in range(3):
            with pytest.raises(fastnet.FrameLimitError) as info:
                server.recv_frames(fastnet.Batch(4, 64), timeout=5)
            assert info.value.length == 11
        client.shutdown(stdsocket.SHUT_WR)
