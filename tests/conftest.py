"""Every behavioural test runs once per available backend.

FASTNET_EXPECT_BACKENDS (set by .ci/run) lists exactly the backends that must
load; if one of them does not, or another one does, the whole run fails at
start instead of quietly testing a different set.

FASTNET_EXPECT_FEATURES (set by .ci/run) lists kernel features (keys of
fastnet.features(), e.g. ``gso,gro``) that must be reported present: tests
that need a feature skip without it, and features() is itself under test, so
a feature wrongly reported missing would otherwise only show as skips.

FASTNET_EXPECT_TOOLS (set by .ci/run, e.g. ``tshark``) names programs that
must be on PATH, so the tests that use them run. Network namespace tests
(``@needs_netns``) fail instead of skipping where namespaces are expected:
see tests/netns.py.
"""

import importlib.util
import os
import shutil
import socket as stdsocket

import pytest
from helpers import AVAILABLE, HAS_IPV6
from netns import netns_expected, netns_unavailable, skip_without_netns

import fastnet


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "netns(*tools): the test makes private network "
        "namespaces and runs ip and these tools in them (tests/netns.py)",
    )
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
    _check_expected_features()
    tools = [name for name in os.environ.get("FASTNET_EXPECT_TOOLS", "").split(",") if name]
    absent = [name for name in tools if shutil.which(name) is None]
    if absent:
        raise pytest.UsageError(f"FASTNET_EXPECT_TOOLS: not on PATH: {', '.join(absent)}")
    # Optional extras (h5py, zarr, prometheus_client, matplotlib) whose tests
    # skip without them: where they are expected, a missing one fails the run.
    modules = [name for name in os.environ.get("FASTNET_EXPECT_MODULES", "").split(",") if name]
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(f"FASTNET_EXPECT_MODULES: cannot import {', '.join(missing)}")
    if netns_expected():
        reason = netns_unavailable("tc")
        if reason:
            raise pytest.UsageError(
                f"network namespaces are expected (FASTNET_EXPECT_NETNS / "
                f"CI) but cannot be used here: {reason}"
            )


def _check_expected_features():
    expected = [name for name in os.environ.get("FASTNET_EXPECT_FEATURES", "").split(",") if name]
    found = fastnet.features()
    unknown = [name for name in expected if name not in found]
    if unknown:
        raise pytest.UsageError(
            f"FASTNET_EXPECT_FEATURES names unknown features: "
            f"{', '.join(unknown)} (known: {', '.join(sorted(found))})"
        )
    missing = [name for name in expected if not found[name]]
    if missing:
        raise pytest.UsageError(
            f"expected kernel features reported missing by "
            f"fastnet.features(): {', '.join(missing)} (it says {found})"
        )


#: Test modules that start whole commands, worker processes or subprocess
#: suites and take seconds each: marked ``slow``, left out of the fast subset.
SLOW_MODULES = {
    "test_bench_cli",
    "test_bench_cli_tcp",
    "test_bench_tcp",
    "test_soak",
    "test_cli_workers",
    "test_fanout",
    "test_examples",
    "test_cpython_compat",
    "test_walkthrough",
}


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("netns")
    if marker is not None:
        reason = netns_unavailable(*marker.args)
        if reason:
            skip_without_netns(reason)


#: Test files marked ``core`` (besides those that mark themselves): the
#: subset .ci/other-pythons runs on every other Python (``pytest -m core``).
CORE_FILES = {
    "test_socket_steps.py",
    "test_tcp_steps.py",
    "test_batches.py",
    "test_batch_object.py",
    "test_gso.py",
    "test_gro.py",
    "test_receiver.py",
    "test_receiver_sockets.py",
    "test_backends.py",
    "test_errors_and_interrupts.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in CORE_FILES:
            item.add_marker(pytest.mark.core)
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def pytest_report_header(config):
    present = [name for name, value in fastnet.features().items() if value]
    return [
        f"fastnet backends tested: {', '.join(AVAILABLE)} (default: {fastnet.backend})",
        f"kernel features present: {', '.join(present) or 'none'}",
    ]


@pytest.fixture(params=AVAILABLE)
def backend(request):
    """Name of the engine under test."""
    return request.param


FAMILIES = [
    pytest.param((stdsocket.AF_INET, "127.0.0.1"), id="ipv4"),
    pytest.param(
        (stdsocket.AF_INET6, "::1"),
        id="ipv6",
        marks=pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback"),
    ),
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
