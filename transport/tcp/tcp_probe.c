/*
 * Link rate probe at set-up: how fast this rank's links carry data, so the
 * algorithm choice can tell a link-bound network from a machine-bound one
 * (coll/select.c).
 *
 * Every rank sends LC_LINK_PROBE_BYTES to the next rank (rank + 1 mod n) on
 * its first data connection and receives from the previous one, all ranks at
 * once: with one rank per host, each host sends one stream and receives one,
 * the load of a ring step. A link within a host (both ends at one address)
 * carries no probe bytes and its figure is not counted; when every rank is
 * on one host there is no probe at all. An 8-byte count goes first, so ranks
 * configured differently still finish (a rank that sends nothing to a rank
 * on another host leaves that link unmeasured, and the result is then
 * unknown on every rank).
 *
 * The receiver times the bytes: those after its first read that empties the
 * socket (what queued before it looked, and the wait for a late sender,
 * are left out) over the time from that read to its last, and sends both
 * back to the sender (16 bytes),
 * which knows the link's round trip (lc__probe_min_rtt) and makes the
 * figure for its outgoing link. On a connection still in slow start the
 * time includes the round trips spent waiting for the window to open, so the
 * figure is a lower bound there, and the probe says so by reporting no rate
 * unless its bytes took at least LC_PROBE_RTTS round trips: slow start
 * from a 10-segment window delivers the default 2 MiB in about log2(2 MiB /
 * 10 segments) + 1 round trips (9 at a 1500-byte MTU, 6 at 9000), so a probe
 * that lasted 16 streamed for most of its time. 2 MiB therefore measures
 * links whose rate times round trip is up to 128 KB (1 Gbit/s at 1 ms, 250
 * Mbit/s at 4 ms); on longer ones the rate stays unknown, unless
 * LC_LINK_PROBE_BYTES is raised. (The sender's TCP_INFO delivery rate was
 * tried as well: on 250 Mbit/s links it read from a small fraction of the
 * rate to above it; docs/performance.md.)
 *
 * The ranks then exchange their figures through the bootstrap and all keep
 * the smallest between hosts (unknown if any of those is): a collective
 * goes at the pace of its slowest link.
 *
 * It runs after the round trips were read (lc__tcp_agree_link, whose
 * exchange is a barrier): started while other ranks still shook hands, its
 * bytes queued in front of their handshakes, and the round trips read there
 * came out many times the link's (docs/performance.md). The exchange is
 * bounded by LC_CONNECT_TIMEOUT_MS (so the probe must fit in it: 2 MiB does
 * above 0.6 Mbit/s at 30 s); a peer that closes or stays silent fails the
 * set-up like any other wire-up error, and a rank whose exchange failed
 * shuts its two connections down so that its neighbours stop at once rather
 * than at their deadline.
 */
#include "core/log.h"
#include "core/util.h"
#include "core/sock.h"
#include "transport/tcp/tcp_priv.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LC_PROBE_BUF (256u << 10)
#define LC_PROBE_MAX (1ull << 30) /* LC_LINK_PROBE_BYTES's largest */
#define LC_PROBE_RTTS 16
#define LC_PROBE_LOCAL UINT32_MAX /* a figure for a link within one host: not counted */

/* One direction of the probe's bytes (their content does not matter: one
 * scratch buffer serves both directions). */
typedef struct {
    int fd;
    uint64_t done, total;
} lc_probe_dir_t;

/* Move what fd takes without blocking: 2 = all that was asked, 1 = less
 * (nothing more was waiting), 0 = would block, -1 = error or closed. */
static int lc__probe_step(lc_probe_dir_t *d, uint8_t *buf, int sending)
{
    size_t want = (size_t)LC_MIN((uint64_t)LC_PROBE_BUF, d->total - d->done);
    ssize_t r = sending ? send(d->fd, buf, want, MSG_NOSIGNAL) : recv(d->fd, buf, want, 0);
    if (r > 0) {
        d->done += (uint64_t)r;
        return (size_t)r == want ? 2 : 1;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return -1;
}

/* Send tx->total and receive rx->total bytes at once, through buf. For the
 * receive: the time of the first read that emptied the socket and the bytes
 * received by then (*t_first, *b_first), and the time of the last read.
 * Bytes that queued before this rank began to read arrived while it was not
 * watching and are left out, as is the wait for a sender that started late;
 * with every byte queued before the first read, *t_first stays 0. */
static lc_status_t lc__probe_move(lc_probe_dir_t *tx, lc_probe_dir_t *rx, uint8_t *buf,
                                  uint64_t deadline, uint64_t *t_first, uint64_t *b_first,
                                  uint64_t *t_last)
{
    const short hup = POLLHUP | POLLRDHUP;
    int started = 0;

    while (tx->done < tx->total || rx->done < rx->total) {
        int want_tx = tx->done < tx->total, want_rx = rx->done < rx->total;
        struct pollfd pf[2] = { { .fd = want_tx ? tx->fd : -1, .events = POLLOUT | POLLRDHUP },
                                { .fd = want_rx ? rx->fd : -1, .events = POLLIN | POLLRDHUP } };
        uint64_t now = lc__now_ns();
        int r;
        if (tx->fd == rx->fd) { /* two ranks: one connection both ways */
            pf[0].fd = tx->fd;
            pf[0].events = (short)((want_tx ? POLLOUT : 0) | (want_rx ? POLLIN : 0) | POLLRDHUP);
            pf[1].fd = -1;
        }
        if (now >= deadline) return LC_ERR_TIMEOUT;
        r = poll(pf, 2, (int)LC_MIN(LC_DIV_UP(deadline - now, 1000000ull), 1000ull));
        if (r < 0 && errno != EINTR) return LC_ERR_SYSTEM;
        if (r <= 0) continue;
        /* Nobody closes or shuts a connection down during the probe: a
         * neighbour whose exchange failed did (lc__tcp_probe_rate). Data it
         * sent before that is still read first. */
        for (int i = 0; i < 2; i++) {
            if ((pf[i].revents & (POLLERR | POLLNVAL)) ||
                ((pf[i].revents & hup) && !(pf[i].revents & POLLIN)))
                return LC_ERR_PEER_LOST;
        }
        if (want_tx && lc__probe_step(tx, buf, 1) < 0) return LC_ERR_PEER_LOST;
        if (want_rx) {
            int s = lc__probe_step(rx, buf, 0);
            if (s < 0) return LC_ERR_PEER_LOST;
            if (s > 0 && started) *t_last = lc__now_ns();
            if (!started && rx->done > 0 && s < 2) {
                started = 1;
                *t_first = *t_last = lc__now_ns();
                *b_first = rx->done;
            }
        }
    }
    return LC_OK;
}

static uint32_t lc__probe_mbps(double bytes_per_s)
{
    double m = bytes_per_s * 8.0 / 1e6;
    return m >= (double)(LC_PROBE_LOCAL - 1) ? LC_PROBE_LOCAL - 1
           : m < 1.0 && m > 0                ? 1u
                                             : (uint32_t)m;
}

/* The smallest round trip the kernel measured on fd, in us: tcpi_min_rtt
 * (Linux 4.10+), read at its fixed place in the kernel's struct tcp_info
 * because glibc's copy of the struct ends before it; else the smoothed round
 * trip; 0 = unknown. Only a connection's data sender measures its round
 * trip: on the receiving end the figure counts the handshake's delayed
 * acknowledgements (milliseconds, even on loopback), and the sender's
 * smoothed figure after the probe counts the queue the probe built (many
 * times the link's round trip; docs/performance.md). */
#define LC_TCPI_MIN_RTT_AT 148
static uint32_t lc__probe_min_rtt(int fd)
{
    uint8_t raw[256];
    struct tcp_info ti;
    socklen_t len = sizeof(raw);
    uint32_t v = 0;

    memset(raw, 0, sizeof(raw));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, raw, &len) != 0) return 0;
    /* The fallback figure can only be larger: it makes the 16 round trips
     * harder to reach, never easier. */
    if (len >= LC_TCPI_MIN_RTT_AT + sizeof(v)) memcpy(&v, raw + LC_TCPI_MIN_RTT_AT, sizeof(v));
    if (v == UINT32_MAX) v = 0; /* no sample yet */
    if (v == 0 && len >= sizeof(ti)) {
        memcpy(&ti, raw, sizeof(ti));
        v = ti.tcpi_rtt;
    }
    return v;
}

/* The exchange with both neighbours and this rank's figure for the link it
 * sends on, in Mbit/s: LC_PROBE_LOCAL for a link within this host (no bytes
 * sent), 0 when unknown (no bytes, no round trip, or a receive that took
 * fewer than LC_PROBE_RTTS round trips). The receiver times the bytes and
 * tells the sender in its answer; the sender knows the round trip. */
static lc_status_t lc__probe_own(const lc_tl_params_t *p, int tx_fd, int next, int rx_fd, int prev,
                                 uint32_t *mbps)
{
    const int local = lc__tcp_same_host(tx_fd);
    const uint64_t bytes = local ? 0 : p->config->link_probe_bytes;
    uint64_t deadline = lc__now_ns() + (uint64_t)p->config->connect_timeout_ms * 1000000ull;
    uint64_t t0 = lc__now_ns(), t_pay = 0, t_first = 0, b_first = 0, t_last = 0, in, counted, ns;
    uint8_t hdr_out[8], hdr_in[8], ans_out[16], ans_in[16], *buf = NULL;
    uint32_t rtt_us = 0;
    double rate = 0;
    lc_status_t st;

    *mbps = 0;
    if (lc__sock_set_nonblock(tx_fd, 1) != LC_OK || lc__sock_set_nonblock(rx_fd, 1) != LC_OK) {
        st = LC_ERR_SYSTEM;
        goto out;
    }
    /* The count and the answer are a few bytes on a connection with room for
     * them: written first, then read, they cannot hold each other up. */
    lc__put_u64(hdr_out, bytes);
    st = lc__sock_write_full(tx_fd, hdr_out, sizeof(hdr_out), deadline);
    if (st == LC_OK) st = lc__sock_read_full(rx_fd, hdr_in, sizeof(hdr_in), deadline);
    if (st != LC_OK) goto out;
    in = lc__get_u64(hdr_in);
    if (in > LC_PROBE_MAX) {
        lc_error("tcp: rank %d announced a link probe of %llu bytes (at most %llu): not a probe",
                 prev, (unsigned long long)in, (unsigned long long)LC_PROBE_MAX);
        st = LC_ERR_CORRUPT;
        goto out;
    }
    buf = calloc(1, LC_PROBE_BUF);
    if (buf == NULL) {
        st = LC_ERR_NO_MEMORY;
        goto out;
    }
    {
        lc_probe_dir_t tx = { tx_fd, 0, bytes }, rx = { rx_fd, 0, in };
        t_pay = lc__now_ns();
        st = lc__probe_move(&tx, &rx, buf, deadline, &t_first, &b_first, &t_last);
    }
    if (st != LC_OK) goto out;
    /* The answer to the sender: the bytes after the first read, and how long they took. */
    lc__put_u64(ans_out, in - b_first);
    lc__put_u64(ans_out + 8, t_last - t_first);
    st = lc__sock_write_full(rx_fd, ans_out, sizeof(ans_out), deadline);
    if (st == LC_OK) st = lc__sock_read_full(tx_fd, ans_in, sizeof(ans_in), deadline);
    if (st != LC_OK) goto out;
    counted = lc__get_u64(ans_in);
    ns = lc__get_u64(ans_in + 8);
    /* Our bytes cannot have taken longer to arrive than we have been sending them. */
    if (counted > bytes || ns > lc__now_ns() - t_pay) {
        lc_error("tcp: rank %d answered the link probe with %llu of %llu bytes in %llu ns, more "
                 "than this rank sent or longer than it took",
                 next, (unsigned long long)counted, (unsigned long long)bytes,
                 (unsigned long long)ns);
        st = LC_ERR_CORRUPT;
        goto out;
    }
    rtt_us = lc__probe_min_rtt(tx_fd);
    /* Too short for the round trip: slow start, not the link, set its pace. */
    if (counted > 0 && rtt_us > 0 && ns >= (uint64_t)LC_PROBE_RTTS * rtt_us * 1000ull)
        rate = (double)counted * 1e9 / (double)ns;
    *mbps = local ? LC_PROBE_LOCAL : lc__probe_mbps(rate);
    lc_debug("tcp: link probe in %.1f ms: %llu bytes to rank %d, received in %.2f ms (%llu "
             "round trips of %u us): %u Mbit/s; %llu bytes from rank %d",
             (double)(lc__now_ns() - t0) / 1e6, (unsigned long long)bytes, next, (double)ns / 1e6,
             rtt_us ? (unsigned long long)(ns / 1000ull / rtt_us) : 0ull, rtt_us,
             local ? 0u : *mbps, (unsigned long long)in, prev);
out:
    if (st != LC_OK)
        lc_error("tcp: link probe with ranks %d and %d failed: %s", next, prev, lc_status_str(st));
    lc__sock_set_nonblock(tx_fd, 0);
    lc__sock_set_nonblock(rx_fd, 0);
    free(buf);
    return st;
}

lc_status_t lc__tcp_probe_rate(const lc_tl_params_t *p, const int *fds, int per, int one_host,
                               uint32_t *mbps)
{
    const int idx = per > 1 ? 1 : 0;
    int next = (p->rank + 1) % p->size, prev = (p->rank + p->size - 1) % p->size;
    int tx_fd = fds[next * per + idx], rx_fd = fds[prev * per + idx];
    /* Per rank: [0] its figure, [1] 1 if its exchange failed (it still
     * joins this exchange, so every rank stops rather than waits). */
    uint32_t mine[2] = { 0, 0 }, *all;
    int known = 1, counted = 0;
    lc_status_t own, st;

    *mbps = 0;
    /* Every rank agreed on one_host: all skip together. */
    if (p->size < 2 || one_host) return LC_OK;
    all = malloc((size_t)p->size * sizeof(mine));
    own = all == NULL ? LC_ERR_NO_MEMORY : lc__probe_own(p, tx_fd, next, rx_fd, prev, &mine[0]);
    mine[1] = own != LC_OK;
    if (own != LC_OK) {
        /* Neighbours still inside the exchange see the connection end now
         * rather than at their deadline; the set-up fails anyway. */
        shutdown(tx_fd, SHUT_RDWR);
        shutdown(rx_fd, SHUT_RDWR);
        /* Cannot take part: the others' exchange fails at the TCP bootstrap's
         * timeout (as for lc__tcp_agree_link's). */
        if (all == NULL) return own;
    }
    st = p->bootstrap->ops->allgather(p->bootstrap, mine, sizeof(mine), all);
    for (int r = 0; r < p->size && st == LC_OK; r++) {
        const uint32_t *o = all + 2 * r;
        if (o[1]) {
            if (r != p->rank) lc_error("tcp: rank %d's link probe failed", r);
            st = own != LC_OK ? own : LC_ERR_PEER_LOST;
        } else if (o[0] != LC_PROBE_LOCAL) {
            *mbps = counted++ ? LC_MIN(*mbps, o[0]) : o[0];
            if (o[0] == 0) known = 0;
        }
    }
    if (st == LC_OK) {
        if (!known) *mbps = 0;
        lc_info("tcp: link rate %s%u Mbit/s measured here, %u Mbit/s the slowest between hosts "
                "(0: not measured)",
                mine[0] == LC_PROBE_LOCAL ? "(within this host) " : "",
                mine[0] == LC_PROBE_LOCAL ? 0u : mine[0], *mbps);
    } else {
        *mbps = 0;
    }
    free(all);
    return st;
}
