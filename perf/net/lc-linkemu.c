/*
 * lc-linkemu: a user-space link emulator on TUN devices, for the delay the
 * kernel here cannot add (no netem). Each emulated host is a network
 * namespace whose only interface to the others is a TUN device owned by
 * this process; every IPv4 packet a host sends comes out of its TUN fd here,
 * crosses the emulated network and is written into the destination host's
 * TUN fd, so TCP on both ends sees a real round-trip time.
 *
 *   lc-linkemu --host NETNS:ADDR [--host NETNS:ADDR ...] [--delay-ms D] [--jitter-ms J]
 *              [--rate-mbit R] [--loss PCT] [--queue-kb Q] [--mtu M] [--seed S]
 *
 * --host names a namespace (as `ip netns` does, /run/netns/NAME) and the
 * IPv4 address the host has there; lc-linkemu creates the TUN device
 * "lcemu0" inside it (the script gives it the address and brings it up).
 *
 * The network: every host has a full-duplex access link of R Mbit/s to a
 * core with one-way delay D (so RTT = 2D). A packet from host a to host b
 * waits in a's uplink queue (drop-tail at Q KiB, like a router port) until
 * it has been serialized at R, flies for D plus a uniform jitter in [0, J]
 * (never overtaking the packet before it: TCP takes reordering for loss; so
 * under a steady stream the delay tends to D + J, as with netem and a rate),
 * is dropped with probability PCT/100, then waits in b's downlink queue
 * (same limit) and is serialized again at R. R = 0 means unlimited. Rates
 * count IP packet bytes (no link-layer framing). Packets for unknown
 * addresses, and anything but IPv4, are dropped and counted.
 *
 * It sleeps in epoll_wait with a timerfd armed for the next packet due, so
 * it uses CPU per packet, never while idle. SIGINT/SIGTERM end it (the TUN
 * devices vanish with it); SIGUSR1 prints the counters, one line per host:
 *   lc-linkemu: host=NETNS sent=N delivered=N drop_up=N drop_loss=N drop_down=N
 *               drop_write=N unknown=N early_us=X
 * (early_us: how early timers are armed to make up for their lateness, at
 * most 100 us and a quarter of the delay; see the main loop).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setns, accept4 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define EMU_MAX_HOSTS 16
#define EMU_MAX_MTU 65535
#define EMU_MAX_EARLY_NS 100000ull /* timer-lateness compensation: at most 100 us */

typedef struct emu_pkt {
    struct emu_pkt *next;
    uint64_t due_ns; /* when it may leave the current stage */
    uint32_t len;
    int dst;
    uint8_t data[];
} emu_pkt_t;

typedef struct {
    emu_pkt_t *head, *tail;
    uint64_t bytes;   /* queued */
    uint64_t free_ns; /* when the link is free to start the next packet */
} emu_fifo_t;

typedef struct {
    char netns[64];
    struct in_addr addr;
    int fd;
    emu_fifo_t up, air, down; /* uplink queue, in flight (delay), downlink queue */
    uint64_t tx_pkts, rx_pkts, drop_up, drop_loss, drop_down, drop_write, drop_unknown;
} emu_host_t;

typedef struct {
    emu_host_t host[EMU_MAX_HOSTS];
    int nhosts;
    double rate_bps; /* 0: unlimited */
    uint64_t delay_ns, jitter_ns, queue_bytes;
    double loss;
    uint32_t mtu;
    uint64_t late_ns; /* current timer-lateness compensation (stats) */
    uint64_t rng;
    uint8_t *scratch; /* one MTU: a packet is read here, then copied into a buffer of its size */
} emu_t;

static volatile sig_atomic_t emu_stop, emu_dump;

static void emu_on_signal(int sig)
{
    if (sig == SIGUSR1)
        emu_dump = 1;
    else
        emu_stop = 1;
}

static uint64_t emu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t emu_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double emu_unit(uint64_t *s)
{
    return (double)(emu_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

static void emu_push(emu_fifo_t *q, emu_pkt_t *p)
{
    p->next = NULL;
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    q->bytes += p->len;
}

static emu_pkt_t *emu_pop(emu_fifo_t *q)
{
    emu_pkt_t *p = q->head;
    q->head = p->next;
    if (q->head == NULL) q->tail = NULL;
    q->bytes -= p->len;
    return p;
}

/* Serialization time of len bytes at the link rate. */
static uint64_t emu_tx_ns(const emu_t *e, uint32_t len)
{
    return e->rate_bps > 0 ? (uint64_t)((double)len * 8.0 * 1e9 / e->rate_bps) : 0;
}

/* Queue p on link q at time now: it leaves when the link has sent everything before it
 * and p itself. */
static void emu_enqueue_link(const emu_t *e, emu_fifo_t *q, emu_pkt_t *p, uint64_t now)
{
    uint64_t start = q->free_ns > now ? q->free_ns : now;
    q->free_ns = start + emu_tx_ns(e, p->len);
    p->due_ns = q->free_ns;
    emu_push(q, p);
}

/* Create the TUN device "lcemu0" inside network namespace netns; its fd (non-blocking). */
static int emu_tun_in(const char *netns, uint32_t mtu)
{
    char path[128];
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), ns, fd = -1;
    snprintf(path, sizeof(path), "/run/netns/%s", netns);
    ns = open(path, O_RDONLY | O_CLOEXEC);
    if (self < 0 || ns < 0) {
        fprintf(stderr, "lc-linkemu: namespace %s: %s\n", netns, strerror(errno));
        goto out;
    }
    if (setns(ns, CLONE_NEWNET) != 0) {
        fprintf(stderr, "lc-linkemu: setns %s: %s\n", netns, strerror(errno));
        goto out;
    }
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        snprintf(ifr.ifr_name, IFNAMSIZ, "lcemu0");
        if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
            fprintf(stderr, "lc-linkemu: TUNSETIFF in %s: %s\n", netns, strerror(errno));
            close(fd);
            fd = -1;
        } else {
            int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            ifr.ifr_mtu = (int)mtu;
            if (s < 0 || ioctl(s, SIOCSIFMTU, &ifr) != 0)
                fprintf(stderr, "lc-linkemu: MTU %u in %s: %s\n", mtu, netns, strerror(errno));
            if (s >= 0) close(s);
        }
    } else {
        fprintf(stderr, "lc-linkemu: /dev/net/tun: %s\n", strerror(errno));
    }
    if (setns(self, CLONE_NEWNET) != 0) {
        fprintf(stderr, "lc-linkemu: cannot return to my namespace: %s\n", strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
out:
    if (self >= 0) close(self);
    if (ns >= 0) close(ns);
    return fd;
}

static int emu_find(const emu_t *e, const uint8_t *ip, uint32_t len)
{
    struct in_addr dst;
    if (len < 20 || (ip[0] >> 4) != 4) return -1;
    memcpy(&dst, ip + 16, 4);
    for (int i = 0; i < e->nhosts; i++)
        if (e->host[i].addr.s_addr == dst.s_addr) return i;
    return -1;
}

/* Read everything host h has sent and queue it on its uplink. A queued packet takes a buffer
 * of its own size, so the queue limits bound the memory too. */
static void emu_read(emu_t *e, int h)
{
    emu_host_t *src = &e->host[h];
    for (;;) {
        ssize_t n = read(src->fd, e->scratch, e->mtu);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) {
            fprintf(stderr, "lc-linkemu: read from %s: %s\n", src->netns,
                    n < 0 ? strerror(errno) : "end of file");
            emu_stop = 1; /* a TUN fd that fails stays readable: stop rather than spin */
            return;
        }
        int dst = emu_find(e, e->scratch, (uint32_t)n);
        if (dst < 0) {
            src->drop_unknown++;
            continue;
        }
        if (e->queue_bytes && src->up.bytes + (uint64_t)n > e->queue_bytes) {
            src->drop_up++;
            continue;
        }
        emu_pkt_t *p = malloc(sizeof(*p) + (size_t)n);
        if (p == NULL) {
            src->drop_up++;
            continue;
        }
        memcpy(p->data, e->scratch, (size_t)n);
        p->len = (uint32_t)n;
        p->dst = dst;
        src->tx_pkts++;
        emu_enqueue_link(e, &src->up, p, emu_now());
    }
}

/* Move every packet that is due to its next stage; the earliest time anything is due next
 * (UINT64_MAX: nothing queued). */
static uint64_t emu_advance(emu_t *e, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < e->nhosts; i++) {
        emu_host_t *h = &e->host[i];
        while (h->up.head && h->up.head->due_ns <= now) { /* serialized: into the air */
            emu_pkt_t *p = emu_pop(&h->up);
            if (e->loss > 0 && emu_unit(&e->rng) * 100.0 < e->loss) {
                h->drop_loss++;
                free(p);
                continue;
            }
            uint64_t due =
                p->due_ns + e->delay_ns +
                (e->jitter_ns ? (uint64_t)(emu_unit(&e->rng) * (double)e->jitter_ns) : 0);
            if (h->air.tail && due < h->air.tail->due_ns)
                due = h->air.tail->due_ns; /* no overtaking */
            p->due_ns = due;
            emu_push(&h->air, p);
        }
    }
    for (;;) { /* landed packets join their receiver's downlink in the order they land */
        emu_host_t *first = NULL;
        for (int i = 0; i < e->nhosts; i++) {
            emu_host_t *h = &e->host[i];
            if (h->air.head && h->air.head->due_ns <= now &&
                (first == NULL || h->air.head->due_ns < first->air.head->due_ns))
                first = h;
        }
        if (first == NULL) break;
        emu_pkt_t *p = emu_pop(&first->air);
        emu_host_t *to = &e->host[p->dst];
        if (e->queue_bytes && to->down.bytes + p->len > e->queue_bytes) {
            to->drop_down++; /* several senders into one downlink: its queue overflows */
            free(p);
            continue;
        }
        emu_enqueue_link(e, &to->down, p, p->due_ns);
    }
    for (int i = 0; i < e->nhosts; i++) {
        emu_host_t *h = &e->host[i];
        while (h->down.head && h->down.head->due_ns <= now) {
            emu_pkt_t *p = emu_pop(&h->down);
            if (write(h->fd, p->data, p->len) == (ssize_t)p->len)
                h->rx_pkts++;
            else
                h->drop_write++; /* the receiving kernel's TUN queue is full, or it is down */
            free(p);
        }
    }
    for (int i = 0; i < e->nhosts; i++) {
        emu_host_t *h = &e->host[i];
        emu_fifo_t *q[3] = { &h->up, &h->air, &h->down };
        for (int k = 0; k < 3; k++)
            if (q[k]->head && q[k]->head->due_ns < next) next = q[k]->head->due_ns;
    }
    return next;
}

static void emu_stats(const emu_t *e)
{
    for (int i = 0; i < e->nhosts; i++) {
        const emu_host_t *h = &e->host[i];
        fprintf(stderr,
                "lc-linkemu: host=%s sent=%llu delivered=%llu drop_up=%llu drop_loss=%llu "
                "drop_down=%llu drop_write=%llu unknown=%llu early_us=%.1f\n",
                h->netns, (unsigned long long)h->tx_pkts, (unsigned long long)h->rx_pkts,
                (unsigned long long)h->drop_up, (unsigned long long)h->drop_loss,
                (unsigned long long)h->drop_down, (unsigned long long)h->drop_write,
                (unsigned long long)h->drop_unknown, (double)e->late_ns / 1e3);
    }
}

static void emu_usage(void)
{
    fprintf(stderr, "usage: lc-linkemu --host NETNS:ADDR [--host ...] [--delay-ms D] "
                    "[--jitter-ms J] [--rate-mbit R]\n"
                    "                  [--loss PCT] [--queue-kb Q] [--mtu M] [--seed S]\n");
}

int main(int argc, char **argv)
{
    static emu_t e;
    double delay_ms = 0, jitter_ms = 0, rate_mbit = 0, queue_kb = 0;
    e.mtu = 1500;
    e.rng = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            emu_usage();
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "lc-linkemu: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--host")) {
            const char *colon = strchr(v, ':');
            emu_host_t *h = &e.host[e.nhosts];
            if (e.nhosts == EMU_MAX_HOSTS || colon == NULL ||
                (size_t)(colon - v) >= sizeof(h->netns) ||
                inet_pton(AF_INET, colon + 1, &h->addr) != 1) {
                fprintf(stderr, "lc-linkemu: bad --host %s (NETNS:IPV4, at most %d)\n", v,
                        EMU_MAX_HOSTS);
                return 2;
            }
            memcpy(h->netns, v, (size_t)(colon - v));
            e.nhosts++;
        } else if (!strcmp(a, "--delay-ms"))
            delay_ms = atof(v);
        else if (!strcmp(a, "--jitter-ms"))
            jitter_ms = atof(v);
        else if (!strcmp(a, "--rate-mbit"))
            rate_mbit = atof(v);
        else if (!strcmp(a, "--loss"))
            e.loss = atof(v);
        else if (!strcmp(a, "--queue-kb"))
            queue_kb = atof(v);
        else if (!strcmp(a, "--mtu"))
            e.mtu = (uint32_t)atoi(v);
        else if (!strcmp(a, "--seed"))
            e.rng = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "lc-linkemu: unknown option %s\n", a);
            emu_usage();
            return 2;
        }
    }
    if (e.nhosts < 2 || delay_ms < 0 || jitter_ms < 0 || rate_mbit < 0 || queue_kb < 0 ||
        e.loss < 0 || e.loss > 100 || e.mtu < 576 || e.mtu > EMU_MAX_MTU ||
        (queue_kb > 0 && queue_kb * 1024 < e.mtu)) {
        emu_usage();
        return 2;
    }
    e.delay_ns = (uint64_t)(delay_ms * 1e6);
    e.jitter_ns = (uint64_t)(jitter_ms * 1e6);
    e.rate_bps = rate_mbit * 1e6;
    /* Default queue: twice the bandwidth-delay product of the round trip, at least 64 KiB. */
    e.queue_bytes = queue_kb > 0     ? (uint64_t)(queue_kb * 1024)
                    : e.rate_bps > 0 ? (uint64_t)(e.rate_bps / 8 * 4 * delay_ms / 1e3) + 65536
                                     : 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ep < 0 || tfd < 0) {
        perror("lc-linkemu: epoll/timerfd");
        return 1;
    }
    for (int i = 0; i < e.nhosts; i++) {
        e.host[i].fd = emu_tun_in(e.host[i].netns, e.mtu);
        if (e.host[i].fd < 0) return 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, e.host[i].fd, &ev);
    }
    struct epoll_event tev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    /* The signals stay blocked except inside epoll_pwait, so none slips in between the
     * check of emu_stop and the wait. */
    struct sigaction sa;
    sigset_t block, during;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = emu_on_signal;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &during);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    e.scratch = malloc(e.mtu);
    if (e.scratch == NULL) return 1;
    printf("lc-linkemu: %d hosts, one-way delay %.3f ms (+ jitter %.3f), %.1f Mbit/s, loss "
           "%.2f%%, queue %llu B, MTU %u: ready\n",
           e.nhosts, delay_ms, jitter_ms, rate_mbit, e.loss, (unsigned long long)e.queue_bytes,
           e.mtu);
    fflush(stdout);
    /* A timer fires some tens of us after the time it was armed for (more
     * in a VM): paid at each of a packet's stages, that would add a fixed
     * amount to every delay, a large part of a short one (measured:
     * docs/performance.md, "Emulated links"). So the lateness of the
     * wake-ups is tracked and the timer armed that much early; whatever is
     * due within it leaves now. A sample is taken only when the timer alone
     * woke us (the clock read straight after the wait, so the time spent
     * forwarding does not count), and the compensation is capped at
     * EMU_MAX_EARLY_NS and a quarter of the delay, so a busy emulator cannot
     * talk itself into sending bursts early. */
    uint64_t armed = UINT64_MAX, late = 0, cap = e.delay_ns / 4;
    if (cap > EMU_MAX_EARLY_NS) cap = EMU_MAX_EARLY_NS;
    while (!emu_stop) {
        struct epoll_event evs[EMU_MAX_HOSTS + 1];
        int n = epoll_pwait(ep, evs, EMU_MAX_HOSTS + 1, -1, &during);
        uint64_t woke = emu_now();
        if (emu_dump) {
            emu_dump = 0;
            emu_stats(&e);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("lc-linkemu: epoll_wait");
            return 1;
        }
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == UINT32_MAX) {
                uint64_t x;
                while (read(tfd, &x, sizeof(x)) > 0) {
                }
                if (n == 1 && armed != UINT64_MAX && woke > armed) {
                    uint64_t l = woke - armed;
                    late = late + l / 8 - late / 8;
                    if (late > cap) late = cap;
                }
                e.late_ns = late;
                armed = UINT64_MAX;
            } else {
                emu_read(&e, (int)evs[k].data.u32);
            }
        }
        uint64_t next = emu_advance(&e, emu_now() + late);
        if (next != UINT64_MAX) next = next > late ? next - late : 1;
        if (next != UINT64_MAX && next != armed) {
            struct itimerspec its;
            memset(&its, 0, sizeof(its));
            its.it_value.tv_sec = (time_t)(next / 1000000000ull);
            its.it_value.tv_nsec = (long)(next % 1000000000ull);
            if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
            armed = next;
        }
    }
    emu_stats(&e);
    return 0;
}
