"""fastnet: move UDP datagrams fast from Python.

The socket steps of the standard library (create, bind, send, receive,
close), plus batches: many datagrams per system call into and out of
preallocated numpy arrays. On TCP, batches of length-prefixed frames.
"""

from socket import AF_INET, AF_INET6, SOCK_DGRAM, SOCK_STREAM

from . import engines as _engines
from .capture.reader import CaptureReader, read_capture
from .capture.recorder import Recorder, RecorderStats, open_recorder
from .constants import SO_RXQ_OVFL, SO_TIMESTAMP, SO_TIMESTAMPNS, SOL_UDP, UDP_GRO, UDP_SEGMENT
from .core.batch import Batch
from .core.features import features
from .core.framing import Framing
from .core.multicast import join_group, leave_group, prepare_multicast_sender
from .core.socket import fromfd, socket, socketpair
from .core.tcp import create_connection, create_server
from .engines import available_backends
from .errors import (
    BufferSizeWarning,
    CaptureError,
    FrameLimitError,
    FramingError,
    IncompleteFrameError,
    ReceiverStopped,
    SlotTooSmallError,
)
from .frames.assembler import FrameAssembler
from .frames.field import Field, LinearField
from .frames.frame import Frame, FrameStats
from .frames.metrics import MetricsServer, serve_metrics
from .frames.spec import FrameSpec
from .frames.spec_file import load_spec as load_frame_spec
from .frames.writer import FrameWriter, FrameWriterStats
from .receive.receiver import Receiver
from .receive.seq import SeqField
from .receive.stats import ReceiverStats
from .send.sender import Sender, SenderStats

__version__ = "0.1.0"

#: Name of the default engine: "cython" when the extension is built, else
#: "python"; $FASTNET_BACKEND chooses it (and must then load).
backend: str = _engines.default_backend()

__all__ = [
    "AF_INET",
    "AF_INET6",
    "SOCK_DGRAM",
    "SOCK_STREAM",
    "SO_RXQ_OVFL",
    "SO_TIMESTAMP",
    "SO_TIMESTAMPNS",
    "SOL_UDP",
    "UDP_GRO",
    "UDP_SEGMENT",
    "Batch",
    "BufferSizeWarning",
    "socket",
    "socketpair",
    "fromfd",
    "available_backends",
    "backend",
    "features",
    "create_connection",
    "create_server",
    "Framing",
    "FramingError",
    "FrameLimitError",
    "IncompleteFrameError",
    "SlotTooSmallError",
    "CaptureError",
    "CaptureReader",
    "read_capture",
    "Recorder",
    "RecorderStats",
    "open_recorder",
    "Sender",
    "SenderStats",
    "join_group",
    "leave_group",
    "prepare_multicast_sender",
    "Receiver",
    "ReceiverStats",
    "ReceiverStopped",
    "SeqField",
    "Field",
    "LinearField",
    "FrameSpec",
    "load_frame_spec",
    "FrameAssembler",
    "Frame",
    "FrameStats",
    "FrameWriter",
    "FrameWriterStats",
    "serve_metrics",
    "MetricsServer",
]
