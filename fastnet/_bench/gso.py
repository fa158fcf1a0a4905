"""Whether the ``cython-gso`` backend can run: fastnet's GSO/GRO API and the kernel's.

The API (``send_batch(..., gso=True)``, ``socket.enable_gro()``,
``fastnet.features()``) may be missing from this fastnet; the kernel may
lack UDP_SEGMENT/UDP_GRO. Either way the row is skipped with the reason,
never measured with something else in its place.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["unsupported_reason"]


def unsupported_reason() -> Optional[str]:
    """None if GSO sending and GRO receiving work on loopback, else why not.

    The probe sends two datagrams between two sockets of its own on 127.0.0.1.
    """
    import fastnet

    if "cython" not in fastnet.available_backends():
        return "the cython backend is not built"
    found = fastnet.features()
    if not (found.get("gso") and found.get("gro")):
        return f"UDP GSO/GRO unavailable here (features: gso={found.get('gso')}, gro={found.get('gro')})"
    try:
        with (
            fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="cython") as receiver,
            fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM, backend="cython") as sender,
        ):
            receiver.bind(("127.0.0.1", 0))
            receiver.enable_gro()
            batch = fastnet.Batch(2, 8)
            batch.lengths[:] = 8
            batch.count = 2
            sender.send_batch(batch, receiver.getsockname(), gso=True)
            receiver.recv_batch(fastnet.Batch(4, 8), timeout=1.0)
    except (AttributeError, TypeError) as exc:
        return f"this fastnet has no GSO/GRO API ({exc})"
    except OSError as exc:
        return f"UDP GSO/GRO failed on loopback: {exc}"
    return None
