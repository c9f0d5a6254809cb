/*
 * The control plane over a transport's control messages (ft.h says what it
 * promises). Per peer it keeps whether the peer is alive, whether it said
 * goodbye (and after which collective), and when we last sent it anything,
 * which is what the heartbeat needs. Silence is judged on the transport's
 * clock of received bytes, not on heartbeats alone: a peer whose progress
 * thread is busy encoding a large message still sends data, and must not be
 * taken for dead.
 */
#include "ft/ft.h"

#include "core/log.h"
#include "core/util.h"
#include "ft/ctrl_msg.h"
#include "ft/ft_priv.h"

#include "core/sock.h"

#include <stdlib.h>
#include <string.h>

lc_status_t lc__ft_create(const lc_ft_params_t *params, lc_ft_t **ft_p)
{
    lc_ft_t *ft = calloc(1, sizeof(*ft));

    if (ft == NULL) return LC_ERR_NO_MEMORY;
    ft->p = *params;
    ft->p.coordinator = NULL; /* not kept: parsed in lc__ft_start */
    ft->peers = calloc((size_t)params->size, sizeof(*ft->peers));
    ft->members = calloc((size_t)params->size, sizeof(*ft->members));
    if (ft->peers == NULL || ft->members == NULL) {
        lc__ft_destroy(ft);
        return LC_ERR_NO_MEMORY;
    }
    for (int r = 0; r < params->size; r++) {
        ft->members[r] = r;
        ft->peers[r].member = 1;
    }
    ft->nmembers = params->size;
    ft->c.phase = LC_CC_OFF;
    ft->c.link.fd = -1;
    if (params->coordinator != NULL) {
        lc_status_t st = lc__sock_parse_addr(params->coordinator, &ft->c.addr);
        if (st != LC_OK) {
            lc_error("LC_COORDINATOR '%s' is not host:port", params->coordinator);
            lc__ft_destroy(ft);
            return st;
        }
        ft->c.phase = LC_CC_DOWN;
    }
    *ft_p = ft;
    return LC_OK;
}

void lc__ft_emit(lc_ft_t *ft, const lc_ft_event_t *ev)
{
    if (ft->p.event_cb != NULL) ft->p.event_cb(ft->p.event_arg, ev);
}

static void lc__ft_emit_peer(lc_ft_t *ft, lc_ft_event_type_t type, int peer, lc_status_t st,
                             uint64_t seq)
{
    lc_ft_event_t ev = { .type = type, .peer = peer, .status = st, .seq = seq };
    lc__ft_emit(ft, &ev);
}

void lc__ft_member_gone(lc_ft_t *ft, int peer)
{
    if (!ft->peers[peer].member) return;
    atomic_store(&ft->pending, 1);
    lc__ft_step_eval(ft); /* a vote we wait for may never come */
}

static void lc__ft_send(lc_ft_t *ft, int peer, const lc_ctrl_msg_t *m, unsigned flags)
{
    uint8_t buf[LC_CTRL_MSG_LEN];

    lc__ctrl_msg_encode(m, buf);
    /* A peer that is gone is reported by the transport's own event; a
     * heartbeat dropped behind queued messages is tried again next tick. */
    if (ft->ops->ctrl_send(ft->tl, peer, buf, sizeof(buf), flags) == LC_OK)
        ft->peers[peer].last_tx_ns = lc__now_ns();
}

/* Every member that still reads what we send. */
void lc__ft_broadcast(lc_ft_t *ft, const lc_ctrl_msg_t *m)
{
    for (int r = 0; r < ft->p.size; r++) {
        lc_ft_peer_t *p = &ft->peers[r];
        if (r != ft->p.rank && p->member && p->alive && !p->left) lc__ft_send(ft, r, m, 0);
    }
}

static void lc__ft_on_ctrl(lc_ft_t *ft, int peer, const void *msg, size_t len)
{
    lc_ft_peer_t *p = &ft->peers[peer];
    lc_ctrl_msg_t m;
    const char *bad = lc__ctrl_msg_decode(msg, len, &m);

    if (bad != NULL) {
        lc_error("rank %d sent a bad control message (%s)", peer, bad);
        ft->ops->disconnect(ft->tl, peer, LC_ERR_CORRUPT, bad);
        return;
    }
    /* A peer removed from the view, or a message about an older view: the
     * collectives and steps it is about are not ours. A peer may be one
     * view ahead (it applied the next view first), never more. */
    if (!p->member || m.epoch < ft->p.epoch || m.epoch > ft->p.epoch + 1) return;
    switch (m.type) {
    case LC_CTRL_HEARTBEAT: break; /* its bytes already told the transport it lives */
    case LC_CTRL_ABORT:
        /* Sequence numbers never repeat across views: a notice from a peer
         * already in the next view is about a collective still ahead here. */
        lc__ft_emit_peer(ft, LC_FT_EVENT_ABORT, peer, (lc_status_t)m.status, m.seq);
        break;
    case LC_CTRL_GOODBYE:
        if (p->left) break;
        p->left = 1;
        p->left_seq = m.seq;
        ft->ops->peer_leaving(ft->tl, peer);
        lc__ft_emit_peer(ft, LC_FT_EVENT_PEER_LEFT, peer, LC_ERR_PEER_LOST, m.seq);
        lc__ft_member_gone(ft, peer);
        break;
    case LC_CTRL_VOTE: lc__ft_step_on_vote(ft, peer, m.epoch, m.seq, (lc_status_t)m.status); break;
    }
}

void lc__ft_on_tl_event(void *arg, const lc_tl_event_t *ev)
{
    lc_ft_t *ft = arg;
    lc_ft_peer_t *p;

    if (ev->peer < 0 || ev->peer >= ft->p.size || ev->peer == ft->p.rank) return;
    p = &ft->peers[ev->peer];
    switch (ev->type) {
    case LC_TL_EVENT_CTRL: lc__ft_on_ctrl(ft, ev->peer, ev->msg, ev->len); break;
    case LC_TL_EVENT_PEER_LOST:
        p->alive = 0;
        if (!p->member) break; /* removed from the view: disconnected on purpose */
        /* A peer that said goodbye and then closed is gone as it said. */
        if (p->left && ev->status == LC_ERR_PEER_LOST) {
            lc__ft_emit_peer(ft, LC_FT_EVENT_PEER_LEFT, ev->peer, LC_ERR_PEER_LOST, p->left_seq);
        } else {
            uint8_t b[8];
            lc__put_u32(b, ft->p.epoch);
            lc__put_u32(b + 4, (uint32_t)ev->peer);
            lc__ft_coord_send(ft, LC_CM_LOST, b, sizeof(b));
            lc__ft_emit_peer(ft, LC_FT_EVENT_PEER_LOST, ev->peer, ev->status, 0);
        }
        lc__ft_member_gone(ft, ev->peer);
        break;
    }
}

/* Every tick: disconnect the silent, and keep the others hearing from us. */
static void lc__ft_tick(void *arg, uint64_t now)
{
    lc_ft_t *ft = arg;
    uint64_t timeout = (uint64_t)ft->p.peer_timeout_ms * 1000000ull;
    lc_ctrl_msg_t hb = { .type = LC_CTRL_HEARTBEAT, .epoch = ft->p.epoch };

    for (int r = 0; r < ft->p.size; r++) {
        lc_ft_peer_t *p = &ft->peers[r];
        /* A peer that said goodbye is gone on purpose, not silent. */
        if (r == ft->p.rank || !p->member || !p->alive || p->left) continue;
        uint64_t heard = ft->ops->last_heard(ft->tl, r);
        if (now > heard && now - heard > timeout) {
            lc_warn("rank %d silent for %u ms (LC_PEER_TIMEOUT_MS)", r, ft->p.peer_timeout_ms);
            ft->ops->disconnect(ft->tl, r, LC_ERR_PEER_LOST, "silent");
            continue;
        }
        /* Not behind a control message still queued: it would say as much. */
        if (now - p->last_tx_ns >= timeout / 4) lc__ft_send(ft, r, &hb, LC_TL_CTRL_IF_IDLE);
    }
    lc__ft_coord_tick(ft, now);
}

lc_status_t lc__ft_start(lc_ft_t *ft, const lc_tl_ops_t *ops, lc_tl_t *tl)
{
    uint64_t now = lc__now_ns();

    ft->ops = ops;
    ft->tl = tl;
    for (int r = 0; r < ft->p.size; r++) {
        ft->peers[r].alive = r != ft->p.rank;
        ft->peers[r].last_tx_ns = now;
    }
    LC_CHECK(lc__ft_coord_init(ft));
    return lc__progress_tick_add(ft->p.progress, lc__ft_tick, ft);
}

void lc__ft_notify_abort(lc_ft_t *ft, uint64_t seq, lc_status_t status)
{
    /* Peers refuse a notice whose status is no error code (ctrl_msg.h). */
    if (!lc__status_is_error(status)) {
        lc_error("collective %llu failed with status %d, which is no error code: peers are told "
                 "LC_ERR_SYSTEM",
                 (unsigned long long)seq, (int)status);
        status = LC_ERR_SYSTEM;
    }
    lc_ctrl_msg_t m = { .type = LC_CTRL_ABORT, .epoch = ft->p.epoch, .seq = seq, .status = status };
    if (ft->tl != NULL) lc__ft_broadcast(ft, &m);
}

void lc__ft_goodbye(lc_ft_t *ft, uint64_t seq)
{
    lc_ctrl_msg_t m = { .type = LC_CTRL_GOODBYE, .epoch = ft->p.epoch, .seq = seq };
    if (ft->tl != NULL) lc__ft_broadcast(ft, &m);
}

int lc__ft_view_pending(lc_ft_t *ft)
{
    return atomic_load(&ft->pending);
}

void lc__ft_request_view(lc_ft_t *ft, uint64_t next_seq)
{
    uint8_t b[12];

    ft->c.want_view = 1;
    ft->c.next_seq = next_seq;
    lc__put_u32(b, ft->p.epoch);
    lc__put_u64(b + 4, next_seq);
    lc__ft_coord_send(ft, LC_CM_SHRINK, b, sizeof(b));
}

void lc__ft_forget_view_request(lc_ft_t *ft)
{
    ft->c.want_view = 0;
}

void lc__ft_leave(lc_ft_t *ft)
{
    uint8_t b[4];

    lc__put_u32(b, ft->p.epoch);
    lc__ft_coord_send(ft, LC_CM_LEAVE, b, sizeof(b));
}

/* The coordinator's next view: drop the members it removed (their links
 * are cut, so nothing of theirs is read again), start the new epoch. */
void lc__ft_on_view(lc_ft_t *ft, uint32_t epoch, uint64_t seq_base, const int *members, int n)
{
    int in = 0;

    for (int i = 0; i < n; i++) in |= members[i] == ft->p.rank;
    if (!in || epoch <= ft->p.epoch) {
        if (!in) lc_warn("view %u does not include this rank", epoch);
        return;
    }
    /* Only at a shrink of ours (a collective may be running now): the
     * coordinator sends it again when we ask. */
    if (!ft->c.want_view) {
        lc_info("view %u arrived while no view change is asked here: taken at the next "
                "lc_comm_shrink",
                epoch);
        return;
    }
    for (int r = 0; r < ft->p.size; r++) ft->peers[r].member = 0;
    for (int i = 0; i < n; i++) ft->peers[members[i]].member = 1;
    for (int r = 0; r < ft->p.size; r++) {
        lc_ft_peer_t *p = &ft->peers[r];
        if (r != ft->p.rank && !p->member && p->alive)
            ft->ops->disconnect(ft->tl, r, LC_ERR_PEER_LOST, "removed from the view");
    }
    memcpy(ft->members, members, (size_t)n * sizeof(*members));
    ft->nmembers = n;
    ft->p.epoch = epoch;
    ft->c.want_view = 0;
    ft->frozen = 0;
    ft->poll_step = 0;
    atomic_store(&ft->pending, 0);
    lc_info("view %u: %d ranks, collectives from %llu", epoch, n, (unsigned long long)seq_base);
    lc_ft_event_t ev = { .type = LC_FT_EVENT_VIEW,
                         .peer = -1,
                         .seq = seq_base,
                         .epoch = epoch,
                         .members = ft->members,
                         .nmembers = n };
    lc__ft_emit(ft, &ev);
}

void lc__ft_on_notice(lc_ft_t *ft, int peer, int why)
{
    lc_ft_peer_t *p = &ft->peers[peer];

    if (peer == ft->p.rank || !p->member) return;
    lc_info("coordinator: rank %d %s", peer, why == LC_CM_LEFT ? "leaves" : "failed");
    /* A failed member is cut off now, so collectives with it end at once;
     * one that leaves says goodbye itself, and what it sent stays readable. */
    if (why == LC_CM_FAILED && p->alive)
        ft->ops->disconnect(ft->tl, peer, LC_ERR_PEER_LOST, "failed (coordinator)");
    lc__ft_member_gone(ft, peer);
}

void lc__ft_on_removed(lc_ft_t *ft)
{
    if (ft->removed) return;
    ft->removed = 1;
    lc_error("the coordinator removed this rank from the communicator's view (it was taken for "
             "failed); its collectives fail with LC_ERR_REMOVED");
    lc_ft_event_t ev = { .type = LC_FT_EVENT_REMOVED, .peer = -1, .status = LC_ERR_REMOVED };
    lc__ft_emit(ft, &ev);
}

void lc__ft_stop(lc_ft_t *ft)
{
    if (ft != NULL) lc__ft_coord_close(ft);
}

void lc__ft_destroy(lc_ft_t *ft)
{
    if (ft == NULL) return;
    free(ft->members);
    free(ft->peers);
    free(ft);
}
