/*
 * Ring reduce-scatter. Block j of the result (recvcount elements) belongs to
 * rank j. In step s (0 <= s < n-1) rank r sends its running partial sum of
 * block (r - s - 1) mod n to the right and receives the left neighbour's
 * partial sum of block (r - s - 2) mod n, adds its own contribution and
 * passes it on at the next step; at the last step the block it receives is
 * its own, (r - n) mod n = r, and the sum goes straight to the output (scaled
 * once for LC_AVG). Each rank sends (n-1)/n of the input: the bandwidth
 * optimum.
 *
 * Partial sums travel through two block-sized scratch buffers (reused across
 * calls): step s receives into one while the other, filled at step s-1, is
 * being sent on; a chunk of a buffer is received into only after its previous
 * contents went out. The final step receives into scratch too, so an
 * in-place call (output = this rank's own input block) reads its input before
 * overwriting it. The reduction order (received) op (own) is the same on
 * every rank.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__reduce_scatter_ring(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    const size_t nc = lc__nchunks(a->count, ce);
    const int right = lc__mod(r + 1, n), left = lc__mod(r - 1, n);
    const char *in = a->sendbuf;
    char *bufs[2] = { lc__sched_scratch(s, a->count * es), lc__sched_scratch(s, a->count * es) };
    int *red_prev = lc__coll_ids(s, nc);  /* reduce of the previous step, per chunk */
    int *sent_prev = lc__coll_ids(s, nc); /* send of the previous step, per chunk */
    int *sent = lc__coll_ids(s, nc);

    if (bufs[0] == NULL || bufs[1] == NULL || red_prev == NULL || sent_prev == NULL || sent == NULL)
        return LC_ERR_NO_MEMORY;
    for (int st = 0; st < n - 1; st++) {
        int sb = lc__mod(r - st - 1, n), rb = lc__mod(r - st - 2, n);
        char *cur = bufs[st % 2], *prv = bufs[(st + 1) % 2];
        for (size_t c = 0; c < nc; c++) {
            size_t k = LC_MIN(ce, a->count - c * ce);
            const char *src =
                st == 0 ? lc__at(in, (size_t)sb * a->count + c * ce, es) : lc__at(prv, c * ce, es);
            sent[c] = lc__sched_send(s, right, src, k * es);
            lc__sched_dep(s, red_prev[c], sent[c]);
        }
        for (size_t c = 0; c < nc; c++) {
            size_t k = LC_MIN(ce, a->count - c * ce);
            const char *own = lc__at(in, (size_t)rb * a->count + c * ce, es);
            char *slot = lc__at(cur, c * ce, es);
            int rid = lc__sched_recv(s, left, slot, k * es);
            lc__sched_dep(s, sent_prev[c], rid); /* cur was sent from two steps ago */
            char *dst = st == n - 2 ? lc__at(a->recvbuf, c * ce, es) : slot;
            int red = lc__sched_reduce(s, dst, slot, own, k, a->dtype, a->op);
            lc__sched_dep(s, rid, red);
            if (st == n - 2) {
                int sc = lc__sched_scale(s, dst, k, a->dtype, a->op, n);
                lc__sched_dep(s, red, sc);
            }
            red_prev[c] = red;
            sent_prev[c] = sent[c];
        }
    }
    return LC_OK;
}
