# send_batch's common case in one engine call.
#
# A sender calls send_batch again and again with one Batch, one address and
# the same rows' shape. Its Python layer (fastnet/core/socket.py) runs the
# same checks each time: the Batch's type and layout, the GSO plan proposed
# from row 0, the address resolved last time, the socket's and the Batch's
# in-use marks under their locks. In Python that was most of the user-space
# work of a call of 1024 rows (bench/README.md). SendLane makes those checks
# and marks here, then sends through the same _send_rows as send_batch().
#
# It decides nothing of its own: whatever is not the common case (another
# type or layout, an address not resolved yet, a plan only gso.plan can
# make, a lock held by another thread, a closed socket, a Batch in use) it
# hands to the socket's general path (socket._send_batch) before touching
# anything, and the general path raises what it always raises. Rows left
# after a partial send, and the rows after a GSO refusal, go to the general
# path too, from the first row not sent.
#
# The lanes (this one, src/_recv_lane.pxi) are the engine objects that read
# the socket's fields. Each read or write mirrors a line of
# fastnet/core/socket.py, fastnet/core/batch.py or fastnet/core/gso.py, named
# beside it here; socket._enter says so too.


cdef class SendLane:
    """send_batch's common case for one socket (see the comment at the top of src/_send_lane.pxi)."""

    cdef SocketState state  # the socket's _engine_state
    cdef int family  # the socket's _af
    cdef _SocketUse use  # socket._enter and _leave (src/_socket_use.pxi)
    cdef _BatchFields batch_fields  # the Batch's, through their slots (src/_fields.pxi)
    cdef type batch_type  # fastnet.Batch: a subclass takes the general path
    cdef Py_ssize_t max_payload  # gso.MAX_PAYLOAD[family]
    cdef Py_ssize_t max_segments  # gso.MAX_SEGMENTS
    # features.supported("gso"): asked at the first GSO send, not when the
    # socket is made (the probe itself makes sockets); -1 until then.
    cdef object supported
    cdef int gso_ok
    cdef object refused  # gso.refused
    cdef object with_sent  # fastnet.errors.with_sent

    def __init__(self, SocketState state not None, object lock, type batch_type, object claims,
                 Py_ssize_t max_payload, Py_ssize_t max_segments, object supported, object refused,
                 object with_sent):
        if max_payload <= 0 or max_segments <= 0:
            raise ValueError("max_payload and max_segments must be more than 0")
        self.state = state
        self.family = state.family
        self.batch_fields = _BatchFields(batch_type)
        self.use = _SocketUse(state, lock, claims, self.batch_fields)
        self.batch_type = batch_type
        self.max_payload = max_payload
        self.max_segments = max_segments
        self.supported = supported
        self.gso_ok = -1
        self.refused = refused
        self.with_sent = with_sent

    def send(self, object sock, object batch, object address, object gso):
        """Rows sent (``batch.count``, or what the general path sent after a part); -1: not taken.

        -1 means nothing was done: the caller runs the general path.
        """
        cdef Py_ssize_t count, sent
        cdef int64_t segment = 0, per_buffer = 0
        cdef object resolved = None, cached
        cdef _Scratch s
        # socket._check_batch: a Batch (exactly), unreshaped, of the socket's
        # family (the lane exists only for SOCK_DGRAM sockets).
        if type(batch) is not self.batch_type:
            return -1
        if gso is not None and gso is not True and gso is not False:
            return -1
        count = self.batch_fields.count.get(batch)
        if count == 0 or <int>self.batch_fields.family.get(batch) != self.family:
            return -1
        # Batch._check_layout's test: a reshaped Batch takes the general
        # path, which raises the error itself.
        s = _scratch_if_kept(batch, self.batch_fields)
        if s is None:
            return -1
        # socket._resolve: the address resolved last time (it caches only numeric ones).
        if address is not None:
            cached = sock._last_address
            if cached[0] is None or not (cached[0] == address):
                return -1
            resolved = cached[1]
        # gso.proposed: the plan from row 0 alone; _send_rows checks every
        # other row against it before any system call.
        if gso is not False and not (gso is None and count < 2):
            segment = s.lengths[0]
            if self.gso_ok < 0:
                self.gso_ok = 1 if self.supported("gso") else 0
            if not (0 < segment <= self.max_payload and segment < sock._gso_refused_from and self.gso_ok):
                return -1
            per_buffer = min(self.max_segments, self.max_payload // segment)
        if not self.use.enter(sock, batch, "send_batch"):
            return -1
        try:
            _mark_busy(s)
            try:
                sent = _send_rows(self.state, 0, count, resolved, <Py_ssize_t>segment,
                                  <Py_ssize_t>per_buffer, s)
            finally:
                s.busy = False
        except OSError as exc:
            self.use.leave(sock, batch)
            # The general path's handling of the same error (socket._send_batch).
            if segment and self.refused(sock, exc, segment):
                return sock._send_batch(batch, address, gso, getattr(exc, "sent", 0))
            self.with_sent(exc, getattr(exc, "sent", 0))
            raise
        except ValueError:
            # A row off the proposed plan (raised before any system call):
            # the general path checks every row and makes the full plan.
            self.use.leave(sock, batch)
            return -1
        except BaseException:
            self.use.leave(sock, batch)
            raise
        self.use.leave(sock, batch)
        if sent < count:  # the kernel's buffer filled: the general path waits and sends the rest
            return sock._send_batch(batch, address, gso, sent)
        return sent
