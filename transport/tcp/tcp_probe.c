/*
 * Link rate probe at set-up: how fast this rank's links carry data, so the
 * algorithm choice can tell a link-bound network from a machine-bound one
 * (coll/select.c).
 *
 * Every rank sends LC_LINK_PROBE_BYTES to the next rank (rank + 1 mod n) on
 * its first data connection and receives from the previous one, all ranks at
 * once, so each host sends one stream and receives one, the load of a ring
 * step. An 8-byte count goes first, so ranks configured differently still
 * finish (a rank that sends or receives nothing measures nothing, and the
 * result is then unknown on every rank). Then each rank answers its sender
 * with one byte ("all received"), and when the next rank's answer is in,
 * every probe byte this rank sent has been acknowledged.
 *
 * The figure is the receiver's: the bytes after its first read over the
 * time from that read to its last. On a connection still in slow start that
 * time includes the round trips spent waiting for the window to open, so the
 * figure is a lower bound there, and the probe says so by reporting no rate
 * unless its bytes took at least LC_PROBE_RTTS round trips: slow start
 * from a 10-segment window delivers the default 2 MiB in about log2(2 MiB /
 * 10 segments) + 1 round trips (9 at a 1500-byte MTU, 6 at 9000), so a probe
 * that lasted 16 streamed for most of its time. 2 MiB therefore measures
 * links whose rate times round trip is up to 128 KB (1 Gbit/s at 1 ms, 250
 * Mbit/s at 4 ms); on longer ones the rate stays unknown, unless
 * LC_LINK_PROBE_BYTES is raised. (The sender's TCP_INFO delivery rate was
 * tried as well: on 250 Mbit/s links it read 33 to 300 Mbit/s.)
 *
 * The ranks then exchange their figures through the bootstrap and all keep
 * the smallest: a collective goes at the pace of its slowest link.
 *
 * It runs after the round trips were read (lc__tcp_agree_link, whose
 * exchange is a barrier): started while other ranks still shook hands, its
 * bytes queued in front of their handshakes and a 0.5 ms round trip read
 * 6 ms at 250 Mbit/s. The exchange is bounded by LC_CONNECT_TIMEOUT_MS; a
 * peer that closes or stays silent fails the set-up like any other wire-up
 * error.
 */
#include "core/log.h"
#include "core/util.h"
#include "transport/sock.h"
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

/* One direction of an exchange. buf holds the whole message when cap >=
 * total, else it is scratch reused for every piece (probe bytes). */
typedef struct {
    int fd;
    uint8_t *buf;
    size_t cap;
    uint64_t done, total;
} lc_probe_dir_t;

/* Move what fd takes without blocking; 1 = progress, 0 = would block, -1 = error or closed. */
static int lc__probe_step(lc_probe_dir_t *d, int sending)
{
    uint8_t *at = d->cap >= d->total ? d->buf + d->done : d->buf;
    size_t want = (size_t)LC_MIN((uint64_t)LC_MIN(d->cap, LC_PROBE_BUF), d->total - d->done);
    ssize_t r = sending ? send(d->fd, at, want, MSG_NOSIGNAL) : recv(d->fd, at, want, 0);
    if (r > 0) {
        d->done += (uint64_t)r;
        return 1;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return -1;
}

/* Send tx->total and receive rx->total bytes at once. For the receive, the
 * time and byte count of its first read and the time of its last (NULL: not
 * wanted). */
static lc_status_t lc__probe_move(lc_probe_dir_t *tx, lc_probe_dir_t *rx, uint64_t deadline,
                                  uint64_t *t_first, uint64_t *b_first, uint64_t *t_last)
{
    while (tx->done < tx->total || rx->done < rx->total) {
        int want_tx = tx->done < tx->total, want_rx = rx->done < rx->total;
        struct pollfd pf[2] = { { .fd = want_tx ? tx->fd : -1, .events = POLLOUT },
                                { .fd = want_rx ? rx->fd : -1, .events = POLLIN } };
        uint64_t now = lc__now_ns();
        int r;
        if (tx->fd == rx->fd) { /* two ranks: one connection both ways */
            pf[0].fd = tx->fd;
            pf[0].events = (short)((want_tx ? POLLOUT : 0) | (want_rx ? POLLIN : 0));
            pf[1].fd = -1;
        }
        if (now >= deadline) return LC_ERR_TIMEOUT;
        r = poll(pf, 2, (int)LC_MIN(LC_DIV_UP(deadline - now, 1000000ull), 1000ull));
        if (r < 0 && errno != EINTR) return LC_ERR_SYSTEM;
        if (r <= 0) continue;
        if ((pf[0].revents | pf[1].revents) & (POLLERR | POLLNVAL)) return LC_ERR_PEER_LOST;
        if (want_tx && lc__probe_step(tx, 1) < 0) return LC_ERR_PEER_LOST;
        if (want_rx) {
            uint64_t before = rx->done;
            int s = lc__probe_step(rx, 0);
            if (s < 0) return LC_ERR_PEER_LOST;
            if (s > 0 && t_last != NULL) {
                *t_last = lc__now_ns();
                if (before == 0) {
                    *t_first = *t_last;
                    *b_first = rx->done;
                }
            }
        }
    }
    return LC_OK;
}

static uint32_t lc__probe_mbps(double bytes_per_s)
{
    double m = bytes_per_s * 8.0 / 1e6;
    return m >= (double)UINT32_MAX ? UINT32_MAX : m < 1.0 && m > 0 ? 1u : (uint32_t)m;
}

/* The exchange with both neighbours and this rank's figure in Mbit/s (0 =
 * unknown: no bytes either way, or fewer than LC_PROBE_RTTS round trips of
 * rtt_us). */
static lc_status_t lc__probe_own(const lc_tl_params_t *p, const int *fds, int per, uint32_t rtt_us,
                                 uint32_t *mbps)
{
    const uint64_t bytes = p->config->link_probe_bytes;
    const int idx = per > 1 ? 1 : 0;
    int next = (p->rank + 1) % p->size, prev = (p->rank + p->size - 1) % p->size;
    int tx_fd = fds[next * per + idx], rx_fd = fds[prev * per + idx];
    uint64_t deadline = lc__now_ns() + (uint64_t)p->config->connect_timeout_ms * 1000000ull;
    uint64_t t0 = lc__now_ns(), t_first = 0, b_first = 0, t_last = 0, in;
    uint8_t hdr_out[8], hdr_in[8], *buf = NULL;
    double rx_rate = 0;
    lc_status_t st;

    *mbps = 0;
    if (lc__sock_set_nonblock(tx_fd, 1) != LC_OK || lc__sock_set_nonblock(rx_fd, 1) != LC_OK) {
        st = LC_ERR_SYSTEM;
        goto out;
    }
    lc__put_u64(hdr_out, bytes);
    {
        lc_probe_dir_t tx = { tx_fd, hdr_out, 8, 0, 8 }, rx = { rx_fd, hdr_in, 8, 0, 8 };
        st = lc__probe_move(&tx, &rx, deadline, NULL, NULL, NULL);
    }
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
        lc_probe_dir_t tx = { tx_fd, buf, LC_PROBE_BUF, 0, bytes };
        lc_probe_dir_t rx = { rx_fd, buf, LC_PROBE_BUF, 0, in };
        st = lc__probe_move(&tx, &rx, deadline, &t_first, &b_first, &t_last);
    }
    /* Too short for the round trip: slow start, not the link, set its pace. */
    if (st == LC_OK && t_last > t_first &&
        t_last - t_first >= (uint64_t)LC_PROBE_RTTS * rtt_us * 1000ull)
        rx_rate = (double)(in - b_first) * 1e9 / (double)(t_last - t_first);
    if (st == LC_OK) { /* the answer: one byte back to the sender, one from our receiver */
        uint8_t ack_out = 1, ack_in;
        lc_probe_dir_t tx = { rx_fd, &ack_out, 1, 0, 1 }, rx = { tx_fd, &ack_in, 1, 0, 1 };
        st = lc__probe_move(&tx, &rx, deadline, NULL, NULL, NULL);
    }
    if (st != LC_OK) goto out;
    if (bytes > 0) *mbps = lc__probe_mbps(rx_rate);
    lc_debug("tcp: link probe in %.1f ms: %llu bytes to rank %d; %llu bytes from rank %d in %.2f "
             "ms (%u round trips of %u us) at %u Mbit/s",
             (double)(lc__now_ns() - t0) / 1e6, (unsigned long long)bytes, next,
             (unsigned long long)in, prev, (double)(t_last - t_first) / 1e6,
             rtt_us ? (unsigned)((t_last - t_first) / 1000ull / rtt_us) : 0u, rtt_us, *mbps);
out:
    if (st != LC_OK)
        lc_error("tcp: link probe with ranks %d and %d failed: %s", next, prev, lc_status_str(st));
    lc__sock_set_nonblock(tx_fd, 0);
    lc__sock_set_nonblock(rx_fd, 0);
    free(buf);
    return st;
}

lc_status_t lc__tcp_probe_rate(const lc_tl_params_t *p, const int *fds, int per, uint32_t rtt_us,
                               uint32_t *mbps)
{
    /* Per rank: [0] its figure, [1] 1 if its exchange failed (it still
     * joins this exchange, so every rank stops rather than waits). */
    uint32_t mine[2] = { 0, 0 }, *all;
    lc_status_t own, st;

    *mbps = 0;
    if (p->size < 2) return LC_OK;
    own = lc__probe_own(p, fds, per, rtt_us, &mine[0]);
    mine[1] = own != LC_OK;
    all = malloc((size_t)p->size * sizeof(mine));
    if (all == NULL) return LC_ERR_NO_MEMORY;
    st = p->bootstrap->ops->allgather(p->bootstrap, mine, sizeof(mine), all);
    if (st == LC_OK) {
        uint32_t slowest = all[0];
        for (int r = 0; r < p->size && st == LC_OK; r++) {
            slowest = LC_MIN(slowest, all[2 * r]);
            if (all[2 * r + 1]) {
                if (r != p->rank) lc_error("tcp: rank %d's link probe failed", r);
                st = own != LC_OK ? own : LC_ERR_PEER_LOST;
            }
        }
        if (st == LC_OK) {
            *mbps = slowest;
            lc_info("tcp: link rate %u Mbit/s measured here, %u Mbit/s the slowest (0: not "
                    "measured)",
                    mine[0], slowest);
        }
    }
    free(all);
    return st;
}
