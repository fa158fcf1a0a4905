"""Run test classes of CPython's own test suite, optionally on fastnet.socket.

Usage::

    python tests/cpython_compat_runner.py [--fastnet] OUT.json NAME [NAME ...]

Each NAME is a module of the interpreter's ``test`` package
(``test.test_asyncio.test_sock_lowlevel``) or one of its classes
(``test.test_socket.BasicTCPTest``). With ``--fastnet``,
``socket.socket = fastnet.socket`` is set before any test module is imported,
so every socket the tests (and the standard library under them: asyncio,
socketpair, create_connection, ...) make is a fastnet socket, on the engine
``$FASTNET_BACKEND`` names. The result goes to OUT.json: the number of tests
run and the ids that failed, errored, were skipped or succeeded unexpectedly.

tests/test_cpython_compat.py runs this once without and once with
``--fastnet`` for each engine and compares the two.
"""

import faulthandler
import json
import socket
import sys
import unittest

#: No test of these suites takes more than seconds: one that runs this long
#: is stuck, and the run ends with every thread's traceback on stderr.
PER_TEST_LIMIT = 60


class _Recorder(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = []

    def startTest(self, test):
        faulthandler.dump_traceback_later(PER_TEST_LIMIT, exit=True)
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        faulthandler.cancel_dump_traceback_later()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test.id())


def main(argv):
    patch = argv[:1] == ["--fastnet"]
    if patch:
        argv = argv[1:]
    out_path, names = argv[0], argv[1:]
    info = {"patched": False, "backend": None, "python": sys.version}
    if patch:
        import fastnet

        socket.socket = fastnet.socket
        info.update(patched=True, backend=fastnet.backend)
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromName(name) for name in names)
    # Test output goes to stderr (the caller keeps it for a failure report).
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=_Recorder).run(suite)
    if patch:  # the patch held to the end: every socket made was fastnet's
        info["still_patched"] = socket.socket is sys.modules["fastnet"].socket
    else:  # the standard library's run never loaded fastnet
        info["fastnet_imported"] = "fastnet" in sys.modules
    info.update(
        run=result.testsRun,
        passed=sorted(result.passed),
        failures=sorted(test.id() for test, _ in result.failures),
        errors=sorted(test.id() for test, _ in result.errors),
        unexpected_successes=sorted(test.id() for test in result.unexpectedSuccesses),
        expected_failures=sorted(test.id() for test, _ in result.expectedFailures),
        skipped={test.id(): reason for test, reason in result.skipped},
        details={test.id(): text for test, text in result.failures + result.errors},
    )
    with open(out_path, "w") as out:
        json.dump(info, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
