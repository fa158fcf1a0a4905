"""``fastnet bench --proto tcp``: the UDP report's tables and JSON, for framed messages."""

import json
import math
import subprocess
import sys

import pytest

import fastnet
from fastnet._bench import tcp as bench_tcp
from fastnet._bench.report import ROW_KEYS
from fastnet._bench.runner import Outcome
from fastnet.cli import main

NONE_ON_TCP = {"kernel_drops", "rcvbuf", "ref_backend", "ref_fraction", "send_ref_fraction"}


def bench(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "fastnet", "bench", "--proto", "tcp", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check_tcp_row(row, compared=True):
    """A measured TCP row; ``compared``: the run had a python row to compare with."""
    assert set(row) == set(ROW_KEYS)
    assert row["proto"] == "tcp" and row["status"] == "ok", row
    assert row["sender"] == row["receiver"] == row["backend"]
    for key in NONE_ON_TCP:
        assert row[key] is None, key
    assert row["sent"] > 0 and row["received"] == row["sent"] and row["lost"] == 0
    assert row["loss_pct"] == 0.0
    assert math.isclose(row["gbit_s"], row["recv_pps"] * row["size"] * 8 / 1e9, rel_tol=1e-9)
    assert math.isclose(row["send_gbit_s"], row["send_pps"] * row["size"] * 8 / 1e9, rel_tol=1e-9)
    assert math.isclose(row["recv_pps"], row["received"] / row["recv_window_s"], rel_tol=1e-9)
    assert row["send_cpu_us"] > 0 and row["recv_cpu_us"] > 0
    for key in ("send_pps", "recv_pps", "send_wall_s", "recv_window_s", "send_cpu_s", "recv_cpu_s") + (
        ("speedup", "send_speedup") if compared else ()
    ):
        assert isinstance(row[key], float) and row[key] > 0, key
    if not compared:
        assert row["speedup"] is None and row["send_speedup"] is None


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One real ``fastnet bench --proto tcp --quick --json FILE``."""
    path = tmp_path_factory.mktemp("bench-tcp") / "quick.json"
    done = bench("--quick", "--json", str(path))
    assert done.returncode == 0, done.stderr
    return done, json.loads(path.read_text())


def test_quick_run_gives_complete_rows_for_every_engine_and_size(quick):
    _, doc = quick
    assert set(doc) == {"machine", "settings", "results"}
    assert doc["settings"]["proto"] == "tcp"
    assert doc["settings"]["sizes"] == [64, 1024, 65536]
    engines = fastnet.available_backends()
    rows = doc["results"]
    assert [(row["size"], row["backend"]) for row in rows] == [
        (size, backend) for size in (64, 1024, 65536) for backend in bench_tcp.BACKENDS
    ]
    for row in rows:
        if row["backend"] not in engines:  # an engine not built here: said so, not measured
            assert row["status"] == "skipped" and row["note"] and row["sent"] is None
            continue
        check_tcp_row(row, compared="python" in engines)
        if row["backend"] == "python":
            assert row["speedup"] == 1.0


def test_quick_run_prints_the_two_tables_in_frames(quick):
    done, _ = quick
    assert "TCP" in done.stdout.splitlines()[0]
    assert "Receiver side: how fast each receiver took frames in" in done.stdout
    assert "Sender side: how fast each sender put frames out" in done.stdout
    assert "CPU us/frame" in done.stdout and "vs ref" not in done.stdout


def test_short_run_on_each_backend(backend, tmp_path):
    path = tmp_path / "report.json"
    done = bench("--backends", backend, "--sizes", "100,5000", "--duration", "0.2", "--json", str(path))
    assert done.returncode == 0, done.stderr
    rows = json.loads(path.read_text())["results"]
    assert [(row["backend"], row["size"]) for row in rows] == [(backend, 100), (backend, 5000)]
    for row in rows:
        check_tcp_row(row, compared=backend == "python")


def test_a_row_that_cannot_run_or_fails_says_why(monkeypatch):
    def unavailable(name):
        raise ImportError(f"the {name} engine is not built here")

    monkeypatch.setattr(fastnet.engines, "load", unavailable)
    [skipped] = bench_tcp.run_rows(["cython"], [64], 0.1)
    assert skipped["status"] == "skipped" and "not built" in skipped["note"]
    assert skipped["proto"] == "tcp" and skipped["sent"] is None
    monkeypatch.undo()

    def broken(job, duration):
        return Outcome(job, status="failed", note="a benchmark worker failed")

    monkeypatch.setattr("fastnet._bench.tcp_run.measure", broken)
    [failed] = bench_tcp.run_rows(["python"], [64], 0.1, repeats=2)
    assert failed["status"] == "failed" and failed["note"] == "round 1 of 2: a benchmark worker failed"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--backends", "reference"], "fastnet engines"),
        (["--backends", "python,asyncio"], "not asyncio"),
        (["--sender", "python"], "--proto udp only"),
        (["--receiver", "cython"], "--proto udp only"),
        (["--sizes", str(2**24 + 1)], "longest frame"),
        (["--proto", "sctp"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--proto", "tcp", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("fastnet bench: error:"), err
    assert message in err


def test_udp_keeps_its_size_limit(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--sizes", "65536"])  # the TCP default, too long for a datagram
    assert info.value.code == 2
    assert "largest UDP payload" in capsys.readouterr().err
