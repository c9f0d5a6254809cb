/*
 * Double binary tree all-reduce (the scheme NCCL uses for mid-size
 * messages).
 *
 * A binary tree alone wastes half the links: leaves only send up and receive
 * down once. So the buffer is split in two halves, each reduced and
 * broadcast along its own tree. Tree 0 is the heap-ordered tree over ranks
 * (root 0, children of v are 2v+1 and 2v+2); tree 1 is the same shape over
 * the mirrored ranks (n-1-r), so the ranks that are leaves in one tree are the
 * interior of the other and every rank does about the same work.
 *
 * Up: a node reduces its children's partial sums with its own contribution,
 * always in the order (left child) op (own) op (right child), and sends the
 * result to its parent. The root scales (LC_AVG) and then sends the final
 * chunk down; each node stores it and forwards it to its children. Since
 * every rank ends with the bytes the root produced, results are identical
 * everywhere. Both halves are cut into chunks and the two trees are
 * interleaved chunk by chunk, the way up of chunk c + LC_TREE_LAG added with
 * the way down of chunk c (the order every rank adds its messages in, so
 * each pair of ranks agrees on it), so up and down traffic of different
 * chunks and both trees overlap. Without the lag, a pair of ranks linked in
 * both trees had chunk c + 1's way up in one tree queue behind chunk c's
 * way down in the other, which waits for the root: about one chunk in
 * flight per tree round trip. When every rank is on one host the trees run
 * in step (no lag): see lc__allreduce_tree. Children's partial sums land in
 * LC_COLL_SLOTS pairs of chunk-sized scratch slots, reused across calls.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

typedef struct {
    int parent, child[2];
    size_t off, cnt; /* this tree's half of the buffer, in elements */
    int slot_user[LC_COLL_SLOTS][2];
} lc_tree_t;

/* One call's schedule: the two trees and their slots. */
typedef struct {
    lc_sched_t *s;
    const lc_coll_args_t *a;
    int n;
    lc_tree_t t[2];
    char *slots; /* [tree][slot][left, right] chunk-sized */
} lc_tree_ctx_t;

/* How many chunks the way up runs ahead of the way down between hosts. */
#define LC_TREE_LAG 4

/* Add the way up of chunk c of tree `tree`: receive the children's partial
 * sums, reduce, and send the result to the parent (at the root: scale).
 * Returns the last op, which the way down follows. */
static int lc__tree_up(void *arg, int tree, size_t c)
{
    lc_tree_ctx_t *x = arg;
    lc_sched_t *s = x->s;
    const lc_coll_args_t *a = x->a;
    lc_tree_t *t = &x->t[tree];
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    char *slots = x->slots + (size_t)tree * LC_COLL_SLOTS * 2 * ce * es;
    size_t e0 = t->off + c * ce, k = LC_MIN(ce, t->cnt - c * ce);
    char *out = lc__at(a->recvbuf, e0, es);
    const char *in = lc__at(a->sendbuf, e0, es);
    int sl = (int)(c % LC_COLL_SLOTS);
    int last, rcv[2] = { -1, -1 };
    char *cs[2];

    /* (left) op (own) op (right). */
    for (int i = 0; i < 2; i++) {
        cs[i] = slots + ((size_t)sl * 2 + (size_t)i) * ce * es;
        if (t->child[i] < 0) continue;
        rcv[i] = lc__sched_recv(s, t->child[i], cs[i], k * es);
        lc__sched_dep(s, t->slot_user[sl][i], rcv[i]);
    }
    if (rcv[0] >= 0) {
        last = lc__sched_reduce(s, out, cs[0], in, k, a->dtype, a->op);
        lc__sched_dep(s, rcv[0], last);
        t->slot_user[sl][0] = last;
    } else {
        last = lc__sched_copy(s, out, in, k * es);
    }
    if (rcv[1] >= 0) {
        int red = lc__sched_reduce(s, out, out, cs[1], k, a->dtype, a->op);
        lc__sched_dep(s, rcv[1], red);
        lc__sched_dep(s, last, red);
        t->slot_user[sl][1] = red;
        last = red;
    }
    int up = t->parent >= 0 ? lc__sched_send(s, t->parent, out, k * es)
                            : lc__sched_scale(s, out, k, a->dtype, a->op, x->n);
    lc__sched_dep(s, last, up);
    return up;
}

/* Add the way down of chunk c of tree `tree`, after its way up (op up): the
 * final value from the parent replaces the partial sum once that was sent,
 * and goes on to the children. */
static void lc__tree_down(void *arg, int tree, size_t c, int up)
{
    const lc_tree_ctx_t *x = arg;
    lc_sched_t *s = x->s;
    const lc_coll_args_t *a = x->a;
    const lc_tree_t *t = &x->t[tree];
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    size_t e0 = t->off + c * ce, k = LC_MIN(ce, t->cnt - c * ce);
    char *out = lc__at(a->recvbuf, e0, es);
    int last = up;

    if (t->parent >= 0) {
        last = lc__sched_recv(s, t->parent, out, k * es);
        lc__sched_dep(s, up, last);
    }
    for (int i = 0; i < 2; i++) {
        if (t->child[i] < 0) continue;
        int id = lc__sched_send(s, t->child[i], out, k * es);
        lc__sched_dep(s, last, id);
    }
}

lc_status_t lc__allreduce_tree(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    lc_tree_ctx_t x = { .s = s, .a = a, .n = n };
    size_t nc[2];

    x.slots = lc__sched_scratch(s, (size_t)LC_COLL_SLOTS * 2 * 2 * ce * es);
    if (x.slots == NULL) return LC_ERR_NO_MEMORY;
    for (int i = 0; i < 2; i++) {
        lc_tree_t *t = &x.t[i];
        lc__tree_shape(r, n, i, &t->parent, t->child);
        lc__tree_half(a->count, i, &t->off, &t->cnt);
        nc[i] = lc__nchunks(t->cnt, ce);
        for (int j = 0; j < LC_COLL_SLOTS; j++) t->slot_user[j][0] = t->slot_user[j][1] = -1;
    }
    /* Between hosts the way up runs LC_TREE_LAG chunks ahead (lc__tree_schedule
     * says why), which made the tree much faster on 4 hosts. Not
     * when every rank is on one host: there a chunk's round trip is a few
     * memory copies, and the lag only spreads the working set over more
     * memory, which made the same call slower on loopback (measured:
     * docs/performance.md, "Between hosts"). */
    return lc__tree_schedule(s, nc, a->one_host ? 0 : LC_TREE_LAG, lc__tree_up, lc__tree_down, &x);
}
