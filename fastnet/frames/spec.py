"""FrameSpec: where each datagram's payload belongs in an instrument frame.

A frame is ``packets_per_frame`` payloads of ``payload_size`` bytes. Each
datagram carries one payload at ``payload_offset`` and says where it goes by
one of three placements:

``counter=``
    a packet counter: frame ``counter // packets_per_frame``, index
    ``counter % packets_per_frame``;
``frame_id=`` and ``index=``
    the frame's number and the packet's place in it;
``frame_id=`` and ``offset=``
    the frame's number and the byte offset of the payload in the frame, a
    multiple of ``payload_size``.

Everything is checked here, once, so the engines get only numbers that fit.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Tuple, Union

from ..core.checks import int_between
from .field import Field, LinearField, as_linear, field_from_dict

__all__ = ["FrameSpec", "COUNTER", "INDEX", "OFFSET", "MAX_DATAGRAM", "MAX_FRAME_BYTES"]

#: Placement modes, as the engines number them.
COUNTER, INDEX, OFFSET = 0, 1, 2
_MODE_NAMES = {COUNTER: "counter", INDEX: "index", OFFSET: "offset"}

#: The largest UDP payload a datagram can carry (a 16-bit length field).
MAX_DATAGRAM = 65535
#: Upper bounds that keep a typo from asking for terabytes of frame buffers.
MAX_PACKETS_PER_FRAME = 1 << 20
MAX_FRAME_BYTES = 1 << 31

Placement = Union[Field, LinearField]


class FrameSpec:
    """How datagrams are cut from, and put back into, instrument frames.

    ``packet_size``, if given, is the only datagram length accepted; without
    it any datagram that holds the payload and every field is accepted.
    ``fill`` (0 to 255) is the byte value of a missing packet's row.
    Every bad value raises ValueError or TypeError here.
    """

    __slots__ = (
        "_payload_offset",
        "_payload_size",
        "_packets_per_frame",
        "_packet_size",
        "_fill",
        "_mode",
        "_first",
        "_second",
        "_placement",
    )

    def __init__(
        self,
        payload_offset: int,
        payload_size: int,
        packets_per_frame: int,
        *,
        counter: Optional[Placement] = None,
        frame_id: Optional[Placement] = None,
        index: Optional[Placement] = None,
        offset: Optional[Placement] = None,
        packet_size: Optional[int] = None,
        fill: int = 0,
    ):
        self._payload_offset = int_between(payload_offset, "payload_offset", 0, MAX_DATAGRAM - 1)
        self._payload_size = int_between(payload_size, "payload_size", 1, MAX_DATAGRAM)
        self._packets_per_frame = int_between(
            packets_per_frame, "packets_per_frame", 1, MAX_PACKETS_PER_FRAME
        )
        if self._payload_offset + self._payload_size > MAX_DATAGRAM:
            raise ValueError(
                f"payload_offset + payload_size is {self._payload_offset + self._payload_size}, "
                f"more than a UDP datagram holds ({MAX_DATAGRAM})"
            )
        if self._packets_per_frame * self._payload_size > MAX_FRAME_BYTES:
            raise ValueError(
                f"a frame of {self._packets_per_frame} x {self._payload_size} bytes is larger "
                f"than {MAX_FRAME_BYTES} bytes"
            )
        self._fill = int_between(fill, "fill", 0, 255)
        given = {
            name
            for name, value in (
                ("counter", counter),
                ("frame_id", frame_id),
                ("index", index),
                ("offset", offset),
            )
            if value is not None
        }
        if given == {"counter"}:
            self._mode = COUNTER
            self._first = as_linear(counter, "counter")
            self._second = None
            self._placement: Dict[str, Placement] = {"counter": counter}  # type: ignore[dict-item]
        elif given in ({"frame_id", "index"}, {"frame_id", "offset"}):
            second_name = "index" if "index" in given else "offset"
            second = index if index is not None else offset
            self._mode = INDEX if second_name == "index" else OFFSET
            self._first = as_linear(frame_id, "frame_id")
            self._second = as_linear(second, second_name)
            self._placement = {"frame_id": frame_id, second_name: second}  # type: ignore[dict-item]
        else:
            raise ValueError(
                "FrameSpec needs one placement: counter=, or frame_id= with index=, "
                f"or frame_id= with offset= (got {', '.join(sorted(given)) or 'none'})"
            )
        if packet_size is None:
            self._packet_size = None
        else:
            self._packet_size = int_between(packet_size, "packet_size", 1, MAX_DATAGRAM)
            if self.min_length > self._packet_size:
                raise ValueError(
                    f"packet_size {self._packet_size} is too small: the payload and header fields "
                    f"need {self.min_length} bytes (payload ends at {self.payload_end}, fields at "
                    f"{self._fields_end()})"
                )

    # -- the spec ---------------------------------------------------------
    payload_offset = property(
        lambda self: self._payload_offset, doc="Where the payload starts in a datagram."
    )
    payload_size = property(lambda self: self._payload_size, doc="Bytes of payload per packet.")
    packets_per_frame = property(lambda self: self._packets_per_frame, doc="Packets (rows) in a frame.")
    packet_size = property(lambda self: self._packet_size, doc="The one datagram length accepted, or None.")
    fill = property(lambda self: self._fill, doc="Byte value of a missing packet's row.")

    @property
    def placement(self) -> str:
        """``'counter'``, ``'index'`` or ``'offset'``."""
        return _MODE_NAMES[self._mode]

    @property
    def counter(self) -> Optional[Placement]:
        """The packet counter (``counter`` placement), else None."""
        return self._placement.get("counter")

    @property
    def frame_id(self) -> Optional[Placement]:
        """The frame number (``index`` and ``offset`` placements), else None."""
        return self._placement.get("frame_id")

    @property
    def index(self) -> Optional[Placement]:
        """The packet's index in its frame (``index`` placement), else None."""
        return self._placement.get("index")

    @property
    def offset(self) -> Optional[Placement]:
        """The payload's byte offset in its frame (``offset`` placement), else None."""
        return self._placement.get("offset")

    @property
    def payload_end(self) -> int:
        """One past the payload's last byte in a datagram."""
        return self._payload_offset + self._payload_size

    @property
    def frame_bytes(self) -> int:
        """Bytes of payload in a whole frame."""
        return self._packets_per_frame * self._payload_size

    def _fields_end(self) -> int:
        ends = [self._first.end] + ([self._second.end] if self._second is not None else [])
        return max(ends)

    @property
    def min_length(self) -> int:
        """The shortest datagram accepted: it holds the payload and every field."""
        return max(self.payload_end, self._fields_end())

    # -- what the engines get ---------------------------------------------
    def _engine_args(self) -> Tuple[Any, ...]:
        """The spec as plain numbers, for an engine's FramePlacer (see engines/_cengine.pyi)."""

        def terms(linear):
            if linear is None:
                return ()
            return tuple(
                (f.offset, f.size, f.byteorder == "big", f.mask, f.shift, k) for f, k in linear.terms
            )

        return (
            self._payload_offset,
            self._payload_size,
            self._packets_per_frame,
            -1 if self._packet_size is None else self._packet_size,
            self._fill,
            self._mode,
            terms(self._first),
            terms(self._second),
        )

    # -- serialization ----------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """The spec as a JSON-ready dict; ``FrameSpec.from_dict`` makes it back."""
        out: Dict[str, Any] = dict(
            payload_offset=self._payload_offset,
            payload_size=self._payload_size,
            packets_per_frame=self._packets_per_frame,
        )
        for name, value in self._placement.items():
            out[name] = value.to_dict()
        if self._packet_size is not None:
            out["packet_size"] = self._packet_size
        out["fill"] = self._fill
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "FrameSpec":
        """A spec from the dict ``to_dict`` makes (or a parsed TOML/JSON spec file)."""
        if not isinstance(data, dict):
            raise TypeError(f"a frame spec must be a table (dict), not {type(data).__name__}")
        known = {"payload_offset", "payload_size", "packets_per_frame", "packet_size", "fill"}
        placements = {"counter", "frame_id", "index", "offset"}
        unknown = set(data) - known - placements
        if unknown:
            raise ValueError(f"unknown frame spec keys: {', '.join(sorted(unknown))}")
        missing = {"payload_offset", "payload_size", "packets_per_frame"} - set(data)
        if missing:
            raise ValueError(f"a frame spec needs {', '.join(sorted(missing))}")
        kwargs = {key: data[key] for key in known if key in data}
        for key in placements & set(data):
            kwargs[key] = field_from_dict(data[key], key)
        return cls(**kwargs)

    def to_json(self) -> str:
        """The spec as JSON (the ``spec`` attribute of a frame file)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "FrameSpec":
        """A spec from ``to_json``'s text."""
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrameSpec) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._placement.items())
        extra = "" if self._packet_size is None else f", packet_size={self._packet_size}"
        return (
            f"FrameSpec(payload_offset={self._payload_offset}, payload_size={self._payload_size}, "
            f"packets_per_frame={self._packets_per_frame}, {args}{extra}, fill={self._fill})"
        )
