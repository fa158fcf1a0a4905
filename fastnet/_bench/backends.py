"""The backends ``fastnet bench`` compares: whether each can run here, and how to start it.

=============  =====================================================  ==========================
backend        sender                                                 receiver
=============  =====================================================  ==========================
cython         ``send_batch`` (sendmmsg), cython engine               ``recv_batch`` (recvmmsg)
cython-gso     ``send_batch(..., gso=True)``: UDP GSO super-buffers   ``recv_batch`` after ``enable_gro()``
python         ``send_batch``, pure-Python engine (sendto loop)       ``recv_batch`` (recvfrom_into loop)
stdlib         ``socket.sendto`` loop, no fastnet                     ``socket.recvfrom_into`` loop
asyncio        ``transport.sendto`` in an asyncio loop                a ``DatagramProtocol``
uvloop         ``transport.sendto`` on uvloop's loop                  a ``DatagramProtocol`` on uvloop
reference      C, ``sendmmsg`` of 1024                                 C, ``recvmmsg`` of 1024
reference-gso  C, ``sendmmsg`` of UDP_SEGMENT buffers (64 segments)    C, ``recvmmsg`` with UDP_GRO
=============  =====================================================  ==========================

Named only: ``reference-gro-rows`` (the reference-gso sender; a C GRO receiver
whose messages span the rows of a 1024-row Batch, so it touches the same
memory as fastnet's GRO receive).
"""

from __future__ import annotations

import sys
from typing import Dict, Iterable, List, Optional

from . import BACKENDS, MAX_DATAGRAM, OPTIONAL_BACKENDS

__all__ = ["Catalog", "PACEABLE", "datagrams_per_drop"]

_PYTHON_KINDS = ("cython", "cython-gso", "python", "stdlib", "asyncio", "uvloop")
#: Senders that can be held to a rate (``--find-rate``).
PACEABLE = ("reference-gso", "reference", "cython-gso", "cython", "python")


#: Segments per GSO buffer, in both GSO senders (reference.c GSO_SEGMENTS, fastnet's gso=True).
GSO_SEGMENTS = 64
_GSO = ("cython-gso", "reference-gso", "reference-gro-rows")


def datagrams_per_drop(sender: str, receiver: str, size: int) -> int:
    """How many datagrams one count of the receiver socket's drop counter can stand for.

    A GRO receiver fed by a GSO sender is dropped whole buffers at a time,
    one count each (fastnet/_bench/reconcile.py); every other pair counts
    datagrams.
    """
    if sender in _GSO and receiver in _GSO:
        return max(1, min(GSO_SEGMENTS, MAX_DATAGRAM // max(size, 1)))
    return 1


def _number(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class Catalog:
    """Availability of the named backends, found once, and their command lines."""

    def __init__(self, names: Iterable[str]):
        self._reasons: Dict[str, Optional[str]] = {}
        self._binary = None
        names = list(dict.fromkeys(names))
        for name in names:
            if name not in BACKENDS + OPTIONAL_BACKENDS:
                raise ValueError(f"unknown backend {name!r}")
        if any(name.startswith("reference") for name in names):
            from .reference import build

            self._binary, reason = build()
            for name in names:
                if name.startswith("reference"):
                    self._reasons[name] = reason
        for name in names:
            if name == "cython":
                self._reasons[name] = self._cython_reason()
            elif name == "cython-gso":
                from .gso import unsupported_reason

                self._reasons[name] = unsupported_reason()
            elif name == "uvloop":
                self._reasons[name] = self._uvloop_reason()
            elif name in ("python", "stdlib", "asyncio"):
                self._reasons[name] = None

    @staticmethod
    def _cython_reason() -> Optional[str]:
        from fastnet import engines as _backend

        try:
            _backend.load("cython")
        except ImportError as exc:
            return str(exc)
        return None

    @staticmethod
    def _uvloop_reason() -> Optional[str]:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            return "uvloop is not installed (pip install 'fastnet[bench]')"
        return None

    @property
    def reference_binary(self):
        return self._binary

    def unavailable(self, name: str) -> Optional[str]:
        """None if ``name`` can run here, else why not."""
        return self._reasons[name]

    def receiver_argv(self, name: str, size: int, rcvbuf: int, max_seconds: int) -> List[str]:
        if name in _PYTHON_KINDS:
            return [
                sys.executable,
                "-m",
                "fastnet._bench.peer",
                "recv",
                name,
                str(size),
                str(rcvbuf),
                str(max_seconds),
            ]
        argv = [str(self._binary), "recv", str(size), str(rcvbuf), str(max_seconds)]
        modes = {"reference-gso": ["gro"], "reference-gro-rows": ["gro-rows"]}
        return argv + modes.get(name, [])

    @staticmethod
    def port_from_stdin(name: str) -> bool:
        """Whether this sender can start before the port is known and read it from stdin.

        The Python peers take a third of a second to import fastnet and numpy:
        started alongside the receiver, that time is not spent twice per row.
        """
        return name in _PYTHON_KINDS

    def sender_argv(
        self, name: str, size: int, port, duration: float, rate: float = 0.0, connect: bool = False
    ) -> List[str]:
        """The sender's command line; ``port`` "-": read from stdin; ``rate`` > 0 paces it.

        ``connect``: the sender connects its socket and sends without an address.
        """
        if rate and name not in PACEABLE:
            raise ValueError(f"the {name} sender cannot be paced")
        options = ([f"rate={_number(float(rate))}"] if rate else []) + (["connect"] if connect else [])
        if name in _PYTHON_KINDS:
            command = [sys.executable, "-m", "fastnet._bench.peer", "send", name]
            return command + [str(size), str(port), _number(duration)] + options
        argv = [str(self._binary), "send", str(size), str(port), _number(duration)]
        if name in ("reference-gso", "reference-gro-rows"):
            argv.append("gso")
        return argv + options
