"""Header fields: unsigned integers read from fixed places in a datagram.

A :class:`Field` reads 1 to 8 bytes at an offset, in either byte order, then
shifts and masks the value. Fields combine linearly (``Field * k + Field``)
into a :class:`LinearField`, the way VDIF numbers its frames: seconds times
frames per second plus the frame number. Sums wrap modulo 2**64, as the C
placement computes them in ``uint64_t``, so both engines agree on every input.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple, Union

from ..core.checks import int_between

__all__ = ["Field", "LinearField", "MAX_TERMS", "MAX_FIELD_OFFSET"]

#: Terms a LinearField may have (the C placement keeps them in a fixed array).
MAX_TERMS = 8
#: A field must start within the largest UDP payload (65535 - 8 bytes of UDP header, rounded up).
MAX_FIELD_OFFSET = 65535
_U64 = (1 << 64) - 1
_BYTEORDERS = ("big", "little")


class Field:
    """An unsigned integer of ``size`` bytes at ``offset``: ``(raw >> shift) & mask``.

    ``mask`` defaults to every bit of the field. A datagram too short to hold
    the field is rejected by the assembler; the field is never read past the
    datagram's end.
    """

    __slots__ = ("_offset", "_size", "_byteorder", "_mask", "_shift")

    def __init__(
        self, offset: int, size: int, byteorder: str = "big", mask: int | None = None, shift: int = 0
    ):
        self._offset = int_between(offset, "Field offset", 0, MAX_FIELD_OFFSET)
        self._size = int_between(size, "Field size", 1, 8)
        if not isinstance(byteorder, str):
            raise TypeError(f"Field byteorder must be 'big' or 'little', not {type(byteorder).__name__}")
        if byteorder not in _BYTEORDERS:
            raise ValueError(f"Field byteorder must be 'big' or 'little', got {byteorder!r}")
        self._byteorder = byteorder
        self._shift = int_between(shift, "Field shift", 0, 8 * self._size - 1)
        full = (1 << (8 * self._size)) - 1
        self._mask = full if mask is None else int_between(mask, "Field mask", 0, _U64)

    offset = property(lambda self: self._offset, doc="Byte offset of the field in the datagram.")
    size = property(lambda self: self._size, doc="Bytes read: 1 to 8.")
    byteorder = property(lambda self: self._byteorder, doc="``'big'`` or ``'little'``.")
    mask = property(lambda self: self._mask, doc="Bits kept after the shift.")
    shift = property(lambda self: self._shift, doc="Bits dropped on the right before the mask.")

    @property
    def end(self) -> int:
        """One past the field's last byte: datagrams shorter than this are rejected."""
        return self._offset + self._size

    def read(self, datagram) -> int:
        """The field's value in ``datagram`` (bytes-like); ValueError if it is too short."""
        view = memoryview(datagram).cast("B")
        if view.nbytes < self.end:
            raise ValueError(
                f"a datagram of {view.nbytes} bytes does not hold a field ending at byte {self.end}"
            )
        raw = int.from_bytes(view[self._offset : self.end], "big" if self._byteorder == "big" else "little")
        return (raw >> self._shift) & self._mask

    # -- combining --------------------------------------------------------
    def _linear(self) -> "LinearField":
        return LinearField(((self, 1),))

    def __mul__(self, k: int) -> "LinearField":
        return self._linear() * k

    __rmul__ = __mul__

    def __add__(self, other: Union["Field", "LinearField"]) -> "LinearField":
        return self._linear() + other

    __radd__ = __add__

    # -- identity and serialization ---------------------------------------
    def _key(self) -> Tuple[int, int, str, int, int]:
        return (self._offset, self._size, self._byteorder, self._mask, self._shift)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Field) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Field(offset={self._offset}, size={self._size}, byteorder={self._byteorder!r}, "
            f"mask={self._mask:#x}, shift={self._shift})"
        )

    def to_dict(self) -> Dict[str, Any]:
        """The field as a JSON-ready dict (the keywords of the constructor)."""
        return dict(
            offset=self._offset,
            size=self._size,
            byteorder=self._byteorder,
            mask=self._mask,
            shift=self._shift,
        )


class LinearField:
    """A sum of fields times constant factors, modulo 2**64: ``Field(...) * k + Field(...)``.

    Made by the arithmetic of :class:`Field`, or directly from ``(field, k)``
    pairs. At most ``MAX_TERMS`` terms.
    """

    __slots__ = ("_terms",)

    def __init__(self, terms):
        checked: List[Tuple[Field, int]] = []
        for term in terms:
            try:
                field, k = term
            except (TypeError, ValueError):
                raise TypeError("LinearField terms must be (Field, factor) pairs") from None
            if not isinstance(field, Field):
                raise TypeError(
                    f"LinearField terms must be (Field, factor) pairs, got {type(field).__name__}"
                )
            checked.append((field, int_between(k, "a field's factor", 0, _U64)))
        if not checked:
            raise ValueError("a LinearField needs at least one term")
        if len(checked) > MAX_TERMS:
            raise ValueError(f"a LinearField has at most {MAX_TERMS} terms, got {len(checked)}")
        self._terms = tuple(checked)

    @property
    def terms(self) -> Tuple[Tuple[Field, int], ...]:
        """The ``(field, factor)`` pairs."""
        return self._terms

    @property
    def end(self) -> int:
        """One past the last byte any term reads."""
        return max(field.end for field, _ in self._terms)

    def read(self, datagram) -> int:
        """The sum's value in ``datagram``, modulo 2**64; ValueError if a field does not fit."""
        return sum(k * field.read(datagram) for field, k in self._terms) & _U64

    def __mul__(self, k: int) -> "LinearField":
        k = int_between(k, "a field's factor", 0, _U64)
        return LinearField((field, (factor * k) & _U64) for field, factor in self._terms)

    __rmul__ = __mul__

    def __add__(self, other: Union[Field, "LinearField"]) -> "LinearField":
        if isinstance(other, Field):
            other = other._linear()
        if not isinstance(other, LinearField):
            return NotImplemented
        return LinearField(self._terms + other._terms)

    __radd__ = __add__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinearField) and self._terms == other._terms

    def __hash__(self) -> int:
        return hash(self._terms)

    def __repr__(self) -> str:
        return " + ".join(f"{field!r} * {k}" for field, k in self._terms)

    def to_dict(self) -> List[Dict[str, Any]]:
        """The terms as a JSON-ready list of field dicts, each with its ``scale``."""
        return [dict(field.to_dict(), scale=k) for field, k in self._terms]


def as_linear(value, name: str) -> LinearField:
    """A Field or LinearField as a LinearField; TypeError for anything else."""
    if isinstance(value, Field):
        return value._linear()
    if isinstance(value, LinearField):
        return value
    raise TypeError(f"{name} must be a fastnet.Field or a sum of Fields, not {type(value).__name__}")


def field_from_dict(value, name: str) -> Union[Field, LinearField]:
    """A Field from one dict, or a LinearField from a list of dicts with ``scale``."""
    if isinstance(value, dict):
        return Field(**value)
    if isinstance(value, list):
        terms = []
        for item in value:
            if not isinstance(item, dict):
                raise TypeError(f"{name}: each term must be a table of Field keywords")
            item = dict(item)
            scale = item.pop("scale", 1)
            terms.append((Field(**item), scale))
        return LinearField(terms)
    raise TypeError(f"{name} must be a table of Field keywords or a list of them, not {type(value).__name__}")
