/*
 * Ring all-gather. Rank r's block is copied into place (unless the caller
 * passed it in place), then in step s (0 <= s < n-1) rank r sends block
 * (r - s) mod n to its right neighbour and receives block (r - s - 1) mod n
 * from its left one straight into its place in the output. Each block is
 * forwarded as soon as it arrives, chunk by chunk, so the n-1 steps overlap.
 * Every rank sends and receives (n-1)/n of the output: the bandwidth optimum.
 * No scratch memory.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__allgather_ring(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    const size_t nc = lc__nchunks(a->count, ce);
    const int right = lc__mod(r + 1, n), left = lc__mod(r - 1, n);
    char *out = a->recvbuf;
    int *prev = lc__coll_ids(s, nc); /* op that made chunk c of the block to send next */

    if (prev == NULL) return LC_ERR_NO_MEMORY;
    for (size_t c = 0; c < nc; c++) {
        size_t e0 = (size_t)r * a->count + c * ce, k = LC_MIN(ce, a->count - c * ce);
        prev[c] = lc__sched_copy(s, lc__at(out, e0, es), lc__at(a->sendbuf, c * ce, es), k * es);
    }
    for (int st = 0; st < n - 1; st++) {
        int sb = lc__mod(r - st, n), rb = lc__mod(r - st - 1, n);
        for (size_t c = 0; c < nc; c++) {
            size_t k = LC_MIN(ce, a->count - c * ce);
            int id =
                lc__sched_send(s, right, lc__at(out, (size_t)sb * a->count + c * ce, es), k * es);
            lc__sched_dep(s, prev[c], id);
        }
        for (size_t c = 0; c < nc; c++) {
            size_t k = LC_MIN(ce, a->count - c * ce);
            prev[c] =
                lc__sched_recv(s, left, lc__at(out, (size_t)rb * a->count + c * ce, es), k * es);
        }
    }
    return LC_OK;
}
