# Included by _cengine.pyx: length-prefixed frames on a stream socket (TCP).
#
# Same contract as fastnet/engines/python/framing.py (see fastnet/engines/_cengine.pyi). The
# Python layer (fastnet/core/stream.py) checks every argument and does all the
# waiting; these loops never block (MSG_DONTWAIT) and hold the GIL except
# around the system call itself.
#
# Receiving: recv(2) into a per-socket buffer in large chunks, then whole
# frames are copied into the Batch's rows; a partial frame stays buffered.
# Sending: one sendmsg(2) per 512 frames with the iovec [prefix, row, prefix,
# row, ...]; if the kernel takes only part, the frame it stopped in counts as
# sent and its rest is copied into the state, written first by the next call.

from libc.stdlib cimport realloc
from libc.string cimport memmove

from _sysstream cimport MSG_NOSIGNAL, recv, send, sendmsg

# At most IOV_MAX (1024 on Linux, the kernel's UIO_MAXIOV) iovec entries per
# call: more fail, sendmsg(2) with EMSGSIZE (writev(2) with EINVAL: "iovcnt
# is ... greater than the permitted maximum"). Two entries per frame.
cdef enum:
    FRAMES_PER_WRITE = 512
    MAX_PREFIX = 8
    RECV_BUFFER = 256 * 1024

# A write to a connection the peer has closed fails with EPIPE instead of
# raising SIGPIPE (send(2): "MSG_NOSIGNAL ... Don't generate a SIGPIPE signal
# if the peer on a stream-oriented socket has closed the connection").
cdef int SEND_FLAGS = MSG_DONTWAIT | MSG_NOSIGNAL


cdef inline unsigned long long _read_prefix(const unsigned char *p, int size,
                                            bint little) noexcept nogil:
    cdef unsigned long long value = 0
    cdef int i
    if little:
        for i in range(size - 1, -1, -1):
            value = (value << 8) | p[i]
    else:
        for i in range(size):
            value = (value << 8) | p[i]
    return value


cdef inline void _write_prefix(unsigned char *p, unsigned long long value, int size,
                               bint little) noexcept nogil:
    cdef int i
    if little:
        for i in range(size):
            p[i] = value & 0xff
            value >>= 8
    else:
        for i in range(size - 1, -1, -1):
            p[i] = value & 0xff
            value >>= 8


cdef class FrameState:
    """Per-socket framing state: receive buffer, the unsent tail of a frame, settings."""
    cdef unsigned char *buf
    cdef Py_ssize_t cap, start, end
    cdef unsigned char *tail
    cdef Py_ssize_t tail_cap, tail_pos, tail_end
    cdef unsigned char prefixes[FRAMES_PER_WRITE * MAX_PREFIX]
    cdef iovec iov[FRAMES_PER_WRITE * 2]
    cdef readonly int prefix_size
    cdef readonly bint little_endian, truncate
    cdef readonly unsigned long long max_frame
    cdef readonly bint eof
    cdef readonly object blocked_length
    cdef public object pending_error, peer
    cdef public bint recv_busy, send_busy

    def __cinit__(self):
        self.buf = NULL
        self.tail = NULL
        self.cap = self.start = self.end = 0
        self.tail_cap = self.tail_pos = self.tail_end = 0
        self.configure(4, False, 16 * 2**20, False)

    def __dealloc__(self):
        free(self.buf)
        free(self.tail)

    def configure(self, int prefix_size, bint little_endian, unsigned long long max_frame,
                  bint truncate):
        """Set the framing; bytes already buffered are parsed with the new one."""
        # The prefix scratch holds MAX_PREFIX bytes per frame: never more.
        if prefix_size not in (2, 4, 8) or max_frame > 2**62:
            raise ValueError("bad framing settings")
        self.prefix_size = prefix_size
        self.little_endian = little_endian
        self.max_frame = max_frame
        self.truncate = truncate

    @property
    def buffered(self):
        """Bytes received but not yet returned as frames."""
        return self.end - self.start

    @property
    def unsent(self):
        """Bytes of a partly written frame still to be written."""
        return self.tail_end - self.tail_pos

    cdef int make_room(self, Py_ssize_t need) except -1:
        """Room for ``need`` bytes from the buffer's start; moves unparsed bytes to the front.

        Called only before any frame of the current call was taken, so the
        bytes it moves were never handed out.
        """
        cdef Py_ssize_t avail = self.end - self.start
        cdef Py_ssize_t size
        cdef unsigned char *grown
        if avail == 0:
            self.start = self.end = 0
        if self.cap < need or self.cap == 0:
            size = self.cap * 2
            if size > <Py_ssize_t>self.max_frame + self.prefix_size:
                size = <Py_ssize_t>self.max_frame + self.prefix_size
            if size < RECV_BUFFER:
                size = RECV_BUFFER
            if size < need:
                size = need
            grown = <unsigned char *>malloc(size)
            if grown == NULL:
                raise MemoryError(f"cannot allocate a {size}-byte frame buffer")
            if avail:
                memcpy(grown, self.buf + self.start, avail)
            free(self.buf)
            self.buf = grown
            self.cap = size
        elif self.start and (self.cap - self.start < need or self.cap - self.end < (self.cap >> 2)):
            memmove(self.buf, self.buf + self.start, avail)
        else:
            return 0
        self.start = 0
        self.end = avail
        return 0

    def peek(self, Py_ssize_t nbytes):
        """The first ``nbytes`` (at most) of the buffered bytes, not consumed."""
        if nbytes > self.end - self.start:
            nbytes = self.end - self.start
        if nbytes <= 0:
            return b""
        return (<char *>self.buf)[self.start:self.start + nbytes]

    cdef int hold_tail(self, const unsigned char *prefix, Py_ssize_t prefix_size,
                       const unsigned char *row, Py_ssize_t length,
                       Py_ssize_t written) except -1:
        """Keep the unwritten rest of a frame of which ``written`` bytes went out.

        ``prefix_size`` is the caller's: the settings may change between calls.
        """
        cdef Py_ssize_t size = prefix_size + length - written
        cdef Py_ssize_t from_prefix = 0
        cdef unsigned char *grown
        if size > self.tail_cap:
            grown = <unsigned char *>realloc(self.tail, size)
            if grown == NULL:
                raise MemoryError(f"cannot allocate {size} bytes for a partly sent frame")
            self.tail = grown
            self.tail_cap = size
        if written < prefix_size:
            from_prefix = prefix_size - written
            memcpy(self.tail, prefix + written, from_prefix)
            memcpy(self.tail + from_prefix, row, length)
        else:
            memcpy(self.tail, row + (written - prefix_size), size)
        self.tail_pos = 0
        self.tail_end = size
        return 0


def recv_frames(SocketState state not None, object batch, FrameState st not None):
    """Copy whole frames already received (reading what is queued) into rows; 0 if none."""
    cdef int fd = state.fd
    cdef Py_ssize_t capacity = batch._capacity
    cdef Py_ssize_t slot = batch._slot_size
    cdef uint8_t[:, ::1] data = batch._data
    cdef int64_t[::1] lengths = batch._lengths
    cdef uint8_t[::1] truncated = batch._truncated_u8
    cdef Py_ssize_t n = 0, avail = 0, need, space, copied
    cdef Py_ssize_t prefix = st.prefix_size
    cdef unsigned long long size
    cdef ssize_t got
    cdef int err = 0
    cdef bint drained = False

    st.blocked_length = None
    while True:
        need = prefix
        while n < capacity:
            avail = st.end - st.start
            if avail < prefix:
                need = prefix
                break
            size = _read_prefix(st.buf + st.start, <int>prefix, st.little_endian)
            if size > st.max_frame or (size > <unsigned long long>slot and not st.truncate):
                st.blocked_length = size
                return n
            # size <= max_frame <= 2**62: no overflow.
            need = prefix + <Py_ssize_t>size
            if avail < need:
                break
            copied = <Py_ssize_t>size if size <= <unsigned long long>slot else slot
            memcpy(&data[n, 0], st.buf + st.start + prefix, copied)
            lengths[n] = copied
            truncated[n] = copied != <Py_ssize_t>size
            st.start += need
            n += 1
        if n == capacity or st.eof or drained:
            return n
        if n:
            # Frames are taken: return them rather than move bytes under
            # them, unless a good chunk still fits.
            space = st.cap - st.end
            if space < need - avail or space < (st.cap >> 2):
                return n
        else:
            st.make_room(need)
            space = st.cap - st.end
        with nogil:
            got = recv(fd, st.buf + st.end, <size_t>space, MSG_DONTWAIT)
            if got < 0:
                err = errno
        if got < 0:
            if err == EINTR:
                if n:
                    return n  # hand these out; the interpreter runs the handler next
                PyErr_CheckSignals()
                continue
            if err == EAGAIN or err == EWOULDBLOCK:
                return n
            if n:
                st.pending_error = _os_error(err)  # raised by the next call
                return n
            raise _os_error(err)
        if got == 0:
            # recv(2): "When a stream socket peer has performed an orderly
            # shutdown, the return value will be 0 (the traditional
            # "end-of-file" return)." space is never 0 here.
            st.eof = True
            return n
        st.end += got
        # A short read means the kernel's queue is empty (tcp_recvmsg copies
        # until the queue or the buffer runs out): parse, then stop.
        drained = got < space


def send_frames(SocketState state not None, object batch, Py_ssize_t start, Py_ssize_t stop,
                FrameState st not None):
    """Write rows start..stop-1 as frames without blocking; return how many were taken."""
    if not 0 <= start <= stop <= batch._capacity:
        raise ValueError(f"rows {start}..{stop} out of range for capacity {batch._capacity}")
    cdef int fd = state.fd
    cdef uint8_t[:, ::1] data = batch._data
    cdef int64_t[::1] lengths = batch._lengths
    cdef Py_ssize_t prefix = st.prefix_size
    cdef bint little = st.little_endian
    cdef Py_ssize_t slot = batch._slot_size
    cdef Py_ssize_t i = start, j, k, first, frame
    cdef int64_t length
    cdef ssize_t put
    cdef int err = 0
    cdef msghdr msg

    if st.tail_pos != st.tail_end:  # the caller flushes first; never write past a held tail
        return 0
    memset(&msg, 0, sizeof(msg))
    msg.msg_iov = st.iov
    while i < stop:
        k = stop - i
        if k > FRAMES_PER_WRITE:
            k = FRAMES_PER_WRITE
        for j in range(k):
            # Checked by the caller; checked again because another thread
            # could rewrite lengths meanwhile (its GIL is free during the
            # send), and a row must never be read past its end. Each length
            # is read once; from here on only the iovec's copy of it counts.
            length = lengths[i + j]
            if length < 0 or length > slot:
                exc = ValueError(f"batch.lengths[{i + j}] = {length} changed while "
                                 f"send_frames was running (outside 0..{slot})")
                if i > start:
                    exc.sent = i - start   # the frames of earlier writes went out
                raise exc
            _write_prefix(st.prefixes + j * MAX_PREFIX, <unsigned long long>length,
                          <int>prefix, little)
            st.iov[2 * j].iov_base = st.prefixes + j * MAX_PREFIX
            st.iov[2 * j].iov_len = <size_t>prefix
            st.iov[2 * j + 1].iov_base = &data[i + j, 0]
            st.iov[2 * j + 1].iov_len = <size_t>length
        msg.msg_iovlen = <size_t>(2 * k)
        with nogil:
            put = sendmsg(fd, &msg, SEND_FLAGS)
            if put < 0:
                err = errno
        if put < 0:
            if err == EINTR:
                if i > start:
                    return i - start
                PyErr_CheckSignals()
                continue
            if err == EAGAIN or err == EWOULDBLOCK:
                return i - start
            exc = _os_error(err)
            if i > start:
                exc.sent = i - start
            raise exc
        first = i
        for j in range(k):
            frame = prefix + <Py_ssize_t>st.iov[2 * j + 1].iov_len
            if put < frame:
                break
            put -= frame
            i += 1
        if i < first + k:
            if put:  # stopped inside frame i: keep the rest of it
                j = i - first
                st.hold_tail(st.prefixes + j * MAX_PREFIX, prefix, &data[i, 0],
                             <Py_ssize_t>st.iov[2 * j + 1].iov_len, put)
                i += 1
            return i - start
    return i - start


def flush_unsent(SocketState state not None, FrameState st not None):
    """Write the held rest of a partly sent frame without blocking; return bytes still held."""
    cdef int fd = state.fd
    cdef ssize_t put
    cdef int err = 0
    while st.tail_pos < st.tail_end:
        with nogil:
            put = send(fd, st.tail + st.tail_pos, <size_t>(st.tail_end - st.tail_pos), SEND_FLAGS)
            if put < 0:
                err = errno
        if put < 0:
            if err == EINTR:
                PyErr_CheckSignals()
                continue
            if err == EAGAIN or err == EWOULDBLOCK:
                break
            raise _os_error(err)
        st.tail_pos += put
    if st.tail_pos == st.tail_end:
        st.tail_pos = st.tail_end = 0
    return st.tail_end - st.tail_pos
