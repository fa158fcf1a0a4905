"""``fastnet bench --find-rate``: the loss-free search's JSON, in a --quick-sized run.

What is checked is the document (every entry complete, confirmations that
lost nothing, a bounded search, the sender named), never the rates found.
"""

import json
import subprocess
import sys

import pytest

from fastnet._bench import find_rate
from fastnet._bench.backends import PACEABLE, Catalog
from fastnet._bench.loops import PACED_BURST

ENTRY_KEYS = {
    "backend",
    "size",
    "lossless_pps",
    "lossless_pps_min",
    "lossless_pps_max",
    "target_pps",
    "gbit_s",
    "sender",
    "window_s",
    "status",
    "note",
    "confirmations",
    "steps",
}


def bench(*args, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "fastnet", "bench", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """One real ``fastnet bench --find-rate --quick`` over two receivers."""
    path = tmp_path_factory.mktemp("find-rate") / "lossless.json"
    done = bench(
        "--find-rate", "--quick", "--backends", "python,stdlib", "--sizes", "1024", "--json", str(path)
    )
    assert done.returncode == 0, done.stderr
    return done, json.loads(path.read_text())


def test_find_rate_writes_one_complete_entry_per_receiver_and_size(search):
    _, doc = search
    settings = doc["settings"]["find_rate"]
    assert doc["results"] == []
    assert settings["sender"] in PACEABLE and settings["window_s"] == find_rate.QUICK.window_s
    assert settings["max_probes"] == find_rate.probe_limit(find_rate.QUICK)
    assert [(entry["backend"], entry["size"]) for entry in doc["lossless"]] == [
        ("python", 1024),
        ("stdlib", 1024),
    ]
    for entry in doc["lossless"]:
        assert set(entry) == ENTRY_KEYS
        assert entry["sender"] == settings["sender"] and entry["status"] == "ok"
        assert 1 <= len(entry["steps"]) <= settings["max_probes"]
        assert entry["steps"][0]["phase"] == "ceiling" and entry["steps"][0]["rate_pps"] is None
        for step in entry["steps"]:
            assert step["phase"] in ("ceiling", "search", "confirm")
            assert step["recv_cpu_share"] >= 0
            assert step["clean"] == (
                step["sent"] == step["received"] and step["lag_s"] <= settings["max_lag_s"]
            )
        if entry["lossless_pps"] is None:
            assert entry["note"] and entry["confirmations"] == []
            continue
        assert len(entry["confirmations"]) == 2
        for check in entry["confirmations"]:
            assert check["sent"] == check["received"] > 0 and check["kernel_drops"] == 0
        assert entry["lossless_pps_min"] == entry["lossless_pps"] <= entry["lossless_pps_max"]
        assert entry["gbit_s"] == pytest.approx(entry["lossless_pps"] * 1024 * 8 / 1e9)
        confirmed = [step for step in entry["steps"] if step["phase"] == "confirm"][-2:]
        assert all(step["clean"] for step in confirmed)


def test_find_rate_prints_the_table_and_the_sender(search):
    done, doc = search
    sender = doc["settings"]["find_rate"]["sender"]
    assert f"paced sender {sender}" in done.stdout.splitlines()[0]
    assert "Loss-free rates" in done.stdout and "confirmations sent/received/dropped" in done.stdout


def test_the_fastest_sender_that_can_run_is_picked(monkeypatch):
    catalog = Catalog(list(PACEABLE))
    monkeypatch.setattr(catalog, "unavailable", lambda name: None if name == "cython" else f"no {name} here")
    name, passed_over = find_rate.pick_sender(catalog)
    assert name == "cython"
    assert "reference-gso: no reference-gso here" in passed_over and "python" not in passed_over


class ScriptedCatalog:
    """Probes answered from a rule instead of measured: the receiver loses above ``limit``."""

    def __init__(self, limit, ceiling=1_000_000.0, hiccup=False):
        # hiccup: the first probe of a rate already probed (a confirmation) loses.
        self.limit, self.ceiling, self.hiccup = limit, ceiling, hiccup
        self.rates = []

    def unavailable(self, name):
        return None


def scripted_probe(catalog):
    def probe(_catalog, job, window_s, cpus, search):
        rate = job.rate or catalog.ceiling
        hiccup = catalog.hiccup and job.rate in catalog.rates
        if hiccup:
            catalog.hiccup = False
        catalog.rates.append(job.rate)
        clean = rate <= catalog.limit and not hiccup
        sent = int(rate * window_s)
        received = sent if clean else int(catalog.limit * window_s)
        return {
            "rate_pps": job.rate or None,
            "status": "ok",
            "sent": sent,
            "received": received,
            "kernel_drops": sent - received,
            "unread": 0,
            "reconciled": True,
            "sent_pps": rate,
            "lag_s": 0.0,
            "recv_cpu_share": 0.5,
            "clean": clean,
        }

    return probe


@pytest.mark.parametrize("limit", [2_000.0, 150_000.0, 700_000.0])
def test_the_search_converges_within_its_bound(monkeypatch, limit):
    catalog = ScriptedCatalog(limit)
    monkeypatch.setattr(find_rate, "_probe", scripted_probe(catalog))
    search = find_rate.Search(window_s=0.1, resolution=1.05, max_steps=12)
    entry = find_rate.find_rate(catalog, "python", 1024, "reference-gso", None, search)
    assert len(entry["steps"]) <= find_rate.probe_limit(search)
    assert entry["lossless_pps"] is not None
    assert limit / 1.05 <= entry["lossless_pps"] <= limit


def test_a_receiver_that_keeps_up_with_the_unpaced_sender_is_reported_as_sender_bound(monkeypatch):
    catalog = ScriptedCatalog(limit=10e6)
    monkeypatch.setattr(find_rate, "_probe", scripted_probe(catalog))
    entry = find_rate.find_rate(catalog, "reference", 64, "reference-gso", None, find_rate.QUICK)
    assert entry["lossless_pps"] == catalog.ceiling and entry["target_pps"] is None
    assert "the rate is the sender's" in entry["note"]
    assert catalog.rates == [0.0, 0.0, 0.0]  # the ceiling, then its two confirmations


def test_a_failed_confirmation_searches_below_it(monkeypatch):
    # The first confirmation loses (the machine hiccuped): the search goes on
    # below that rate and confirms again, within its bound.
    catalog = ScriptedCatalog(limit=150_000.0, hiccup=True)
    monkeypatch.setattr(find_rate, "_probe", scripted_probe(catalog))
    search = find_rate.Search(window_s=0.1, resolution=1.1, max_steps=8)
    entry = find_rate.find_rate(catalog, "python", 1024, "reference-gso", None, search)
    assert len(entry["steps"]) <= find_rate.probe_limit(search)
    assert [step["phase"] for step in entry["steps"]].count("confirm") >= 3
    assert entry["lossless_pps"] is not None and entry["lossless_pps"] <= 150_000.0


def test_a_receiver_that_always_loses_has_no_rate(monkeypatch):
    catalog = ScriptedCatalog(limit=0.0)
    monkeypatch.setattr(find_rate, "_probe", scripted_probe(catalog))
    entry = find_rate.find_rate(catalog, "asyncio", 1024, "reference-gso", None, find_rate.QUICK)
    assert entry["lossless_pps"] is None and entry["confirmations"] == []
    assert "loses datagrams at every rate tried" in entry["note"]
    assert len(entry["steps"]) <= find_rate.probe_limit(find_rate.QUICK)


def test_a_fastnet_sender_can_be_the_paced_one(backend, tmp_path):
    path = tmp_path / "lossless.json"
    done = bench(
        "--find-rate",
        "--quick",
        "--sender",
        backend,
        "--backends",
        "stdlib",
        "--sizes",
        "256",
        "--json",
        str(path),
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(path.read_text())
    assert doc["settings"]["find_rate"]["sender"] == backend
    [entry] = doc["lossless"]
    assert entry["sender"] == backend and entry["status"] == "ok"
    paced = [step for step in entry["steps"] if step["rate_pps"]]
    for step in paced:
        # A paced sender's bursts are each due within the window: it cannot run ahead.
        assert step["sent"] <= step["rate_pps"] * entry["window_s"] + PACED_BURST
