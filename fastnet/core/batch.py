"""Batch: preallocated numpy storage for many datagrams.

A Batch is allocated once and reused for every receive or send, so the steady
state allocates nothing per datagram. Its arrays are read-only attributes: the
engines rely on their dtype, shape and contiguity, so they cannot be replaced,
only written into.
"""

from __future__ import annotations

import operator
import socket as _stdsocket
import threading
from typing import Iterable, Iterator, Tuple, Union

import numpy as np

from .checks import positive_int

__all__ = ["Batch"]

#: Address bytes stored per row for each supported family.
_ADDRESS_BYTES: dict[int, int] = {_stdsocket.AF_INET: 4, _stdsocket.AF_INET6: 16}

Address = Union[Tuple[str, int], Tuple[str, int, int, int]]


#: Upper bounds that keep a typo from asking for terabytes: a million rows,
#: 64 MiB per row (far above any datagram; room for large stream frames),
#: 16 GiB in all.
MAX_CAPACITY = 1 << 20
MAX_SLOT_SIZE = 1 << 26
MAX_TOTAL_BYTES = 1 << 34

#: The private fields of a Batch the engines read and fill, and nothing else
#: (the engine contract, fastnet/engines/contract.py; tests/test_engine_contract.py
#: holds both engines' sources to this list). ``_rows`` are per-row memoryviews,
#: ``_truncated_u8`` the truncation flags as bytes, ``_scratch`` the engine's own
#: working memory.
ENGINE_FIELDS = (
    "_capacity",
    "_slot_size",
    "_family",
    "_data",
    "_lengths",
    "_addresses",
    "_ports",
    "_flowinfo",
    "_scope_ids",
    "_timestamps",
    "_truncated_u8",
    "_rows",
    "_scratch",
)

#: Makes a Batch's in-use check and mark one step (see Batch._claim).
_CLAIMS = threading.Lock()


def _fixed(array: np.ndarray) -> np.ndarray:
    """A view of ``array``, which numpy then refuses to resize in place.

    ``ndarray.resize`` to another size needs an array that owns its memory;
    with ``refcheck=False`` it would otherwise move the memory under the
    pointers the engines keep (row views, message headers).
    """
    return array[...]


class Batch:
    """Preallocated rows for up to ``capacity`` datagrams of ``slot_size`` bytes.

    Row ``i`` of :attr:`data` holds datagram ``i``; :attr:`lengths` says how
    many of its bytes are valid. Only rows ``0 .. count-1`` are meaningful;
    bytes past a row's length are left from earlier use.

    A Batch serves one call at a time: a batch call (``recv_batch``,
    ``send_batch``, ``recv_frames``, ``send_frames``) made while another is
    using the same Batch, in any thread, raises RuntimeError.
    """

    MAX_CAPACITY = MAX_CAPACITY
    MAX_SLOT_SIZE = MAX_SLOT_SIZE
    MAX_TOTAL_BYTES = MAX_TOTAL_BYTES

    __slots__ = (
        "_capacity",
        "_slot_size",
        "_family",
        "_count",
        "_data",
        "_lengths",
        "_addresses",
        "_ports",
        "_flowinfo",
        "_scope_ids",
        "_timestamps",
        "_truncated",
        "_truncated_u8",
        "_row_cache",
        "_scratch",
        "_user",
    )

    def __init__(self, capacity: int, slot_size: int, *, family: int = _stdsocket.AF_INET):
        capacity = positive_int(capacity, "capacity")
        slot_size = positive_int(slot_size, "slot_size")
        if capacity > MAX_CAPACITY:
            raise ValueError(f"capacity must be at most {MAX_CAPACITY}, got {capacity}")
        if slot_size > MAX_SLOT_SIZE:
            raise ValueError(f"slot_size must be at most {MAX_SLOT_SIZE}, got {slot_size}")
        if capacity * slot_size > MAX_TOTAL_BYTES:
            raise ValueError(
                f"capacity x slot_size is {capacity * slot_size} bytes, more than {MAX_TOTAL_BYTES}"
            )
        if family not in _ADDRESS_BYTES:
            raise ValueError(f"family must be AF_INET or AF_INET6, got {family!r}")
        self._capacity = capacity
        self._slot_size = slot_size
        self._family = _stdsocket.AddressFamily(family)
        self._count = 0
        self._data = _fixed(np.zeros((capacity, slot_size), dtype=np.uint8))
        self._lengths = _fixed(np.zeros(capacity, dtype=np.int64))
        self._addresses = _fixed(np.zeros((capacity, _ADDRESS_BYTES[family]), dtype=np.uint8))
        self._ports = _fixed(np.zeros(capacity, dtype=np.uint16))
        self._flowinfo = _fixed(np.zeros(capacity, dtype=np.uint32))
        self._scope_ids = _fixed(np.zeros(capacity, dtype=np.uint32))
        self._timestamps = _fixed(np.zeros(capacity, dtype=np.int64))
        # The engines write flags as bytes; numpy shows the same memory as bool.
        self._truncated_u8 = _fixed(np.zeros(capacity, dtype=np.uint8))
        self._truncated = self._truncated_u8.view(np.bool_)
        # One memoryview per row, made on first use and kept, so the
        # pure-Python engine does not slice (and allocate) per datagram.
        self._row_cache: list[memoryview] | None = None
        # Engine-private working memory (message headers), sized on first use.
        self._scratch = None
        # The batch call using this Batch now, or None (see _claim).
        self._user: str | None = None  # the method using the Batch now

    @classmethod
    def _rows_of(cls, source: "Batch", start: int, count: int, rows: list | None = None) -> "Batch":
        """A Batch over rows ``start..start+count-1`` of ``source``: views, no copy.

        For a Receiver's ring (fastnet/receive/receiver.py): what is handed to
        the consumer is a window on the ring's rows, valid while the ring
        keeps them. ``count`` is set to the rows. ``rows``, if given, is
        ``source``'s per-row memoryviews (``source._rows``), so the window's
        are a slice of them rather than new ones.
        """
        if not (0 <= start and 0 < count and start + count <= source._capacity):
            raise ValueError(f"rows {start}..{start + count - 1} are not in 0..{source._capacity - 1}")
        end = start + count
        self = cls.__new__(cls)
        self._capacity = count
        self._slot_size = source._slot_size
        self._family = source._family
        self._count = count
        self._data = source._data[start:end]
        self._lengths = source._lengths[start:end]
        self._addresses = source._addresses[start:end]
        self._ports = source._ports[start:end]
        self._flowinfo = source._flowinfo[start:end]
        self._scope_ids = source._scope_ids[start:end]
        self._timestamps = source._timestamps[start:end]
        self._truncated_u8 = source._truncated_u8[start:end]
        self._truncated = self._truncated_u8.view(np.bool_)
        self._row_cache = rows[start:end] if rows is not None else None
        self._scratch = None
        self._user = None
        return self

    def _check_layout(self) -> None:
        """Raise ValueError if a 2-d array was reshaped in place (``data.shape = ...``).

        The Cython engine finds row i at ``i * slot_size`` bytes from the
        start of ``data`` (and address i likewise): a reshaped array would
        send it past the end. Other dtype or shape changes fail the engines'
        typed views, or leave every write inside the array. The engine's
        lanes make this test in C on every call (``_Scratch.layout_kept``,
        src/_cengine.pyx) and hand a Batch that fails it to the general
        path, which calls this.
        """
        if self._data.shape != (self._capacity, self._slot_size) or self._addresses.shape != (
            self._capacity,
            _ADDRESS_BYTES[self._family],
        ):
            raise ValueError(
                f"batch.data or batch.addresses was reshaped (now "
                f"{self._data.shape} and {self._addresses.shape}); a Batch's "
                f"arrays keep their shape: make a new Batch instead"
            )

    def _claim(self, method: str) -> None:
        """Mark the batch in use by ``method``; RuntimeError if another call uses it.

        The Cython engine keeps message headers for a Batch, pointing into
        it; two calls at once would rewrite them under each other's system
        calls.
        """
        with _CLAIMS:
            user = self._user
            if user is None:
                self._user = method
                return
        raise RuntimeError(
            f"{method}: this Batch is in use by {user} in another call; a Batch serves one call at a time"
        )

    def _release(self) -> None:
        self._user = None

    @property
    def _rows(self) -> list:
        rows = self._row_cache
        if rows is None:
            rows = self._row_cache = [memoryview(row) for row in self._data]
        return rows

    # -- read-only shape -------------------------------------------------
    @property
    def capacity(self) -> int:
        """Number of rows."""
        return self._capacity

    @property
    def slot_size(self) -> int:
        """Bytes available in each row; longer datagrams are truncated."""
        return self._slot_size

    @property
    def family(self) -> _stdsocket.AddressFamily:
        """Address family of the sockets this batch is used with."""
        return self._family

    # -- the arrays -------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """``uint8[capacity, slot_size]``: row i holds datagram i."""
        return self._data

    @property
    def lengths(self) -> np.ndarray:
        """``int64[capacity]``: bytes stored in each row."""
        return self._lengths

    @property
    def addresses(self) -> np.ndarray:
        """``uint8[capacity, 4 or 16]``: source address bytes, network order."""
        return self._addresses

    @property
    def ports(self) -> np.ndarray:
        """``uint16[capacity]``: source port (host order)."""
        return self._ports

    @property
    def flowinfo(self) -> np.ndarray:
        """``uint32[capacity]``: IPv6 flow information (0 for IPv4)."""
        return self._flowinfo

    @property
    def scope_ids(self) -> np.ndarray:
        """``uint32[capacity]``: IPv6 scope id (0 for IPv4)."""
        return self._scope_ids

    @property
    def timestamps(self) -> np.ndarray:
        """``int64[capacity]``: kernel receive time in ns since the epoch, 0 when off."""
        return self._timestamps

    @property
    def truncated(self) -> np.ndarray:
        """``bool[capacity]``: the datagram was longer than ``slot_size``."""
        return self._truncated

    # -- count ------------------------------------------------------------
    @property
    def count(self) -> int:
        """Number of filled rows (set by receives; rows ``0..count-1`` are sent)."""
        return self._count

    @count.setter
    def count(self, value: int) -> None:
        if isinstance(value, bool):
            raise TypeError("count must be an integer, not bool")
        value = operator.index(value)
        if not 0 <= value <= self._capacity:
            raise ValueError(f"count must be between 0 and capacity ({self._capacity}), got {value}")
        self._count = value

    def __len__(self) -> int:
        return self._count

    def clear(self) -> None:
        """Forget the filled rows (``count = 0``); memory is kept."""
        self._count = 0

    # -- per-row access ---------------------------------------------------
    def _filled_index(self, i) -> int:
        i = operator.index(i)
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError(f"row {i} is not filled (count is {self._count})")
        return i

    def payload(self, i: int) -> memoryview:
        """Datagram ``i`` as a memoryview into :attr:`data` (no copy)."""
        i = self._filled_index(i)
        return self._rows[i][: int(self._lengths[i])]

    def address(self, i: int) -> Address:
        """Source of datagram ``i`` exactly as ``socket.recvfrom`` gives it."""
        i = self._filled_index(i)
        host = _stdsocket.inet_ntop(self._family, self._addresses[i].tobytes())
        port = int(self._ports[i])
        if self._family == _stdsocket.AF_INET6:
            return (host, port, int(self._flowinfo[i]), int(self._scope_ids[i]))
        return (host, port)

    def __iter__(self) -> Iterator[Tuple[memoryview, Address]]:
        for i in range(self._count):
            yield self.payload(i), self.address(i)

    # -- filling for senders ---------------------------------------------
    def fill(self, i: int, data) -> None:
        """Copy ``data`` (bytes-like) into row ``i`` and set its length.

        ``count`` grows to ``i + 1`` if it was smaller, so filling rows
        ``0..n-1`` in order prepares ``n`` datagrams for ``send_batch``.
        """
        i = operator.index(i)
        if not 0 <= i < self._capacity:
            raise IndexError(f"row {i} out of range for capacity {self._capacity}")
        view = memoryview(data).cast("B")
        size = view.nbytes
        if size > self._slot_size:
            raise ValueError(f"payload of {size} bytes does not fit in slot_size {self._slot_size}")
        self._data[i, :size] = np.frombuffer(view, dtype=np.uint8)
        self._lengths[i] = size
        self._truncated[i] = False
        if self._count <= i:
            self._count = i + 1

    @classmethod
    def from_payloads(
        cls, payloads: Iterable, slot_size: int | None = None, *, family: int = _stdsocket.AF_INET
    ) -> "Batch":
        """A Batch holding ``payloads`` in order, ``count`` set to their number.

        ``slot_size`` defaults to the longest payload (at least 1 byte).
        """
        items = [memoryview(p).cast("B") for p in payloads]
        if not items:
            raise ValueError("from_payloads needs at least one payload")
        if slot_size is None:
            slot_size = max(1, max(item.nbytes for item in items))
        batch = cls(len(items), slot_size, family=family)
        for i, item in enumerate(items):
            batch.fill(i, item)
        return batch

    def __repr__(self) -> str:
        return (
            f"<fastnet.Batch count={self._count} capacity={self._capacity} "
            f"slot_size={self._slot_size} family={self._family.name}>"
        )
