/*
 * Pairwise-exchange all-to-all (and all-to-all-v). Rank r's block for rank
 * d goes to d; in step s (1 <= s < n) rank r sends to (r + s) mod n and
 * receives from (r - s) mod n, so every rank sends to a different rank in
 * every step and no receiver is the target of two senders in the same step.
 * All steps are posted at once: the transport overlaps them, and the step
 * order fixes the order each pair's messages are matched in (and, since
 * encodes run in step order, the data for r + 1 leaves first). Holding a
 * step's sends until the previous step's receives were in, so that each
 * receiver has one sender at a time, was measured and lost on long links
 * (every step drains the pipe: on wan it was much slower,
 * compressed or not) and did not win clearly on dc (measured:
 * docs/performance.md, "Compressed collectives"). Each block is cut into
 * pipeline chunks; this rank's own block is copied locally.
 *
 * One connection per peer: with every peer sending at once, striping each
 * pair's chunks over several connections (which a ring needs to fill a long
 * link with one peer) only multiplies the flows converging on each
 * receiver's queue: on dc, two connections per peer were slower than one
 * (measured: docs/performance.md, "Compressed collectives"). With two
 * ranks there is one peer, and all connections are used.
 *
 * With a codec, the sender encodes each chunk once (with its residual for
 * that destination's block when error feedback is on: the worker residual
 * is indexed like the send buffer) and the receiver decodes it straight into
 * place. The own block is copied exactly and its residual range carried over
 * unchanged (all-to-all-v: the whole residual is carried over first, so
 * the gaps between send blocks keep theirs). Zero-sized blocks send no
 * data. alltoallv counts must agree pairwise (what r sends to d is what d
 * expects from r): each pair first exchanges its block's element count, and
 * a receiver that expected another fails with LC_ERR_MISMATCH (and tells
 * the others; a sender whose part is done may finish first, as in MPI).
 *
 * Memory: uncompressed, none (data goes from the input and lands in place).
 * Compressed, one encoded chunk per chunk of the send blocks and of the
 * receive blocks (scratch reused across calls).
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

static size_t lc__a2a_cnt(const lc_coll_args_t *a, int send, int peer)
{
    if (a->type == LC_COLL_ALLTOALL) return a->count;
    return send ? a->sendcounts[peer] : a->recvcounts[peer];
}

static size_t lc__a2a_off(const lc_coll_args_t *a, int send, int peer)
{
    if (a->type == LC_COLL_ALLTOALL) return (size_t)peer * a->count;
    return send ? a->sdispls[peer] : a->rdispls[peer];
}

lc_status_t lc__alltoall_pairwise(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t es = lc_dtype_size(a->dtype);
    const size_t ce = a->codec ? lc__coded_chunk_elems(a) : lc__chunk_elems(a);
    const size_t cap = a->codec ? lc__codec_max_encoded_size(a->codec, ce) : 0;
    size_t sch = 0, rch = 0; /* chunks sent / received in all */
    uint8_t *sendb = NULL, *recvb = NULL;

    for (int p = 0; p < n; p++) {
        if (p == r) continue;
        sch += lc__nchunks(lc__a2a_cnt(a, 1, p), ce);
        rch += lc__nchunks(lc__a2a_cnt(a, 0, p), ce);
    }
    if (n > 2) lc__sched_set_lanes(s, 1);
    if (a->codec != NULL) {
        sendb = lc__sched_scratch(s, (sch ? sch : 1) * cap);
        recvb = lc__sched_scratch(s, (rch ? rch : 1) * cap);
        if (sendb == NULL || recvb == NULL) return LC_ERR_NO_MEMORY;
    }
    /* Own block. */
    size_t own = lc__a2a_cnt(a, 1, r);
    if (own != lc__a2a_cnt(a, 0, r)) {
        lc_error("alltoallv: rank %d sends itself %zu elements but expects %zu", r, own,
                 lc__a2a_cnt(a, 0, r));
        return LC_ERR_MISMATCH;
    }
    const int ef = a->ef_out != NULL && a->ef_in->residual != NULL;
    const int v = a->type == LC_COLL_ALLTOALLV;
    int carry = -1; /* alltoallv with error feedback: the residual carried over */
    if (ef && v && a->ef_out->count > 0)
        carry = lc__sched_copy(s, a->ef_out->residual, a->ef_in->residual,
                               a->ef_out->count * sizeof(float));
    if (own > 0) {
        size_t so = lc__a2a_off(a, 1, r), ro = lc__a2a_off(a, 0, r);
        lc__sched_copy(s, lc__at(a->recvbuf, ro, es), lc__at(a->sendbuf, so, es), own * es);
        if (ef && !v)
            lc__sched_copy(s, a->ef_out->residual + so, a->ef_in->residual + so,
                           own * sizeof(float));
    }
    uint64_t *cnt_out = v ? lc__sched_scratch(s, (size_t)n * sizeof(uint64_t)) : NULL;
    uint64_t *cnt_in = v ? lc__sched_scratch(s, (size_t)n * sizeof(uint64_t)) : NULL;
    if (v && (cnt_out == NULL || cnt_in == NULL)) return LC_ERR_NO_MEMORY;
    sch = rch = 0;
    for (int st = 1; st < n; st++) {
        int d = lc__mod(r + st, n), src = lc__mod(r - st, n);
        size_t scnt = lc__a2a_cnt(a, 1, d), soff = lc__a2a_off(a, 1, d);
        size_t rcnt = lc__a2a_cnt(a, 0, src), roff = lc__a2a_off(a, 0, src);
        if (v) { /* the pair's counts first, then the data */
            cnt_out[d] = scnt;
            lc__sched_send(s, d, &cnt_out[d], sizeof(uint64_t));
            int got = lc__sched_recv(s, src, &cnt_in[src], sizeof(uint64_t));
            lc__sched_dep(s, got, lc__sched_check(s, &cnt_in[src], rcnt, "sends a block of", src));
        }
        for (size_t c = 0; c < lc__nchunks(scnt, ce); c++) {
            size_t e0 = soff + c * ce, k = LC_MIN(ce, scnt - c * ce);
            if (a->codec == NULL) {
                lc__sched_send(s, d, lc__at(a->sendbuf, e0, es), k * es);
            } else {
                const float *x = (const float *)a->sendbuf + e0;
                int enc = lc__sched_encode(s, a->codec, a->ef_in, a->ef_out, e0, x, k,
                                           sendb + sch++ * cap, cap);
                lc__sched_dep(s, carry, enc);
                lc__sched_send_coded(s, d, enc);
            }
        }
        for (size_t c = 0; c < lc__nchunks(rcnt, ce); c++) {
            size_t e0 = roff + c * ce, k = LC_MIN(ce, rcnt - c * ce);
            if (a->codec == NULL) {
                lc__sched_recv(s, src, lc__at(a->recvbuf, e0, es), k * es);
            } else {
                int id = lc__sched_recv_upto(s, src, recvb + rch++ * cap, cap, k);
                lc__sched_decode(s, a->codec, id, (float *)a->recvbuf + e0, k, 0);
            }
        }
    }
    return LC_OK;
}
