/* The reference peer of `fastnet bench`: the kernel's batch calls from C with
 * nothing around them, so every other row can be read as a fraction of it.
 *
 *   reference recv SIZE RCVBUF MAX_SECONDS [gro|gro-rows]
 *       bind 127.0.0.1:0, print "ready PORT INODE", count datagrams with
 *       recvmmsg until SIGUSR1 arrives and the queue stays empty for
 *       IDLE_MS, print one JSON line, then wait for EOF on stdin (the
 *       runner reads the socket's drop counter meanwhile). If the drain
 *       runs out of time, what is still queued is taken uncounted and
 *       reported as "unread". gro: UDP_GRO on, into 64 buffers of 64 KiB;
 *       gro-rows: UDP_GRO on, into the memory a fastnet Batch of 1024 rows
 *       of SIZE bytes would be (each message spans the rows one 64 KiB
 *       buffer fills), so the receive touches the same memory as fastnet's.
 *   reference send SIZE PORT DURATION [gso] [connect] [rate=PPS]
 *       send SIZE-byte datagrams to 127.0.0.1:PORT with sendmmsg for
 *       DURATION seconds, print one JSON line. connect: connect(2) the
 *       socket and leave msg_name empty. rate=PPS: pace to PPS datagrams/s
 *       in bursts of one GSO buffer (PACED_BURST datagrams without gso).
 *
 * Exit status 3 with one line on stderr: the kernel lacks what the mode needs
 * (UDP_SEGMENT, UDP_GRO); the row is reported as skipped. Status 1: failure.
 *
 * Both sides work as a careful application would: 1024 messages per call
 * (UIO_MAXIOV), each from or into its own row of SIZE bytes (so the data
 * touched is the same as a fastnet Batch of 1024 rows, not one hot buffer).
 * The sockets are left unconnected and every message names its destination,
 * as fastnet's send_batch(batch, address) does.
 *
 * Shipped inside the Python package (fastnet/_bench/reference.c) and compiled
 * by `fastnet bench` with the system C compiler on first use.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

#define VLEN 1024                 /* recvmmsg/sendmmsg: at most UIO_MAXIOV per call */
#define GSO_SEGMENTS 64           /* segments per GSO buffer, as fastnet's gso=True */
#define MAX_UDP_PAYLOAD 65507     /* 65535 - 20 (IPv4) - 8 (UDP) */
#define GRO_VLEN 64               /* GRO buffers of up to 64 KiB each */
#define GRO_SLOT 65536
#define IDLE_MS 50                /* queue empty this long after SIGUSR1: drained */
#define DRAIN_MAX_S 3.0           /* bound on the drain after SIGUSR1 */
#define UNREAD_MAX_S 2.0          /* bound on taking what is left after a drain timeout */
#define PACED_BURST 64            /* datagrams per call when paced (loops.PACED_BURST) */
#define SPIN_S 200e-6             /* a paced wait shorter than this spins */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) { (void)sig; stop_requested = 1; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6
         + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void die(const char *what)
{
    fprintf(stderr, "reference: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void unsupported(const char *what)
{
    fprintf(stderr, "reference: %s is not supported here: %s\n", what, strerror(errno));
    exit(3);
}

static long parse_long(const char *text, long lo, long hi, const char *name)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || value < lo || value > hi) {
        fprintf(stderr, "reference: bad %s %s\n", name, text);
        exit(1);
    }
    return value;
}

static void *zalloc(size_t size)
{
    void *p = calloc(1, size);
    if (!p)
        die("calloc");
    return p;
}

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    return fd;
}

/* Datagrams in the n messages recvmmsg filled. */
static unsigned long long count_datagrams(struct mmsghdr *msgs, int n, int gro)
{
    if (!gro)
        return (unsigned long long)n;
    unsigned long long got = 0;
    for (int i = 0; i < n; i++) {
        unsigned int len = msgs[i].msg_len;
        /* udp(7): with UDP_GRO the kernel may hand several datagrams of
         * gso_size bytes (the last one shorter) as one buffer, and says so
         * in a UDP_GRO control message; without it, the buffer is one. */
        int gso_size = 0;
        struct cmsghdr *cm;
        for (cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm))
            if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO)
                memcpy(&gso_size, CMSG_DATA(cm), sizeof gso_size);
        got += (gso_size > 0 && len > 0) ? (len + gso_size - 1) / gso_size : 1;
    }
    return got;
}

static void reset_controls(struct mmsghdr *msgs, int vlen, unsigned char *controls, size_t control)
{
    for (int i = 0; i < vlen; i++) {
        msgs[i].msg_hdr.msg_control = controls + (size_t)i * control;
        msgs[i].msg_hdr.msg_controllen = control;
    }
}

static void receive(int size, int rcvbuf, double max_seconds, int gro, int gro_rows)
{
    int fd = udp_socket();
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addr_len = sizeof addr;

    /* socket(7): SO_RCVBUFFORCE lets a CAP_NET_ADMIN process exceed
     * net.core.rmem_max; without the capability it fails with EPERM and the
     * plain option is capped at rmem_max. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0
        && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
        die("SO_RCVBUF");
    int granted = 0;
    socklen_t granted_len = sizeof granted;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &granted_len) < 0)
        die("getsockopt SO_RCVBUF");
    if (gro) {
        int on = 1;
        if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) < 0)
            unsupported("UDP_GRO");
    }
    /* signal(7): recvmmsg on a socket with SO_RCVTIMEO set is "never
     * restarted after being interrupted by a signal handler, regardless of
     * the use of SA_RESTART; [it] always fail[s] with the error EINTR". So
     * SIGUSR1 ends a blocked wait at once, and the timeout makes the loop
     * notice an empty queue after IDLE_MS. */
    struct timeval idle = {.tv_sec = 0, .tv_usec = IDLE_MS * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle) < 0)
        die("SO_RCVTIMEO");
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (getsockname(fd, (struct sockaddr *)&addr, &addr_len) < 0)
        die("getsockname");
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat");

    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) < 0)
        die("sigaction");

    int vlen = gro ? GRO_VLEN : VLEN;
    size_t slot = gro ? GRO_SLOT : (size_t)size;
    if (gro_rows) {
        /* 1024 rows of SIZE bytes, as many rows per message as fill 64 KiB. */
        int rows_per_message = GRO_SLOT / size > 0 ? GRO_SLOT / size : 1;
        vlen = (VLEN + rows_per_message - 1) / rows_per_message;
        slot = (size_t)rows_per_message * size;
    }
    size_t control = CMSG_SPACE(sizeof(int));
    unsigned char *rows = zalloc((size_t)vlen * slot);
    unsigned char *controls = zalloc((size_t)vlen * control);
    struct iovec *iov = zalloc(vlen * sizeof *iov);
    struct mmsghdr *msgs = zalloc(vlen * sizeof *msgs);
    for (int i = 0; i < vlen; i++) {
        iov[i].iov_base = rows + (size_t)i * slot;
        iov[i].iov_len = slot;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    printf("ready %d %lu\n", ntohs(addr.sin_port), (unsigned long)st.st_ino);
    fflush(stdout);

    unsigned long long received = 0, first_count = 0;
    double t_first = 0, t_last = 0, drain_end = 0;
    int drain_timed_out = 0, timed_out = 0;
    double cpu0 = cpu_s();
    double hard_end = now_s() + max_seconds;
    for (;;) {
        if (stop_requested && drain_end == 0)
            drain_end = now_s() + DRAIN_MAX_S;
        if (gro)
            reset_controls(msgs, vlen, controls, control);
        /* recvmmsg(2): MSG_WAITFORONE "Turns on MSG_DONTWAIT after the first
         * message has been received": wait for one, take what is queued. */
        int n = recvmmsg(fd, msgs, vlen, MSG_WAITFORONE, NULL);
        double now = now_s();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                die("recvmmsg");
            if (stop_requested)
                break;                     /* the sender is done and the queue is empty */
            if (now > hard_end) {
                timed_out = 1;
                break;
            }
            continue;
        }
        unsigned long long got = count_datagrams(msgs, n, gro);
        if (received == 0) {
            t_first = now;
            first_count = got;
        }
        t_last = now;
        received += got;
        if (drain_end != 0 && now > drain_end) {
            drain_timed_out = 1;
            break;
        }
        if (now > hard_end) {
            timed_out = 1;
            break;
        }
    }
    double cpu = cpu_s() - cpu0;
    unsigned long long unread = 0;
    if (drain_timed_out || timed_out) {
        /* Not counted as received: taken so the runner can check the sum. */
        double unread_end = now_s() + UNREAD_MAX_S;
        while (now_s() < unread_end) {
            if (gro)
                reset_controls(msgs, vlen, controls, control);
            int n = recvmmsg(fd, msgs, vlen, MSG_DONTWAIT, NULL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            unread += count_datagrams(msgs, n, gro);
        }
    }
    /* t_last is CLOCK_MONOTONIC, the clock of every peer: the runner
     * compares it with the sender's t_end. */
    printf("{\"received\": %llu, \"first_count\": %llu, \"window_s\": %.9f, "
           "\"cpu_s\": %.6f, \"drain_timed_out\": %s, \"timed_out\": %s, \"rcvbuf\": %d, "
           "\"unread\": %llu, \"t_last\": %.9f}\n",
           received, first_count, t_last - t_first, cpu,
           drain_timed_out ? "true" : "false", timed_out ? "true" : "false", granted, unread, t_last);
    fflush(stdout);
    char sink[256];
    while (read(STDIN_FILENO, sink, sizeof sink) > 0)
        ;
}

/* nanosleep(2) ends "either [when] at least the time specified ... has
 * elapsed, or [on] the delivery of a signal that triggers the invocation of a
 * handler": an interrupted or overlong sleep is made good by the spin after it,
 * which ends at the due time whatever the sleep did. */
static void wait_until(double due)
{
    double left = due - now_s();
    if (left > SPIN_S) {
        double sleep_s = left - SPIN_S / 2;
        struct timespec ts = {.tv_sec = (time_t)sleep_s,
                              .tv_nsec = (long)((sleep_s - (time_t)sleep_s) * 1e9)};
        nanosleep(&ts, NULL);
    }
    while (now_s() < due)
        ;
}

static void send_for(int size, int port, double duration, int gso, int connected, double rate)
{
    int fd = udp_socket();
    struct sockaddr_in dest = {.sin_family = AF_INET, .sin_port = htons(port)};
    dest.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A loopback source, never all interfaces (an unbound socket would be
     * bound to the wildcard address by its first send). */
    struct sockaddr_in source = {.sin_family = AF_INET, .sin_port = 0};
    source.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&source, sizeof source) < 0)
        die("bind");
    /* udp(7): after connect(2) "datagrams can now be sent using send(2) or
     * write(2) without specifying a destination address"; the kernel then
     * keeps the route too, so a connected sender skips a lookup per call. */
    if (connected && connect(fd, (struct sockaddr *)&dest, sizeof dest) < 0)
        die("connect");

    int segments = 1;
    if (gso) {
        /* udp(7), UDP_SEGMENT: each buffer is cut into gso_size datagrams by
         * the stack (or the device); a buffer must still fit one IP packet
         * (65535 bytes), so large datagrams get fewer than 64 segments. */
        segments = MAX_UDP_PAYLOAD / size;
        if (segments > GSO_SEGMENTS)
            segments = GSO_SEGMENTS;
        if (segments < 1)
            segments = 1;
        int gso_size = size;
        if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso_size, sizeof gso_size) < 0)
            unsupported("UDP_SEGMENT");
    }
    int vlen = gso ? (VLEN + segments - 1) / segments : VLEN;
    /* Paced: one burst per call, of one GSO buffer or PACED_BURST datagrams. */
    int burst = rate > 0 ? (gso ? 1 : PACED_BURST) : vlen;
    size_t buffer = (size_t)size * segments;
    /* A flood call sends VLEN datagrams, as fastnet's send_batch of 1024 rows
     * does: whole buffers, then a shorter last one where `segments` does not
     * divide VLEN (1024 B: 16 x 63 + 16), which the kernel cuts at gso_size
     * like the others. Sending whole buffers only (17 x 63 = 1071 a call)
     * would give this sender 4.6 % fewer messages per datagram than the
     * fastnet sender it is compared with. The paced burst is the first
     * buffer, always whole. */
    size_t last = gso ? (size_t)(VLEN - (vlen - 1) * segments) * size : buffer;
    unsigned long long per_call = gso ? (unsigned long long)VLEN : (unsigned long long)vlen;
    unsigned char *rows = zalloc((size_t)vlen * buffer);
    struct iovec *iov = zalloc(vlen * sizeof *iov);
    struct mmsghdr *msgs = zalloc(vlen * sizeof *msgs);
    for (int i = 0; i < vlen; i++) {
        memset(rows + (size_t)i * buffer, i & 0xff, buffer);
        iov[i].iov_base = rows + (size_t)i * buffer;
        iov[i].iov_len = i == vlen - 1 ? last : buffer;
        msgs[i].msg_hdr.msg_name = connected ? NULL : &dest;
        msgs[i].msg_hdr.msg_namelen = connected ? 0 : sizeof dest;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }

    unsigned long long sent = 0;
    double cpu0 = cpu_s();
    double start = now_s(), end = start + duration, now = start;
    while (now < end) {
        if (rate > 0) {
            double due = start + sent / rate;
            if (due >= end)
                break;          /* the next burst would fall after the window */
            wait_until(due);
        }
        int n = sendmmsg(fd, msgs, burst, 0);
        now = now_s();
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN)
                continue;
            if (gso && (errno == EIO || errno == EINVAL))
                unsupported("UDP GSO on this route");
            die("sendmmsg");
        }
        /* n messages: whole buffers, and the short last one when n is all. */
        sent += n == vlen ? per_call : (unsigned long long)n * segments;
    }
    double cpu = cpu_s() - cpu0;
    printf("{\"sent\": %llu, \"wall_s\": %.9f, \"cpu_s\": %.6f, \"t_end\": %.9f}\n",
           sent, now - start, cpu, now);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "recv") == 0) {
        int gro_rows = argc > 5 && strcmp(argv[5], "gro-rows") == 0;
        int gro = gro_rows || (argc > 5 && strcmp(argv[5], "gro") == 0);
        receive((int)parse_long(argv[2], 1, MAX_UDP_PAYLOAD, "size"),
                (int)parse_long(argv[3], 1, 0x7fffffff, "rcvbuf"),
                (double)parse_long(argv[4], 1, 86400, "max seconds"), gro, gro_rows);
        return 0;
    }
    if (argc >= 5 && strcmp(argv[1], "send") == 0) {
        int gso = 0, connected = 0;
        double rate = 0;
        char *end;
        for (int i = 5; i < argc; i++) {
            if (strcmp(argv[i], "gso") == 0)
                gso = 1;
            else if (strcmp(argv[i], "connect") == 0)
                connected = 1;
            else if (strncmp(argv[i], "rate=", 5) == 0) {
                rate = strtod(argv[i] + 5, &end);
                if (*end != '\0' || !(rate > 0 && rate < 1e10)) {
                    fprintf(stderr, "reference: bad %s\n", argv[i]);
                    return 1;
                }
            } else {
                fprintf(stderr, "reference: unknown option %s\n", argv[i]);
                return 1;
            }
        }
        double duration = strtod(argv[4], &end);
        if (*end != '\0' || !(duration > 0 && duration < 86400)) {
            fprintf(stderr, "reference: bad duration %s\n", argv[4]);
            return 1;
        }
        send_for((int)parse_long(argv[2], 1, MAX_UDP_PAYLOAD, "size"),
                 (int)parse_long(argv[3], 1, 65535, "port"), duration, gso, connected, rate);
        return 0;
    }
    fprintf(stderr, "usage: %s recv SIZE RCVBUF MAX_SECONDS [gro|gro-rows] | "
                    "send SIZE PORT DURATION [gso] [connect] [rate=PPS]\n", argv[0]);
    return 1;
}
