/*
 * Arithmetic shared by the algorithm files: how a buffer of count elements
 * is cut into n segments (one per rank; the first count % n segments get one
 * element more) and a segment into pipeline chunks of whole elements.
 */
#ifndef LC_COLL_COLL_UTIL_H
#define LC_COLL_COLL_UTIL_H

#include "coll/coll.h"
#include "core/util.h"

#include <stddef.h>

/* Slots of scratch for pipelined receives that cannot land in place. */
#define LC_COLL_SLOTS 4

static inline size_t lc__seg_off(size_t count, int n, int j)
{
    size_t q = count / (size_t)n, r = count % (size_t)n;
    return q * (size_t)j + ((size_t)j < r ? (size_t)j : r);
}

static inline size_t lc__seg_cnt(size_t count, int n, int j)
{
    return count / (size_t)n + ((size_t)j < count % (size_t)n ? 1 : 0);
}

/* Elements per chunk for this call (at least 1). */
static inline size_t lc__chunk_elems(const lc_coll_args_t *a)
{
    size_t es = lc_dtype_size(a->dtype);
    size_t ce = a->chunk_bytes / (es ? es : 1);
    return ce ? ce : 1;
}

/* Elements per chunk of a compressed collective: whole codec blocks (a
 * multiple of 2048 elements when the chunk holds one), so only a chunk's
 * last block is short. */
static inline size_t lc__coded_chunk_elems(const lc_coll_args_t *a)
{
    size_t ce = a->chunk_bytes / sizeof(float);
    if (ce >= 2048) ce -= ce % 2048;
    return ce ? ce : 1;
}

static inline size_t lc__nchunks(size_t elems, size_t ce)
{
    return LC_DIV_UP(elems, ce);
}

static inline int lc__mod(int a, int n)
{
    return ((a % n) + n) % n;
}

/* Byte pointer of element i. */
static inline char *lc__at(const void *buf, size_t i, size_t es)
{
    return (char *)buf + i * es;
}

/* An int array from the schedule's scratch (op ids), filled with -1. */
int *lc__coll_ids(lc_sched_t *s, size_t n);

/* Compressed all-reduce: this rank's own contribution to elements
 * [e0, e0 + k), taken exactly: dst = input + worker residual, and that
 * residual range cleared in ef_out (nothing of it was dropped); without
 * error feedback dst = input. Returns the op that wrote dst (the clear
 * follows it). */
int lc__coded_own(lc_sched_t *s, const lc_coll_args_t *a, float *dst, size_t e0, size_t k);

/* A compressed collective's decode of the coded message of op id into the
 * caller's buffer (dst, k elements; added to it when accumulate), after
 * join (the commit point, or -1). check (in place: a chunk of scratch, else
 * NULL): the message is first decoded there, before join, so a message that
 * does not validate fails the collective before the buffer is touched.
 * Returns the decode into dst. */
int lc__coded_deliver(lc_sched_t *s, lc_codec_t *codec, int id, float *dst, size_t k,
                      int accumulate, float *check, int join);

/* The reducer residual of a re-encode: of the complete sum (final: the
 * owner's or root's encode) or of a partial sum on the way (an intermediate
 * ring hop or tree node). LC_EF_HOPS compensates only the second. */
static inline lc_codec_state_t *lc__red_state(const lc_coll_args_t *a, lc_codec_state_t *st,
                                              int final)
{
    return final && a->ef == LC_EF_HOPS ? NULL : st;
}

/* Double binary tree (allreduce_tree*.c): rank r's parent (-1 at the root)
 * and children (-1: none) in tree 0, the heap-ordered tree over ranks (root
 * 0, children of v are 2v+1 and 2v+2), or in tree 1 (mirror), the same
 * shape over the ranks n-1-r. A rank has children in at most one of them. */
void lc__tree_shape(int r, int n, int mirror, int *parent_p, int child[2]);
/* The half of a count-element buffer that tree (0 or 1) reduces. */
void lc__tree_half(size_t count, int tree, size_t *off_p, size_t *cnt_p);

/* Add a double binary tree's ops in the order every rank adds its messages
 * in: for c = 0, 1, ..., for each tree i (0, 1), the way up of chunk c
 * (while c < nc[i]; up returns the op its way down follows) and then the
 * way down of chunk c - lag (down gets that op). A pair of ranks linked in
 * both trees (a parent in one, a child in the other) has each direction's
 * messages leave in the order they were added, so with lag 0 chunk c + 1's
 * way up queues behind chunk c's way down, which waits for the root: the
 * lag lets the way up run that many chunks ahead. */
lc_status_t lc__tree_schedule(lc_sched_t *s, const size_t nc[2], size_t lag,
                              int (*up)(void *arg, int tree, size_t c),
                              void (*down)(void *arg, int tree, size_t c, int up_op), void *arg);

/* The ring all-gather of coded chunks (allgather_coded.c): every rank holds
 * n blocks of count elements cut into chunks of ce, block b's chunk c
 * encoded (at most cap bytes) by rank b. ids[b * nchunks + c] names the op
 * that holds it: on entry this rank's own block's (its encodes), on return
 * also the receives of the others' (into bufs at the same index, cap bytes
 * each). Bytes are forwarded unchanged; join (the commit point, or -1)
 * waits for every send. */
void lc__coded_ring_gather(lc_sched_t *s, int r, int n, size_t count, size_t ce, size_t cap,
                           uint8_t *bufs, int *ids, int join);

/* count == 0 on n > 1 ranks: exchange one empty message around the ring so a
 * rank whose arguments differ is still detected by the signature check. */
lc_status_t lc__coll_null(lc_sched_t *s, int rank, int n);

/* Broadcast's closing empty message from one non-root rank (last: this rank
 * sends it, after its op `after`) to the root, which waits for it. Returns
 * the op this rank added (-1: none). */
int lc__broadcast_ack(lc_sched_t *s, int rank, int n, int root, int last, int after);

#endif
