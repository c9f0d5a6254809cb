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
 * interleaved chunk by chunk, so up and down traffic of different chunks and
 * both trees overlap. Children's partial sums land in LC_COLL_SLOTS pairs of
 * chunk-sized scratch slots, reused across calls.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

typedef struct {
    int parent, child[2];
    size_t off, cnt, nc; /* this tree's half of the buffer, in elements */
    int slot_user[LC_COLL_SLOTS][2];
} lc_tree_t;

/* Add the ops of chunk c of tree t. */
static void lc__tree_chunk(lc_sched_t *s, const lc_coll_args_t *a, lc_tree_t *t, size_t c,
                           char *slots, int n)
{
    const size_t es = lc_dtype_size(a->dtype), ce = lc__chunk_elems(a);
    size_t e0 = t->off + c * ce, k = LC_MIN(ce, t->cnt - c * ce);
    char *out = lc__at(a->recvbuf, e0, es);
    const char *in = lc__at(a->sendbuf, e0, es);
    int sl = (int)(c % LC_COLL_SLOTS);
    int last = -1, up = -1;
    char *cs[2];

    /* Up: (left) op (own) op (right). */
    for (int i = 0; i < 2; i++) cs[i] = slots + ((size_t)sl * 2 + (size_t)i) * ce * es;
    int rl = -1, rr = -1;
    if (t->child[0] >= 0) {
        rl = lc__sched_recv(s, t->child[0], cs[0], k * es);
        lc__sched_dep(s, t->slot_user[sl][0], rl);
    }
    if (t->child[1] >= 0) {
        rr = lc__sched_recv(s, t->child[1], cs[1], k * es);
        lc__sched_dep(s, t->slot_user[sl][1], rr);
    }
    if (rl >= 0) {
        last = lc__sched_reduce(s, out, cs[0], in, k, a->dtype, a->op);
        lc__sched_dep(s, rl, last);
        t->slot_user[sl][0] = last;
    } else {
        last = lc__sched_copy(s, out, in, k * es);
    }
    if (rr >= 0) {
        int red = lc__sched_reduce(s, out, out, cs[1], k, a->dtype, a->op);
        lc__sched_dep(s, rr, red);
        lc__sched_dep(s, last, red);
        t->slot_user[sl][1] = red;
        last = red;
    }
    if (t->parent >= 0) {
        up = lc__sched_send(s, t->parent, out, k * es);
        lc__sched_dep(s, last, up);
        /* Down: the final value replaces our partial sum once it is sent. */
        last = lc__sched_recv(s, t->parent, out, k * es);
        lc__sched_dep(s, up, last);
    } else {
        int sc = lc__sched_scale(s, out, k, a->dtype, a->op, n);
        lc__sched_dep(s, last, sc);
        last = sc;
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
    lc_tree_t t[2];
    char *slots = lc__sched_scratch(s, (size_t)LC_COLL_SLOTS * 2 * 2 * ce * es);

    if (slots == NULL) return LC_ERR_NO_MEMORY;
    for (int i = 0; i < 2; i++) {
        lc__tree_shape(r, n, i, &t[i].parent, t[i].child);
        lc__tree_half(a->count, i, &t[i].off, &t[i].cnt);
        t[i].nc = lc__nchunks(t[i].cnt, ce);
        for (int j = 0; j < LC_COLL_SLOTS; j++) t[i].slot_user[j][0] = t[i].slot_user[j][1] = -1;
    }
    size_t nc = LC_MAX(t[0].nc, t[1].nc);
    for (size_t c = 0; c < nc; c++) {
        for (int i = 0; i < 2; i++) {
            if (c < t[i].nc)
                lc__tree_chunk(s, a, &t[i], c, slots + (size_t)i * LC_COLL_SLOTS * 2 * ce * es, n);
        }
    }
    return LC_OK;
}
