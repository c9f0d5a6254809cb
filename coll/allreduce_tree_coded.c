/*
 * Compressed double binary tree all-reduce: encoded partial sums go up two
 * trees, and the bytes each root encoded come down unchanged.
 *
 * The trees are those of the uncompressed tree (allreduce_tree.c): the
 * buffer's two halves are reduced along tree 0 (heap order over the ranks,
 * root 0) and tree 1 (the same shape over the mirrored ranks, root n-1). A
 * rank has children in at most one tree, so it reduces and re-encodes at
 * most half the buffer; in the other tree it is a leaf.
 *
 * Up: a leaf encodes its contribution, chunk by chunk, with its worker
 * residual and sends it to its parent. A node with children starts from
 * its own contribution taken exactly (input plus worker residual, whose
 * range it then clears), adds the decoded partial sums of its left child
 * and then its right child (a fixed order), and encodes the result with its
 * reducer residual for that half: the per-node residual that keeps what
 * this lossy stage dropped for the next call. A root scales the sum for
 * LC_AVG, encodes it once more with its reducer residual and decodes those
 * bytes into its output ("adopts" them).
 *
 * Down: every node decodes the root's bytes into place and forwards them to
 * its children unchanged, so every rank ends with the decoded value of the
 * same bytes, bit for bit.
 *
 * Against the ring and two-phase: 2 log2(n) hops and log2(n) lossy stages
 * on the way to a root instead of 2(n-1) hops and n-1 stages (ring) or the
 * n-1 converging senders of two-phase, and no rank sends more than about
 * one compressed buffer. It is the compressed algorithm for many ranks.
 *
 * Pipelining: both halves are cut into chunks and the trees are interleaved
 * chunk by chunk, the way up of chunk c + LC_CTREE_LAG added with the way
 * down of chunk c (the order every rank adds its messages in, so each pair
 * of ranks agrees on it; without the lag, a pair linked in both trees had
 * chunk c + 1's way up in one tree queue behind chunk c's way down in the
 * other, about one chunk in flight). A chunk goes up as soon as its
 * children's chunks are in and comes down while later chunks are still
 * going up.
 *
 * Abort safety as in two-phase: the input and the committed residuals are
 * only read. In place, partial sums live in scratch and nothing is decoded
 * into the buffer before the commit point (every message sent and received,
 * every encode done, each message from a parent checked by decoding it into
 * a scratch chunk). Scratch (reused): the f32 partial sums of the half this
 * rank reduces (in place only; out of place they live in the output) and
 * four encoded chunks per chunk of each half.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

/* How many chunks the way up runs ahead of the way down. */
#define LC_CTREE_LAG 4

typedef struct {
    int tree, parent, child[2];
    size_t off, cnt; /* this tree's half of the buffer, in elements */
} lc_ctree_t;

typedef struct {
    lc_sched_t *s;
    const lc_coll_args_t *a;
    lc_ctree_t t[2];
    size_t ce, cap, maxc;
    int n, join;
    float *acc;     /* partial sums of the half this rank reduces, indexed from its start */
    float *check;   /* in place: a parent's message is decoded here before the commit point */
    uint8_t *bytes; /* [tree][chunk][up, left, right, down] encoded chunks */
} lc_ctree_ctx_t;

/* The encoded chunks of chunk c of tree t: up, left child, right child, down. */
static uint8_t *lc__ctree_bytes(const lc_ctree_ctx_t *x, const lc_ctree_t *t, size_t c)
{
    return x->bytes + ((size_t)t->tree * x->maxc + c) * 4 * x->cap;
}

/* The up-going ops of chunk c of tree `tree` (x: the call's
 * lc_ctree_ctx_t); returns the encode of what goes up (at a root: the
 * final bytes). */
static int lc__ctree_up(void *arg, int tree, size_t c)
{
    const lc_ctree_ctx_t *x = arg;
    lc_sched_t *s = x->s;
    const lc_ctree_t *t = &x->t[tree];
    const lc_coll_args_t *a = x->a;
    const float *in = a->sendbuf;
    const size_t e0 = t->off + c * x->ce, k = LC_MIN(x->ce, t->cnt - c * x->ce);
    uint8_t *b = lc__ctree_bytes(x, t, c);
    int up;

    if (t->child[0] < 0) { /* a leaf: its contribution, with the worker residual */
        up = lc__sched_encode(s, a->codec, a->ef_in, a->ef_out, e0, in + e0, k, b, x->cap);
    } else {
        float *sum = x->acc + c * x->ce;
        int prev = lc__coded_own(s, a, sum, e0, k);
        lc__sched_dep(s, prev, x->join);
        for (int i = 0; i < 2; i++) {
            if (t->child[i] < 0) continue;
            int id = lc__sched_recv_upto(s, t->child[i], b + (size_t)(1 + i) * x->cap, x->cap, k);
            int d = lc__sched_decode(s, a->codec, id, sum, k, 1);
            lc__sched_dep(s, prev, d);
            prev = d;
        }
        if (t->parent < 0) {
            int sc = lc__sched_scale(s, sum, k, LC_FLOAT32, a->op, x->n);
            lc__sched_dep(s, prev, sc);
            prev = sc;
        }
        const int root = t->parent < 0;
        up = lc__sched_encode(s, a->codec, lc__red_state(a, a->red_in, root),
                              lc__red_state(a, a->red_out, root), c * x->ce, sum, k, b, x->cap);
        lc__sched_dep(s, prev, up);
    }
    lc__sched_dep(s, up, x->join);
    if (t->parent >= 0) lc__sched_dep(s, lc__sched_send_coded(s, t->parent, up), x->join);
    return up;
}

/* The down-going ops of chunk c of tree `tree`, whose up-going encode is up. */
static void lc__ctree_down(void *arg, int tree, size_t c, int up)
{
    const lc_ctree_ctx_t *x = arg;
    lc_sched_t *s = x->s;
    const lc_ctree_t *t = &x->t[tree];
    const lc_coll_args_t *a = x->a;
    float *out = a->recvbuf;
    const size_t e0 = t->off + c * x->ce, k = LC_MIN(x->ce, t->cnt - c * x->ce);
    int down = up; /* the root's bytes for this chunk */

    if (t->parent >= 0)
        down = lc__sched_recv_upto(s, t->parent, lc__ctree_bytes(x, t, c) + 3 * x->cap, x->cap, k);
    /* A root's bytes are its own encode: nothing to check. */
    int adopt = lc__coded_deliver(s, a->codec, down, out + e0, k, 0,
                                  t->parent >= 0 ? x->check : NULL, x->join);
    lc__sched_dep(s, up, adopt); /* out of place, the partial sum was in the output */
    for (int i = 0; i < 2; i++)
        if (t->child[i] >= 0) lc__sched_dep(s, lc__sched_send_coded(s, t->child[i], down), x->join);
}

lc_status_t lc__allreduce_tree_coded(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    lc_ctree_ctx_t x = { .s = s, .a = a, .n = n, .join = -1 };
    lc_ctree_t *t = x.t;
    size_t roff, rcnt;
    const int inplace = a->sendbuf == a->recvbuf;

    x.ce = lc__coded_chunk_elems(a);
    x.cap = lc__codec_max_encoded_size(a->codec, x.ce);
    for (int i = 0; i < 2; i++) {
        t[i].tree = i;
        lc__tree_shape(r, n, i, &t[i].parent, t[i].child);
        lc__tree_half(a->count, i, &t[i].off, &t[i].cnt);
    }
    x.maxc = lc__nchunks(t[1].cnt, x.ce); /* the larger half */
    lc__coll_owned(a, LC_ALGO_TREE, r, n, &roff, &rcnt);
    x.acc = inplace ? lc__sched_scratch(s, (rcnt ? rcnt : 1) * sizeof(float))
                    : (float *)a->recvbuf + roff;
    x.bytes = lc__sched_scratch(s, 2 * (x.maxc ? x.maxc : 1) * 4 * x.cap);
    if (inplace) {
        x.join = lc__sched_commit_point(s);
        x.check = lc__sched_scratch(s, x.ce * sizeof(float));
    }
    if (x.acc == NULL || x.bytes == NULL || (inplace && x.check == NULL)) return LC_ERR_NO_MEMORY;

    /* The way up runs LC_CTREE_LAG chunks ahead (lc__tree_schedule says why). */
    const size_t nc[2] = { lc__nchunks(t[0].cnt, x.ce), lc__nchunks(t[1].cnt, x.ce) };
    return lc__tree_schedule(s, nc, LC_CTREE_LAG, lc__ctree_up, lc__ctree_down, &x);
}
