"""The command line with garbage arguments: exit status 2 and one line on stderr.

Arguments are drawn from each subcommand's own options mixed with garbage
values. A combination that happens to be valid runs (with the work itself
replaced: no datagrams, no benchmark processes, a receiver that stops at
once) and must succeed; any other must exit with status 2 and exactly one
line on stderr, naming the command.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnet
from fastnet.cli import main

HOSTILE = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

GARBAGE = [
    "0",
    "-1",
    "1",
    "8",
    "64",
    "1e9",
    "nan",
    "inf",
    "-inf",
    "1e-300",
    "1e308",
    "abc",
    "",
    " ",
    "max",
    "400M",
    "5G",
    "10Q",
    "1,2",
    ",",
    "0x10",
    "\x00",
    "é",
    "--",
    "-",
    "127.0.0.1:9",
    "[::1]:9",
    ":9",
    "9",
    "127.0.0.1:99999",
    "localhost:9",
    "[::1]9",
    "127.0.0.1:",
    "cython",
    "python",
    "gpu",
    "lo",
    "no-such-if0",
    "/nonexistent.pcap",
    "/",
    "x" * 300,
]
OPTIONS = {
    "send": [
        "--count",
        "--size",
        "--pps",
        "--rate",
        "--duration",
        "--burst",
        "--gso",
        "--backend",
        "--interface",
        "--replay",
        "--speed",
        "--json",
        "--tcp",
        "--prefix-size",
        "--byteorder",
        "--max-frame",
        "little",
        "--bogus",
    ],
    "bench": [
        "--quick",
        "--duration",
        "--sizes",
        "--backends",
        "--sender",
        "--receiver",
        "--no-pin",
        "--json",
        "--plot",
        "--bogus",
    ],
    "info": ["--json", "--bogus"],
    # (--tcp and --workers wait for a peer or run workers until stopped: they
    # appear in the known-bad lines below only.)
    "recv": [
        "--count",
        "--duration",
        "--json",
        "--seq",
        "--slot-size",
        "--batch-size",
        "--ring-size",
        "--rcvbuf",
        "--on-full",
        "--backend",
        "drop",
        "block",
        "--gro",
        "--interface",
        "--source",
        "--out",
        "--truncate",
        "--prefix-size",
        "--byteorder",
        "--max-frame",
        "--bogus",
    ],
}


@pytest.fixture
def no_work(monkeypatch):
    """Valid command lines parse and check everything, then do nothing heavy."""
    import fastnet.cli.bench as bench
    import fastnet.cli.send as send

    monkeypatch.setattr(send, "_send_numbered", lambda *args: None)
    monkeypatch.setattr(fastnet.Sender, "replay", lambda self, *args, **kwargs: 0)
    monkeypatch.setattr(bench, "run", lambda parser, args: 0)

    def stopped(self, timeout=None):
        raise fastnet.ReceiverStopped("stopped at once")

    monkeypatch.setattr(fastnet.Receiver, "get", stopped)  # recv: bind, then stop at once


def _outcome(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


def _check(argv, code, err):
    if code == 2:
        assert len(err) == 1, (argv, err)
        assert err[0].startswith("fastnet") and "error:" in err[0], (argv, err)
    elif code == 1:  # valid arguments, then a failure at run time (nothing listens...)
        assert err and err[-1].startswith("fastnet") and "error:" in err[-1], (argv, err)
    else:
        assert code == 0, (argv, code, err)


@HOSTILE
@given(command=st.sampled_from(sorted(OPTIONS)), data=st.data())
def test_garbage_arguments(no_work, capsys, command, data):
    tokens = st.sampled_from(OPTIONS[command] + GARBAGE)
    argv = [command, *data.draw(st.lists(tokens, max_size=6))]
    code, err = _outcome(argv, capsys)
    _check(argv, code, err)


@HOSTILE
@given(argv=st.lists(st.one_of(st.text(max_size=12), st.sampled_from(GARBAGE)), max_size=4))
def test_garbage_commands(no_work, capsys, argv):
    if argv and argv[0] in OPTIONS or argv[:1] in (["-h"], ["--help"]):
        return
    code, err = _outcome(argv, capsys)
    assert code == 2
    _check(argv, code, err)


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "--pps", "nan"],
        ["send", "--rate", "10Q"],
        ["send", "127.0.0.1:99999"],
        ["send", "--pps", "1", "--rate", "1M"],
        ["send", "--count"],
        ["send", "--burst", "0"],
        ["send", "--speed", "2"],
        ["send", "--size", "4"],
        ["send", "--replay", "/nonexistent.pcap"],
        ["send", "--backend", "gpu"],
        ["bench", "--sizes", "0"],
        ["bench", "--sizes", ","],
        ["bench", "--duration", "1e9"],
        ["bench", "--backends", "gpu"],
        ["bench", "--sender", "python", "--receiver", "python"],
        ["info", "--bogus"],
        [],
        ["recv", "127.0.0.1:99999"],
        ["recv", "9", "--rcvbuf", "5G"],
        ["recv", "9", "--on-full", "never"],
        ["recv", "0", "--slot-size", "0"],
        ["recv", "--workers", "0"],
        ["recv", "--workers", "2", "--tcp"],
        ["recv", "--tcp", "--gro"],
        ["recv", "--prefix-size", "3"],
        ["recv", "--out", "/nonexistent-dir/x.pcap"],
        ["send", "--tcp", "--gso"],
        ["send", "--max-frame", "-1"],
        ["nosuch"],
        ["--bogus"],
    ],
)
def test_known_bad_command_lines(no_work, capsys, argv):
    code, err = _outcome(argv, capsys)
    assert code == 2
    _check(argv, code, err)
