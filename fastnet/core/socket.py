"""fastnet.socket: a standard-library socket with batch methods.

The class subclasses ``socket.socket``, so every method people already use
behaves exactly as it does there (it *is* one: selectors, asyncio and
``isinstance`` checks all work). What it adds is written once here, above
the engines: argument checks, timeouts, waiting, and closing safely while
another thread is blocked in a batch call.

Waiting is done here with poll(2), never inside recvmmsg: recvmmsg(2), BUGS:
"The timeout argument does not work as intended. The timeout is checked only
after the receipt of each datagram". The engines are always called with
MSG_DONTWAIT and return 0 when nothing is queued.

Closing: "closing a file descriptor while it is in use by a system call in
another thread" does not wake that call on Linux (close(2), NOTES), and the
fd number may be reused at once by another open. So a batch call registers
itself as a user of the socket; ``close()`` from another thread marks the
socket closing, wakes the waiter through an eventfd it polls beside the
socket, and the real close happens when the last user leaves (the same
deferred close the standard library uses for ``makefile()``).
"""

from __future__ import annotations

import _socket
import errno
import io
import math
import os
import select
import socket as _stdsocket
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from .. import constants as C
from .. import engines
from ..errors import with_sent
from . import buffers as _buffers
from . import gso as _gso
from .addresses import check_host_port
from .aio import AsyncBatchMixin
from .batch import _CLAIMS, Batch
from .closing import Waker, closed_error
from .features import supported
from .stream import StreamMixin

__all__ = ["socket", "socketpair", "fromfd"]

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT


def _name(enum, value: int) -> str:
    """``AF_INET`` for 2, or the number itself where the enum has no name for it."""
    try:
        return enum(value).name
    except ValueError:
        return str(value)


def _engine_for(backend):
    """``(name, engine module)`` for ``backend`` (None: ``fastnet.backend``), checked first."""
    if backend is None:
        backend = engines.default_backend()
    elif not isinstance(backend, str):
        raise TypeError(f"backend must be a str or None, not {type(backend).__name__}")
    return backend, engines.load(backend)


class socket(StreamMixin, AsyncBatchMixin, _stdsocket.socket):
    """A ``socket.socket`` with batch receive and send.

    The constructor is the standard library's: ``socket()`` alone is an
    ``AF_INET`` ``SOCK_STREAM`` (TCP) socket, so a UDP socket is
    ``fastnet.socket(fastnet.AF_INET, fastnet.SOCK_DGRAM)``; with
    ``fileno=``, the family, type and protocol not given are read from the
    file descriptor. ``backend`` chooses the engine for this socket
    (``"cython"`` or ``"python"``); the default is ``fastnet.backend``.
    ``gro=True`` turns on UDP receive offload (see :meth:`enable_gro`).

    The batch methods check the socket's real kind, read from the kernel
    (``SO_TYPE``, ``SO_DOMAIN``), not the arguments given for ``fileno=``:
    ``recv_batch``/``send_batch`` need a ``SOCK_DGRAM`` socket,
    ``recv_frames``/``send_frames`` a ``SOCK_STREAM`` one.
    """

    __module__ = "fastnet"  # it is exported, and documented, as fastnet.socket

    # The fields the engine's lanes read and write on every batch call, as
    # slots: the lanes reach a slot through its descriptor, found once
    # (src/_fields.pxi, _Field), without the attribute lookup. The
    # instance dict stays for every other attribute.
    __slots__ = ("_users", "_closing", "_drained", "_ancillary", "__dict__")

    if TYPE_CHECKING:
        _closed: bool  # socket.socket's own flag; typeshed lists it only in __slots__

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None, *, backend=None, gro=False):
        name, self._engine = _engine_for(backend)
        self._backend = name
        super().__init__(family, type, proto, fileno)
        # The family and type as plain ints, read once: socket.socket's
        # properties build an enum on every access, four times a batch call.
        # Read from the kernel, so a fileno= given with the wrong family or
        # type (which socket.socket takes on trust) is still checked right.
        self._af, self._kind = self._real_kind()
        self._lock = threading.Lock()
        self._users = 0
        self._closing = False
        self._waker = None
        self._ancillary = False
        # (address, sockaddr) of the last numeric address resolved; any tuple shape
        self._last_address: tuple[Any, Any] = (None, None)
        self._drained = False  # the last recv_batch took fewer than it had room for
        # What the engine keeps between calls (whether UDP_GRO is on, its
        # receive area for super-datagrams with the rows carried over, an
        # error kept for the next call, the MSG_CTRUNC count): its own
        # object, handed to every engine call (fastnet/engines/contract.py).
        self._engine_state = self._engine.SocketState(super().fileno(), self._af, self._kind, super().proto)
        # UDP GSO/GRO: a lock so one call at a time uses the GRO area, and
        # the smallest GSO segment size the kernel refused on this socket
        # (0: GSO refused outright).
        self._gro_lock = threading.Lock()
        self._gso_refused_from = _gso.NEVER_REFUSED
        # send_batch's common case in one engine call, or None where the
        # engine has no SendLane (src/_send_lane.pxi).
        self._send_lane = _send_lane_for(self)
        # recv_batch's common case in one engine call, waits included, or
        # None where the engine has no RecvLane (src/_recv_lane.pxi).
        self._recv_lane = _recv_lane_for(self)
        if fileno is not None and self._kind == _stdsocket.SOCK_DGRAM:
            try:  # an inherited fd may have GRO on already
                self._engine_state.gro = bool(super().getsockopt(C.SOL_UDP, C.UDP_GRO))
            except OSError:
                pass
            try:  # ... and timestamps or drop counts: both engines read them only then
                self._ancillary = any(self.getsockopt(level, option) for level, option in C.ANCILLARY_OPTIONS)
            except OSError:
                pass
        if gro:
            try:
                self.enable_gro(True)
            except BaseException:
                self.close()
                raise

    def _real_kind(self):
        """``(family, type)`` of the fd as the kernel has them, as ints."""
        try:
            return (
                super().getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_DOMAIN),
                super().getsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_TYPE),
            )
        except OSError:  # not a socket (socket.socket accepts any fd when all is given)
            return int(super().family), int(super().type)

    def detach(self) -> int:
        self._engine_state.close()
        return super().detach()

    # -- identity -----------------------------------------------------------
    @property
    def backend(self) -> str:
        """Name of the engine this socket uses."""
        return self._backend

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closing or self._closed

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", backend={self._backend!r}>"

    def dup(self):
        """A new fastnet socket on a duplicate of the fd: same backend, timeout and framing."""
        fd = os.dup(self.fileno())
        try:
            sock = self.__class__(self.family, self.type, self.proto, fileno=fd, backend=self._backend)
        except BaseException:
            os.close(fd)
            raise
        sock.settimeout(self.gettimeout())
        sock._framing = self._framing
        return sock

    # -- closing ------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._closing = True
            if self._users:
                # A batch call in another thread is using the fd: wake it;
                # the last user to leave closes for real.
                if self._waker is not None:
                    self._waker.wake()
                return
        self._close_now()

    def _close_now(self) -> None:
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.close()
        self._engine_state.close()  # lets go of the fd, which is closed once, below
        super().close()

    def _enter(self, batch=None, method: str = "") -> None:
        """Register a user of the fd; with ``batch``, also take that Batch (Batch._claim).

        The Cython engine's lanes (src/_socket_use.pxi, used by
        src/_send_lane.pxi and src/_recv_lane.pxi) do the same, with the
        same locks and fields, for send_batch's and recv_batch's common
        case: a change here is a change there.
        """
        # acquire/release rather than ``with``: half the cost, on every batch call.
        lock = self._lock
        lock.acquire()
        try:
            if self._closing or self._closed or super().fileno() < 0:
                raise closed_error()
            self._users += 1
        finally:
            lock.release()
        if batch is not None:
            try:
                batch._claim(method)
            except BaseException:
                self._leave()
                raise

    def _leave(self, batch=None) -> None:
        if batch is not None:
            batch._release()
        lock = self._lock
        lock.acquire()
        try:
            self._users -= 1
            last = self._closing and self._users == 0
        finally:
            lock.release()
        if last:
            self._close_now()

    # -- options that change what the engines must parse ---------------------
    def setsockopt(self, level, optname, value, optlen=None):
        if optlen is None:
            super().setsockopt(level, optname, value)
        else:
            super().setsockopt(level, optname, value, optlen)
        if (level, optname) in C.ANCILLARY_OPTIONS:
            self._ancillary = any(self.getsockopt(lvl, opt) for lvl, opt in C.ANCILLARY_OPTIONS)
        if (level, optname) == (C.SOL_UDP, C.UDP_GRO):
            self._engine_state.gro = bool(self.getsockopt(C.SOL_UDP, C.UDP_GRO))

    @property
    def control_truncated(self) -> int:
        """Datagrams received whose control data the kernel cut for lack of room (MSG_CTRUNC).

        fastnet sizes its control areas for every message it reads, so this
        stays 0 unless options it does not read fill the room. A GRO buffer
        whose segment size may be what was cut comes out as one row flagged
        in ``batch.truncated``, never split by a guess.
        """
        return self._engine_state.control_truncated

    def enable_timestamps(self, enabled: bool = True) -> None:
        """Have the kernel stamp each datagram's arrival (``SO_TIMESTAMPNS``).

        Batches then carry it in ``timestamps`` (ns since the epoch).
        """
        self.setsockopt(_stdsocket.SOL_SOCKET, C.SO_TIMESTAMPNS, int(bool(enabled)))

    def enable_gro(self, enabled: bool = True) -> None:
        """Turn UDP receive offload (``UDP_GRO``) on or off.

        udp(7): "If enabled, the socket may receive multiple datagrams worth
        of data as a single large buffer, together with a cmsg(3) that holds
        the segment size." ``recv_batch`` splits such buffers back into one
        row per datagram, so batches hold exactly the datagrams sent. Raises
        OSError (ENOPROTOOPT) where the kernel lacks UDP_GRO (before 5.0).

        Turn it off only with nothing queued: the kernel hands buffers
        already coalesced to a socket without GRO as one datagram.
        """
        self.setsockopt(C.SOL_UDP, C.UDP_GRO, int(bool(enabled)))

    def set_buffers(self, rcvbuf=None, sndbuf=None):
        """Set buffer sizes (FORCE options where permitted); return ``(rcvbuf, sndbuf)``.

        The values returned are what the kernel reports (twice the request when
        granted in full, see socket(7)); a capped request warns with
        ``fastnet.BufferSizeWarning`` naming the sysctl to raise.
        """
        if self._closing or self._closed:
            raise closed_error()
        return _buffers.set_buffers(self, rcvbuf, sndbuf)

    # -- argument checks, made before any system call ------------------------
    def _check_batch(self, batch, method: str, kind=_stdsocket.SOCK_DGRAM, match_family: bool = True) -> None:
        """``batch`` is a Batch, unreshaped, for a ``kind`` socket (and of its family)."""
        if not isinstance(batch, Batch):
            raise TypeError(f"{method} needs a fastnet.Batch, not {type(batch).__name__}")
        batch._check_layout()
        if self._kind != kind:
            raise io.UnsupportedOperation(
                f"{method} needs a {kind.name} socket, this one is {_name(_stdsocket.SocketKind, self._kind)}"
            )
        if match_family and batch._family != self._af:
            raise ValueError(
                f"batch is for {batch.family.name} but the socket is "
                f"{_name(_stdsocket.AddressFamily, self._af)}"
            )

    def _deadline(self, timeout):
        """None to block, 0.0 for non-blocking, else a time.monotonic() deadline."""
        if timeout is None:
            timeout = self.gettimeout()
            if timeout is None:
                return None
        elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
        if math.isnan(timeout) or timeout < 0:
            raise ValueError("Timeout value out of range")
        if math.isinf(timeout):
            return None
        if timeout == 0:
            return 0.0
        return time.monotonic() + timeout

    def _resolve(self, address):
        """A numeric sockaddr tuple for ``address``, as sendto would use it."""
        cached_for, resolved = self._last_address
        if address == cached_for and cached_for is not None:
            return resolved
        check_host_port(address)
        if self._af == _stdsocket.AF_INET and len(address) != 2:
            raise TypeError(f"AF_INET address must be (host, port), not {address!r}")
        host, port = address[0], address[1]
        if "\x00" in host:  # getaddrinfo would silently resolve the part before it
            raise TypeError("host name must not contain null character")  # as sendto says
        infos = _stdsocket.getaddrinfo(host, port, self._af, _stdsocket.SOCK_DGRAM)
        resolved = infos[0][4]
        if self._af == _stdsocket.AF_INET6:
            # typeshed gives the sockaddr of every family; AF_INET6's has four items.
            resolved = cast("tuple[str, int, int, int]", resolved)
            flowinfo = address[2] if len(address) > 2 else resolved[2]
            scope_id = address[3] if len(address) > 3 else resolved[3]
            for name, value, limit in (("flowinfo", flowinfo, 2**20), ("scope_id", scope_id, 2**32)):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"{name} must be an int, not {type(value).__name__}")
                if not 0 <= value < limit:
                    raise ValueError(f"{name} must be 0-{limit - 1}, got {value}")
            resolved = (resolved[0], resolved[1], flowinfo, scope_id)
        if resolved[0] == host:  # numeric: the answer cannot change
            self._last_address = (address, resolved)
        return resolved

    # -- waiting ------------------------------------------------------------
    def _make_waker(self) -> Waker:
        """The socket's Waker, made on first use.

        Made under the lock, so that two threads never make one each: a wait
        on a waker that close() does not know of would sleep through the close.
        """
        with self._lock:
            if self._waker is None:
                self._waker = Waker()
            return self._waker

    def _wait(self, events: int, deadline) -> None:
        """Block until the socket has ``events``, the deadline passes, or close()."""
        if deadline == 0.0:
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        # Read without the lock: the caller is a user of the fd (_enter), and
        # close() leaves the waker in place while there are users.
        waker = self._waker or self._make_waker()
        fd = super().fileno()
        # Poll objects are made once and kept, on the waker they watch:
        # making one and registering the two fds cost more than the poll
        # itself, on every wake-up of a receiver that keeps up. dict.pop
        # takes one out atomically (GIL), so a second thread waiting on this
        # socket at the same time makes its own: one poll object cannot be
        # polled by two threads at once.
        key = (events, fd)
        poller = waker.pollers.pop(key, None)
        if poller is None:
            poller = select.poll()
            poller.register(fd, events)
            poller.register(waker.fd, _POLLIN)
        try:
            while True:
                if self._closing:
                    raise closed_error()
                if deadline is None:
                    ms = -1
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("timed out")
                    ms = max(1, math.ceil(remaining * 1000))
                # poll() releases the GIL; a signal interrupts it and runs the
                # Python handler, so Ctrl-C raises KeyboardInterrupt here.
                for ready_fd, _ in poller.poll(ms):
                    if ready_fd == fd and not self._closing:
                        return
        finally:
            waker.pollers[key] = poller

    # -- batches ------------------------------------------------------------
    def recv_batch(self, batch: Batch, timeout=None) -> int:
        """Receive into ``batch``; return the number of datagrams (also ``batch.count``).

        Blocks until at least one datagram is queued (``timeout`` seconds,
        default the socket's own timeout), then takes every datagram already
        queued, up to ``batch.capacity``, without waiting for more. Raises
        ``TimeoutError`` if none arrived in time, ``BlockingIOError`` on a
        non-blocking socket with nothing queued. A datagram longer than
        ``batch.slot_size`` is cut to the slot and flagged in
        ``batch.truncated``.

        With GRO on (:meth:`enable_gro`), each coalesced buffer is split
        into one row per datagram; datagrams that do not fit in the batch
        are kept on the socket and returned first by the next call.
        """
        lane = self._recv_lane
        if lane is not None:
            n = lane.recv(self, batch, timeout)
            if n >= 0:
                return n
        return self._recv_batch(batch, timeout)

    def _recv_batch(self, batch: Batch, timeout) -> int:
        """recv_batch's general path: every check, the waits in Python.

        The Cython engine's RecvLane (src/_recv_lane.pxi) runs the same steps
        in C for the common case, with the same fields: a change here is a
        change there.
        """
        self._check_batch(batch, "recv_batch")
        deadline = self._deadline(timeout)
        self._enter(batch, "recv_batch")
        try:
            batch._count = 0
            state = self._engine_state
            error = state.take_error()
            if error is not None:
                raise error
            engine_recv = self._engine.recv_batch
            if self._drained and deadline != 0.0 and not state.carried:
                # The last call emptied the queue: wait before reading rather
                # than make a read that would almost surely find nothing. With
                # GRO too: rows carried over in the area (only after a call
                # that filled its batch) are returned without waiting.
                self._wait(_POLLIN, deadline)
            while True:
                # The path is chosen here, once: the engines take the GRO path
                # only when told to, so a call that chose the plain one never
                # touches the area, and every call in the area holds the lock.
                if state.gro_path:
                    with self._gro_lock:  # one call at a time in the socket's GRO area
                        n = engine_recv(state, batch, self._ancillary, True)
                else:
                    n = engine_recv(state, batch, self._ancillary, False)
                if n:
                    batch._count = n
                    self._drained = n < batch._capacity
                    return n
                self._wait(_POLLIN, deadline)
        finally:
            self._leave(batch)

    def send_batch(self, batch: Batch, address=None, *, gso=None) -> int:
        """Send rows ``0..batch.count-1`` as separate datagrams; return how many went out.

        ``address`` is required unless the socket is connected. Uses as few
        system calls as the platform allows (sendmmsg on Linux). A blocking
        socket sends every row (within its timeout). A non-blocking socket
        returns the number sent before the kernel's buffer filled, and raises
        ``BlockingIOError`` only if it could send none.

        If an error stops the batch part way, the ``OSError`` (or
        ``TimeoutError``) raised carries ``exc.sent``: the number of rows
        that did go out before it. Rows ``exc.sent`` onwards were not sent.

        ``gso`` chooses UDP segmentation offload: rows of equal length (the
        last may be shorter) go out as super-buffers of up to 64 datagrams,
        one per message, which the kernel cuts into the same datagrams.
        ``None`` (default) uses it when the kernel has it and the rows allow
        it; ``True`` raises ValueError if the rows do not allow it; ``False``
        never uses it. If the kernel refuses GSO on this socket, the rows go
        out plain instead and the socket remembers. Counts are always rows.
        """
        lane = self._send_lane
        if lane is not None:
            sent = lane.send(self, batch, address, gso)
            if sent >= 0:
                return sent
        return self._send_batch(batch, address, gso, 0)

    def _send_batch(self, batch: Batch, address, gso, start: int) -> int:
        """send_batch's general path: every check, then rows ``start`` onwards (rows before it went out)."""
        self._check_batch(batch, "send_batch")
        count = batch._count
        # The plan proposed from row 0; the engine checks every row against
        # it before any system call. Off it, the full check and plan.
        plan = _gso.proposed(self, batch, count, gso)
        checked = plan is None
        segment, per_buffer = self._checked_plan(batch, count, gso) if plan is None else plan
        resolved = None if address is None else self._resolve(address)
        deadline = self._deadline(None)
        if not count:
            return 0
        self._enter(batch, "send_batch")
        total = start
        try:
            engine_send = self._engine.send_batch
            state = self._engine_state
            while total < count:
                off_plan = False
                try:
                    if segment:
                        sent = engine_send(state, batch, total, count, resolved, segment, per_buffer)
                    else:
                        sent = engine_send(state, batch, total, count, resolved)
                except OSError as exc:
                    if segment and _gso.refused(self, exc, segment):
                        # Nothing of the refused super-buffer went out: send
                        # the rest plain (the socket remembers the refusal).
                        segment = per_buffer = 0
                        total += getattr(exc, "sent", 0)
                        continue
                    with_sent(exc, total + getattr(exc, "sent", 0))
                    raise
                except ValueError as exc:  # rows off the plan: the engines check before sending
                    if checked or total:  # lengths changed meanwhile
                        with_sent(exc, total + getattr(exc, "sent", 0))
                        raise
                    off_plan = True
                if off_plan:
                    # Nothing went out: check the rows and plan from all of
                    # them, raising what the checks say about bad lengths.
                    checked = True
                    segment, per_buffer = self._checked_plan(batch, count, gso)
                    continue
                total += sent
                if total < count and sent == 0:
                    if deadline == 0.0 and total:
                        return total
                    try:
                        self._wait(_POLLOUT, deadline)
                    except OSError as exc:
                        with_sent(exc, total)
                        raise
            return total
        finally:
            self._leave(batch)

    def _checked_plan(self, batch, count: int, gso):
        """The GSO plan from all of rows ``0..count-1``; ValueError for lengths outside the slot."""
        shortest = longest = 0
        if count:
            lengths = batch._lengths[:count]
            shortest, longest = int(lengths.min()), int(lengths.max())
            if shortest < 0 or longest > batch._slot_size:
                raise ValueError(
                    f"batch.lengths[:{count}] must be between 0 and slot_size ({batch._slot_size})"
                )
        return _gso.plan(self, batch, count, gso, shortest, longest)


def _lane_class(sock, name: str):
    """The engine's lane class ``name`` for ``sock`` (a datagram socket of IPv4 or IPv6), or None."""
    if sock._kind != _stdsocket.SOCK_DGRAM or sock._af not in _gso.MAX_PAYLOAD:
        return None
    return getattr(sock._engine, name, None)


def _send_lane_for(sock):
    """The engine's SendLane for ``sock``, or None."""
    lane = _lane_class(sock, "SendLane")
    if lane is None:
        return None
    return lane(
        sock._engine_state,
        sock._lock,
        Batch,
        _CLAIMS,
        _gso.MAX_PAYLOAD[sock._af],
        _gso.MAX_SEGMENTS,
        supported,
        _gso.refused,
        with_sent,
    )


def _recv_lane_for(sock):
    """The engine's RecvLane for ``sock``, or None."""
    lane = _lane_class(sock, "RecvLane")
    if lane is None:
        return None
    return lane(sock._engine_state, sock._lock, sock._gro_lock, Batch, _CLAIMS, closed_error)


def socketpair(family=None, type=_stdsocket.SOCK_STREAM, proto=0, *, backend=None):
    """A pair of connected fastnet sockets, as ``socket.socketpair``.

    ``family`` defaults to ``AF_UNIX``; ``type`` to ``SOCK_STREAM``. Both
    sockets use ``backend`` (default ``fastnet.backend``). A ``SOCK_DGRAM``
    pair of ``AF_UNIX`` sockets has datagrams, but the batch methods need an
    ``AF_INET``/``AF_INET6`` socket.
    """
    _engine_for(backend)  # an unknown backend is refused before any socket is made
    if family is None:
        family = _stdsocket.AF_UNIX
    a, b = _socket.socketpair(family, type, proto)
    try:
        first = socket(family, type, proto, a.fileno(), backend=backend)
    except BaseException:
        a.close()
        b.close()
        raise
    a.detach()
    try:
        second = socket(family, type, proto, b.fileno(), backend=backend)
    except BaseException:
        first.close()
        b.close()
        raise
    b.detach()
    return first, second


def fromfd(fd, family, type, proto=0, *, backend=None):
    """A fastnet socket on a duplicate of file descriptor ``fd``, as ``socket.fromfd``.

    ``fd`` stays open and is still the caller's to close.
    """
    _engine_for(backend)
    nfd = _socket.dup(fd)
    try:
        return socket(family, type, proto, nfd, backend=backend)
    except BaseException:
        os.close(nfd)
        raise
