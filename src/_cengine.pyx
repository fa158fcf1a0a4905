# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False
# cython: initializedcheck=False, cdivision=True
"""The Cython engine: recvmmsg/sendmmsg loops over a Batch's numpy arrays.

Same contract as fastnet.engines.python.batches (see fastnet/engines/_cengine.pyi). The Python
layer (fastnet/core/socket.py) has already checked the socket, the batch, the
row lengths and the address, and does all waiting with poll(2); every call
here is non-blocking (MSG_DONTWAIT) and holds the GIL except around the
system call itself. The lanes at the end (_send_lane.pxi, _recv_lane.pxi)
take the socket's common cases whole, each check and the receive's wait
included, and hand every other case back to the socket.
"""

from libc.errno cimport errno
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset, strerror
from cpython.exc cimport PyErr_CheckSignals
from posix.uio cimport iovec
from posix.time cimport timespec, timeval

from _sysnet cimport *

from fastnet import constants as _C
from numpy import ndarray as _ndarray

cdef extern from "fastnet_arrays.h":
    bint fastnet_shape_is(object a, Py_ssize_t rows, Py_ssize_t cols)

cdef extern from "fastnet_rows.h":
    bint fastnet_any_differs(const int64_t *values, Py_ssize_t n, int64_t x) nogil

# The Python layer uses these values without the C headers; check them here,
# where the headers are, so a platform with other numbers fails loudly.
for _name, _value in (("SO_TIMESTAMPNS", SO_TIMESTAMPNS), ("SO_RXQ_OVFL", SO_RXQ_OVFL),
                      ("UDP_SEGMENT", UDP_SEGMENT), ("UDP_GRO", UDP_GRO),
                      ("SOL_UDP", SOL_UDP), ("SO_MEMINFO", SO_MEMINFO)):
    if getattr(_C, _name) != _value:
        raise ImportError(f"fastnet.constants.{_name} is {getattr(_C, _name)}, "
                          f"the C headers say {_value}")

FEATURES = {
    "recvmmsg": bool(FASTNET_HAVE_MMSG),
    "sendmmsg": bool(FASTNET_HAVE_MMSG),
    "gso": True,
    "gro": True,
}

# recvmmsg(2)/sendmmsg(2): "If vlen is greater than UIO_MAXIOV (1024), then
# only UIO_MAXIOV messages are" handled; larger batches go in chunks.
cdef enum:
    MAX_VLEN = 1024

# Per message of a plain receive: a timestamp and two 32-bit values (drop
# counter, GRO size). Only the timestamp is read there, and the kernel puts it
# first (__sock_recv_cmsgs: timestamps, then drops, mark, priority), so other
# messages cut for lack of room (MSG_CTRUNC, counted) never cost it. The GRO
# receive, whose segment size comes after all the SOL_SOCKET messages, has its
# own, larger area (GRO_CONTROL_SPACE in _gro.pxi).
cdef size_t CONTROL_SPACE = (CMSG_SPACE(sizeof(timespec)) + CMSG_SPACE(sizeof(uint32_t))
                             + CMSG_SPACE(sizeof(int)))
# Round each message's control area up so every cmsghdr stays aligned.
CONTROL_SPACE = (CONTROL_SPACE + 15) & ~(<size_t>15)

cdef enum Prepared:
    NOTHING = 0
    FOR_RECV = 1


cdef class _Scratch:
    """Message headers for one Batch, allocated once and kept on it.

    Headers point into the Batch's ``data`` array, which never moves (the
    Batch keeps it for life and exposes it read-only), so headers prepared for
    receiving stay valid between calls; only the fields the kernel writes
    back (name and control lengths, flags) are reset after each use.
    """
    cdef mmsghdr *msgs
    cdef iovec *iov
    cdef sockaddr_in6 *names
    cdef unsigned char *control
    cdef Py_ssize_t capacity
    cdef Prepared prepared
    # Set while a call uses these headers (see _claim): a second call at
    # once would rewrite the headers under the first one's system call.
    # recvmmsg(2) says that "On return from recvmmsg(), successive elements
    # of msgvec are updated", but the kernel reads each header only when it
    # gets to that message (net/socket.c, do_recvmmsg), so a header rewritten
    # meanwhile, by a send pointing it elsewhere, is the one it writes to.
    cdef bint busy
    # send_batch's destination: the headers point at it, so it lives here,
    # never in a stack frame that a header could outlive.
    cdef sockaddr_in6 dest
    # The address tuple s.dest was made from, for which family, and its length.
    cdef object dest_address
    cdef int dest_family
    cdef socklen_t dest_len
    # Typed views of the Batch's arrays, taken once: taking them from the
    # numpy arrays (the buffer protocol and its checks) on every call cost
    # more than the rest of a small receive's work in Python.
    cdef uint8_t[:, ::1] data
    cdef int64_t[::1] lengths
    cdef uint8_t[:, ::1] addresses
    cdef uint16_t[::1] ports
    cdef uint32_t[::1] flowinfo
    cdef uint32_t[::1] scope_ids
    cdef int64_t[::1] timestamps
    cdef uint8_t[::1] truncated
    # The Batch's family and slot size, which it keeps for life: read here,
    # they cost the calls that reuse the scratch no attribute lookups.
    cdef int family
    cdef Py_ssize_t slot_size
    # For layout_kept: the Batch's data and addresses arrays (None unless
    # both are exactly numpy.ndarray) and the address rows' width.
    cdef object data_array, addresses_array
    cdef Py_ssize_t address_bytes

    def __cinit__(self, Py_ssize_t capacity):
        self.capacity = capacity
        self.prepared = NOTHING
        self.busy = False
        self.msgs = <mmsghdr *>malloc(capacity * sizeof(mmsghdr))
        self.iov = <iovec *>malloc(capacity * sizeof(iovec))
        self.names = <sockaddr_in6 *>malloc(capacity * sizeof(sockaddr_in6))
        self.control = <unsigned char *>malloc(capacity * CONTROL_SPACE)
        if not (self.msgs and self.iov and self.names and self.control):
            raise MemoryError()
        memset(self.msgs, 0, capacity * sizeof(mmsghdr))

    def __dealloc__(self):
        free(self.msgs)
        free(self.iov)
        free(self.names)
        free(self.control)

    cdef bint layout_kept(self) noexcept:
        """Batch._check_layout's test, without its Python: False if either array was reshaped in place.

        The lanes make it on every call; fastnet/core/batch.py holds the
        rule and raises its error, on the general path the lanes hand a
        reshaped Batch to.
        """
        return (self.data_array is not None
                and fastnet_shape_is(self.data_array, self.capacity, self.slot_size)
                and fastnet_shape_is(self.addresses_array, self.capacity, self.address_bytes))


cdef _Scratch _claim(object batch):
    """The Batch's scratch, marked in use; RuntimeError if another call is using it.

    The caller (fastnet/core/socket.py) already lets one call at a time use a
    Batch; this guards the headers themselves. The check and the mark run
    with the GIL held and no Python code between them, so two threads cannot
    both pass.
    """
    return _mark_busy(_scratch_of(batch))


cdef _Scratch _mark_busy(_Scratch scratch):
    """``scratch`` marked in use (see _claim); RuntimeError if another call is using it."""
    if scratch.busy:
        raise RuntimeError("this Batch is in use by another call: a Batch serves one call "
                           "at a time")
    scratch.busy = True
    return scratch


cdef _Scratch _scratch_of(object batch):
    """The Batch's scratch, made on first use (with its typed views), not marked in use."""
    cdef _Scratch scratch = batch._scratch
    cdef object current
    if scratch is None or scratch.capacity != batch._capacity:
        scratch = _Scratch(batch._capacity)
        scratch.data = batch._data
        scratch.lengths = batch._lengths
        scratch.addresses = batch._addresses
        scratch.ports = batch._ports
        scratch.flowinfo = batch._flowinfo
        scratch.scope_ids = batch._scope_ids
        scratch.timestamps = batch._timestamps
        scratch.truncated = batch._truncated_u8
        scratch.family = batch._family
        scratch.slot_size = batch._slot_size
        scratch.address_bytes = 16 if scratch.family == AF_INET6 else 4
        if type(batch._data) is _ndarray and type(batch._addresses) is _ndarray:
            scratch.data_array = batch._data
            scratch.addresses_array = batch._addresses
        # Making it ran Python code (allocation can run a collection): if
        # another call installed a scratch meanwhile, use that one.
        current = batch._scratch
        if current is not None and (<_Scratch>current).capacity == batch._capacity:
            scratch = <_Scratch>current
        else:
            batch._scratch = scratch
    return scratch


cdef object _os_error(int err):
    return OSError(err, strerror(err).decode("utf-8", "replace"))


cdef int _receive_failed(SocketState st, int err, Py_ssize_t received) except -1:
    """After a receive call failed with ``err``: 1 to stop reading, 0 to try again.

    EINTR: run the signal handlers (a KeyboardInterrupt propagates), then
    again. EAGAIN: nothing more is queued. Any other error is raised if
    nothing was received yet, else kept for the next call, as recvmmsg keeps
    it ("returned on the next call"), so the datagrams already in rows stand.
    """
    if err == EINTR:
        PyErr_CheckSignals()
        return 0
    if err == EAGAIN or err == EWOULDBLOCK:
        return 1
    if received == 0:
        raise _os_error(err)
    st._error = _os_error(err)
    return 1


cdef inline bint _holds(msghdr *hdr, cmsghdr *cmsg, size_t size) noexcept nogil:
    """The control message carries ``size`` bytes of payload, inside what the kernel filled.

    recvmsg(2) says of MSG_CTRUNC that "some control data was discarded due
    to lack of space", but the kernel (put_cmsg) does not discard the message
    that did not fit: it writes its header with cmsg_len cut to the room
    left, so a UDP_GRO header can come with no segment size behind it.
    """
    return (cmsg.cmsg_len >= CMSG_LEN(size)
            and <size_t>(CMSG_DATA(cmsg) - <unsigned char *>hdr.msg_control) + size
            <= hdr.msg_controllen)


cdef inline int64_t _ns(int64_t seconds, int64_t fraction, int64_t unit) noexcept nogil:
    """seconds * 1e9 + fraction * unit, wrapped to 64 bits as _ancillary.py wraps it."""
    # Unsigned: a signed overflow (a garbage stamp) would be undefined.
    return <int64_t>(<uint64_t>seconds * <uint64_t>1000000000
                     + <uint64_t>fraction * <uint64_t>unit)


cdef void _read_control(msghdr *hdr, int64_t *stamp, Py_ssize_t *segment) noexcept nogil:
    """Receive time (ns) and UDP_GRO segment size (0: none) from a received message.

    The rules of fastnet/engines/python/ancillary.py receive_fields: the last message of a
    kind wins; one shorter than its kind needs is ignored; a segment size
    that is not positive counts as none. SCM_TIMESTAMPNS holds a timespec,
    SCM_TIMESTAMP (socket(7): "a struct timeval") microseconds.
    """
    cdef cmsghdr *cmsg = CMSG_FIRSTHDR(hdr) if hdr.msg_controllen else NULL
    cdef timespec ns
    cdef timeval us
    cdef int gso_size
    stamp[0] = 0
    segment[0] = 0
    while cmsg != NULL:
        if cmsg.cmsg_level == SOL_SOCKET:
            if cmsg.cmsg_type == SCM_TIMESTAMPNS and _holds(hdr, cmsg, sizeof(timespec)):
                memcpy(&ns, CMSG_DATA(cmsg), sizeof(timespec))
                stamp[0] = _ns(ns.tv_sec, ns.tv_nsec, 1)
            elif cmsg.cmsg_type == SCM_TIMESTAMP and _holds(hdr, cmsg, sizeof(timeval)):
                memcpy(&us, CMSG_DATA(cmsg), sizeof(timeval))
                stamp[0] = _ns(us.tv_sec, us.tv_usec, 1000)
        elif (cmsg.cmsg_level == SOL_UDP and cmsg.cmsg_type == UDP_GRO
              and _holds(hdr, cmsg, sizeof(int))):
            memcpy(&gso_size, CMSG_DATA(cmsg), sizeof(int))
            segment[0] = gso_size if gso_size > 0 else 0
        cmsg = CMSG_NXTHDR(hdr, cmsg)


cdef inline int64_t _timestamp_of(msghdr *hdr) noexcept nogil:
    """Receive time in ns from SCM_TIMESTAMPNS or SCM_TIMESTAMP, or 0 if the kernel sent none."""
    cdef int64_t stamp
    cdef Py_ssize_t segment
    _read_control(hdr, &stamp, &segment)
    return stamp


include "_state.pxi"
include "_gro.pxi"


def recv_batch(SocketState state not None, object batch, bint ancillary, bint gro=False):
    """Take the datagrams already queued on the socket, up to capacity; 0 if none.

    ``gro``: the GRO path, through ``state.gro_area`` (the caller holds the
    socket's GRO lock and has chosen the path, once, from
    ``state.gro_path``); otherwise the area is never touched.
    """
    if gro:
        return _recv_gro(state, _scratch_of(batch))
    return _recv_plain_claimed(state, ancillary, _scratch_of(batch))


cdef Py_ssize_t _recv_plain_claimed(SocketState st, bint ancillary, _Scratch s) except -1:
    """The plain receive, with ``s`` (the Batch's scratch) marked in use for its length."""
    _mark_busy(s)
    try:
        return _recv_plain(st, ancillary, s)
    finally:
        s.busy = False


cdef Py_ssize_t _recv_plain(SocketState st, bint ancillary, _Scratch s) except -1:
    cdef int fd = st.fd
    cdef int family = s.family
    cdef Py_ssize_t capacity = s.capacity
    cdef Py_ssize_t slot = s.slot_size
    cdef uint8_t[:, ::1] data = s.data
    cdef int64_t[::1] lengths = s.lengths
    cdef uint8_t[:, ::1] addresses = s.addresses
    cdef uint16_t[::1] ports = s.ports
    cdef uint32_t[::1] flowinfo = s.flowinfo
    cdef uint32_t[::1] scope_ids = s.scope_ids
    cdef int64_t[::1] timestamps = s.timestamps
    cdef uint8_t[::1] truncated = s.truncated
    cdef Py_ssize_t i, total = 0, cut = 0
    cdef int got, err = 0, late = 0
    cdef unsigned int chunk
    cdef msghdr *hdr
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6

    if s.prepared != FOR_RECV:
        for i in range(capacity):
            s.iov[i].iov_base = &data[i, 0]
            s.iov[i].iov_len = slot
            hdr = &s.msgs[i].msg_hdr
            hdr.msg_name = &s.names[i]
            hdr.msg_namelen = sizeof(sockaddr_in6)
            hdr.msg_iov = &s.iov[i]
            hdr.msg_iovlen = 1
            hdr.msg_control = s.control + i * CONTROL_SPACE
            hdr.msg_controllen = CONTROL_SPACE
            hdr.msg_flags = 0
        s.prepared = FOR_RECV

    while total < capacity:
        chunk = <unsigned int>min(capacity - total, MAX_VLEN)
        with nogil:
            got = fastnet_recvmmsg(fd, s.msgs + total, chunk, MSG_DONTWAIT, &late)
            if got < 0:
                err = errno
        if got < 0:
            if _receive_failed(st, err, total):
                break
            continue
        for i in range(total, total + got):
            hdr = &s.msgs[i].msg_hdr
            lengths[i] = s.msgs[i].msg_len
            truncated[i] = (hdr.msg_flags & MSG_TRUNC) != 0
            if family == AF_INET:
                sin = <sockaddr_in *>hdr.msg_name
                memcpy(&addresses[i, 0], &sin.sin_addr, 4)
                ports[i] = ntohs(sin.sin_port)
                flowinfo[i] = 0
                scope_ids[i] = 0
            else:
                sin6 = <sockaddr_in6 *>hdr.msg_name
                memcpy(&addresses[i, 0], &sin6.sin6_addr, 16)
                ports[i] = ntohs(sin6.sin6_port)
                flowinfo[i] = ntohl(sin6.sin6_flowinfo)
                scope_ids[i] = sin6.sin6_scope_id
            # Control data only when the socket has an option that makes
            # some, as the pure-Python engine reads it only then.
            if ancillary:
                timestamps[i] = _timestamp_of(hdr)
                cut += (hdr.msg_flags & MSG_CTRUNC) != 0
            else:
                timestamps[i] = 0
            # The kernel writes these back (value-result); restore them.
            hdr.msg_namelen = sizeof(sockaddr_in6)
            hdr.msg_controllen = CONTROL_SPACE
            hdr.msg_flags = 0
        total += got
        if late:
            st._error = _os_error(late)
            break
        if <unsigned int>got < chunk:
            break
    st.control_truncated += cut
    return total


cdef int _sockaddr_from(object address, int family, sockaddr_in6 *out) except -1:
    """Fill ``out`` from a numeric address tuple already resolved by the caller."""
    cdef bytes host = address[0].encode("ascii")
    cdef sockaddr_in *sin
    memset(out, 0, sizeof(sockaddr_in6))
    if family == AF_INET:
        sin = <sockaddr_in *>out
        sin.sin_family = AF_INET
        sin.sin_port = htons(<uint16_t>address[1])
        if inet_pton(AF_INET, host, &sin.sin_addr) != 1:
            raise ValueError(f"not a numeric IPv4 address: {address[0]!r}")
        return sizeof(sockaddr_in)
    out.sin6_family = AF_INET6
    out.sin6_port = htons(<uint16_t>address[1])
    out.sin6_flowinfo = htonl(<uint32_t>address[2])
    out.sin6_scope_id = <uint32_t>address[3]
    if inet_pton(AF_INET6, host, &out.sin6_addr) != 1:
        raise ValueError(f"not a numeric IPv6 address: {address[0]!r}")
    return sizeof(sockaddr_in6)


def send_batch(SocketState state not None, object batch, Py_ssize_t start, Py_ssize_t stop, object address,
               Py_ssize_t gso_size=0, Py_ssize_t gso_segments=0):
    """Send rows start..stop-1 without blocking; return how many rows went out (0 if none).

    With ``gso_size``, each message carries ``gso_segments`` rows (one iovec
    each, no copy) and a UDP_SEGMENT control message: the kernel cuts it
    into datagrams of ``gso_size`` bytes, the last possibly shorter. A
    message the kernel refuses is not sent at all, so rows stay countable.
    """
    if gso_size and not (0 < gso_size <= 0xFFFF and 0 < gso_segments <= MAX_VLEN):
        raise ValueError(f"bad GSO plan: gso_size={gso_size}, gso_segments={gso_segments}")
    if not 0 <= start <= stop <= batch._capacity:
        raise ValueError(f"rows {start}..{stop} out of range for capacity {batch._capacity}")
    cdef _Scratch s = _claim(batch)
    try:
        return _send_rows(state, start, stop, address, gso_size, gso_segments, s)
    finally:
        s.busy = False


cdef object _off_plan(Py_ssize_t i, int64_t length, int64_t slot, Py_ssize_t gso_size):
    """The ValueError for row ``i`` whose ``length`` is outside the slot or the GSO plan."""
    if not 0 <= length <= slot:
        return ValueError(f"batch.lengths[{i}] = {length} is outside 0..{slot}")
    return ValueError(f"batch.lengths[{i}] = {length} changed from the GSO plan "
                      f"(segment {gso_size})")


cdef int _check_segments(const int64_t *lengths, Py_ssize_t start, Py_ssize_t stop,
                         int64_t slot, Py_ssize_t gso_size, int64_t *last) except -1:
    """Rows start..stop-2 are one segment each, the last 1..gso_size bytes; ``last`` gets its length.

    The contiguous GSO path's only pass over the rows: its iovecs span whole
    super-buffers, so no per-row store is needed, only this check.
    """
    cdef Py_ssize_t i, end = stop - 1
    cdef int64_t segment = gso_size, length
    # One branch-free pass over the rows (src/fastnet_rows.h); only a batch
    # off the plan takes the second loop, which names the first row off it.
    if fastnet_any_differs(lengths + start, end - start, segment):
        for i in range(start, end):
            length = lengths[i]
            if length != segment:
                raise _off_plan(i, length, slot, gso_size)
        # Put back meanwhile by another thread: the rows are on the plan again.
    # Read once: the value checked is the value sent.
    last[0] = lengths[end]
    if not 0 < last[0] <= segment:
        raise _off_plan(end, last[0], slot, gso_size)
    return 0


cdef bint _same_address(object address, object before, int family, int family_before):
    """``address`` is the very tuple of immutable str and ints that ``before`` was, for the same family.

    Then the sockaddr made from it last time stands: the socket hands the
    engine the one tuple it keeps per resolved address (fastnet/core/socket.py
    _resolve), so a batch sent again skips the text-to-binary conversion.
    """
    if address is not before or family != family_before or type(address) is not tuple:
        return False
    for item in <tuple>address:
        if type(item) is not str and type(item) is not int:
            return False
    return True


cdef Py_ssize_t _send_rows(SocketState st, Py_ssize_t start, Py_ssize_t stop,
                           object address, Py_ssize_t gso_size, Py_ssize_t gso_segments,
                           _Scratch s) except -1:
    cdef int fd = st.fd
    cdef uint8_t[:, ::1] data = s.data
    cdef int64_t[::1] lengths = s.lengths
    cdef socklen_t dest_len = 0
    cdef Py_ssize_t i, first, per = gso_segments if gso_size else 1
    cdef Py_ssize_t messages
    cdef Py_ssize_t done = 0   # messages sent
    cdef int got, err = 0
    cdef unsigned int chunk
    cdef msghdr *hdr
    cdef cmsghdr *cmsg
    cdef uint16_t segment = <uint16_t>gso_size
    cdef int64_t slot = s.slot_size
    cdef int64_t length, last = 0
    cdef Py_ssize_t rows_here
    # When the segment size is the slot size, a message's rows lie back to
    # back in data: one iovec spans them (the kernel imports and copies one
    # range instead of 64; perf put __import_iovec at 2% of a 64-byte GSO
    # sender), and the rows need checking but no iovec of their own.
    cdef bint contiguous = gso_size != 0 and gso_size == slot

    messages = (stop - start + per - 1) // per
    if address is not None:
        if _same_address(address, s.dest_address, st.family, s.dest_family):
            dest_len = s.dest_len
        else:
            s.dest_address = None  # s.dest is rewritten below; a failure leaves no stale match
            dest_len = <socklen_t>_sockaddr_from(address, st.family, &s.dest)
            s.dest_address, s.dest_family, s.dest_len = address, st.family, dest_len
    s.prepared = NOTHING
    # The lengths were not checked by the caller against the GSO plan (it
    # proposes the plan from row 0; fastnet/core/socket.py), and the array
    # is the user's to write from another thread meanwhile: read each length
    # once, check it, and use only that value (kept in the iovec) from here on.
    if contiguous:
        if stop > start:
            _check_segments(&lengths[0], start, stop, slot, gso_size, &last)
    else:
        for i in range(start, stop):
            length = lengths[i]
            # With a GSO plan each row but the last must be one segment, or
            # the kernel would cut the datagrams elsewhere than the rows.
            if not 0 <= length <= slot or (gso_size and (length == 0 or length > gso_size
                                                          or (length != gso_size
                                                              and i != stop - 1))):
                raise _off_plan(i, length, slot, gso_size)
            s.iov[i].iov_base = &data[i, 0]
            s.iov[i].iov_len = <size_t>length
    # Message m carries rows start + m*per onwards; there are never more
    # messages than rows, so the Batch's scratch has room for them.
    for i in range(messages):
        first = start + i * per
        rows_here = min(per, stop - first)
        hdr = &s.msgs[i].msg_hdr
        hdr.msg_name = &s.dest if dest_len else NULL
        hdr.msg_namelen = dest_len
        hdr.msg_iov = &s.iov[first]
        if contiguous:
            # Only the batch's last row may be shorter than the slot.
            s.iov[first].iov_base = &data[first, 0]
            s.iov[first].iov_len = <size_t>((rows_here - 1) * slot
                                            + (last if first + rows_here == stop else slot))
            hdr.msg_iovlen = 1
        else:
            hdr.msg_iovlen = <size_t>rows_here
        hdr.msg_flags = 0
        if gso_size:
            # udp(7): UDP_SEGMENT "may also be set for individual sendmsg(2)
            # calls by passing it as a cmsg(7)"; its payload is a uint16.
            hdr.msg_control = s.control + i * CONTROL_SPACE
            hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t))
            # CMSG_SPACE pads the 2-byte payload to alignment: zero the padding
            # too, so no uninitialised byte is handed to the kernel.
            memset(hdr.msg_control, 0, hdr.msg_controllen)
            cmsg = CMSG_FIRSTHDR(hdr)
            cmsg.cmsg_level = SOL_UDP
            cmsg.cmsg_type = UDP_SEGMENT
            cmsg.cmsg_len = CMSG_LEN(sizeof(uint16_t))
            memcpy(CMSG_DATA(cmsg), &segment, sizeof(uint16_t))
        else:
            hdr.msg_control = NULL
            hdr.msg_controllen = 0

    while done < messages:
        chunk = <unsigned int>min(messages - done, MAX_VLEN)
        with nogil:
            got = fastnet_sendmmsg(fd, s.msgs + done, chunk, MSG_DONTWAIT)
            if got < 0:
                err = errno
        if got < 0:
            if err == EINTR:
                PyErr_CheckSignals()
                continue
            if err == EAGAIN or err == EWOULDBLOCK:
                break
            if done == 0:
                raise _os_error(err)
            exc = _os_error(err)
            exc.sent = min(done * per, stop - start)
            raise exc
        done += got
        # sendmmsg(2): "If an error occurs after at least one message has been
        # sent, the call succeeds, and returns the number of messages sent."
        # Stop here; the caller's next call meets the error, if it persists.
        if <unsigned int>got < chunk:
            break
    return min(done * per, stop - start)


include "_framing.pxi"  # length-prefixed frames on stream sockets
include "_capture.pxi"  # the Receiver's GIL-free capture loop over a ring of rows
include "_frames.pxi"  # frame placement by header fields
include "_fields.pxi"  # the socket's and the Batch's fields, through their slots
include "_socket_use.pxi"  # socket._enter and _leave for the lanes below
include "_send_lane.pxi"  # send_batch's common case in one call
include "_recv_lane.pxi"  # recv_batch's common case in one call, waits included
