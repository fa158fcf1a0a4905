# The Receiver's capture loop for the Cython engine; included by _cengine.pyx.
#
# One ring of rows (a Batch of ring_size x batch_size rows, allocated once by
# fastnet/receive/receiver.py) is filled by a capture thread that runs this
# loop without the GIL, and emptied by the consumer's get(). Same contract as
# fastnet/receive/capture_loop.py, the pure-Python engine's loop.
#
# Cursors count rows since the start (64-bit, never wrap in practice); row k
# lives at index (k - base) % rows. Invariant: freed <= taken <= produced <=
# freed + rows. Whenever the ring is empty and the consumer holds nothing
# (freed == produced), the capture may move base to produced, so the next row
# goes to index 0: at low rates the same first rows are used again and again,
# and only as much of the ring's memory is touched as the backlog needs.
#   produced: rows the capture has filled and published;
#   taken:    rows handed to the consumer (the last hand-over is rows
#             held..taken-1, still the consumer's until its next take);
#   freed:    rows given back (the capture may write rows freed..freed+rows-1).
# The capture writes only rows produced..freed+rows-1, so rows below
# produced stay as written until the consumer frees them: that is what lets
# the consumer (seq tracking, recording) read them with no lock held.
#
# The mutex guards the cursors and the flags; the capture holds it only to
# publish rows after each receive and to wait for room; the consumer to take
# and to wait. Counters (and the produced and taken cursors) have one writer
# each, which stores them atomically, and are read by rx.stats with atomic
# loads and no lock: a snapshot never holds the capture up.

from libc.stdint cimport int64_t, uint64_t

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    ctypedef struct pthread_condattr_t:
        pass
    ctypedef struct pthread_mutexattr_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)
    int pthread_condattr_init(pthread_condattr_t *attr)
    int pthread_condattr_destroy(pthread_condattr_t *attr)
    int pthread_condattr_setclock(pthread_condattr_t *attr, int clock_id)
    int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *attr)
    int pthread_cond_destroy(pthread_cond_t *c)
    int pthread_cond_signal(pthread_cond_t *c)
    int pthread_cond_broadcast(pthread_cond_t *c)
    int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const timespec *abstime)

cdef extern from "<time.h>" nogil:
    int CLOCK_MONOTONIC
    int clock_gettime(int clock_id, timespec *tp)

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    short POLLIN, POLLERR, POLLHUP, POLLNVAL
    int poll(pollfd *fds, unsigned long nfds, int timeout)

cdef extern from *:
    """
    /* One writer (the capture), readers in other threads: relaxed atomics
       make each counter read whole, with no lock. */
    static inline unsigned long long fastnet_load(const unsigned long long *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
    }
    static inline void fastnet_add(unsigned long long *p, unsigned long long v) {
        __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
    }
    static inline void fastnet_store(unsigned long long *p, unsigned long long v) {
        __atomic_store_n(p, v, __ATOMIC_RELAXED);
    }
    """
    unsigned long long fastnet_load(const unsigned long long *p) nogil
    void fastnet_add(unsigned long long *p, unsigned long long v) nogil
    void fastnet_store(unsigned long long *p, unsigned long long v) nogil

cdef extern from "<errno.h>" nogil:
    int EBADF

cdef enum:
    # How long the capture waits in one poll or one wait for room before it
    # looks at the stop flag again; get() waits in slices no longer than this
    # too, so Ctrl-C and stop() are seen within about 0.1 s.
    SLICE_MS = 100
    # run() results besides an errno.
    CLOSED_BY_WAKER = -1

cdef enum:  # indexes of CaptureRing.counters
    PACKETS = 0
    BYTES = 1
    RECEIVES = 2        # receive calls that put rows in the ring ("batches")
    TRUNCATED = 3
    OVERRUNS = 4
    OVERRUN_RECEIVES = 5
    UNREAD = 6
    CONTROL_CUT = 7
    N_COUNTERS = 8


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


cdef inline void _deadline_after(int64_t ns, timespec *out) noexcept nogil:
    cdef int64_t at = _now_ns() + ns
    out.tv_sec = at // 1000000000
    out.tv_nsec = at % 1000000000


cdef inline int64_t _wait_ns(double wait) noexcept:
    """``wait`` seconds in ns, at most an hour (NaN and negatives: 0), never overflowing."""
    if not wait > 0:
        return 0
    return <int64_t>(min(wait, 3600.0) * 1e9)


cdef inline int _poll_timeout(int64_t due, int64_t now) noexcept nogil:
    """The capture's poll timeout in ms: until ``due`` if that is ahead, else a slice.

    poll(2): "The timeout argument specifies the number of milliseconds that
    poll() should block"; rounded up, so the poll does not end before the
    rows are due and come round again with a timeout of 0.
    """
    cdef int64_t left = due - now
    if due == 0 or left <= 0 or left >= <int64_t>SLICE_MS * 1000000:
        return SLICE_MS
    return <int>((left + 999999) // 1000000)


cdef void _sub_rows(_Rows *whole, Py_ssize_t start, Py_ssize_t count, _Rows *out) noexcept nogil:
    """Rows start..start+count-1 of ``whole`` as a _Rows of their own (contiguous)."""
    out.data = whole.data + start * whole.slot
    out.slot = whole.slot
    out.capacity = count
    out.lengths = whole.lengths + start
    out.addresses = whole.addresses + start * whole.address_size
    out.address_size = whole.address_size
    out.ports = whole.ports + start
    out.flowinfo = whole.flowinfo + start
    out.scope_ids = whole.scope_ids + start
    out.timestamps = whole.timestamps + start
    out.truncated = whole.truncated + start
    out.family = whole.family


cdef class CaptureRing:
    """The ring of rows and the GIL-free capture loop over it (see the top of this file).

    ``ring`` is the Batch whose rows are the ring; ``scratch`` a Batch of at
    least ``batch_size`` rows that datagrams are read into and discarded
    (``on_full="drop"`` when the ring is full, and counting what is left at
    stop). ``max_delay_ns``: how long a partly filled hand-over may wait for
    more rows. The Receiver keeps both Batches alive for the ring's life.
    """
    cdef object _ring
    cdef object _scratch
    cdef _Rows rows
    cdef _Rows scratch_rows
    cdef Py_ssize_t nrows
    cdef Py_ssize_t batch
    cdef bint drop
    cdef int64_t max_delay_ns
    # Receive headers for one call (batch_size messages), re-pointed at the
    # rows each call reads into.
    cdef mmsghdr *msgs
    cdef iovec *iov
    cdef sockaddr_in6 *names
    cdef unsigned char *control
    cdef _GroArea area
    # When each row was published (monotonic ns): max_delay is measured
    # from the oldest row not yet handed over.
    cdef int64_t *ready_ns
    cdef pthread_mutex_t lock
    cdef pthread_cond_t has_rows     # the consumer waits on it
    cdef pthread_cond_t has_room     # the capture waits on it (on_full="block")
    cdef bint sync_ready
    cdef unsigned long long produced, taken, freed, held, base
    # Consumers blocked on has_rows (lock held to change it), and how many
    # times they were woken: a wake-up counts them all out, so a consumer
    # that finds wakes unchanged after its wait counts itself out (_wait).
    cdef unsigned long long consumer_waiting, wakes
    cdef bint stop_requested, finished, consumer_closed
    cdef unsigned long long counters[N_COUNTERS]
    cdef bint running

    def __cinit__(self, object ring, object scratch, Py_ssize_t batch_size, bint drop,
                  int64_t max_delay_ns):
        cdef pthread_condattr_t attr
        cdef Py_ssize_t j
        cdef msghdr *hdr
        self.sync_ready = False
        self.msgs = NULL
        self.iov = NULL
        self.names = NULL
        self.control = NULL
        self.ready_ns = NULL
        # The loop finds row i at i * slot_size bytes from the start of data:
        # a reshaped array would send it past the end (Batch._check_layout).
        try:
            ring._check_layout()
            scratch._check_layout()
        except AttributeError:
            raise TypeError("ring and scratch must be fastnet.Batch objects") from None
        if not (0 < batch_size <= ring._capacity and batch_size <= scratch._capacity):
            raise ValueError("batch_size must be 1 to the ring's and the scratch's rows")
        if ring._family != scratch._family:
            raise ValueError("the ring and the scratch must be of one address family")
        if max_delay_ns < 0:
            raise ValueError("max_delay_ns must be 0 or more")
        self._ring = ring
        self._scratch = scratch
        _rows_of(ring, &self.rows)
        _rows_of(scratch, &self.scratch_rows)
        self.rows.address_size = 4 if self.rows.family == AF_INET else 16
        self.scratch_rows.address_size = self.rows.address_size
        self.nrows = ring._capacity
        self.batch = batch_size
        self.drop = drop
        self.max_delay_ns = max_delay_ns
        self.msgs = <mmsghdr *>malloc(batch_size * sizeof(mmsghdr))
        self.iov = <iovec *>malloc(batch_size * sizeof(iovec))
        self.names = <sockaddr_in6 *>malloc(batch_size * sizeof(sockaddr_in6))
        self.control = <unsigned char *>malloc(batch_size * CONTROL_SPACE)
        self.ready_ns = <int64_t *>malloc(self.nrows * sizeof(int64_t))
        if not (self.msgs and self.iov and self.names and self.control and self.ready_ns):
            raise MemoryError()
        memset(self.msgs, 0, batch_size * sizeof(mmsghdr))
        for j in range(batch_size):
            hdr = &self.msgs[j].msg_hdr
            hdr.msg_name = &self.names[j]
            hdr.msg_namelen = sizeof(sockaddr_in6)
            hdr.msg_iov = &self.iov[j]
            hdr.msg_iovlen = 1
            hdr.msg_control = self.control + j * CONTROL_SPACE
            hdr.msg_controllen = CONTROL_SPACE
        self.produced = self.taken = self.freed = self.held = self.base = 0
        self.consumer_waiting = self.wakes = 0
        self.stop_requested = self.finished = self.consumer_closed = False
        self.running = False
        memset(self.counters, 0, sizeof(self.counters))
        pthread_mutex_init(&self.lock, NULL)
        # pthread_condattr_setclock(3p): "The default value of the clock
        # attribute shall refer to the system clock", which can be set back
        # and forth; waits are measured on the monotonic clock instead.
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&self.has_rows, &attr)
        pthread_cond_init(&self.has_room, &attr)
        pthread_condattr_destroy(&attr)
        self.sync_ready = True

    def __dealloc__(self):
        if self.sync_ready:
            pthread_cond_destroy(&self.has_rows)
            pthread_cond_destroy(&self.has_room)
            pthread_mutex_destroy(&self.lock)
        free(self.msgs)
        free(self.iov)
        free(self.names)
        free(self.control)
        free(self.ready_ns)

    # -- the capture thread ------------------------------------------------------
    def run(self, SocketState state not None, int waker_fd, Py_ssize_t unread_limit):
        """Capture until request_stop(), an error, or the socket's close; then sweep.

        ``state`` is the engine's state of the socket (its fd, whether GRO is
        on, the MSG_CTRUNC count). The caller has registered as a user of the
        socket's descriptor, so it cannot be closed and reused under this
        loop; ``waker_fd`` becomes readable when the socket is closed. On a
        normal stop, what is still queued goes into free rows without waiting
        for the consumer and the rest is read off and counted as unread (at
        most ``unread_limit`` datagrams). Raises the error that ended the
        capture (OSError EBADF when the socket was closed); the rows published
        before it stay in the ring. Call finish() after it, in any case.
        """
        cdef int fd = state.fd
        cdef bint gro = state.gro_path
        cdef int err = 0
        if fd < 0:
            raise _os_error(EBADF)
        if self.running:
            raise RuntimeError("this ring is already being captured into")
        self.running = True
        if gro and self.area is None:
            self.area = _GroArea()
        try:
            with nogil:
                err = self._loop(fd, waker_fd, gro)
                if err == 0:
                    self._sweep(fd, gro)
                    self._count_unread(fd, gro, unread_limit)
        finally:
            self.running = False
            state.control_truncated += fastnet_load(&self.counters[CONTROL_CUT])
            self.counters[CONTROL_CUT] = 0
        if err == CLOSED_BY_WAKER:
            raise _os_error(EBADF)
        if err:
            raise _os_error(err)

    cdef int _loop(self, int fd, int waker_fd, bint gro) noexcept nogil:
        """The steady state: receive into free rows, publish, repeat. 0 on stop, else an error."""
        cdef pollfd fds[2]
        cdef Py_ssize_t start, room, n
        cdef int err, ready
        cdef timespec until
        cdef int64_t now, due = 0, checked = _now_ns()
        fds[0].fd = fd
        fds[0].events = POLLIN
        fds[1].fd = waker_fd
        fds[1].events = POLLIN
        while True:
            pthread_mutex_lock(&self.lock)
            while True:
                if self.stop_requested:
                    pthread_mutex_unlock(&self.lock)
                    return 0
                room = <Py_ssize_t>(self.freed + self.nrows - self.produced)
                if self.freed == self.produced and self.produced != self.base:
                    fastnet_store(&self.base, self.produced)
                now = _now_ns()
                if self.consumer_waiting:
                    self._wake_if_ready(now)
                # Rows waiting for max_delay: the poll below ends when they
                # are due, and the next round wakes the consumer.
                due = self._next_due(now)
                if room > 0 or self.drop:
                    break
                # on_full="block": stop reading; the socket's queue takes the
                # burst, and what does not fit the kernel drops and counts.
                _deadline_after(SLICE_MS * 1000000, &until)
                pthread_cond_timedwait(&self.has_room, &self.lock, &until)
            pthread_mutex_unlock(&self.lock)
            err = 0
            if room > 0:
                start = self._index(self.produced)
                n = min(min(room, self.batch), self.nrows - start)
                n = self._receive(fd, gro, &self.rows, start, n, &err)
                if n > 0:
                    self._publish(n)
            else:
                n = self._receive(fd, gro, &self.scratch_rows, 0, self.batch, &err)
                if n > 0:
                    # on_full="drop": read on and discard, tail drop as the
                    # kernel does; counted, never silent.
                    fastnet_add(&self.counters[OVERRUNS], n)
                    fastnet_add(&self.counters[OVERRUN_RECEIVES], 1)
            if err:
                return err
            if n > 0:
                # While datagrams keep coming the loop never polls; look at
                # the waker now and then so that a close is still seen.
                now = _now_ns()
                if waker_fd >= 0 and now - checked > SLICE_MS * 1000000:
                    checked = now
                    fds[1].revents = 0
                    if poll(&fds[1], 1, 0) > 0 and fds[1].revents:
                        return CLOSED_BY_WAKER
                continue
            # Nothing queued: wait for a datagram, the socket's close, or the
            # slice to pass (then the stop flag is looked at again).
            fds[0].revents = 0
            fds[1].revents = 0
            ready = poll(fds, 2 if waker_fd >= 0 else 1, _poll_timeout(due, _now_ns()))
            if ready < 0:
                if errno == EINTR:
                    continue
                return errno
            if waker_fd >= 0 and fds[1].revents:
                return CLOSED_BY_WAKER
            # poll(2): POLLNVAL "Invalid request: fd not open"; the receive
            # that follows meets POLLERR's error itself.
            if fds[0].revents & POLLNVAL:
                return EBADF

    cdef inline Py_ssize_t _index(self, unsigned long long cursor) noexcept nogil:
        return <Py_ssize_t>((cursor - self.base) % <unsigned long long>self.nrows)

    cdef void _publish(self, Py_ssize_t n) noexcept nogil:
        """Make rows produced..produced+n-1 the consumer's to take; count them."""
        cdef Py_ssize_t start = self._index(self.produced)
        cdef Py_ssize_t i
        cdef unsigned long long total = 0, cut = 0
        cdef int64_t now = _now_ns()
        for i in range(start, start + n):
            total += <unsigned long long>self.rows.lengths[i]
            cut += self.rows.truncated[i] != 0
            self.ready_ns[i] = now
        fastnet_add(&self.counters[BYTES], total)
        fastnet_add(&self.counters[TRUNCATED], cut)
        fastnet_add(&self.counters[RECEIVES], 1)
        pthread_mutex_lock(&self.lock)
        fastnet_add(&self.produced, n)   # atomic too: produced_rows reads it without the lock
        fastnet_add(&self.counters[PACKETS], n)
        if self.consumer_waiting:
            self._wake_if_ready(now)
        pthread_mutex_unlock(&self.lock)

    cdef inline int64_t _next_due(self, int64_t now) noexcept nogil:
        """The next time after ``now`` that rows waiting become due by max_delay; 0 if none will (lock held).

        The oldest row's time, when the consumer waits for a partial batch;
        else the newest's: after a hand-over of a full batch, or of the rows
        up to the ring's end, what is left is younger than the oldest but
        never than the newest, and the consumer may wait for it next.
        """
        cdef int64_t due
        if self.produced == self.taken:
            return 0
        due = self.ready_ns[self._index(self.taken)] + self.max_delay_ns
        if due > now:
            return due
        due = self.ready_ns[self._index(self.produced - 1)] + self.max_delay_ns
        return due if due > now else 0

    cdef void _wake_if_ready(self, int64_t now) noexcept nogil:
        """Wake the waiting consumer if a hand-over is ready: a full batch, or rows due (lock held).

        One wake-up per hand-over: the consumer is not woken at the first row
        of a partial batch (it would find it not due and sleep again), only
        once the batch is full or its oldest row has waited max_delay. If
        nothing more arrives by then, the capture's poll ends at that time
        (_poll_timeout) and the loop calls this again. Ready means what the
        consumer's own test says (_ready), so the two sides cannot disagree.
        """
        if self._ready(now) != 0:
            self._wake_consumers()

    cdef inline void _wake_consumers(self) noexcept nogil:
        """Broadcast has_rows and count its waiters out, so it is sent once per wait (lock held)."""
        pthread_cond_broadcast(&self.has_rows)
        self.consumer_waiting = 0
        self.wakes += 1

    cdef Py_ssize_t _receive(self, int fd, bint gro, _Rows *whole, Py_ssize_t start,
                             Py_ssize_t count, int *err) noexcept nogil:
        """Receive up to ``count`` datagrams into rows start.. of ``whole``, without waiting.

        Returns the rows filled (0: nothing queued). ``*err`` is set to an
        error that ended the call; rows filled before it are returned with it.
        """
        cdef _Rows rows
        _sub_rows(whole, start, count, &rows)
        if gro:
            return self._receive_gro(fd, &rows, err)
        return self._receive_plain(fd, &rows, err)

    cdef Py_ssize_t _receive_plain(self, int fd, _Rows *rows, int *err) noexcept nogil:
        cdef Py_ssize_t i, n = rows.capacity
        cdef int got, late = 0
        cdef msghdr *hdr
        cdef sockaddr_in *sin
        cdef sockaddr_in6 *sin6
        for i in range(n):
            self.iov[i].iov_base = rows.data + i * rows.slot
            self.iov[i].iov_len = <size_t>rows.slot
        while True:
            got = fastnet_recvmmsg(fd, self.msgs, <unsigned int>n, MSG_DONTWAIT, &late)
            if got >= 0:
                break
            if errno == EINTR:
                continue
            if errno != EAGAIN and errno != EWOULDBLOCK:
                err[0] = errno
            return 0
        for i in range(got):
            hdr = &self.msgs[i].msg_hdr
            rows.lengths[i] = min(<Py_ssize_t>self.msgs[i].msg_len, rows.slot)
            rows.truncated[i] = (hdr.msg_flags & MSG_TRUNC) != 0
            if rows.family == AF_INET:
                sin = <sockaddr_in *>hdr.msg_name
                memcpy(rows.addresses + i * 4, &sin.sin_addr, 4)
                rows.ports[i] = ntohs(sin.sin_port)
                rows.flowinfo[i] = 0
                rows.scope_ids[i] = 0
            else:
                sin6 = <sockaddr_in6 *>hdr.msg_name
                memcpy(rows.addresses + i * 16, &sin6.sin6_addr, 16)
                rows.ports[i] = ntohs(sin6.sin6_port)
                rows.flowinfo[i] = ntohl(sin6.sin6_flowinfo)
                rows.scope_ids[i] = sin6.sin6_scope_id
            # Control data is read always: with no option that makes some,
            # the kernel writes none (msg_controllen 0) and the stamp is 0,
            # and record() may turn timestamps on while capture runs.
            rows.timestamps[i] = _timestamp_of(hdr)
            if hdr.msg_flags & MSG_CTRUNC:
                fastnet_add(&self.counters[CONTROL_CUT], 1)
            hdr.msg_namelen = sizeof(sockaddr_in6)
            hdr.msg_controllen = CONTROL_SPACE
            hdr.msg_flags = 0
        if late:
            err[0] = late
        return got

    cdef Py_ssize_t _receive_gro(self, int fd, _Rows *rows, int *err) noexcept nogil:
        """_recv_gro_into (src/_gro.pxi) without the GIL, into these rows, with this ring's self.area."""
        cdef Py_ssize_t n = 0
        cdef int e = EINTR
        while e == EINTR:   # a native thread: the signal handlers are the main thread's
            n = self.area.receive(fd, rows, n, &e)
        if e:
            err[0] = e
        fastnet_add(&self.counters[CONTROL_CUT], <unsigned long long>self.area.control_cut)
        self.area.control_cut = 0
        return n

    cdef void _sweep(self, int fd, bint gro) noexcept nogil:
        """At stop: move what is queued into the free rows, without waiting for the consumer."""
        cdef Py_ssize_t start, room, n
        cdef int err = 0
        cdef Py_ssize_t rounds
        # Bounded, even if the consumer keeps freeing rows meanwhile.
        for rounds in range(self.nrows // self.batch + 2):
            pthread_mutex_lock(&self.lock)
            room = <Py_ssize_t>(self.freed + self.nrows - self.produced)
            pthread_mutex_unlock(&self.lock)
            if room <= 0:
                return
            start = self._index(self.produced)
            n = self._receive(fd, gro, &self.rows, start,
                              min(min(room, self.batch), self.nrows - start), &err)
            if n > 0:
                self._publish(n)
            if n == 0 or err:
                return

    cdef void _count_unread(self, int fd, bint gro, Py_ssize_t limit) noexcept nogil:
        """At stop: read off and count what is still queued, and rows the GRO area still holds."""
        cdef Py_ssize_t total = 0, n
        cdef int err = 0
        while total < limit:
            n = self._receive(fd, gro, &self.scratch_rows, 0, self.batch, &err)
            total += n
            if n == 0 or err:
                break
        if gro and self.area is not None:
            # Carried over and never to be put in a row: counted, not lost.
            while self.area.pending():
                total += self.area.split(&self.scratch_rows, 0)
        fastnet_add(&self.counters[UNREAD], total)

    def request_stop(self):
        """Have the capture stop within about 0.1 s (any thread)."""
        with nogil:
            pthread_mutex_lock(&self.lock)
            self.stop_requested = True
            pthread_cond_broadcast(&self.has_room)
            self._wake_consumers()
            pthread_mutex_unlock(&self.lock)

    def finish(self):
        """The capture is over (after run(), or without it): take() ends once the ring is empty."""
        with nogil:
            pthread_mutex_lock(&self.lock)
            self.stop_requested = True
            self.finished = True
            self._wake_consumers()
            pthread_mutex_unlock(&self.lock)

    def close_consumer(self):
        """No more hand-overs: take() returns -1 from now on (rows left are counted in_ring)."""
        with nogil:
            pthread_mutex_lock(&self.lock)
            self.consumer_closed = True
            self.stop_requested = True
            self._wake_consumers()
            pthread_cond_broadcast(&self.has_room)
            pthread_mutex_unlock(&self.lock)

    # -- the consumer -----------------------------------------------------------
    cdef Py_ssize_t _ready(self, int64_t now) noexcept nogil:
        """Rows to hand over now (lock held): -1 if the capture is over and the ring empty.

        0 also while rows are waiting, but fewer than a batch and the oldest
        not for max_delay yet.
        """
        cdef unsigned long long waiting = self.produced - self.taken
        cdef Py_ssize_t start = self._index(self.taken)
        cdef int64_t due
        if self.consumer_closed:
            return -1
        if waiting == 0:
            return -1 if self.finished else 0
        if waiting < <unsigned long long>self.batch and not self.finished and not self.stop_requested:
            due = self.ready_ns[start] + self.max_delay_ns
            if now < due:
                return 0
        return min(min(<Py_ssize_t>waiting, self.batch), self.nrows - start)

    cdef Py_ssize_t _wait(self, int64_t wait_ns, bint take, bint flush,
                          Py_ssize_t *start, unsigned long long *cursor) noexcept nogil:
        """Wait up to ``wait_ns`` for a hand-over (lock not held); with ``take``, make it.

        ``flush``: when the wait ends, hand over whatever rows are waiting,
        even fewer than a batch and younger than max_delay.
        """
        cdef int64_t now = _now_ns()
        cdef int64_t end = now + wait_ns
        cdef Py_ssize_t n
        cdef unsigned long long wakes
        cdef timespec until
        pthread_mutex_lock(&self.lock)
        if take:
            # The rows handed over last are the consumer's no more.
            self.freed = self.taken
            self.held = self.taken
            pthread_cond_broadcast(&self.has_room)
        until.tv_sec = end // 1000000000
        until.tv_nsec = end % 1000000000
        while True:
            # A ready hand-over is taken without waiting. Otherwise the wait
            # is for the capture's one wake-up (_wake_if_ready: a full batch,
            # or rows due by max_delay) or for the caller's own timeout, with
            # no max_delay deadline here: waking at it as well would be a
            # second wake-up for the same hand-over.
            n = self._ready(now)
            if n != 0 or now >= end:
                break
            self.consumer_waiting += 1
            wakes = self.wakes
            # Spurious wake-ups are allowed (pthread_cond_wait(3p)): the loop
            # looks at the cursors again each time.
            pthread_cond_timedwait(&self.has_rows, &self.lock, &until)
            if self.wakes == wakes:   # timed out, or woken spuriously: still counted in
                self.consumer_waiting -= 1
            now = _now_ns()
        start[0] = self._index(self.taken)
        cursor[0] = self.taken
        if n == 0 and flush and self.produced > self.taken:
            n = min(min(<Py_ssize_t>(self.produced - self.taken), self.batch), self.nrows - start[0])
        if take and n > 0:
            fastnet_add(&self.taken, n)
        pthread_mutex_unlock(&self.lock)
        return n

    def take(self, double wait, bint flush=False):
        """Free the last hand-over, then wait up to ``wait`` s for the next: ``(start, n, cursor)``.

        ``n`` rows from ring row ``start`` (contiguous, at most batch_size),
        the first of them row ``cursor`` counted since the start;
        ``n`` 0 if none came in time, -1 once the capture is over and every
        row was handed over (or close_consumer() was called). ``flush``: at
        the end of the wait, hand over the rows waiting, however few.
        """
        cdef Py_ssize_t start = 0, n
        cdef unsigned long long cursor = 0
        cdef int64_t ns = _wait_ns(wait)
        with nogil:
            n = self._wait(ns, True, flush, &start, &cursor)
        return start, n, cursor

    def wait_ready(self, double wait):
        """Wait up to ``wait`` s until take() would return rows (or the end) at once; True if so."""
        cdef Py_ssize_t start = 0, n
        cdef unsigned long long cursor = 0
        cdef int64_t ns = _wait_ns(wait)
        with nogil:
            n = self._wait(ns, False, False, &start, &cursor)
        return n != 0

    @property
    def counts(self):
        """Counters and cursors: (packets, bytes, receives, truncated, overruns,
        overrun_receives, unread, delivered), read without blocking the capture."""
        cdef unsigned long long delivered = fastnet_load(&self.taken)
        return (fastnet_load(&self.counters[PACKETS]), fastnet_load(&self.counters[BYTES]),
                fastnet_load(&self.counters[RECEIVES]), fastnet_load(&self.counters[TRUNCATED]),
                fastnet_load(&self.counters[OVERRUNS]),
                fastnet_load(&self.counters[OVERRUN_RECEIVES]),
                fastnet_load(&self.counters[UNREAD]), delivered)

    @property
    def position(self):
        """``(produced, base)``: rows published so far, and the cursor of ring row 0.

        Rows from the consumer's last hand-over up to ``produced`` were all
        written since base last moved (it moves only when the ring is empty).
        """
        return fastnet_load(&self.produced), fastnet_load(&self.base)
