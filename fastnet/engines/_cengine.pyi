"""The engine interface, shared by fastnet.engines._cengine (Cython) and fastnet.engines.python.

fastnet.engines.ENGINE_API lists these names; both engines export them, and
fastnet/engines/contract.py checks their signatures at load. Callers
(fastnet/core/socket.py) check every argument first; the engines never block
(MSG_DONTWAIT) and leave waiting to the caller. Every call gets the engine's
own ``SocketState`` for the socket; the engine touches no socket attribute
(save SendLane and RecvLane, which do what the socket's own send_batch and
recv_batch would, the receive's wait included).
"""

from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar, Union

import numpy as np

from ...core.batch import Batch

Address = Union[Tuple[str, int], Tuple[str, int, int, int]]

FEATURES: Dict[str, bool]

class SocketState:
    """What the engine keeps for one socket between calls; made by fastnet.socket.

    ``fd`` (Cython) or ``io``, an untimed twin socket on the fd (python,
    fastnet/engines/python/state.py), is how the engine reaches the kernel.
    """

    family: int
    gro: bool  # UDP_GRO is on; the socket sets it whenever the option changes
    gro_area: Any  # engine-private GRO area (rows carried over), or None
    control_truncated: int  # datagrams received with MSG_CTRUNC

    def __init__(self, fd: int, family: int, kind: int, proto: int) -> None: ...
    @property
    def gro_path(self) -> bool:
        """GRO on, or rows still carried in the area: receives take the GRO path."""
    @property
    def carried(self) -> bool:
        """Rows carried over in the GRO area: the next receive returns them before reading."""
    def keep_error(self, exc: OSError) -> None:
        """Keep an error met after some datagrams, for the next call."""
    def take_error(self) -> Optional[OSError]:
        """The kept error, once."""
    def close(self) -> None:
        """Let go of the fd and the area (the socket closes the fd)."""

def recv_batch(state: SocketState, batch: Batch, ancillary: bool, gro: bool = False) -> int:
    """Take the datagrams already queued, up to batch.capacity; return how many (0 if none).

    Fills rows 0..n-1 of the batch's arrays; does not set batch.count. An
    error after some datagrams is kept (``state.keep_error``) for the next
    call, which the socket raises first (``state.take_error``).

    ``gro`` chooses the GRO path (the caller chooses it, once, from
    ``state.gro_path``, and holds the socket's GRO lock): coalesced
    super-datagrams are received whole into ``state.gro_area`` (an
    engine-private object, created on first use) and split into one row per
    datagram; rows that do not fit stay there and are returned first by the
    next call, which then makes no system call if they fill the batch. The
    area is dropped (set to None) once empty with ``state.gro`` false.
    Without ``gro`` the area is never touched.

    A message that came with MSG_CTRUNC adds 1 to ``state.control_truncated``.
    """

def send_batch(
    state: SocketState,
    batch: Batch,
    start: int,
    stop: int,
    address: Optional[Address],
    gso_size: int = 0,
    gso_segments: int = 0,
) -> int:
    """Send rows start..stop-1; return how many rows went out (0 if the kernel would block).

    ``address`` is numeric (already resolved) or None for a connected socket.
    Raises OSError if the first message fails; ``exc.sent`` (rows) is set
    when some went out.

    ``gso_size`` 0 sends one datagram per row. Otherwise rows go out
    ``gso_segments`` per message with a UDP_SEGMENT control message of
    ``gso_size``; the caller (fastnet/core/gso.py) proposes the plan from
    row 0, and the engine checks as it reads them that rows start..stop-1
    all have that length except a shorter, non-empty last one. Counts stay
    in rows; a refused message sent nothing. Rows outside 0..capacity, or
    lengths outside 0..slot_size (or off the GSO plan) when the engine reads
    them, raise ValueError before any system call (the caller then checks
    all rows and plans again).
    """

# -- the Receiver's capture ring, without the GIL (src/_capture.pxi; optional: contract.OPTIONAL) --

class SendLane:
    """send_batch's common case for one socket in one call (src/_send_lane.pxi)."""

    def __init__(
        self,
        state: SocketState,
        lock: Any,
        batch_type: type,
        claims: Any,
        max_payload: int,
        max_segments: int,
        supported: Any,
        refused: Any,
        with_sent: Any,
    ) -> None: ...
    def send(self, sock: Any, batch: Any, address: Any, gso: Optional[bool]) -> int:
        """Rows sent (all, or what the general path sent after a part); -1: not taken, nothing done."""

class RecvLane:
    """recv_batch's common case for one socket in one call, its waits included (src/_recv_lane.pxi)."""

    def __init__(
        self, state: SocketState, lock: Any, gro_lock: Any, batch_type: type, claims: Any, closed_error: Any
    ) -> None: ...
    def recv(self, sock: Any, batch: Any, timeout: Optional[float]) -> int:
        """Rows received (``batch.count``, at least 1); -1: not taken, nothing done."""

class CaptureRing:
    """A ring of rows filled by ``run()`` in the capture thread, taken by the consumer.

    Same contract as fastnet/receive/capture_loop.py CaptureRing (whose ``run``
    takes the socket instead of its state); see docs/design/capture-ring.md.
    """

    def __init__(
        self, ring: Batch, scratch: Batch, batch_size: int, drop: bool, max_delay_ns: int
    ) -> None: ...
    def run(self, state: SocketState, waker_fd: int, unread_limit: int) -> None:
        """Capture without the GIL until request_stop(), an error or the socket's close; then sweep."""
    def request_stop(self) -> None: ...
    def finish(self) -> None: ...
    def close_consumer(self) -> None: ...
    def take(self, wait: float, flush: bool = False) -> Tuple[int, int, int]:
        """Free the last hand-over, wait for the next: ``(start, n, cursor)``."""
    def wait_ready(self, wait: float) -> bool: ...
    @property
    def counts(self) -> Tuple[int, int, int, int, int, int, int, int]: ...
    @property
    def position(self) -> Tuple[int, int]: ...

# -- length-prefixed frames on stream sockets (fastnet/engines/python/framing.py, src/_framing.pxi) --

class FrameState:
    """Per-socket framing state, made once per socket by fastnet/core/stream.py.

    Holds the receive buffer (bytes of frames not yet returned), the
    unwritten rest of a partly sent frame, and the settings.
    """

    prefix_size: int  # 2, 4 or 8
    little_endian: bool
    max_frame: int  # longest payload accepted (already capped by the prefix)
    truncate: bool  # True: cut frames longer than slot_size; False: stop at them
    eof: bool  # the peer closed; no more bytes will be read
    blocked_length: Optional[int]  # set when the next frame cannot come out (over max_frame,
    # or over slot_size without truncate); None otherwise
    pending_error: Optional[OSError]  # error met after some frames; the caller raises it next
    peer: object  # caller's cache of the peer's address
    recv_busy: bool  # caller's guards: one receiving and one sending call at a time
    send_busy: bool

    def __init__(self) -> None: ...
    def configure(self, prefix_size: int, little_endian: bool, max_frame: int, truncate: bool) -> None:
        """Set the framing; buffered bytes are parsed with the new one. ValueError if out of range."""
    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as frames."""
    @property
    def unsent(self) -> int:
        """Bytes of a partly sent frame still to be written."""
    def peek(self, nbytes: int) -> bytes:
        """Up to nbytes of the buffered bytes, not consumed."""

def recv_frames(state: SocketState, batch: Batch, st: FrameState) -> int:
    """Copy whole frames into rows 0..n-1 (lengths, truncated); return n (0 if none).

    Reads what the kernel has queued without blocking; bytes of an
    incomplete frame stay in ``st``. Stops early, with
    ``st.blocked_length`` set, at a frame it may not take; sets
    ``st.eof`` when the peer has closed. An error after some frames is
    kept in ``st.pending_error``. Does not set batch.count or addresses.
    """

def send_frames(state: SocketState, batch: Batch, start: int, stop: int, st: FrameState) -> int:
    """Write rows start..stop-1 as frames (gathered writes) without blocking; return how many.

    A frame the kernel took only part of counts as sent; its rest is kept in
    ``st`` (``st.unsent``) for ``flush_unsent``. Returns 0 if the kernel
    would block, or if ``st.unsent`` was not 0 on entry (flush first).
    Raises OSError; ``exc.sent`` is set when some frames went out. Rows
    outside 0..capacity raise ValueError, and so does a length outside
    0..slot_size when the engine reads it (with ``exc.sent`` if frames of
    earlier writes went out); ``st`` must be a FrameState (TypeError).
    """

def flush_unsent(state: SocketState, st: FrameState) -> int:
    """Write the held rest of a partly sent frame without blocking; return bytes still held."""

# -- frame placement by header fields (fastnet/engines/python/frames.py, src/_frames.pxi) --

Terms = Tuple[Tuple[int, int, bool, int, int, int], ...]
T = TypeVar("T")  # the class take_frames makes frames of  # (offset, size, big-endian, mask, shift, scale)

class FramePlacer:
    """Datagrams put into frames by header fields; made by fastnet.FrameAssembler from a FrameSpec.

    Frame slots are arrays the caller gives (``add_slots``); a slot is free,
    in flight (a frame being filled) or emitted (handed out, until
    ``release``). Frames in flight have ids in a window of
    ``frames_in_flight`` ids; ids below it are late. The C placement is a
    function over row pointers that runs without the GIL.
    """

    def __init__(
        self,
        payload_offset: int,
        payload_size: int,
        packets_per_frame: int,
        packet_size: int,  # -1: any length that holds the payload and fields
        fill: int,
        mode: int,  # 0 counter, 1 frame_id + index, 2 frame_id + offset
        first_terms: Terms,  # the counter, or the frame id
        second_terms: Terms,  # the index or the offset; () for a counter
        frames_in_flight: int,
    ) -> None: ...
    def add_slots(self, data: np.ndarray, present: np.ndarray) -> None:
        """Add ``k`` free slots backed by these arrays (kept alive by the placer).

        ``data`` is uint8 [k, packets_per_frame, payload_size], ``present``
        uint8 [k, packets_per_frame], both C-contiguous.
        """
    def place(
        self,
        data: np.ndarray,
        lengths: np.ndarray,
        truncated: np.ndarray,
        timestamps: np.ndarray,
        start: int,
        stop: int,
        *,
        family: int = 0,
        addresses: Optional[np.ndarray] = None,
        ports: Optional[np.ndarray] = None,
        flowinfo: Optional[np.ndarray] = None,
        scope_ids: Optional[np.ndarray] = None,
        borrow: bool = False,
    ) -> int:
        """Place rows start..stop-1; return the first row not taken (stop, or less when no slot is free).

        ValueError, before any row is read, for rows out of range or a
        length outside 0..data.shape[1]. With a Batch's ``addresses``
        (uint8 [rows, 4 or 16]), ``ports``, ``flowinfo`` and ``scope_ids``,
        each frame begun keeps its first packet's source (``source``);
        without them, zeros. With ``borrow``, the caller keeps ``data``'s
        rows unchanged until the next call to the placer, and while it uses
        the frames the next ``take_frames`` makes. That call may then give a
        complete frame whose packets lie in consecutive rows of this call,
        in order, a view on those rows (``data[r:r + packets_per_frame,
        payload]``) instead of ``data[slot]``; an engine may also copy, as
        the pure-Python one does.
        """
    def flush(self) -> None:
        """Emit every frame in flight, oldest first."""
    def evict_begun_before(self, cutoff_ns: int) -> None:
        """Evict, oldest first, the frames in flight up to the newest one begun before ``cutoff_ns``.

        A frame is begun when its first packet is placed; the time is a
        ``CLOCK_MONOTONIC`` reading in ns (``time.monotonic_ns()``), one per
        ``place`` call. Older frames go with an aged one, so frames still
        come out in increasing id order; the window then starts after it.
        """
    @property
    def oldest_begun_ns(self) -> int:
        """When the longest-waiting frame in flight was begun (ns, as above); -1 when none is."""
    def take_emitted(self) -> List[Tuple[int, int, bool, int, int]]:
        """(slot, frame_id, complete, first_ts, last_ts): frames emitted since the last call, oldest first."""
    def take_frames(
        self,
        frame_type: Type[T],
        data: List[np.ndarray],
        present: List[np.ndarray],
        sources: object,
        handed_out: List[int],
    ) -> List[T]:
        """take_emitted's frames made in one call, oldest first, and their slots appended to ``handed_out``.

        Each is a new ``frame_type`` made without calling it (no
        ``__init__``), its slots ``frame_id``, ``data``, ``present``,
        ``complete``, ``first_timestamp``, ``last_timestamp`` and ``_source``
        set to frame_id, ``data[slot]``, ``present[slot]``, complete,
        first_ts, last_ts and ``(sources, slot)``; TypeError unless each is
        a ``__slots__`` attribute. ``data`` and ``present`` hold an entry
        per slot (ValueError otherwise).
        """
    def source(self, slot: int) -> Tuple[int, bytes, int, int, int]:
        """(family, address (16 bytes, zero-padded), port, flowinfo, scope_id) of the slot's first packet."""
    def release(self, slot: int) -> None:
        """Give back a slot take_emitted handed out (ValueError for any other)."""
    def release_all(self, slots: List[int]) -> None:
        """``release`` each of these slots, in one call."""
    @property
    def free_slots(self) -> int: ...
    @property
    def slots(self) -> int: ...
    @property
    def counters(self) -> Tuple[int, int, int, int, int, int, int]:
        """(placed, late, duplicate, rejected, frames_complete, frames_incomplete, frames_missing)."""
