"""Fixtures for the per-call benchmarks (run with ``python -m pytest bench/``).

Every benchmark runs once per backend that loads, like the tests.
"""

import pytest

import fastnet


def pytest_report_header(config):
    return f"fastnet {fastnet.__version__}, backends: {', '.join(fastnet.available_backends())}"


@pytest.fixture(params=fastnet.available_backends())
def backend(request):
    return request.param


@pytest.fixture
def pair(backend):
    """A receiver and a sender on 127.0.0.1, both on ``backend``; closed afterwards."""
    receiver = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    receiver.bind(("127.0.0.1", 0))
    # Room for a full batch of 1024 small datagrams several times over.
    receiver.set_buffers(rcvbuf=8 << 20)
    sender = fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend=backend)
    sender.bind(("127.0.0.1", 0))
    yield receiver, sender
    receiver.close()
    sender.close()
