"""asyncio for fastnet sockets: ``await sock.recv_batch_async(batch)``.

Waiting is done by the event loop (``loop.add_reader``), not by a thread per
socket. The reader callback only marks the socket readable; the datagrams
are taken afterwards, by the coroutine itself, in one non-blocking
``recv_batch`` with no ``await`` between taking them and returning them. So
a cancellation (which can only land at an ``await``) never finds datagrams
taken but not returned: each datagram is either in the batch returned or
still in the socket's queue, and the reader is always removed.

A close() from another thread wakes the wait through the socket's waker fd
(the same one its blocking waits poll), and the call raises OSError(EBADF),
as a blocked ``recv_batch`` does.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .closing import Waker, closed_error

__all__ = ["AsyncBatchMixin"]

if TYPE_CHECKING:
    import socket as _stdsocket
    import threading

    class _Host(_stdsocket.socket):
        """For type checkers only: what fastnet.socket (fastnet/core/socket.py) gives this mixin."""

        _lock: threading.Lock
        _closing: bool
        _waker: Waker | None

        def _check_batch(
            self, batch: Any, method: str, kind: int = ..., match_family: bool = ...
        ) -> None: ...
        def _enter(self) -> None: ...
        def _leave(self) -> None: ...
        def _make_waker(self) -> Waker: ...
        def recv_batch(self, batch: Any, timeout: Any = ...) -> int: ...
else:
    _Host = object


def _mark_ready(future) -> None:
    if not future.done():
        future.set_result(None)


class AsyncBatchMixin(_Host):
    """Coroutine versions of the batch methods, for fastnet.socket."""

    __slots__ = ()

    async def recv_batch_async(self, batch) -> int:
        """Receive into ``batch`` under asyncio; return the number of datagrams.

        Like ``recv_batch``: waits until at least one datagram is queued, then
        takes every datagram already queued, up to ``batch.capacity``. For a
        time limit use ``asyncio.wait_for`` or ``asyncio.timeout``;
        cancelling leaves the socket usable and loses nothing.
        """
        self._check_batch(batch, "recv_batch_async")
        loop = asyncio.get_running_loop()
        self._enter()  # keep the fd open (and its number ours) while the loop watches it
        try:
            waker_fd = (self._waker or self._make_waker()).fd  # a user now: close() keeps it
            fd = self.fileno()
            while True:
                try:
                    return self.recv_batch(batch, timeout=0)
                except BlockingIOError:
                    pass
                ready = loop.create_future()
                loop.add_reader(fd, _mark_ready, ready)
                loop.add_reader(waker_fd, _mark_ready, ready)
                try:
                    await ready
                finally:
                    loop.remove_reader(fd)
                    loop.remove_reader(waker_fd)
                if self._closing:
                    raise closed_error()
        finally:
            self._leave()
