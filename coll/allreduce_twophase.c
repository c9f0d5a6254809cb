/*
 * Two-phase compressed all-reduce: an encoded all-to-all to the owner of
 * each segment, then an all-gather of the owner's encoding.
 *
 * The buffer is cut into n segments; rank j owns segment j. Phase 1: every
 * rank encodes each other rank's segment of its input, chunk by chunk (with
 * its worker residual when error feedback is on), and sends it to the owner.
 * The owner starts from its own contribution taken exactly (input plus
 * worker residual, whose range it then clears: nothing of it was dropped)
 * and adds the decoded contributions of the others in ascending rank order,
 * a fixed order, so the sum does not depend on which message came first.
 * It scales the sum for LC_AVG and encodes it once more, with its reducer
 * residual. Phase 2: the owner sends those bytes to every other rank, which
 * decode them, and decodes them itself into its own output ("adopts" them):
 * every rank ends with the decoded value of the same bytes, bit for bit.
 *
 * Each element is encoded twice in all (by its sender, by its owner) instead
 * of once per hop as in a compressed ring, and every rank sends and receives
 * 2(n-1)/n of the compressed buffer: the same wire volume as the ring. The
 * price is n-1 connections per rank in use at once instead of 2, which suits
 * the small rank counts of a WAN job; every receive is posted up front, so
 * long links stream.
 *
 * Order: each phase is built as n-1 steps of a pairwise exchange (in step
 * s rank r sends to r + s and receives from r - s), all posted at once: the
 * encodes run in step order, so the data for r + 1 leaves first and the
 * senders converging on one receiver are staggered. Holding step s + 1 back
 * until step s's receives were in was measured and lost on the dc links
 * (docs/performance.md): every step restarted its TCP flows from idle.
 *
 * Pipelining: chunk c goes out as soon as it is encoded and is added by the
 * owner as it lands, while later chunks are still being encoded, on the wire
 * or decoded. Phase 2 of a chunk starts once the owner has all n
 * contributions to it.
 *
 * Abort safety: the input and the committed residuals are only read (the
 * updated residuals go to the *_out states, which the communicator adopts
 * when the collective succeeds). In place, the output is the input, so no
 * decode into it starts before the commit point: every message sent and
 * received, every encode done, and every received message checked by
 * decoding it into a scratch chunk; after that point nothing can fail and
 * aborts are ignored, so the buffer is never left half written. The decodes
 * then run, not overlapped with the wire. Out of place, each chunk is
 * decoded the moment it arrives.
 *
 * Scratch (reused across calls): the owner's f32 sum of its segment, and the
 * encoded chunks: (n-1) segments each for this rank's sends, its phase-1
 * receives and its phase-2 receives, and one segment for its own encoding.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__allreduce_twophase(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t ce = lc__coded_chunk_elems(a), es = sizeof(float);
    const size_t cap = lc__codec_max_encoded_size(a->codec, ce);
    const size_t maxc = lc__nchunks(lc__seg_cnt(a->count, n, 0), ce);
    const size_t ooff = lc__seg_off(a->count, n, r), ocnt = lc__seg_cnt(a->count, n, r);
    const size_t onc = lc__nchunks(ocnt, ce);
    const int inplace = a->sendbuf == a->recvbuf;
    const float *in = a->sendbuf;
    float *out = a->recvbuf;
    float *acc = lc__sched_scratch(s, (ocnt ? ocnt : 1) * es);
    uint8_t *sendb = lc__sched_scratch(s, (size_t)(n - 1) * maxc * cap);
    uint8_t *rcv1 = lc__sched_scratch(s, (size_t)(n - 1) * maxc * cap);
    uint8_t *rcv2 = lc__sched_scratch(s, (size_t)(n - 1) * maxc * cap);
    uint8_t *own = lc__sched_scratch(s, (onc ? onc : 1) * cap);
    int *rid = lc__coll_ids(s, (size_t)n * maxc);        /* phase-1 receive of [src][chunk] */
    int *encs = lc__coll_ids(s, onc);                    /* the owner's encoding of each chunk */
    int join = inplace ? lc__sched_commit_point(s) : -1; /* in place: see above */
    float *check = inplace ? lc__sched_scratch(s, ce * es) : NULL;

    if (acc == NULL || sendb == NULL || rcv1 == NULL || rcv2 == NULL || own == NULL ||
        rid == NULL || encs == NULL || (inplace && check == NULL))
        return LC_ERR_NO_MEMORY;

    /* Phase 1: step st sends the segment of owner r + st, chunk by chunk,
     * and receives its contribution to this segment from r - st. */
    for (int st = 1; st < n; st++) {
        int j = lc__mod(r + st, n), src = lc__mod(r - st, n);
        size_t off = lc__seg_off(a->count, n, j), cnt = lc__seg_cnt(a->count, n, j);
        for (size_t c = 0; c < lc__nchunks(cnt, ce); c++) {
            size_t e0 = off + c * ce, k = LC_MIN(ce, cnt - c * ce);
            uint8_t *buf = sendb + ((size_t)(st - 1) * maxc + c) * cap;
            int enc = lc__sched_encode(s, a->codec, a->ef_in, a->ef_out, e0, in + e0, k, buf, cap);
            lc__sched_dep(s, lc__sched_send_coded(s, j, enc), join);
        }
        for (size_t c = 0; c < onc; c++) {
            uint8_t *buf = rcv1 + ((size_t)(st - 1) * maxc + c) * cap;
            int id = lc__sched_recv_upto(s, src, buf, cap, LC_MIN(ce, ocnt - c * ce));
            rid[(size_t)src * maxc + c] = id;
        }
    }
    /* The owner's sum, encoding, adoption and phase-2 sends, per chunk. */
    for (size_t c = 0; c < onc; c++) {
        size_t e0 = ooff + c * ce, k = LC_MIN(ce, ocnt - c * ce);
        float *sum = acc + c * ce;
        int prev = lc__coded_own(s, a, sum, e0, k);
        lc__sched_dep(s, prev, join);
        for (int src = 0; src < n; src++) {
            if (src == r) continue;
            int d = lc__sched_decode(s, a->codec, rid[(size_t)src * maxc + c], sum, k, 1);
            lc__sched_dep(s, prev, d);
            prev = d;
        }
        int sc = lc__sched_scale(s, sum, k, LC_FLOAT32, a->op, n);
        lc__sched_dep(s, prev, sc);
        int enc =
            lc__sched_encode(s, a->codec, lc__red_state(a, a->red_in, 1),
                             lc__red_state(a, a->red_out, 1), c * ce, sum, k, own + c * cap, cap);
        lc__sched_dep(s, sc, enc);
        lc__sched_dep(s, enc, join);
        int adopt = lc__sched_decode(s, a->codec, enc, out + e0, k, 0);
        lc__sched_dep(s, join, adopt);
        encs[c] = enc;
    }
    /* Phase 2: step st sends this rank's encoding to r + st and receives
     * owner r - st's, decoded into place. */
    for (int st = 1; st < n; st++) {
        int j = lc__mod(r - st, n);
        size_t off = lc__seg_off(a->count, n, j), cnt = lc__seg_cnt(a->count, n, j);
        for (size_t c = 0; c < onc; c++)
            lc__sched_dep(s, lc__sched_send_coded(s, lc__mod(r + st, n), encs[c]), join);
        for (size_t c = 0; c < lc__nchunks(cnt, ce); c++) {
            size_t e0 = off + c * ce, k = LC_MIN(ce, cnt - c * ce);
            uint8_t *buf = rcv2 + ((size_t)(st - 1) * maxc + c) * cap;
            int id = lc__sched_recv_upto(s, j, buf, cap, k);
            lc__coded_deliver(s, a->codec, id, out + e0, k, 0, check, join);
        }
    }
    return LC_OK;
}
