"""``fastnet bench``'s bookkeeping: counts that must add up, figures summarised over rounds.

A row whose counts do not add up (sent = received + kernel drops + unread)
is flagged with the difference; one is made on purpose here with a receiver
that stops reading early and says nothing of what it left queued.
"""

import sys
import textwrap

import pytest

from fastnet._bench.backends import Catalog
from fastnet._bench.reconcile import balance
from fastnet._bench.report import build_rows, format_tables
from fastnet._bench.runner import Job, Outcome, run_job
from fastnet._bench.stats import significant, summarise

# A receiver that speaks the peer protocol (fastnet/_bench/peer.py) but takes one
# datagram, stops reading and reports no unread ones: a row that cannot add up.
EARLY_RECEIVER = textwrap.dedent(
    """
    import json, os, signal, socket, sys, time

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("127.0.0.1", 0))
    stop = []
    signal.signal(signal.SIGUSR1, lambda *_: stop.append(True))
    print("ready", sock.getsockname()[1], os.fstat(sock.fileno()).st_ino, flush=True)
    sock.settimeout(30)
    sock.recv(65536)
    end = time.monotonic() + 30
    while not stop and time.monotonic() < end:
        time.sleep(0.01)
    report = {"received": 1, "first_count": 1, "window_s": 0.0, "cpu_s": 0.0,
              "drain_timed_out": False, "timed_out": False, "unread": 0,
              "rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)}
    print(json.dumps(report), flush=True)
    sys.stdin.buffer.read()
    """
)


class EarlyReceiverCatalog(Catalog):
    """The real senders; every receiver replaced by the early-stopping script."""

    def __init__(self, names, script):
        super().__init__(names)
        self.script = script

    def receiver_argv(self, name, size, rcvbuf, max_seconds):
        return [sys.executable, str(self.script)]


def test_a_receiver_that_stops_early_is_flagged_not_printed_clean(backend, tmp_path):
    script = tmp_path / "early_receiver.py"
    script.write_text(EARLY_RECEIVER)
    catalog = EarlyReceiverCatalog([backend], script)
    outcome = run_job(Job(backend, backend, backend, 1024), catalog, 0.3, None)
    assert outcome.status == "ok", outcome.note
    assert outcome.queued_bytes > 0  # what it left behind is still in its queue
    [row] = build_rows([[outcome]])
    assert row["reconciled"] is False
    assert row["unaccounted"] == row["sent"] - row["received"] - row["kernel_drops"] - row["unread"] > 0
    assert f"{row['unaccounted']:,} of {row['sent']:,} sent" in row["note"]
    assert "bytes left unread" in row["note"]
    table = format_tables([row])
    receiver_line = next(line for line in table.splitlines() if line.lstrip().startswith("1024"))
    assert f"{row['received']:,}!" in receiver_line and "counts off" in receiver_line
    assert "the counts do not add up" in table


def test_counts_that_add_up_are_reconciled():
    assert balance(1000, 900, 60, 40).reconciled is True
    assert balance(1000, 900, 60, 40).unaccounted == 0


@pytest.mark.parametrize(
    "sent,received,drops,unread,queued,unaccounted",
    [
        (1000, 900, 60, 0, 0, 40),  # 40 neither received nor dropped
        (1000, 990, 60, 0, 0, -50),  # more accounted for than sent
        (1000, 940, 60, 0, 4096, 0),  # adds up, but bytes are still queued
    ],
)
def test_counts_that_do_not_add_up_say_by_how_much(sent, received, drops, unread, queued, unaccounted):
    result = balance(sent, received, drops, unread, queued)
    assert result.reconciled is False
    assert result.unaccounted == unaccounted
    assert "do not add up" in result.note or "left unread" in result.note


def test_gro_drops_count_whole_buffers():
    # 10 drops of up to 63-datagram buffers explain 10 to 630 missing datagrams.
    assert balance(10_000, 9_400, 10, 0, datagrams_per_drop=63).reconciled is True
    assert "GRO buffers" in balance(10_000, 9_400, 10, 0, datagrams_per_drop=63).note
    over = balance(10_000, 9_000, 10, 0, datagrams_per_drop=63)
    assert over.reconciled is False and over.unaccounted == 1000 - 630


def test_an_unreadable_drop_counter_leaves_the_row_unchecked():
    result = balance(1000, 900, None, 0)
    assert result.reconciled is None and result.unaccounted is None and "not checked" in result.note


def outcome(backend, sent, received, wall=1.0):
    job = Job(backend, backend, backend, 1024)
    return Outcome(
        job,
        sender={"sent": sent, "wall_s": wall, "cpu_s": 0.5},
        receiver={"received": received, "first_count": 0, "window_s": 1.0, "cpu_s": 0.25, "rcvbuf": 1 << 26},
        kernel_drops=sent - received,
        queued_bytes=0,
    )


def test_ratios_are_taken_round_by_round_then_summarised():
    python = [outcome("python", 100, 100), outcome("python", 200, 200), outcome("python", 300, 300)]
    cython = [outcome("cython", 300, 300), outcome("cython", 220, 220), outcome("cython", 600, 600)]
    python_row, cython_row = build_rows([python, cython])
    # Round by round: 3.0, 1.1, 2.0 (the ratio of the medians would be 300 / 200 = 1.5).
    assert cython_row["speedup"] == pytest.approx(2.0)
    assert (cython_row["speedup_min"], cython_row["speedup_max"]) == pytest.approx((1.1, 3.0))
    assert cython_row["speedup_significant"] is False  # range 1.9 is wider than 1.0 from parity
    assert python_row["speedup"] == 1.0 and python_row["speedup_significant"] is None
    assert cython_row["recv_pps"] == 300.0 and cython_row["recv_pps_min"] == 220.0
    assert cython_row["recv_pps_max"] == 600.0
    # The counts are the median round's, whole.
    assert (cython_row["sent"], cython_row["received"]) == (300, 300)
    assert [repeat["recv_pps"] for repeat in cython_row["repeats"]] == [300.0, 220.0, 600.0]
    assert cython_row["rounds"] == 3 and cython_row["reconciled"] is True


def test_a_failed_round_fails_the_row_and_says_which():
    good = outcome("python", 100, 100)
    bad = Outcome(Job("python", "python", "python", 1024), status="failed", note="receiver failed")
    [row] = build_rows([[good, bad, good]])
    assert row["status"] == "failed" and row["note"] == "round 2 of 3: receiver failed"
    assert row["sent"] is None and row["rounds"] == 3


@pytest.mark.parametrize(
    "values,expected",
    [
        ([1.5, 1.6, 1.7], True),  # range 0.2, 0.6 from parity
        ([0.9, 1.0, 1.2], False),  # straddles parity
        ([1.05, 1.10, 1.20], False),  # range 0.15 is wider than 0.10
    ],
)
def test_significance_compares_the_range_with_the_distance_from_parity(values, expected):
    assert significant(summarise(values), len(values)) is expected


def test_one_round_has_no_spread_to_judge_by():
    assert significant(summarise([1.5]), 1) is None
    assert summarise([None, None]) == (None, None, None)


def test_what_is_left_after_a_drain_timeout_is_counted_as_unread():
    from fastnet._bench.loops import count_unread

    queued = [1024, 1024, 17]
    assert count_unread(lambda: queued.pop(0) if queued else 0) == 2065
    assert count_unread(lambda: 0) == 0
