/*
 * lc-netprobe: what a link really gives, measured over TCP.
 *
 *   lc-netprobe server [PORT]                       (default 7711; serves one client run, exits)
 *   lc-netprobe client ADDR [PORT] [--pings N] [--bytes B] [--streams S]
 *
 * The client opens S connections (default 1, at most 64), each starting with
 * a header "stream i of S" from which the server learns how many to accept.
 * On the first it bounces one byte N times (TCP_NODELAY both ways) and
 * reports the median round trip; then it streams B bytes in total (default
 * 32 MiB) over all S at once (non-blocking sockets and poll: whichever
 * connection has room takes the next bytes, so they finish together), and
 * reports the rate from the first byte sent to the server's acknowledgement
 * of the last byte on all streams (one more round trip, which is subtracted;
 * a transfer too short to measure prints rate_mbit=nan), and the steady
 * rate: the server times the second half of the bytes as they arrive, so
 * slow start and the first round trip do not count, and sends it back
 * after the acknowledgement. One stream can go
 * no faster than its window allows (the kernel's tcp_wmem max per RTT): on a
 * long fat link use several to measure the link, not the window.
 * Output, one line:
 *   rtt_ms=X rate_mbit=Y steady_mbit=Z bytes=B streams=S
 * Nothing waits forever: the server gives up after 60 s without a client and
 * after 30 s waiting for each further stream, either end after 30 s without
 * progress, and the client retries a refused connection for 5 s (the server
 * may still be starting).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setns, accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_MAX_STREAMS 64
#define PROBE_BUF (1u << 20)
#define PROBE_IDLE_MS 30000 /* no progress for this long: give up */

/* What each connection sends first (host byte order, like the rest). */
typedef struct {
    uint64_t pings;   /* round trips on this connection (only stream 0 has any) */
    uint64_t bytes;   /* total over all streams */
    uint64_t stream;  /* this is stream ... */
    uint64_t streams; /* ... of this many */
} probe_hdr_t;

static double probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int probe_full(int fd, void *buf, size_t len, int rd)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = rd ? read(fd, p, len) : write(fd, p, len);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads, writes and connect give up after 30 s without progress. */
static void probe_timeouts(int fd)
{
    struct timeval tv = { .tv_sec = PROBE_IDLE_MS / 1000 };
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int probe_blocking(int fd, int blocking)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    return fcntl(fd, F_SETFL, blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK);
}

/* poll() that gives up after 30 s without an event: > 0 events, -1 error or timeout. */
static int probe_poll(struct pollfd *pf, int n)
{
    for (;;) {
        int r = poll(pf, (nfds_t)n, PROBE_IDLE_MS);
        if (r > 0) return r;
        if (r == 0) {
            fprintf(stderr, "lc-netprobe: no progress for 30 s\n");
            return -1;
        }
        if (errno != EINTR) {
            perror("lc-netprobe: poll");
            return -1;
        }
    }
}

/* A connection to sa; a refused one is retried for 5 s (the server may still be starting). */
static int probe_connect(const struct sockaddr_in *sa)
{
    double give_up = probe_now() + 5;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return -1;
        probe_timeouts(fd);
        if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) return fd;
        int err = errno;
        close(fd);
        errno = err;
        if (err != ECONNREFUSED || probe_now() > give_up) return -1;
        struct timespec pause = { .tv_nsec = 100 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
}

static int probe_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int probe_server(uint16_t port)
{
    int one = 1, fd[PROBE_MAX_STREAMS], eof[PROBE_MAX_STREAMS] = { 0 };
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) return 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, PROBE_MAX_STREAMS)) {
        perror("lc-netprobe: listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    /* Accept until every stream the first header announced has come. */
    probe_hdr_t run = { 0 };
    for (int i = 0; i < PROBE_MAX_STREAMS; i++) fd[i] = -1;
    for (uint64_t have = 0; have == 0 || have < run.streams; have++) {
        struct pollfd pfd = { .fd = ls, .events = POLLIN };
        if (poll(&pfd, 1, have ? PROBE_IDLE_MS : 60000) != 1) {
            if (have)
                fprintf(stderr, "lc-netprobe: stream %llu of %llu not there within 30 s\n",
                        (unsigned long long)have + 1, (unsigned long long)run.streams);
            else
                fprintf(stderr, "lc-netprobe: no client within 60 s\n");
            return 1;
        }
        int c = accept(ls, NULL, NULL);
        if (c < 0) return 1;
        probe_timeouts(c);
        probe_hdr_t h;
        if (probe_full(c, &h, sizeof(h), 1)) return 1;
        if (h.streams < 1 || h.streams > PROBE_MAX_STREAMS || h.stream >= h.streams ||
            fd[h.stream] >= 0 || (have && (h.streams != run.streams || h.bytes != run.bytes))) {
            fprintf(stderr, "lc-netprobe: bad stream header\n");
            return 1;
        }
        if (have == 0) run = h;
        if (h.stream == 0) run.pings = h.pings;
        fd[h.stream] = c;
    }
    int n = (int)run.streams;
    char c, *buf = malloc(PROBE_BUF);
    if (buf == NULL) return 1;
    for (uint64_t i = 0; i < run.pings; i++)
        if (probe_full(fd[0], &c, 1, 1) || probe_full(fd[0], &c, 1, 0)) return 1;
    /* Every stream up to its end (the client shuts its side down when all is sent). */
    struct pollfd pf[PROBE_MAX_STREAMS];
    int idx[PROBE_MAX_STREAMS];
    uint64_t got = 0;
    double t_half = 0, steady = -1;
    uint64_t got_half = 0; /* bytes in by t_half: only those after it are timed */
    for (int i = 0; i < n; i++)
        if (probe_blocking(fd[i], 0)) return 1;
    for (int open = n; open > 0;) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!eof[i]) {
                pf[k] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
                idx[k++] = i;
            }
        if (probe_poll(pf, k) < 0) return 1;
        for (int j = 0; j < k; j++) {
            if (!pf[j].revents) continue;
            ssize_t r = read(pf[j].fd, buf, PROBE_BUF);
            if (r > 0) {
                uint64_t before = got;
                got += (uint64_t)r;
                if (before < run.bytes / 2 && got >= run.bytes / 2) {
                    t_half = probe_now();
                    got_half = got;
                } else if (got == run.bytes && t_half > 0 && got > got_half) {
                    /* At least one read after t_half, or the rate means nothing. */
                    steady = (double)(got - got_half) * 8 / (probe_now() - t_half) / 1e6;
                }
            } else if (r == 0)
                eof[idx[j]] = 1, open--;
            else if (errno != EAGAIN && errno != EINTR) {
                perror("lc-netprobe: read");
                return 1;
            }
        }
    }
    if (got != run.bytes) {
        fprintf(stderr, "lc-netprobe: got %llu bytes of %llu\n", (unsigned long long)got,
                (unsigned long long)run.bytes);
        return 1;
    }
    for (int i = 0; i < n; i++) /* the acknowledgement: all arrived */
        if (probe_blocking(fd[i], 1) || probe_full(fd[i], &c, 1, 0)) return 1;
    /* Then the steady rate (Mbit/s, -1 if unmeasurable), as text on stream 0. */
    char msg[32];
    memset(msg, 0, sizeof(msg));
    snprintf(msg, sizeof(msg), "%.3f", steady);
    if (probe_full(fd[0], msg, sizeof(msg), 0)) return 1;
    return 0;
}

static int probe_usage(void)
{
    fprintf(stderr, "usage: lc-netprobe server [PORT] | client ADDR [PORT] [--pings N] "
                    "[--bytes B] [--streams S]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "server") && (strcmp(argv[1], "client") || argc < 3)))
        return probe_usage();
    if (!strcmp(argv[1], "server")) return probe_server(argc > 2 ? (uint16_t)atoi(argv[2]) : 7711);
    int port = 7711, n = 1;
    uint64_t pings = 20, bytes = 32u << 20;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--pings") && i + 1 < argc)
            pings = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc)
            bytes = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--streams") && i + 1 < argc)
            n = atoi(argv[++i]);
        else
            port = atoi(argv[i]);
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (pings == 0 || n < 1 || n > PROBE_MAX_STREAMS ||
        inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
        return probe_usage();
    int fd[PROBE_MAX_STREAMS], done[PROBE_MAX_STREAMS] = { 0 }; /* 1 all sent, 2 acknowledged */
    for (int i = 0; i < n; i++) {
        probe_hdr_t h = { i ? 0 : pings, bytes, (uint64_t)i, (uint64_t)n };
        fd[i] = probe_connect(&sa);
        if (fd[i] < 0) {
            perror("lc-netprobe: connect");
            return 1;
        }
        if (probe_full(fd[i], &h, sizeof(h), 0)) return 1;
    }
    double *rtt = malloc(sizeof(double) * pings);
    char c = 'x', *buf = calloc(1, PROBE_BUF);
    if (rtt == NULL || buf == NULL) return 1;
    for (uint64_t i = 0; i < pings; i++) {
        double t0 = probe_now();
        if (probe_full(fd[0], &c, 1, 0) || probe_full(fd[0], &c, 1, 1)) return 1;
        rtt[i] = probe_now() - t0;
    }
    qsort(rtt, pings, sizeof(double), probe_cmp);
    for (int i = 0; i < n; i++)
        if (probe_blocking(fd[i], 0)) return 1;
    /* Whichever stream has room takes the next bytes; once all are sent each stream is shut
     * down for writing and waits for the server's byte saying everything arrived. */
    struct pollfd pf[PROBE_MAX_STREAMS];
    int idx[PROBE_MAX_STREAMS];
    uint64_t left = bytes;
    double med = rtt[pings / 2], t0 = probe_now();
    for (int waiting = n; waiting > 0;) {
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (done[i] == 2) continue;
            if (left == 0 && done[i] == 0) {
                if (shutdown(fd[i], SHUT_WR)) {
                    perror("lc-netprobe: shutdown");
                    return 1;
                }
                done[i] = 1;
            }
            pf[k] = (struct pollfd){ .fd = fd[i], .events = left ? POLLOUT : POLLIN };
            idx[k++] = i;
        }
        if (probe_poll(pf, k) < 0) return 1;
        for (int j = 0; j < k; j++) {
            if (!pf[j].revents) continue;
            ssize_t r;
            if (pf[j].events == POLLOUT) {
                if (left == 0) continue; /* another stream took the rest */
                r = send(pf[j].fd, buf, left < PROBE_BUF ? (size_t)left : PROBE_BUF, MSG_NOSIGNAL);
                if (r > 0) left -= (uint64_t)r;
            } else {
                r = read(pf[j].fd, &c, 1);
                if (r > 0) done[idx[j]] = 2, waiting--;
            }
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                fprintf(stderr, "lc-netprobe: stream %d: %s\n", idx[j],
                        r == 0 ? "closed before the acknowledgement" : strerror(errno));
                return 1;
            }
        }
    }
    double t = probe_now() - t0 - med;
    char msg[32];
    if (probe_blocking(fd[0], 1) || probe_full(fd[0], msg, sizeof(msg), 1)) {
        fprintf(stderr, "lc-netprobe: no steady rate from the server\n");
        return 1;
    }
    msg[sizeof(msg) - 1] = '\0';
    double steady = strtod(msg, NULL);
    printf("rtt_ms=%.3f", med * 1e3);
    if (t > med) /* at least as long as a round trip, or the rate means nothing */
        printf(" rate_mbit=%.1f", (double)bytes * 8 / t / 1e6);
    else
        printf(" rate_mbit=nan");
    if (steady > 0)
        printf(" steady_mbit=%.1f", steady);
    else
        printf(" steady_mbit=nan");
    printf(" bytes=%llu streams=%d\n", (unsigned long long)bytes, n);
    return 0;
}
