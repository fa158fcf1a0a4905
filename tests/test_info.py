"""fastnet.features() and ``fastnet info``."""

import json
import os
import platform
import socket as stdsocket
import subprocess
import sys

import pytest

import fastnet
from fastnet import constants as C
from fastnet.cli import info as info_cli
from fastnet.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"recvmmsg", "sendmmsg", "gso", "gro", "timestamps", "rxq_ovfl", "meminfo"}


def _kernel_accepts(level, option):
    with stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as sock:
        try:
            sock.setsockopt(level, option, 1)
        except OSError:
            return False
    return True


def test_features_lists_each_feature_as_a_bool():
    found = fastnet.features()
    assert set(found) == KEYS
    assert all(isinstance(value, bool) for value in found.values())


def test_features_are_a_fresh_copy_each_time():
    first = fastnet.features()
    first["gso"] = "changed"
    assert fastnet.features()["gso"] in (True, False)


@pytest.mark.parametrize(
    "key,level,option",
    [
        ("gso", C.SOL_UDP, C.UDP_SEGMENT),
        ("gro", C.SOL_UDP, C.UDP_GRO),
        ("timestamps", stdsocket.SOL_SOCKET, C.SO_TIMESTAMPNS),
        ("rxq_ovfl", stdsocket.SOL_SOCKET, C.SO_RXQ_OVFL),
    ],
)
def test_features_agree_with_the_kernel(key, level, option):
    assert fastnet.features()[key] == _kernel_accepts(level, option)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux system calls")
def test_linux_has_the_batched_calls():
    assert fastnet.features()["recvmmsg"] and fastnet.features()["sendmmsg"]


def test_info_prints_backends_kernel_features_and_limits(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"backend: {fastnet.backend}" in out
    assert platform.release() in out
    for key, value in fastnet.features().items():
        assert f"{key:<12} {'yes' if value else 'no'}" in out
    for name in info_cli.LIMITS:
        assert name in out


def test_info_json_parses_and_matches_the_machine(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == fastnet.backend
    assert data["available_backends"] == fastnet.available_backends()
    assert data["features"] == fastnet.features()
    assert data["kernel"]["release"] == platform.release()
    for name in fastnet.available_backends():
        assert data["engines"][name] == fastnet.engines.load(name).FEATURES
    with open("/proc/sys/net/core/rmem_max") as handle:
        assert data["limits"]["net.core.rmem_max"] == int(handle.read())
    with open("/proc/sys/net/ipv4/udp_mem") as handle:
        assert data["limits"]["net.ipv4.udp_mem"] == [int(v) for v in handle.read().split()]


def test_unreadable_limit_is_reported_as_unavailable(monkeypatch, capsys):
    monkeypatch.setitem(info_cli.LIMITS, "net.core.rmem_max", "/nonexistent/rmem_max")
    assert main(["info"]) == 0
    assert "net.core.rmem_max      unavailable" in capsys.readouterr().out
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["limits"]["net.core.rmem_max"] is None


def test_python_m_fastnet_info_runs():
    result = subprocess.run(
        [sys.executable, "-m", "fastnet", "info", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["features"]) == KEYS
