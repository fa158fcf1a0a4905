"""Every exception and warning class fastnet raises, in one place.

Each is also exported as ``fastnet.<Name>``. Where a standard class already
says what went wrong (``OSError`` with its errno, ``TimeoutError``,
``ValueError``, ``TypeError``), fastnet raises that one; the classes here are
for what the standard library has no word for. Each subclasses the standard
class a caller would otherwise catch.
"""

from __future__ import annotations

from typing import TypeVar

_E = TypeVar("_E", bound=Exception)

__all__ = [
    "BufferSizeWarning",
    "CaptureError",
    "FramingError",
    "IncompleteFrameError",
    "FrameLimitError",
    "SlotTooSmallError",
    "FanOutError",
    "ReceiverStopped",
]


class BufferSizeWarning(RuntimeWarning):
    """The kernel gave a smaller socket buffer than was asked for."""


class CaptureError(ValueError):
    """A capture file is of an unknown format, cut short, or corrupt.

    ``offset`` is the byte offset in the file where the problem starts.
    """

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset


class FramingError(ConnectionError):
    """The byte stream cannot be split into frames past this point.

    Nothing is consumed or skipped: every later ``recv_frames`` raises the
    same error, so the connection is unusable for frames. Close the socket.
    """


class IncompleteFrameError(FramingError):
    """The peer closed the connection in the middle of a frame.

    ``received`` is the number of bytes of that frame that arrived (and are
    lost), ``expected`` the frame's full size on the wire (prefix included),
    or None if even the length prefix was incomplete.
    """

    def __init__(self, received: int, expected, prefix_size: int):
        self.received = received
        self.expected = expected
        if expected is None:
            what = f"{received} of the {prefix_size} bytes of a length prefix"
        else:
            what = (
                f"{received} of {expected} bytes of a frame "
                f"({prefix_size}-byte prefix + {expected - prefix_size}-byte payload)"
            )
        super().__init__(f"peer closed the connection in the middle of a frame: {what} arrived and are lost")


class FrameLimitError(FramingError):
    """A length prefix announced more than ``max_frame`` bytes.

    Raised before anything is allocated for it. A peer that sends such a
    prefix is not speaking this framing (or is hostile), so the stream is
    unusable: the prefix stays first in line and every later
    ``recv_frames`` raises again. Only raising ``max_frame`` with
    ``set_framing`` would let parsing go on, if such frames are expected.
    """

    def __init__(self, length: int, max_frame: int):
        self.length = length
        self.max_frame = max_frame
        super().__init__(
            f"length prefix announces a frame of {length} bytes, over max_frame "
            f"({max_frame}); the stream cannot be parsed past it: close the "
            f"connection"
        )


class SlotTooSmallError(ValueError):
    """The next frame is longer than the batch's ``slot_size``.

    Nothing is consumed: the frame stays first in line, so the next
    ``recv_frames`` raises again, unless it is given a Batch with a
    ``slot_size`` of at least ``length`` or the socket is set to
    ``on_oversize="truncate"``.
    """

    def __init__(self, length: int, slot_size: int):
        self.length = length
        self.slot_size = slot_size
        super().__init__(
            f"next frame has {length} bytes, more than slot_size {slot_size}; it "
            f"stays queued: receive it into a Batch with slot_size >= {length}, or "
            f"set_framing(on_oversize='truncate')"
        )


class FanOutError(RuntimeError):
    """A worker failed; the message holds its traceback."""


class ReceiverStopped(Exception):
    """``get()`` on a Receiver that has stopped and delivered every batch it captured."""


def with_sent(exc: _E, sent: int) -> _E:
    """Record on ``exc`` how many rows (or frames) went out before it; return ``exc``.

    A send that fails part way raises the ``OSError`` (or ``ValueError``) it got with an extra
    ``sent`` attribute, so the caller knows where to resume: rows ``sent``
    onwards did not go out. ``OSError`` declares no such attribute, so it is
    set here, in one place, with ``setattr``; read it back with
    ``getattr(exc, "sent", 0)``.
    """
    setattr(exc, "sent", sent)  # noqa: B010 - OSError declares no ``sent`` for a plain assignment
    return exc
