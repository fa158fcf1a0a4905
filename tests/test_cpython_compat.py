"""CPython's own socket and asyncio tests pass on fastnet.socket as on socket.socket.

fastnet.socket promises to *be* a socket.socket. This holds it to that with
the interpreter's own test package: classes of ``test.test_socket`` (UDP,
TCP, timeouts, non-blocking, sendmsg/recvmsg, file objects, context
managers, the module's general tests, socketpair, create_connection and
create_server) and the modules ``test.test_asyncio.test_sock_lowlevel`` and
``test.test_asyncio.test_base_events``.

Each suite runs in a subprocess (tests/cpython_compat_runner.py) once with
the standard library and once per engine with ``socket.socket =
fastnet.socket`` set before the test modules are imported, so every socket
the tests and the standard library under them make is a fastnet one on that
engine. Every test must have the same outcome (passed, skipped, failed) in
both runs. A test that cannot pass here for reasons that are not fastnet's
fails in the standard library's run too, so it compares equal; such tests
are named in a warning. The runs are independent, so they run at the same
time. A difference is run again, alone, in both worlds before it fails the
test, so a timing-sensitive CPython test that lost a race once on a loaded
machine does not pass for an incompatibility; one that differs twice is one.
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import warnings

import pytest
from helpers import AVAILABLE, ROOT

pytestmark = pytest.mark.core

RUNNER = os.path.join(ROOT, "tests", "cpython_compat_runner.py")

SOCKET_CLASSES = """
    BasicUDPTest BasicUDPLITETest UDPTimeoutTest UDPLITETimeoutTest
    BasicTCPTest BasicTCPTest2 TCPCloserTest TCPTimeoutTest NonBlockingTCPTests
    InterruptedRecvTimeoutTest InterruptedSendTimeoutTest
    SendmsgUDPTest RecvmsgUDPTest RecvmsgIntoUDPTest
    SendmsgUDP6Test RecvmsgUDP6Test RecvmsgIntoUDP6Test
    RecvmsgRFC3542AncillaryUDP6Test RecvmsgIntoRFC3542AncillaryUDP6Test
    SendmsgUDPLITETest RecvmsgUDPLITETest RecvmsgIntoUDPLITETest
    SendmsgUDPLITE6Test RecvmsgUDPLITE6Test RecvmsgIntoUDPLITE6Test
    RecvmsgRFC3542AncillaryUDPLITE6Test RecvmsgIntoRFC3542AncillaryUDPLITE6Test
    SendmsgTCPTest RecvmsgTCPTest RecvmsgIntoTCPTest
    SendmsgSCTPStreamTest RecvmsgSCTPStreamTest RecvmsgIntoSCTPStreamTest
    SendmsgUnixStreamTest RecvmsgUnixStreamTest RecvmsgIntoUnixStreamTest
    RecvmsgSCMRightsStreamTest RecvmsgIntoSCMRightsStreamTest
    FileObjectClassTestCase UnbufferedFileObjectClassTestCase
    LineBufferedFileObjectClassTestCase SmallBufferedFileObjectClassTestCase
    UnicodeReadFileObjectClassTestCase UnicodeWriteFileObjectClassTestCase
    UnicodeReadWriteFileObjectClassTestCase
    ContextManagersTest
    GeneralModuleTests BasicSocketPairTest InheritanceTest NonblockConstantTest
    NetworkConnectionNoServer NetworkConnectionAttributesTest NetworkConnectionBehaviourTest
    CreateServerTest CreateServerFunctionalTest TestSocketSharing BufferIOTest
    SendfileUsingSendTest SendfileUsingSendfileTest TestUnixDomain TestLinuxAbstractNamespace
""".split()

#: suite -> (test names, fewest tests a complete run has). CPython 3.10 to
#: 3.13 run 600 to 700 of the socket tests named and about 150 asyncio ones.
SUITES = {
    "socket": (["test.test_socket." + name for name in SOCKET_CLASSES], 550),
    "asyncio": (["test.test_asyncio.test_sock_lowlevel", "test.test_asyncio.test_base_events"], 120),
}

#: A whole suite must finish within this; the socket suite takes under a minute.
RUN_TIMEOUT = 400

HAS_TEST_PACKAGE = all(
    importlib.util.find_spec(name) is not None
    for name in (
        "test.test_socket",
        "test.test_asyncio.test_sock_lowlevel",
        "test.test_asyncio.test_base_events",
    )
)

if not HAS_TEST_PACKAGE:
    pytestmark = [
        pytestmark,
        pytest.mark.skip(
            reason="this interpreter has no test package (test.test_socket); install python3-test"
        ),
    ]


class _Run:
    """One suite running in a subprocess: the standard library's, or fastnet's on one engine."""

    def __init__(self, names, backend, directory):
        self.backend = backend
        label = backend or "stdlib"
        self.out_path = os.path.join(directory, f"{label}.json")
        self.err_path = os.path.join(directory, f"{label}.log")
        env = dict(os.environ)
        env.pop("FASTNET_BACKEND", None)
        args = [sys.executable, RUNNER]
        if backend is not None:
            env["FASTNET_BACKEND"] = backend
            args.append("--fastnet")
        self.args = args + [self.out_path] + list(names)
        with open(self.err_path, "w") as err:
            self.process = subprocess.Popen(
                self.args, env=env, cwd=directory, stdin=subprocess.DEVNULL, stdout=err, stderr=err
            )

    def result(self):
        try:
            self.process.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"{self.args[2:3]} did not finish in {RUN_TIMEOUT} s; log: {self._tail()}")
        if self.process.returncode != 0 or not os.path.exists(self.out_path):
            pytest.fail(f"runner exited {self.process.returncode}; log: {self._tail()}")
        with open(self.out_path) as f:
            return json.load(f)

    def _tail(self):
        with open(self.err_path) as f:
            return f.read()[-3000:]


def outcomes(result):
    """test id -> "passed", "skipped", "failed" (failures, errors, unexpected successes)."""
    table = {}
    for test_id in result["passed"]:
        table[test_id] = "passed"
    for test_id in list(result["skipped"]) + result["expected_failures"]:
        table[test_id] = "skipped"
    for key in ("failures", "errors", "unexpected_successes"):
        for test_id in result[key]:
            table[test_id] = "failed"
    return table


def run_alone(test_ids, backend):
    """Outcomes of ``test_ids`` run once more, in a fresh subprocess."""
    # A failed fixture is reported as "setUpClass (test.test_socket.X)": run X.
    names = sorted({t.rpartition(" (")[2].rstrip(")") if t.endswith(")") else t for t in test_ids})
    with tempfile.TemporaryDirectory() as directory:
        return outcomes(_Run(names, backend, directory).result())


@pytest.fixture(scope="module")
def suite_runs(tmp_path_factory):
    """Every run of every suite, started at once: {(suite, backend or None): _Run}."""
    runs = {}
    for suite, (names, _) in SUITES.items():
        for backend in [None] + AVAILABLE:
            directory = tmp_path_factory.mktemp(f"{suite}-{backend or 'stdlib'}")
            runs[suite, backend] = _Run(names, backend, str(directory))
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


_checked_stdlib = set()


def stdlib_result(suite_runs, suite):
    result = suite_runs[suite, None].result()
    _, fewest = SUITES[suite]
    assert not result["fastnet_imported"]
    assert result["run"] >= fewest, f"the standard library's run of {suite} ran only {result['run']} tests"
    failing = sorted(t for t, outcome in outcomes(result).items() if outcome == "failed")
    if failing and suite not in _checked_stdlib:
        warnings.warn(
            f"{len(failing)} CPython {suite} tests fail with the standard library too "
            f"(not fastnet's doing; compared all the same): {', '.join(failing)}",
            stacklevel=1,
        )
    _checked_stdlib.add(suite)
    return result


@pytest.mark.parametrize("suite", list(SUITES))
def test_cpython_suite_has_the_same_outcomes_on_fastnet_socket(suite_runs, suite, backend):
    expected = stdlib_result(suite_runs, suite)
    got = suite_runs[suite, backend].result()
    assert got["patched"] and got["still_patched"] and got["backend"] == backend
    assert got["run"] == expected["run"], "both runs must run the same tests"
    want, have = outcomes(expected), outcomes(got)
    assert set(want) == set(have)
    differing = sorted(t for t in want if want[t] != have[t])
    if differing:  # once more, alone, in both worlds: a repeat is an incompatibility
        again_want, again_have = run_alone(differing, None), run_alone(differing, backend)
        still = [t for t in differing if again_want.get(t) != again_have.get(t)]
        details = "\n\n".join(
            f"{t}: stdlib {want[t]}, fastnet {have[t]}\n{got['details'].get(t, '')}" for t in still
        )
        assert not still, f"{len(still)} CPython tests differ on fastnet.socket ({backend}):\n{details}"
