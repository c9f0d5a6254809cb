/*
 * lc-netprobe: what a link really gives, measured over TCP.
 *
 *   lc-netprobe server [PORT]                       (default 7711; serves one client, exits)
 *   lc-netprobe client ADDR [PORT] [--pings N] [--bytes B]
 *
 * The client first bounces one byte N times (TCP_NODELAY both ways) and
 * reports the median round trip, then streams B bytes (default 32 MiB) and
 * reports the rate from the first byte sent to the server's acknowledgement
 * of the last (one more round trip, which is subtracted; a transfer too short
 * to measure prints rate_mbit=nan). Output, one line:
 *   rtt_ms=X rate_mbit=Y bytes=B
 * Nothing waits forever: the server gives up after 60 s without a client,
 * either end after 30 s without progress, and the client retries a refused
 * connection for 5 s (the server may still be starting).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setns, accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
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

/* Reads and writes give up after 30 s without progress. */
static void probe_timeouts(int fd)
{
    struct timeval tv = { .tv_sec = 30 };
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int probe_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int one = 1;
    if (argc < 2 || (strcmp(argv[1], "server") && (strcmp(argv[1], "client") || argc < 3))) {
        fprintf(stderr, "usage: lc-netprobe server [PORT] | client ADDR [PORT] [--pings N] "
                        "[--bytes B]\n");
        return 2;
    }
    if (!strcmp(argv[1], "server")) {
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_port = htons(argc > 2 ? (uint16_t)atoi(argv[2]) : 7711) };
        int ls = socket(AF_INET, SOCK_STREAM, 0);
        if (ls < 0) return 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1)) {
            perror("lc-netprobe: listen");
            return 1;
        }
        printf("listening\n");
        fflush(stdout);
        struct pollfd pfd = { .fd = ls, .events = POLLIN };
        if (poll(&pfd, 1, 60000) != 1) {
            fprintf(stderr, "lc-netprobe: no client within 60 s\n");
            return 1;
        }
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) return 1;
        probe_timeouts(fd);
        uint64_t hdr[2]; /* pings, bytes */
        if (probe_full(fd, hdr, sizeof(hdr), 1)) return 1;
        char c, *buf = malloc(1 << 20);
        if (buf == NULL) return 1;
        for (uint64_t i = 0; i < hdr[0]; i++)
            if (probe_full(fd, &c, 1, 1) || probe_full(fd, &c, 1, 0)) return 1;
        for (uint64_t got = 0; got < hdr[1];) {
            ssize_t n = read(fd, buf, 1 << 20);
            if (n <= 0) return 1;
            got += (uint64_t)n;
        }
        return probe_full(fd, &c, 1, 0) ? 1 : 0;
    }
    int port = 7711;
    uint64_t pings = 20, bytes = 32u << 20;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--pings") && i + 1 < argc)
            pings = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc)
            bytes = strtoull(argv[++i], NULL, 10);
        else
            port = atoi(argv[i]);
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (pings == 0 || inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        perror("lc-netprobe: connect");
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint64_t hdr[2] = { pings, bytes };
    double *rtt = malloc(sizeof(double) * pings);
    char c = 'x', *buf = calloc(1, 1 << 20);
    if (rtt == NULL || buf == NULL) return 1;
    if (probe_full(fd, hdr, sizeof(hdr), 0)) return 1;
    for (uint64_t i = 0; i < pings; i++) {
        double t0 = probe_now();
        if (probe_full(fd, &c, 1, 0) || probe_full(fd, &c, 1, 1)) return 1;
        rtt[i] = probe_now() - t0;
    }
    qsort(rtt, pings, sizeof(double), probe_cmp);
    double med = rtt[pings / 2], t0 = probe_now();
    for (uint64_t sent = 0; sent < bytes;) {
        size_t k = bytes - sent < (1u << 20) ? (size_t)(bytes - sent) : (1u << 20);
        if (probe_full(fd, buf, k, 0)) return 1;
        sent += k;
    }
    if (probe_full(fd, &c, 1, 1)) return 1;
    double t = probe_now() - t0 - med;
    if (t > med) /* at least as long as a round trip, or the rate means nothing */
        printf("rtt_ms=%.3f rate_mbit=%.1f bytes=%llu\n", med * 1e3, (double)bytes * 8 / t / 1e6,
               (unsigned long long)bytes);
    else
        printf("rtt_ms=%.3f rate_mbit=nan bytes=%llu\n", med * 1e3, (unsigned long long)bytes);
    return 0;
}
