"""Receiver: a capture thread that keeps reading while the consumer works.

A data-acquisition script spends Python time on each batch; while it does,
datagrams pile up in the socket's queue and, when that is full, the kernel
drops them. The Receiver moves reading into its own thread, which fills a
ring of rows; the consumer takes what was filled. Every datagram is
delivered or counted where it was dropped (see fastnet/receive/stats.py).

Ring
----
One ring of ``ring_size x batch_size`` rows is allocated once (a Batch of
that many rows). Its capacity is counted in datagrams, however they arrive:
the capture fills rows one after another, and ``get()`` hands the consumer
every row filled since its last ``get()``, up to ``batch_size`` at a time,
as a Batch that is a window on the ring (contiguous rows, so a hand-over
that would run past the ring's last row stops there). The window stays
valid until the next ``get()``, which gives its rows back to the capture.
A partly filled hand-over waits at most ``max_delay`` for more rows, so at
low rates a datagram reaches the consumer within about ``max_delay``, and at
high rates hand-overs are full.

The capture loop is the engine's: on the Cython engine it runs in C and
never takes the GIL in steady state (src/_capture.pxi), so whatever the
consumer does in Python, capture goes on while the ring has room. On the
pure-Python engine it is a Python thread (fastnet/receive/capture_loop.py):
it reads only while the interpreter lets it, the GIL-bound baseline.

When the ring is full:

* ``on_full="block"``: the capture waits for the consumer. The socket's
  queue absorbs the burst; what does not fit the kernel drops and counts
  (``kernel_drops``).
* ``on_full="drop"``: the capture keeps reading, into a scratch area, and
  discards what it read (``ring_overruns`` datagrams, in
  ``ring_overrun_batches`` receive calls): tail drop, as the kernel does.

Sequence tracking (``seq``) and sinks (the recorder) run in the consumer's
thread, on whole windows with numpy, never on the capture thread: tracking
when ``get()`` hands rows over or ``stats`` is read, sinks just before the
consumer sees the rows.

Stopping
--------
``stop()`` (from any thread) makes the capture stop within about 0.1 s.
Before it ends, it moves whatever is still queued in the socket into free
rows without waiting for the consumer, and counts what does not fit as
``unread``. The consumer then still gets every row already in the ring
(drain); only after the last one does iteration end, or ``get()`` raise
``ReceiverStopped``. An error in the capture thread stops it the same way:
the rows captured before it are delivered first, then the error is raised
by the consumer's next ``get()`` (or iteration) once the ring is empty; it
is never lost.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import math
import os
import socket as _stdsocket
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, cast

from .. import constants as C
from .. import engines
from ..core import buffers as _buffers
from ..core.addresses import bind_address
from ..core.batch import MAX_CAPACITY, MAX_TOTAL_BYTES, Batch
from ..core.checks import positive_int
from ..core.closing import Waker
from ..core.multicast import join_group
from ..core.socket import socket as _fastsocket
from ..errors import ReceiverStopped
from . import capture_loop, sizing
from .seq import SeqField, SeqTracker
from .stats import ReceiverStats

if TYPE_CHECKING:
    from ..capture.recorder import Recorder
    from ..frames.assembler import FrameAssembler
    from ..frames.frame import Frame
    from ..frames.writer import FrameWriter

__all__ = ["Receiver", "ReceiverStopped"]


#: Most batches in a ring, and most rows (ring_size x batch_size): the ring is one Batch.
MAX_RING_SIZE = 1 << 16
MAX_RING_ROWS = MAX_CAPACITY

#: How long a partly filled hand-over waits for more rows, by default (s).
DEFAULT_MAX_DELAY = 0.001

#: Longest single wait of get(); a longer timeout waits in several.
_LONGEST_WAIT = 3600.0

#: Longest single wait of get() in the engine before Python runs again (signal
#: handlers, so Ctrl-C): the capture loops wait in slices as long.
_SLICE = capture_loop.SLICE_S

# include/uapi/linux/sock_diag.h: SO_MEMINFO fills u32[SK_MEMINFO_VARS];
# SK_MEMINFO_DROPS (index 8) is sk_drops, the counter /proc/net/udp prints.
_SK_MEMINFO_VARS = 9
_SK_MEMINFO_DROPS = 8
_MEMINFO = struct.Struct(f"={_SK_MEMINFO_VARS}I")

_ON_FULL = ("block", "drop")

#: A window on the ring's rows (a Batch of views).
_window = Batch._rows_of

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
    """The ring fits the memory and row bounds (if ring_size is known) and ``seq`` fits a slot."""
    if ring_size is not None:
        ring_bytes = ring_size * batch_size * slot_size
        if ring_bytes > MAX_TOTAL_BYTES:
            raise ValueError(
                f"ring_size x batch_size x slot_size is {ring_bytes} bytes, more than {MAX_TOTAL_BYTES}"
            )
        ring_rows = ring_size * batch_size
        if ring_rows > MAX_RING_ROWS:
            raise ValueError(
                f"ring_size x batch_size is {ring_rows} rows, more than the ring's {MAX_RING_ROWS}"
            )
    if seq is not None and seq.end > slot_size:
        raise ValueError(f"{seq} needs {seq.end} bytes per datagram but slot_size is {slot_size}")


def _max_delay_ns(max_delay) -> int:
    if isinstance(max_delay, bool) or not isinstance(max_delay, (int, float)):
        raise TypeError(f"max_delay must be a number of seconds, not {type(max_delay).__name__}")
    if not (math.isfinite(max_delay) and 0 <= max_delay <= 3600):
        raise ValueError(f"max_delay must be 0 to 3600 seconds, got {max_delay}")
    return int(max_delay * 1e9)


def _max_frame_age(age, frames):
    """``max_frame_age`` checked: None, or seconds (finite, more than 0) with ``frames=``."""
    if age is None:
        return None
    if isinstance(age, bool) or not isinstance(age, (int, float)):
        raise TypeError(f"max_frame_age must be a number of seconds or None, not {type(age).__name__}")
    if not (math.isfinite(age) and age > 0):
        raise ValueError(f"max_frame_age must be a finite number of seconds more than 0, got {age}")
    if frames is None:
        raise ValueError("max_frame_age applies to frames: give frames=FrameSpec(...) too")
    return float(age)


def _checked_cpu(cpu):
    """``cpu`` if it is a CPU this process may run on, or None; TypeError/ValueError else."""
    if cpu is None:
        return None
    if isinstance(cpu, bool) or not isinstance(cpu, int):
        raise TypeError(f"cpu must be a CPU number or None, not {type(cpu).__name__}")
    allowed = os.sched_getaffinity(0)
    if cpu not in allowed:
        raise ValueError(f"cpu {cpu} is not one this process may run on ({sorted(allowed)})")
    return cpu


def _ring_class(backend):
    """The engine's capture ring: the Cython engine's runs without the GIL."""
    ring = getattr(engines.load(backend), "CaptureRing", None)
    return ring if ring is not None else capture_loop.CaptureRing


class Receiver:
    """Receive datagrams on ``address`` in a capture thread, into a ring of rows.

    ``address`` is a port (on loopback), ``"HOST:PORT"``, or a ``(host, port)``
    tuple as for ``socket.bind`` (port 0 picks a free port; see ``address``).

    ``slot_size``
        bytes per datagram; longer ones are cut and counted in ``truncated``.
        Default: the largest UDP payload of the listening interface's MTU,
        at most 9000 (fastnet/receive/sizing.py).
    ``batch_size``
        most datagrams per Batch handed to the consumer (and per receive call).
    ``ring_size``
        the ring holds ``ring_size x batch_size`` datagrams (rows), however
        they arrive; at most 1048576 rows. Default: as many batches as fit
        128 MiB, from 4 to 64.
    ``max_delay``
        seconds a partly filled batch may wait for more rows before the
        consumer gets it (default 0.001); a full ``batch_size`` goes at once.
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
        The Cython engine's capture runs without the GIL; the pure-Python
        engine's is a Python thread, held up while the consumer holds the GIL.
    ``cpu``
        pin the capture thread to this CPU (``os.sched_setaffinity``), e.g.
        away from the one the NIC's interrupts or the sender use (``fastnet
        info`` says which those are, where the kernel tells).
    ``frames``, ``frames_in_flight``
        a ``fastnet.FrameSpec``: ``get()`` and iteration then give
        ``fastnet.Frame`` objects, assembled from the datagrams by their
        headers (``fastnet.FrameAssembler(frames, frames_in_flight)``, run by
        the consumer on each batch it takes), in increasing frame id order;
        at the end the frames still in flight come out, incomplete ones with
        ``complete`` False. ``stats`` then includes the frame counters.
    ``max_frame_age``
        with ``frames``: seconds (default None: no limit) a frame may stay
        in flight after its first packet was placed; then ``get()`` evicts
        it, with the older frames in flight, even when no newer packet
        comes, so a stalled sender's last frames come out. ``get(timeout)``
        returns such a frame once it is due (``async for``: within about
        0.1 s of it).

    Use it as a context manager (starts, then stops and closes), or call
    ``start()``, ``stop()``, ``close()``. The consumer takes batches with
    ``for batch in rx:``, ``rx.get(timeout)`` or ``async for batch in rx:``;
    one consumer at a time. ``record(path)`` writes what arrives to a
    capture file (with ``frames``, the frames to an HDF5 or zarr file).

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
        max_delay=DEFAULT_MAX_DELAY,
        cpu=None,
        frames=None,
        frames_in_flight=8,
        max_frame_age=None,
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
            max_delay=max_delay,
            cpu=cpu,
            frames=frames,
            frames_in_flight=frames_in_flight,
            max_frame_age=max_frame_age,
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
        max_delay=DEFAULT_MAX_DELAY,
        cpu=None,
        frames=None,
        frames_in_flight=8,
        max_frame_age=None,
    ):
        """Check and keep the settings (no socket is made); None sizes are chosen by _fill_sizes."""
        self._slot_request = None if slot_size is None else positive_int(slot_size, "slot_size")
        self._batch_size = positive_int(batch_size, "batch_size")
        self._ring_request = None if ring_size is None else positive_int(ring_size, "ring_size")
        # A typo must not allocate for minutes: the ring is made up front.
        if self._ring_request is not None and self._ring_request > MAX_RING_SIZE:
            raise ValueError(f"ring_size must be at most {MAX_RING_SIZE}, got {ring_size}")
        self._max_delay_ns = _max_delay_ns(max_delay)
        self._cpu = _checked_cpu(cpu)
        # Frames: the consumer's get() feeds each batch to an assembler and
        # hands out the frames it completes (fastnet/frames/).
        self._assembler = None
        if frames is not None:
            from ..frames.assembler import FrameAssembler  # imported only when frames are asked for

            self._assembler = FrameAssembler(frames, frames_in_flight, backend=backend)
        self._max_frame_age = _max_frame_age(max_frame_age, frames)
        self._frames_out: collections.deque = collections.deque()
        self._frames_flushed = False
        # Held while frames are assembled: by the consumer's get(), and by
        # stop() when it assembles the rows left in the ring for the file.
        self._frames_lock = threading.RLock()
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
            rows = self._ring_size * self._batch_size
            #: The ring's rows: one Batch, so hand-overs are windows on it.
            self._rows = Batch(rows, self._slot_size, family=self._family)
            # Datagrams read only to be discarded (ring full with "drop", and
            # what is left at stop or close) need no payload room.
            self._scratch = Batch(self._batch_size, 1, family=self._family)
            self._ring = _ring_class(self._backend)(
                self._rows, self._scratch, self._batch_size, self._on_full == "drop", self._max_delay_ns
            )
        except BaseException:
            sock.close()
            raise

        #: Callables ``sink(batch)`` run on every window of rows, in the
        #: consumer's thread (in get(), or at stop for the rows it never
        #: took), before the consumer can see it: a recorder copies rows to
        #: its writer thread this way. They must be quick, must not keep the
        #: batch (its rows are reused) nor change it. An exception from a
        #: sink stops capture and is raised in the consumer, after the batch
        #: it was given has been delivered; rows after it are not delivered
        #: (they stay counted in ``in_ring``).
        self._sinks: list[Callable[[Batch], Any]] = []
        #: The Recorder from record(), closed by stop().
        self._recorder: Recorder | None = None
        #: The FrameWriter from record() with frames=, closed by stop().
        self._frame_writer: FrameWriter | None = None
        self._frame_writer_closed = False
        self._sinks_closed = False
        self._record_error: Exception | None = None
        self._overruns_before_record = 0

        self._cond = threading.Condition(threading.RLock())
        self._held: Batch | None = None
        self._state = _NEW
        self._stop_requested = False
        self._capture_done = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._async_waiters: list[asyncio.Future] = []
        self._tracker = SeqTracker(self._seq) if self._seq is not None else None
        # Rows handed to the consumer; and cursors (rows since the start, as
        # the ring counts them) of the rows given to the sinks and seen by
        # the tracker.
        self._delivered = 0
        self._fed = 0
        self._tracked = 0
        self._track_lock = threading.Lock()
        self._unread = 0  # counted by close() after the capture ended
        self._drops_raw = 0  # last SK_MEMINFO_DROPS read (u32, may wrap)
        self._drops_total = 0  # accumulated across wraps
        self._last_rcvbuf = 0  # SO_RCVBUF as last read: what rcvbuf says once closed

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
        """The Recorder (or, for frames, the FrameWriter) ``record()`` opened, or None."""
        return self._frame_writer if self._frame_writer is not None else self._recorder

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
        if self._state != _CLOSED:
            try:
                self._last_rcvbuf = self._sock.getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_RCVBUF)
            except OSError:  # the socket was closed under the Receiver: the last value read
                pass
        return self._last_rcvbuf

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

    @property
    def max_delay(self) -> float:
        """Seconds a partly filled batch may wait for more rows."""
        return self._max_delay_ns / 1e9

    @property
    def max_frame_age(self):
        """Seconds a frame may stay in flight before get() evicts it, or None (no limit)."""
        return self._max_frame_age

    @property
    def cpu(self):
        """The CPU the capture thread is pinned to, or None."""
        return self._cpu

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

        Rows already captured are still delivered to the consumer; then its
        iteration ends (``get()`` raises ``ReceiverStopped``). A capture file
        from ``record()`` is complete when this returns (the rows still in
        the ring are written too); if writing it failed (disk full), that
        error is raised here, once.
        """
        with self._cond:
            self._stop_requested = True
            if self._state == _NEW:
                self._state = _STOPPED
                self._capture_done = True
                self._ring.finish()
            elif self._state == _RUNNING:
                self._state = _STOPPED
            thread = self._thread
        self._ring.request_stop()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if thread is None or not thread.is_alive():
            self._feed_sinks(self._ring.position[0])
            self._finish_recording()
            self._finish_frame_recording()
        with self._cond:
            error, self._record_error = self._record_error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Stop, count what is left in the socket's queue as ``unread``, close the socket.

        Rows still in the ring are discarded (``stats.in_ring`` says how
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
        self._track_until(self._ring.position[0])  # what is discarded is still tracked
        with self._cond:
            if self._state != _CLOSED:
                if self._sock.fileno() >= 0:  # (it may have been closed under us)
                    self._read_kernel_drops()
                    self._rcvbuf_locked()  # kept for rcvbuf and stats once closed
                self._state = _CLOSED
                self._held = None
                self._ring.close_consumer()
                self._sock.close()
        if record_error is not None:
            raise record_error

    # -- recording ------------------------------------------------------------
    def record(self, path, **options):
        """Write every datagram (or, with ``frames=``, every frame) from now on to a file.

        With ``frames=`` and a path ending in ``.h5``/``.hdf5`` (HDF5) or
        ``.zarr`` (zarr v3), the frames go to a ``fastnet.FrameWriter``,
        which is returned: every frame ``get()`` assembles, in the order it
        comes, written by the writer's own thread (``options`` are
        FrameWriter's ``compression``, ``max_queue`` and ``flush_every``).
        ``stop()`` assembles the rows still in the ring and the frames
        still in flight, writes them and closes the file, so the file is
        complete when ``stop()`` returns; the consumer can still take those
        frames after it. A frame the writer's queue had no room for (the
        disk fell behind), or that a failed write lost, is counted in
        ``stats.frames_dropped``; ``stats.frames_written`` counts the rest,
        and the file's ``stats`` attribute holds the final counts. A path of
        these kinds without ``frames=`` raises ``ValueError``.

        A ``.pcap`` or ``.npy`` path records the datagrams themselves, with
        or without ``frames=``: with them, the raw datagrams (rejected ones
        too) stay beside the frames, to be read back or sent again. The rest
        of this describes that recording.

        ``path`` ends in ``.pcap`` or ``.npy`` (or give ``format=``); an
        unknown suffix raises ``ValueError`` before any file is created.
        ``options`` are ``fastnet.open_recorder``'s (``buffers``,
        ``payload_bytes``, ``format``); the recorder is told the bound
        address (the destination in pcap records). Kernel receive timestamps
        are turned on for the socket, so records carry the time of arrival.

        The recorder is fed from the ring, in the consumer's thread, never
        the capture's: each batch is copied to it just before the consumer
        gets it, and the rows still in the ring at ``stop()`` are copied
        then. Its own writer thread writes them, from a bounded number of
        staging buffers (``buffers``). What it cannot take (every buffer
        still waiting for the disk, or a write failed) is counted in
        ``stats.capture_dropped``, and so are datagrams the ring had no room
        for (``ring_overruns`` since recording began): the file holds
        everything read from the socket but those. The file is complete
        once ``stop()`` (or ``close()``, or the end of a ``with`` block)
        returns. One recording per Receiver; a stopped Receiver cannot start
        one (``RuntimeError``).
        """
        from ..capture.reader import format_for_path
        from ..capture.recorder import open_recorder
        from ..frames.writer import is_frame_path

        if is_frame_path(path) and "format" not in options:
            if self._assembler is None:
                raise ValueError(
                    f"{os.fspath(path)!r} is a frame file: record frames with Receiver(frames=FrameSpec(...))"
                )
            return self._record_frames(path, options)
        format_for_path(path, options.get("format"))  # ValueError before any file exists
        self._check_can_record()
        recorder = open_recorder(path, local_address=self._address, **options)
        recorder.rows_per_buffer = self._batch_size
        try:
            self._sock.enable_timestamps()
            with self._cond:
                self._check_can_record()
                self._timestamps = True
                self._overruns_before_record = self._ring.counts[4]
                self._recorder = recorder
                self._sinks.append(recorder)
        except BaseException:
            recorder.close()
            raise
        return recorder

    def _record_frames(self, path, options) -> "FrameWriter":
        from ..frames.writer import FrameWriter

        assembler = cast("FrameAssembler", self._assembler)
        self._check_can_record()
        # The writer's thread writes, so a slow disk never holds get() up;
        # the Receiver's own stats (frame counters included) go in the file.
        writer = FrameWriter(path, assembler.spec, background=True, stats_of=self, **options)
        try:
            self._sock.enable_timestamps()  # the frames' first_timestamp
            with self._cond:
                self._check_can_record()
                self._timestamps = True
                self._frame_writer = writer
        except BaseException:
            writer.close()
            raise
        return writer

    def _check_can_record(self) -> None:
        with self._cond:
            if self._sinks_closed or self._stop_requested or self._state == _CLOSED:
                raise RuntimeError("a stopped Receiver cannot start recording")
            current = self.recorder
            if current is not None:
                raise RuntimeError(f"this Receiver already records to {current.path!r}")

    def _finish_frame_recording(self) -> None:
        """Assemble what is left in the ring, write every frame, close the file; keep its error."""
        writer = self._frame_writer
        if writer is None or self._frame_writer_closed:
            return
        with self._frames_lock:
            self._assemble_the_rest()
            self._frame_writer_closed = True
        try:
            writer.close()  # the queue, then the final stats (read from self: no lock held here)
        except Exception as exc:  # noqa: BLE001 - raised by stop()
            with self._cond:
                self._record_error = exc

    def _assemble_the_rest(self) -> None:
        """At stop, with the capture over: every row left in the ring and the frames in flight, out.

        The frames the consumer holds or has yet to take keep their buffers
        (FrameAssembler.keep), as do those assembled here, which the consumer
        takes after stop() returns.
        """
        assembler = cast("FrameAssembler", self._assembler)
        if self._frames_flushed:
            return
        assembler.keep()
        while True:
            start, n, cursor = self._ring.take(0.0, True)
            if n <= 0:  # the ring is empty (a capture error stays for the consumer's get())
                break
            batch = self._hand_over(start, n, cursor)
            self._held = None
            # The capture is over: nothing writes to the ring's rows again.
            self._frames_came(assembler.add(batch, borrow=True))
            assembler.keep()
        self._frames_came(assembler.flush())
        assembler.keep()
        self._frames_flushed = True

    def _frames_came(self, frames: "list[Frame]") -> None:
        """Frames for the consumer, in order; and for the file, if recording."""
        self._frames_out.extend(frames)
        writer = self._frame_writer
        if frames and writer is not None and not self._frame_writer_closed:
            writer.write(frames)  # copies into the writer's queue; counts what does not fit

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
        error = None
        try:
            if self._cpu is not None:
                # sched_setaffinity(2): "If pid is zero, then the calling
                # thread is used" (a thread, not the whole process).
                os.sched_setaffinity(0, {self._cpu})
            sock = self._sock
            # Registered as a user of the descriptor for the whole capture,
            # so a close() from another thread defers the real close until
            # the loop has left (docs/design/closing.md); the waker tells the
            # loop of the close.
            sock._enter()
            try:
                with sock._lock:
                    if sock._waker is None:
                        sock._waker = Waker()
                    waker_fd = sock._waker.fd
                # The engine's ring reads the engine's own state of the socket;
                # the Python loop (capture_loop.py) uses the socket's methods.
                target = sock if isinstance(self._ring, capture_loop.CaptureRing) else sock._engine_state
                self._ring.run(target, waker_fd, self._unread_limit())
            finally:
                sock._leave()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, not lost
            error = exc
        finally:
            with self._cond:
                if self._error is None:  # a sink's error, raised in get(), comes first
                    self._error = error
                self._capture_done = True
            # After the error is kept: a consumer that finds the ring ended
            # then finds the error too.
            self._ring.finish()

    def _unread_limit(self) -> int:
        # A queue of rcvbuf bytes holds fewer datagrams than this (each costs
        # more than 256 bytes of buffer); the bound keeps counting finite
        # while a sender goes on sending.
        return self.rcvbuf // 256 + self._batch_size

    def _count_unread(self) -> None:
        """Read off and count the datagrams still queued in the socket (after the capture)."""
        if self._sock.fileno() < 0:
            return
        limit = self._unread_limit()
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

    # -- rows for the tracker and the sinks ---------------------------------
    def _windows(self, start: int, end: int):
        """Windows on the ring for rows ``start..end-1`` (cursors), each contiguous, <= batch_size.

        Rows from the consumer's last hand-over on were all written since
        the ring's base last moved, so the current base places them.
        """
        nrows = self._rows._capacity
        base = self._ring.position[1]
        while start < end:
            index = (start - base) % nrows
            count = min(end - start, self._batch_size, nrows - index)
            yield _window(self._rows, index, count)
            start += count

    def _track_until(self, end: int) -> None:
        """Count rows up to cursor ``end`` in the SeqTracker (they are not freed yet)."""
        if self._tracker is None:
            return
        with self._track_lock:
            start = max(self._tracked, end - self._rows._capacity)
            for window in self._windows(start, end):
                self._tracker.update(window, window._count)
            self._tracked = max(self._tracked, end)

    def _feed_sinks(self, end: int) -> None:
        """Give rows up to cursor ``end`` to the sinks (once each); keep a sink's error."""
        with self._cond:
            if self._sinks_closed or not self._sinks or self._fed >= end:
                self._fed = max(self._fed, end)
                return
            sinks, start = tuple(self._sinks), self._fed
            self._fed = end
        for window in self._windows(start, end):
            for sink in sinks:
                try:
                    sink(window)
                except BaseException as exc:  # noqa: BLE001 - raised in the consumer, after its batch
                    self._sink_failed(exc)
                    return

    def _sink_failed(self, exc: BaseException) -> None:
        with self._cond:
            self._sinks_closed = True
            if self._error is None:
                self._error = exc
        # No more hand-overs after the batch the sink failed on.
        self._ring.close_consumer()

    # -- the consumer ---------------------------------------------------------
    def _hand_over(self, start: int, n: int, cursor: int) -> Batch:
        batch = _window(self._rows, start, n)
        end = cursor + n
        with self._track_lock:  # rows skipped when the ring's base moved were never filled
            self._tracked = max(self._tracked, cursor)
        with self._cond:
            self._fed = max(self._fed, cursor)
        self._track_until(end)
        self._feed_sinks(end)
        # The window and the count change together, so a consumer interrupted
        # after this (Ctrl-C) still holds what was counted delivered.
        self._held, self._delivered = batch, self._delivered + n
        return batch

    def _ended(self, what: str = "batch"):
        """Raise what ends the consumer's iteration: the capture's error (once), else ReceiverStopped."""
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise error
        raise ReceiverStopped(f"the Receiver has stopped and delivered every {what}")

    def _check_started(self) -> None:
        if self._state == _NEW:
            raise RuntimeError("the Receiver is not started: call start() or use it in a with block")

    def get(self, timeout=None):
        """The rows filled since the last get() (up to batch_size), as a Batch; a Frame with ``frames=``.

        With ``frames=``, the next assembled Frame, valid until the next
        get() or iteration step (and every batch taken meanwhile is given
        back at once); the rest is as for batches.

        The Batch is a window on the ring and stays valid until the next
        get() or iteration step, which gives its rows back. Waits up to
        ``timeout`` seconds (None: until rows come or the receiver stops)
        and raises ``TimeoutError`` if none came; a partly filled batch
        comes once its first row has waited ``max_delay``, or when the
        timeout ends, whichever is first. Raises
        ``ReceiverStopped`` once stopped and every captured row was
        delivered, or the capture thread's error (once) if it failed. The
        wait releases the GIL.
        """
        if self._assembler is not None:
            # A frame already assembled is handed out at once: no deadline,
            # lock or wait, which cost more per frame than assembling it.
            # deque.popleft is atomic, and the frames waiting here keep their
            # buffers while stop() assembles more (FrameAssembler.keep).
            try:
                return self._frames_out.popleft()
            except IndexError:
                return self._get_frame(timeout)
        return self._get_batch(timeout)

    def _get_frame(self, timeout):
        """The next Frame: from the last batch's, else from batches taken until one comes."""
        deadline = _deadline(timeout)
        assembler = cast("FrameAssembler", self._assembler)
        age = self._max_frame_age
        with self._frames_lock:
            while not self._frames_out:
                if self._frames_flushed:
                    self._ended("frame")
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                since = None if age is None else assembler.in_flight_since()
                if since is not None:  # wait no longer than until the oldest frame is due
                    due = max(0.0, since + age - time.monotonic())
                    wait = due if wait is None else min(wait, due)
                try:
                    batch = self._get_batch(wait)
                except ReceiverStopped:
                    self._frames_came(assembler.flush())
                    self._frames_flushed = True
                    continue
                except TimeoutError:
                    # Nothing more came: the rows that had come are placed,
                    # so an aged frame is not evicted before its own packets.
                    if since is not None:
                        self._frames_came(assembler.evict_older_than(cast(float, age)))
                    if deadline is not None and time.monotonic() >= deadline and not self._frames_out:
                        raise
                    continue
                # borrow: the window's rows stay unchanged until the next
                # take, which comes only once its frames have all been
                # handed out (the same lifetime as a pooled frame's), so
                # the frames complete in it are views on it, not copies.
                self._frames_came(assembler.add(batch, borrow=True))
            return self._frames_out.popleft()

    def _get_batch(self, timeout) -> Batch:
        deadline = _deadline(timeout)
        self._check_started()
        self._held = None
        take = self._ring.take
        while True:
            flush = False
            if deadline is None:
                wait = _SLICE
            else:
                wait = max(deadline - time.monotonic(), 0.0)
                # The caller's own deadline: rows waiting then are handed
                # over, however few (max_delay only bounds how long they wait).
                flush = wait <= _SLICE
                wait = min(wait, _SLICE)
            start, n, cursor = take(wait, flush)
            if n > 0:
                return self._hand_over(start, n, cursor)
            if n < 0:
                self._ended()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("no batch arrived in time")

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
        """``async for``: waits in the loop's default executor, never in the loop's thread."""
        loop = asyncio.get_running_loop()
        self._check_started()
        while self._assembler is not None:
            try:
                frame = self._get_frame(0)  # takes only what is there: never waits
            except ReceiverStopped:
                return
            except TimeoutError:
                await self._until_ready(loop)
                continue
            yield frame
        while True:
            self._held = None
            start, n, cursor = self._ring.take(0.0)
            if n > 0:
                yield self._hand_over(start, n, cursor)
                continue
            if n < 0:
                try:
                    self._ended()
                except ReceiverStopped:
                    return
            await self._until_ready(loop)

    async def _until_ready(self, loop) -> None:
        """Wait in the executor until the ring has rows to hand over (or ends), at most _SLICE.

        Only waits: the rows are taken in the loop's thread, so a cancelled
        wait never takes a batch nobody sees.
        """
        waiter = loop.run_in_executor(None, self._ring.wait_ready, _SLICE)
        self._async_waiters.append(waiter)
        try:
            await waiter
        finally:
            self._async_waiters.remove(waiter)

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
        """A snapshot of the counters (kernel drops read from the kernel now).

        The capture's counters are read as they stand, without holding the
        capture up; rows captured but not yet handed over are counted by
        the SeqTracker now.
        """
        tracker = self._tracker
        if tracker is not None:
            self._track_until(self._ring.position[0])
        with self._cond:
            drops = self._read_kernel_drops()
            packets, nbytes, receives, truncated, overruns, overrun_receives, unread, _ = self._ring.counts
            seq = {}
            if tracker is not None:
                with self._track_lock:
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
                record = dict(
                    recorded=recorded.written,
                    capture_dropped=recorded.capture_dropped + overruns - self._overruns_before_record,
                )
            if self._frame_writer is not None:
                written = self._frame_writer.stats
                record.update(frames_written=written.frames_written, frames_dropped=written.frames_dropped)
            return ReceiverStats(
                packets=packets,
                bytes=nbytes,
                batches=receives,
                truncated=truncated,
                kernel_drops=drops,
                ring_overruns=overruns,
                ring_overrun_batches=overrun_receives,
                unread=unread + self._unread,
                delivered=self._delivered,
                in_ring=packets - self._delivered,
                **seq,
                **record,
                **({} if self._assembler is None else self._assembler.stats.as_dict()),
                rcvbuf=self._rcvbuf_locked(),
                slot_size=self._slot_size,
            )
