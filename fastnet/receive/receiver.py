"""Receiver: a capture thread that keeps reading while the consumer works.

A data-acquisition script spends Python time on each batch; while it does,
datagrams pile up in the socket's queue and, when that is full, the kernel
drops them. The Receiver moves reading into its own thread: it fills a ring
of preallocated Batches with ``recv_batch`` (the GIL is released in the
system call, so the consumer's Python work overlaps with receiving), and the
consumer takes filled batches from the ring. Every datagram is delivered or
counted where it was dropped (see fastnet/receive/stats.py).

Ring
----
``ring_size`` Batches are allocated once. Each is, at any moment, free, being
filled by the capture thread, waiting in the ring, or held by the consumer
(the one it took last: it stays valid until the consumer takes the next, then
goes back to the free list). Free batches are reused last-freed first, so a
lightly loaded receiver keeps touching the same few (numpy's zeroed memory
is only backed by RAM once written).

When no batch is free:

* ``on_full="block"``: the capture thread waits for the consumer. The socket's
  queue absorbs the burst; what does not fit the kernel drops and counts
  (``kernel_drops``).
* ``on_full="drop"``: the capture thread keeps reading, into one spare
  batch, and discards what it read (``ring_overruns`` datagrams,
  ``ring_overrun_batches`` batches): tail drop, as the kernel does. If a slot
  came free while it was reading, the spare joins the ring instead.

Stopping
--------
``stop()`` (from any thread) makes the capture thread stop reading within
about 0.1 s. Before it ends, it moves whatever is still queued in the socket
into free ring slots without waiting for the consumer, and counts what does
not fit as ``unread``. The consumer then still gets every batch already in
the ring (drain); only after the last one does iteration end, or ``get()``
raise ``ReceiverStopped``. An error in the capture thread stops it the same
way: the batches captured before it are delivered first, then the error is
raised by the consumer's next ``get()`` (or iteration) once the ring is
empty; it is never lost.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import math
import socket as _stdsocket
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .. import constants as C
from .. import engines
from ..core import buffers as _buffers
from ..core.addresses import bind_address
from ..core.batch import MAX_TOTAL_BYTES, Batch
from ..core.checks import positive_int
from ..core.multicast import join_group
from ..core.socket import socket as _fastsocket
from ..errors import ReceiverStopped
from . import sizing
from .seq import SeqField, SeqTracker
from .stats import ReceiverStats

if TYPE_CHECKING:
    from ..capture.recorder import Recorder

__all__ = ["Receiver", "ReceiverStopped"]


#: Most batches in a ring (each is a Python object with its own arrays).
MAX_RING_SIZE = 1 << 16

#: Longest single wait of get(); a longer timeout waits in several.
_LONGEST_WAIT = 3600.0

#: How long the capture thread waits in one recv_batch before re-checking stop().
_SLICE = 0.1

# include/uapi/linux/sock_diag.h: SO_MEMINFO fills u32[SK_MEMINFO_VARS];
# SK_MEMINFO_DROPS (index 8) is sk_drops, the counter /proc/net/udp prints.
_SK_MEMINFO_VARS = 9
_SK_MEMINFO_DROPS = 8
_MEMINFO = struct.Struct(f"={_SK_MEMINFO_VARS}I")

_ON_FULL = ("block", "drop")

_NEW, _RUNNING, _STOPPED, _CLOSED = "new", "running", "stopped", "closed"


def _deadline(timeout):
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be 0 or more, got {timeout}")
    if math.isinf(timeout):
        return None
    return time.monotonic() + timeout


def _check_sizes(ring_size, batch_size: int, slot_size: int, seq) -> None:
    """The ring fits the memory bound (if ring_size is known) and ``seq`` fits a slot."""
    if ring_size is not None:
        ring_bytes = ring_size * batch_size * slot_size
        if ring_bytes > MAX_TOTAL_BYTES:
            raise ValueError(
                f"ring_size x batch_size x slot_size is {ring_bytes} bytes, more than {MAX_TOTAL_BYTES}"
            )
    if seq is not None and seq.end > slot_size:
        raise ValueError(f"{seq} needs {seq.end} bytes per datagram but slot_size is {slot_size}")


def _wake_future(future) -> None:
    if not future.done():
        future.set_result(None)


class Receiver:
    """Receive datagrams on ``address`` in a capture thread, into a ring of Batches.

    ``address`` is a port (on loopback), ``"HOST:PORT"``, or a ``(host, port)``
    tuple as for ``socket.bind`` (port 0 picks a free port; see ``address``).

    ``slot_size``
        bytes per datagram; longer ones are cut and counted in ``truncated``.
        Default: the largest UDP payload of the listening interface's MTU,
        at most 9000 (fastnet/receive/sizing.py).
    ``batch_size``
        datagrams per Batch (per ``recv_batch`` call).
    ``ring_size``
        number of Batches in the ring. Default: as many as fit 128 MiB,
        from 4 to 64.
    ``rcvbuf``
        socket receive buffer to ask for, in bytes (``sock.set_buffers``: the
        FORCE option where permitted; warns with ``BufferSizeWarning`` when
        the kernel caps it). Default: the ring's worth of datagrams, from 4
        to 64 MiB (warns once per process if capped). ``rcvbuf`` as the
        kernel set it is ``self.rcvbuf``.
    ``timestamps``
        have the kernel stamp each datagram (``Batch.timestamps``).
    ``gro``
        turn on UDP receive offload (``sock.enable_gro()``): the kernel queues
        a GSO sender's datagrams as one buffer per up to 64, which is what
        lets a receiver keep up with such a sender; batches still hold one
        row per datagram. Caveat, measured on Linux 6.18: the kernel's drop
        counter then counts dropped *buffers*, not datagrams, so
        ``kernel_drops`` under-counts lost datagrams and the sum
        ``packets + kernel_drops + ring_overruns`` no longer reaches the
        number sent once the kernel drops; use ``seq`` to count lost
        datagrams exactly.
    ``seq``
        a ``fastnet.SeqField``: count gaps, losses, reorders and duplicates
        from a counter in each payload (``stats.seq_*``).
    ``on_full``
        ``"block"`` or ``"drop"``: what the capture thread does when the ring
        is full (see the module doc).
    ``interface``
        the interface (name, index or address) to join multicast groups on,
        when ``address`` is a multicast group; stored as ``self.interface``.
    ``source``
        with a multicast group: receive only this sender's datagrams
        (source-specific join); ``ValueError`` for any other address.
    ``reuse_port``
        set ``SO_REUSEPORT`` before binding, so several receivers (or
        processes) can share the port; the kernel spreads datagrams over them.
    ``backend``
        the engine (``"cython"`` or ``"python"``), default ``fastnet.backend``.

    Use it as a context manager (starts, then stops and closes), or call
    ``start()``, ``stop()``, ``close()``. The consumer takes batches with
    ``for batch in rx:``, ``rx.get(timeout)`` or ``async for batch in rx:``;
    one consumer at a time. ``record(path)`` writes what arrives to a
    capture file.

    A multicast group as ``address`` is bound (so only that group's
    datagrams arrive) and joined on ``interface`` (from ``source`` only, if
    given); the kernel leaves the group when the socket is closed.
    """

    def __init__(
        self,
        address,
        *,
        slot_size=None,
        batch_size=1024,
        ring_size=None,
        rcvbuf=None,
        timestamps=False,
        seq=None,
        on_full="block",
        interface=None,
        source=None,
        reuse_port=False,
        backend=None,
        gro=False,
    ):
        # Every argument is checked before any system call.
        self._configure(
            slot_size=slot_size,
            batch_size=batch_size,
            ring_size=ring_size,
            rcvbuf=rcvbuf,
            timestamps=timestamps,
            seq=seq,
            on_full=on_full,
            interface=interface,
            source=source,
            backend=backend,
            gro=gro,
        )
        self._reuse_port = bool(reuse_port)
        family, sockaddr = bind_address(address)
        self._fill_sizes(family, sockaddr[0])
        self._group = self._multicast_group(sockaddr[0])
        self._family = family
        self._adopt(self._open_socket(family, sockaddr))

    @classmethod
    def _from_socket(cls, sock, **options):
        """A Receiver on ``sock``: a bound UDP ``fastnet.socket``, which it then owns.

        For sockets bound elsewhere, such as the SO_REUSEPORT group of a
        fan-out (fastnet/receive/fanout.py) handed to worker processes. ``options``
        are the constructor's keywords but ``reuse_port`` and ``backend``
        (the socket has its engine). ``rcvbuf`` and ``timestamps`` are set on
        the bound socket; a socket bound to a multicast group joins it. The
        socket is closed if anything fails.
        """
        try:
            if not isinstance(sock, _fastsocket):
                raise TypeError(f"sock must be a fastnet.socket, not {type(sock).__name__}")
            if sock._kind != _stdsocket.SOCK_DGRAM:  # the kernel's word, not fileno='s caller's
                raise ValueError(
                    f"sock must be a SOCK_DGRAM socket, not {_stdsocket.SocketKind(sock._kind).name}"
                )
            self = cls.__new__(cls)
            self._configure(backend=sock.backend, **options)
            self._reuse_port = False
            address = sock.getsockname()
            if address[1] == 0:
                raise ValueError("sock must be bound to an address")
            self._group = self._multicast_group(address[0])
            self._family = _stdsocket.AddressFamily(sock._af)
            self._fill_sizes(self._family, address[0])
            self._set_options(sock)
        except BaseException:
            if isinstance(sock, _stdsocket.socket):
                sock.close()
            raise
        self._adopt(sock)
        return self

    def _configure(
        self,
        *,
        slot_size=None,
        batch_size=1024,
        ring_size=None,
        rcvbuf=None,
        timestamps=False,
        seq=None,
        on_full="block",
        interface=None,
        source=None,
        backend=None,
        gro=False,
    ):
        """Check and keep the settings (no system call); None sizes are chosen by _fill_sizes."""
        self._slot_request = None if slot_size is None else positive_int(slot_size, "slot_size")
        self._batch_size = positive_int(batch_size, "batch_size")
        self._ring_request = None if ring_size is None else positive_int(ring_size, "ring_size")
        # A typo must not allocate for minutes: the ring is made up front.
        if self._ring_request is not None and self._ring_request > MAX_RING_SIZE:
            raise ValueError(f"ring_size must be at most {MAX_RING_SIZE}, got {ring_size}")
        if rcvbuf is not None:
            _buffers._check_size("rcvbuf", rcvbuf)
        if not isinstance(on_full, str):
            raise TypeError(f"on_full must be a str, not {type(on_full).__name__}")
        if on_full not in _ON_FULL:
            raise ValueError(f"on_full must be 'block' or 'drop', got {on_full!r}")
        if seq is not None:
            if not isinstance(seq, SeqField):
                raise TypeError(f"seq must be a fastnet.SeqField or None, not {type(seq).__name__}")
        if self._slot_request is not None:  # else checked once the default is chosen
            _check_sizes(self._ring_request, self._batch_size, self._slot_request, seq)
        if interface is not None and (isinstance(interface, bool) or not isinstance(interface, (str, int))):
            raise TypeError(f"interface must be a name, index or address, not {type(interface).__name__}")
        if source is not None and not isinstance(source, str):
            raise TypeError(f"source must be an address string or None, not {type(source).__name__}")
        if backend is None:
            backend = engines.default_backend()
        engines.load(backend)  # ValueError if unknown, ImportError if it cannot load
        self._rcvbuf_request = rcvbuf
        self._timestamps = bool(timestamps)
        self._gro = bool(gro)
        self._seq = seq
        self._on_full = on_full
        self._interface = interface
        self._source = source
        self._backend = backend

    def _fill_sizes(self, family, host) -> None:
        """The sizes: as given, or the defaults for a socket bound to ``host`` (sizing.py)."""
        slot = self._slot_request
        if slot is None:
            slot = sizing.default_slot_size(family, host)
        ring = self._ring_request
        if ring is None:
            ring = sizing.default_ring_size(self._batch_size, slot)
        _check_sizes(ring, self._batch_size, slot, self._seq)
        self._slot_size: int = slot
        self._ring_size: int = ring

    def _multicast_group(self, host):
        """The multicast group ``host`` names, or None; checks ``source`` against it."""
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            address = None
        group = address if address is not None and address.is_multicast else None
        if self._source is not None:
            if group is None:
                raise ValueError(
                    f"source {self._source!r} applies to a multicast group only, and {host} is not one"
                )
            try:
                source = ipaddress.ip_address(self._source.split("%", 1)[0])
            except ValueError:
                raise ValueError(f"source {self._source!r} is not an IP address") from None
            if source.version != group.version or source.is_multicast:
                raise ValueError(
                    f"source {self._source} must be a unicast IPv{group.version} "
                    f"address, as the group {group} is IPv{group.version}"
                )
        return group

    def _adopt(self, sock) -> None:
        """Finish setting up around the bound ``sock``: join the group, allocate the ring."""
        try:
            if self._group is not None:
                join_group(sock, str(self._group), interface=self._interface, source=self._source)
            self._sock = sock
            self._address = sock.getsockname()
            self._free = [
                Batch(self._batch_size, self._slot_size, family=self._family) for _ in range(self._ring_size)
            ]
            self._spare = (
                Batch(self._batch_size, self._slot_size, family=self._family)
                if self._on_full == "drop"
                else None
            )
        except BaseException:
            sock.close()
            raise

        #: Callables ``sink(batch)`` run in the capture thread on every filled
        #: batch before the consumer can see it (a recorder writes captures
        #: this way). They must be quick: the capture thread reads nothing
        #: while they run. A sink must not keep the batch (it is reused) nor
        #: change it. An exception from a sink stops capture and is raised in
        #: the consumer, after the batch it was given has been delivered.
        self._sinks: list[Callable[[Batch], Any]] = []
        #: The Recorder from record(), closed when the capture thread ends.
        self._recorder: Recorder | None = None
        self._sinks_closed = False
        self._record_error: Exception | None = None

        self._cond = threading.Condition(threading.RLock())
        self._filled: collections.deque[Batch] = collections.deque()
        self._held: Batch | None = None
        self._state = _NEW
        self._stop_requested = False
        self._capture_done = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._tracker = SeqTracker(self._seq) if self._seq is not None else None
        self._scratch: Batch | None = None
        # Counters, changed under self._cond.
        self._packets = self._bytes = self._batches = self._truncated = 0
        self._overruns = self._overrun_batches = self._unread = self._delivered = 0
        self._drops_raw = 0  # last SK_MEMINFO_DROPS read (u32, may wrap)
        self._drops_total = 0  # accumulated across wraps
        self._final_rcvbuf = None

    # -- socket setup ---------------------------------------------------------
    def _open_socket(self, family, sockaddr):
        """Create, configure and bind the socket.

        Multicast: ``sockaddr`` may be a group address (Linux then delivers
        only that group's datagrams to the socket); ``_adopt`` joins it.
        """
        sock = _fastsocket(family, _stdsocket.SOCK_DGRAM, backend=self._backend)
        try:
            if self._reuse_port:
                sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEPORT, 1)
            self._set_options(sock)
            sock.bind(sockaddr)
        except BaseException:
            sock.close()
            raise
        return sock

    def _set_options(self, sock) -> None:
        if self._rcvbuf_request is not None:
            sock.set_buffers(rcvbuf=self._rcvbuf_request)
        else:
            rows = self._ring_size * self._batch_size
            sizing.ask_default_rcvbuf(sock, sizing.default_rcvbuf(rows, self._slot_size))
        if self._timestamps:
            sock.enable_timestamps()
        if self._gro:
            sock.enable_gro()

    # -- identity -------------------------------------------------------------
    @property
    def address(self):
        """The bound address, as ``getsockname()`` gives it (the real port for port 0)."""
        return self._address

    @property
    def family(self):
        return self._family

    @property
    def interface(self):
        """The ``interface`` given (for multicast group membership), or None."""
        return self._interface

    @property
    def source(self):
        """The ``source`` of a source-specific multicast join, or None."""
        return self._source

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def recorder(self):
        """The Recorder ``record()`` opened, or None."""
        return self._recorder

    @property
    def seq(self):
        """The SeqField tracked, or None."""
        return self._seq

    @property
    def slot_size(self) -> int:
        """Bytes per datagram (given, or chosen by the interface MTU)."""
        return self._slot_size

    @property
    def batch_size(self) -> int:
        """Datagrams per Batch."""
        return self._batch_size

    @property
    def ring_size(self) -> int:
        """Batches in the ring (given, or chosen to fit 128 MiB)."""
        return self._ring_size

    @property
    def rcvbuf(self) -> int:
        """The socket's receive buffer as the kernel reports it (``SO_RCVBUF``)."""
        with self._cond:
            return self._rcvbuf_locked()

    def _rcvbuf_locked(self) -> int:
        if self._final_rcvbuf is not None:
            return self._final_rcvbuf
        return self._sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_RCVBUF)

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed)."""
        return self._sock.fileno()

    @property
    def running(self) -> bool:
        """True between start() and the end of capture."""
        return self._state == _RUNNING and not self._capture_done

    def __repr__(self) -> str:
        return (
            f"<fastnet.Receiver {self._state} address={self._address!r} "
            f"backend={self._backend!r} on_full={self._on_full!r}>"
        )

    # -- life cycle -----------------------------------------------------------
    def start(self) -> "Receiver":
        """Start the capture thread (again while running: nothing happens)."""
        with self._cond:
            if self._state == _RUNNING:
                return self
            if self._state != _NEW:
                raise RuntimeError(f"a {self._state} Receiver cannot be started again")
            self._state = _RUNNING
            self._thread = threading.Thread(
                target=self._capture, daemon=True, name=f"fastnet-receiver-{self._address[1]}"
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop capturing, from any thread; returns once the capture thread has ended.

        Batches already captured are still delivered to the consumer; then
        its iteration ends (``get()`` raises ``ReceiverStopped``). A capture
        file from ``record()`` is complete when this returns; if writing it
        failed (disk full), that error is raised here, once.
        """
        with self._cond:
            self._stop_requested = True
            if self._state == _NEW:
                self._state = _STOPPED
                self._capture_done = True
                self._wake_consumers()
            elif self._state == _RUNNING:
                self._state = _STOPPED
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            self._finish_recording()  # never started: no capture thread to do it
        elif thread is not threading.current_thread():
            thread.join()
        with self._cond:
            error, self._record_error = self._record_error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Stop, count what is left in the socket's queue as ``unread``, close the socket.

        Batches still in the ring are discarded (``stats.in_ring`` says how
        many datagrams); counters stay readable. Raises the recording error
        that ``stop()`` would, after closing.
        """
        if self._state == _CLOSED:
            return
        record_error = None
        try:
            self.stop()
        except Exception as exc:  # noqa: BLE001 - a write error: raised once closed
            record_error = exc
        self._count_unread()
        with self._cond:
            if self._state != _CLOSED:
                if self._sock.fileno() >= 0:  # (it may have been closed under us)
                    self._read_kernel_drops()
                    self._final_rcvbuf = self._sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_RCVBUF)
                self._state = _CLOSED
                self._held = None
                self._sock.close()
                self._cond.notify_all()
        if record_error is not None:
            raise record_error

    # -- recording ------------------------------------------------------------
    def record(self, path, **options):
        """Write every datagram received from now on to a capture file; return its Recorder.

        ``path`` ends in ``.pcap`` or ``.npy`` (or give ``format=``); an
        unknown suffix raises ``ValueError`` before any file is created.
        ``options`` are ``fastnet.open_recorder``'s (``buffers``,
        ``payload_bytes``, ``format``); the recorder is told the bound
        address (the destination in pcap records). Kernel receive timestamps
        are turned on for the socket, so records carry the time of arrival.

        The recorder sees each batch in the capture thread before the ring
        does, including batches the ring has no room for (``ring_overruns``):
        the file holds everything read from the socket, unless the disk fell
        behind (``stats.capture_dropped``). It is closed when the capture
        thread ends (``stop()``, ``close()``, end of a ``with`` block, or an
        error), so the file is complete once ``stop()`` returns. One
        recording per Receiver; a stopped Receiver cannot start one
        (``RuntimeError``).
        """
        from ..capture.reader import format_for_path
        from ..capture.recorder import open_recorder

        format_for_path(path, options.get("format"))  # ValueError before any file exists
        self._check_can_record()
        recorder = open_recorder(path, local_address=self._address, **options)
        try:
            self._sock.enable_timestamps()
            with self._cond:
                self._check_can_record()
                self._timestamps = True
                self._recorder = recorder
                self._sinks.append(recorder)
        except BaseException:
            recorder.close()
            raise
        return recorder

    def _check_can_record(self) -> None:
        with self._cond:
            if self._sinks_closed or self._stop_requested or self._state == _CLOSED:
                raise RuntimeError("a stopped Receiver cannot start recording")
            if self._recorder is not None:
                raise RuntimeError(f"this Receiver already records to {self._recorder.path!r}")

    def _finish_recording(self) -> None:
        """Close the recorder (it writes what it holds); keep its error for stop()."""
        with self._cond:
            self._sinks_closed = True
            recorder = self._recorder
        if recorder is None or recorder.closed:
            return
        try:
            recorder.close()
        except Exception as exc:  # noqa: BLE001 - raised by stop()
            with self._cond:
                self._record_error = exc

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the capture thread ---------------------------------------------------
    def _capture(self) -> None:
        recv = self._sock.recv_batch
        current = None
        error = None
        try:
            while not self._stop_requested:
                if current is None:
                    current = self._next_slot()
                    if current is None:
                        break
                try:
                    recv(current, timeout=_SLICE)
                except TimeoutError:
                    continue
                batch, current = current, None
                self._hand_over(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, not lost
            error = exc
        finally:
            if current is not None and current is not self._spare:
                with self._cond:
                    self._free.append(current)
            if error is None:
                try:
                    self._sweep()
                except BaseException as exc:  # noqa: BLE001
                    error = exc
            # The capture thread is the recorder's only caller: once it has
            # handed over its last batch, the file can be finished.
            self._finish_recording()
            with self._cond:
                self._error = error
                self._capture_done = True
                self._cond.notify_all()
                self._wake_consumers()

    def _next_slot(self):
        """A batch to read into, or None once stop() was called."""
        with self._cond:
            while True:
                if self._stop_requested:
                    return None
                if self._free:
                    return self._free.pop()
                if self._spare is not None:
                    return self._spare
                self._cond.wait()

    def _hand_over(self, batch) -> None:
        """Show a filled batch to the sinks, then put it in the ring (or discard it)."""
        sink_error = None
        for sink in tuple(self._sinks):
            try:
                sink(batch)
            except BaseException as exc:  # noqa: BLE001 - raised below, after publishing
                sink_error = exc
                break
        n = batch._count
        with self._cond:
            if batch is self._spare:
                if self._free:  # a slot came free while reading: swap the spare in
                    self._spare = self._free.pop()
                else:
                    self._overruns += n
                    self._overrun_batches += 1
                    batch = None
            if batch is not None:
                self._filled.append(batch)
                self._packets += n
                self._batches += 1
                self._cond.notify_all()
                self._wake_consumers()
                # Counted and published first: even if one of these failed,
                # the datagrams would still reach the consumer.
                self._bytes += int(batch._lengths[:n].sum())
                self._truncated += int(np.count_nonzero(batch._truncated_u8[:n]))
                if self._tracker is not None:
                    self._tracker.update(batch, n)
        if sink_error is not None:
            raise sink_error

    def _sweep(self) -> None:
        """At stop: move what is still queued into free slots, count the rest as unread."""
        for _ in range(self._ring_size):  # bounded, even if the consumer keeps freeing slots
            with self._cond:
                batch = self._free.pop() if self._free else None
            if batch is None:
                break
            try:
                self._sock.recv_batch(batch, timeout=0)
            except BlockingIOError:
                with self._cond:
                    self._free.append(batch)
                return
            self._hand_over(batch)
        self._count_unread()

    def _count_unread(self) -> None:
        """Read off and count the datagrams still queued in the socket."""
        if self._sock.fileno() < 0:
            return
        if self._scratch is None:
            self._scratch = Batch(self._batch_size, 1, family=self._family)
        # A queue of rcvbuf bytes holds fewer datagrams than this (each costs
        # more than 256 bytes of buffer); the bound keeps the loop finite
        # while a sender goes on sending.
        limit = self.rcvbuf // 256 + self._batch_size
        total = 0
        while total < limit:
            try:
                n = self._sock.recv_batch(self._scratch, timeout=0)
            except BlockingIOError:
                break
            except OSError:
                break  # the socket is gone: nothing more can be counted
            total += n
            with self._cond:
                self._unread += n

    # -- the consumer ---------------------------------------------------------
    def _take_locked(self):
        """The next filled batch, or None if none yet; raises once nothing more will come."""
        if self._state == _NEW:
            raise RuntimeError("the Receiver is not started: call start() or use it in a with block")
        if self._held is not None:
            self._free.append(self._held)
            self._held = None
            self._cond.notify_all()
        if self._filled and self._state != _CLOSED:
            batch = self._filled.popleft()
            self._held = batch
            self._delivered += batch._count
            return batch
        if self._capture_done or self._state == _CLOSED:
            error, self._error = self._error, None
            if error is not None:
                raise error
            raise ReceiverStopped("the Receiver has stopped and delivered every batch")
        return None

    def get(self, timeout=None) -> Batch:
        """The next filled batch; it stays valid until the next get() or iteration step.

        Waits up to ``timeout`` seconds (None: until one comes or the
        receiver stops) and raises ``TimeoutError`` if none came. Raises
        ``ReceiverStopped`` once stopped and every captured batch was
        delivered, or the capture thread's error (once) if it failed.
        """
        deadline = _deadline(timeout)
        with self._cond:
            while True:
                batch = self._take_locked()
                if batch is not None:
                    return batch
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no batch arrived in time")
                # One wait is capped: threading refuses a timeout past
                # threading.TIMEOUT_MAX (OverflowError), and 1e10 s is a valid wish.
                self._cond.wait(min(remaining, _LONGEST_WAIT))

    def __iter__(self):
        while True:
            try:
                batch = self.get()
            except ReceiverStopped:
                return
            yield batch

    def __aiter__(self):
        return self._aiter()

    async def _aiter(self):
        """``async for``: waits without a thread; the capture thread wakes the loop."""
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                try:
                    batch = self._take_locked()
                except ReceiverStopped:
                    return
                if batch is None:
                    waiter = loop.create_future()
                    self._async_waiters.append((loop, waiter))
            if batch is not None:
                yield batch
                continue
            try:
                await waiter
            finally:
                with self._cond:
                    if (loop, waiter) in self._async_waiters:
                        self._async_waiters.remove((loop, waiter))

    def _wake_consumers(self) -> None:
        """Wake asyncio consumers (called with the lock held)."""
        waiters, self._async_waiters = self._async_waiters, []
        for loop, waiter in waiters:
            try:
                loop.call_soon_threadsafe(_wake_future, waiter)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

    # -- counters -------------------------------------------------------------
    def _read_kernel_drops(self) -> int:
        """Update and return the kernel's drop count for the socket (lock held)."""
        if self._state != _CLOSED and self._sock.fileno() >= 0:
            raw = self._sock.getsockopt(_stdsocket.SOL_SOCKET, C.SO_MEMINFO, _MEMINFO.size)
            drops = _MEMINFO.unpack(raw)[_SK_MEMINFO_DROPS]
            # A u32 that wraps after 2**32 drops: add the difference modulo 2**32.
            self._drops_total += (drops - self._drops_raw) & 0xFFFFFFFF
            self._drops_raw = drops
        return self._drops_total

    @property
    def stats(self) -> ReceiverStats:
        """A consistent snapshot of the counters (kernel drops read from the kernel now)."""
        with self._cond:
            drops = self._read_kernel_drops()
            seq = {}
            tracker = self._tracker
            if tracker is not None:
                seq = dict(
                    seq_lost=tracker.lost,
                    seq_gaps=tracker.gaps,
                    seq_reordered=tracker.reordered,
                    seq_duplicates=tracker.duplicates,
                    seq_short=tracker.short,
                )
            recorder = self._recorder
            record: dict[str, int] = {}
            if recorder is not None:
                recorded = recorder.stats
                record = dict(recorded=recorded.written, capture_dropped=recorded.capture_dropped)
            return ReceiverStats(
                packets=self._packets,
                bytes=self._bytes,
                batches=self._batches,
                truncated=self._truncated,
                kernel_drops=drops,
                ring_overruns=self._overruns,
                ring_overrun_batches=self._overrun_batches,
                unread=self._unread,
                delivered=self._delivered,
                in_ring=self._packets - self._delivered,
                **seq,
                **record,
                rcvbuf=self._rcvbuf_locked(),
                slot_size=self._slot_size,
            )
