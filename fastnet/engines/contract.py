"""The engine contract: what an engine module exports, checked when it loads.

An engine is a module (fastnet.engines._cengine, built from src/, or
fastnet.engines.python). The layer above it (fastnet/core/socket.py and
core/stream.py) checks every argument, does all waiting with poll(2), and
calls the engine only with MSG_DONTWAIT semantics. The engine touches two
kinds of object:

* its own per-socket ``SocketState``, made by the socket when it is created
  and passed as the first argument of every call: the engine keeps there
  what must outlive one call (the GRO area with rows carried over, an error
  met after some datagrams, the MSG_CTRUNC count). It reads and writes no
  attribute of the socket, save in the optional lanes below (``SendLane``,
  ``RecvLane``), which also wait as the socket does.
* a ``fastnet.Batch``, whose private fields it reads and fills: exactly the
  ones named in ``fastnet.core.batch.ENGINE_FIELDS``.

An engine may also export the names in ``OPTIONAL`` (the Cython engine's
GIL-free capture ring); the layers above fall back to their own where one
is missing.

The signatures are ``Engine`` below (their full description is in
fastnet/engines/_cengine.pyi); ``check`` holds a module to them at load, so
an engine that drifts fails at import and not in a user's script.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any, Optional, Protocol

# fastnet.core.batch.Batch and its Address: the core layer sits above the
# engines (tests/test_layout.py), so they are named here, not imported.
Batch = Any
Address = Any

__all__ = ["Engine", "SocketState", "NAMES", "STATE_MEMBERS", "check"]


class SocketState(Protocol):
    """What an engine keeps for one socket between calls."""

    family: int
    gro: bool  # UDP_GRO is on; the socket sets it whenever the option changes
    gro_area: Any  # the engine's GRO receive area, rows carried over; None when unused
    control_truncated: int  # datagrams received with MSG_CTRUNC

    def __init__(self, fd: int, family: int, kind: int, proto: int) -> None: ...
    @property
    def gro_path(self) -> bool:
        """Receives must take the GRO path (GRO on, or rows carried in the area)."""

    @property
    def carried(self) -> bool:
        """Rows are carried over in the GRO area: the next receive returns them without reading."""

    def keep_error(self, exc: OSError) -> None:
        """Keep an error met after some datagrams, for the next call."""

    def take_error(self) -> Optional[OSError]:
        """The kept error, once."""

    def close(self) -> None:
        """Let go of the fd and the area; the socket closes the fd and makes no call after."""


_State = SocketState  # the Protocol, under a name Engine's attribute SocketState does not hide


class Engine(Protocol):
    """The functions every engine exports (their contract: fastnet/engines/_cengine.pyi)."""

    FEATURES: dict[str, bool]
    SocketState: type[_State]
    FrameState: type
    FramePlacer: type  # frame placement by header fields (src/_frames.pxi, engines/python/frames.py)

    def recv_batch(self, state: _State, batch: Batch, ancillary: bool, gro: bool = False) -> int: ...
    def send_batch(
        self,
        state: _State,
        batch: Batch,
        start: int,
        stop: int,
        address: Optional[Address],
        gso_size: int = 0,
        gso_segments: int = 0,
    ) -> int: ...
    def recv_frames(self, state: _State, batch: Batch, st: Any) -> int: ...
    def send_frames(self, state: _State, batch: Batch, start: int, stop: int, st: Any) -> int: ...
    def flush_unsent(self, state: _State, st: Any) -> int: ...


#: The functions of ``Engine``; every name an engine exports; the members every ``SocketState`` has.
FUNCTIONS = ("recv_batch", "send_batch", "recv_frames", "send_frames", "flush_unsent")
NAMES = ("SocketState", "FEATURES", "FrameState", "FramePlacer", *FUNCTIONS)
#: Exported by an engine that has them; the layer above falls back where one does
#: not. ``CaptureRing``: the Receiver's capture loop without the GIL
#: (src/_capture.pxi; its ``run`` takes the engine's SocketState); without it
#: the Receiver runs the same ring in Python (fastnet/receive/capture_loop.py).
#: ``SendLane`` and ``RecvLane``: send_batch's and recv_batch's common case in
#: one call (src/_send_lane.pxi, src/_recv_lane.pxi), the engine objects that
#: read the socket's fields, as socket._enter and gso.proposed do; without
#: them every call takes socket._send_batch or socket._recv_batch.
OPTIONAL = ("CaptureRing", "SendLane", "RecvLane")
#: What the lanes read and write beyond the rest of the engine: the socket's
#: fields that socket._enter/_leave, _resolve, _wait, recv_batch and
#: gso.proposed use (and the general path send_batch hands other cases to), and
#: the Batch's count and in-use mark (Batch._claim). Each is named beside its
#: use in LANE_SOURCES. Batch._check_layout's test is made in C there
#: (_Scratch.layout_kept, on the arrays' shapes), and a reshaped Batch goes
#: to the general path, which raises the error.
LANE_SOURCES = ("_fields.pxi", "_socket_use.pxi", "_send_lane.pxi", "_recv_lane.pxi")
LANE_SOCKET_FIELDS = (
    "_ancillary",
    "_close_now",
    "_closed",
    "_closing",
    "_drained",
    "_gso_refused_from",
    "_last_address",
    "_make_waker",
    "_send_batch",
    "_users",
    "_waker",
    "gettimeout",
)
LANE_BATCH_FIELDS = ("_count", "_user")
#: The attributes ``FramePlacer.take_frames`` sets on each frame it makes, in
#: this order (``fastnet.frames.Frame``'s ``__slots__``).
FRAME_FIELDS = ("frame_id", "data", "present", "complete", "first_timestamp", "last_timestamp", "_source")


def frame_slot_descriptors(frame_type: type) -> tuple:
    """The member descriptors of ``frame_type``'s FRAME_FIELDS, in order.

    TypeError unless each is a plain ``__slots__`` attribute: take_frames
    stores into them without calling the class, so nothing else will do.
    """
    found = []
    for name in FRAME_FIELDS:
        d = getattr(frame_type, name, None)  # on the class, a slot's descriptor returns itself
        if type(d).__name__ != "member_descriptor":
            raise TypeError(f"take_frames: {frame_type.__name__}.{name} is not a __slots__ attribute")
        found.append(d)
    return tuple(found)


STATE_MEMBERS = (
    "family",
    "gro",
    "gro_area",
    "control_truncated",
    "gro_path",
    "carried",
    "keep_error",
    "take_error",
    "close",
)


def _parameters(function) -> list[tuple[str, object]]:
    """``(name, default)`` of each parameter but ``self``."""
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values() if p.name != "self"]


def check(module: ModuleType) -> list[str]:
    """What ``module`` lacks or has wrong against the contract; empty if it conforms."""
    problems = []
    for name in NAMES:
        if not hasattr(module, name):
            problems.append(f"lacks {name}")
    for name in FUNCTIONS:
        function = getattr(module, name, None)
        if function is None:
            continue
        try:
            got = _parameters(function)
        except (TypeError, ValueError):
            problems.append(f"{name} has no signature to check")
            continue
        want = _parameters(getattr(Engine, name))
        if got != want:
            problems.append(
                f"{name}{inspect.signature(function)} does not match the contract's parameters {want}"
            )
    state = getattr(module, "SocketState", None)
    if state is not None:
        missing = [member for member in STATE_MEMBERS if not hasattr(state, member)]
        if missing:
            problems.append(f"SocketState lacks {', '.join(missing)}")
    return problems
