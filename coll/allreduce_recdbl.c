/*
 * Recursive-doubling all-reduce, for small messages where latency, not
 * bandwidth, decides.
 *
 * With p the largest power of two <= n, the first 2(n - p) ranks pair up:
 * each even rank of a pair hands its vector to the odd one and sits out.
 * The p remaining ranks then run log2(p) rounds; in round k each exchanges its
 * whole (partial) vector with the rank whose index differs in bit k and both
 * combine the two. Finally the odd ranks hand the result back to their even
 * partners. Every combination is written (lower group's value) op (higher
 * group's value), so the two partners of a round compute exactly the same
 * bits, and every rank ends with the same result.
 *
 * Cost: log2(p) (+2 when n is not a power of two) message latencies, n log2(p)
 * times the data on the wire in total. Large vectors are still cut into
 * chunks (so chunk c of round k+1 can start while chunk c+1 of round k is in
 * flight); the partner's vector lands in scratch memory the size of the
 * buffer, reused across calls.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__allreduce_recdbl(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    const size_t nc = lc__nchunks(a->count, ce);
    int p = 1, rounds = 0;
    while (p * 2 <= n) p *= 2, rounds++;
    const int extra = n - p;
    char *buf = a->recvbuf;
    char *tmp = lc__sched_scratch(s, a->count * es);
    int *last = lc__coll_ids(s, nc); /* last op that wrote buf chunk c */
    int *rd = lc__coll_ids(s, nc);   /* last op that read tmp chunk c */
    int vr;                          /* rank among the p, or -1 if sitting out */

    if (tmp == NULL || last == NULL || rd == NULL) return LC_ERR_NO_MEMORY;
    for (size_t c = 0; c < nc; c++) {
        size_t k = LC_MIN(ce, a->count - c * ce);
        last[c] =
            lc__sched_copy(s, lc__at(buf, c * ce, es), lc__at(a->sendbuf, c * ce, es), k * es);
    }
    if (r < 2 * extra) {
        if (r % 2 == 0) {
            /* Hand the input to the odd partner, wait for the result. */
            for (size_t c = 0; c < nc; c++) {
                size_t k = LC_MIN(ce, a->count - c * ce);
                int id = lc__sched_send(s, r + 1, lc__at(buf, c * ce, es), k * es);
                lc__sched_dep(s, last[c], id);
                last[c] = id;
            }
            for (size_t c = 0; c < nc; c++) {
                size_t k = LC_MIN(ce, a->count - c * ce);
                int id = lc__sched_recv(s, r + 1, lc__at(buf, c * ce, es), k * es);
                lc__sched_dep(s, last[c], id);
            }
            return LC_OK;
        }
        for (size_t c = 0; c < nc; c++) {
            size_t k = LC_MIN(ce, a->count - c * ce);
            char *b = lc__at(buf, c * ce, es), *t = lc__at(tmp, c * ce, es);
            int rid = lc__sched_recv(s, r - 1, t, k * es);
            int red = lc__sched_reduce(s, b, t, b, k, a->dtype, a->op); /* lower rank first */
            lc__sched_dep(s, rid, red);
            lc__sched_dep(s, last[c], red);
            last[c] = red;
            rd[c] = red;
        }
        vr = r / 2;
    } else {
        vr = r - extra;
    }
    int *sid = lc__coll_ids(s, nc);
    if (sid == NULL) return LC_ERR_NO_MEMORY;
    for (int k = 0; k < rounds; k++) {
        int pv = vr ^ (1 << k);
        int partner = pv < extra ? 2 * pv + 1 : pv + extra;
        for (size_t c = 0; c < nc; c++) {
            size_t m = LC_MIN(ce, a->count - c * ce);
            sid[c] = lc__sched_send(s, partner, lc__at(buf, c * ce, es), m * es);
            lc__sched_dep(s, last[c], sid[c]);
        }
        for (size_t c = 0; c < nc; c++) {
            size_t m = LC_MIN(ce, a->count - c * ce);
            char *b = lc__at(buf, c * ce, es), *t = lc__at(tmp, c * ce, es);
            int rid = lc__sched_recv(s, partner, t, m * es);
            lc__sched_dep(s, rd[c], rid); /* tmp chunk free again */
            int red = vr < pv ? lc__sched_reduce(s, b, b, t, m, a->dtype, a->op)
                              : lc__sched_reduce(s, b, t, b, m, a->dtype, a->op);
            lc__sched_dep(s, rid, red);
            lc__sched_dep(s, last[c], red);
            lc__sched_dep(s, sid[c], red); /* buf is overwritten: its send must be done */
            last[c] = red;
            rd[c] = red;
        }
    }
    for (size_t c = 0; c < nc; c++) {
        size_t m = LC_MIN(ce, a->count - c * ce);
        int id = lc__sched_scale(s, lc__at(buf, c * ce, es), m, a->dtype, a->op, n);
        lc__sched_dep(s, last[c], id);
        last[c] = id;
    }
    if (r < 2 * extra) { /* odd rank: hand the result back to the even partner */
        for (size_t c = 0; c < nc; c++) {
            size_t m = LC_MIN(ce, a->count - c * ce);
            int id = lc__sched_send(s, r - 1, lc__at(buf, c * ce, es), m * es);
            lc__sched_dep(s, last[c], id);
        }
    }
    return LC_OK;
}
