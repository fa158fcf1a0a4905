"""``fastnet send``: numbered payloads, summaries, replay, Ctrl-C, and bad input."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastnet
from fastnet.cli import main
from fastnet.cli._args import bit_rate
from helpers import receive_exactly

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _where(sock):
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def test_default_payload_is_a_big_endian_sequence_number(pair, capsys):
    receiver, _ = pair
    code = main(["send", _where(receiver), "--count", "300", "--size", "100",
                 "--backend", receiver.backend, "--json"])
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
    assert main(["send", _where(receiver), "--count", "40", "--pps", "2000", "--burst", "4",
                 "--backend", receiver.backend]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("sent 40 datagrams (2560 payload bytes) to ")
    assert "\n" not in out
    assert len(receive_exactly(receiver, 40, 64, family=receiver.family)[0]) == 40


def test_duration_stops_sending(pair, capsys):
    receiver, _ = pair
    started = time.monotonic()
    assert main(["send", _where(receiver), "--duration", "0.3", "--rate", "1M",
                 "--backend", receiver.backend, "--json"]) == 0
    assert time.monotonic() - started < 5
    summary = json.loads(capsys.readouterr().out)
    assert 0 < summary["sent"] < 5000            # 1 Mbit/s of 64 B: ~1950/s


def test_replay_end_to_end(pair, tmp_path, capsys):
    receiver, _ = pair
    path = tmp_path / "run.pcap"
    batch = fastnet.Batch.from_payloads([b"p%d" % i for i in range(25)])
    with fastnet.open_recorder(path, local_address=("127.0.0.1", 9)) as recorder:
        recorder(batch)
    assert main(["send", _where(receiver), "--replay", str(path), "--speed", "max",
                 "--backend", receiver.backend, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sent"] == 25 and summary["replay"] == str(path) and summary["speed"] == "max"
    got = receive_exactly(receiver, 25, 16, family=receiver.family)[0]
    assert got == [b"p%d" % i for i in range(25)]


def test_ctrl_c_stops_with_the_summary(backend):
    child = subprocess.Popen(
        [sys.executable, "-m", "fastnet", "send", "127.0.0.1:9", "--pps", "200",
         "--duration", "30", "--backend", backend, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
    finally:
        child.kill()
    assert child.returncode == 130, err
    summary = json.loads(out)
    assert summary["interrupted"] is True and summary["sent"] > 0
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


def test_gso_flag_works_or_is_refused_cleanly(capsys):
    import inspect
    code = main(["send", "127.0.0.1:9", "--count", "3", "--gso"])
    if "gso" in inspect.signature(fastnet.socket.send_batch).parameters:
        assert code == 0
    else:
        assert code == 2
        assert "gso" in capsys.readouterr().err


@pytest.mark.parametrize("text,value", [("400M", 400e6), ("1.5G", 1.5e9), ("10k", 1e4),
                                        ("1000", 1000.0), ("2Gbit", 2e9), ("5Mbps", 5e6)])
def test_bit_rate_accepts(text, value):
    assert bit_rate(text) == value


@pytest.mark.parametrize("text", ["0", "-1M", "M", "5X", "inf", "nanG", ""])
def test_bit_rate_rejects_with_one_line(text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        bit_rate(text)
    assert "\n" not in str(info.value)
