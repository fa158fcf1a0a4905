"""The Receiver's default sizes (fastnet/receive/sizing.py) and its loss diagnosis (diagnosis.py)."""

import json
import select
import socket
import warnings

import pytest
from cli_helpers import bound_port, finish, start_recv
from helpers import refuse_rcvbuf_force

import fastnet
from fastnet.receive import diagnosis, sizing

# -- default sizes ---------------------------------------------------------------------


def test_loopback_slots_are_capped_at_9000():
    # loopback's MTU is 64 KiB: more than any instrument link, so the cap applies
    assert sizing.interface_mtus(socket.AF_INET, "127.0.0.1")
    assert sizing.default_slot_size(socket.AF_INET, "127.0.0.1") == 9000
    assert sizing.default_slot_size(socket.AF_INET, "127.0.0.42") == 9000  # all of 127/8 is loopback


def test_an_address_on_no_interface_gets_the_cap():
    assert sizing.interface_mtus(socket.AF_INET, "198.51.100.77") == []
    assert sizing.default_slot_size(socket.AF_INET, "198.51.100.77") == 9000


def test_slots_are_the_mtu_less_the_headers(monkeypatch):
    monkeypatch.setattr(sizing, "interface_mtus", lambda family, host: [1500])
    assert sizing.default_slot_size(socket.AF_INET, "192.0.2.1") == 1472
    assert sizing.default_slot_size(socket.AF_INET6, "2001:db8::1") == 1452
    monkeypatch.setattr(sizing, "interface_mtus", lambda family, host: [9000, 1500])
    assert sizing.default_slot_size(socket.AF_INET, "0.0.0.0") == 8972


def test_a_wildcard_listens_on_every_interface_that_is_up():
    everywhere = sizing.interface_mtus(socket.AF_INET, "0.0.0.0")
    assert everywhere == sizing.interface_mtus(socket.AF_INET6, "::")
    assert everywhere == sizing.interface_mtus(socket.AF_INET, "239.1.2.3")  # a group: any interface
    (loopback,) = sizing.interface_mtus(socket.AF_INET, "127.0.0.1")
    assert loopback in everywhere
    assert sizing.default_slot_size(socket.AF_INET, "0.0.0.0") == min(9000, max(everywhere) - 28)


def test_the_ring_is_bounded_in_bytes():
    assert sizing.default_ring_size(1024, 9000) == 14  # 129 MB, not 590
    assert sizing.default_ring_size(1024, 1472) == 64  # the count cap
    assert sizing.default_ring_size(1024, 65507) == sizing.MIN_DEFAULT_RING
    for batch, slot in [(1024, 9000), (1024, 1472), (64, 100), (4096, 9000)]:
        ring = sizing.default_ring_size(batch, slot)
        assert ring == sizing.MIN_DEFAULT_RING or ring * batch * slot <= sizing.DEFAULT_RING_BYTES


def test_the_buffer_holds_the_ring_within_its_bounds():
    assert sizing.default_rcvbuf(14 * 1024, 9000) == 64 << 20
    assert sizing.default_rcvbuf(4 * 16, 100) == 4 << 20
    assert sizing.default_rcvbuf(1000, 9000) == 9_000_000


# -- diagnosis ---------------------------------------------------------------------------


def test_nothing_lost_says_nothing():
    assert diagnosis.diagnose({"packets": 10, "kernel_drops": 0, "ring_overruns": 0, "truncated": 0}) == []
    assert fastnet.ReceiverStats(packets=5).diagnose() == []


def test_kernel_drops_with_a_small_buffer_name_the_buffer_and_the_sysctl():
    (line,) = fastnet.ReceiverStats(kernel_drops=1234, rcvbuf=212992).diagnose()
    assert "1,234 datagrams" in line and "208 KiB" in line
    assert "rcvbuf=" in line and "net.core.rmem_max" in line and "sysctl -w" in line
    (cli_line,) = diagnosis.diagnose({"kernel_drops": 1, "rcvbuf": 212992}, cli=True)
    assert "--rcvbuf" in cli_line and "1 datagram:" in cli_line


def test_kernel_drops_with_a_large_buffer_point_at_scheduling():
    (line,) = fastnet.ReceiverStats(kernel_drops=7, rcvbuf=128 << 20).diagnose()
    assert "128.0 MiB" in line and "not scheduled" in line and "cpu=" in line
    (cli_line,) = diagnosis.diagnose({"kernel_drops": 7, "rcvbuf": 128 << 20}, cli=True)
    assert "--cpu" in cli_line


def test_overruns_truncation_recorder_and_upstream_losses():
    lines = fastnet.ReceiverStats(
        ring_overruns=5, truncated=3, slot_size=1472, recorded=1, capture_dropped=2
    ).diagnose()
    text = " ".join(lines)
    assert len(lines) == 3
    assert "ring was full" in text and "ring_size=" in text
    assert "1,472-byte slot" in text and "slot_size=" in text
    assert "recorder could not write 2 datagrams" in text
    (upstream,) = fastnet.ReceiverStats(seq_lost=9, seq_gaps=1).diagnose()
    assert "before reaching it" in upstream
    # with drops here, seq losses are explained by them (GRO counts buffers, not datagrams)
    assert len(fastnet.ReceiverStats(kernel_drops=1, seq_lost=64, rcvbuf=64 << 20).diagnose()) == 1


@pytest.mark.parametrize("rmem", [None, 4194304])
def test_the_sysctl_value_is_said_when_readable(monkeypatch, rmem):
    monkeypatch.setattr(diagnosis, "_rmem_max", lambda: rmem)
    (line,) = diagnosis.diagnose({"kernel_drops": 1, "rcvbuf": 1 << 20})
    assert ("net.core.rmem_max is 4.0 MiB" in line) == (rmem is not None)


# -- a Receiver with its defaults ------------------------------------------------------------


def test_a_default_receiver_sizes_itself(backend):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rx = fastnet.Receiver(0, backend=backend)
    with rx:
        assert rx.slot_size == sizing.default_slot_size(socket.AF_INET, "127.0.0.1") == 9000
        assert rx.ring_size == sizing.default_ring_size(rx.batch_size, rx.slot_size) == 14
        wanted = sizing.default_rcvbuf(rx.ring_size * rx.batch_size, rx.slot_size)
        capped = [w for w in caught if issubclass(w.category, fastnet.BufferSizeWarning)]
        if rx.rcvbuf >= 2 * wanted:  # granted (FORCE, or a high enough rmem_max)
            assert capped == []
        else:  # capped: said, unless this process was told already
            assert sizing._warned
        stats = rx.stats
        assert (stats.rcvbuf, stats.slot_size) == (rx.rcvbuf, 9000)


def test_explicit_sizes_are_kept(backend):
    with fastnet.Receiver(0, backend=backend, slot_size=1500, ring_size=3, rcvbuf=1 << 20) as rx:
        assert (rx.slot_size, rx.ring_size) == (1500, 3)
        assert rx.stats.rcvbuf == rx.rcvbuf == rx._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def test_a_capped_default_buffer_warns_once_naming_the_sysctl(backend, monkeypatch):
    rmem_max = refuse_rcvbuf_force(monkeypatch)
    if rmem_max * 2 >= sizing.MAX_DEFAULT_RCVBUF * 2:
        pytest.skip("net.core.rmem_max is high enough: the default is not capped here")
    monkeypatch.setattr(sizing, "_warned", False)
    with pytest.warns(fastnet.BufferSizeWarning, match=r"sysctl -w net.core.rmem_max=.*\(warned once\)"):
        first = fastnet.Receiver(0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fastnet.BufferSizeWarning)
        second = fastnet.Receiver(0, backend=backend)  # no second warning
    with first, second:
        assert first.rcvbuf == second.rcvbuf == 2 * rmem_max


def test_kernel_drops_of_a_tiny_buffer_are_diagnosed(backend):
    """A Receiver not yet started, whose 4 KiB buffer a burst overflows: the diagnosis names it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastnet.BufferSizeWarning)
        rx = fastnet.Receiver(0, backend=backend, rcvbuf=4096, ring_size=1, batch_size=8)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
        tx.send_batch(fastnet.Batch.from_payloads([b"x" * 1000] * 200), rx.address)
    try:
        stats = rx.stats
        assert stats.kernel_drops > 0
        (line,) = stats.diagnose()
        assert "receive buffer is only" in line and "rcvbuf=" in line and "net.core.rmem_max" in line
    finally:
        rx.close()


# -- fastnet recv --------------------------------------------------------------------------


def test_a_forced_overload_prints_a_diagnosis_naming_the_buffer_and_the_sysctl(backend):
    """``fastnet recv --rcvbuf 4K`` and a burst it cannot hold: the summary says why, and what to do."""
    child = start_recv("127.0.0.1:0", "--rcvbuf", "4K", "--duration", "2", "--backend", backend)
    port = bound_port(child)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
        tx.send_batch(fastnet.Batch.from_payloads([b"x" * 1000] * 500), ("127.0.0.1", port))
    status, out, err = finish(child)
    assert status == 0, err
    (why,) = [line for line in out.splitlines() if line.startswith("why: ")]
    assert "The kernel dropped" in why and "receive buffer is only" in why
    assert "--rcvbuf" in why and "net.core.rmem_max" in why


def test_the_start_line_reports_the_sizes_the_kernel_granted(backend):
    child = start_recv("127.0.0.1:0", "--duration", "0.5", "--json", "--backend", backend)
    ready, _, _ = select.select([child.stderr], [], [], 30)
    assert ready
    line = child.stderr.readline()
    status, out, err = finish(child)
    assert status == 0, err
    report = json.loads(out)
    assert f"ring of 14 x 1024 slots of 9000 B, receive buffer {report['rcvbuf'] / (1 << 20):.1f} MiB" in line
    assert report["slot_size"] == 9000 and report["diagnosis"] == []


def test_the_live_line_hints_name_what_grew_since_the_last_line():
    before = {"kernel_drops": 5, "ring_overruns": 0, "truncated": 0, "rcvbuf": 212992}
    assert diagnosis.hints(before, before) == []
    now = dict(before, kernel_drops=6, truncated=1)
    assert diagnosis.hints(now, before) == [
        "kernel: buffer only 208 KiB, raise --rcvbuf",
        "cut: raise --slot-size",
    ]
    big = dict(before, rcvbuf=128 << 20)
    assert diagnosis.hints(dict(big, kernel_drops=9, ring_overruns=1), big) == [
        "kernel: capture thread not scheduled, try --cpu",
        "ring full: consumer too slow",
    ]


def test_stats_still_come_after_the_socket_was_closed_under_the_receiver(backend):
    rx = fastnet.Receiver(0, backend=backend, ring_size=1, batch_size=8)
    try:
        granted = rx.stats.rcvbuf
        rx._sock.close()  # as tools/soak.py does from another thread
        assert rx.stats.rcvbuf == granted  # the last value read, not an OSError
    finally:
        rx.close()
