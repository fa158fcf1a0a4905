"""The engine contract (fastnet/engines/contract.py) holds for both engines, and is enforced."""

import re
import sys
import types
from pathlib import Path

import pytest

import fastnet
from fastnet import engines
from fastnet.core.batch import ENGINE_FIELDS
from fastnet.engines import contract

ROOT = Path(__file__).resolve().parent.parent
LANES = [ROOT / "src" / name for name in contract.LANE_SOURCES]
ENGINE_SOURCES = sorted((ROOT / "fastnet" / "engines" / "python").glob("*.py")) + sorted(
    p for p in (ROOT / "src").iterdir() if p.suffix in (".pyx", ".pxi") and p not in LANES
)


def test_both_engines_conform(backend):
    assert contract.check(engines.load(backend)) == []


def _fake_engine(monkeypatch, **overrides):
    """A module that copies the python engine, with ``overrides``, loadable as backend "fake"."""
    module = types.ModuleType("fastnet_fake_engine")
    real = engines.load("python")
    for name in contract.NAMES:
        setattr(module, name, getattr(real, name))
    for name, value in overrides.items():
        setattr(module, name, value)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(engines.BACKENDS, "fake", module.__name__)
    return module


def test_an_engine_that_conforms_loads(monkeypatch):
    module = _fake_engine(monkeypatch)
    try:
        assert engines.load("fake") is module
    finally:
        engines._loaded.pop("fake", None)


def test_a_drifted_signature_fails_at_load(monkeypatch):
    def recv_batch(sock, batch, ancillary):  # the old first parameter, and no gro
        return 0

    _fake_engine(monkeypatch, recv_batch=recv_batch)
    with pytest.raises(ImportError, match=r"recv_batch\(sock, batch, ancillary\) does not match"):
        engines.load("fake")


def test_a_state_without_its_members_fails_at_load(monkeypatch):
    class State:
        def __init__(self, fd, family, kind, proto):
            pass

    _fake_engine(monkeypatch, SocketState=State)
    with pytest.raises(ImportError, match="SocketState lacks family, gro, gro_area"):
        engines.load("fake")


def test_engines_read_only_the_named_batch_fields():
    """Every ``batch._x`` an engine's source names is in ENGINE_FIELDS."""
    used = {}
    for path in ENGINE_SOURCES:
        for field in re.findall(r"\bbatch\.(_\w+)", path.read_text()):
            used.setdefault(field, path.name)
    assert used, "no batch field found: the pattern no longer matches the engines' sources"
    assert {f: p for f, p in used.items() if f not in ENGINE_FIELDS} == {}
    assert set(ENGINE_FIELDS) - set(used) == set(), "ENGINE_FIELDS names a field no engine uses"


def test_engines_touch_no_socket_attribute():
    """The engines reach the socket only through their own SocketState (the lanes aside)."""
    found = [
        f"{path.name}: {match}"
        for path in ENGINE_SOURCES
        for match in re.findall(r"\bsock\.\w+", path.read_text())
    ]
    assert found == []


def test_the_lanes_touch_only_the_fields_the_contract_names():
    """The lanes' socket and Batch fields are exactly the contract's lists, so none is added unseen."""
    source = "".join(path.read_text() for path in LANES)
    # A field read through its slot (_Field, src/_fields.pxi) is named where it is bound.
    fields = set(re.findall(r"\bsock\.(\w+)", source)) | set(re.findall(r'_Field\(cls, "(\w+)"\)', source))
    assert set(fields) == set(contract.LANE_SOCKET_FIELDS)
    batch_fields = set(re.findall(r"\bbatch\.(_\w+)", source)) | set(
        re.findall(r'_Field\(batch_type, "(\w+)"\)', source)
    )
    assert batch_fields - set(ENGINE_FIELDS) == set(contract.LANE_BATCH_FIELDS)


def test_the_socket_hands_its_engine_its_own_state(backend):
    engine = engines.load(backend)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        state = sock._engine_state
        assert type(state) is engine.SocketState
        assert state.family == fastnet.AF_INET
        assert not state.gro and not state.gro_path and state.gro_area is None
        sock.enable_gro(True)
        assert state.gro and state.gro_path
        sock.enable_gro(False)
        assert not state.gro


def test_a_kept_error_is_taken_once(backend):
    engine = engines.load(backend)
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        state = engine.SocketState(sock.fileno(), sock._af, sock._kind, sock.proto)
        try:
            assert state.take_error() is None
            error = ConnectionRefusedError(111, "refused")
            state.keep_error(error)
            assert state.take_error() is error
            assert state.take_error() is None
        finally:
            state.close()
            state.close()  # twice is harmless
        assert sock.fileno() >= 0  # closing the state left the fd to the socket


def test_a_kept_error_is_raised_by_the_next_receive(backend):
    with fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend) as sock:
        sock.bind(("127.0.0.1", 0))
        sock._engine_state.keep_error(ConnectionRefusedError(111, "refused"))
        with pytest.raises(ConnectionRefusedError):
            sock.recv_batch(fastnet.Batch(4, 64), timeout=0)
        with pytest.raises(BlockingIOError):  # raised once, then the socket is as before
            sock.recv_batch(fastnet.Batch(4, 64), timeout=0)
