"""Every behavioural test runs once per available backend.

FASTNET_EXPECT_BACKENDS (set by .ci/run) lists exactly the backends that must
load; if one of them does not, or another one does, the whole run fails at
start instead of quietly testing a different set.
"""

import os
import socket as stdsocket

import pytest

import fastnet

from helpers import AVAILABLE, HAS_IPV6


def pytest_configure(config):
    expected = [name for name in os.environ.get("FASTNET_EXPECT_BACKENDS", "").split(",") if name]
    missing = [name for name in expected if name not in AVAILABLE]
    if missing:
        reasons = []
        for name in missing:
            try:
                fastnet.engines.load(name)
            except ImportError as exc:
                reasons.append(str(exc))
        raise pytest.UsageError(f"expected fastnet backends missing: {'; '.join(reasons)}")
    extra = [name for name in AVAILABLE if expected and name not in expected]
    if extra:
        raise pytest.UsageError(f"fastnet backends loaded but not expected: {', '.join(extra)}")


#: Test files marked ``core`` (besides those that mark themselves): the
#: subset .ci/other-pythons runs on every other Python (``pytest -m core``).
CORE_FILES = {
    "test_socket_steps.py", "test_tcp_steps.py", "test_batches.py", "test_batch_object.py",
    "test_gso.py", "test_gro.py", "test_receiver.py", "test_receiver_sockets.py",
    "test_backends.py", "test_errors_and_interrupts.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in CORE_FILES:
            item.add_marker(pytest.mark.core)


def pytest_report_header(config):
    return f"fastnet backends tested: {', '.join(AVAILABLE)} (default: {fastnet.backend})"


@pytest.fixture(params=AVAILABLE)
def backend(request):
    """Name of the engine under test."""
    return request.param


FAMILIES = [
    pytest.param((stdsocket.AF_INET, "127.0.0.1"), id="ipv4"),
    pytest.param((stdsocket.AF_INET6, "::1"), id="ipv6",
                 marks=pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback")),
]


@pytest.fixture(params=FAMILIES)
def family_host(request):
    return request.param


@pytest.fixture
def pair(backend, family_host):
    """A bound receiver and an unbound sender on loopback, closed afterwards."""
    family, host = family_host
    receiver = fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend)
    receiver.bind((host, 0))
    # Room for the biggest test bursts, so nothing is dropped by the kernel.
    receiver.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 8 << 20)
    sender = fastnet.socket(family, fastnet.SOCK_DGRAM, backend=backend)
    sender.bind((host, 0))
    yield receiver, sender
    receiver.close()
    sender.close()
