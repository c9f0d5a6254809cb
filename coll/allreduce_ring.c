/*
 * Ring all-reduce: a reduce-scatter followed by an all-gather around the
 * ring 0 -> 1 -> ... -> n-1 -> 0.
 *
 * The buffer is cut into n segments. In reduce-scatter step s (0 <= s < n-1)
 * rank r sends segment (r - s) mod n to its right neighbour and receives
 * segment (r - s - 1) mod n from its left one, adding its own contribution
 * before passing it on at the next step. After n-1 steps rank r holds the
 * complete sum of segment (r + 1) mod n, which it scales (for LC_AVG) once.
 * In all-gather step s it sends segment (r + 1 - s) mod n, the one it owns or
 * has just received, and receives segment (r - s) mod n straight into place.
 * Every rank sends and receives 2(n-1)/n of the buffer: the bandwidth
 * optimum. Each element is reduced in exactly one place, in ring order, and
 * then copied, so every rank ends with the same bits.
 *
 * Pipelining: each segment is cut into chunks of LC_CHUNK_BYTES. Chunk c of
 * step s+1 leaves as soon as chunk c of step s has arrived and been reduced,
 * while later chunks of step s are still on the wire, so the ring runs as
 * one pipeline rather than n-1 stop-and-go rounds.
 *
 * Memory: out of place, data is received straight into the output segment
 * and reduced there with the input: no scratch at all. In place, received
 * chunks land in LC_COLL_SLOTS chunk-sized scratch slots (reused across
 * calls) and are reduced into the buffer. Either way the reduction is
 * (received) op (own), so in-place and out-of-place give the same bits.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__allreduce_ring(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    const int right = lc__mod(r + 1, n), left = lc__mod(r - 1, n);
    const int inplace = a->sendbuf == a->recvbuf;
    const size_t maxc = lc__nchunks(lc__seg_cnt(a->count, n, 0), ce);
    char *out = a->recvbuf;
    const char *in = a->sendbuf;
    /* Op ids: [step][chunk] for the reduce-scatter sends and reduces. */
    int *rs_send = lc__coll_ids(s, (size_t)(n - 1) * maxc);
    int *rs_red = lc__coll_ids(s, (size_t)(n - 1) * maxc);
    int *ag_recv = lc__coll_ids(s, (size_t)(n - 1) * maxc);
    int *slot_user = lc__coll_ids(s, LC_COLL_SLOTS);
    char *slots = inplace ? lc__sched_scratch(s, LC_COLL_SLOTS * ce * es) : NULL;
    int q = 0; /* received chunks so far (in-place slot rotation) */

    if (rs_send == NULL || rs_red == NULL || ag_recv == NULL || slot_user == NULL ||
        (inplace && slots == NULL))
        return LC_ERR_NO_MEMORY;

    /* Reduce-scatter. Sends and receives are added step by step, chunk by
     * chunk: the per-peer FIFO order both neighbours agree on. */
    for (int st = 0; st < n - 1; st++) {
        int sj = lc__mod(r - st, n), rj = lc__mod(r - st - 1, n);
        size_t soff = lc__seg_off(a->count, n, sj), scnt = lc__seg_cnt(a->count, n, sj);
        size_t roff = lc__seg_off(a->count, n, rj), rcnt = lc__seg_cnt(a->count, n, rj);
        for (size_t c = 0; c < lc__nchunks(scnt, ce); c++) {
            size_t e0 = soff + c * ce, k = LC_MIN(ce, scnt - c * ce);
            /* Step 0 sends the input; later steps forward what was reduced. */
            const char *src = (st == 0) ? lc__at(in, e0, es) : lc__at(out, e0, es);
            int id = lc__sched_send(s, right, src, k * es);
            rs_send[st * maxc + c] = id;
            if (st > 0) lc__sched_dep(s, rs_red[(st - 1) * maxc + c], id);
        }
        for (size_t c = 0; c < lc__nchunks(rcnt, ce); c++) {
            size_t e0 = roff + c * ce, k = LC_MIN(ce, rcnt - c * ce);
            char *dst = lc__at(out, e0, es);
            int rid, red;
            if (inplace) {
                int sl = q++ % LC_COLL_SLOTS;
                char *slot = slots + (size_t)sl * ce * es;
                rid = lc__sched_recv(s, left, slot, k * es);
                lc__sched_dep(s, slot_user[sl], rid);
                red = lc__sched_reduce(s, dst, slot, dst, k, a->dtype, a->op);
                slot_user[sl] = red;
            } else {
                rid = lc__sched_recv(s, left, dst, k * es);
                red = lc__sched_reduce(s, dst, dst, lc__at(in, e0, es), k, a->dtype, a->op);
            }
            lc__sched_dep(s, rid, red);
            rs_red[st * maxc + c] = red;
        }
    }

    /* The owned segment, complete: scale once for LC_AVG. */
    int own = lc__mod(r + 1, n);
    size_t ooff = lc__seg_off(a->count, n, own), ocnt = lc__seg_cnt(a->count, n, own);
    int *scaled = lc__coll_ids(s, maxc);
    if (scaled == NULL) return LC_ERR_NO_MEMORY;
    for (size_t c = 0; c < lc__nchunks(ocnt, ce); c++) {
        size_t e0 = ooff + c * ce, k = LC_MIN(ce, ocnt - c * ce);
        int id = lc__sched_scale(s, lc__at(out, e0, es), k, a->dtype, a->op, n);
        lc__sched_dep(s, rs_red[(n - 2) * maxc + c], id);
        scaled[c] = id;
    }

    /* All-gather. */
    for (int st = 0; st < n - 1; st++) {
        int sj = lc__mod(r + 1 - st, n), rj = lc__mod(r - st, n);
        size_t soff = lc__seg_off(a->count, n, sj), scnt = lc__seg_cnt(a->count, n, sj);
        size_t roff = lc__seg_off(a->count, n, rj), rcnt = lc__seg_cnt(a->count, n, rj);
        for (size_t c = 0; c < lc__nchunks(scnt, ce); c++) {
            size_t e0 = soff + c * ce, k = LC_MIN(ce, scnt - c * ce);
            int id = lc__sched_send(s, right, lc__at(out, e0, es), k * es);
            lc__sched_dep(s, st == 0 ? scaled[c] : ag_recv[(st - 1) * maxc + c], id);
        }
        for (size_t c = 0; c < lc__nchunks(rcnt, ce); c++) {
            size_t e0 = roff + c * ce, k = LC_MIN(ce, rcnt - c * ce);
            int id = lc__sched_recv(s, left, lc__at(out, e0, es), k * es);
            /* This segment was forwarded from the output at reduce-scatter
             * step st (or, in place, sent as input at step 0): that send must
             * be done before the final value overwrites it. */
            lc__sched_dep(s, rs_send[st * maxc + c], id);
            ag_recv[st * maxc + c] = id;
        }
    }
    return LC_OK;
}
