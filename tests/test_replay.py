"""Replaying a capture: order, content, recorded timing scaled by --speed, limits.

The timing is checked on helpers.VirtualClock, which moves only when replay
sleeps: when each datagram is due is then exact whatever the machine's load.
"""

import socket as stdsocket

import numpy as np
import pytest
from helpers import receive_exactly, use_virtual_clock

import fastnet

STEP_NS = 100_000_000  # the recorded datagrams are 0.1 s apart
ROWS = 5
#: What the clock's own ticks (1 us a reading) may add to a replay this short.
SLACK_NS = 1_000_000


@pytest.fixture
def clock(monkeypatch):
    return use_virtual_clock(monkeypatch)


def _timed(clock, call):
    """``call()``'s result and the virtual time it took, in ns."""
    started = clock.now_ns
    result = call()
    return result, clock.now_ns - started


def _capture(path, family=stdsocket.AF_INET, rows=ROWS):
    batch = fastnet.Batch.from_payloads([f"datagram {i}".encode() for i in range(rows)], family=family)
    batch.timestamps[:] = 1_700_000_000 * 10**9 + np.arange(rows) * STEP_NS
    with fastnet.open_recorder(path, local_address=("127.0.0.1", 9)) as recorder:
        recorder(batch)
    return path


@pytest.mark.parametrize("fmt", ["pcap", "npy"])
def test_replay_sends_the_capture_at_its_recorded_pace(pair, tmp_path, fmt, clock):
    receiver, _ = pair
    path = _capture(tmp_path / f"run.{fmt}")
    with fastnet.Sender(receiver.getsockname(), backend=receiver.backend) as sender:
        sent, took = _timed(clock, lambda: sender.replay(path))
    assert sent == ROWS
    got = receive_exactly(receiver, ROWS, 64, family=receiver.family)[0]
    assert got == [f"datagram {i}".encode() for i in range(ROWS)]
    span = (ROWS - 1) * STEP_NS
    assert span <= took <= span + SLACK_NS  # never early, and not late either


def test_replay_speed_scales_and_max_does_not_wait(pair, tmp_path, clock):
    receiver, _ = pair
    path = _capture(tmp_path / "run.pcap")
    with fastnet.Sender(receiver.getsockname(), backend=receiver.backend) as sender:
        _, fast = _timed(clock, lambda: sender.replay(path, speed=4))
        slept = clock.slept_ns
        _, fastest = _timed(clock, lambda: sender.replay(path, speed="max"))
    span = (ROWS - 1) * STEP_NS // 4
    assert span <= fast <= span + SLACK_NS
    assert clock.slept_ns == slept and fastest <= SLACK_NS  # "max" never sleeps
    assert len(receive_exactly(receiver, 2 * ROWS, 64, family=receiver.family)[0]) == 2 * ROWS


def test_replay_count_and_duration_limits(pair, tmp_path, clock):
    receiver, _ = pair
    path = _capture(tmp_path / "run.pcap", rows=50)
    with fastnet.Sender(receiver.getsockname(), backend=receiver.backend) as sender:
        assert sender.replay(path, speed=None, count=7) == 7
        sent = sender.replay(path, duration=0.25)  # 0.1 s apart: 3 fit
    assert sent == 3
    assert len(receive_exactly(receiver, 7 + sent, 64, family=receiver.family)[0]) == 7 + sent


def test_replay_timestamps_that_step_backwards_are_not_sent_early(pair, tmp_path, clock):
    receiver, _ = pair
    batch = fastnet.Batch.from_payloads([b"a", b"b", b"c"])
    batch.timestamps[:] = [10**18, 10**18 + 2 * STEP_NS, 10**18 + STEP_NS]
    with fastnet.Sender(receiver.getsockname(), backend=receiver.backend) as sender:
        sent, took = _timed(clock, lambda: sender.replay([batch]))
    assert sent == 3
    # "c" is stamped before "b": it goes right after "b", not before it.
    assert 2 * STEP_NS <= took <= 2 * STEP_NS + SLACK_NS
    assert receive_exactly(receiver, 3, 8, family=receiver.family)[0] == [b"a", b"b", b"c"]


@pytest.mark.parametrize(
    "speed,error", [(0, ValueError), (-2, ValueError), (float("nan"), ValueError), ("fast", TypeError)]
)
def test_bad_speed_is_refused(tmp_path, speed, error):
    path = _capture(tmp_path / "run.pcap")
    with fastnet.Sender(("127.0.0.1", 9)) as sender:
        with pytest.raises(error):
            sender.replay(path, speed=speed)
        assert sender.stats.sent == 0
