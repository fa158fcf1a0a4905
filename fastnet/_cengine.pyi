"""The engine interface, shared by fastnet._cengine (Cython) and fastnet._pyengine.

fastnet._backend.ENGINE_API lists these names; both engines export them.
Callers (fastnet/_socket.py) check every argument first; the engines never
block (MSG_DONTWAIT) and leave waiting to the caller.
"""

from typing import Dict, Optional, Tuple, Union

from socket import socket

from ._batch import Batch

Address = Union[Tuple[str, int], Tuple[str, int, int, int]]

FEATURES: Dict[str, bool]

def recv_batch(sock: socket, batch: Batch, ancillary: bool) -> int:
    """Take the datagrams already queued, up to batch.capacity; return how many (0 if none).

    Fills rows 0..n-1 of the batch's arrays; does not set batch.count. An
    error after some datagrams is kept in sock._pending_error for the next call.
    """

def send_batch(sock: socket, batch: Batch, start: int, stop: int,
               address: Optional[Address]) -> int:
    """Send rows start..stop-1; return how many went out (0 if the kernel would block).

    ``address`` is numeric (already resolved) or None for a connected socket.
    Raises OSError if the first row fails; ``exc.sent`` is set when some went out.
    """
