/* What the Cython engine needs from the platform, in one place.
 *
 * Python.h (included first by Cython) defines _GNU_SOURCE, which glibc needs
 * to declare recvmmsg/sendmmsg and struct mmsghdr.
 *
 * Where recvmmsg/sendmmsg are missing (not Linux), or FASTNET_NO_MMSG is
 * defined to test that path, fastnet_recvmmsg/fastnet_sendmmsg are loops of
 * recvmsg/sendmsg with the same contract: the number of messages done, or -1
 * with errno if the first one failed.
 */
#ifndef FASTNET_COMPAT_H
#define FASTNET_COMPAT_H

#include <errno.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#ifdef __linux__
#include <netinet/udp.h>
#endif

/* Older C libraries lack these; the values are the kernel's ABI. */
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SO_TIMESTAMPNS
#define SO_TIMESTAMPNS 35
#endif
#ifndef SCM_TIMESTAMPNS
#define SCM_TIMESTAMPNS SO_TIMESTAMPNS
#endif
#ifndef SCM_TIMESTAMP
#define SCM_TIMESTAMP SO_TIMESTAMP
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

/* Counters of the GRO receive paths, for the tests that must reach each of
 * them (setup.py: FASTNET_GRO_COUNTERS=1); compiled out otherwise. */
#ifdef FASTNET_GRO_COUNTERS
#undef FASTNET_GRO_COUNTERS
#define FASTNET_GRO_COUNTERS 1
static inline void fastnet_count(Py_ssize_t *counter) { (*counter)++; }
#else
#define FASTNET_GRO_COUNTERS 0
static inline void fastnet_count(Py_ssize_t *counter) { (void)counter; }
#endif

#if defined(__linux__) && !defined(FASTNET_NO_MMSG)

#define FASTNET_HAVE_MMSG 1

/* The last argument reports an error that ended a partial receive; the
 * kernel's recvmmsg keeps such an error for the next call itself (net/socket.c,
 * do_recvmmsg: "We save the error in the socket struct so that it's returned
 * on the next call"), so it is always 0 here. */
static inline int fastnet_recvmmsg(int fd, struct mmsghdr *msgs, unsigned int n,
                                   int flags, int *late_errno)
{
    *late_errno = 0;
    return recvmmsg(fd, msgs, n, flags, NULL);
}

static inline int fastnet_sendmmsg(int fd, struct mmsghdr *msgs, unsigned int n, int flags)
{
    return sendmmsg(fd, msgs, n, flags);
}

#else

#define FASTNET_HAVE_MMSG 0

#ifndef __linux__
struct mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
#endif

static int fastnet_recvmmsg(int fd, struct mmsghdr *msgs, unsigned int n,
                            int flags, int *late_errno)
{
    unsigned int i;
    *late_errno = 0;
    for (i = 0; i < n; i++) {
        ssize_t got = recvmsg(fd, &msgs[i].msg_hdr, flags);
        if (got < 0) {
            if (i == 0)
                return -1;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                *late_errno = errno;   /* report it on the next call */
            break;
        }
        msgs[i].msg_len = (unsigned int)got;
    }
    return (int)i;
}

static int fastnet_sendmmsg(int fd, struct mmsghdr *msgs, unsigned int n, int flags)
{
    unsigned int i;
    for (i = 0; i < n; i++) {
        ssize_t put = sendmsg(fd, &msgs[i].msg_hdr, flags);
        if (put < 0)
            return i == 0 ? -1 : (int)i;
        msgs[i].msg_len = (unsigned int)put;
    }
    return (int)i;
}

#endif /* mmsg */

/* Header fields (src/_frames.pxi): the host's byte order is known at compile
 * time, so a field is read with one load and, when its order is not the
 * host's, one byte swap, instead of a byte at a time. */
#include <stdint.h>
#include <string.h>
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) \
    && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FASTNET_HOST_LITTLE_ENDIAN 1
#elif defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) \
    && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FASTNET_HOST_LITTLE_ENDIAN 0
#else
#error "fastnet_compat.h: the host byte order is not known at compile time (__BYTE_ORDER__)"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define fastnet_bswap64 __builtin_bswap64
#else
static inline uint64_t fastnet_bswap64(uint64_t v)
{
    v = ((v & 0x00FF00FF00FF00FFull) << 8) | ((v >> 8) & 0x00FF00FF00FF00FFull);
    v = ((v & 0x0000FFFF0000FFFFull) << 16) | ((v >> 16) & 0x0000FFFF0000FFFFull);
    return (v << 32) | (v >> 32);
}
#endif

/* The unsigned value of the `size`-byte field (1 to 8) at p, big-endian if
 * `big`, little-endian otherwise. `avail` is how many bytes from p on belong
 * to the datagram (at least `size`): with 8 or more, one 8-byte load (memcpy:
 * p need not be aligned); with fewer, only the field's own bytes are read,
 * so a field at the datagram's end is never read past it. */
static inline uint64_t fastnet_read_field(const uint8_t *p, int size, int big, Py_ssize_t avail)
{
    uint64_t raw = 0;
    if (avail >= 8)
        memcpy(&raw, p, 8);
    else
        memcpy(&raw, p, (size_t)size);
    /* raw holds p[0], p[1], ... in memory order: on a little-endian host p[0]
     * is its lowest byte, on a big-endian host its highest. */
#if FASTNET_HOST_LITTLE_ENDIAN
    if (big)
        return fastnet_bswap64(raw) >> (64 - 8 * size);
    return size == 8 ? raw : raw & ((UINT64_C(1) << (8 * size)) - 1);
#else
    if (big)
        return raw >> (64 - 8 * size);
    raw = fastnet_bswap64(raw);
    return size == 8 ? raw : raw & ((UINT64_C(1) << (8 * size)) - 1);
#endif
}

#endif /* FASTNET_COMPAT_H */
