"""``fastnet recv --workers N``: processes sharing the port receive exactly what was sent."""

import json
import os
import signal
import socket as stdsocket
import time

import pytest
from cli_helpers import bound_port, finish, one_error_line, start_recv
from helpers import HANG_S, processes_in_group, wait_until_read

FLOWS = 12  # sender sockets: SO_REUSEPORT spreads by source port, not by datagram
PER_FLOW = 50


def send_from_many_ports(port, flows=FLOWS, per_flow=PER_FLOW):
    """Numbered datagrams, round robin over ``flows`` sender sockets; the numbers sent."""
    senders = [stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) for _ in range(flows)]
    try:
        for tx in senders:
            tx.bind(("127.0.0.1", 0))
        for i in range(flows * per_flow):
            senders[i % flows].sendto(i.to_bytes(8, "big") + bytes(56), ("127.0.0.1", port))
    finally:
        for tx in senders:
            tx.close()
    return flows * per_flow


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_together_receive_exactly_what_was_sent(backend, workers):
    child = start_recv(
        "127.0.0.1:0",
        "--workers",
        str(workers),
        "--count",
        str(FLOWS * PER_FLOW),
        "--json",
        "--rcvbuf",
        "4M",
        "--backend",
        backend,
    )
    port = bound_port(child, timeout=60)
    sent = send_from_many_ports(port)
    status, out, err = finish(child, timeout=60)
    assert status == 0, err
    report = json.loads(out)
    assert report["workers"] == workers and len(report["worker_packets"]) == workers
    assert report["packets"] == sum(report["worker_packets"]) == sent
    assert report["accounted"] == sent and report["kernel_drops"] == 0
    assert report["backend"] == backend and report["address"] == ["127.0.0.1", port]
    assert sum(1 for n in report["worker_packets"] if n) >= 2, "the kernel spread the flows over the workers"


def test_summary_lists_each_workers_count(backend):
    child = start_recv(
        "127.0.0.1:0", "--workers", "2", "--count", "100", "--rcvbuf", "4M", "--backend", backend
    )
    port = bound_port(child, timeout=60)
    send_from_many_ports(port, flows=4, per_flow=25)
    status, out, err = finish(child, timeout=60)
    assert status == 0, err
    assert out.startswith("received 100 datagrams")
    line = next(line for line in out.splitlines() if line.startswith("per worker (2): "))
    counts = [int(n.replace(",", "")) for n in line.split(": ")[1].split(", ")]
    assert sum(counts) == 100


def test_ctrl_c_stops_every_worker_with_the_summary(backend):
    # Ctrl-C on a terminal signals the whole process group: the parent and
    # its workers (which leave the stopping to the parent).
    child = start_recv(
        "127.0.0.1:0", "--workers", "2", "--json", "--rcvbuf", "4M", "--backend", backend, session=True
    )
    try:
        port = bound_port(child, timeout=60)  # printed once both workers receive
        assert len(processes_in_group(child.pid)) >= 3  # the parent and two workers
        sent = send_from_many_ports(port, flows=6, per_flow=10)
        wait_until_read(port)  # the workers' capture threads have taken them all
        os.killpg(child.pid, signal.SIGINT)
        status, out, err = finish(child, timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert status == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True
    assert report["packets"] == sum(report["worker_packets"]) == report["accounted"] == sent
    deadline = time.monotonic() + HANG_S
    while processes_in_group(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_in_group(child.pid) == []


def test_duration_ends_the_workers(backend):
    child = start_recv("127.0.0.1:0", "--workers", "2", "--duration", "0.5", "--backend", backend)
    bound_port(child, timeout=60)
    status, out, err = finish(child, timeout=60)
    assert status == 0, err
    assert out.startswith("received 0 datagrams") and "per worker (2): 0, 0" in out


def test_out_is_refused_with_workers(tmp_path):
    status, out, err = finish(
        start_recv("127.0.0.1:0", "--workers", "2", "--out", str(tmp_path / "run.pcap"))
    )
    assert status == 2 and out == ""
    assert "--workers" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_busy_port_exits_2():
    with stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))  # without SO_REUSEPORT: nobody may join it
        status, out, err = finish(start_recv(f"127.0.0.1:{taken.getsockname()[1]}", "--workers", "2"))
    assert status == 2 and out == ""
    assert "Address already in use" in one_error_line(err)
