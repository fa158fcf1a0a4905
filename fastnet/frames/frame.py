"""Frame: one instrument frame put together from its packets, and FrameStats, the counts."""

from __future__ import annotations

import socket as _stdsocket
from dataclasses import asdict, dataclass
from typing import Optional, Tuple, Union

import numpy as np

__all__ = ["Frame", "FrameStats"]

Address = Union[Tuple[str, int], Tuple[str, int, int, int]]


class Frame:
    """A frame: ``data[i]`` is the payload of packet ``i``, where ``present[i]``.

    Rows of missing packets hold the spec's ``fill`` byte. A Frame handed out
    by a FrameAssembler is valid until its next ``add`` or ``flush``: its
    arrays are reused then. :meth:`copy` keeps one. ``data`` may be a view
    on the received rows (``FrameAssembler.add(batch, borrow=True)``, as a
    Receiver adds), and then is not C-contiguous.
    """

    __slots__ = ("frame_id", "data", "present", "complete", "first_timestamp", "last_timestamp", "_source")

    def __init__(
        self,
        frame_id: int,
        data: np.ndarray,
        present: np.ndarray,
        complete: bool,
        first_timestamp: int = 0,
        last_timestamp: int = 0,
        source: Union[Address, Tuple["SourceTable", int], None] = None,
    ):
        #: The frame's number (from the counter, or the ``frame_id`` field).
        self.frame_id = frame_id
        #: ``uint8[packets_per_frame, payload_size]``.
        self.data = data
        #: ``bool[packets_per_frame]``: which packets arrived.
        self.present = present
        #: Every packet arrived.
        self.complete = complete
        #: Receive time of the first and the last packet placed, in ns (0 without timestamps).
        self.first_timestamp = first_timestamp
        self.last_timestamp = last_timestamp
        self._source = source

    @property
    def source(self) -> Optional[Address]:
        """Address of the frame's first packet, as ``Batch.address`` gives it."""
        source = self._source
        if source is not None and isinstance(source[0], SourceTable):
            source = self._source = source[0].address(source[1])
        return source

    @property
    def packets(self) -> int:
        """Packets that arrived."""
        return int(np.count_nonzero(self.present))

    def copy(self) -> "Frame":
        """A Frame with arrays of its own, valid for as long as it is kept."""
        return Frame(
            self.frame_id,
            self.data.copy(),
            self.present.copy(),
            self.complete,
            self.first_timestamp,
            self.last_timestamp,
            self.source,
        )

    def __repr__(self) -> str:
        return (
            f"<fastnet.Frame {self.frame_id} {self.packets}/{len(self.present)} packets"
            f"{'' if self.complete else ' incomplete'}>"
        )


class SourceTable:
    """The first packet's source of each frame slot, as the Batch stored it.

    The engine's placer keeps it per slot as each frame begins
    (``FramePlacer.source``). A Frame handed out holds ``(table, slot)`` and
    makes its ``(host, port)`` only when asked: formatting an address for
    every frame cost more than placing the frame's packets, and most frames
    are never asked. The slot is reused with the frame's buffers, so this is
    valid as long as they are.
    """

    __slots__ = ("_placer",)

    def __init__(self, placer) -> None:
        self._placer = placer

    def address(self, slot: int) -> Address:
        family, packed, port, flowinfo, scope_id = self._placer.source(slot)
        width = 16 if family == _stdsocket.AF_INET6 else 4
        host = _stdsocket.inet_ntop(family, packed[:width])
        if family == _stdsocket.AF_INET6:
            return (host, port, flowinfo, scope_id)
        return (host, port)


@dataclass(frozen=True)
class FrameStats:
    """A FrameAssembler's counters.

    Every datagram offered is in exactly one of ``packets_placed``,
    ``packets_late``, ``packets_duplicate`` and ``packets_rejected``; their
    sum is :attr:`packets`.
    """

    #: Frames emitted with every packet.
    frames_complete: int = 0
    #: Frames emitted with packets missing (evicted, or flushed).
    frames_incomplete: int = 0
    #: Frame ids between two emitted frames that were never emitted (no packet in time).
    frames_missing: int = 0
    #: Datagrams whose payload was copied into a frame.
    packets_placed: int = 0
    #: Datagrams for a frame the assembler had already passed (emitted, or behind the window).
    packets_late: int = 0
    #: Datagrams for a packet already placed (the first copy is kept).
    packets_duplicate: int = 0
    #: Datagrams of the wrong length (or cut), or with an index or offset out of range.
    packets_rejected: int = 0

    @property
    def packets(self) -> int:
        """Every datagram offered: placed + late + duplicate + rejected."""
        return self.packets_placed + self.packets_late + self.packets_duplicate + self.packets_rejected

    def as_dict(self) -> dict:
        """The counters as a plain dict (JSON-ready)."""
        return asdict(self)
