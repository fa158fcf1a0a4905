"""Backend selection: default, environment, per socket, and loud failures."""

import os
import subprocess
import sys

import pytest

import fastnet
from fastnet import engines as _backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, **env):
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_default_is_first_available():
    assert fastnet.backend in fastnet.available_backends()
    assert "python" in fastnet.available_backends()
    if "cython" in fastnet.available_backends() and not os.environ.get("FASTNET_BACKEND"):
        assert fastnet.backend == "cython"


@pytest.mark.parametrize("name", ["python", "cython"])
def test_environment_chooses_default(name):
    result = _run(
        "import fastnet; print(fastnet.backend); print(fastnet.socket().backend)", FASTNET_BACKEND=name
    )
    if name in fastnet.available_backends():
        assert result.stdout.split() == [name, name]
    else:
        assert "ImportError" in result.stderr and "cannot be loaded" in result.stderr


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="unknown backend"):
        fastnet.socket(backend="rust")
    result = _run("import fastnet", FASTNET_BACKEND="rust")
    assert result.returncode != 0 and "unknown backend" in result.stderr


def test_asking_for_a_backend_that_cannot_load_names_the_reason(monkeypatch):
    monkeypatch.setitem(_backend.BACKENDS, "cython", "fastnet._no_such_module")
    monkeypatch.setattr(_backend, "_loaded", {})
    with pytest.raises(ImportError, match="_no_such_module"):
        fastnet.socket(backend="cython")
    assert "cython" not in _backend.available_backends()


def test_engine_missing_an_api_name_fails_at_load(monkeypatch):
    monkeypatch.setitem(_backend.BACKENDS, "broken", "fastnet.constants")
    with pytest.raises(ImportError, match="lacks recv_batch"):
        _backend.load("broken")


def test_engines_export_the_same_checked_names(backend):
    engine = _backend.load(backend)
    for name in _backend.ENGINE_API:
        assert hasattr(engine, name)
    assert set(engine.FEATURES) >= {"recvmmsg", "sendmmsg", "gso", "gro"}


def test_per_socket_choice(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        assert sock.backend == backend
