"""Security defaults: loopback unless told otherwise, received data never run, files private.

README's "Security" section says what these guard.
"""

import ast
import os
import pathlib
import socket as stdsocket

import pytest
from helpers import HAS_IPV6

import fastnet
from fastnet.cli import main
from fastnet.cli._bind import bind_source, is_wildcard, notice_if_wildcard

PACKAGE = pathlib.Path(fastnet.__file__).parent


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "0:0::0"])
def test_wildcards_get_a_one_line_notice(capsys, host):
    assert is_wildcard(host)
    assert notice_if_wildcard("recv", (host, 7788))
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "all interfaces" in err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "192.0.2.1", "localhost"])
def test_named_addresses_get_no_notice(capsys, host):
    assert not is_wildcard(host)
    assert not notice_if_wildcard("recv", (host, 7788))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "family,host",
    [
        (stdsocket.AF_INET, "127.0.0.1"),
        pytest.param(
            stdsocket.AF_INET6, "::1", marks=pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")
        ),
    ],
)
def test_a_sending_socket_is_bound_to_loopback_for_a_loopback_destination(backend, family, host):
    with fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend) as sock:
        assert bind_source(sock, (host, 9))[0] == host


def test_fastnet_send_never_sends_from_all_interfaces(monkeypatch, capsys):
    import fastnet.cli.send as send

    sources = []
    monkeypatch.setattr(
        send, "_send_numbered", lambda sender, *args: sources.append(sender.socket.getsockname())
    )
    assert main(["send", "--count", "1", "127.0.0.1:9"]) == 0
    assert sources and sources[0][0] == "127.0.0.1"


def test_fastnet_send_defaults_to_loopback(monkeypatch, capsys):
    import fastnet.cli.send as send

    destinations = []
    monkeypatch.setattr(send, "_send_numbered", lambda sender, *args: destinations.append(sender.address))
    assert main(["send", "--count", "1"]) == 0
    assert destinations[0][0] == "127.0.0.1"


@pytest.mark.parametrize("extra", [[], ["--tcp"], ["--workers", "2"]], ids=["udp", "tcp", "workers"])
def test_fastnet_recv_notes_a_wildcard_bind(capsys, extra):
    assert main(["recv", *extra, "0.0.0.0:0", "--duration", "0.05"]) == 0
    err = capsys.readouterr().err
    assert err.count("all interfaces") == 1 and "0.0.0.0:" in err


@pytest.mark.parametrize("extra", [[], ["--tcp"], ["--workers", "2"]], ids=["udp", "tcp", "workers"])
def test_fastnet_recv_binds_loopback_for_a_bare_port(capsys, extra):
    assert main(["recv", *extra, "0", "--duration", "0.05"]) == 0
    err = capsys.readouterr().err
    assert "all interfaces" not in err and "receiving on 127.0.0.1:" in err


# -- nothing received or read from a file is ever executed -----------------------------

_UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}
_UNSAFE_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "yaml"}


def _unsafe_uses(path):
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
            found += [f"import {name}" for name in names if name.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _UNSAFE_CALLS:
                found.append(f"{func.id}()")
            elif isinstance(func, ast.Attribute) and func.attr in ("load", "loads"):
                owner = func.value
                if isinstance(owner, ast.Name) and owner.id in ("np", "numpy", *_UNSAFE_MODULES):
                    found.append(f"{owner.id}.{func.attr}()")
            for keyword in node.keywords:
                if keyword.arg == "allow_pickle":
                    found.append("allow_pickle=")
    return [f"{path.relative_to(PACKAGE.parent)}:{use}" for use in found]


def test_the_package_never_unpickles_evaluates_or_loads_arbitrary_objects():
    uses = [use for path in sorted(PACKAGE.rglob("*.py")) for use in _unsafe_uses(path)]
    assert uses == []


def test_an_npy_with_object_fields_is_refused(tmp_path):
    import numpy as np

    from fastnet.capture.npy import record_dtype

    fields = [(name, "O") if name == "payload" else (name, *rest) for name, *rest in record_dtype(8).descr]
    path = tmp_path / "objects.npy"
    text = "{'descr': %r, 'fortran_order': False, 'shape': (1,), }" % (fields,)
    header = text.encode("latin1")
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(64))
    with pytest.raises(fastnet.CaptureError):
        list(fastnet.read_capture(str(path)))
    assert np.dtype(fields).hasobject  # such a file would need pickle to load


# -- capture files ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pcap", ".npy"])
@pytest.mark.parametrize("umask,mode", [(0o077, 0o600), (0o022, 0o644), (0o000, 0o664)])
def test_capture_files_follow_the_umask_and_are_never_world_writable(tmp_path, suffix, umask, mode):
    path = tmp_path / f"capture{suffix}"
    old = os.umask(umask)
    try:
        with fastnet.open_recorder(str(path)) as recorder:
            recorder(fastnet.Batch.from_payloads([b"x"]))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    assert not path.stat().st_mode & 0o002
