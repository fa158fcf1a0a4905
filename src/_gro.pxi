# UDP GRO receive for the Cython engine; included by _cengine.pyx.
#
# udp(7), UDP_GRO: "If enabled, the socket may receive multiple datagrams
# worth of data as a single large buffer, together with a cmsg(3) that holds
# the segment size." That buffer (up to 64 KiB) is larger than a row can be
# assumed to be, and recvmmsg would cut it to the row, losing the datagrams
# past the cut. So super-datagrams are received whole into a per-socket area
# of 64 KiB buffers, then split into rows with memcpy. What does not fit in
# the batch stays in the area (the carry-over) and goes first into the next
# batch. Same contract and results as fastnet/engines/python/offload.py.
#
# The direct path: once the kernel has reported a segment size equal to the
# batch's slot_size (a receiver sized to its sender's datagrams), segments
# are received straight into the rows, which lie back to back in the Batch,
# with no copy: one recvmsg whose first iovec is the free rows and whose
# second is a 64 KiB overflow buffer. A super-datagram longer than the free
# rows runs on into the overflow buffer, which becomes the carry-over. The
# copy through the area cost a fifth of the receiver's CPU at 8 KiB.

cdef enum:
    GRO_MESSAGES = 32     # super-datagrams per recvmmsg: 2 MiB of area per socket
    GRO_BUFFER = 65536    # more than the largest UDP payload (65535 - 8)
    # Control bytes per super-datagram. The segment size must never be cut:
    # without it a super-datagram cannot be split. udp_recvmsg puts the
    # SOL_SOCKET messages first (__sock_recv_cmsgs: SO_TIMESTAMP or
    # SO_TIMESTAMPNS 32 bytes, never both, socket(7): "the two modes are
    # mutually exclusive"; SO_TIMESTAMPING's three timespecs 64, its PKTINFO
    # 32; then 24 each for the drop counter, mark, priority and wifi
    # status), then UDP_GRO (24): 248 bytes at most on 64-bit. Only the IP
    # and IPv6 messages the user asked for (packet info, TTL, options,
    # extension headers) come after it; the rest of the room is theirs. What
    # still does not fit is cut (MSG_CTRUNC) and counted, and never the
    # segment size. fastnet/engines/python/ancillary.py GRO_ANCILLARY_SPACE is the same.
    GRO_CONTROL_SPACE = 1024


cdef inline void _count_path(Py_ssize_t *counter) noexcept nogil:
    fastnet_count(counter)   # a no-op unless built with FASTNET_GRO_COUNTERS


cdef struct _Rows:
    # Raw views of a Batch's arrays, taken once per call.
    uint8_t *data
    Py_ssize_t slot
    Py_ssize_t capacity
    int64_t *lengths
    uint8_t *addresses
    Py_ssize_t address_size
    uint16_t *ports
    uint32_t *flowinfo
    uint32_t *scope_ids
    int64_t *timestamps
    uint8_t *truncated
    int family


cdef class _GroArea:
    """Super-datagrams received whole, and how far they are split into rows.

    Kept in the socket's engine state (``SocketState.gro_area``). Messages ``next..received-1``
    are not yet fully in rows; ``offset`` bytes of message ``next`` are.
    The headers point into this object's own memory, so they are prepared
    once; only what the kernel writes back is reset after each use.
    """
    cdef unsigned char *buffers
    cdef unsigned char *control
    cdef mmsghdr *msgs
    cdef iovec *iov
    cdef sockaddr_in6 *names
    cdef Py_ssize_t *segment
    cdef int64_t *stamp
    cdef bint *cut
    cdef Py_ssize_t received
    cdef Py_ssize_t next
    cdef Py_ssize_t offset
    # Messages received with MSG_CTRUNC, not yet added to the socket's count.
    cdef Py_ssize_t control_cut
    # Set while a call uses the area; the caller's lock makes that one call
    # at a time, this makes sure of it (two splitting at once would corrupt
    # next and offset).
    cdef bint busy
    # How often each receive path ran (see path_counts); only counted in a
    # build with FASTNET_GRO_COUNTERS.
    cdef Py_ssize_t paths[5]
    # The direct path: its one message, and the segment size it is used for
    # (0 while the kernel has not reported one equal to the slot size).
    cdef mmsghdr direct
    cdef iovec direct_iov[2]
    cdef Py_ssize_t direct_segment

    def __cinit__(self):
        cdef Py_ssize_t j
        cdef msghdr *hdr
        self.buffers = <unsigned char *>malloc(GRO_MESSAGES * <size_t>GRO_BUFFER)
        self.control = <unsigned char *>malloc(GRO_MESSAGES * GRO_CONTROL_SPACE)
        self.msgs = <mmsghdr *>malloc(GRO_MESSAGES * sizeof(mmsghdr))
        self.iov = <iovec *>malloc(GRO_MESSAGES * sizeof(iovec))
        self.names = <sockaddr_in6 *>malloc(GRO_MESSAGES * sizeof(sockaddr_in6))
        self.segment = <Py_ssize_t *>malloc(GRO_MESSAGES * sizeof(Py_ssize_t))
        self.stamp = <int64_t *>malloc(GRO_MESSAGES * sizeof(int64_t))
        self.cut = <bint *>malloc(GRO_MESSAGES * sizeof(bint))
        if not (self.buffers and self.control and self.msgs and self.iov and self.names
                and self.segment and self.stamp and self.cut):
            raise MemoryError()
        memset(self.msgs, 0, GRO_MESSAGES * sizeof(mmsghdr))
        for j in range(GRO_MESSAGES):
            self.iov[j].iov_base = self.buffers + j * <size_t>GRO_BUFFER
            self.iov[j].iov_len = GRO_BUFFER
            hdr = &self.msgs[j].msg_hdr
            hdr.msg_name = &self.names[j]
            hdr.msg_namelen = sizeof(sockaddr_in6)
            hdr.msg_iov = &self.iov[j]
            hdr.msg_iovlen = 1
            hdr.msg_control = self.control + j * GRO_CONTROL_SPACE
            hdr.msg_controllen = GRO_CONTROL_SPACE
        self.received = self.next = self.offset = 0
        self.control_cut = 0
        self.busy = False
        memset(self.paths, 0, sizeof(self.paths))
        memset(&self.direct, 0, sizeof(mmsghdr))
        self.direct_segment = 0

    @property
    def direct_segment_size(self):
        """The segment size the direct path is on for (0: off); read by the tests."""
        return self.direct_segment

    @property
    def path_counts(self):
        """Receives by path, or None in a build without FASTNET_GRO_COUNTERS; for the tests.

        ``batched``: a recvmmsg into the area; the direct path's branches:
        ``direct`` (segments straight into the rows), ``direct_plain`` (a
        datagram not coalesced), ``direct_changed`` (another segment size,
        gathered from the rows alone) and ``direct_changed_overflow`` (from
        the rows and the overflow buffer).
        """
        if not FASTNET_GRO_COUNTERS:
            return None
        return {"batched": self.paths[0], "direct": self.paths[1],
                "direct_plain": self.paths[2], "direct_changed": self.paths[3],
                "direct_changed_overflow": self.paths[4]}

    def __dealloc__(self):
        free(self.buffers)
        free(self.control)
        free(self.msgs)
        free(self.iov)
        free(self.names)
        free(self.segment)
        free(self.stamp)
        free(self.cut)

    cdef bint pending(self) noexcept nogil:
        return self.next < self.received

    cdef void read_control(self, msghdr *hdr, Py_ssize_t j) noexcept nogil:
        """Segment size, timestamp and cut flag of message ``hdr`` into slot ``j``."""
        _read_control(hdr, &self.stamp[j], &self.segment[j])
        # Never expected: the buffer outsizes any UDP payload.
        self.cut[j] = (hdr.msg_flags & MSG_TRUNC) != 0
        if hdr.msg_flags & MSG_CTRUNC:
            self.control_cut += 1
            if self.segment[j] == 0:
                # The segment size may be what was cut: the rows cannot be
                # told apart, so the buffer is one row, flagged, not a guess.
                self.cut[j] = True
        hdr.msg_namelen = sizeof(sockaddr_in6)
        hdr.msg_controllen = GRO_CONTROL_SPACE
        hdr.msg_flags = 0

    cdef void parse(self, Py_ssize_t got, Py_ssize_t slot) noexcept nogil:
        """Read the ``got`` messages just received; choose the direct path if it fits."""
        cdef Py_ssize_t j
        for j in range(got):
            self.read_control(&self.msgs[j].msg_hdr, j)
        self.received = got
        self.next = 0
        self.offset = 0
        if got and self.segment[got - 1] == slot:
            self.direct_segment = slot

    cdef int recv_direct(self, int fd, _Rows *rows, Py_ssize_t n, Py_ssize_t *after,
                         int *err) noexcept nogil:
        """Receive one message straight into rows n..; set ``*after`` to the new row count.

        Returns the recvmmsg result (1, 0, or -1 with ``*err``). Only called
        with nothing carried over (the overflow buffer, message 0's, is free).
        """
        cdef Py_ssize_t free_rows = rows.capacity - n
        cdef Py_ssize_t room = free_rows * rows.slot
        cdef Py_ssize_t length, segment, whole, i, piece
        cdef msghdr *hdr = &self.direct.msg_hdr
        cdef int got, late = 0
        self.direct_iov[0].iov_base = rows.data + n * rows.slot
        self.direct_iov[0].iov_len = <size_t>room
        self.direct_iov[1].iov_base = self.buffers
        self.direct_iov[1].iov_len = GRO_BUFFER
        hdr.msg_name = &self.names[0]
        hdr.msg_namelen = sizeof(sockaddr_in6)
        hdr.msg_iov = self.direct_iov
        hdr.msg_iovlen = 2
        hdr.msg_control = self.control
        hdr.msg_controllen = GRO_CONTROL_SPACE
        hdr.msg_flags = 0
        got = fastnet_recvmmsg(fd, &self.direct, 1, MSG_DONTWAIT, &late)
        after[0] = n
        if got <= 0:
            err[0] = errno if got < 0 else 0
            return got
        length = self.direct.msg_len
        self.read_control(hdr, 0)
        segment = self.segment[0]
        if segment == 0:
            # One datagram, not coalesced (or one that cannot be split, then
            # flagged): its first bytes are in row n; a longer one ran on
            # into the next rows, which are still free.
            _count_path(&self.paths[2])
            self._meta(rows, n, 0)
            rows.lengths[n] = min(length, rows.slot)
            rows.truncated[n] = length > rows.slot or self.cut[0]
            after[0] = n + 1
            self.direct_segment = 0   # plain traffic: the batched path suits it
            return 1
        if segment != rows.slot:
            # The sender changed its segment size: gather the message into
            # buffer 1 and split it from there, as the batched path does.
            # The kernel never returns more than a UDP payload; should it,
            # the gather stays inside buffer 1 and the rest counts as cut.
            if length > GRO_BUFFER:
                length = GRO_BUFFER
                self.cut[0] = True
            memcpy(self.buffers + GRO_BUFFER, rows.data + n * rows.slot, min(length, room))
            if length > room:
                _count_path(&self.paths[4])
                memcpy(self.buffers + GRO_BUFFER + room, self.buffers, length - room)
            else:
                _count_path(&self.paths[3])
            self._carry(1, length, segment)
            self.direct_segment = 0
            after[0] = self.split(rows, n)
            return 1
        # Segments sit in rows n.. exactly; the rest is in the overflow buffer.
        _count_path(&self.paths[1])
        whole = min((length + segment - 1) // segment, free_rows)
        for i in range(whole):
            piece = min(segment, length - i * segment)
            self._meta(rows, n + i, 0)
            rows.lengths[n + i] = piece
            rows.truncated[n + i] = 0
        if length > room:
            self._carry(0, length - room, segment)
        after[0] = n + whole
        return 1

    cdef void _carry(self, Py_ssize_t j, Py_ssize_t length, Py_ssize_t segment) noexcept nogil:
        """Make message ``j`` (``length`` bytes in buffer ``j``) the one carried over."""
        if j != 0:
            self.names[j] = self.names[0]
            self.stamp[j] = self.stamp[0]
            self.cut[j] = self.cut[0]
        self.msgs[j].msg_len = <unsigned int>length
        self.segment[j] = segment
        self.received = j + 1
        self.next = j
        self.offset = 0

    cdef void _meta(self, _Rows *rows, Py_ssize_t n, Py_ssize_t j) noexcept nogil:
        """Source address, port and timestamp of message ``j`` into row ``n``."""
        cdef sockaddr_in *sin
        cdef sockaddr_in6 *sin6
        if rows.family == AF_INET:
            sin = <sockaddr_in *>&self.names[j]
            memcpy(rows.addresses + n * 4, &sin.sin_addr, 4)
            rows.ports[n] = ntohs(sin.sin_port)
            rows.flowinfo[n] = 0
            rows.scope_ids[n] = 0
        else:
            sin6 = &self.names[j]
            memcpy(rows.addresses + n * 16, &sin6.sin6_addr, 16)
            rows.ports[n] = ntohs(sin6.sin6_port)
            rows.flowinfo[n] = ntohl(sin6.sin6_flowinfo)
            rows.scope_ids[n] = sin6.sin6_scope_id
        rows.timestamps[n] = self.stamp[j]

    cdef Py_ssize_t split(self, _Rows *rows, Py_ssize_t n) noexcept nogil:
        """Copy datagrams from the area into rows n.. until either runs out; return the new n."""
        cdef Py_ssize_t j, length, segment, piece, keep
        cdef unsigned char *source
        while n < rows.capacity and self.next < self.received:
            j = self.next
            length = self.msgs[j].msg_len
            if length > GRO_BUFFER:   # never from the kernel: stay inside buffer j
                length = GRO_BUFFER
            if not (0 <= self.offset < length or self.offset == 0):
                # Never reached by the code above: a message already used up
                # (an empty one is a row while its offset is 0). Drop it
                # rather than compute a negative size from it.
                self.next += 1
                self.offset = 0
                continue
            # Without the cmsg the message is one datagram (maybe empty).
            segment = self.segment[j] if self.segment[j] > 0 else length
            source = self.buffers + j * <size_t>GRO_BUFFER
            while True:
                piece = min(segment, length - self.offset)
                keep = min(piece, rows.slot)
                memcpy(rows.data + n * rows.slot, source + self.offset, <size_t>keep)
                rows.lengths[n] = keep
                rows.truncated[n] = piece > rows.slot
                self._meta(rows, n, j)
                n += 1
                self.offset += piece
                if self.offset >= length:
                    if self.cut[j]:
                        rows.truncated[n - 1] = 1
                    self.next += 1
                    self.offset = 0
                    break
                if n == rows.capacity:
                    break
        return n

    # -- for the tests and the fuzz target (tests/fuzz/fuzz_gro.py) ------------

    def _load_for_test(self, Py_ssize_t j, const unsigned char[::1] payload,
                       const unsigned char[::1] control, int msg_flags, Py_ssize_t offset=0):
        """Make message ``j`` as if recvmmsg had just written these bytes, then parse it.

        ``control`` is the raw cmsghdr chain (what the kernel wrote, as
        msg_controllen says); ``offset`` starts the split part way, as a
        carry-over does (any value: the split must stay safe). The source
        address is left as it was (zeros).
        """
        if not 0 <= j < GRO_MESSAGES:
            raise ValueError(f"message {j} out of 0..{GRO_MESSAGES - 1}")
        if payload.shape[0] > GRO_BUFFER or control.shape[0] > GRO_CONTROL_SPACE:
            raise ValueError("payload or control larger than the area holds")
        cdef msghdr *hdr = &self.msgs[j].msg_hdr
        if payload.shape[0]:
            memcpy(self.buffers + j * <size_t>GRO_BUFFER, &payload[0], payload.shape[0])
        if control.shape[0]:
            memcpy(hdr.msg_control, &control[0], control.shape[0])
        hdr.msg_controllen = <size_t>control.shape[0]
        hdr.msg_flags = msg_flags
        self.msgs[j].msg_len = <unsigned int>payload.shape[0]
        self.read_control(hdr, j)
        self.received = j + 1
        self.next = j
        self.offset = offset
        return self.segment[j], self.stamp[j], bool(self.cut[j])

    def _split_for_test(self, object batch):
        """Split what the area holds into ``batch``'s rows from row 0; return the row count."""
        cdef _Rows rows
        _rows_of(batch, &rows)
        return self.split(&rows, 0)

    def _pending_for_test(self):
        return self.pending()


cdef int _rows_of(object batch, _Rows *rows) except -1:
    """Raw pointers into the Batch's arrays.

    They stay valid while the caller holds the Batch: it keeps the same
    arrays for its life and numpy never moves them (fastnet/core/batch.py).
    """
    cdef uint8_t[:, ::1] data = batch._data
    cdef int64_t[::1] lengths = batch._lengths
    cdef uint8_t[:, ::1] addresses = batch._addresses
    cdef uint16_t[::1] ports = batch._ports
    cdef uint32_t[::1] flowinfo = batch._flowinfo
    cdef uint32_t[::1] scope_ids = batch._scope_ids
    cdef int64_t[::1] timestamps = batch._timestamps
    cdef uint8_t[::1] truncated = batch._truncated_u8
    rows.data = &data[0, 0]
    rows.slot = batch._slot_size
    rows.capacity = batch._capacity
    rows.lengths = &lengths[0]
    rows.addresses = &addresses[0, 0]
    rows.ports = &ports[0]
    rows.flowinfo = &flowinfo[0]
    rows.scope_ids = &scope_ids[0]
    rows.timestamps = &timestamps[0]
    rows.truncated = &truncated[0]
    rows.family = batch._family
    return 0


cdef object _recv_gro(SocketState st, object batch):
    """Rows carried over first, then super-datagrams split into rows, up to capacity.

    Returns the number of rows (0 if nothing was queued or carried). Once
    UDP_GRO is off (``st.gro`` false) the area is dropped when it holds
    nothing more.
    """
    cdef _GroArea area = st.gro_area
    if area is None:
        area = _GroArea()
        st.gro_area = area
    if area.busy:
        raise RuntimeError("the socket's GRO area is in use by another call (recv_batch "
                           "must hold the socket's GRO lock)")
    area.busy = True
    try:
        return _recv_gro_into(st, batch, area)
    finally:
        area.busy = False
        st.control_truncated += area.control_cut
        area.control_cut = 0
        if not st.gro and not area.pending():
            st.gro_area = None


cdef Py_ssize_t _recv_gro_into(SocketState st, object batch, _GroArea area) except -1:
    cdef int fd = st.fd
    cdef _Rows rows
    _rows_of(batch, &rows)

    cdef Py_ssize_t n = area.split(&rows, 0)
    cdef bint queue_empty = False
    cdef unsigned int want
    cdef int got, err = 0, late = 0
    cdef Py_ssize_t after
    cdef bint direct
    while n < rows.capacity and not queue_empty:
        direct = area.direct_segment == rows.slot and not area.pending()
        if direct:
            with nogil:
                got = area.recv_direct(fd, &rows, n, &after, &err)
        else:
            # Each message gives at least one row: never ask for more than fit.
            want = <unsigned int>min(<Py_ssize_t>GRO_MESSAGES, rows.capacity - n)
            _count_path(&area.paths[0])
            with nogil:
                got = fastnet_recvmmsg(fd, area.msgs, want, MSG_DONTWAIT, &late)
                if got < 0:
                    err = errno
        if got < 0:
            if _receive_failed(st, err, n):
                break
            continue
        if direct:
            n = after
            continue
        area.parse(got, rows.slot)
        if late:
            st._error = _os_error(late)
            queue_empty = True
        if <unsigned int>got < want:
            queue_empty = True
        n = area.split(&rows, n)
    return n
