"""``fastnet recv``, run as a separate process with a sender in this one."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import CHILD, ROOT, bound_port, finish, start_recv
from helpers import HANG_S, send_numbered, wait_until_read

import fastnet
from fastnet.cli.recv import byte_size


def test_count_and_json(backend):
    child = start_recv(
        "127.0.0.1:0",
        "--count",
        "1000",
        "--json",
        "--seq",
        "--rcvbuf",
        "8M",
        "--backend",
        backend,
        "--batch-size",
        "64",
    )
    port = bound_port(child)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender:
        for start in range(0, 1000, 100):
            send_numbered(sender, ("127.0.0.1", port), start, 100, size=100)
    status, out, err = finish(child)
    assert status == 0, err
    report = json.loads(out)
    assert report["packets"] == report["delivered"] == report["accounted"] == 1000
    assert report["bytes"] == 100_000
    assert report["kernel_drops"] == report["ring_overruns"] == report["unread"] == 0
    assert report["seq_lost"] == report["seq_gaps"] == report["seq_reordered"] == 0
    assert report["backend"] == backend and report["address"] == ["127.0.0.1", port]
    assert report["interrupted"] is False


def test_duration_ends_and_prints_a_summary(backend):
    # Nothing is sent: datagrams sent now could come after the 0.3 s are over
    # on a loaded machine. Only the duration can end this (finish() fails a hang).
    child = start_recv("0", "--duration", "0.3", "--backend", backend)
    bound_port(child)
    status, out, err = finish(child, timeout=HANG_S)
    assert status == 0, err
    assert out.startswith("received 0 datagrams")
    assert "dropped: kernel 0, ring overruns 0" in out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_ends_cleanly_with_the_summary(backend, signum):
    child = start_recv("0", "--json", "--backend", backend)
    port = bound_port(child)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender:
        send_numbered(sender, ("127.0.0.1", port), 0, 3)
    wait_until_read(port)  # its capture thread has taken the 3 from the socket
    child.send_signal(signum)
    status, out, err = finish(child)
    assert status == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True and report["packets"] == 3


def test_gro_receives_a_gso_stream_datagram_by_datagram(backend):
    if not (fastnet.features()["gso"] and fastnet.features()["gro"]):
        pytest.skip("kernel without UDP GSO/GRO")
    child = start_recv(
        "0",
        "--gro",
        "--seq",
        "--count",
        "3000",
        "--slot-size",
        "700",
        "--rcvbuf",
        "8M",
        "--json",
        "--backend",
        backend,
    )
    port = bound_port(child)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sender:
        sender.set_buffers(sndbuf=1 << 20)
        send_numbered(sender, ("127.0.0.1", port), 0, 3000, size=700)  # GSO: equal rows
    status, out, err = finish(child)
    assert status == 0, err
    report = json.loads(out)
    assert report["packets"] == 3000 and report["seq_lost"] == 0 and report["truncated"] == 0


def test_live_status_line_on_a_terminal(backend):
    master, slave = pty.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, "recv", "0", "--duration", "1.2", "--seq", "--backend", backend],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
        status, out, _ = finish(child)
    finally:
        os.close(master)
    assert status == 0
    assert b"datagrams/s" in seen and b"Gbit/s" in seen and b"seq gaps 0" in seen
    assert out.startswith("received 0 datagrams")


@pytest.mark.parametrize(
    "args",
    [
        ["127.0.0.1:99999"],
        ["a:b:c"],
        ["0", "--count", "0"],
        ["0", "--duration", "-1"],
        ["0", "--rcvbuf", "lots"],
        ["0", "--on-full", "wait"],
        ["0", "--slot-size", "4", "--seq"],
        ["10.255.255.1:9"],
        ["0", "--backend", "java"],
    ],
)
def test_bad_input_exits_2_with_a_one_line_message(args):
    child = start_recv(*args)
    status, out, err = finish(child)
    assert status == 2
    assert out == ""
    lines = [line for line in err.splitlines() if not line.startswith((" ", "usage:"))]
    assert len(lines) == 1 and lines[0].startswith("fastnet recv: error:"), err


def test_busy_port_exits_2(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as taken:
        taken.bind(("127.0.0.1", 0))
        status, out, err = finish(start_recv(str(taken.getsockname()[1])))
    assert status == 2
    assert err.strip().count("\n") == 0 and "Address already in use" in err


@pytest.mark.parametrize(
    "text,value",
    [("4096", 4096), ("64K", 64 << 10), ("8M", 8 << 20), ("1G", 1 << 30), ("8MiB", 8 << 20), ("2kb", 2048)],
)
def test_byte_sizes(text, value):
    assert byte_size(text) == value
