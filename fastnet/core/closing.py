"""Closing while blocked: the waker fd a blocked batch call polls beside its socket.

close(2), NOTES: "closing a file descriptor while it is in use by a system
call in another thread" does not wake that call on Linux, and the fd number
may be reused at once by another open. So a fastnet socket's blocking and
asyncio waits poll a second fd, this waker, which ``close()`` from another
thread makes readable; the waiting call then raises ``closed_error()``
(EBADF), as the standard library does for a socket closed under it.
"""

from __future__ import annotations

import errno
import os

__all__ = ["Waker", "closed_error"]


def closed_error() -> OSError:
    """The error a call on a closed socket raises: OSError(EBADF)."""
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


class Waker:
    """An fd that becomes readable once ``wake()`` is called."""

    __slots__ = ("fd", "_write_fd", "pollers")

    def __init__(self):
        #: Poll objects watching this fd and the socket's, kept between waits
        #: by (events, socket fd) and taken out while in use (socket._wait).
        self.pollers: dict = {}
        if hasattr(os, "eventfd"):
            self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._write_fd = self.fd
        else:  # pragma: no cover - non-Linux
            self.fd, self._write_fd = os.pipe()
            os.set_blocking(self._write_fd, False)

    def wake(self) -> None:
        try:
            os.write(self._write_fd, (1).to_bytes(8, "little"))
        except BlockingIOError:  # already signalled
            pass

    def close(self) -> None:
        os.close(self.fd)
        if self._write_fd != self.fd:
            os.close(self._write_fd)
