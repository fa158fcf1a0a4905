# recv_batch's common case in one engine call, its waits included.
#
# A receiver that keeps up calls recv_batch again and again with one Batch,
# and each call takes what one wake-up brought: at 1024 B under GRO, one
# super-datagram of 63 datagrams. The general path (socket._recv_batch in
# fastnet/core/socket.py) runs its checks, marks and poll(2) wait in Python
# on every call, and that Python was most of the user-space work of such a
# call (bench/README.md, "The receive lane"). RecvLane makes the same
# checks and marks in C, waits in poll(2) without the GIL on the socket and
# its waker (so close() from another thread still ends the wait), and reads
# through the same engine functions as recv_batch().
#
# It decides nothing of its own: whatever is not the common case (another
# type, layout or family of Batch, a timeout that is not a plain number, a
# kept error, a lock held by another thread, a closed socket, a Batch in
# use) it hands to the general path (socket._recv_batch) before touching
# anything, and the general path raises what it always raises. Once it has
# entered, it finishes the call itself, as the general path would: rows
# returned, or the general path's exception (TimeoutError,
# BlockingIOError, OSError(EBADF) on close, the system call's error, or
# what a signal handler raises).
#
# Each read or write of the socket's fields mirrors a line of
# fastnet/core/socket.py, named beside it here; socket._recv_batch says so
# too. The names are listed in fastnet.engines.contract.

from libc.limits cimport INT_MAX
from libc.math cimport INFINITY

# A timeout this long or longer (in seconds; about 285 years) is past what a
# deadline in int64 nanoseconds holds: the general path waits for it.
cdef double MAX_DEADLINE_S = 9.0e9


cdef class RecvLane:
    """recv_batch's common case for one socket (see the comment at the top of src/_recv_lane.pxi)."""

    cdef SocketState state  # the socket's _engine_state
    cdef int family  # the socket's _af
    cdef _SocketUse use  # socket._enter and _leave (src/_socket_use.pxi)
    cdef _BatchFields batch_fields  # the Batch's, through their slots (src/_fields.pxi)
    cdef object gro_acquire, gro_release  # the socket's _gro_lock
    cdef type batch_type  # fastnet.Batch: a subclass takes the general path
    cdef object closed_error  # fastnet.core.closing.closed_error

    def __init__(self, SocketState state not None, object lock, object gro_lock, type batch_type,
                 object claims, object closed_error):
        self.state = state
        self.family = state.family
        self.batch_fields = _BatchFields(batch_type)
        self.use = _SocketUse(state, lock, claims, self.batch_fields)
        self.gro_acquire, self.gro_release = gro_lock.acquire, gro_lock.release
        self.batch_type = batch_type
        self.closed_error = closed_error

    def recv(self, object sock, object batch, object timeout):
        """Rows received (``batch.count``); -1: not taken, nothing done, the caller runs the general path."""
        cdef double seconds
        cdef int64_t deadline = 0  # CLOCK_MONOTONIC ns; with `waits` 1 and deadline 0: no deadline
        cdef int waits = 1  # 0: non-blocking (socket._deadline's 0.0)
        cdef Py_ssize_t n
        cdef SocketState state = self.state
        cdef _Scratch s
        # socket._check_batch: a Batch (exactly), unreshaped, of the socket's
        # family (the lane exists only for SOCK_DGRAM sockets).
        if type(batch) is not self.batch_type:
            return -1
        if <int>self.batch_fields.family.get(batch) != self.family:
            return -1
        # Batch._check_layout's test, as in the send lane; its scratch is the
        # plain receive's.
        s = _scratch_if_kept(batch, self.batch_fields)
        if s is None:
            return -1
        # socket._deadline: None is the socket's timeout; a number (not a
        # bool), neither NaN nor negative; inf blocks, 0 does not wait.
        if timeout is None:
            timeout = sock.gettimeout()
            if timeout is None:
                timeout = INFINITY
        if type(timeout) is not float and type(timeout) is not int:
            return -1
        try:
            seconds = timeout
        except OverflowError:
            return -1
        if not seconds >= 0:  # NaN or negative: the general path's ValueError
            return -1
        if seconds == 0:
            waits = 0
        elif seconds < MAX_DEADLINE_S:
            deadline = _now_ns() + <int64_t>(seconds * 1e9)
        elif seconds != INFINITY:
            return -1  # centuries: past what a deadline in int64 ns holds
        # recv_batch: an error kept by the last call is raised by this one.
        if state._error is not None:
            return -1
        if not self.use.enter(sock, batch, "recv_batch"):
            return -1
        try:
            self.batch_fields.count.set(batch, 0)
            # recv_batch: the last call emptied the queue, so wait before
            # reading; rows carried over in the GRO area are returned at once.
            if self.use.drained.get(sock) and waits and not state._carried():
                self._wait(sock, deadline)
            while True:
                # recv_batch: the path is chosen afresh for each read
                # (state.gro_path); the GRO area is used under the GRO lock.
                if state._gro_path():
                    self.gro_acquire()
                    try:
                        n = _recv_gro(state, s)
                    finally:
                        self.gro_release()
                else:
                    n = _recv_plain_claimed(state, self.use.ancillary.get(sock), s)
                if n:
                    self.batch_fields.count.set(batch, n)
                    self.use.drained.set(sock, n < s.capacity)
                    return n
                if not waits:  # socket._wait with a deadline of 0.0
                    raise _os_error(EAGAIN)
                self._wait(sock, deadline)
        finally:
            self.use.leave(sock, batch)

    cdef int _wait(self, object sock, int64_t deadline) except -1:
        """socket._wait(POLLIN, deadline): until the socket is readable, the deadline (0: none), or close().

        poll(2) on the socket and its waker, without the GIL. "EINTR: A signal
        occurred before any requested event": the signal handlers run here
        (a KeyboardInterrupt propagates), then the wait goes on, as
        select.poll does (PEP 475).
        """
        cdef pollfd fds[2]
        cdef int ready, err = 0, ms = -1
        cdef int64_t remaining
        # socket._wait: the waker read without the lock (this call is a user
        # of the fd, and close() leaves the waker while there are users).
        waker = sock._waker
        if waker is None:
            waker = sock._make_waker()
        fds[0].fd = self.state.fd
        fds[0].events = POLLIN
        fds[1].fd = waker.fd
        fds[1].events = POLLIN
        while True:
            if self.use.closing.get(sock):
                raise self.closed_error()
            if deadline:
                remaining = deadline - _now_ns()
                if remaining <= 0:
                    raise TimeoutError("timed out")
                # poll's int milliseconds, rounded up (socket._wait: at least 1)
                ms = <int>min((remaining + 999999) // 1000000, <int64_t>INT_MAX)
            fds[0].revents = 0
            fds[1].revents = 0
            with nogil:
                ready = poll(fds, 2, ms)
                if ready < 0:
                    err = errno
            if ready < 0:
                if err != EINTR:
                    raise _os_error(err)
                PyErr_CheckSignals()
                continue
            if fds[0].revents and not self.use.closing.get(sock):
                return 0
