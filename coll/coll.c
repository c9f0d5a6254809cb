/*
 * Dispatch from a collective's arguments and chosen algorithm to the
 * algorithm's schedule builder, plus the cases every algorithm shares: a
 * single rank (a local copy) and an empty buffer (a token around the ring,
 * so that mismatched arguments are still caught).
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

#include <string.h>

int *lc__coll_ids(lc_sched_t *s, size_t n)
{
    int *ids = lc__sched_scratch(s, (n ? n : 1) * sizeof(int));
    if (ids != NULL) memset(ids, 0xff, (n ? n : 1) * sizeof(int));
    return ids;
}

int lc__coded_own(lc_sched_t *s, const lc_coll_args_t *a, float *dst, size_t e0, size_t k)
{
    const float *in = (const float *)a->sendbuf + e0;
    if (a->ef_out == NULL || a->ef_in->residual == NULL)
        return lc__sched_copy(s, dst, in, k * sizeof(float));
    int own = lc__sched_reduce(s, dst, in, a->ef_in->residual + e0, k, LC_FLOAT32, LC_SUM);
    lc__sched_dep(s, own, lc__sched_zero(s, a->ef_out->residual + e0, k * sizeof(float)));
    return own;
}

int lc__coded_deliver(lc_sched_t *s, lc_codec_t *codec, int id, float *dst, size_t k,
                      int accumulate, float *check, int join)
{
    if (check != NULL) lc__sched_dep(s, lc__sched_decode(s, codec, id, check, k, 0), join);
    int d = lc__sched_decode(s, codec, id, dst, k, accumulate);
    lc__sched_dep(s, join, d);
    return d;
}

lc_status_t lc__tree_schedule(lc_sched_t *s, const size_t nc[2], size_t lag,
                              int (*up)(void *arg, int tree, size_t c),
                              void (*down)(void *arg, int tree, size_t c, int up_op), void *arg)
{
    size_t maxc = LC_MAX(nc[0], nc[1]);
    int *ups = lc__coll_ids(s, 2 * (maxc ? maxc : 1));

    if (ups == NULL) return LC_ERR_NO_MEMORY;
    for (size_t c = 0; c < maxc + lag; c++) {
        for (int i = 0; i < 2; i++) {
            if (c < nc[i]) ups[(size_t)i * maxc + c] = up(arg, i, c);
            if (c >= lag && c - lag < nc[i]) down(arg, i, c - lag, ups[(size_t)i * maxc + c - lag]);
        }
    }
    return LC_OK;
}

void lc__tree_shape(int r, int n, int mirror, int *parent_p, int child[2])
{
    int v = mirror ? n - 1 - r : r;
    int p = v == 0 ? -1 : (v - 1) / 2;
    for (int i = 0; i < 2; i++) {
        int c = 2 * v + 1 + i;
        child[i] = c < n ? (mirror ? n - 1 - c : c) : -1;
    }
    *parent_p = p >= 0 && mirror ? n - 1 - p : p;
}

void lc__tree_half(size_t count, int tree, size_t *off_p, size_t *cnt_p)
{
    *off_p = tree == 0 ? 0 : count / 2;
    *cnt_p = tree == 0 ? count / 2 : count - count / 2;
}

lc_status_t lc__coll_null(lc_sched_t *s, int rank, int n)
{
    lc__sched_send(s, lc__mod(rank + 1, n), NULL, 0);
    lc__sched_recv(s, lc__mod(rank - 1, n), NULL, 0);
    return LC_OK;
}

int lc__broadcast_ack(lc_sched_t *s, int rank, int n, int root, int last, int after)
{
    if (last) {
        int id = lc__sched_send(s, root, NULL, 0);
        lc__sched_dep(s, after, id);
        return id;
    }
    if (rank == root) return lc__sched_recv(s, lc__mod(root - 1, n), NULL, 0);
    return -1;
}

void lc__coll_owned(const lc_coll_args_t *a, lc_algo_t algo, int rank, int n, size_t *off_p,
                    size_t *cnt_p)
{
    *off_p = 0;
    *cnt_p = 0;
    if (a->type == LC_COLL_ALLREDUCE && algo == LC_ALGO_RING && a->codec != NULL && n > 1) {
        *cnt_p = a->count; /* every segment but its own, indexed like the buffer */
    } else if (a->type == LC_COLL_ALLREDUCE && algo == LC_ALGO_TWOPHASE && n > 1) {
        *off_p = lc__seg_off(a->count, n, rank);
        *cnt_p = lc__seg_cnt(a->count, n, rank);
    } else if (a->type == LC_COLL_ALLREDUCE && algo == LC_ALGO_TREE && a->codec != NULL && n > 1) {
        /* the half of the tree in which this rank has children (at most one) */
        for (int i = 0; i < 2; i++) {
            int parent, child[2];
            lc__tree_shape(rank, n, i, &parent, child);
            if (child[0] >= 0) lc__tree_half(a->count, i, off_p, cnt_p);
        }
    }
}

void lc__coll_red_span(const lc_coll_args_t *a, lc_algo_t algo, int rank, int n, size_t *off_p,
                       size_t *cnt_p)
{
    int parent, child[2], root = 0;

    lc__coll_owned(a, algo, rank, n, off_p, cnt_p);
    if (a->ef != LC_EF_HOPS) return;
    if (algo == LC_ALGO_TWOPHASE) {
        root = 1; /* the owner's encode of its segment is always the final one */
    } else if (algo == LC_ALGO_TREE) {
        for (int i = 0; i < 2; i++) {
            lc__tree_shape(rank, n, i, &parent, child);
            if (child[0] >= 0 && parent < 0) root = 1; /* the root of the tree it reduces in */
        }
    }
    if (root) *cnt_p = 0;
}

/* One rank: the result is the input. */
static lc_status_t lc__coll_single(lc_sched_t *s, const lc_coll_args_t *a)
{
    size_t es = lc_dtype_size(a->dtype);
    switch (a->type) {
    case LC_COLL_ALLREDUCE:
    case LC_COLL_ALLGATHER:
    case LC_COLL_REDUCE_SCATTER:
    case LC_COLL_ALLTOALL:
        if (a->count > 0) lc__sched_copy(s, a->recvbuf, a->sendbuf, a->count * es);
        break;
    case LC_COLL_ALLTOALLV:
        if (a->sendcounts[0] != a->recvcounts[0]) {
            lc_error("alltoallv: the only rank sends itself %zu elements but expects %zu",
                     a->sendcounts[0], a->recvcounts[0]);
            return LC_ERR_MISMATCH;
        }
        lc__sched_copy(s, lc__at(a->recvbuf, a->rdispls[0], es),
                       lc__at(a->sendbuf, a->sdispls[0], es), a->sendcounts[0] * es);
        break;
    default: break;
    }
    return LC_OK;
}

lc_status_t lc__coll_build(lc_sched_t *s, const lc_coll_args_t *a, lc_algo_t algo, int rank, int n)
{
    if (n == 1) return lc__coll_single(s, a);
    if (a->type == LC_COLL_ALLTOALLV) return lc__alltoall_pairwise(s, a, rank, n);
    if (a->count == 0 || a->type == LC_COLL_BARRIER) {
        if (a->type == LC_COLL_BARRIER) return lc__barrier_dissemination(s, a, rank, n);
        return lc__coll_null(s, rank, n);
    }
    if (a->codec != NULL) {
        switch (a->type) {
        case LC_COLL_ALLREDUCE:
            if (algo == LC_ALGO_RING) return lc__allreduce_ring_coded(s, a, rank, n);
            if (algo == LC_ALGO_TREE) return lc__allreduce_tree_coded(s, a, rank, n);
            if (algo == LC_ALGO_SPARSE) return lc__allreduce_sparse(s, a, rank, n);
            return lc__allreduce_twophase(s, a, rank, n);
        case LC_COLL_ALLGATHER: return lc__allgather_ring_coded(s, a, rank, n);
        case LC_COLL_BROADCAST: return lc__broadcast_chain_coded(s, a, rank, n);
        case LC_COLL_ALLTOALL: return lc__alltoall_pairwise(s, a, rank, n);
        default: return LC_ERR_UNSUPPORTED;
        }
    }
    switch (a->type) {
    case LC_COLL_ALLTOALL: return lc__alltoall_pairwise(s, a, rank, n);
    case LC_COLL_ALLREDUCE:
        if (algo == LC_ALGO_RING) return lc__allreduce_ring(s, a, rank, n);
        if (algo == LC_ALGO_TREE) return lc__allreduce_tree(s, a, rank, n);
        return lc__allreduce_recdbl(s, a, rank, n);
    case LC_COLL_BROADCAST:
        if (algo == LC_ALGO_TREE) return lc__broadcast_tree(s, a, rank, n);
        return lc__broadcast_chain(s, a, rank, n);
    case LC_COLL_ALLGATHER: return lc__allgather_ring(s, a, rank, n);
    case LC_COLL_REDUCE_SCATTER: return lc__reduce_scatter_ring(s, a, rank, n);
    default: return LC_ERR_INVALID_ARG;
    }
}
