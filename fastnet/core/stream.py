"""Stream (TCP) methods of fastnet.socket: accept, and framed batches.

``fastnet.socket`` inherits this mixin; it relies on the socket's engine and
on its waiting machinery (``_enter``/``_leave``/``_wait``/``_deadline`` in
fastnet/core/socket.py), so a blocked call wakes on close() from another thread,
on Ctrl-C, and on its timeout, exactly like ``recv_batch``.

Framed batches: each message on the stream is a *frame*, a length prefix
then that many bytes (fastnet/core/framing.py). ``send_frames`` writes rows of a
Batch as frames; ``recv_frames`` fills a Batch with whole frames. A
per-socket ``FrameState`` of the socket's engine, made on first use, keeps
what lies between calls: received bytes of a frame not yet complete, and the
unwritten rest of a frame the kernel took only part of.
"""

from __future__ import annotations

import errno
import operator
import os
import select
import socket as _stdsocket
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from ..errors import with_sent
from .batch import Batch
from .framing import DEFAULT_FRAMING, FrameLimitError, IncompleteFrameError, SlotTooSmallError

__all__ = ["StreamMixin"]

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT

if TYPE_CHECKING:
    import threading

    class _Host(_stdsocket.socket):
        """For type checkers only: what fastnet.socket (fastnet/core/socket.py) gives this mixin."""

        _engine: Any  # the engine module, python or cython: the same functions
        _engine_state: Any  # the engine's SocketState for this socket
        _backend: str
        _lock: threading.Lock

        def __init__(
            self,
            family: int = ...,
            type: int = ...,
            proto: int = ...,
            fileno: int | None = ...,
            *,
            backend: str | None = ...,
            gro: bool = ...,
        ) -> None: ...
        def _accept(self) -> tuple[int, Any]: ...  # socket.socket's, undeclared in typeshed
        def _check_batch(
            self, batch: Any, method: str, kind: int = ..., match_family: bool = ...
        ) -> None: ...
        def _deadline(self, timeout: Any) -> float | None: ...
        def _enter(self, batch=None, method: str = "") -> None: ...
        def _leave(self, batch=None) -> None: ...
        def _wait(self, events: int, deadline: float | None) -> None: ...
else:
    _Host = object


class StreamMixin(_Host):
    """accept() returning fastnet sockets, and length-prefixed frames in batches."""

    __slots__ = ()

    _framing = DEFAULT_FRAMING  # replaced per socket by set_framing
    _frames = None  # the engine's FrameState, made on first use

    # -- the standard step, returning a fastnet socket ----------------------
    def accept(self):
        """Accept a connection: ``(fastnet.socket, address)``, as ``socket.accept`` does.

        The new socket uses the same backend and inherits this socket's
        framing settings. Waiting is done like ``recv_batch``'s: close()
        from another thread ends a blocked accept with ``OSError(EBADF)``.
        """
        deadline = self._deadline(None)
        self._enter()
        try:
            # Only a listening socket ever becomes ready to accept; on any
            # other the kernel's error (EINVAL, EOPNOTSUPP) comes at once.
            if deadline != 0.0 and self._listening():
                self._wait(_POLLIN, deadline)
            fd, address = self._accept()
        finally:
            self._leave()
        sock = type(self)(self.family, self.type, self.proto, fileno=fd, backend=self._backend)
        # As socket.accept: if no default timeout is set and this socket has
        # one, make the new socket blocking rather than inherit the flags.
        if _stdsocket.getdefaulttimeout() is None and self.gettimeout():
            sock.setblocking(True)
        sock._framing = self._framing
        return sock, address

    def _listening(self) -> bool:
        try:
            return bool(self.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_ACCEPTCONN))
        except OSError:
            return False

    # -- framing settings ----------------------------------------------------
    @property
    def framing(self):
        """The frame layout: ``Framing(prefix_size, byteorder, max_frame, on_oversize)``."""
        return self._framing

    def set_framing(self, *, prefix_size=None, byteorder=None, max_frame=None, on_oversize=None):
        """Choose the frame layout; arguments left out keep their current value.

        ``prefix_size``: 2, 4 (default) or 8 bytes of unsigned length before
        each payload; ``byteorder``: ``"big"`` (default, network order) or
        ``"little"``; ``max_frame``: longest payload accepted (default 16 MiB):
        a longer length prefix raises ``FrameLimitError`` before anything is
        allocated; ``on_oversize``: what ``recv_frames`` does with a frame
        longer than the batch's ``slot_size``: ``"error"`` (default, raise
        ``SlotTooSmallError`` and leave it queued) or ``"truncate"`` (keep
        the first ``slot_size`` bytes, flag it in ``batch.truncated``).

        Bytes already received but not yet returned are parsed with the new
        settings. Sockets from ``accept()`` inherit them. Returns the new
        settings.
        """
        framing = self._framing.replaced(prefix_size, byteorder, max_frame, on_oversize)
        with self._lock:
            self._framing = framing
            if self._frames is not None:
                self._frames.configure(*framing.engine_args())
        return framing

    # -- framed batches ------------------------------------------------------
    def recv_frames(self, batch: Batch, timeout=None) -> int:
        """Receive whole frames into ``batch``; return how many (also ``batch.count``).

        Blocks until at least one whole frame is here (``timeout`` seconds,
        default the socket's own timeout), then takes every whole frame
        already received, up to ``batch.capacity``, without waiting for
        more. A frame never comes out in parts: bytes of an incomplete frame
        wait in the socket for the next call.

        Returns 0 when the peer closed the connection at a frame boundary
        (as ``recv`` returns ``b""``), on this and every later call. Raises
        ``IncompleteFrameError`` once the whole frames are out if it closed
        in the middle of one; ``FrameLimitError`` for a length prefix over
        ``max_frame``; ``SlotTooSmallError`` for a frame longer than
        ``batch.slot_size`` (it stays queued) unless the framing says
        ``on_oversize="truncate"``; ``TimeoutError`` / ``BlockingIOError``
        when no whole frame arrived in time / is here on a non-blocking
        socket; the kernel's ``OSError`` (``ConnectionResetError`` ...)
        otherwise. Rows get the peer's address, as ``recvfrom`` would.
        """
        self._check_batch(batch, "recv_frames", _stdsocket.SOCK_STREAM)
        deadline = self._deadline(timeout)
        state = self._frame_state()
        self._enter(batch, "recv_frames")
        try:
            batch._count = 0
            self._claim(state, "recv_busy", "recv_frames")
            try:
                error, state.pending_error = state.pending_error, None
                if error is not None:
                    raise error
                engine_recv = self._engine.recv_frames
                while True:
                    n = engine_recv(self._engine_state, batch, state)
                    if n:
                        self._fill_sources(batch, n, state)
                        batch._count = n
                        return n
                    self._raise_if_stuck(batch, state)
                    if state.eof:
                        return 0
                    self._wait(_POLLIN, deadline)
            finally:
                state.recv_busy = False
        finally:
            self._leave(batch)

    def send_frames(self, batch: Batch, start: int = 0) -> int:
        """Send rows ``start..batch.count-1`` as frames; return how many were sent.

        Frames go out with one gathered write per 512 of them. A blocking
        socket sends them all (within its timeout). A non-blocking socket
        sends what the kernel takes and returns the number of rows done;
        call again with ``start`` advanced by it to send the rest. If the
        kernel takes only part of a frame, that frame counts as sent: its
        rest is held by the socket and written first by the next
        ``send_frames`` or ``flush_frames``, so frames are never cut or
        interleaved on the wire. Raises ``BlockingIOError`` only if no row
        could be sent.

        An error part way (``OSError``, ``TimeoutError``) carries
        ``exc.sent``: the rows sent before it.
        """
        # Frames carry no addresses: a batch of either family will do.
        self._check_batch(batch, "send_frames", _stdsocket.SOCK_STREAM, match_family=False)
        count = batch._count
        if isinstance(start, bool):
            raise TypeError("start must be an integer, not bool")
        start = operator.index(start)
        if not 0 <= start <= count:
            raise ValueError(f"start must be between 0 and batch.count ({count}), got {start}")
        if count > start:
            lengths = batch._lengths[start:count]
            limit = min(batch._slot_size, self._framing.frame_limit)
            if lengths.min() < 0 or lengths.max() > limit:
                raise ValueError(
                    f"batch.lengths[{start}:{count}] must be between 0 and {limit} (the "
                    f"smallest of slot_size {batch._slot_size}, max_frame "
                    f"{self._framing.max_frame} and what a {self._framing.prefix_size}-byte "
                    f"prefix can count)"
                )
        deadline = self._deadline(None)
        state = self._frame_state()
        self._enter(batch, "send_frames")
        total = 0
        try:
            self._claim(state, "send_busy", "send_frames")
            try:
                engine = self._engine
                while True:
                    try:
                        if state.unsent:
                            engine.flush_unsent(self._engine_state, state)
                        if not state.unsent and start + total < count:
                            total += engine.send_frames(
                                self._engine_state, batch, start + total, count, state
                            )
                        if not state.unsent and start + total == count:
                            return total
                        if deadline == 0.0:
                            if total or start == count:
                                return total
                            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
                        self._wait(_POLLOUT, deadline)
                    except (OSError, ValueError) as exc:  # ValueError: lengths changed meanwhile
                        with_sent(exc, total + getattr(exc, "sent", 0))
                        raise
            finally:
                state.send_busy = False
        finally:
            self._leave(batch)

    def flush_frames(self) -> int:
        """Write the held rest of a partly sent frame; return the bytes still held.

        A blocking socket writes it all (within its timeout) and returns 0;
        a non-blocking one writes what the kernel takes. Call it before
        ``close()``, or before plain ``send``/``sendall``, once a
        non-blocking ``send_frames`` has returned.
        """
        state = self._frames
        if state is None or not state.unsent:
            return 0
        deadline = self._deadline(None)
        self._enter()
        try:
            self._claim(state, "send_busy", "flush_frames")
            try:
                while True:
                    left = self._engine.flush_unsent(self._engine_state, state)
                    if not left or deadline == 0.0:
                        return left
                    self._wait(_POLLOUT, deadline)
            finally:
                state.send_busy = False
        finally:
            self._leave()

    # -- helpers ---------------------------------------------------------------
    def _frame_state(self):
        state = self._frames
        if state is None:
            with self._lock:
                state = self._frames
                if state is None:
                    state = self._engine.FrameState()
                    state.configure(*self._framing.engine_args())
                    self._frames = state
        return state

    def _claim(self, state, flag: str, method: str) -> None:
        """One receiving and one sending call at a time: they share the buffers."""
        with self._lock:
            if getattr(state, flag):
                raise RuntimeError(f"{method} is already running on this socket in another thread")
            setattr(state, flag, True)

    def _raise_if_stuck(self, batch, state) -> None:
        """Raise if the next frame cannot come out: too long, or cut by the peer's close."""
        length = state.blocked_length
        if length is not None:
            if length > state.max_frame:
                raise FrameLimitError(length, self._framing.max_frame)
            raise SlotTooSmallError(length, batch._slot_size)
        if state.eof and state.buffered:
            prefix = state.prefix_size
            expected = None
            if state.buffered >= prefix:
                # Framing.replaced only lets "big" or "little" in.
                byteorder = cast(Literal["big", "little"], self._framing.byteorder)
                expected = prefix + int.from_bytes(state.peek(prefix), byteorder)
            raise IncompleteFrameError(state.buffered, expected, prefix)

    def _fill_sources(self, batch, n: int, state) -> None:
        """Every frame came from the peer: give rows its address, as recvfrom would."""
        peer = state.peer
        if peer is None:
            try:
                address = self.getpeername()
            except OSError:  # already reset: the frames are still the peer's
                address = ("::", 0, 0, 0) if self.family == _stdsocket.AF_INET6 else ("0.0.0.0", 0)
            packed = np.frombuffer(_stdsocket.inet_pton(self.family, address[0]), dtype=np.uint8)
            flowinfo = address[2] if len(address) > 2 else 0
            scope_id = address[3] if len(address) > 3 else 0
            peer = state.peer = (packed, address[1], flowinfo, scope_id)
        packed, port, flowinfo, scope_id = peer
        batch._addresses[:n] = packed
        batch._ports[:n] = port
        batch._flowinfo[:n] = flowinfo
        batch._scope_ids[:n] = scope_id
        batch._timestamps[:n] = 0
