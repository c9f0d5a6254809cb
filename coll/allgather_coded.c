/*
 * Compressed ring all-gather: each block is encoded once, by its owner, and
 * the bytes travel the ring 0 -> 1 -> ... -> n-1 -> 0 unchanged.
 *
 * Rank r encodes its block chunk by chunk (with its residual when error
 * feedback is on) and decodes its own encoding into its slot of the output
 * ("adopts" it), so every rank holds the decoded value of the same bytes. In
 * step s (0 <= s < n-1) it sends the chunks of block (r - s) mod n (its own
 * encoding, then what it has just received) and receives block
 * (r - s - 1) mod n, which it decodes into place and forwards at step s+1
 * without re-encoding. Chunks pipeline: chunk c is forwarded as soon as it
 * has arrived, while later chunks are still on the wire.
 *
 * Abort safety: in place (the input is the output's own slot), the own slot
 * is decoded into only after the commit point: every message sent, received
 * and decoded into the other slots; after it nothing can fail. Scratch: one
 * encoded chunk per chunk of every block (reused across calls).
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

void lc__coded_ring_gather(lc_sched_t *s, int r, int n, size_t count, size_t ce, size_t cap,
                           uint8_t *bufs, int *ids, int join)
{
    const size_t nc = lc__nchunks(count, ce);
    const int right = lc__mod(r + 1, n), left = lc__mod(r - 1, n);

    for (int st = 0; st < n - 1; st++) {
        int sb = lc__mod(r - st, n), rb = lc__mod(r - st - 1, n);
        for (size_t c = 0; c < nc; c++)
            lc__sched_dep(s, lc__sched_send_coded(s, right, ids[(size_t)sb * nc + c]), join);
        for (size_t c = 0; c < nc; c++) {
            uint8_t *buf = bufs + ((size_t)rb * nc + c) * cap;
            ids[(size_t)rb * nc + c] =
                lc__sched_recv_upto(s, left, buf, cap, LC_MIN(ce, count - c * ce));
        }
    }
}

lc_status_t lc__allgather_ring_coded(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t ce = lc__coded_chunk_elems(a), nc = lc__nchunks(a->count, ce);
    const size_t cap = lc__codec_max_encoded_size(a->codec, ce);
    float *out = a->recvbuf;
    const float *in = a->sendbuf;
    const int inplace = in == out + (size_t)r * a->count;
    uint8_t *bufs = lc__sched_scratch(s, (size_t)n * nc * cap);
    int *ids = lc__coll_ids(s, (size_t)n * nc); /* the message of [block][chunk] */
    int join = inplace ? lc__sched_commit_point(s) : -1;

    if (bufs == NULL || ids == NULL) return LC_ERR_NO_MEMORY;
    for (size_t c = 0; c < nc; c++) {
        size_t e0 = c * ce, k = LC_MIN(ce, a->count - e0);
        uint8_t *buf = bufs + ((size_t)r * nc + c) * cap;
        int enc = lc__sched_encode(s, a->codec, a->ef_in, a->ef_out, e0, in + e0, k, buf, cap);
        int adopt = lc__sched_decode(s, a->codec, enc, out + (size_t)r * a->count + e0, k, 0);
        lc__sched_dep(s, join, adopt);
        ids[(size_t)r * nc + c] = enc;
    }
    lc__coded_ring_gather(s, r, n, a->count, ce, cap, bufs, ids, join);
    for (int b = 0; b < n; b++) {
        if (b == r) continue;
        for (size_t c = 0; c < nc; c++) {
            size_t e0 = c * ce, k = LC_MIN(ce, a->count - e0);
            int d = lc__sched_decode(s, a->codec, ids[(size_t)b * nc + c],
                                     out + (size_t)b * a->count + e0, k, 0);
            lc__sched_dep(s, d, join);
        }
    }
    return LC_OK;
}
