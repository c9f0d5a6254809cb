/*
 * Pipelined chain broadcast: root -> root+1 -> ... -> root+n-1 (mod n). The
 * buffer is cut into chunks and each rank forwards chunk c to the next rank
 * the moment it has arrived, so after a start-up of n-1 chunk times every
 * link carries data at once and the whole transfer costs about one buffer
 * time plus (n-1) chunk times: the bandwidth optimum for large buffers. Data
 * lands in place; no scratch.
 *
 * The last rank of the chain then sends the root an empty message. It costs
 * the root one latency, but it means every rank receives something in every
 * broadcast, so a rank that names another root is caught by the signature
 * check (LC_ERR_MISMATCH) instead of both ranks "succeeding" alone.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__broadcast_chain(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    const size_t nc = lc__nchunks(a->count, ce);
    const int pos = lc__mod(r - a->root, n);
    const int next = pos < n - 1 ? lc__mod(r + 1, n) : -1, prev = pos > 0 ? lc__mod(r - 1, n) : -1;

    int got = -1;

    for (size_t c = 0; c < nc; c++) {
        size_t k = LC_MIN(ce, a->count - c * ce);
        char *p = lc__at(a->recvbuf, c * ce, es);
        got = prev >= 0 ? lc__sched_recv(s, prev, p, k * es) : -1;
        if (next >= 0) {
            int id = lc__sched_send(s, next, p, k * es);
            lc__sched_dep(s, got, id);
        }
    }
    lc__broadcast_ack(s, r, n, a->root, pos == n - 1, got);
    return LC_OK;
}
