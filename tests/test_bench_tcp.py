"""The TCP benchmark runs end to end and returns rows shaped like the UDP benchmark's."""

import os
import subprocess
import sys

import pytest

import fastnet
from fastnet._bench.tcp_run import format_table, run_tcp_bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {
    "backend",
    "size",
    "sent",
    "received",
    "loss_pct",
    "send_pps",
    "recv_pps",
    "gbit_s",
    "send_cpu_us",
    "recv_cpu_us",
}


def test_rows_for_every_backend_and_size():
    lines = []
    rows = run_tcp_bench(None, [64, 1024], 0.2, progress=lines.append)
    backends = fastnet.available_backends()
    assert [(row["backend"], row["size"]) for row in rows] == [
        (name, size) for name in backends for size in (64, 1024)
    ]
    assert len(lines) == len(rows)
    for row in rows:
        assert set(row) == KEYS
        assert row["sent"] > 0 and row["received"] == row["sent"]  # TCP loses nothing
        assert row["loss_pct"] == 0
        assert row["send_pps"] > 0 and row["recv_pps"] > 0 and row["gbit_s"] > 0
        assert row["send_cpu_us"] > 0 and row["recv_cpu_us"] > 0
    table = format_table(rows)
    assert "Gbit/s" in table and len(table.splitlines()) == len(rows) + 1


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"backends": ["rust"]}, ValueError),
        ({"sizes": [-1]}, ValueError),
        ({"duration": 0}, ValueError),
        ({"duration": float("nan")}, ValueError),
    ],
)
def test_bad_arguments_fail_before_measuring(kwargs, error):
    args = {"backends": None, "sizes": [64], "duration": 0.1, **kwargs}
    with pytest.raises(error):
        run_tcp_bench(**args)


def test_standalone_entry_point_prints_a_table():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastnet._bench.tcp_run",
            "--duration",
            "0.2",
            "--sizes",
            "64",
            "--backends",
            "python",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.strip().splitlines()
    assert header.split()[:2] == ["backend", "size"]
    assert row.split()[:2] == ["python", "64"]
    result = subprocess.run(
        [sys.executable, "-m", "fastnet._bench.tcp_run", "--sizes", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "sizes" in result.stderr
