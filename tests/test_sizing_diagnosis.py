"""The Receiver's default sizes (fastnet/receive/sizing.py) and its loss diagnosis (diagnosis.py)."""

import socket

import pytest

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
