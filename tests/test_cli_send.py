"""``fastnet send``: numbered payloads, summaries, replay, Ctrl-C, and bad input."""

import argparse
import inspect
import json
import signal
import socket as stdsocket

import numpy as np
import pytest
from cli_helpers import finish, start_fastnet
from helpers import HANG_S, receive_exactly

import fastnet
from fastnet.cli import main
from fastnet.cli._args import bit_rate


def _where(sock):
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def test_default_payload_is_a_big_endian_sequence_number(pair, capsys):
    receiver, _ = pair
    code = main(
        ["send", _where(receiver), "--count", "300", "--size", "100", "--backend", receiver.backend, "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sent"] == 300 and summary["bytes"] == 30000
    assert summary["backend"] == receiver.backend and summary["interrupted"] is False
    payloads = receive_exactly(receiver, 300, 128, family=receiver.family)[0]
    assert all(len(p) == 100 for p in payloads)
    rows = np.frombuffer(b"".join(payloads), np.uint8).reshape(300, 100)
    assert rows[:, :8].copy().view(">u8").ravel().tolist() == list(range(300))
    assert not rows[:, 8:].any()


def test_text_summary_and_pacing_options(pair, capsys):
    receiver, _ = pair
    assert (
        main(
            [
                "send",
                _where(receiver),
                "--count",
                "40",
                "--pps",
                "2000",
                "--burst",
                "4",
                "--backend",
                receiver.backend,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.strip()
    assert out.startswith("sent 40 datagrams (2560 payload bytes) to ")
    assert "\n" not in out
    assert len(receive_exactly(receiver, 40, 64, family=receiver.family)[0]) == 40


def test_duration_stops_sending(pair):
    receiver, _ = pair
    # No --count: only --duration can end it (finish() fails a run that hangs).
    status, out, err = finish(
        start_fastnet(
            "send",
            _where(receiver),
            "--duration",
            "0.3",
            "--rate",
            "1M",
            "--backend",
            receiver.backend,
            "--json",
        ),
        timeout=HANG_S,
    )
    assert status == 0, err
    summary = json.loads(out)
    assert summary["interrupted"] is False and summary["error"] is None
    sent = summary["sent"]
    assert sent > 0 and summary["bytes"] == 64 * sent
    # The rate reached the pacing: 1 Mbit/s of 64 B is 1953 datagrams/s, sent
    # 1 ms of it (2 datagrams) per system call; unpaced it would be 1024.
    assert summary["calls"] >= sent / 2
    # Every datagram it counted arrived, numbered in order; nothing more did.
    payloads = receive_exactly(receiver, sent, 128, family=receiver.family)[0]
    assert [int.from_bytes(p[:8], "big") for p in payloads] == list(range(sent))
    with pytest.raises(BlockingIOError):
        receiver.recv_batch(fastnet.Batch(1, 128, family=receiver.family), timeout=0)


def test_replay_end_to_end(pair, tmp_path, capsys):
    receiver, _ = pair
    path = tmp_path / "run.pcap"
    batch = fastnet.Batch.from_payloads([b"p%d" % i for i in range(25)])
    with fastnet.open_recorder(path, local_address=("127.0.0.1", 9)) as recorder:
        recorder(batch)
    assert (
        main(
            [
                "send",
                _where(receiver),
                "--replay",
                str(path),
                "--speed",
                "max",
                "--backend",
                receiver.backend,
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["sent"] == 25 and summary["replay"] == str(path) and summary["speed"] == "max"
    got = receive_exactly(receiver, 25, 16, family=receiver.family)[0]
    assert got == [b"p%d" % i for i in range(25)]


def test_ctrl_c_stops_with_the_summary(backend):
    with stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(HANG_S)
        child = start_fastnet(
            "send", _where(sink), "--pps", "200", "--duration", "600", "--backend", backend, "--json"
        )
        try:
            # Sending has begun once two datagrams are in: the first is counted
            # (the second was sent after it), wherever Ctrl-C lands now.
            sink.recv(64)
            sink.recv(64)
        finally:
            child.send_signal(signal.SIGINT)
        status, out, err = finish(child)
        sink.setblocking(False)
        arrived = 2
        while True:
            try:
                sink.recv(64)
            except BlockingIOError:
                break
            arrived += 1
    assert status == 130, err
    summary = json.loads(out)
    assert summary["interrupted"] is True and summary["sent"] >= 1
    assert summary["sent"] <= arrived  # what it counts, it sent
    assert "Traceback" not in err


BAD = [
    (["send", "1.2.3.4:x"], "malformed address"),
    (["send", "::1:9"], "malformed address"),
    (["send", "--pps", "-5"], "greater than 0"),
    (["send", "--rate=-400M"], "greater than 0"),
    (["send", "--rate", "fast"], "not a rate"),
    (["send", "--size", "65508"], "65507"),
    (["send", "[::1]:9", "--size", "65528"], "65527"),
    (["send", "--size", "4"], "at least 8"),
    (["send", "--count", "0"], "greater than 0"),
    (["send", "--pps", "10", "--rate", "1M"], "not allowed with"),
    (["send", "--speed", "2"], "--replay only"),
    (["send", "--replay", "{tmp}/notes.txt"], "unknown capture format"),
    (["send", "--replay", "{tmp}/absent.pcap"], "No such file"),
    (["send", "--replay", "{tmp}/run.pcap", "--size", "100"], "does not apply"),
    (["send", "--replay", "{tmp}/run.pcap", "--speed", "0"], "greater than 0"),
    (["send", "--replay", "{tmp}/run.pcap", "--speed", "fast"], "not a number"),
    (["send", "--interface", "no-such-if0", "239.1.1.1:9"], "no network interface"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_input_exits_2_with_a_one_line_message(tmp_path, capsys, argv, message):
    (tmp_path / "notes.txt").write_text("not a capture\n")
    fastnet.open_recorder(tmp_path / "run.pcap").close()
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert err[-1].startswith("fastnet send: error:")


def test_gso_flag_sends_with_gso(pair, capsys):
    # This fastnet's socket.send_batch has the gso option on every engine, so
    # --gso is accepted (it is refused only where the socket has no such option).
    assert "gso" in inspect.signature(fastnet.socket.send_batch).parameters
    receiver, _ = pair
    assert (
        main(["send", _where(receiver), "--count", "3", "--gso", "--json", "--backend", receiver.backend])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["sent"] == 3
    payloads = receive_exactly(receiver, 3, 128, family=receiver.family)[0]
    assert [int.from_bytes(p[:8], "big") for p in payloads] == [0, 1, 2]


@pytest.mark.parametrize(
    "text,value",
    [("400M", 400e6), ("1.5G", 1.5e9), ("10k", 1e4), ("1000", 1000.0), ("2Gbit", 2e9), ("5Mbps", 5e6)],
)
def test_bit_rate_accepts(text, value):
    assert bit_rate(text) == value


@pytest.mark.parametrize("text", ["0", "-1M", "M", "5X", "inf", "nanG", ""])
def test_bit_rate_rejects_with_one_line(text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        bit_rate(text)
    assert "\n" not in str(info.value)
