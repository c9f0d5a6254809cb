/*
 * Pipelined binary-tree broadcast, for small and mid-size buffers where the
 * chain's n-1 hops of start-up latency would dominate. Ranks are numbered by
 * their distance from the root (v = r - root mod n) and arranged as a heap:
 * v receives from (v - 1) / 2 and sends to 2v + 1 and 2v + 2, chunk by chunk,
 * so the data reaches every rank after about log2(n) hops. Data lands in
 * place; no scratch.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__broadcast_tree(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    const size_t nc = lc__nchunks(a->count, ce);
    const int v = lc__mod(r - a->root, n);
    const int parent = v > 0 ? lc__mod((v - 1) / 2 + a->root, n) : -1;
    int child[2];

    for (int i = 0; i < 2; i++)
        child[i] = 2 * v + 1 + i < n ? lc__mod(2 * v + 1 + i + a->root, n) : -1;
    int got = -1;

    for (size_t c = 0; c < nc; c++) {
        size_t k = LC_MIN(ce, a->count - c * ce);
        char *p = lc__at(a->recvbuf, c * ce, es);
        got = parent >= 0 ? lc__sched_recv(s, parent, p, k * es) : -1;
        for (int i = 0; i < 2; i++) {
            if (child[i] < 0) continue;
            int id = lc__sched_send(s, child[i], p, k * es);
            lc__sched_dep(s, got, id);
        }
    }
    /* The last heap position acknowledges to the root (see broadcast_chain.c). */
    lc__broadcast_ack(s, r, n, a->root, v == n - 1, got);
    return LC_OK;
}
