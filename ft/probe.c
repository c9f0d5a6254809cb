/*
 * The link rate probe at set-up, over any transport: how fast this rank's
 * links carry data, so the algorithm choice can tell a link-bound network
 * from a machine-bound one (coll/select.c).
 *
 * Every rank sends LC_LINK_PROBE_BYTES to the next rank (rank + 1 mod n)
 * and receives from the previous one, all ranks at once: with one rank per
 * host, each host sends one stream and receives one, the load of a ring
 * step. A link within a host (lc_tl_peer_info_t::local) carries no probe
 * bytes and its figure is not counted; when every rank is on one host there
 * is no probe at all.
 *
 * Five messages per link, in this order on every pair (so a transport's
 * FIFO matching holds even with two ranks, where next and prev are one):
 *   HEAD    sender -> receiver   u64 bytes to come (at most 1 GiB)
 *   GO      receiver -> sender   empty: the receives are posted and watched
 *   LEAD    sender -> receiver   the first 1/16 of the bytes
 *   PAYLOAD sender -> receiver   the rest, right behind it
 *   ANSWER  receiver -> sender   u64 bytes of PAYLOAD, u64 ns from LEAD's
 *                                arrival to PAYLOAD's
 * Waiting for GO keeps the bytes from queuing where nobody reads them (a
 * receiver still busy elsewhere would read a burst and time it as a
 * stream), and the clock starts when LEAD is in, with the stream already
 * flowing: the round trip, the sender's wake-up (milliseconds on a loaded
 * 2-core machine) and the window's first doublings are left out. The
 * sender knows the link's round trip (peer_info: measured while sending)
 * and reports no rate unless PAYLOAD took at least LC_PROBE_RTTS round
 * trips: on longer links slow start, not the link, sets the pace. 2 MiB
 * thus measures links whose rate times round trip is up to about 128 KB
 * (1 Gbit/s at 1 ms, 250 Mbit/s at 4 ms); longer ones stay unknown unless
 * LC_LINK_PROBE_BYTES is raised.
 *
 * The ranks then exchange their figures through the bootstrap and all keep
 * the smallest between hosts (unknown if any of those is): a collective
 * goes at the pace of its slowest link. It runs on the caller's thread
 * before the progress thread starts, driving the engine itself, bounded by
 * LC_CONNECT_TIMEOUT_MS; a rank whose exchange fails cuts its two
 * neighbours off so that they stop at once rather than at their deadline.
 */
#include "ft/probe.h"

#include "core/bytes.h"
#include "core/log.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

#define LC_PROBE_MAX (1ull << 30) /* LC_LINK_PROBE_BYTES's largest */
#define LC_PROBE_RTTS 16
#define LC_PROBE_LOCAL UINT32_MAX /* a figure for a link within one host: not counted */
/* Above every collective's sequence number; the probe is over before any. */
#define LC_PROBE_SEQ (UINT64_MAX - 1)

enum { LC_PR_HEAD, LC_PR_GO, LC_PR_LEAD, LC_PR_PAYLOAD, LC_PR_ANSWER, LC_PR_N };

/* The part of the bytes sent first, whose arrival starts the clock. */
static uint64_t lc__probe_lead(uint64_t bytes)
{
    return bytes / 16;
}

typedef struct lc_probe lc_probe_t;

typedef struct {
    lc_probe_t *pr;
    int which; /* LC_PR_* */
    int dir;   /* 0 receive, 1 send */
} lc_probe_op_t;

struct lc_probe {
    const lc_ft_probe_params_t *p;
    int next, prev;
    uint32_t idx_next, idx_prev; /* message indexes, per peer and direction */
    uint32_t ridx_next, ridx_prev;
    lc_probe_op_t ops[2][LC_PR_N];
    int done[2][LC_PR_N];
    lc_status_t st;
    uint8_t head_out[8], head_in[8], ans_out[16], ans_in[16], go;
    uint8_t *payload_out, *payload_in;
    uint64_t bytes_out, bytes_in;
    uint64_t t_go, t_last;
};

static void lc__probe_cb(void *arg, lc_status_t status, size_t length);

static void lc__probe_post(lc_probe_t *pr, int which, int dir, void *buf, size_t len)
{
    const lc_ft_probe_params_t *p = pr->p;
    /* HEAD and PAYLOAD go to next; GO and ANSWER to prev. */
    int to_next = which == LC_PR_HEAD || which == LC_PR_LEAD || which == LC_PR_PAYLOAD;
    int peer = dir ? (to_next ? pr->next : pr->prev) : (to_next ? pr->prev : pr->next);
    uint32_t *idx = dir ? (peer == pr->next ? &pr->idx_next : &pr->idx_prev)
                        : (peer == pr->prev ? &pr->ridx_prev : &pr->ridx_next);
    /* One lane: the lead arrives before the rest, on one connection. */
    lc_tl_tag_t tag = { .seq = LC_PROBE_SEQ, .index = (*idx)++, .sig = 0, .lanes = 1 };
    lc_probe_op_t *op = &pr->ops[dir][which];
    lc_status_t st;

    op->pr = pr;
    op->which = which;
    op->dir = dir;
    st = dir ? p->ops->send(p->tl, peer, &tag, buf, len, lc__probe_cb, op)
             : p->ops->recv(p->tl, peer, &tag, buf, len, lc__probe_cb, op);
    if (st != LC_OK && pr->st == LC_OK) pr->st = st;
}

/* With two ranks both roles talk to one peer: the indexes of the two
 * directions must follow the single order HEAD, GO, PAYLOAD, ANSWER. */
static void lc__probe_cb(void *arg, lc_status_t status, size_t length)
{
    lc_probe_op_t *op = arg;
    lc_probe_t *pr = op->pr;

    (void)length;
    pr->done[op->dir][op->which] = 1;
    if (status != LC_OK) {
        if (pr->st == LC_OK) pr->st = status;
        return;
    }
    if (op->dir == 1) return;
    switch (op->which) {
    case LC_PR_HEAD: /* from prev: how much comes */
        pr->bytes_in = lc__get_u64(pr->head_in);
        if (pr->bytes_in > LC_PROBE_MAX) {
            lc_error("link probe: rank %d announced %llu bytes (at most %llu): not a probe",
                     pr->prev, (unsigned long long)pr->bytes_in, (unsigned long long)LC_PROBE_MAX);
            pr->st = LC_ERR_CORRUPT;
            return;
        }
        pr->payload_in = pr->bytes_in ? malloc(pr->bytes_in) : NULL;
        if (pr->bytes_in && pr->payload_in == NULL) {
            pr->st = LC_ERR_NO_MEMORY;
            return;
        }
        {
            uint64_t lead = lc__probe_lead(pr->bytes_in);
            lc__probe_post(pr, LC_PR_LEAD, 0, pr->payload_in, lead);
            lc__probe_post(pr, LC_PR_PAYLOAD, 0, pr->payload_in + lead, pr->bytes_in - lead);
        }
        lc__probe_post(pr, LC_PR_ANSWER, 0, pr->ans_in, sizeof(pr->ans_in));
        lc__probe_post(pr, LC_PR_GO, 1, &pr->go, 0);
        break;
    case LC_PR_GO: /* from next: it watches; send the bytes, in two messages */
    {
        uint64_t lead = lc__probe_lead(pr->bytes_out);
        lc__probe_post(pr, LC_PR_LEAD, 1, pr->payload_out, lead);
        lc__probe_post(pr, LC_PR_PAYLOAD, 1, pr->payload_out + lead, pr->bytes_out - lead);
    } break;
    case LC_PR_LEAD: /* the stream is flowing: the clock starts */ pr->t_go = lc__now_ns(); break;
    case LC_PR_PAYLOAD: /* from prev: all in */
        pr->t_last = lc__now_ns();
        lc__put_u64(pr->ans_out, pr->bytes_in - lc__probe_lead(pr->bytes_in));
        /* An empty lead may complete after an empty payload. */
        lc__put_u64(pr->ans_out + 8, pr->t_go != 0 ? pr->t_last - pr->t_go : 0);
        lc__probe_post(pr, LC_PR_ANSWER, 1, pr->ans_out, sizeof(pr->ans_out));
        break;
    default: break;
    }
}

static int lc__probe_pending(const lc_probe_t *pr)
{
    for (int d = 0; d < 2; d++)
        for (int w = 0; w < LC_PR_N; w++)
            if (!pr->done[d][w]) return 1;
    return 0;
}

static uint32_t lc__probe_mbps(double bytes_per_s)
{
    double m = bytes_per_s * 8.0 / 1e6;
    return m >= (double)(LC_PROBE_LOCAL - 1) ? LC_PROBE_LOCAL - 1
           : m < 1.0 && m > 0                ? 1u
                                             : (uint32_t)m;
}

/* This rank's exchange with both neighbours, and its figure for the link
 * it sends on: LC_PROBE_LOCAL within this host, 0 when unknown. */
static lc_status_t lc__probe_own(const lc_ft_probe_params_t *p, uint32_t *mbps)
{
    lc_probe_t pr;
    lc_tl_peer_info_t ni;
    uint64_t t0 = lc__now_ns(), deadline = t0 + (uint64_t)p->timeout_ms * 1000000ull;
    double rate = 0;

    memset(&pr, 0, sizeof(pr));
    pr.p = p;
    pr.next = (p->rank + 1) % p->size;
    pr.prev = (p->rank + p->size - 1) % p->size;
    p->ops->peer_info(p->tl, pr.next, &ni);
    pr.bytes_out = ni.local ? 0 : p->bytes;
    pr.payload_out = pr.bytes_out ? calloc(1, pr.bytes_out) : NULL;
    if (pr.bytes_out && pr.payload_out == NULL) return LC_ERR_NO_MEMORY;
    lc__put_u64(pr.head_out, pr.bytes_out);
    /* Receives first, in the order their messages come; then HEAD. */
    lc__probe_post(&pr, LC_PR_HEAD, 0, pr.head_in, sizeof(pr.head_in));
    lc__probe_post(&pr, LC_PR_GO, 0, &pr.go, 0);
    lc__probe_post(&pr, LC_PR_HEAD, 1, pr.head_out, sizeof(pr.head_out));
    /* Every operation posted has completed before pr goes (a failure cuts
     * the peers off, which completes the rest at once). */
    while (pr.st == LC_OK && lc__probe_pending(&pr)) {
        if (lc__now_ns() >= deadline) {
            pr.st = LC_ERR_TIMEOUT;
            break;
        }
        lc__progress_run_once(p->progress, 10);
    }
    if (pr.st == LC_OK) {
        uint64_t counted = lc__get_u64(pr.ans_in), ns = lc__get_u64(pr.ans_in + 8);
        /* Our bytes cannot have taken longer than we have been at it. */
        if (counted != pr.bytes_out - lc__probe_lead(pr.bytes_out) || ns > lc__now_ns() - t0) {
            lc_error("link probe: rank %d answered %llu of %llu bytes in %llu ns", pr.next,
                     (unsigned long long)counted, (unsigned long long)pr.bytes_out,
                     (unsigned long long)ns);
            pr.st = LC_ERR_CORRUPT;
        } else {
            p->ops->peer_info(p->tl, pr.next, &ni);
            uint64_t rtt_ns = (uint64_t)ni.rtt_us * 1000ull;
            if (counted > 0 && rtt_ns > 0 && ns >= (uint64_t)LC_PROBE_RTTS * rtt_ns)
                rate = (double)counted * 1e9 / (double)ns;
            *mbps = ni.local ? LC_PROBE_LOCAL : lc__probe_mbps(rate);
            lc_debug("link probe in %.1f ms: %llu bytes to rank %d in %.2f ms (%llu round trips "
                     "of %u us): %u Mbit/s; %llu bytes from rank %d",
                     (double)(lc__now_ns() - t0) / 1e6, (unsigned long long)counted, pr.next,
                     (double)ns / 1e6, ni.rtt_us ? (unsigned long long)(ns / rtt_ns) : 0ull,
                     ni.rtt_us, ni.local ? 0u : *mbps, (unsigned long long)pr.bytes_in, pr.prev);
        }
    }
    if (pr.st != LC_OK) {
        lc_error("link probe with ranks %d and %d failed: %s", pr.next, pr.prev,
                 lc_status_str(pr.st));
        /* Its neighbours stop at once rather than at their deadline; the
         * set-up fails anyway. */
        p->ops->disconnect(p->tl, pr.next, LC_ERR_PEER_LOST, "link probe failed");
        p->ops->disconnect(p->tl, pr.prev, LC_ERR_PEER_LOST, "link probe failed");
    }
    /* Nothing is posted any more: done, or failed when the peers were cut
     * off (which completed every operation with them, here). */
    free(pr.payload_out);
    free(pr.payload_in);
    return pr.st;
}

lc_status_t lc__ft_probe_link(const lc_ft_probe_params_t *p, uint32_t *mbps_p)
{
    /* Per rank: [0] its figure, [1] 1 if its exchange failed (it still
     * joins this exchange, so every rank stops rather than waits). */
    uint32_t mine[2] = { 0, 0 }, *all, mbps = 0;
    int known = 1, counted = 0;
    lc_status_t own, st;

    *mbps_p = 0;
    /* Every rank agreed on one_host: all skip together. */
    if (p->size < 2 || p->one_host) return LC_OK;
    all = malloc((size_t)p->size * sizeof(mine));
    own = all == NULL ? LC_ERR_NO_MEMORY : lc__probe_own(p, &mine[0]);
    mine[1] = own != LC_OK;
    if (all == NULL) return own;
    st = p->bootstrap->ops->allgather(p->bootstrap, mine, sizeof(mine), all);
    for (int r = 0; r < p->size && st == LC_OK; r++) {
        const uint32_t *o = all + 2 * r;
        if (o[1]) {
            if (r != p->rank) lc_error("rank %d's link probe failed", r);
            st = own != LC_OK ? own : LC_ERR_PEER_LOST;
        } else if (o[0] != LC_PROBE_LOCAL) {
            mbps = counted++ ? LC_MIN(mbps, o[0]) : o[0];
            if (o[0] == 0) known = 0;
        }
    }
    if (st == LC_OK) {
        if (!known) mbps = 0;
        lc_info("link rate %s%u Mbit/s measured here, %u Mbit/s the slowest between hosts "
                "(0: not measured)",
                mine[0] == LC_PROBE_LOCAL ? "(within this host) " : "",
                mine[0] == LC_PROBE_LOCAL ? 0u : mine[0], mbps);
        *mbps_p = mbps;
    }
    free(all);
    return st;
}
