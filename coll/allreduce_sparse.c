/*
 * Sparse all-gather all-reduce (for topk): every rank encodes its whole
 * input once, the encodings travel a ring all-gather unchanged, and every
 * rank sums all n of them itself.
 *
 * Rank r encodes its input chunk by chunk with its worker residual. The
 * ring all-gather (lc__coded_ring_gather) forwards each rank's bytes around
 * 0 -> 1 -> ... -> n-1 -> 0 without decoding them on the way. Every rank
 * then builds each chunk of the result as decode(rank 0's bytes) + decode
 * (rank 1's) + ... + decode(rank n-1's), in that order whatever the order
 * they arrived in, and scales it for LC_AVG: the same bytes summed in the
 * same order, so the result is bit-identical on every rank.
 *
 * Why it exists: the encodings are never decoded, summed and re-encoded on
 * the way, so the only loss is each rank's own encode (whose error feedback
 * carries it to the next call) and there is no reducer residual; a sparse
 * decode-accumulate only touches the kept elements. The price is wire
 * volume: each rank receives n-1 encodings, n/2 times what two-phase and
 * the compressed ring receive (2(n-1)/n of one). With topk at density d
 * those are n d of the dense buffer or less (indices and values of every
 * rank's kept elements), so while n d is small this is the cheaper
 * all-reduce: fewer passes over the dense buffer (one encode, no owner
 * sum and re-encode) for a few more compressed bytes. Above that, the union
 * of the ranks' kept elements grows towards dense, and two-phase (a sparse
 * reduce-scatter straight to each owner, which sums densely and
 * re-sparsifies with its residual) wins: select.c picks by n d.
 *
 * Pipelining: chunk c of every block is forwarded as soon as it has
 * arrived; out of place, chunk c of the result is summed once all n of its
 * encodings are in, while later chunks are on the wire (in place, the sums
 * wait for the commit point, below).
 *
 * Abort safety: in place, every received message is first checked by
 * decoding it into a scratch chunk; the sums into the buffer run after the
 * commit point. Scratch: one encoded chunk per chunk of each of the n
 * blocks (reused across calls): small for topk, but n whole encoded
 * buffers for a dense codec, which this algorithm also takes when forced.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__allreduce_sparse(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t ce = lc__coded_chunk_elems(a), nc = lc__nchunks(a->count, ce);
    const size_t cap = lc__codec_max_encoded_size(a->codec, ce);
    const int inplace = a->sendbuf == a->recvbuf;
    const float *in = a->sendbuf;
    float *out = a->recvbuf;
    uint8_t *bufs = lc__sched_scratch(s, (size_t)n * nc * cap);
    int *ids = lc__coll_ids(s, (size_t)n * nc); /* the message of [rank][chunk] */
    int join = inplace ? lc__sched_commit_point(s) : -1;
    float *check = inplace ? lc__sched_scratch(s, ce * sizeof(float)) : NULL;

    if (bufs == NULL || ids == NULL || (inplace && check == NULL)) return LC_ERR_NO_MEMORY;
    for (size_t c = 0; c < nc; c++) {
        size_t e0 = c * ce, k = LC_MIN(ce, a->count - e0);
        uint8_t *buf = bufs + ((size_t)r * nc + c) * cap;
        ids[(size_t)r * nc + c] =
            lc__sched_encode(s, a->codec, a->ef_in, a->ef_out, e0, in + e0, k, buf, cap);
        lc__sched_dep(s, ids[(size_t)r * nc + c], join);
    }
    lc__coded_ring_gather(s, r, n, a->count, ce, cap, bufs, ids, join);
    for (size_t c = 0; c < nc; c++) {
        size_t e0 = c * ce, k = LC_MIN(ce, a->count - e0);
        int prev = -1;
        for (int b = 0; b < n; b++) { /* rank b's own encode needs no check */
            int d = lc__coded_deliver(s, a->codec, ids[(size_t)b * nc + c], out + e0, k, b > 0,
                                      b != r ? check : NULL, join);
            lc__sched_dep(s, prev, d);
            prev = d;
        }
        lc__sched_dep(s, prev, lc__sched_scale(s, out + e0, k, LC_FLOAT32, a->op, n));
    }
    return LC_OK;
}
