"""Running ``fastnet`` subcommands as child processes, as a user would."""

import os
import select
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Ctrl-C must reach the child even when the test run itself ignores SIGINT
# (as background jobs without job control do): restore Python's handler.
CHILD = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from fastnet.cli import main; sys.exit(main(sys.argv[1:]))"
)


def start_fastnet(*args, stderr=subprocess.PIPE, prefix=(), cwd=ROOT, session=False):
    """``fastnet ARGS...`` in a child process (``prefix``: e.g. ``ip netns exec NAME``;
    ``session``: in a process group of its own, for Ctrl-C to the whole group)."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", CHILD, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT),
        start_new_session=session,
    )


def start_recv(*args, **kwargs):
    return start_fastnet("recv", *args, **kwargs)


def bound_address(child, timeout=30.0):
    """``(host, port)`` from the child's first stderr line, 'receiving on HOST:PORT (...)'."""
    ready, _, _ = select.select([child.stderr], [], [], timeout)
    assert ready, "fastnet recv did not start"
    line = child.stderr.readline()
    assert line.startswith("receiving on "), line
    where = line.split()[2]
    host, _, port = where.rpartition(":")
    return host.strip("[]"), int(port)


def bound_port(child, timeout=30.0):
    """The port from the child's first stderr line (IPv4 loopback)."""
    host, port = bound_address(child, timeout)
    assert host == "127.0.0.1", host
    return port


def finish(child, timeout=30):
    """Wait for the child (bounded): ``(status, stdout, stderr)``."""
    try:
        out, err = child.communicate(timeout=timeout)
    finally:
        child.kill()
    return child.returncode, out, err


def one_error_line(err, command="recv"):
    """The stderr of a refused command holds one 'fastnet CMD: error:' line (after usage)."""
    lines = [line for line in err.splitlines() if not line.startswith((" ", "usage:"))]
    assert len(lines) == 1 and lines[0].startswith(f"fastnet {command}: error:"), err
    return lines[0]
