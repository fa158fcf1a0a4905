"""``fastnet recv --out`` and ``fastnet send --replay``: the README's two commands, end to end."""

import contextlib
import json
import signal
import socket

import numpy as np
import pytest
from cli_helpers import bound_port, finish, one_error_line, start_fastnet, start_recv
from helpers import numbers_in, send_numbered, wait_until_read
from netns import netns_available, private_netns, skip_without_netns

import fastnet
from fastnet.cli import build_parser


def numbers_in_file(path):
    with fastnet.read_capture(path) as reader:
        return [number for batch in reader for number in numbers_in(batch)]


def test_recv_and_send_default_to_the_same_loopback_address():
    parser = build_parser()
    recv, send = parser.parse_args(["recv"]), parser.parse_args(["send"])
    assert recv.address == send.address == ("127.0.0.1", 7788)


@pytest.mark.parametrize("suffix", [".pcap", ".npy"])
def test_record_then_replay_gives_the_same_datagrams(backend, tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    # fastnet recv HOST:PORT --out run.pcap
    recorder = start_recv(
        "127.0.0.1:0",
        "--out",
        str(path),
        "--count",
        "500",
        "--json",
        "--rcvbuf",
        "4M",
        "--backend",
        backend,
        cwd=tmp_path,
    )
    port = bound_port(recorder)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
        send_numbered(tx, ("127.0.0.1", port), 0, 500, size=200)
    status, out, err = finish(recorder)
    assert status == 0, err
    report = json.loads(out)
    assert report["packets"] == report["recorded"] == 500
    assert report["capture_dropped"] == 0 and report["out"] == str(path)
    assert numbers_in_file(path) == list(range(500))

    # fastnet send HOST:PORT --replay run.pcap, into a second receiver
    again = start_recv(
        "127.0.0.1:0", "--count", "500", "--json", "--seq", "--rcvbuf", "4M", "--backend", backend
    )
    port = bound_port(again)
    replay = start_fastnet(
        "send", f"127.0.0.1:{port}", "--replay", str(path), "--speed", "max", "--backend", backend, "--json"
    )
    status, out, err = finish(replay)
    assert status == 0, err
    assert json.loads(out)["sent"] == 500
    status, out, err = finish(again)
    assert status == 0, err
    report = json.loads(out)
    assert report["packets"] == 500 and report["bytes"] == 500 * 200
    assert report["seq_lost"] == report["seq_reordered"] == report["seq_duplicates"] == 0
    assert report["recorded"] is None  # not recording: no recording counters


@contextlib.contextmanager
def port_7788_of_our_own(tag):
    """A command prefix under which 127.0.0.1:7788 is ours: a private network
    namespace where possible, else the host's port if it is free."""
    if netns_available():
        with private_netns(tag) as namespace:
            yield namespace.argv()
        return
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 7788))
    except OSError:
        skip_without_netns("127.0.0.1:7788 is in use and no private network namespace can be made")
    yield ()


def test_the_readme_commands_as_written(backend, tmp_path):
    # The README's exact words, on the default address 127.0.0.1:7788; a
    # --count ends the recording (Ctrl-C is tested below).
    with port_7788_of_our_own(f"readme-{backend}") as prefix:
        recorder = start_recv(
            "127.0.0.1:7788",
            "--out",
            "run.pcap",
            "--count",
            "50",
            "--backend",
            backend,
            cwd=tmp_path,
            prefix=prefix,
        )
        assert bound_port(recorder) == 7788
        status, out, err = finish(start_fastnet("send", "--count", "50", "--backend", backend, prefix=prefix))
        assert status == 0, err
        status, out, err = finish(recorder)
        assert status == 0, err
        assert "recorded 50 datagrams to run.pcap; capture dropped 0" in out
        again = start_recv("--count", "50", "--json", "--seq", "--backend", backend, prefix=prefix)
        assert bound_port(again) == 7788
        replay = start_fastnet(
            "send",
            "127.0.0.1:7788",
            "--replay",
            "run.pcap",
            "--backend",
            backend,
            cwd=tmp_path,
            prefix=prefix,
        )
        status, out, err = finish(replay)
        assert status == 0, err
        assert out.startswith("sent 50 datagrams") and "replayed from run.pcap" in out
        status, out, err = finish(again)
    assert status == 0, err
    assert json.loads(out)["packets"] == 50


def test_ctrl_c_leaves_a_complete_file(backend, tmp_path):
    path = tmp_path / "run.npy"
    child = start_recv("127.0.0.1:0", "--out", str(path), "--json", "--backend", backend)
    port = bound_port(child)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as tx:
        send_numbered(tx, ("127.0.0.1", port), 0, 30)
    wait_until_read(port)  # its capture thread has taken the 30 from the socket
    child.send_signal(signal.SIGINT)
    status, out, err = finish(child)
    assert status == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True and report["recorded"] == report["packets"] == 30
    records = np.load(path)
    assert len(records) == 30 and (records["length"] == 64).all()
    assert (records["timestamp"] > 0).all()


@pytest.mark.parametrize("name", ["run.txt", "run", "run.pcapng"])
def test_unknown_suffix_exits_2_before_any_file(tmp_path, name):
    status, out, err = finish(start_recv("127.0.0.1:0", "--out", name, cwd=tmp_path))
    assert status == 2 and out == ""
    assert ".pcap or .npy" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_cannot_be_created_exits_2(tmp_path):
    missing = tmp_path / "no-such-dir" / "run.pcap"
    status, out, err = finish(start_recv("127.0.0.1:0", "--out", str(missing)))
    assert status == 2 and out == ""
    assert "No such file or directory" in one_error_line(err)
