"""fastnet: move UDP datagrams fast from Python.

The socket steps of the standard library (create, bind, send, receive,
close), plus batches: many datagrams per system call into and out of
preallocated numpy arrays. On TCP, batches of length-prefixed frames.
"""

from socket import AF_INET, AF_INET6, SOCK_DGRAM, SOCK_STREAM

from . import _backend
from ._backend import available_backends
from ._batch import Batch
from ._buffers import BufferSizeWarning
from ._features import features
from ._constants import SO_RXQ_OVFL, SO_TIMESTAMP, SO_TIMESTAMPNS, SOL_UDP, UDP_GRO, UDP_SEGMENT
from ._framing import (Framing, FrameLimitError, FramingError, IncompleteFrameError,
                       SlotTooSmallError)
from ._capture import CaptureError, CaptureReader, read_capture
from ._multicast import join_group, leave_group, prepare_multicast_sender
from ._recorder import Recorder, RecorderStats, open_recorder
from ._sender import Sender, SenderStats
from ._socket import socket
from ._tcp import create_connection, create_server
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
    "features",
    "create_connection", "create_server",
    "Framing", "FramingError", "FrameLimitError", "IncompleteFrameError", "SlotTooSmallError",
    "CaptureError", "CaptureReader", "read_capture", "Recorder", "RecorderStats", "open_recorder",
    "Sender", "SenderStats", "join_group", "leave_group", "prepare_multicast_sender",
    "Receiver", "ReceiverStats", "ReceiverStopped", "SeqField",
]
