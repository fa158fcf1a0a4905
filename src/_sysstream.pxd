# Declarations for the stream (TCP) framing loops that _sysnet.pxd lacks.
from _sysnet cimport msghdr

cdef extern from *:
    """
    #include <sys/socket.h>
    /* Not every platform has it (older macOS); 0 keeps the default SIGPIPE. */
    #ifndef MSG_NOSIGNAL
    #define MSG_NOSIGNAL 0
    #endif
    """
    int MSG_NOSIGNAL

cdef extern from "sys/socket.h" nogil:
    ssize_t recv(int fd, void *buf, size_t n, int flags)
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    ssize_t sendmsg(int fd, const msghdr *msg, int flags)
