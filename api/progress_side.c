/*
 * The communicator's work on its progress thread: take the next queued
 * collective, build and start its schedule, complete its request when the
 * schedule finishes, and react to the transport's events (a lost peer, a
 * peer's report that a collective failed) and to the tick (no-progress
 * timeout).
 *
 * Failure bookkeeping: a collective that fails here (arguments that do not
 * match a peer's, a corrupt frame, a timeout, a lost partner) is reported to
 * every peer with lc__ft_notify_abort, unless a peer's notice is what
 * failed it, so that all ranks fail the same collective instead of waiting
 * for messages that will never come. The transport cancels the failed
 * collective's messages on every rank, keeping the streams in step, so the
 * communicator stays usable afterwards; only a lost peer breaks it for good.
 */
#include "api/comm.h"
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void lc__comm_sched_yield(void *arg);

void lc__req_complete(lc_request_t *req, lc_status_t status)
{
    lc_comm_t *comm = req->comm;

    /* A failed collective makes the step it belongs to abort. */
    if (req->kind == LC_REQ_KIND_COLL) {
        comm->step_open = 1;
        if (status != LC_OK && comm->step_status == LC_OK) comm->step_status = status;
    }
    /* The commit point: a collective that succeeded hands its error
     * feedback over; one that failed leaves the residuals as they were. */
    if (req->tensor != NULL) {
        lc__tensor_finish(req->comm, req->tensor, status == LC_OK, &req->args);
        req->tensor = NULL;
    }
    pthread_mutex_lock(&req->lock);
    req->status = status;
    req->comm = NULL;
    atomic_store_explicit(&req->state, LC_REQ_DONE, memory_order_release);
    pthread_cond_broadcast(&req->cond);
    pthread_mutex_unlock(&req->lock);
}

static lc_request_t *lc__comm_dequeue(lc_comm_t *comm)
{
    lc_request_t *req;

    pthread_mutex_lock(&comm->lock);
    req = comm->q_head;
    if (req != NULL) {
        comm->q_head = req->next;
        if (comm->q_head == NULL) comm->q_tail = NULL;
        req->next = NULL;
    }
    pthread_mutex_unlock(&comm->lock);
    return req;
}

static void lc__comm_coll_done(void *arg, lc_status_t status)
{
    lc_request_t *req = arg;
    lc_comm_t *comm = req->comm;
    lc_op_info_t *info = &req->info;

    lc_sched_times_t tm;

    memset(info, 0, sizeof(*info));
    lc__sched_bytes(comm->sched, &info->bytes_sent, &info->bytes_received);
    lc__sched_times(comm->sched, &tm);
    info->ratio = info->bytes_sent > 0 ? (double)tm.raw_sent / (double)info->bytes_sent : 1.0;
    info->codec = req->args.codec != NULL ? lc__codec_params(req->args.codec)->id : LC_CODEC_NONE;
    info->encode_us = (double)tm.encode_ns / 1e3;
    info->decode_us = (double)tm.decode_ns / 1e3;
    info->wire_us = (double)tm.wire_ns / 1e3;
    info->algo = req->algo;
    info->seq = req->seq;
    info->epoch = comm->epoch;
    info->elapsed_us = (double)(lc__now_ns() - req->start_ns) / 1e3;
    if (comm->tl != NULL) {
        lc_tl_stats_t now;
        comm->tl_ops->stats(comm->tl, &now);
        info->wire_bytes = now.wire_bytes_sent - req->tl_before.wire_bytes_sent;
    }
    if (status != LC_OK) {
        lc_warn("collective %llu (%s) failed: %s", (unsigned long long)req->seq,
                lc_algo_str(req->algo), lc_status_str(status));
        /* Tell the others, unless they told us: ranks that do not talk to
         * the cause directly must not wait for messages that never come. */
        if (comm->ft != NULL && comm->abort_from_peer != req->seq)
            lc__ft_notify_abort(comm->ft, req->seq, status);
        /* A membership failure breaks the communicator now, not when the
         * transport's event about it comes (it may come later, or only to
         * the ranks linked to the lost one): otherwise a caller's next
         * collective starts and sends its first messages to ranks still
         * inside this one, which take them for a schedule that differs
         * (LC_ERR_MISMATCH instead of LC_ERR_PEER_LOST: test_sigkill_4). */
        if (status <= LC_ERR_PEER_LOST && comm->broken == LC_OK) comm->broken = status;
    }
    comm->active = NULL;
    lc__req_complete(req, status);
    lc__comm_pump(comm);
}

static void lc__comm_start(lc_comm_t *comm, lc_request_t *req)
{
    lc_status_t st;

    atomic_store(&req->state, LC_REQ_RUNNING);
    req->start_ns = lc__now_ns();
    if (req->kind != LC_REQ_KIND_COLL) {
        lc__comm_start_member(comm, req);
        return;
    }
    comm->started_seq = req->seq;
    size_t slot = req->seq % LC_REMOTE_ABORTS;
    int told = comm->remote_aborts[slot].seq == req->seq;
    if (told) comm->remote_aborts[slot].seq = 0; /* consumed on every path */
    if (comm->broken != LC_OK || req->seq > comm->left_seq || req->fail != LC_OK) {
        st = comm->broken != LC_OK ? comm->broken
             : req->fail != LC_OK  ? req->fail
                                   : LC_ERR_PEER_LOST;
        /* Ranks that started this collective and wait on us must hear it
         * failed; frames they already sent for it are dropped. */
        if (comm->tl != NULL) {
            lc__ft_notify_abort(comm->ft, req->seq, st);
            comm->tl_ops->cancel(comm->tl, req->seq);
        }
        lc__req_complete(req, st);
        return;
    }
    if (told) {
        /* A peer failed this collective before we got to it. */
        if (comm->tl != NULL) comm->tl_ops->cancel(comm->tl, req->seq);
        lc__req_complete(req, comm->remote_aborts[slot].status);
        return;
    }
    if (comm->tl != NULL) comm->tl_ops->stats(comm->tl, &req->tl_before);
    lc__sched_reset(comm->sched);
    st = LC_OK;
    if (req->tensor != NULL) {
        size_t off, cnt;
        lc__coll_red_span(&req->args, req->algo, comm->rank, comm->size, &off, &cnt);
        st = lc__tensor_prepare(req->tensor, &req->args, off, cnt);
    }
    if (st == LC_OK)
        st = lc__coll_build(comm->sched, &req->args, req->algo, comm->rank, comm->size);
    if (st == LC_OK) {
        lc_sched_run_params_t rp = {
            .tl = comm->tl,
            .tl_ops = comm->tl_ops,
            .seq = req->seq,
            .rank = comm->rank,
            .peer_map = comm->peer_map,
            .sig = req->sig,
            .done_cb = lc__comm_coll_done,
            .done_arg = req,
            .yield_cb = lc__comm_sched_yield,
            .yield_arg = comm,
        };
        if (comm->cfg.fault_sig != 0 && comm->cfg.fault_rank == comm->rank &&
            comm->cfg.fault_seq == req->seq) {
            rp.fault_sig = comm->cfg.fault_sig;
            rp.fault_msg = comm->cfg.fault_msg;
        }
        comm->active = req;
        st = lc__sched_start(comm->sched, &rp);
        if (st == LC_OK) return;
        comm->active = NULL;
    }
    /* Could not start (out of memory): the peers must not wait for us. */
    lc_error("collective %llu could not start: %s", (unsigned long long)req->seq,
             lc_status_str(st));
    if (comm->tl != NULL) {
        comm->tl_ops->cancel(comm->tl, req->seq);
        lc__ft_notify_abort(comm->ft, req->seq, st);
    }
    lc__req_complete(req, st);
}

/* Start queued collectives while none is running. Re-entrant calls (a
 * schedule that finishes inside lc__comm_start) return at once; the outer
 * loop picks up the next one, so the stack stays flat. */
void lc__comm_pump(lc_comm_t *comm)
{
    if (comm->pumping) return;
    comm->pumping = 1;
    while (comm->active == NULL && comm->waiting == NULL) {
        lc_request_t *req = lc__comm_dequeue(comm);
        if (req == NULL) break;
        lc__comm_start(comm, req);
    }
    comm->pumping = 0;
}

void lc__comm_on_wake(void *arg, uint32_t events)
{
    lc_comm_t *comm = arg;
    uint64_t v;

    (void)events;
    if (read(comm->wake_fd, &v, sizeof(v)) < 0) {
        /* EAGAIN: another wake-up already drained it. */
    }
    /* A schedule that yielded to the event loop goes on (it may finish and
     * pump the queue itself). */
    if (comm->active != NULL) lc__sched_resume(comm->sched);
    lc__comm_pump(comm);
}

/* The running schedule gave the loop a turn: come back through wake_fd. */
static void lc__comm_sched_yield(void *arg)
{
    lc_comm_t *comm = arg;
    uint64_t one = 1;
    if (write(comm->wake_fd, &one, sizeof(one)) != sizeof(one))
        lc_error("waking the engine failed: %s", strerror(errno));
}

void lc__comm_on_tick(void *arg, uint64_t now_ns)
{
    lc_comm_t *comm = arg;
    lc_request_t *req = comm->active;
    uint64_t last;

    if (comm->waiting != NULL &&
        now_ns - comm->waiting->start_ns > (uint64_t)comm->cfg.timeout_ms * 1000000ull) {
        lc_error("%s waited %u ms for the other members (LC_TIMEOUT_MS)",
                 comm->waiting->kind == LC_REQ_KIND_STEP ? "lc_step_commit" : "lc_comm_shrink",
                 comm->cfg.timeout_ms);
        if (comm->waiting->kind == LC_REQ_KIND_SHRINK && comm->ft != NULL)
            lc__ft_forget_view_request(comm->ft);
        lc__comm_member_done(comm, LC_ERR_TIMEOUT);
    }
    if (req == NULL) return;
    last = LC_MAX(lc__sched_last_progress_ns(comm->sched), req->start_ns);
    if (now_ns > last && now_ns - last > (uint64_t)comm->cfg.timeout_ms * 1000000ull) {
        lc_error("collective %llu made no progress for %u ms (LC_TIMEOUT_MS)",
                 (unsigned long long)req->seq, comm->cfg.timeout_ms);
        lc__sched_abort(comm->sched, LC_ERR_TIMEOUT);
    }
}

/* Keep a peer's notice for collective seq, which has not started here (a
 * slot is freed when its collective starts). A slot still holding another
 * collective's notice, LC_REMOTE_ABORTS or more ahead, is overwritten with a
 * warning: that collective then ends by timeout unless its own partners
 * fail it. */
static void lc__comm_note_remote_abort(lc_comm_t *comm, uint64_t seq, lc_status_t status)
{
    size_t slot = seq % LC_REMOTE_ABORTS;
    uint64_t held = comm->remote_aborts[slot].seq;
    if (held != 0 && held != seq)
        lc_warn("more than %d collectives ahead failed by peers; forgetting the notice for "
                "collective %llu",
                LC_REMOTE_ABORTS, (unsigned long long)held);
    comm->remote_aborts[slot].seq = seq;
    comm->remote_aborts[slot].status = status;
}

void lc__comm_on_ft_event(void *arg, const lc_ft_event_t *ev)
{
    lc_comm_t *comm = arg;
    lc_request_t *req = comm->active;

    switch (ev->type) {
    case LC_FT_EVENT_PEER_LOST:
        if (comm->broken == LC_OK) {
            if (req != NULL)
                lc_warn("rank %d lost during collective %llu", ev->peer,
                        (unsigned long long)req->seq);
            else
                lc_info("rank %d is gone (no collective running)", ev->peer);
        }
        comm->broken = LC_ERR_PEER_LOST;
        if (req != NULL) lc__sched_abort(comm->sched, LC_ERR_PEER_LOST);
        break;
    case LC_FT_EVENT_PEER_LEFT:
        /* It destroyed its communicator after taking part in collectives up
         * to ev->seq: what it sent for those is delivered or on its way, so
         * they may still complete here (the transport fails any receive
         * that can no longer be satisfied). Later collectives need every
         * rank and fail when they start. */
        if (ev->seq < comm->left_seq) {
            lc_info("rank %d left the communicator after collective %llu", ev->peer,
                    (unsigned long long)ev->seq);
            comm->left_seq = ev->seq;
        }
        /* A collective after its last one can never complete. */
        if (req != NULL && req->seq > comm->left_seq)
            lc__sched_abort(comm->sched, LC_ERR_PEER_LOST);
        break;
    case LC_FT_EVENT_VIEW:
    case LC_FT_EVENT_STEP:
    case LC_FT_EVENT_REMOVED:
    case LC_FT_EVENT_COORD_LOST: lc__comm_on_member_event(comm, ev); break;
    case LC_FT_EVENT_ABORT:
        lc_debug("rank %d reports collective %llu failed: %s", ev->peer,
                 (unsigned long long)ev->seq, lc_status_str(ev->status));
        if (req != NULL && req->seq == ev->seq) {
            comm->abort_from_peer = ev->seq;
            lc__sched_abort(comm->sched, ev->status);
        } else if (ev->seq > comm->started_seq) { /* not started here yet */
            lc__comm_note_remote_abort(comm, ev->seq, ev->status);
        }
        break;
    }
}

/* Fail the running and every queued collective (communicator teardown). */
void lc__comm_fail_all(lc_comm_t *comm, lc_status_t status)
{
    lc_request_t *req;

    comm->broken = status;
    if (comm->active != NULL) lc__sched_abort(comm->sched, status);
    if (comm->waiting != NULL) lc__comm_member_done(comm, status);
    while ((req = lc__comm_dequeue(comm)) != NULL) lc__req_complete(req, status);
}
