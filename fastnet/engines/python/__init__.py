"""The pure-Python engine: the batch loops on the standard library alone.

It exports the names of ``fastnet.engines.ENGINE_API``, as the Cython engine
(``fastnet.engines._cengine``, built from ``src/``) does. Module by module it
pairs with the Cython sources:

* ``batches.py``  <-> ``src/_cengine.pyx``: recv_batch / send_batch;
* ``offload.py``  <-> ``src/_gro.pxi`` (GRO split) and the GSO send in ``_cengine.pyx``;
* ``framing.py``  <-> ``src/_framing.pxi``: length-prefixed frames on TCP;
* ``ancillary.py`` <-> the control-message parsing in ``src/_cengine.pyx``;
* ``state.py``    <-> ``src/_state.pxi``: SocketState, the engine's per-socket object;
* ``frames.py``   <-> ``src/_frames.pxi``: placing datagrams into frames by their headers.
"""

from .batches import FEATURES, recv_batch, send_batch
from .frames import FramePlacer
from .framing import FrameState, flush_unsent, recv_frames, send_frames
from .state import SocketState

__all__ = [
    "SocketState",
    "recv_batch",
    "send_batch",
    "FEATURES",
    "FrameState",
    "recv_frames",
    "send_frames",
    "flush_unsent",
    "FramePlacer",
]
