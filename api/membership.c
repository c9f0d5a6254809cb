/*
 * Membership calls (laconic.h, "Membership"): the view, the step outcome,
 * shrinking to the survivors, leaving.
 *
 * lc_step_commit and lc_comm_shrink are requests in the communicator's
 * queue like collectives, so they run after every collective called before
 * them; when its turn comes, one waits (comm->waiting) for the control
 * plane (ft/): the step's votes, or the coordinator's next view. Nothing
 * else starts meanwhile.
 *
 * What a step keeps: the error-feedback residuals (api/tensor.c keeps the
 * state each tensor had when the step began) and, for in-place calls with
 * LC_OP_FLAG_RESTORE_INPUT, a copy of the input (comm->saved, buffers kept
 * from step to step). lc__comm_step_settle adopts or undoes them.
 *
 * A new view renumbers the ranks: comm->rank and size become the view's,
 * and comm->peer_map gives the schedules each rank's transport peer (its
 * first-view rank). The sequence numbers of collectives go on from the
 * coordinator's base, above every number any survivor used, so frames of
 * the old view still in flight are dropped by the transport (cancel).
 */
#include "api/comm.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ queries */

lc_status_t lc_comm_view(const lc_comm_t *comm, lc_view_t *view_p)
{
    static const int none = -1;

    if (comm == NULL || view_p == NULL) return LC_ERR_INVALID_ARG;
    /* A view change writes these under the lock (on the progress thread). */
    pthread_mutex_lock((pthread_mutex_t *)&comm->lock);
    memset(view_p, 0, sizeof(*view_p));
    view_p->epoch = comm->epoch;
    view_p->rank = comm->rank;
    view_p->size = comm->size;
    view_p->first_rank = comm->first_rank;
    view_p->first_size = comm->first_size;
    view_p->steps = comm->step;
    view_p->nleft = comm->nleft;
    view_p->members = comm->peer_map;
    view_p->left = comm->nleft > 0 ? comm->left : &none;
    pthread_mutex_unlock((pthread_mutex_t *)&comm->lock);
    return LC_OK;
}

lc_status_t lc_comm_view_pending(const lc_comm_t *comm, int *pending_p)
{
    if (comm == NULL || pending_p == NULL) return LC_ERR_INVALID_ARG;
    if (comm->removed) return LC_ERR_REMOVED;
    *pending_p = comm->ft != NULL && lc__ft_view_pending(comm->ft);
    return LC_OK;
}

/* ------------------------------------------------------------ requests */

static lc_status_t lc__member_call(lc_comm_t *comm, int kind, int *committed_p)
{
    lc_request_t *req = calloc(1, sizeof(*req));
    lc_status_t st;
    int mine;

    if (req == NULL) return LC_ERR_NO_MEMORY;
    req->kind = kind;
    /* Like a blocking collective: drive the engine here when it is free. */
    mine = lc__driver_acquire(comm);
    lc__req_queue(comm, req, 0); /* no sequence number: it sends no message */
    if (mine)
        lc__driver_run_until_done(comm, req);
    else
        lc__driver_kick(comm);
    st = lc_wait(req, NULL);
    if (st == LC_OK && committed_p != NULL) *committed_p = req->committed;
    lc_request_free(req);
    return st;
}

lc_status_t lc_step_commit(lc_comm_t *comm, int *committed_p)
{
    if (comm == NULL || committed_p == NULL) {
        lc_error("lc_step_commit: %s is NULL", comm == NULL ? "comm" : "committed_p");
        return LC_ERR_INVALID_ARG;
    }
    return lc__member_call(comm, LC_REQ_KIND_STEP, committed_p);
}

lc_status_t lc_comm_shrink(lc_comm_t *comm)
{
    if (comm == NULL) {
        lc_error("lc_comm_shrink: comm is NULL");
        return LC_ERR_INVALID_ARG;
    }
    return lc__member_call(comm, LC_REQ_KIND_SHRINK, NULL);
}

lc_status_t lc_comm_leave(lc_comm_t *comm)
{
    lc_status_t st = LC_OK;

    if (comm == NULL) return LC_OK;
    /* Let the collectives already called finish: a request behind them. */
    if (!comm->removed) st = lc__member_call(comm, LC_REQ_KIND_DRAIN, NULL);
    lc_info("rank %d leaves the communicator", comm->rank);
    lc_comm_destroy(comm); /* tells the coordinator and the peers */
    return st == LC_ERR_REMOVED ? LC_OK : st;
}

void lc__comm_member_done(lc_comm_t *comm, lc_status_t status)
{
    lc_request_t *req = comm->waiting;

    if (req == NULL) return;
    comm->waiting = NULL;
    lc__req_complete(req, status);
    lc__comm_pump(comm);
}

/* ------------------------------------------------------------ steps */

void lc__comm_step_settle(lc_comm_t *comm, int commit)
{
    if (comm->steps) {
        pthread_mutex_lock(&comm->lock);
        for (lc_tensor_t *t = comm->tensors; t != NULL; t = t->next) lc__tensor_step_end(t, commit);
        pthread_mutex_unlock(&comm->lock);
    }
    /* Latest first: a buffer saved twice ends as it was before the first. */
    pthread_mutex_lock(&comm->lock);
    for (int i = comm->nsaved - 1; i >= 0 && !commit; i--)
        memcpy(comm->saved[i].user, comm->saved[i].copy, comm->saved[i].bytes);
    comm->nsaved = 0;
    pthread_mutex_unlock(&comm->lock);
    comm->step_status = LC_OK;
    comm->step_open = 0;
}

lc_status_t lc__comm_save_input(lc_comm_t *comm, void *buf, size_t bytes)
{
    lc_saved_input_t *s;

    if (!comm->steps) {
        lc_warn("LC_OP_FLAG_RESTORE_INPUT needs a communicator with steps (LC_STEPS=1 or "
                "lc_comm_params_t::steps); the input is not kept");
        return LC_OK;
    }
    pthread_mutex_lock(&comm->lock);
    if (comm->nsaved == comm->capsaved) {
        int ncap = comm->capsaved ? 2 * comm->capsaved : 8;
        lc_saved_input_t *n = realloc(comm->saved, (size_t)ncap * sizeof(*n));
        if (n == NULL) {
            pthread_mutex_unlock(&comm->lock);
            return LC_ERR_NO_MEMORY;
        }
        memset(n + comm->capsaved, 0, (size_t)(ncap - comm->capsaved) * sizeof(*n));
        comm->saved = n;
        comm->capsaved = ncap;
    }
    s = &comm->saved[comm->nsaved];
    /* The buffers stay from step to step: no allocation once warm. */
    if (s->cap < bytes) {
        void *c = realloc(s->copy, bytes);
        if (c == NULL) {
            pthread_mutex_unlock(&comm->lock);
            return LC_ERR_NO_MEMORY;
        }
        s->copy = c;
        s->cap = bytes;
    }
    memcpy(s->copy, buf, bytes);
    s->user = buf;
    s->bytes = bytes;
    comm->nsaved++;
    pthread_mutex_unlock(&comm->lock);
    return LC_OK;
}

/* ------------------------------------------------------------ progress side */

/* The next view: renumber, drop what is left of the old one. */
static lc_status_t lc__comm_apply_view(lc_comm_t *comm, const lc_ft_event_t *ev)
{
    int *map = malloc((size_t)ev->nmembers * sizeof(*map));
    int rank = -1;

    /* Room for every first-view rank, made once. */
    if (comm->left == NULL) {
        int *left = malloc((size_t)comm->first_size * sizeof(*left));
        pthread_mutex_lock(&comm->lock);
        comm->left = left;
        pthread_mutex_unlock(&comm->lock);
    }
    if (map == NULL || comm->left == NULL) {
        free(map);
        return LC_ERR_NO_MEMORY;
    }
    for (int i = 0; i < ev->nmembers; i++) {
        map[i] = ev->members[i];
        if (map[i] == comm->first_rank) rank = i;
    }
    pthread_mutex_lock(&comm->lock);
    /* Who left: members of the old view not in the new one. */
    for (int i = 0; i < comm->size; i++) {
        int fr = comm->peer_map[i], in = 0;
        for (int j = 0; j < ev->nmembers; j++) in |= map[j] == fr;
        if (!in && comm->nleft < comm->first_size) comm->left[comm->nleft++] = fr;
    }
    free(comm->peer_map);
    comm->peer_map = map;
    comm->rank = rank;
    comm->size = ev->nmembers;
    comm->epoch = ev->epoch;
    comm->next_seq = ev->seq;
    for (lc_tensor_t *t = comm->tensors; t != NULL; t = t->next) lc__tensor_fold_reducer(t);
    pthread_mutex_unlock(&comm->lock);
    /* Old frames of surviving peers are dropped; a removed peer is cut off. */
    if (comm->tl != NULL) comm->tl_ops->cancel(comm->tl, ev->seq - 1);
    comm->broken = LC_OK;
    comm->left_seq = UINT64_MAX;
    /* Notices of the old view's collectives are moot; one a peer already
     * in this view sent about its first collectives is kept. */
    for (int i = 0; i < LC_REMOTE_ABORTS; i++)
        if (comm->remote_aborts[i].seq < ev->seq) comm->remote_aborts[i].seq = 0;
    comm->abort_from_peer = 0;
    comm->started_seq = ev->seq - 1;
    lc_info("now rank %d of %d in view %u", rank, ev->nmembers, ev->epoch);
    return LC_OK;
}

void lc__comm_start_member(lc_comm_t *comm, lc_request_t *req)
{
    if (comm->removed) {
        lc__req_complete(req, LC_ERR_REMOVED);
        return;
    }
    if (req->kind == LC_REQ_KIND_DRAIN) {
        lc__req_complete(req, LC_OK);
        return;
    }
    comm->waiting = req;
    if (req->kind == LC_REQ_KIND_STEP) {
        lc_status_t own = comm->broken != LC_OK ? comm->broken : comm->step_status;
        comm->step++;
        if (comm->ft == NULL) {
            lc_ft_event_t ev = { .type = LC_FT_EVENT_STEP,
                                 .seq = comm->step,
                                 .committed = own == LC_OK };
            lc__comm_on_member_event(comm, &ev);
        } else {
            lc__ft_vote(comm->ft, comm->step, own);
        }
        return;
    }
    /* Shrink: a step left open aborts (every survivor does the same). */
    if (comm->step_open || comm->nsaved > 0) lc__comm_step_settle(comm, 0);
    if (comm->ft == NULL) {
        lc_ft_event_t ev = { .type = LC_FT_EVENT_VIEW,
                             .epoch = comm->epoch + 1,
                             .seq = comm->next_seq,
                             .members = &comm->first_rank,
                             .nmembers = 1 };
        lc__comm_on_member_event(comm, &ev);
        return;
    }
    pthread_mutex_lock(&comm->lock);
    uint64_t next = comm->next_seq;
    pthread_mutex_unlock(&comm->lock);
    lc__ft_request_view(comm->ft, next);
}

void lc__comm_on_member_event(lc_comm_t *comm, const lc_ft_event_t *ev)
{
    lc_request_t *req = comm->waiting;

    switch (ev->type) {
    case LC_FT_EVENT_STEP:
        /* Not a step that already timed out here. */
        if (req == NULL || req->kind != LC_REQ_KIND_STEP || ev->seq != comm->step) return;
        lc__comm_step_settle(comm, ev->committed);
        req->committed = ev->committed;
        lc_debug("step %llu %s", (unsigned long long)ev->seq,
                 ev->committed ? "committed" : "aborted");
        lc__comm_member_done(comm, LC_OK);
        break;
    case LC_FT_EVENT_VIEW: {
        lc_status_t st = lc__comm_apply_view(comm, ev);
        if (req != NULL && req->kind == LC_REQ_KIND_SHRINK) lc__comm_member_done(comm, st);
        break;
    }
    case LC_FT_EVENT_REMOVED:
        comm->removed = 1;
        comm->broken = LC_ERR_REMOVED;
        if (comm->active != NULL) lc__sched_abort(comm->sched, LC_ERR_REMOVED);
        lc__comm_member_done(comm, LC_ERR_REMOVED);
        break;
    case LC_FT_EVENT_COORD_LOST: lc__comm_member_done(comm, LC_ERR_COORD_LOST); break;
    default: break;
    }
}

void lc__comm_member_free(lc_comm_t *comm)
{
    for (int i = 0; i < comm->capsaved; i++) free(comm->saved[i].copy);
    free(comm->saved);
    free(comm->peer_map);
    free(comm->left);
}
