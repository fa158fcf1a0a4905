# socket._enter and socket._leave, for the lanes (src/_send_lane.pxi,
# src/_recv_lane.pxi): a lane's call registers itself as a user of the fd
# and takes the Batch, as the general path does, with the same fields.
#
# socket._enter and _leave update the socket's fields under its lock, and
# Batch._claim tests and marks the Batch under the claims lock. Here the
# locks are only tested: the test and the updates after it run with the GIL
# held and no Python code between them (slots and plain attributes, small
# ints, no allocation, so no collection either), so no thread can
# interleave with them, as in _claim. While another thread holds either
# lock, in the middle of its own test and update, the lane takes the general
# path (enter) or waits for the lock as _leave does (leave).
# docs/design/send-lane.md says why this relies on the GIL.


cdef class _SocketUse:
    """socket._enter and _leave for one socket, in C (see the comment at the top of src/_socket_use.pxi)."""

    cdef SocketState state  # the socket's _engine_state
    # The socket's _lock and the lock of Batch._claim (fastnet/core/batch.py
    # _CLAIMS), as bound methods taken once.
    cdef object lock_locked, lock_acquire, lock_release, claims_locked
    # The socket's fields, for its type (bound at the first call: one lane
    # serves one socket, so one type).
    cdef type cls
    cdef _Field users, closing, closed, drained, ancillary
    cdef _BatchFields batch  # the lane's, for the Batch's in-use mark

    def __init__(self, SocketState state not None, object lock, object claims,
                 _BatchFields batch not None):
        self.state = state
        self.batch = batch
        self.lock_locked, self.lock_acquire, self.lock_release = lock.locked, lock.acquire, lock.release
        self.claims_locked = claims.locked

    cdef int bind(self, type cls) except -1:
        self.users = _Field(cls, "_users")
        self.closing = _Field(cls, "_closing")
        self.closed = _Field(cls, "_closed")
        self.drained = _Field(cls, "_drained")  # the receive lane's
        self.ancillary = _Field(cls, "_ancillary")  # the receive lane's
        self.cls = cls
        return 0

    cdef bint enter(self, object sock, object batch, object method) except -1:
        """socket._enter(batch, method); False, with nothing changed, for the general path."""
        if type(sock) is not self.cls:
            self.bind(type(sock))
        if self.lock_locked() or self.claims_locked():
            return False
        # socket._enter: `self._closing or self._closed or super().fileno() < 0`;
        # the engine state's fd is -1 once detach() or close() let it go.
        if self.closing.get(sock) or self.closed.get(sock) or self.state.fd < 0:
            return False
        if self.batch.user.get(batch) is not None:  # Batch._claim: in use by another call
            return False
        self.users.set(sock, self.users.get(sock) + 1)
        self.batch.user.set(batch, method)
        return True

    cdef int leave(self, object sock, object batch) except -1:
        """socket._leave(batch): Batch._release, then the last user of a closing socket closes it."""
        cdef bint last
        # Another thread between its own test and update: wait for it.
        cdef bint wait = self.lock_locked()
        self.batch.user.set(batch, None)
        if wait:
            self.lock_acquire()
        try:
            self.users.set(sock, self.users.get(sock) - 1)
            last = self.closing.get(sock) and self.users.get(sock) == 0
        finally:
            if wait:
                self.lock_release()
        if last:
            sock._close_now()
        return 0
