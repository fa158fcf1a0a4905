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
# with no copy. One recvmmsg takes up to GRO_MESSAGES super-datagrams: each
# message gets a run of free rows as long as the longest super-datagram seen
# last (its first iovec) and its own 64 KiB area buffer (its second), the
# last message all the free rows left. A super-datagram shorter than its run
# leaves a gap that the next one is moved down over (memmove, rows only), so
# the rows stay in datagram order with none empty between. One longer than
# its run, or of another segment size, ends the direct part of the call: it
# and the messages after it are gathered whole into their area buffers and
# split from there as the batched path does (the carry-over, if the rows run
# out). A sender of fixed-size batches ends each with a shorter one, every
# so many messages: the calls are made to end there, so that the short one is
# last and nothing is moved. Per-call costs (system call, control parsing,
# releasing the GIL) are so shared by a whole recvmmsg of super-datagrams, as
# a C receiver's are.
# The one-message direct path this replaces made one system call per 64 KiB
# (bench/README.md has the profile and the figures).

from libc.string cimport memmove

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
    # The direct path: its messages (names and control shared with msgs:
    # it runs only while nothing is carried over), two iovecs each, the
    # segment size it is used for (0 while the kernel has not reported one
    # equal to the slot size) and the rows each message is given.
    cdef mmsghdr direct[GRO_MESSAGES]
    cdef iovec direct_iov[2 * GRO_MESSAGES]
    cdef Py_ssize_t direct_segment
    cdef Py_ssize_t direct_run
    # A sender that sends batches of a fixed size ends each with a shorter
    # super-datagram, every short_every messages; the direct path ends its
    # calls there, so that the short one is last and nothing after it is
    # moved. since_short: messages since the last short one.
    cdef Py_ssize_t short_every
    cdef Py_ssize_t since_short

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
        memset(self.direct, 0, sizeof(self.direct))
        for j in range(GRO_MESSAGES):
            hdr = &self.direct[j].msg_hdr
            hdr.msg_name = &self.names[j]
            hdr.msg_namelen = sizeof(sockaddr_in6)
            hdr.msg_iov = &self.direct_iov[2 * j]
            hdr.msg_iovlen = 2
            hdr.msg_control = self.control + j * GRO_CONTROL_SPACE
            hdr.msg_controllen = GRO_CONTROL_SPACE
            self.direct_iov[2 * j + 1].iov_base = self.buffers + j * <size_t>GRO_BUFFER
            self.direct_iov[2 * j + 1].iov_len = GRO_BUFFER
        self.direct_segment = 0
        self.direct_run = 1
        self.short_every = self.since_short = 0

    @property
    def direct_segment_size(self):
        """The segment size the direct path is on for (0: off); read by the tests."""
        return self.direct_segment

    @property
    def path_counts(self):
        """Receives by path, or None in a build without FASTNET_GRO_COUNTERS; for the tests.

        ``batched``: a recvmmsg into the area; the direct path's branches,
        once per message: ``direct`` (segments straight into the rows), ``direct_plain`` (a
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
            self.direct_run = self._longest(got, slot)

    cdef Py_ssize_t _longest(self, Py_ssize_t got, Py_ssize_t slot) noexcept nogil:
        """Rows of the longest of the ``got`` messages cut in ``slot``-byte segments (at least 1).

        The direct path gives each message that many rows: the sender's
        super-datagrams then fill their runs, and none is moved.
        """
        cdef Py_ssize_t j, rows, longest = 1
        for j in range(got):
            if self.segment[j] == slot:
                rows = (<Py_ssize_t>self.msgs[j].msg_len + slot - 1) // slot
                if rows > longest:
                    longest = rows
        return longest

    cdef int recv_direct(self, int fd, _Rows *rows, Py_ssize_t n, Py_ssize_t *after,
                         unsigned int *asked, int *err) noexcept nogil:
        """Receive several messages straight into rows n..; set ``*after`` to the new row count.

        Returns the recvmmsg result (the messages received, 0, or -1 with
        ``*err``); ``*err`` is also set to an error met after the first
        message (the late error of fastnet_recvmmsg's fallback loop). A
        result below ``*asked``, the messages asked for, means the queue is empty. Only
        called with nothing carried over (every area buffer is free).
        """
        cdef Py_ssize_t slot = rows.slot
        cdef Py_ssize_t free_rows = rows.capacity - n
        cdef Py_ssize_t run = self.direct_run
        cdef Py_ssize_t count, j, start, span, room, length, whole, longest = 0, sized = 0
        cdef Py_ssize_t w = n, gathered = -1
        cdef msghdr *hdr
        cdef int got, late = 0
        if run < 1:
            run = 1
        count = min(<Py_ssize_t>GRO_MESSAGES, free_rows // run)
        if 0 < self.short_every - self.since_short < count:
            count = self.short_every - self.since_short
        if count < 1:
            count = 1
        for j in range(count):
            span = run if j < count - 1 else free_rows - j * run
            self.direct_iov[2 * j].iov_base = rows.data + (n + j * run) * slot
            self.direct_iov[2 * j].iov_len = <size_t>(span * slot)
        asked[0] = <unsigned int>count
        got = fastnet_recvmmsg(fd, self.direct, <unsigned int>count, MSG_DONTWAIT, &late)
        after[0] = n
        if got <= 0:
            err[0] = errno if got < 0 else 0
            return got
        if late:
            err[0] = late
        for j in range(got):
            hdr = &self.direct[j].msg_hdr
            length = self.direct[j].msg_len
            self.read_control(hdr, j)
            start = n + j * run
            span = run if j < count - 1 else free_rows - j * run
            room = span * slot
            self.since_short += 1   # every message, whatever its kind, counts to the next short one
            if gathered >= 0:
                self._gather(rows, j, start, room, length)
                continue
            if self.segment[j] == 0:
                # One datagram, not coalesced (or one that cannot be split,
                # then flagged): its first bytes are at row start; a longer
                # one ran on through its run, which only it uses.
                _count_path(&self.paths[2])
                if start != w:
                    memmove(rows.data + w * slot, rows.data + start * slot,
                            <size_t>min(length, slot))
                self._fill_rows(rows, w, 1, j, min(length, slot), length > slot or self.cut[j])
                w += 1
                # Plain traffic: the batched path suits it.
                self.direct_segment = 0
                continue
            if self.segment[j] != slot:
                # The sender changed its segment size: this message and the
                # ones after it are split from the area, as the batched path
                # does.
                _count_path(&self.paths[4] if length > room else &self.paths[3])
                self.direct_segment = 0
                gathered = j
                self._gather(rows, j, start, room, length)
                continue
            # Segments of the slot size, from row start on; moved down over
            # the gap an earlier, shorter message left.
            _count_path(&self.paths[1])
            whole = (length + slot - 1) // slot
            longest = max(longest, whole)
            sized += 1
            if length <= room:
                if whole == 0:
                    whole = 1   # never from the kernel: an empty message is one empty row
                if whole < run:
                    self.short_every = self.since_short
                    self.since_short = 0
                if start != w:
                    memmove(rows.data + w * slot, rows.data + start * slot, <size_t>length)
                self._fill_rows(rows, w, whole, j, length - (whole - 1) * slot, self.cut[j])
                w += whole
                continue
            # Longer than its run: the run's rows are placed, the rest (in
            # buffer j) is carried, with the messages after it, to the split.
            if start != w:
                memmove(rows.data + w * slot, rows.data + start * slot, <size_t>room)
            self._fill_rows(rows, w, span, j, slot, False)
            w += span
            length -= room
            if length > GRO_BUFFER:   # never from the kernel: stay inside buffer j
                length = GRO_BUFFER
                self.cut[j] = True
            self.msgs[j].msg_len = <unsigned int>length
            gathered = j
        # The runs grow at once to the longest super-datagram; they shrink
        # only when two or more came and all were shorter, not for the one
        # short buffer that ends a sender's batch.
        if longest > run or (sized >= 2 and 0 < longest < run):
            self.direct_run = longest
        if gathered >= 0:
            self.received = got
            self.next = gathered
            self.offset = 0
            w = self.split(rows, w)
        after[0] = w
        return got

    cdef void _gather(self, _Rows *rows, Py_ssize_t j, Py_ssize_t start, Py_ssize_t room,
                      Py_ssize_t length) noexcept nogil:
        """Make buffer ``j`` hold all of direct message ``j``: its run's bytes, then its overflow.

        Called before any row at or past ``start`` is written again; the
        message is then split from the area like one the batched path got.
        """
        cdef unsigned char *buffer = self.buffers + j * <size_t>GRO_BUFFER
        if length > GRO_BUFFER:
            # Never from the kernel (no UDP payload is that long); should it
            # happen, the gather stays inside buffer j and the rest counts as cut.
            length = GRO_BUFFER
            self.cut[j] = True
        if length > room:
            memmove(buffer + room, buffer, <size_t>(length - room))
        memcpy(buffer, rows.data + start * rows.slot, <size_t>min(length, room))
        self.msgs[j].msg_len = <unsigned int>length

    cdef void _fill_rows(self, _Rows *rows, Py_ssize_t first, Py_ssize_t count, Py_ssize_t j,
                         Py_ssize_t last_length, bint last_cut) noexcept nogil:
        """Rows first..first+count-1 hold segments of message ``j``: its source and time in each,
        a full slot's length in all but the last (``last_length``, ``last_cut``).

        The source and the time are read once per message, not once per row.
        """
        cdef Py_ssize_t i, end = first + count
        cdef uint32_t address4
        cdef uint16_t port
        cdef uint32_t flowinfo = 0, scope_id = 0
        cdef int64_t stamp = self.stamp[j]
        cdef sockaddr_in *sin
        cdef sockaddr_in6 *sin6 = &self.names[j]
        if rows.family == AF_INET:
            sin = <sockaddr_in *>&self.names[j]
            memcpy(&address4, &sin.sin_addr, 4)
            port = ntohs(sin.sin_port)
            for i in range(first, end):
                memcpy(rows.addresses + i * 4, &address4, 4)
        else:
            port = ntohs(sin6.sin6_port)
            flowinfo = ntohl(sin6.sin6_flowinfo)
            scope_id = sin6.sin6_scope_id
            for i in range(first, end):
                memcpy(rows.addresses + i * 16, &sin6.sin6_addr, 16)
        for i in range(first, end):
            rows.ports[i] = port
            rows.flowinfo[i] = flowinfo
            rows.scope_ids[i] = scope_id
            rows.timestamps[i] = stamp
            rows.lengths[i] = rows.slot
            rows.truncated[i] = 0
        rows.lengths[end - 1] = last_length
        rows.truncated[end - 1] = last_cut

    cdef Py_ssize_t receive(self, int fd, _Rows *rows, Py_ssize_t n, int *err) noexcept nogil:
        """Fill rows n.. with the carry-over, then from the socket, without waiting; return the new n.

        Stops when the rows are full, the queue is empty or a call fails.
        ``*err``: 0, or the errno that ended it (EINTR: the caller runs its
        signal handlers and calls again; EAGAIN is never reported), or an
        error met after some messages, for the caller to keep or raise.
        """
        cdef unsigned int want
        cdef int got, late = 0
        cdef Py_ssize_t after
        err[0] = 0
        n = self.split(rows, n)
        while n < rows.capacity:
            if self.direct_segment == rows.slot and not self.pending():
                got = self.recv_direct(fd, rows, n, &after, &want, err)
                if got > 0:
                    n = after
            else:
                # Each message gives at least one row: never ask for more than fit.
                want = <unsigned int>min(<Py_ssize_t>GRO_MESSAGES, rows.capacity - n)
                _count_path(&self.paths[0])
                got = fastnet_recvmmsg(fd, self.msgs, want, MSG_DONTWAIT, &late)
                if got < 0:
                    err[0] = errno
                elif got > 0:
                    self.parse(got, rows.slot)
                    n = self.split(rows, n)
                    if late:
                        err[0] = late
            if got < 0:
                if err[0] == EAGAIN or err[0] == EWOULDBLOCK:
                    err[0] = 0
                break
            if err[0] or <unsigned int>got < want:
                break
        return n

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
        _rows_cached(_scratch_of(batch), &rows)
        return self.split(&rows, 0)

    def _pending_for_test(self):
        return self.pending()


cdef bint _area_carries(object area):
    """The area (SocketState.gro_area) holds rows not yet returned."""
    return (<_GroArea>area).pending()


cdef int _rows_of(object batch, _Rows *rows) except -1:
    """Raw pointers into the Batch's arrays, from typed views made here.

    For a Batch taken once and held, such as the capture ring (a scratch of
    message headers for every row of a large ring would be wasted memory);
    a call made again and again on one Batch takes ``_rows_cached``.
    """
    _point_rows(rows, batch._data, batch._lengths, batch._addresses, batch._ports,
                batch._flowinfo, batch._scope_ids, batch._timestamps, batch._truncated_u8,
                batch._slot_size, batch._capacity, batch._family)
    return 0


cdef int _rows_cached(_Scratch s, _Rows *rows) except -1:
    """Raw pointers into a Batch's arrays, from the views its scratch ``s`` made once.

    Making eight typed views on every call (the buffer protocol and its
    checks for each array) cost more than the rest of a one-buffer GRO
    receive's user-space work (bench/README.md).
    """
    _point_rows(rows, s.data, s.lengths, s.addresses, s.ports, s.flowinfo, s.scope_ids,
                s.timestamps, s.truncated, s.slot_size, s.capacity, s.family)
    return 0


cdef inline void _point_rows(_Rows *rows, uint8_t[:, ::1] data, int64_t[::1] lengths,
                             uint8_t[:, ::1] addresses, uint16_t[::1] ports, uint32_t[::1] flowinfo,
                             uint32_t[::1] scope_ids, int64_t[::1] timestamps,
                             uint8_t[::1] truncated, Py_ssize_t slot, Py_ssize_t capacity,
                             int family) noexcept:
    # They stay valid while the caller holds the Batch: it keeps the same
    # arrays for its life and numpy never moves them (fastnet/core/batch.py).
    rows.data = &data[0, 0]
    rows.slot = slot
    rows.capacity = capacity
    rows.lengths = &lengths[0]
    rows.addresses = &addresses[0, 0]
    rows.ports = &ports[0]
    rows.flowinfo = &flowinfo[0]
    rows.scope_ids = &scope_ids[0]
    rows.timestamps = &timestamps[0]
    rows.truncated = &truncated[0]
    rows.family = family


cdef object _recv_gro(SocketState st, _Scratch s):
    """Rows carried over first, then super-datagrams split into rows, up to capacity.

    The rows are those of the Batch whose scratch is ``s``. Returns the
    number of rows (0 if nothing was queued or carried). Once UDP_GRO is
    off (``st.gro`` false) the area is dropped when it holds nothing more.
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
        return _recv_gro_into(st, s, area)
    finally:
        area.busy = False
        st.control_truncated += area.control_cut
        area.control_cut = 0
        if not st.gro and not area.pending():
            st.gro_area = None


cdef Py_ssize_t _recv_gro_into(SocketState st, _Scratch s, _GroArea area) except -1:
    cdef int fd = st.fd
    cdef int err = 0
    cdef Py_ssize_t n = 0
    cdef _Rows rows
    _rows_cached(s, &rows)
    while True:
        # The GIL is released once for the whole fill, not once per
        # system call: the fill touches only the area and the rows.
        with nogil:
            n = area.receive(fd, &rows, n, &err)
        if err == 0 or _receive_failed(st, err, n):
            return n
