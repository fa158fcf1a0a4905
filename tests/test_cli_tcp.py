"""``fastnet recv --tcp`` and ``fastnet send --tcp``: framed batches on the command line."""

import json
import signal
import socket as stdsocket
import time

import numpy as np
import pytest
from cli_helpers import bound_address, bound_port, finish, one_error_line, start_fastnet, start_recv
from helpers import HANG_S
from tcp_helpers import encode


def send_tcp(port, *args, host="127.0.0.1"):
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return start_fastnet("send", "--tcp", where, *args)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_frames_sent_are_the_frames_received(backend, host):
    receiver = start_recv(
        "--tcp",
        f"[{host}]:0" if ":" in host else f"{host}:0",
        "--seq",
        "--json",
        "--backend",
        backend,
        "--batch-size",
        "64",
    )
    got_host, port = bound_address(receiver)
    assert got_host == host
    status, out, err = finish(
        send_tcp(port, "--count", "5000", "--size", "300", "--json", "--backend", backend, host=host)
    )
    assert status == 0, err
    sent = json.loads(out)
    assert sent["sent"] == 5000 and sent["bytes"] == 5000 * 300 and sent["proto"] == "tcp"
    status, out, err = finish(receiver)
    assert status == 0, err  # the sender closed at a frame boundary: a clean end
    report = json.loads(out)
    assert report["proto"] == "tcp" and report["backend"] == backend
    assert report["packets"] == 5000 and report["bytes"] == 5000 * 300
    assert report["truncated"] == 0
    assert report["seq_lost"] == report["seq_gaps"] == report["seq_duplicates"] == 0
    assert report["seq_reordered"] == 0
    assert report["peer"][0] == host and report["interrupted"] is False


def test_framing_flags_both_ends(backend):
    receiver = start_recv(
        "--tcp",
        "127.0.0.1:0",
        "--prefix-size",
        "2",
        "--byteorder",
        "little",
        "--max-frame",
        "1K",
        "--json",
        "--backend",
        backend,
    )
    port = bound_port(receiver)
    status, _, err = finish(
        send_tcp(
            port,
            "--count",
            "100",
            "--size",
            "1000",
            "--prefix-size",
            "2",
            "--byteorder",
            "little",
            "--max-frame",
            "1K",
            "--backend",
            backend,
        )
    )
    assert status == 0, err
    status, out, err = finish(receiver)
    assert status == 0, err
    assert json.loads(out)["packets"] == 100


def test_paced_sending_and_text_summaries(backend):
    receiver = start_recv("--tcp", "127.0.0.1:0", "--backend", backend)
    port = bound_port(receiver)
    status, out, err = finish(send_tcp(port, "--count", "40", "--pps", "400", "--backend", backend))
    assert status == 0, err
    assert out.startswith("sent 40 frames (2560 payload bytes) to 127.0.0.1:") and "TCP" in out
    status, out, err = finish(receiver)
    assert status == 0, err
    assert out.startswith("received 40 frames (2,560 bytes")
    assert "dropped" not in out  # nothing is dropped on a stream


def test_duration_and_rate(backend):
    receiver = start_recv("--tcp", "127.0.0.1:0", "--json", "--seq", "--backend", backend)
    port = bound_port(receiver)
    # No --count: only --duration can end it (finish() fails a run that hangs).
    status, out, err = finish(
        send_tcp(port, "--duration", "0.3", "--rate", "1M", "--json", "--backend", backend), timeout=HANG_S
    )
    assert status == 0, err
    summary = json.loads(out)
    sent = summary["sent"]
    assert sent > 0 and summary["interrupted"] is False
    # The rate reached the pacing: 1 Mbit/s of 64-byte frames is 1953 frames/s,
    # handed over 10 ms of it (19 frames) per send_frames call; unpaced, 1024.
    assert summary["calls"] >= sent / 19
    status, out, err = finish(receiver)
    assert status == 0, err
    report = json.loads(out)
    assert report["packets"] == sent and report["seq_lost"] == report["seq_gaps"] == 0


def test_frames_are_recorded_to_npy(backend, tmp_path):
    path = tmp_path / "frames.npy"
    receiver = start_recv(
        "--tcp", "127.0.0.1:0", "--out", str(path), "--json", "--slot-size", "256", "--backend", backend
    )
    port = bound_port(receiver)
    status, _, err = finish(send_tcp(port, "--count", "3000", "--size", "200", "--backend", backend))
    assert status == 0, err
    status, out, err = finish(receiver)
    assert status == 0, err
    report = json.loads(out)
    assert report["recorded"] == report["packets"] == 3000 and report["capture_dropped"] == 0
    records = np.load(path)
    assert (records["length"] == 200).all()
    numbers = records["payload"][:, :8].copy().view(">u8").ravel()
    assert numbers.tolist() == list(range(3000))


def test_count_stops_the_receiver_early(backend):
    receiver = start_recv(
        "--tcp", "127.0.0.1:0", "--count", "10", "--json", "--backend", backend, "--batch-size", "4"
    )
    port = bound_port(receiver)
    with stdsocket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(encode([i.to_bytes(8, "big") for i in range(12)]))
        status, out, err = finish(receiver)
    assert status == 0, err
    assert json.loads(out)["packets"] >= 10


def stream_error(err):
    """The one error line after 'connection from ...' (bound_port read 'receiving on')."""
    lines = err.splitlines()
    assert lines[0].startswith("connection from "), err
    return one_error_line("\n".join(lines[1:]))


def raw_peer_sends(port, data):
    with stdsocket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(data)


def test_a_frame_cut_by_the_peer_exits_1_saying_how_much_was_lost(backend):
    receiver = start_recv("--tcp", "127.0.0.1:0", "--json", "--backend", backend)
    port = bound_port(receiver)
    raw_peer_sends(port, encode([b"a" * 10, b"b" * 20]) + (100).to_bytes(4, "big") + b"c" * 30)
    status, out, err = finish(receiver)
    assert status == 1
    assert json.loads(out)["packets"] == 2  # the whole frames still count
    line = stream_error(err)
    assert "middle of a frame" in line and "34 bytes" in line  # prefix + 30 bytes


def test_a_prefix_over_max_frame_exits_1(backend):
    receiver = start_recv("--tcp", "127.0.0.1:0", "--backend", backend)
    port = bound_port(receiver)
    raw_peer_sends(port, (1 << 30).to_bytes(4, "big"))
    status, out, err = finish(receiver)
    assert status == 1 and out.startswith("received 0 frames")
    assert "--max-frame" in stream_error(err)


def test_a_frame_over_the_slot_exits_1_or_is_truncated(backend):
    receiver = start_recv("--tcp", "127.0.0.1:0", "--slot-size", "16", "--backend", backend)
    port = bound_port(receiver)
    raw_peer_sends(port, encode([b"x" * 8, b"y" * 100]))
    status, out, err = finish(receiver)
    assert status == 1 and out.startswith("received 1 frames")
    line = stream_error(err)
    assert "--slot-size" in line and "--truncate" in line

    receiver = start_recv(
        "--tcp", "127.0.0.1:0", "--slot-size", "16", "--truncate", "--json", "--backend", backend
    )
    port = bound_port(receiver)
    raw_peer_sends(port, encode([b"x" * 8, b"y" * 100, b"z" * 4]))
    status, out, err = finish(receiver)
    assert status == 0, err
    report = json.loads(out)
    assert report["packets"] == 3 and report["truncated"] == 1
    assert report["bytes"] == 8 + 16 + 4


def test_mismatched_framing_is_a_broken_stream(backend):
    receiver = start_recv("--tcp", "127.0.0.1:0", "--backend", backend)  # 4 bytes, big
    port = bound_port(receiver)
    status, _, err = finish(
        send_tcp(port, "--count", "10", "--prefix-size", "8", "--byteorder", "little", "--backend", backend)
    )
    status, out, err = finish(receiver)
    assert status == 1
    assert "over --max-frame" in err


def test_ctrl_c_on_the_sender_ends_on_a_frame_boundary(backend):
    # The peer is a plain socket here, so the test sees the bytes as they come.
    frame = 4 + 1000
    chunk = 200  # frames per send_frames call at 20000/s: 10 ms of them
    with stdsocket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(HANG_S)
        sender = send_tcp(
            listener.getsockname()[1],
            "--duration",
            "600",
            "--size",
            "1000",
            "--pps",
            "20000",
            "--json",
            "--backend",
            backend,
        )
        deadline = time.monotonic() + HANG_S
        stream = b""
        try:
            conn, _ = listener.accept()
        except BaseException:
            sender.kill()
            raise
        with conn:
            conn.settimeout(HANG_S)
            try:
                # Past the first call's frames: that call has returned and counted
                # them, wherever Ctrl-C lands now.
                while len(stream) <= chunk * frame:
                    assert time.monotonic() < deadline, "the sender did not send"
                    data = conn.recv(1 << 16)
                    assert data, "the sender closed before Ctrl-C"
                    stream += data
            finally:
                sender.send_signal(signal.SIGINT)
            while data:  # to the end of the stream
                assert time.monotonic() < deadline, "the sender did not stop"
                data = conn.recv(1 << 16)
                stream += data
    status, out, err = finish(sender)
    assert status == 130, err
    sent = json.loads(out)
    assert sent["interrupted"] is True and sent["sent"] >= chunk
    # Whole frames only, numbered in order; exactly the frames it counts went
    # out (Ctrl-C during a write is held until the write is counted).
    assert len(stream) % frame == 0
    got = len(stream) // frame
    frames = np.frombuffer(stream, np.uint8).reshape(got, frame)
    assert (frames[:, :4].copy().view(">u4").ravel() == 1000).all()
    assert frames[:, 4:12].copy().view(">u8").ravel().tolist() == list(range(got))
    assert sent["sent"] == got


def test_ctrl_c_while_waiting_for_a_connection(backend):
    receiver = start_recv("--tcp", "127.0.0.1:0", "--json", "--backend", backend)
    bound_port(receiver)
    # Only so that Ctrl-C most often finds it in the wait: the line above is
    # printed inside the part that turns Ctrl-C into a summary, so the
    # outcome is the same whenever the signal lands.
    time.sleep(0.3)
    receiver.send_signal(signal.SIGINT)
    status, out, err = finish(receiver)
    assert status == 130, err
    report = json.loads(out)
    assert report["packets"] == 0 and report["peer"] is None and report["interrupted"]


def test_duration_without_a_connection(backend):
    status, out, err = finish(start_recv("--tcp", "127.0.0.1:0", "--duration", "0.3", "--backend", backend))
    assert status == 0, err
    assert out.startswith("received 0 frames")


def test_nothing_listening_exits_1(backend):
    with stdsocket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        status, out, err = finish(send_tcp(port, "--backend", backend))
    assert status == 1 and out == ""
    assert "connection refused" in one_error_line(err, "send")


@pytest.mark.parametrize(
    "command,args,message",
    [
        ("recv", ["0", "--prefix-size", "2"], "--prefix-size apply to --tcp only"),
        ("recv", ["0", "--truncate"], "--truncate apply to --tcp only"),
        ("send", ["--max-frame", "1K"], "--max-frame apply to --tcp only"),
        ("send", ["--byteorder", "little", "--count", "1"], "--byteorder apply to --tcp only"),
        ("recv", ["--tcp", "0", "--workers", "2"], "--workers do not apply to --tcp"),
        ("recv", ["--tcp", "0", "--on-full", "drop", "--rcvbuf", "1M"], "--on-full, --rcvbuf"),
        ("recv", ["--tcp", "0", "--out", "x.pcap"], ".npy only"),
        ("recv", ["--tcp", "0", "--prefix-size", "3"], "invalid choice"),
        ("recv", ["--tcp", "0", "--seq", "--slot-size", "4"], "--seq needs 8 bytes"),
        ("send", ["--tcp", "--gso"], "--gso do not apply to --tcp"),
        ("send", ["--tcp", "--replay", "x.pcap"], "--replay do not apply"),
        ("send", ["--tcp", "--size", "70000", "--prefix-size", "2"], "longer than a frame"),
        ("send", ["--tcp", "--size", "4"], "too small"),
    ],
)
def test_bad_combinations_exit_2(tmp_path, command, args, message):
    status, out, err = finish(start_fastnet(command, *args, cwd=tmp_path))
    assert status == 2 and out == ""
    assert message in one_error_line(err, command)
    assert list(tmp_path.iterdir()) == []
