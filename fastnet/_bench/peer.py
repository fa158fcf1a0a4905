"""One side of a measurement, as its own process (the same interface as reference.c).

    python -m fastnet._bench.peer recv KIND SIZE RCVBUF MAX_SECONDS
        bind 127.0.0.1:0, print "ready PORT INODE", count datagrams until
        SIGUSR1 and a drained queue, print one JSON line, wait for EOF on stdin
    python -m fastnet._bench.peer send KIND SIZE PORT DURATION [rate=PPS] [connect]
        send for DURATION seconds to 127.0.0.1:PORT, print one JSON line;
        rate=PPS (fastnet kinds only): paced at PPS datagrams/s; connect:
        connect(2) the socket and send without an address (as reference.c);
        PORT "-": read it from the first line of stdin (the runner starts
        the sender while the receiver starts, and tells it the port then)

KIND is ``cython``, ``cython-gso``, ``python`` (fastnet sockets),
``stdlib`` (a plain ``socket.socket`` loop), ``asyncio`` or ``uvloop``
(a ``DatagramProtocol`` on that event loop). Exit status 3,
with one line on stderr, means this fastnet or kernel lacks what KIND needs
(the row is shown as skipped); any other failure exits 1.

Between "ready" and its report the receiver waits for EOF on stdin so the
runner can read the socket's drop counter from /proc/net/udp while the
socket still exists.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from typing import TYPE_CHECKING, cast

from . import loops

if TYPE_CHECKING:
    import fastnet

HOST = "127.0.0.1"
UNSUPPORTED = 3
KINDS = ("cython", "cython-gso", "python", "stdlib", "asyncio", "uvloop")
#: Kinds that use a plain ``socket.socket`` (no fastnet socket).
STDLIB_SOCKET_KINDS = ("stdlib", "asyncio", "uvloop")
#: Kinds whose sender can be paced (``send ... RATE``).
PACED_KINDS = ("cython", "cython-gso", "python")


class Unsupported(Exception):
    """This fastnet or kernel lacks what the peer needs."""


def _fastnet_socket(kind: str):
    import fastnet

    return fastnet.socket(
        fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="python" if kind == "python" else "cython"
    )


def _set_rcvbuf(sock, size: int) -> int:
    from fastnet.core import buffers as _buffers

    with warnings.catch_warnings():
        # A capped buffer is reported in the result ("rcvbuf"), not as a warning.
        warnings.simplefilter("ignore")
        rcvbuf, _ = _buffers.set_buffers(sock, rcvbuf=size)
    return rcvbuf


def _uvloop_factory():
    """uvloop's event loop maker, or Unsupported when uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        raise Unsupported("uvloop is not installed (pip install 'fastnet[bench]')") from None
    return uvloop.new_event_loop


def receive(kind: str, size: int, rcvbuf: int, max_seconds: float) -> dict:
    if kind == "cython-gso":
        _check_gso()
    loop_factory = _uvloop_factory() if kind == "uvloop" else None
    stop = loops.StopFlag()
    signal.signal(signal.SIGUSR1, stop.set)
    if kind in STDLIB_SOCKET_KINDS:
        import socket

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    else:
        sock = _fastnet_socket(kind)
    with sock:
        granted = _set_rcvbuf(sock, rcvbuf)
        if kind == "cython-gso":
            cast("fastnet.socket", sock).enable_gro()  # not asyncio: a fastnet.socket
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        print(f"ready {port} {os.fstat(sock.fileno()).st_ino}", flush=True)
        if kind in ("asyncio", "uvloop"):
            sock.setblocking(False)
            report = loops.receive_asyncio(sock, stop, max_seconds, loop_factory)
        elif kind == "stdlib":
            report = loops.receive_stdlib(sock, size, stop, max_seconds)
        else:
            report = loops.receive_batches(sock, size, stop, max_seconds)
        report["rcvbuf"] = granted
        print(json.dumps(report), flush=True)
        # Keep the socket open until the runner has read its drop counter.
        sys.stdin.buffer.read()
    return report


def send(kind: str, size: int, port: int, duration: float, rate: float = 0.0, connect: bool = False) -> dict:
    if kind == "cython-gso":
        _check_gso()
    if rate and kind not in PACED_KINDS:
        raise ValueError(f"the {kind} sender cannot be paced")
    address = (HOST, port)
    if kind in ("asyncio", "uvloop"):
        loop_factory = _uvloop_factory() if kind == "uvloop" else None
        report = loops.send_asyncio(size, address, duration, loop_factory, connect)
    elif kind == "stdlib":
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            sock.settimeout(10.0)
            if connect:
                sock.connect(address)
            report = loops.send_stdlib(sock, size, None if connect else address, duration)
    else:
        gso = kind == "cython-gso"
        with _fastnet_socket(kind) as sock:
            sock.bind((HOST, 0))  # a loopback source, never all interfaces
            sock.settimeout(10.0)  # bounds any wait for buffer space
            if connect:
                sock.connect(address)
            target = None if connect else address
            if rate:
                report = loops.send_paced(sock, size, target, duration, rate, gso)
            else:
                report = loops.send_batches(sock, size, target, duration, gso)
    print(json.dumps(report), flush=True)
    return report


def _check_gso():
    """Fail as unsupported, not as an error, when GSO/GRO cannot run here."""
    from .gso import unsupported_reason

    reason = unsupported_reason()
    if reason is not None:
        raise Unsupported(reason)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = argv[5:]
    known = all(option == "connect" or option.startswith("rate=") for option in options)
    if (
        len(argv) < 5
        or argv[0] not in ("recv", "send")
        or argv[1] not in KINDS
        or (argv[0] == "recv" and options)
        or not known
    ):
        sys.stderr.write(
            f"usage: python -m fastnet._bench.peer recv|send {'|'.join(KINDS)} "
            "SIZE (RCVBUF MAX_SECONDS | PORT DURATION [rate=PPS] [connect])\n"
        )
        return 1
    role, kind = argv[0], argv[1]
    try:
        if role == "recv":
            receive(kind, int(argv[2]), int(argv[3]), float(argv[4]))
        else:
            rates = [float(option[5:]) for option in options if option.startswith("rate=")]
            port = int(sys.stdin.readline()) if argv[3] == "-" else int(argv[3])
            send(kind, int(argv[2]), port, float(argv[4]), rates[-1] if rates else 0.0, "connect" in options)
    except Unsupported as exc:
        sys.stderr.write(f"{exc}\n")
        return UNSUPPORTED
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
