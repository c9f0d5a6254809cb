/*
 * The communicator and request objects behind include/laconic.h.
 *
 * This glue layer sits above every other layer: it owns a progress engine
 * (core/), a transport (transport/), and a schedule (coll/) per communicator
 * and wires their callbacks together. Collectives on one communicator run one
 * at a time in submission order: the caller's thread validates arguments,
 * picks the algorithm, numbers the collective and queues it; whoever runs
 * the engine (the progress thread, or a blocking call: api/driver.c) builds
 * and runs its schedule and completes the request.
 */
#ifndef LC_API_COMM_H
#define LC_API_COMM_H

#include "laconic.h"
#include "coll/coll.h"
#include "coll/sched.h"
#include "core/config.h"
#include "core/progress.h"
#include "ft/ft.h"
#include "transport/transport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

enum { LC_REQ_QUEUED = 0, LC_REQ_RUNNING = 1, LC_REQ_DONE = 2 };

/* Peers' failure notices kept for collectives not started yet. */
#define LC_REMOTE_ABORTS 64

/*
 * Error-feedback state kept under a tensor key (api/tensor.c). w[0] is the
 * committed worker residual, w[1] the one a running collective writes; on
 * success they swap (so a failed collective leaves w[0] as it was). red[]
 * likewise for the reducer residual of the elements [red_off, red_off +
 * red_cnt) this rank re-encodes (LC_EF_RESIDUAL and LC_EF_HOPS). ef: the
 * scheme the key is bound to. busy: requests queued or running with it; a
 * released tensor is freed when the last of them completes.
 */
typedef struct lc_tensor {
    uint64_t key;
    size_t count;
    lc_codec_t *codec;
    lc_ef_t ef;
    /* With steps (lc_comm_t::steps), [2] is a second scratch: once a
     * collective of the step committed, [1] holds the state the step began
     * with (snap), and later collectives of the step write [2]. */
    lc_codec_state_t *w[3];
    lc_codec_state_t *red[3];
    int snap, red_snap;
    int out;        /* which scratch the running collective writes (1 or 2) */
    uint32_t epoch; /* the view it was bound in */
    size_t red_off, red_cnt;
    int busy;
    int released;
    struct lc_tensor *next;
} lc_tensor_t;

/* A codec instantiated for this communicator, by canonical spec. */
typedef struct lc_codec_entry {
    char spec[LC_CODEC_SPEC_MAX];
    lc_codec_t *codec;
    struct lc_codec_entry *next;
} lc_codec_entry_t;

/* Who runs the progress engine (api/driver.c). */
enum { LC_LOOP_FREE = 0, LC_LOOP_THREAD = 1, LC_LOOP_CALLER = 2 };

struct lc_request {
    lc_comm_t *comm; /* NULL once completed: the comm may be gone */
    lc_coll_args_t args;
    lc_algo_t algo;
    uint64_t seq;
    uint32_t sig;
    atomic_int state;
    lc_status_t status;
    lc_op_info_t info;
    uint64_t start_ns;
    lc_tl_stats_t tl_before;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct lc_request *next; /* submission queue */
    lc_tensor_t *tensor;     /* error-feedback state, or NULL */
    lc_status_t fail;        /* != LC_OK: fails when its turn comes (and tells the peers) */
    int kind;                /* LC_REQ_KIND_* */
    int committed;           /* LC_REQ_KIND_STEP: the outcome */
};

/* What a request is: a collective, or a membership call that waits its
 * turn in the same queue (api/membership.c). */
enum { LC_REQ_KIND_COLL = 0, LC_REQ_KIND_STEP = 1, LC_REQ_KIND_SHRINK = 2, LC_REQ_KIND_DRAIN = 3 };

/* An in-place input kept until its step is settled (LC_OP_FLAG_RESTORE). */
typedef struct {
    void *user; /* the caller's buffer */
    void *copy; /* what it held before the call */
    size_t bytes, cap;
} lc_saved_input_t;

struct lc_comm {
    int rank; /* in the current view */
    int size;
    /* Membership (api/membership.c): the current view's epoch, this rank
     * and size in the first view, and the transport peer (first-view rank)
     * of each rank of the view. */
    uint32_t epoch;
    int first_rank, first_size;
    int *peer_map;
    int *left; /* first-view ranks no longer in the view, in order of removal */
    int nleft;
    int steps;           /* keep each step's state so an aborted step is undone */
    int removed;         /* the coordinator removed this rank: everything fails LC_ERR_REMOVED */
    lc_config_t cfg;     /* process config with this communicator's overrides */
    lc_coll_link_t link; /* measured at set-up; steers the algorithm choice */
    uint64_t job_id;
    uint8_t job_key[64];
    size_t job_key_len;
    lc_progress_t *progress;
    const lc_tl_ops_t *tl_ops; /* NULL when size == 1 */
    lc_tl_t *tl;
    lc_ft_t *ft; /* the control plane over tl (NULL when size == 1) */
    lc_sched_t *sched;
    int wake_fd; /* eventfd: caller threads -> progress thread */
    lc_progress_fd_t *wake_h;
    uint32_t tick_ms; /* engine tick; the idle progress thread wakes this often */

    pthread_mutex_t loop_lock; /* protects the two fields below */
    int loop_owner;            /* LC_LOOP_*: who runs the engine now */
    atomic_int loop_stop;      /* comm being destroyed: owners give the engine up */
    pthread_cond_t loop_cond;  /* the progress thread waits here when it does not own it */
    pthread_t loop_thread;

    pthread_mutex_t lock; /* protects the fields below */
    lc_request_t *q_head, *q_tail;
    uint64_t next_seq;
    lc_codec_entry_t *codecs; /* instantiated codecs (used on the engine only) */
    lc_tensor_t *tensors;     /* error-feedback state by tensor key */

    /* the engine's owner only (the progress thread or a blocking caller) */
    lc_request_t *active;
    int pumping;
    lc_status_t broken; /* sticky: a peer was lost */
    uint64_t left_seq;  /* a peer left after collective left_seq: later ones fail */
    /* Collectives a peer failed before we started them, by seq % LC_REMOTE_ABORTS
     * (several can be pending: a fast rank fails one after another while we
     * are still on an earlier one; seq 0 = free). */
    struct {
        uint64_t seq;
        lc_status_t status;
    } remote_aborts[LC_REMOTE_ABORTS];
    uint64_t abort_from_peer; /* the running collective was failed by a peer's notice */
    uint64_t started_seq;     /* the last collective started here (by whoever drives the
                                 engine, under its loop lock) */
    lc_request_t *waiting;    /* a membership call waiting on the control plane */
    uint64_t step;            /* steps voted on */
    lc_status_t step_status;  /* the first failure of a collective in the open step */
    int step_open;            /* a collective ran since the last step ended */
    lc_saved_input_t *saved;  /* inputs to restore if the open step aborts */
    int nsaved, capsaved;     /* in use this step; allocated (buffers kept for reuse) */
};

/* api/driver.c: start/stop the progress thread; wake it for queued work;
 * let a blocking caller take the engine (returns 1 if it did) and run it
 * until req completes, then hand it back (release: without running). */
lc_status_t lc__driver_start(lc_comm_t *comm);
void lc__driver_stop(lc_comm_t *comm);
void lc__driver_kick(lc_comm_t *comm);
int lc__driver_acquire(lc_comm_t *comm);
void lc__driver_run_until_done(lc_comm_t *comm, lc_request_t *req);
void lc__driver_release(lc_comm_t *comm);

/* api/progress_side.c, on the progress thread: start queued collectives
 * while none runs; the wake fd's, the engine tick's and the control
 * plane's callbacks; fail the running and every queued collective (teardown). */
void lc__comm_pump(lc_comm_t *comm);
void lc__comm_on_wake(void *arg, uint32_t events);
void lc__comm_on_tick(void *arg, uint64_t now_ns);
void lc__comm_on_ft_event(void *arg, const lc_ft_event_t *ev);
void lc__comm_fail_all(lc_comm_t *comm, lc_status_t status);
/* api/collectives.c: make req (calloc'd, its fields set) a queued request
 * of comm, numbered with the next collective sequence number if numbered,
 * and append it to the queue. */
void lc__req_queue(lc_comm_t *comm, lc_request_t *req, int numbered);
/* Complete a request (its tensor's commit point; the step's failure). */
void lc__req_complete(lc_request_t *req, lc_status_t status);

/* Create a communicator over an already-made bootstrap (consumed). */
lc_status_t lc__comm_create(const lc_config_t *cfg, int rank, int size, const char *job_key,
                            lc_bootstrap_t *bs, lc_comm_t **comm_p);

/* Apply the fields of p named in its field_mask to cfg (NULL p: nothing). */
void lc__comm_apply_params(lc_config_t *cfg, const lc_comm_params_t *p);

/* Validate, number and queue a collective, and wake the progress thread to
 * run it. */
lc_status_t lc__comm_submit(lc_comm_t *comm, const lc_coll_args_t *args,
                            const lc_op_params_t *params, lc_request_t **req_p);

/* api/tensor.c. The codec for params (comm->lock held: created once per
 * spec and kept until the communicator is destroyed). */
lc_status_t lc__comm_codec_get(lc_comm_t *comm, const lc_codec_params_t *params,
                               lc_codec_t **codec_p);
/* The tensor under key for count elements, codec and error-feedback scheme
 * ef, created (zeroed) on first use, busy + 1 (comm->lock held).
 * LC_ERR_MISMATCH (logged) when the key is bound to another count, codec or
 * scheme. */
lc_status_t lc__tensor_acquire(lc_comm_t *comm, uint64_t key, lc_codec_t *codec, size_t count,
                               lc_ef_t ef, lc_tensor_t **t_p);
/* Before a collective runs (engine): point args at the states the key's
 * scheme keeps; (re)make the reducer residual when the owned range changed
 * (LC_EF_RESIDUAL, LC_EF_HOPS). */
lc_status_t lc__tensor_prepare(lc_tensor_t *t, lc_coll_args_t *args, size_t red_off,
                               size_t red_cnt);
/* The collective ended: adopt what it wrote when commit (the states args
 * pointed it at), busy - 1. */
void lc__tensor_finish(lc_comm_t *comm, lc_tensor_t *t, int commit, const lc_coll_args_t *args);
/* Free every codec and tensor (destroy). */
void lc__comm_codecs_free(lc_comm_t *comm);

/* api/membership.c, on the progress thread: start a membership call whose
 * turn came; the control plane's view, step, removal and coordinator
 * events; settle the open step's state (commit: adopt, else undo). */
void lc__comm_start_member(lc_comm_t *comm, lc_request_t *req);
void lc__comm_on_member_event(lc_comm_t *comm, const lc_ft_event_t *ev);
/* Complete the waiting membership call with status and go on. */
void lc__comm_member_done(lc_comm_t *comm, lc_status_t status);
void lc__comm_step_settle(lc_comm_t *comm, int commit);
/* Caller's thread: keep the input of an in-place call for the step. */
lc_status_t lc__comm_save_input(lc_comm_t *comm, void *buf, size_t bytes);
/* Free what membership keeps (destroy). */
void lc__comm_member_free(lc_comm_t *comm);

/* api/tensor.c: the step ended (steps on): adopt what its collectives
 * wrote, or go back to the state it began with; fold the reducer
 * residual into the worker residual (the ranges a rank reduces change
 * with the view, and the mass must not be lost). */
void lc__tensor_step_end(lc_tensor_t *t, int commit);
void lc__tensor_fold_reducer(lc_tensor_t *t);

/* 64-bit FNV-1a, used for job ids and argument signatures. */
uint64_t lc__hash64(const void *data, size_t len, uint64_t h);

#endif
