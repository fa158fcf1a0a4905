"""The backends ``fastnet bench`` compares: whether each can run here, and how to start it.

=============  =====================================================  ==========================
backend        sender                                                 receiver
=============  =====================================================  ==========================
cython         ``send_batch`` (sendmmsg), cython engine               ``recv_batch`` (recvmmsg)
cython-gso     ``send_batch(..., gso=True)``: UDP GSO super-buffers   ``recv_batch`` after ``enable_gro()``
python         ``send_batch``, pure-Python engine (sendto loop)       ``recv_batch`` (recvfrom_into loop)
asyncio        ``transport.sendto`` in an asyncio loop                a ``DatagramProtocol``
reference      C, ``sendmmsg`` of 1024                                 C, ``recvmmsg`` of 1024
reference-gso  C, ``sendmmsg`` of UDP_SEGMENT buffers (64 segments)    C, ``recvmmsg`` with UDP_GRO
=============  =====================================================  ==========================
"""

from __future__ import annotations

import sys
from typing import Dict, Iterable, List, Optional

from . import BACKENDS

__all__ = ["Catalog"]

_PYTHON_KINDS = ("cython", "cython-gso", "python", "asyncio")


def _number(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class Catalog:
    """Availability of the named backends, found once, and their command lines."""

    def __init__(self, names: Iterable[str]):
        self._reasons: Dict[str, Optional[str]] = {}
        self._binary = None
        names = list(dict.fromkeys(names))
        for name in names:
            if name not in BACKENDS:
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
            elif name in ("python", "asyncio"):
                self._reasons[name] = None

    @staticmethod
    def _cython_reason() -> Optional[str]:
        from fastnet import engines as _backend

        try:
            _backend.load("cython")
        except ImportError as exc:
            return str(exc)
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
        return argv + ["gro"] if name == "reference-gso" else argv

    def sender_argv(self, name: str, size: int, port: int, duration: float) -> List[str]:
        if name in _PYTHON_KINDS:
            return [
                sys.executable,
                "-m",
                "fastnet._bench.peer",
                "send",
                name,
                str(size),
                str(port),
                _number(duration),
            ]
        argv = [str(self._binary), "send", str(size), str(port), _number(duration)]
        return argv + ["gso"] if name == "reference-gso" else argv
