"""``fastnet bench`` end to end: real sender and receiver processes on 127.0.0.1.

Runs are short (``--quick`` once, otherwise a fraction of a second per row);
the tests check what the report says and that the counts add up, never how
fast anything was.
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import HANG_S, processes_in_group

import fastnet
from fastnet._bench import BACKENDS
from fastnet._bench.reference import find_compiler
from fastnet._bench.report import RATE_KEYS, RATIO_KEYS, REPEAT_KEYS, ROW_KEYS, build_rows, receive_rate
from fastnet._bench.runner import Job, Outcome
from fastnet.cli import main
from fastnet.cli.bench import QUICK_REPEATS, QUICK_SIZES

INT_KEYS = {"size", "sent", "received", "lost", "kernel_drops", "rcvbuf", "unread", "unaccounted", "rounds"}
STR_KEYS = {"proto", "backend", "sender", "receiver", "status", "note", "ref_backend"}
BOOL_KEYS = {"reconciled"} | {f"{key}_significant" for key in RATIO_KEYS}
FLOAT_KEYS = set(ROW_KEYS) - INT_KEYS - STR_KEYS - BOOL_KEYS - {"repeats"}
MEASURED = {
    "sent",
    "received",
    "lost",
    "unread",
    "unaccounted",
    "loss_pct",
    "send_pps",
    "recv_pps",
    "gbit_s",
    "send_gbit_s",
    "send_cpu_us",
    "recv_cpu_us",
    "send_wall_s",
    "recv_window_s",
    "send_cpu_s",
    "recv_cpu_s",
}
HAS_COMPILER = find_compiler() is not None
try:
    import uvloop  # noqa: F401

    HAS_UVLOOP = True
except ImportError:
    HAS_UVLOOP = False


def bench(*args, timeout=90):
    return subprocess.run(
        [sys.executable, "-m", "fastnet", "bench", *args], capture_output=True, text=True, timeout=timeout
    )


def must_measure(backend):
    """Backends that have no reason to be skipped on this machine."""
    if backend in ("python", "stdlib", "asyncio"):
        return True
    if backend == "uvloop":
        return HAS_UVLOOP
    if backend == "cython":
        return "cython" in fastnet.available_backends()
    if backend == "reference":
        return HAS_COMPILER
    return False  # GSO/GRO rows depend on the fastnet API and the kernel: checked apart


def check_row(row, rounds=None):
    assert set(row) == set(ROW_KEYS)
    for key in INT_KEYS:
        assert row[key] is None or (isinstance(row[key], int) and not isinstance(row[key], bool)), key
    for key in FLOAT_KEYS:
        assert row[key] is None or isinstance(row[key], float), key
    for key in STR_KEYS:
        assert isinstance(row[key], str), key
    for key in BOOL_KEYS:
        assert row[key] in (None, True, False), key
    assert row["status"] in ("ok", "skipped", "failed")
    assert row["proto"] == "udp"
    assert row["rounds"] == len(row["repeats"]) >= 1
    if rounds is not None:
        assert row["rounds"] == rounds
    for repeat in row["repeats"]:
        assert set(repeat) == set(REPEAT_KEYS)
    if row["status"] != "ok":
        assert row["note"], "a row that was not measured says why"
        assert all(row[key] is None for key in MEASURED)
        return
    assert all(row[key] is not None for key in MEASURED), row
    assert all(repeat["status"] == "ok" for repeat in row["repeats"])
    for key in RATE_KEYS + RATIO_KEYS:
        values = [repeat[key] for repeat in row["repeats"] if key in repeat]
        if row[key] is None:
            continue
        assert row[f"{key}_min"] <= row[key] <= row[f"{key}_max"], key
        if values:
            assert row[key] in values, key  # a median that one round measured
            assert (row[f"{key}_min"], row[f"{key}_max"]) == (min(values), max(values)), key
    # The counts are those of one round, and add up.
    assert row["reconciled"] is not False or "loopback backlog" in row["note"], row["note"]
    assert row["sent"] > 0
    assert 0 <= row["received"] <= row["sent"]
    assert row["lost"] == row["sent"] - row["received"]
    assert math.isclose(row["loss_pct"], 100 * row["lost"] / row["sent"], abs_tol=1e-9)
    assert math.isclose(row["gbit_s"], row["recv_pps"] * row["size"] * 8 / 1e9, rel_tol=1e-9)
    assert row["send_pps"] > 0 and row["send_cpu_us"] >= 0
    if row["kernel_drops"] is not None:
        # The kernel's count for the receiver's socket cannot exceed what was lost.
        assert 0 <= row["kernel_drops"] <= row["lost"]


def check_document(doc, backends, sizes, rounds=None):
    assert set(doc) >= {"machine", "results"}
    machine = doc["machine"]
    for key in ("cpu_model", "cores", "kernel", "python", "numpy", "fastnet", "backend"):
        assert key in machine, key
    assert machine["fastnet"] == fastnet.__version__
    assert machine["backend"] == fastnet.backend
    rows = doc["results"]
    assert sorted((row["backend"], row["size"]) for row in rows) == sorted(
        (backend, size) for backend in backends for size in sizes
    )
    for row in rows:
        check_row(row, rounds)
    return {(row["backend"], row["size"]): row for row in rows}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One real ``fastnet bench --quick --json FILE``, shared by the tests that read it."""
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    done = bench("--quick", "--json", str(path))
    assert done.returncode == 0, done.stderr
    return done, json.loads(path.read_text())


def test_quick_run_reports_every_backend_and_size(quick):
    _, doc = quick
    assert doc["settings"]["repeat"] == QUICK_REPEATS
    rows = check_document(doc, BACKENDS, QUICK_SIZES, rounds=QUICK_REPEATS)
    for (backend, _size), row in rows.items():
        if must_measure(backend):
            assert row["status"] == "ok", row
            assert row["sender"] == row["receiver"] == backend


def test_quick_run_measures_gso_where_the_kernel_has_it(quick):
    # What each -gso row must say follows from what this machine has, found
    # without the bench's own probe (a probe that failed for a bad reason
    # would otherwise turn into an accepted "skipped"): the kernel's GSO/GRO
    # (fastnet.features(), held to FASTNET_EXPECT_FEATURES in CI), the cython
    # engine (FASTNET_EXPECT_BACKENDS), a C compiler.
    found = fastnet.features()
    if not (found["gso"] and found["gro"]):
        pytest.skip("kernel without UDP GSO/GRO")
    _, doc = quick
    rows = [row for row in doc["results"] if row["backend"].endswith("-gso")]
    assert sorted(row["backend"] for row in rows) == sorted(
        [backend for backend in BACKENDS if backend.endswith("-gso")] * len(QUICK_SIZES)
    )
    for row in rows:
        if row["backend"] == "cython-gso" and "cython" not in fastnet.available_backends():
            assert row["status"] == "skipped", row
            assert row["note"] == "the cython backend is not built"
        elif row["backend"] == "reference-gso" and not HAS_COMPILER:
            assert row["status"] == "skipped" and "no C compiler" in row["note"], row
        else:
            assert row["status"] == "ok", row
            assert row["sender"] == row["receiver"] == row["backend"]


def test_quick_run_prints_receiver_and_sender_tables(quick):
    done, _ = quick
    assert f"{QUICK_REPEATS} interleaved rounds" in done.stdout.splitlines()[0]
    assert "Receiver side" in done.stdout and "Sender side" in done.stdout
    for backend in BACKENDS:
        assert backend in done.stdout


RATIO_WITH_SPREAD = re.compile(r"\b\d+\.\d\dx \(\d+\.\d\d-\d+\.\d\d\)~?(\s|$)")
BARE_RATIO = re.compile(r"\b\d+\.\d\dx(?! \()")


def test_quick_run_prints_every_ratio_with_its_spread(quick):
    done, doc = quick
    shown = sum(row[key] is not None for row in doc["results"] if row["status"] == "ok" for key in RATIO_KEYS)
    assert shown > 0
    table_rows = "\n".join(line for line in done.stdout.splitlines() if line.lstrip()[:1].isdigit())
    assert len(RATIO_WITH_SPREAD.findall(table_rows)) == shown
    assert not BARE_RATIO.findall(table_rows)


def test_speedup_and_reference_columns_divide_the_right_rows_round_by_round(quick):
    _, doc = quick
    rows = {(row["backend"], row["size"]): row for row in doc["results"]}
    for (backend, size), row in rows.items():
        python = rows[("python", size)]
        ref = rows[(row["ref_backend"], size)]
        for index, repeat in enumerate(row["repeats"]):
            base, reference = python["repeats"][index], ref["repeats"][index]
            if repeat["recv_pps"] and base["recv_pps"]:
                assert math.isclose(repeat["speedup"], repeat["recv_pps"] / base["recv_pps"])
            if repeat["recv_pps"] and reference["recv_pps"]:
                assert math.isclose(repeat["ref_fraction"], repeat["recv_pps"] / reference["recv_pps"])
            else:
                assert repeat["ref_fraction"] is None
        if row["status"] == "ok" and python["status"] == "ok":
            if backend == "python":
                assert row["speedup_significant"] is None  # itself over itself
            else:
                wide = row["speedup_max"] - row["speedup_min"]
                assert row["speedup_significant"] is (wide < abs(row["speedup"] - 1.0))


def test_short_run_on_each_backend(backend, tmp_path):
    path = tmp_path / "report.json"
    done = bench("--backends", backend, "--sizes", "64,1024", "--duration", "0.2", "--json", str(path))
    assert done.returncode == 0, done.stderr
    rows = check_document(json.loads(path.read_text()), [backend], [64, 1024])
    assert all(row["status"] == "ok" for row in rows.values())


def test_fixed_sender_runs_under_every_receiver(tmp_path):
    path = tmp_path / "report.json"
    done = bench(
        "--sender",
        "python",
        "--backends",
        "python,asyncio",
        "--sizes",
        "64",
        "--duration",
        "0.2",
        "--json",
        str(path),
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(path.read_text())
    rows = check_document(doc, ["python", "asyncio"], [64])
    assert doc["settings"]["sender"] == "python"
    for (backend, _), row in rows.items():
        assert (row["sender"], row["receiver"]) == ("python", backend)
    assert "Receiver side" in done.stdout and "Sender side" not in done.stdout


@pytest.mark.skipif(not HAS_COMPILER, reason="needs a C compiler")
def test_reference_rows_are_skipped_without_a_compiler(tmp_path):
    path = tmp_path / "report.json"
    env = dict(os.environ, CC=str(tmp_path / "no-such-cc"), XDG_CACHE_HOME=str(tmp_path))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastnet",
            "bench",
            "--backends",
            "reference,python",
            "--sizes",
            "64",
            "--duration",
            "0.2",
            "--json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    rows = check_document(json.loads(path.read_text()), ["reference", "python"], [64])
    assert rows[("reference", 64)]["status"] == "skipped"
    assert "no C compiler" in rows[("reference", 64)]["note"]
    assert rows[("python", 64)]["status"] == "ok"


def test_ctrl_c_stops_the_run_and_its_peers():
    # A session of its own, so Ctrl-C (SIGINT to the group) reaches only this
    # run; SIGINT restored to the default in case the test runner ignores it.
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fastnet",
            "bench",
            "--backends",
            "python",
            "--sizes",
            "64",
            "--duration",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    with run:
        try:
            run.stdout.readline()  # the headline: measuring has begun
            deadline = time.monotonic() + HANG_S
            while len(processes_in_group(run.pid)) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)  # the runner, its receiver and its sender
            assert len(processes_in_group(run.pid)) == 3
            os.killpg(run.pid, signal.SIGINT)
            assert run.wait(timeout=HANG_S) == 130
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
    deadline = time.monotonic() + HANG_S
    while processes_in_group(run.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_in_group(run.pid) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--sizes", "0"],
        ["--sizes", "abc"],
        ["--sizes", "70000"],
        ["--sizes", "64,,1024"],
        ["--backends", "nope"],
        ["--backends", ""],
        ["--duration", "-1"],
        ["--duration", "nan"],
        ["--duration", "100000"],
        ["--sender", "nope"],
        ["--receiver", "x"],
        ["--sender", "python", "--receiver", "python"],
        ["--repeat", "0"],
        ["--repeat", "1000"],
        ["--window", "1"],
        ["--find-rate", "--receiver", "python"],
        ["--find-rate", "--sender", "asyncio"],
        ["--find-rate", "--proto", "tcp"],
        ["--json", "/nonexistent-dir/report.json"],
        ["--plot", "/nonexistent-dir/plot.png"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["bench", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("fastnet bench: error:")


def test_json_path_that_is_a_directory_is_refused(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--json", str(tmp_path)])
    assert info.value.code == 2
    assert "is a directory" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    target = tmp_path / "plot.png"
    with pytest.raises(SystemExit) as info:
        main(["bench", "--plot", str(target), "--backends", "python", "--sizes", "64"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "matplotlib" in err and "fastnet[plot]" in err
    assert not target.exists()


def test_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "plot.png"
    done = bench(
        "--backends", "python", "--sizes", "64", "--duration", "0.2", "--repeat", "2", "--plot", str(target)
    )
    assert done.returncode == 0, done.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_with_error_bars_and_loss_free_panel_renders(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from fastnet._bench.plot import write_plot

    rows = build_rows(
        [
            [outcome("python", 1000, 1000, 800 + i) for i in range(3)],
            [outcome("cython", 1000, 4000, 3900 + 50 * i) for i in range(3)],
            [outcome("uvloop", 1000, 0, 0, status="skipped")] * 3,
        ]
    )
    lossless = [
        {"backend": "python", "size": 1000, "sender": "reference-gso", "lossless_pps": 1e5}
        | {"lossless_pps_min": 1e5, "lossless_pps_max": 1.1e5},
        {"backend": "cython", "size": 1000, "sender": "reference-gso", "lossless_pps": None}
        | {"lossless_pps_min": None, "lossless_pps_max": None},
    ]
    target = tmp_path / "plot.png"
    write_plot(str(target), rows, "a title", lossless)
    height, width, _ = imread(str(target)).shape
    assert width > height > 0  # three panels side by side


# -- the derived columns, from known counts --------------------------------------


def outcome(backend, size, sent, received, wall=1.0, window=1.0, first=0, status="ok"):
    job = Job(backend, backend, backend, size)
    if status != "ok":
        return Outcome(job, status=status, note="not here")
    return Outcome(
        job,
        sender={"sent": sent, "wall_s": wall, "cpu_s": 0.5},
        receiver={
            "received": received,
            "first_count": first,
            "window_s": window,
            "cpu_s": 0.25,
            "rcvbuf": 1 << 20,
        },
        kernel_drops=sent - received,
    )


def test_derived_columns_from_known_counts():
    rows = build_rows(
        [
            outcome("python", 1000, 1000, 800),
            outcome("cython", 1000, 4000, 4000),
            outcome("reference", 1000, 5000, 5000, window=0.5, first=0),
            outcome("cython-gso", 1000, 0, 0, status="skipped"),
        ]
    )
    python, cython, reference, gso = rows
    assert python["lost"] == 200 and python["loss_pct"] == 20.0
    assert python["recv_pps"] == 800.0 and python["send_pps"] == 1000.0
    assert python["gbit_s"] == 800 * 1000 * 8 / 1e9
    assert python["send_cpu_us"] == 500.0 and python["recv_cpu_us"] == 312.5
    assert cython["speedup"] == 5.0 and cython["send_speedup"] == 4.0
    assert reference["recv_pps"] == 10000.0
    assert cython["ref_fraction"] == 0.4 and cython["send_ref_fraction"] == 0.8
    assert gso["ref_backend"] == "reference-gso" and gso["ref_fraction"] is None
    assert gso["status"] == "skipped" and gso["sent"] is None


def test_receive_rate_leaves_out_the_batch_that_opened_the_window():
    assert receive_rate(1100, 100, 2.0, 5.0) == 500.0
    # Everything arrived in one batch: no window, so the sender's time is used.
    assert receive_rate(64, 64, 0.0, 2.0) == 32.0
    assert receive_rate(0, 0, 0.0, 0.0) is None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -I keeps the cwd off sys.path from 3.11")
def test_peers_import_the_same_fastnet_whatever_the_working_directory(tmp_path):
    # Run from a directory holding another "fastnet" (a source checkout beside
    # a non-editable install is the real case): `python -m` in the peers must
    # not pick it up. The parent runs with -I, so only the peers could.
    shadow = tmp_path / "fastnet"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the shadow fastnet was imported')\n")
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-m",
            "fastnet",
            "bench",
            "--backends",
            "python",
            "--sizes",
            "64",
            "--duration",
            "0.2",
            "--json",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert "shadow" not in done.stdout + done.stderr
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert [row["status"] for row in rows] == ["ok"]


def test_connected_senders_report_complete_rows(backend, tmp_path):
    path = tmp_path / "report.json"
    peers = [backend, "stdlib", "asyncio"] + (["uvloop"] if HAS_UVLOOP else [])
    done = bench(
        "--connect",
        "--backends",
        ",".join(peers),
        "--sizes",
        "64",
        "--duration",
        "0.2",
        "--repeat",
        "1",
        "--json",
        str(path),
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(path.read_text())
    assert doc["settings"]["connect"] is True and "connected senders" in done.stdout.splitlines()[0]
    rows = check_document(doc, peers, [64], rounds=1)
    assert all(row["status"] == "ok" for row in rows.values()), rows


def test_uvloop_row_is_skipped_with_a_note_without_uvloop(monkeypatch):
    from fastnet._bench.backends import Catalog

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now fails
    reason = Catalog(["uvloop"]).unavailable("uvloop")
    assert "uvloop is not installed" in reason and "fastnet[bench]" in reason


@pytest.mark.skipif(not HAS_COMPILER, reason="needs a C compiler")
def test_the_gro_rows_reference_is_measured_only_when_named(tmp_path):
    found = fastnet.features()
    if not (found["gso"] and found["gro"]):
        pytest.skip("kernel without UDP GSO/GRO")
    assert "reference-gro-rows" not in BACKENDS
    path = tmp_path / "report.json"
    done = bench(
        "--backends",
        "reference-gro-rows",
        "--sizes",
        "1024",
        "--duration",
        "0.2",
        "--repeat",
        "1",
        "--json",
        str(path),
    )
    assert done.returncode == 0, done.stderr
    [row] = check_document(json.loads(path.read_text()), ["reference-gro-rows"], [1024], rounds=1).values()
    assert row["status"] == "ok" and row["ref_backend"] == "reference-gso"
