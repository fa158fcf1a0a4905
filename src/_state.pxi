# Included by _cengine.pyx: SocketState, what the engine keeps for one socket
# between calls. Its twin in the pure-Python engine is
# fastnet/engines/python/state.py; the contract is fastnet/engines/contract.py.


cdef class SocketState:
    """Per-socket engine state: the fd, the GRO area, a kept error, counts.

    fastnet.socket makes one when it is created (``SocketState(fd, family,
    kind, proto)``) and hands it to every engine call; the engine reads and
    writes this object, never the socket's attributes. The socket calls
    ``close()`` before it closes the fd, and makes no engine call after.
    """

    cdef readonly int fd
    cdef readonly int family
    #: UDP_GRO is on (set by the socket whenever the option changes).
    cdef public bint gro
    #: The GRO receive area (_gro.pxi) with rows carried over, or None.
    cdef public object gro_area
    #: Datagrams received with MSG_CTRUNC (the socket's ``control_truncated``).
    cdef public Py_ssize_t control_truncated
    cdef object _error

    def __cinit__(self, int fd, int family, int kind, int proto):
        self.fd = fd
        self.family = family
        self.gro = False
        self.gro_area = None
        self.control_truncated = 0
        self._error = None

    @property
    def gro_path(self):
        """Receives take the GRO path: GRO is on, or rows are still carried in the area."""
        return self._gro_path()

    @property
    def carried(self):
        """Rows are carried over in the GRO area: the next receive returns them before reading."""
        return self._carried()

    # The two tests above, for the engine's own C callers (the receive lane).
    cdef inline bint _gro_path(self):
        return self.gro or self.gro_area is not None

    cdef inline bint _carried(self):
        return self.gro_area is not None and _area_carries(self.gro_area)

    def keep_error(self, exc):
        """Keep an error met after some datagrams, for the next call (as recvmmsg does)."""
        self._error = exc

    def take_error(self):
        """The error kept by the last call, once."""
        error, self._error = self._error, None
        return error

    def close(self):
        """Forget the area and the fd (the socket closes the fd itself)."""
        self.gro_area = None
        self.fd = -1
