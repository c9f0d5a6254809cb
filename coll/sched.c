/*
 * The schedule engine.
 *
 * A schedule is an array of ops plus dependency edges. Each op counts the
 * dependencies it still waits for; when the count reaches zero the op is
 * ready. Local ops (reduce, copy, scale, zero, encode, decode, check, nop)
 * run at once on the progress thread; sends and receives are handed to the
 * transport, but only in the order they were added per peer and direction,
 * because the transport matches messages between a pair of ranks in FIFO
 * order. A ready send whose predecessor to the same peer is not yet posted
 * waits for it.
 *
 * Every entry point (start, transport completion, abort, resume) funnels
 * into lc__sched_kick(), which drains the ready list iteratively (no
 * recursion, so a transport that completes an op inside send() is fine) and
 * fires done_cb exactly once, as its very last action at the outermost
 * level: done_cb may reset this schedule and start the next collective on it.
 *
 * Local work is bounded per turn: once the ops run in one kick have taken
 * LC_SCHED_BUDGET_NS and more are ready, the kick stops and asks its owner
 * (yield_cb) to come back through the event loop, so a compressed collective
 * whose encodes are all ready at once (hundreds of milliseconds of work on a
 * cold buffer) never keeps the thread away from its sockets long enough for
 * heartbeats to lapse or for receives to back up.
 *
 * Memory is reused across calls: ops, edges, per-peer queues and scratch
 * grow to their high-water mark and stay.
 */
#include "coll/sched.h"
#include "codecs/codec.h"
#include "core/log.h"
#include "core/reduce.h"
#include "core/util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

enum {
    LC_SOP_SEND,
    LC_SOP_RECV,
    LC_SOP_REDUCE,
    LC_SOP_COPY,
    LC_SOP_SCALE,
    LC_SOP_NOP,
    LC_SOP_ENCODE,
    LC_SOP_DECODE,
    LC_SOP_ZERO,
    LC_SOP_CHECK
};
enum { LC_SOP_WAITING, LC_SOP_READY, LC_SOP_POSTED, LC_SOP_DONE };

#define LC_SCHED_BUDGET_NS 4000000ull /* local work per kick before yielding */
enum { LC_DIR_SEND = 0, LC_DIR_RECV = 1 };

typedef struct lc_sop {
    lc_sched_t *sched;
    uint8_t kind;
    uint8_t state;
    uint8_t dtype;
    uint8_t op;
    uint8_t var; /* recv: a shorter message is fine; decode: accumulate */
    int32_t peer;
    int32_t nranks;
    uint32_t ndeps;       /* dependencies not yet finished */
    int32_t first_edge;   /* successors: linked list in sched->edges */
    int32_t next_in_peer; /* next send (recv) to (from) the same peer, in program order */
    uint32_t index;       /* message index for the pair and direction */
    void *dst;
    const void *a;
    const void *b;
    size_t count; /* elements (reduce, scale, encode, decode) or bytes (send, recv, copy) */
    /* Coded data: a send or decode whose bytes are the output of op src_op
     * (an encode, or a variable-length receive); an encode's codec, residual
     * states (in: read; out: written, may be the same) and their offset. */
    int32_t src_op;
    size_t cap; /* encode: capacity of dst; recv: posted length */
    size_t len; /* encode: message length; recv: bytes received */
    lc_codec_t *codec;
    lc_codec_state_t *st_in, *st_out;
    size_t off;
} lc_sop_t;

typedef struct {
    int32_t to;
    int32_t next;
} lc_sedge_t;

typedef struct lc_scratch_block {
    struct lc_scratch_block *next;
    size_t size;
    size_t used;
    char *mem;
} lc_scratch_block_t;

struct lc_sched {
    lc_sop_t *ops;
    int nops, cap_ops;
    lc_sedge_t *edges;
    int nedges, cap_edges;
    int32_t *ready; /* stack of ready op ids; at most nops entries */
    int nready, cap_ready;
    uint32_t nsent; /* sends posted in this run (fault injection counts them) */
    /* Per peer and direction: head (next op to post), tail (last added), message counter. */
    int32_t *q_head[2], *q_tail[2];
    uint32_t *q_count[2];
    int npeers_cap;
    lc_scratch_block_t *scratch; /* first block is the main arena */
    size_t scratch_total;        /* bytes handed out since reset, across blocks */
    lc_status_t build_status;
    uint8_t lanes; /* lc_tl_tag_t.lanes of every message */
    /* run state */
    lc_sched_run_params_t run;
    int running;
    int draining;
    int yielded;   /* stopped with ops ready; waiting for lc__sched_resume */
    int committed; /* a commit point has run: aborts are ignored */
    int finished;
    int done_fired;
    lc_status_t status;
    int ndone;
    uint64_t bytes_sent, bytes_received;
    uint64_t raw_sent; /* what was sent, counted before compression */
    uint64_t last_progress_ns;
    uint64_t encode_ns, decode_ns, wire_ns;
    uint64_t wire_t0; /* when the transport last went from idle to busy */
    int in_flight;    /* transport operations posted and not completed */
};

lc_status_t lc__sched_create(lc_sched_t **s_p)
{
    lc_sched_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return LC_ERR_NO_MEMORY;
    *s_p = s;
    return LC_OK;
}

static void lc__scratch_free_all(lc_scratch_block_t *b)
{
    while (b != NULL) {
        lc_scratch_block_t *next = b->next;
        free(b->mem);
        free(b);
        b = next;
    }
}

void lc__sched_destroy(lc_sched_t *s)
{
    if (s == NULL) return;
    free(s->ops);
    free(s->edges);
    free(s->ready);
    for (int d = 0; d < 2; d++) {
        free(s->q_head[d]);
        free(s->q_tail[d]);
        free(s->q_count[d]);
    }
    lc__scratch_free_all(s->scratch);
    free(s);
}

/* Make the main scratch arena one block big enough for everything the last
 * build used, so a repeated collective allocates nothing. */
static void lc__scratch_compact(lc_sched_t *s)
{
    lc_scratch_block_t *b = s->scratch;

    if (b != NULL && b->next != NULL) {
        size_t need = s->scratch_total;
        lc__scratch_free_all(b);
        s->scratch = NULL;
        b = calloc(1, sizeof(*b));
        if (b != NULL && posix_memalign((void **)&b->mem, 64, need) == 0) {
            b->size = need;
            s->scratch = b;
        } else {
            free(b);
        }
    }
    if (s->scratch != NULL) s->scratch->used = 0;
    s->scratch_total = 0;
}

void lc__sched_reset(lc_sched_t *s)
{
    s->nops = 0;
    s->nedges = 0;
    s->nready = 0;
    for (int p = 0; p < s->npeers_cap; p++) {
        for (int d = 0; d < 2; d++) {
            s->q_head[d][p] = -1;
            s->q_tail[d][p] = -1;
            s->q_count[d][p] = 0;
        }
    }
    lc__scratch_compact(s);
    s->build_status = LC_OK;
    s->lanes = 0;
    s->running = 0;
    s->finished = 0;
    s->done_fired = 0;
    s->ndone = 0;
}

static int lc__grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap) return 0;
    int ncap = *cap ? *cap : 64;
    while (ncap < need) ncap *= 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (p == NULL) return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int lc__sched_fail_build(lc_sched_t *s, lc_status_t st)
{
    if (s->build_status == LC_OK) s->build_status = st;
    return -1;
}

static lc_sop_t *lc__sched_new_op(lc_sched_t *s, int kind, int *id_p)
{
    lc_sop_t *op;

    if (s->build_status != LC_OK) return NULL;
    if (lc__grow((void **)&s->ops, &s->cap_ops, s->nops + 1, sizeof(*s->ops)) != 0) {
        lc__sched_fail_build(s, LC_ERR_NO_MEMORY);
        return NULL;
    }
    *id_p = s->nops;
    op = &s->ops[s->nops++];
    memset(op, 0, sizeof(*op));
    op->sched = s;
    op->kind = (uint8_t)kind;
    op->first_edge = -1;
    op->next_in_peer = -1;
    op->peer = -1;
    op->src_op = -1;
    return op;
}

static int lc__sched_peers(lc_sched_t *s, int peer)
{
    int old = s->npeers_cap;
    int ncap;

    if (peer < old) return 0;
    ncap = old ? old : 8;
    while (ncap <= peer) ncap *= 2;
    for (int d = 0; d < 2; d++) {
        int32_t *h = realloc(s->q_head[d], (size_t)ncap * sizeof(int32_t));
        if (h != NULL) s->q_head[d] = h;
        int32_t *t = realloc(s->q_tail[d], (size_t)ncap * sizeof(int32_t));
        if (t != NULL) s->q_tail[d] = t;
        uint32_t *c = realloc(s->q_count[d], (size_t)ncap * sizeof(uint32_t));
        if (c != NULL) s->q_count[d] = c;
        if (h == NULL || t == NULL || c == NULL) return -1;
        for (int p = old; p < ncap; p++) {
            h[p] = -1;
            t[p] = -1;
            c[p] = 0;
        }
    }
    s->npeers_cap = ncap;
    return 0;
}

static int lc__sched_msg(lc_sched_t *s, int kind, int peer, void *dst, const void *src,
                         size_t bytes)
{
    int dir = (kind == LC_SOP_SEND) ? LC_DIR_SEND : LC_DIR_RECV;
    lc_sop_t *op;
    int id;

    if (peer < 0 || (bytes > 0 && (kind == LC_SOP_SEND ? src == NULL : dst == NULL)))
        return lc__sched_fail_build(s, LC_ERR_INVALID_ARG);
    if (lc__sched_peers(s, peer) != 0) return lc__sched_fail_build(s, LC_ERR_NO_MEMORY);
    op = lc__sched_new_op(s, kind, &id);
    if (op == NULL) return -1;
    op->peer = peer;
    op->dst = dst;
    op->a = src;
    op->count = bytes;
    op->index = s->q_count[dir][peer]++;
    if (s->q_tail[dir][peer] >= 0)
        s->ops[s->q_tail[dir][peer]].next_in_peer = id;
    else
        s->q_head[dir][peer] = id;
    s->q_tail[dir][peer] = id;
    return id;
}

int lc__sched_send(lc_sched_t *s, int peer, const void *buf, size_t bytes)
{
    return lc__sched_msg(s, LC_SOP_SEND, peer, NULL, buf, bytes);
}

int lc__sched_recv(lc_sched_t *s, int peer, void *buf, size_t bytes)
{
    return lc__sched_msg(s, LC_SOP_RECV, peer, buf, NULL, bytes);
}

int lc__sched_reduce(lc_sched_t *s, void *dst, const void *a, const void *b, size_t count,
                     lc_dtype_t dtype, lc_op_t op)
{
    lc_sop_t *o;
    int id;

    if ((unsigned)dtype >= LC_DTYPE_COUNT || (unsigned)op >= LC_OP_COUNT)
        return lc__sched_fail_build(s, LC_ERR_INVALID_ARG);
    o = lc__sched_new_op(s, LC_SOP_REDUCE, &id);
    if (o == NULL) return -1;
    o->dst = dst;
    o->a = a;
    o->b = b;
    o->count = count;
    o->dtype = (uint8_t)dtype;
    o->op = (uint8_t)op;
    return id;
}

int lc__sched_copy(lc_sched_t *s, void *dst, const void *src, size_t bytes)
{
    int id;
    lc_sop_t *o = lc__sched_new_op(s, LC_SOP_COPY, &id);

    if (o == NULL) return -1;
    o->dst = dst;
    o->a = src;
    o->count = bytes;
    return id;
}

int lc__sched_scale(lc_sched_t *s, void *buf, size_t count, lc_dtype_t dtype, lc_op_t op,
                    int nranks)
{
    int id;
    lc_sop_t *o = lc__sched_new_op(s, (op == LC_AVG) ? LC_SOP_SCALE : LC_SOP_NOP, &id);

    if (o == NULL) return -1;
    o->dst = buf;
    o->count = count;
    o->dtype = (uint8_t)dtype;
    o->nranks = nranks;
    return id;
}

int lc__sched_recv_upto(lc_sched_t *s, int peer, void *buf, size_t cap, size_t elems)
{
    int id = lc__sched_msg(s, LC_SOP_RECV, peer, buf, NULL, cap);
    if (id >= 0) {
        s->ops[id].var = 1;
        s->ops[id].off = elems;
    }
    return id;
}

int lc__sched_send_coded(lc_sched_t *s, int peer, int src_op)
{
    if (src_op < 0 || src_op >= s->nops) return lc__sched_fail_build(s, LC_ERR_INVALID_ARG);
    /* The buffer is the source's output; checked non-NULL when it was added. */
    int id = lc__sched_msg(s, LC_SOP_SEND, peer, NULL, s->ops[src_op].dst, 0);
    if (id < 0) return id;
    s->ops[id].src_op = src_op;
    lc__sched_dep(s, src_op, id);
    return id;
}

int lc__sched_encode(lc_sched_t *s, lc_codec_t *codec, lc_codec_state_t *st_in,
                     lc_codec_state_t *st_out, size_t off, const float *src, size_t count,
                     void *dst, size_t cap)
{
    int id;
    lc_sop_t *o;

    if (codec == NULL || dst == NULL || (count > 0 && src == NULL) ||
        (st_out != NULL && st_in == NULL))
        return lc__sched_fail_build(s, LC_ERR_INVALID_ARG);
    o = lc__sched_new_op(s, LC_SOP_ENCODE, &id);
    if (o == NULL) return -1;
    o->codec = codec;
    o->st_in = st_in;
    o->st_out = st_out;
    o->off = off;
    o->a = src;
    o->dst = dst;
    o->count = count;
    o->cap = cap;
    return id;
}

int lc__sched_decode(lc_sched_t *s, lc_codec_t *codec, int src_op, float *dst, size_t count,
                     int accumulate)
{
    int id;
    lc_sop_t *o;

    if (codec == NULL || src_op < 0 || src_op >= s->nops || (count > 0 && dst == NULL))
        return lc__sched_fail_build(s, LC_ERR_INVALID_ARG);
    o = lc__sched_new_op(s, LC_SOP_DECODE, &id);
    if (o == NULL) return -1;
    o->codec = codec;
    o->src_op = src_op;
    o->dst = dst;
    o->count = count;
    o->var = (uint8_t)(accumulate != 0);
    lc__sched_dep(s, src_op, id);
    return id;
}

int lc__sched_zero(lc_sched_t *s, void *dst, size_t bytes)
{
    int id;
    lc_sop_t *o = lc__sched_new_op(s, LC_SOP_ZERO, &id);

    if (o == NULL) return -1;
    o->dst = dst;
    o->count = bytes;
    return id;
}

int lc__sched_check(lc_sched_t *s, const uint64_t *got, uint64_t want, const char *what, int peer)
{
    int id;
    lc_sop_t *o = lc__sched_new_op(s, LC_SOP_CHECK, &id);

    if (o == NULL) return -1;
    o->a = got;
    o->b = what;
    o->count = (size_t)want;
    o->peer = peer;
    return id;
}

int lc__sched_nop(lc_sched_t *s)
{
    int id;
    return lc__sched_new_op(s, LC_SOP_NOP, &id) ? id : -1;
}

int lc__sched_commit_point(lc_sched_t *s)
{
    int id;
    lc_sop_t *o = lc__sched_new_op(s, LC_SOP_NOP, &id);
    if (o == NULL) return -1;
    o->var = 1;
    return id;
}

void lc__sched_dep(lc_sched_t *s, int before, int after)
{
    if (before < 0 || after < 0 || s->build_status != LC_OK) return;
    if (before >= s->nops || after >= s->nops || before == after) {
        lc__sched_fail_build(s, LC_ERR_INVALID_ARG);
        return;
    }
    if (lc__grow((void **)&s->edges, &s->cap_edges, s->nedges + 1, sizeof(*s->edges)) != 0) {
        lc__sched_fail_build(s, LC_ERR_NO_MEMORY);
        return;
    }
    s->edges[s->nedges].to = after;
    s->edges[s->nedges].next = s->ops[before].first_edge;
    s->ops[before].first_edge = s->nedges++;
    s->ops[after].ndeps++;
}

void *lc__sched_scratch(lc_sched_t *s, size_t bytes)
{
    lc_scratch_block_t *b = s->scratch;
    size_t need = LC_DIV_UP(bytes ? bytes : 1, 64) * 64;

    if (s->build_status != LC_OK) return NULL;
    /* The newest block is at the head; the main arena is the oldest. */
    if (b == NULL || b->size - b->used < need) {
        size_t size = need;
        if (b == NULL || b->next == NULL) size = LC_MAX(need, (size_t)1 << 20);
        lc_scratch_block_t *nb = calloc(1, sizeof(*nb));
        if (nb == NULL || posix_memalign((void **)&nb->mem, 64, size) != 0) {
            free(nb);
            lc__sched_fail_build(s, LC_ERR_NO_MEMORY);
            return NULL;
        }
        nb->size = size;
        nb->next = b;
        s->scratch = b = nb;
    }
    void *p = b->mem + b->used;
    b->used += need;
    s->scratch_total += need;
    return p;
}

void lc__sched_set_lanes(lc_sched_t *s, int lanes)
{
    s->lanes = (uint8_t)(lanes < 0 ? 0 : lanes > 255 ? 255 : lanes);
}

int lc__sched_num_ops(const lc_sched_t *s)
{
    return s->nops;
}

/* ------------------------------------------------------------------ running */

static void lc__sched_fail(lc_sched_t *s, lc_status_t st)
{
    if (s->finished) return;
    if (s->in_flight > 0) s->wire_ns += lc__now_ns() - s->wire_t0;
    s->in_flight = 0;
    s->finished = 1;
    s->status = st;
    s->nready = 0;
    if (s->run.tl_ops != NULL) s->run.tl_ops->cancel(s->run.tl, s->run.seq);
}

static void lc__sched_complete(lc_sched_t *s, lc_sop_t *op)
{
    op->state = LC_SOP_DONE;
    s->ndone++;
    s->last_progress_ns = lc__now_ns();
    for (int e = op->first_edge; e >= 0; e = s->edges[e].next) {
        lc_sop_t *succ = &s->ops[s->edges[e].to];
        if (--succ->ndeps == 0) s->ready[s->nready++] = s->edges[e].to;
    }
}

static void lc__sched_tl_cb(void *arg, lc_status_t status, size_t length);

/* Hand the peer's ready messages to the transport in program order. */
static void lc__sched_post_peer(lc_sched_t *s, int dir, int peer)
{
    int32_t *head = &s->q_head[dir][peer];

    while (!s->finished && *head >= 0 && s->ops[*head].state == LC_SOP_READY) {
        lc_sop_t *op = &s->ops[*head];
        lc_tl_tag_t tag = {
            .seq = s->run.seq, .index = op->index, .sig = s->run.sig, .codec = 0, .lanes = s->lanes
        };
        lc_status_t st;

        *head = op->next_in_peer;
        op->state = LC_SOP_POSTED;
        if (op->src_op >= 0) {
            const lc_sop_t *src = &s->ops[op->src_op];
            op->a = src->dst;
            op->count = src->len;
        }
        if (dir == LC_DIR_SEND && s->in_flight++ == 0) s->wire_t0 = lc__now_ns();
        if (dir == LC_DIR_SEND && s->run.fault_sig != 0 && s->nsent++ == s->run.fault_msg) {
            lc_warn("LC_FAULT: signal %d before send %u of collective %llu", s->run.fault_sig,
                    s->run.fault_msg, (unsigned long long)s->run.seq);
            raise(s->run.fault_sig);
        }
        /* The transport knows ranks by their place in the first view. */
        int tp = s->run.peer_map != NULL ? s->run.peer_map[peer] : peer;
        if (dir == LC_DIR_SEND)
            st = s->run.tl_ops->send(s->run.tl, tp, &tag, op->a, op->count, lc__sched_tl_cb, op);
        else
            st = s->run.tl_ops->recv(s->run.tl, tp, &tag, op->dst, op->count, lc__sched_tl_cb, op);
        if (st != LC_OK) lc__sched_fail(s, st);
    }
}

/* Encode (the residual read from st_in, written to st_out: the committed
 * residual is only read) or decode; timed. */
static lc_status_t lc__sched_run_codec(lc_sched_t *s, lc_sop_t *op)
{
    uint64_t t0 = lc__now_ns();
    lc_status_t st;

    if (op->kind == LC_SOP_ENCODE) {
        /* A random stream per rank, collective and encode (stochastic
         * rounding, sampled topk): the same whatever order encodes run in,
         * different from call to call and rank to rank. */
        uint64_t stream = lc__codec_rand(&(uint64_t){ s->run.seq * 0x9e3779b97f4a7c15ull ^
                                                      (uint64_t)(uint32_t)s->run.rank << 32 ^
                                                      (uint64_t)(op - s->ops) }) |
                          1;
        st = lc__codec_encode_ef(op->codec, op->st_in, op->st_out, op->off, stream, op->a,
                                 LC_FLOAT32, op->count, op->dst, op->cap, &op->len);
        s->encode_ns += lc__now_ns() - t0;
        if (st != LC_OK)
            lc_error("seq %llu: encoding %zu elements failed: %s", (unsigned long long)s->run.seq,
                     op->count, lc_status_str(st));
        return st;
    }
    const lc_sop_t *src = &s->ops[op->src_op];
    /* A message of another element count is the peer disagreeing on the
     * arguments (alltoallv counts), not a corrupt frame: say so. */
    if (src->len >= LC_CODEC_HDR_LEN) {
        uint64_t n = lc__codec_get64((const uint8_t *)src->dst + 8);
        if (n != op->count) {
            lc_error("seq %llu: rank %d sent a block of %llu elements, expected %zu",
                     (unsigned long long)s->run.seq, src->peer, (unsigned long long)n, op->count);
            return LC_ERR_MISMATCH;
        }
    }
    if (op->var)
        st = lc__codec_decode_accumulate(op->codec, src->dst, src->len, op->dst, op->count);
    else
        st = lc__codec_decode(op->codec, src->dst, src->len, op->dst, op->count);
    s->decode_ns += lc__now_ns() - t0;
    if (st != LC_OK)
        lc_error("seq %llu: a coded message of %zu bytes%s%d does not decode to %zu elements: %s",
                 (unsigned long long)s->run.seq, src->len,
                 src->kind == LC_SOP_RECV ? " from rank " : " of rank ", src->peer, op->count,
                 lc_status_str(st));
    return st;
}

static void lc__sched_execute(lc_sched_t *s, lc_sop_t *op)
{
    switch (op->kind) {
    case LC_SOP_SEND:
    case LC_SOP_RECV:
        op->state = LC_SOP_READY;
        lc__sched_post_peer(s, op->kind == LC_SOP_SEND ? LC_DIR_SEND : LC_DIR_RECV, op->peer);
        return;
    case LC_SOP_REDUCE:
        lc__reduce(op->dst, op->a, op->b, op->count, (lc_dtype_t)op->dtype, (lc_op_t)op->op);
        break;
    case LC_SOP_COPY:
        if (op->dst != op->a && op->count > 0) memmove(op->dst, op->a, op->count);
        break;
    case LC_SOP_SCALE: lc__reduce_div(op->dst, op->count, (lc_dtype_t)op->dtype, op->nranks); break;
    case LC_SOP_NOP:
        if (op->var) s->committed = 1;
        break;
    case LC_SOP_ZERO:
        if (op->count > 0) memset(op->dst, 0, op->count);
        break;
    case LC_SOP_CHECK: {
        uint64_t got;
        memcpy(&got, op->a, sizeof(got));
        if (got != (uint64_t)op->count) {
            lc_error("seq %llu: rank %d %s %llu, this rank expects %zu",
                     (unsigned long long)s->run.seq, op->peer, (const char *)op->b,
                     (unsigned long long)got, op->count);
            lc__sched_fail(s, LC_ERR_MISMATCH);
            return;
        }
        break;
    }
    case LC_SOP_ENCODE:
    case LC_SOP_DECODE: {
        lc_status_t st = lc__sched_run_codec(s, op);
        if (st != LC_OK) {
            lc__sched_fail(s, st);
            return;
        }
        break;
    }
    default: break;
    }
    lc__sched_complete(s, op);
}

static void lc__sched_kick(lc_sched_t *s)
{
    uint64_t t0 = 0;
    int yield = 0;

    if (s->draining || s->yielded) return;
    s->draining = 1;
    while (s->nready > 0 && !s->finished) {
        lc_sop_t *op = &s->ops[s->ready[--s->nready]];
        int local = op->kind != LC_SOP_SEND && op->kind != LC_SOP_RECV;
        if (local && t0 == 0) t0 = lc__now_ns();
        lc__sched_execute(s, op);
        if (local && s->nready > 0 && s->run.yield_cb != NULL &&
            lc__now_ns() - t0 > LC_SCHED_BUDGET_NS) {
            yield = 1;
            break;
        }
    }
    if (yield && !s->finished) {
        s->yielded = 1;
        s->draining = 0;
        s->run.yield_cb(s->run.yield_arg);
        return;
    }
    if (!s->finished && s->ndone == s->nops) {
        s->finished = 1;
        s->status = LC_OK;
    }
    s->draining = 0;
    if (s->finished && !s->done_fired) {
        s->done_fired = 1;
        s->running = 0;
        /* Last action: the callback may reset and restart this schedule. */
        s->run.done_cb(s->run.done_arg, s->status);
    }
}

static void lc__sched_tl_cb(void *arg, lc_status_t status, size_t length)
{
    lc_sop_t *op = arg;
    lc_sched_t *s = op->sched;

    if (!s->running || s->finished || op->state != LC_SOP_POSTED) return;
    if (op->kind == LC_SOP_SEND && --s->in_flight == 0) s->wire_ns += lc__now_ns() - s->wire_t0;
    if (status != LC_OK) {
        lc_debug("seq %llu: %s %s peer %d failed: %s", (unsigned long long)s->run.seq,
                 op->kind == LC_SOP_SEND ? "send to" : "recv from", "", op->peer,
                 lc_status_str(status));
        lc__sched_fail(s, status);
    } else if (op->kind == LC_SOP_RECV && (op->var ? length > op->count : length != op->count)) {
        lc_error("seq %llu: message %u from rank %d has %zu bytes, expected %zu",
                 (unsigned long long)s->run.seq, op->index, op->peer, length, op->count);
        lc__sched_fail(s, LC_ERR_MISMATCH);
    } else {
        if (op->kind == LC_SOP_SEND) {
            s->bytes_sent += length;
            const lc_sop_t *src = op->src_op >= 0 ? &s->ops[op->src_op] : NULL;
            /* The f32 bytes a coded message stands for: an encode's count,
             * a forwarded receive's element count (kept in off). */
            s->raw_sent +=
                src == NULL ? length
                            : (src->kind == LC_SOP_ENCODE ? src->count : src->off) * sizeof(float);
        } else {
            s->bytes_received += length;
            op->len = length;
        }
        lc__sched_complete(s, op);
    }
    lc__sched_kick(s);
}

lc_status_t lc__sched_start(lc_sched_t *s, const lc_sched_run_params_t *params)
{
    if (s->build_status != LC_OK) return s->build_status;
    if (s->running) return LC_ERR_INVALID_ARG;
    if (lc__grow((void **)&s->ready, &s->cap_ready, s->nops, sizeof(*s->ready)) != 0)
        return LC_ERR_NO_MEMORY;
    s->run = *params;
    s->nsent = 0;
    s->running = 1;
    s->finished = 0;
    s->yielded = 0;
    s->committed = 0;
    s->done_fired = 0;
    s->status = LC_OK;
    s->ndone = 0;
    s->nready = 0;
    s->bytes_sent = 0;
    s->bytes_received = 0;
    s->raw_sent = 0;
    s->encode_ns = s->decode_ns = s->wire_ns = 0;
    s->in_flight = 0;
    s->last_progress_ns = lc__now_ns();
    /* Push in reverse so that ops run roughly in the order they were added. */
    for (int i = s->nops - 1; i >= 0; i--) {
        s->ops[i].state = LC_SOP_WAITING;
        if (s->ops[i].ndeps == 0) s->ready[s->nready++] = i;
    }
    lc__sched_kick(s);
    return LC_OK;
}

void lc__sched_resume(lc_sched_t *s)
{
    if (!s->running || s->done_fired || !s->yielded) return;
    s->yielded = 0;
    lc__sched_kick(s);
}

void lc__sched_abort(lc_sched_t *s, lc_status_t status)
{
    if (!s->running || s->done_fired) return;
    if (s->committed) {
        lc_debug("seq %llu: %s after the commit point: finishing", (unsigned long long)s->run.seq,
                 lc_status_str(status));
        return;
    }
    lc__sched_fail(s, status);
    s->yielded = 0; /* nothing more runs: fire done_cb now */
    lc__sched_kick(s);
}

int lc__sched_running(const lc_sched_t *s)
{
    return s->running;
}

void lc__sched_bytes(const lc_sched_t *s, uint64_t *sent_p, uint64_t *received_p)
{
    *sent_p = s->bytes_sent;
    *received_p = s->bytes_received;
}

void lc__sched_times(const lc_sched_t *s, lc_sched_times_t *t)
{
    t->raw_sent = s->raw_sent;
    t->encode_ns = s->encode_ns;
    t->decode_ns = s->decode_ns;
    t->wire_ns = s->wire_ns;
}

uint64_t lc__sched_last_progress_ns(const lc_sched_t *s)
{
    return s->last_progress_ns;
}
