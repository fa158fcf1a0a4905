"""fastnet: move UDP datagrams fast from Python.

The socket steps of the standard library (create, bind, send, receive,
close), plus batches: many datagrams per system call into and out of
preallocated numpy arrays.
"""

from socket import AF_INET, AF_INET6, SOCK_DGRAM, SOCK_STREAM

from . import _backend
from ._backend import available_backends
from ._batch import Batch
from ._buffers import BufferSizeWarning
from ._constants import SO_RXQ_OVFL, SO_TIMESTAMP, SO_TIMESTAMPNS, SOL_UDP, UDP_GRO, UDP_SEGMENT
from ._socket import socket
from ._receiver import Receiver, ReceiverStopped
from ._seq import SeqField
from ._stats import ReceiverStats

__version__ = "0.1.0"

#: Name of the default engine: "cython" when the extension is built, else
#: "python"; $FASTNET_BACKEND chooses it (and must then load).
backend: str = _backend.default_backend()

__all__ = [
    "AF_INET", "AF_INET6", "SOCK_DGRAM", "SOCK_STREAM",
    "SO_RXQ_OVFL", "SO_TIMESTAMP", "SO_TIMESTAMPNS", "SOL_UDP", "UDP_GRO", "UDP_SEGMENT",
    "Batch", "BufferSizeWarning", "socket", "available_backends", "backend",
    "Receiver", "ReceiverStats", "ReceiverStopped", "SeqField",
]
