"""The TCP benchmark's measurement: two worker processes per row, reports in the UDP peers' keys."""

import subprocess
import sys

import pytest

from fastnet._bench import tcp as bench_tcp
from fastnet._bench.runner import Job
from fastnet._bench.tcp_run import measure


def test_one_measurement_reports_what_the_udp_runner_reads(backend):
    outcome = measure(Job(backend, backend, backend, 1024), 0.2)
    assert outcome.status == "ok", outcome.note
    assert set(outcome.sender) == {"sent", "wall_s", "cpu_s"}
    assert set(outcome.receiver) == {"received", "first_count", "window_s", "cpu_s", "rcvbuf"}
    assert outcome.sender["sent"] > 0 and outcome.receiver["received"] == outcome.sender["sent"]
    assert outcome.kernel_drops == 0 and outcome.queued_bytes == 0  # TCP loses nothing


def test_a_worker_that_fails_is_a_failed_outcome():
    outcome = measure(Job("no-such-engine", "x", "x", 64), 0.1)
    assert outcome.status == "failed" and "receiver" in outcome.note


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backends": ["rust"]},
        {"sizes": [-1]},
        {"sizes": [bench_tcp.MAX_SIZE + 1]},
        {"duration": 0},
        {"duration": float("nan")},
    ],
)
def test_bad_arguments_fail_before_measuring(kwargs):
    args = {"backends": ["python"], "sizes": [64], "duration": 0.1, **kwargs}
    with pytest.raises(ValueError):
        bench_tcp.run_rows(**args)


def test_the_worker_entry_point_says_where_the_benchmark_is():
    result = subprocess.run(
        [sys.executable, "-m", "fastnet._bench.tcp_run", "--quick"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "fastnet bench --proto tcp" in result.stderr
