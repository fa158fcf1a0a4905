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

def recv_batch(sock: socket, batch: Batch, ancillary: bool, gro: bool = False) -> int:
    """Take the datagrams already queued, up to batch.capacity; return how many (0 if none).

    Fills rows 0..n-1 of the batch's arrays; does not set batch.count. An
    error after some datagrams is kept in sock._pending_error for the next call.

    With ``gro`` (UDP_GRO is on), or while ``sock._gro_area`` is not None,
    coalesced super-datagrams are received whole into ``sock._gro_area`` (an
    engine-private object, created on first use) and split into one row per
    datagram; rows that do not fit stay there and are returned first by the
    next call, which then makes no system call if they fill the batch. The
    area is dropped (set to None) once empty with ``gro`` false. The caller
    makes sure one call at a time uses a socket's area.
    """

def send_batch(sock: socket, batch: Batch, start: int, stop: int,
               address: Optional[Address], gso_size: int = 0, gso_segments: int = 0) -> int:
    """Send rows start..stop-1; return how many rows went out (0 if the kernel would block).

    ``address`` is numeric (already resolved) or None for a connected socket.
    Raises OSError if the first message fails; ``exc.sent`` (rows) is set
    when some went out.

    ``gso_size`` 0 sends one datagram per row. Otherwise rows go out
    ``gso_segments`` per message with a UDP_SEGMENT control message of
    ``gso_size``; the caller (fastnet/_gso.py) has checked that rows
    start..stop-1 all have that length except a shorter, non-empty last one.
    Counts stay in rows; a refused message sent nothing.
    """
