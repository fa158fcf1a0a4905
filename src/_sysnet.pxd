# Declarations of the socket API that Cython's libc/posix packages lack.
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from posix.uio cimport iovec
from posix.time cimport timespec

cdef extern from "fastnet_compat.h" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t

    struct sockaddr:
        sa_family_t sa_family

    struct in_addr:
        uint32_t s_addr

    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr

    struct in6_addr:
        uint8_t s6_addr[16]

    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id

    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags

    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len

    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type

    cmsghdr *CMSG_FIRSTHDR(msghdr *msgh)
    cmsghdr *CMSG_NXTHDR(msghdr *msgh, cmsghdr *cmsg)
    unsigned char *CMSG_DATA(cmsghdr *cmsg)
    size_t CMSG_SPACE(size_t length)
    size_t CMSG_LEN(size_t length)

    int AF_INET, AF_INET6
    int SOL_SOCKET, SOL_UDP
    int MSG_DONTWAIT, MSG_TRUNC, MSG_CTRUNC
    int SO_TIMESTAMP, SO_TIMESTAMPNS, SCM_TIMESTAMP, SCM_TIMESTAMPNS, SO_RXQ_OVFL, SO_MEMINFO
    int SO_SNDBUFFORCE, SO_RCVBUFFORCE
    int UDP_SEGMENT, UDP_GRO
    int EAGAIN, EWOULDBLOCK, EINTR

    int FASTNET_HAVE_MMSG
    int FASTNET_GRO_COUNTERS
    void fastnet_count(Py_ssize_t *counter)
    int fastnet_recvmmsg(int fd, mmsghdr *msgs, unsigned int n, int flags, int *late_errno)
    int fastnet_sendmmsg(int fd, mmsghdr *msgs, unsigned int n, int flags)

    uint16_t htons(uint16_t)
    uint16_t ntohs(uint16_t)
    uint32_t htonl(uint32_t)
    uint32_t ntohl(uint32_t)
    int inet_pton(int af, const char *src, void *dst)
