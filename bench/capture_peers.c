/* The C peers of bench/receiver_pause.py: a paced GSO sender, and a plain
 * recvmmsg loop into a ring of rows (the C loop a Receiver is measured
 * against: the same ring memory, no Python anywhere).
 *
 *   capture_peers send SIZE PORT RATE SECONDS [gso]
 *       send SIZE-byte datagrams to 127.0.0.1:PORT, RATE per second (0: as
 *       fast as the kernel takes them) for SECONDS; print one JSON line.
 *   capture_peers recv SIZE ROWS BATCH RCVBUF [gro]
 *       bind 127.0.0.1:0, print "ready PORT", read with recvmmsg into a
 *       ring of ROWS rows of SIZE bytes, up to BATCH per call (GRO: 64 KiB
 *       buffers split into rows with memcpy), keeping each row's length,
 *       source address and port as a Receiver does, until a line arrives on
 *       stdin and the queue then stays empty for 0.2 s; print one JSON line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SO_RCVBUFFORCE
#define SO_RCVBUFFORCE 33
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

#define VLEN 1024
#define GRO_MESSAGES 32
#define GRO_BUFFER 65536

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void *zalloc(size_t size)
{
    void *p = calloc(1, size);
    if (!p)
        die("calloc");
    return p;
}

static int loopback_socket(int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    return fd;
}

static void send_paced(int size, int port, double rate, double seconds, int gso)
{
    int fd = loopback_socket(0);
    struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(port)};
    dest.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int segments = 1;
    if (gso) {
        segments = 65507 / size < 64 ? 65507 / size : 64;
        if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, sizeof size) < 0)
            die("UDP_SEGMENT");
    }
    int vlen = gso ? 16 : 64; /* messages per call: a few ms of the stream at most */
    size_t buffer = (size_t)size * segments;
    unsigned char *data = zalloc((size_t)vlen * buffer);
    struct iovec *iov = zalloc(vlen * sizeof *iov);
    struct mmsghdr *msgs = zalloc(vlen * sizeof *msgs);
    for (int i = 0; i < vlen; i++) {
        iov[i].iov_base = data + (size_t)i * buffer;
        iov[i].iov_len = buffer;
        msgs[i].msg_hdr.msg_name = &dest;
        msgs[i].msg_hdr.msg_namelen = sizeof dest;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long sent = 0;
    double cpu0 = cpu_s(), start = now_s(), now = start;
    while (now - start < seconds) {
        int want = vlen;
        if (rate > 0) {
            double due = rate * (now - start) - (double)sent;
            want = (int)(due / segments);
            if (want > vlen)
                want = vlen;
            if (want < 1) {
                struct timespec nap = {0, 50000};
                nanosleep(&nap, NULL);
                now = now_s();
                continue;
            }
        }
        int n = sendmmsg(fd, msgs, want, 0);
        now = now_s();
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN)
                continue;
            die("sendmmsg");
        }
        sent += (unsigned long long)n * segments;
    }
    printf("{\"sent\": %llu, \"wall_s\": %.6f, \"cpu_s\": %.6f}\n", sent, now - start, cpu_s() - cpu0);
}

static unsigned int kernel_drops(int fd)
{
    uint32_t meminfo[9] = {0};
    socklen_t len = sizeof meminfo;
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len) < 0)
        return 0;
    return meminfo[8]; /* SK_MEMINFO_DROPS */
}

static void receive_ring(int size, long rows, int batch, int rcvbuf, int gro)
{
    int fd = loopback_socket(0);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0
        && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
        die("SO_RCVBUF");
    int on = 1;
    if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0)
        die("UDP_GRO");
    struct sockaddr_in addr;
    socklen_t addr_len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &addr_len);
    printf("ready %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    unsigned char *ring = zalloc((size_t)rows * size);
    long *lengths = zalloc(rows * sizeof *lengths);
    uint32_t *sources = zalloc(rows * sizeof *sources);
    uint16_t *ports = zalloc(rows * sizeof *ports);
    int vlen = gro ? GRO_MESSAGES : (batch < VLEN ? batch : VLEN);
    struct mmsghdr *msgs = zalloc(vlen * sizeof *msgs);
    struct iovec *iov = zalloc(vlen * sizeof *iov);
    struct sockaddr_in *names = zalloc(vlen * sizeof *names);
    unsigned char *area = gro ? zalloc((size_t)GRO_MESSAGES * GRO_BUFFER) : NULL;
    unsigned char *control = zalloc((size_t)vlen * 64);
    long next = 0;
    unsigned long long received = 0, calls = 0;
    int stopping = 0;
    double cpu0 = cpu_s(), quiet_since = 0;
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
    for (;;) {
        int n = vlen;
        if (!gro && n > rows - next)
            n = (int)(rows - next); /* contiguous rows up to the ring's end */
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = gro ? area + (size_t)i * GRO_BUFFER : ring + (size_t)(next + i) * size;
            iov[i].iov_len = gro ? GRO_BUFFER : (size_t)size;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &names[i];
            msgs[i].msg_hdr.msg_namelen = sizeof names[i];
            msgs[i].msg_hdr.msg_control = gro ? control + i * 64 : NULL;
            msgs[i].msg_hdr.msg_controllen = gro ? 64 : 0;
        }
        int got = recvmmsg(fd, msgs, n, MSG_DONTWAIT, NULL);
        if (got > 0) {
            calls++;
            for (int i = 0; i < got; i++) {
                if (!gro) {
                    lengths[next] = msgs[i].msg_len;
                    sources[next] = names[i].sin_addr.s_addr;
                    ports[next] = ntohs(names[i].sin_port);
                    next = next + 1 == rows ? 0 : next + 1;
                    received++;
                    continue;
                }
                int segment = 0;
                struct cmsghdr *c;
                for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
                    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO)
                        memcpy(&segment, CMSG_DATA(c), sizeof segment);
                long length = msgs[i].msg_len;
                if (segment <= 0)
                    segment = (int)length;
                for (long off = 0; off < length || (length == 0 && off == 0); off += segment) {
                    long piece = length - off < segment ? length - off : segment;
                    memcpy(ring + (size_t)next * size, area + (size_t)i * GRO_BUFFER + off,
                           piece < size ? piece : size);
                    lengths[next] = piece;
                    sources[next] = names[i].sin_addr.s_addr;
                    ports[next] = ntohs(names[i].sin_port);
                    next = next + 1 == rows ? 0 : next + 1;
                    received++;
                    if (length == 0)
                        break;
                }
            }
            continue;
        }
        if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            die("recvmmsg");
        int ready = poll(fds, stopping ? 1 : 2, 100);
        if (!stopping && ready > 0 && fds[1].revents) {
            stopping = 1;
            quiet_since = now_s();
        }
        if (stopping && ready == 0 && now_s() - quiet_since > 0.2)
            break;
        if (ready > 0 && fds[0].revents)
            quiet_since = now_s();
    }
    long last = next ? next - 1 : rows - 1; /* printed, so the rows' stores are kept */
    printf("{\"received\": %llu, \"calls\": %llu, \"kernel_drops\": %u, \"cpu_s\": %.6f, "
           "\"last\": [%ld, %u, %u]}\n",
           received, calls, kernel_drops(fd), cpu_s() - cpu0, lengths[last], sources[last], ports[last]);
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "send") == 0) {
        send_paced(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), atof(argv[5]),
                   argc > 6 && strcmp(argv[6], "gso") == 0);
        return 0;
    }
    if (argc >= 6 && strcmp(argv[1], "recv") == 0) {
        receive_ring(atoi(argv[2]), atol(argv[3]), atoi(argv[4]), atoi(argv[5]),
                     argc > 6 && strcmp(argv[6], "gro") == 0);
        return 0;
    }
    fprintf(stderr, "usage: %s send SIZE PORT RATE SECONDS [gso] | recv SIZE ROWS BATCH RCVBUF [gro]\n",
            argv[0]);
    return 1;
}
