/*
 * Schedules: a collective is built as a small dataflow graph of operations
 * (send, receive, reduce, copy, scale) over chunks, and the engine runs it on
 * the progress thread. An operation starts when everything it depends on has
 * finished; sends to one peer, and receives from one peer, are handed to the
 * transport in the order they were added (the FIFO order the transport
 * matches by), however early they become ready.
 *
 * Building: lc__sched_reset() then lc__sched_send/recv/... which return an
 * op id (>= 0), lc__sched_dep(s, before, after) to order them. Builders do
 * not check errors op by op: the first failure (out of memory, bad argument)
 * is remembered and returned by lc__sched_start(). Op ids, the graph and the
 * scratch memory are reused from call to call (no allocation once warm).
 *
 * Running: lc__sched_start() posts every op with no dependency; done_cb
 * fires once, on the progress thread, when every op has finished or the
 * first op failed (then pending ops are cancelled through the transport and
 * their buffers are not touched again).
 */
#ifndef LC_COLL_SCHED_H
#define LC_COLL_SCHED_H

#include "laconic.h"
#include "transport/transport.h"

#include <stddef.h>
#include <stdint.h>

typedef struct lc_sched lc_sched_t;

typedef void (*lc_sched_done_cb_t)(void *arg, lc_status_t status);

lc_status_t lc__sched_create(lc_sched_t **s_p);
void lc__sched_destroy(lc_sched_t *s);

/* Forget the previous graph (keeps memory). Scratch from lc__sched_scratch
 * is invalid after this. */
void lc__sched_reset(lc_sched_t *s);

/* Send bytes from buf to peer. */
int lc__sched_send(lc_sched_t *s, int peer, const void *buf, size_t bytes);
/* Receive exactly bytes from peer into buf (a shorter message is an error). */
int lc__sched_recv(lc_sched_t *s, int peer, void *buf, size_t bytes);
/*
 * dst[i] = a[i] (op) b[i] for count elements. dst may alias a or b. The
 * operand order is kept exactly (a first), so two ranks that reduce the same
 * values in the same order get the same bits. LC_AVG reduces as a sum
 * (divide later with lc__sched_scale).
 */
int lc__sched_reduce(lc_sched_t *s, void *dst, const void *a, const void *b, size_t count,
                     lc_dtype_t dtype, lc_op_t op);
/* memcpy(dst, src, bytes); no-op when dst == src. */
int lc__sched_copy(lc_sched_t *s, void *dst, const void *src, size_t bytes);
/* For LC_AVG: buf[i] /= nranks. For other ops: a no-op node. */
int lc__sched_scale(lc_sched_t *s, void *buf, size_t count, lc_dtype_t dtype, lc_op_t op,
                    int nranks);
/* A node that does nothing: a join point for dependencies. */
int lc__sched_nop(lc_sched_t *s);
/* after starts only once before has finished. Ignores negative ids (an
 * earlier builder failure is already recorded). */
void lc__sched_dep(lc_sched_t *s, int before, int after);

/*
 * Scratch memory owned by the schedule object, valid until the next reset.
 * Reused across calls (grows to the high-water mark, 64-byte aligned).
 * NULL on failure (also recorded for lc__sched_start).
 */
void *lc__sched_scratch(lc_sched_t *s, size_t bytes);

/* Number of ops added since the last reset. */
int lc__sched_num_ops(const lc_sched_t *s);

typedef struct {
    lc_tl_t *tl;
    const lc_tl_ops_t *tl_ops;
    uint64_t seq; /* collective sequence number (message tags) */
    uint32_t sig; /* argument signature (message tags) */
    lc_sched_done_cb_t done_cb;
    void *done_arg;
} lc_sched_run_params_t;

/* Start running the graph built since the last reset. On an error return
 * nothing was posted and done_cb will not fire. */
lc_status_t lc__sched_start(lc_sched_t *s, const lc_sched_run_params_t *params);

/* Fail the running schedule with status (peer lost, remote abort, timeout):
 * cancels its transport operations and fires done_cb(status) if it has not
 * fired yet. */
void lc__sched_abort(lc_sched_t *s, lc_status_t status);

/* True between lc__sched_start and done_cb. */
int lc__sched_running(const lc_sched_t *s);

/* Payload bytes sent / received by the last (or current) run. */
void lc__sched_bytes(const lc_sched_t *s, uint64_t *sent_p, uint64_t *received_p);

/* Monotonic time (ns) of the last op completion; for no-progress timeouts. */
uint64_t lc__sched_last_progress_ns(const lc_sched_t *s);

#endif
