/*
 * Compressed ring all-reduce: a reduce-scatter that decodes, adds and
 * re-encodes at every hop, then an all-gather of the bytes each segment's
 * owner encoded once, around the ring 0 -> 1 -> ... -> n-1 -> 0.
 *
 * The buffer is cut into n segments. Reduce-scatter step s (0 <= s < n-1):
 * rank r sends segment (r - s) mod n to its right neighbour and receives
 * segment (r - s - 1) mod n from its left one. At step 0 what it sends is
 * its own input, encoded with its worker residual. A received partial sum is
 * decoded and added to this rank's own contribution, taken exactly (input
 * plus worker residual, whose range is then cleared), and, unless this rank
 * owns the segment, encoded again with this rank's reducer residual for the
 * segment and sent on at the next step. After n-1 steps rank r holds the
 * complete sum of segment (r + 1) mod n; it scales it for LC_AVG, encodes it
 * once more with its reducer residual, decodes those bytes into its own
 * output ("adopts" them) and starts the all-gather: in step s it sends the
 * bytes of segment (r + 1 - s) mod n (its own, then what it has just
 * received) and receives segment (r - s) mod n, which it decodes into place
 * and forwards unchanged. Every rank ends with the decoded value of the same
 * bytes, bit for bit.
 *
 * Against two-phase: the same wire volume (2(n-1)/n of the compressed
 * buffer per rank) and the same encode count per rank (the whole buffer
 * once), but each rank sends to one peer and receives from one, so no
 * receiver ever has several senders (what drops packets on a switch with a
 * shallow queue), at the price of 2(n-1) dependent hops per chunk and n-1
 * lossy stages on the way to the owner, each with its residual. The reducer
 * residual covers every segment but this rank's own (indexed like the
 * buffer).
 *
 * Pipelining: chunk c of step s+1 leaves as soon as chunk c of step s has
 * arrived, been added and re-encoded, while later chunks are on the wire.
 *
 * Memory: the partial sums live in the output (out of place) or in a
 * buffer-sized scratch (in place); encoded chunks in scratch, one per chunk
 * of every step. Abort safety as in two-phase: in place, nothing is decoded
 * into the buffer before the commit point (every message sent, received and
 * checked, every encode and addition done).
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__allreduce_ring_coded(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t ce = lc__coded_chunk_elems(a), es = sizeof(float);
    const size_t cap = lc__codec_max_encoded_size(a->codec, ce);
    const size_t maxc = lc__nchunks(lc__seg_cnt(a->count, n, 0), ce);
    const int right = lc__mod(r + 1, n), left = lc__mod(r - 1, n);
    const int inplace = a->sendbuf == a->recvbuf;
    const float *in = a->sendbuf;
    float *out = a->recvbuf;
    float *acc = inplace ? lc__sched_scratch(s, a->count * es) : out;
    uint8_t *sendb = lc__sched_scratch(s, (size_t)n * maxc * cap);
    uint8_t *rcv = lc__sched_scratch(s, (size_t)(n - 1) * maxc * cap);
    uint8_t *agb = lc__sched_scratch(s, (size_t)(n - 1) * maxc * cap);
    int *msg = lc__coll_ids(s, maxc); /* per chunk: what goes out at the next step */
    int join = inplace ? lc__sched_commit_point(s) : -1;
    float *check = inplace ? lc__sched_scratch(s, ce * es) : NULL;

    if (acc == NULL || sendb == NULL || rcv == NULL || agb == NULL || msg == NULL ||
        (inplace && check == NULL))
        return LC_ERR_NO_MEMORY;

    /* Step 0's message: this rank's own segment, encoded with its worker residual. */
    size_t off = lc__seg_off(a->count, n, r), cnt = lc__seg_cnt(a->count, n, r);
    for (size_t c = 0; c < lc__nchunks(cnt, ce); c++) {
        size_t e0 = off + c * ce, k = LC_MIN(ce, cnt - c * ce);
        msg[c] = lc__sched_encode(s, a->codec, a->ef_in, a->ef_out, e0, in + e0, k, sendb + c * cap,
                                  cap);
        lc__sched_dep(s, msg[c], join);
    }
    /* Reduce-scatter. */
    for (int st = 0; st < n - 1; st++) {
        int sj = lc__mod(r - st, n), rj = lc__mod(r - st - 1, n);
        size_t scnt = lc__seg_cnt(a->count, n, sj);
        size_t roff = lc__seg_off(a->count, n, rj), rcnt = lc__seg_cnt(a->count, n, rj);
        const int last = st == n - 2; /* rj is this rank's own segment */
        for (size_t c = 0; c < lc__nchunks(scnt, ce); c++)
            lc__sched_dep(s, lc__sched_send_coded(s, right, msg[c]), join);
        for (size_t c = 0; c < lc__nchunks(rcnt, ce); c++) {
            size_t e0 = roff + c * ce, k = LC_MIN(ce, rcnt - c * ce);
            int id = lc__sched_recv_upto(s, left, rcv + ((size_t)st * maxc + c) * cap, cap, k);
            int own = lc__coded_own(s, a, acc + e0, e0, k);
            lc__sched_dep(s, own, join);
            int add = lc__sched_decode(s, a->codec, id, acc + e0, k, 1);
            lc__sched_dep(s, own, add);
            int prev = add;
            if (last) {
                prev = lc__sched_scale(s, acc + e0, k, LC_FLOAT32, a->op, n);
                lc__sched_dep(s, add, prev);
            }
            uint8_t *buf = sendb + ((size_t)(st + 1) * maxc + c) * cap;
            int enc =
                lc__sched_encode(s, a->codec, lc__red_state(a, a->red_in, last),
                                 lc__red_state(a, a->red_out, last), e0, acc + e0, k, buf, cap);
            lc__sched_dep(s, prev, enc);
            lc__sched_dep(s, enc, join);
            if (last) {
                int adopt = lc__sched_decode(s, a->codec, enc, out + e0, k, 0);
                lc__sched_dep(s, join, adopt);
            }
            msg[c] = enc;
        }
    }
    /* All-gather: forward the owners' bytes unchanged, decode each into place. */
    for (int st = 0; st < n - 1; st++) {
        int sj = lc__mod(r + 1 - st, n), rj = lc__mod(r - st, n);
        size_t scnt = lc__seg_cnt(a->count, n, sj);
        size_t roff = lc__seg_off(a->count, n, rj), rcnt = lc__seg_cnt(a->count, n, rj);
        for (size_t c = 0; c < lc__nchunks(scnt, ce); c++)
            lc__sched_dep(s, lc__sched_send_coded(s, right, msg[c]), join);
        for (size_t c = 0; c < lc__nchunks(rcnt, ce); c++) {
            size_t e0 = roff + c * ce, k = LC_MIN(ce, rcnt - c * ce);
            int id = lc__sched_recv_upto(s, left, agb + ((size_t)st * maxc + c) * cap, cap, k);
            lc__coded_deliver(s, a->codec, id, out + e0, k, 0, check, join);
            msg[c] = id;
        }
    }
    return LC_OK;
}
