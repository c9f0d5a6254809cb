/*
 * Schedules: a collective is built as a small dataflow graph of operations
 * (send, receive, reduce, copy, scale, zero; encode and decode for the
 * compressed collectives; a count check for all-to-all-v) over chunks, and
 * the engine runs it on the progress thread. An operation starts when
 * everything it depends on has finished; sends to one peer, and receives
 * from one peer, are handed to the transport in the order they were added
 * (the FIFO order the transport matches by), however early they become
 * ready.
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
#include "codecs/codec.h"
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
/*
 * Coded data (compressed collectives). An encode op compresses count f32
 * elements of src into dst (cap bytes, at least lc__codec_max_encoded_size).
 * With error feedback, elements [off, off + count) of st_in's residual are
 * read and the updated residual is written to the same range of st_out (the
 * range is copied first when they differ): st_in stays untouched, so a
 * collective that fails leaves the committed residual as it was. st_out
 * NULL: no error feedback.
 */
int lc__sched_encode(lc_sched_t *s, lc_codec_t *codec, lc_codec_state_t *st_in,
                     lc_codec_state_t *st_out, size_t off, const float *src, size_t count,
                     void *dst, size_t cap);
/* Send the message produced by src_op (an encode, or a receive added with
 * lc__sched_recv_upto): its bytes, its length. Depends on src_op. */
int lc__sched_send_coded(lc_sched_t *s, int peer, int src_op);
/* Receive a coded message of at most cap bytes that holds elems elements
 * (its length is kept for decode; elems counts what forwarding it sends). */
int lc__sched_recv_upto(lc_sched_t *s, int peer, void *buf, size_t cap, size_t elems);
/* Decode the message of src_op (encode or receive) into dst (count f32),
 * or add it to dst when accumulate. A message that does not validate fails
 * the schedule with LC_ERR_CORRUPT. Depends on src_op. */
int lc__sched_decode(lc_sched_t *s, lc_codec_t *codec, int src_op, float *dst, size_t count,
                     int accumulate);
/* memset(dst, 0, bytes). */
int lc__sched_zero(lc_sched_t *s, void *dst, size_t bytes);
/* Fail the schedule with LC_ERR_MISMATCH (logged, naming what and peer)
 * unless *got == want when it runs (a count a peer sent). */
int lc__sched_check(lc_sched_t *s, const uint64_t *got, uint64_t want, const char *what, int peer);
/* A node that does nothing: a join point for dependencies. */
int lc__sched_nop(lc_sched_t *s);
/*
 * The point of no return of a collective that works in place: a join that,
 * once it has run, makes the schedule ignore aborts (a peer's notice, a lost
 * peer, a timeout), so the local work after it (decoding into the caller's
 * buffer) always finishes and is never left half done. Add it after every
 * message of the collective and every check that can fail.
 */
int lc__sched_commit_point(lc_sched_t *s);
/* after starts only once before has finished. Ignores negative ids (an
 * earlier builder failure is already recorded). */
void lc__sched_dep(lc_sched_t *s, int before, int after);

/*
 * Scratch memory owned by the schedule object, valid until the next reset.
 * Reused across calls (grows to the high-water mark, 64-byte aligned).
 * NULL on failure (also recorded for lc__sched_start).
 */
void *lc__sched_scratch(lc_sched_t *s, size_t bytes);

/* Spread this collective's messages to each peer over at most lanes of
 * the transport's connections (0 = all, the default after a reset). */
void lc__sched_set_lanes(lc_sched_t *s, int lanes);

/* Number of ops added since the last reset. */
int lc__sched_num_ops(const lc_sched_t *s);

typedef struct {
    lc_tl_t *tl;
    const lc_tl_ops_t *tl_ops;
    uint64_t seq;        /* collective sequence number (message tags) */
    int rank;            /* this rank (names the random streams of encodes) */
    const int *peer_map; /* the transport's peer for each rank the schedule names (NULL:
                            the same number) */
    uint32_t sig;        /* argument signature (message tags) */
    lc_sched_done_cb_t done_cb;
    void *done_arg;
    /* Called (on the engine) when the schedule stopped running local ops
     * to give the event loop a turn: the owner calls lc__sched_resume() from
     * the loop soon after. NULL: local ops run to the end in one go. */
    void (*yield_cb)(void *arg);
    void *yield_arg;
    /* Fault injection (LC_FAULT): raise signal fault_sig (0: none) just
     * before posting send number fault_msg of this run. */
    int fault_sig;
    uint32_t fault_msg;
} lc_sched_run_params_t;

/* Start running the graph built since the last reset. On an error return
 * nothing was posted and done_cb will not fire. */
lc_status_t lc__sched_start(lc_sched_t *s, const lc_sched_run_params_t *params);

/* Run the local ops left ready when the schedule yielded (no-op otherwise). */
void lc__sched_resume(lc_sched_t *s);

/* Fail the running schedule with status (peer lost, remote abort, timeout):
 * cancels its transport operations and fires done_cb(status) if it has not
 * fired yet. */
void lc__sched_abort(lc_sched_t *s, lc_status_t status);

/* True between lc__sched_start and done_cb. */
int lc__sched_running(const lc_sched_t *s);

/* Payload bytes sent / received by the last (or current) run. */
void lc__sched_bytes(const lc_sched_t *s, uint64_t *sent_p, uint64_t *received_p);

/* Where the last (or current) run spent its time; raw_sent: bytes sent,
 * counted as the f32 data they encode (coded sends) or as is. */
typedef struct {
    uint64_t raw_sent;
    uint64_t encode_ns, decode_ns;
    uint64_t wire_ns; /* time with at least one send in flight */
} lc_sched_times_t;
void lc__sched_times(const lc_sched_t *s, lc_sched_times_t *t);

/* Monotonic time (ns) of the last op completion; for no-progress timeouts. */
uint64_t lc__sched_last_progress_ns(const lc_sched_t *s);

#endif
