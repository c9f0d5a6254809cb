/*
 * Dissemination barrier: in round k (0 <= k < ceil(log2 n)) rank r sends an
 * empty message to r + 2^k and waits for one from r - 2^k (mod n); round k+1
 * starts when round k's message has arrived. After the last round every rank
 * has heard, directly or through others, from every rank, so none leaves
 * before all have entered. ceil(log2 n) message latencies, any n.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__barrier_dissemination(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    int prev = -1;

    (void)a;
    for (int d = 1; d < n; d *= 2) {
        int id = lc__sched_send(s, lc__mod(r + d, n), NULL, 0);
        lc__sched_dep(s, prev, id);
        prev = lc__sched_recv(s, lc__mod(r - d, n), NULL, 0);
    }
    return LC_OK;
}
