"""Framing of messages on a byte stream: the settings and the errors.

On a stream (TCP) every message is sent as a *frame*: a length prefix (an
unsigned integer of ``prefix_size`` bytes in ``byteorder``) followed by that
many payload bytes. Nothing else is on the wire: no magic, no padding.

This module is engine-independent: it checks settings and builds the errors,
so both engines raise the same exceptions with the same messages.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

from ..errors import FrameLimitError, FramingError, IncompleteFrameError, SlotTooSmallError

__all__ = [
    "Framing",
    "DEFAULT_FRAMING",
    "FramingError",
    "IncompleteFrameError",
    "FrameLimitError",
    "SlotTooSmallError",
]

PREFIX_SIZES = (2, 4, 8)
BYTEORDERS = ("big", "little")
ON_OVERSIZE = ("error", "truncate")
#: Largest max_frame accepted: far beyond any sane frame, yet P + max_frame
#: still fits a signed 64-bit size in the engines.
MAX_FRAME_LIMIT = 2**62


class Framing(NamedTuple):
    """How frames are laid out on a stream socket (see ``socket.set_framing``)."""

    prefix_size: int = 4
    byteorder: str = "big"
    max_frame: int = 16 * 2**20
    on_oversize: str = "error"

    @property
    def frame_limit(self) -> int:
        """Longest payload allowed: ``max_frame``, or less if the prefix cannot count so far."""
        return min(self.max_frame, 2 ** (8 * self.prefix_size) - 1)

    def replaced(self, prefix_size=None, byteorder=None, max_frame=None, on_oversize=None):
        """A checked copy with the given settings changed (None keeps the current one)."""
        if prefix_size is None:
            prefix_size = self.prefix_size
        elif isinstance(prefix_size, bool) or not isinstance(prefix_size, int):
            raise TypeError(f"prefix_size must be an int, not {type(prefix_size).__name__}")
        elif prefix_size not in PREFIX_SIZES:
            raise ValueError(f"prefix_size must be 2, 4 or 8 bytes, got {prefix_size}")
        if byteorder is None:
            byteorder = self.byteorder
        elif byteorder not in BYTEORDERS:
            raise ValueError(f"byteorder must be 'big' or 'little', got {byteorder!r}")
        if max_frame is None:
            max_frame = self.max_frame
        else:
            if isinstance(max_frame, bool):
                raise TypeError("max_frame must be an int, not bool")
            try:
                max_frame = operator.index(max_frame)
            except TypeError:
                raise TypeError(f"max_frame must be an int, not {type(max_frame).__name__}") from None
            if not 0 <= max_frame <= MAX_FRAME_LIMIT:
                raise ValueError(f"max_frame must be between 0 and 2**62 bytes, got {max_frame}")
        if on_oversize is None:
            on_oversize = self.on_oversize
        elif on_oversize not in ON_OVERSIZE:
            raise ValueError(f"on_oversize must be 'error' or 'truncate', got {on_oversize!r}")
        return Framing(prefix_size, byteorder, max_frame, on_oversize)

    def engine_args(self):
        """Arguments of the engines' ``FrameState.configure``."""
        return (
            self.prefix_size,
            self.byteorder == "little",
            self.frame_limit,
            self.on_oversize == "truncate",
        )


DEFAULT_FRAMING = Framing()
