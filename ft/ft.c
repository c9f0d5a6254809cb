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

#include <stdlib.h>

typedef struct {
    int alive;
    int left;            /* said goodbye ... */
    uint64_t left_seq;   /* ... after collectives up to this one */
    uint64_t last_tx_ns; /* we last sent it a control message */
} lc_ft_peer_t;

struct lc_ft {
    lc_ft_params_t p;
    const lc_tl_ops_t *ops;
    lc_tl_t *tl;
    lc_ft_peer_t *peers; /* indexed by rank */
};

lc_status_t lc__ft_create(const lc_ft_params_t *params, lc_ft_t **ft_p)
{
    lc_ft_t *ft = calloc(1, sizeof(*ft));

    if (ft == NULL) return LC_ERR_NO_MEMORY;
    ft->p = *params;
    ft->peers = calloc((size_t)params->size, sizeof(*ft->peers));
    if (ft->peers == NULL) {
        free(ft);
        return LC_ERR_NO_MEMORY;
    }
    *ft_p = ft;
    return LC_OK;
}

static void lc__ft_emit(lc_ft_t *ft, lc_ft_event_type_t type, int peer, lc_status_t st,
                        uint64_t seq)
{
    lc_ft_event_t ev = { .type = type, .peer = peer, .status = st, .seq = seq };
    if (ft->p.event_cb != NULL) ft->p.event_cb(ft->p.event_arg, &ev);
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

/* Every peer that still reads what we send. */
static void lc__ft_broadcast(lc_ft_t *ft, const lc_ctrl_msg_t *m)
{
    for (int r = 0; r < ft->p.size; r++) {
        if (r != ft->p.rank && ft->peers[r].alive && !ft->peers[r].left) lc__ft_send(ft, r, m, 0);
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
    switch (m.type) {
    case LC_CTRL_HEARTBEAT: break; /* its bytes already told the transport it lives */
    case LC_CTRL_ABORT:
        /* A notice from another view is about collectives we never shared. */
        if (m.epoch == ft->p.epoch)
            lc__ft_emit(ft, LC_FT_EVENT_ABORT, peer, (lc_status_t)m.status, m.seq);
        break;
    case LC_CTRL_GOODBYE:
        if (p->left) break;
        p->left = 1;
        p->left_seq = m.seq;
        ft->ops->peer_leaving(ft->tl, peer);
        lc__ft_emit(ft, LC_FT_EVENT_PEER_LEFT, peer, LC_ERR_PEER_LOST, m.seq);
        break;
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
        /* A peer that said goodbye and then closed is gone as it said. */
        if (p->left && ev->status == LC_ERR_PEER_LOST)
            lc__ft_emit(ft, LC_FT_EVENT_PEER_LEFT, ev->peer, LC_ERR_PEER_LOST, p->left_seq);
        else
            lc__ft_emit(ft, LC_FT_EVENT_PEER_LOST, ev->peer, ev->status, 0);
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
        if (r == ft->p.rank || !p->alive || p->left) continue;
        uint64_t heard = ft->ops->last_heard(ft->tl, r);
        if (now > heard && now - heard > timeout) {
            lc_warn("rank %d silent for %u ms (LC_PEER_TIMEOUT_MS)", r, ft->p.peer_timeout_ms);
            ft->ops->disconnect(ft->tl, r, LC_ERR_PEER_LOST, "silent");
            continue;
        }
        /* Not behind a control message still queued: it would say as much. */
        if (now - p->last_tx_ns >= timeout / 4) lc__ft_send(ft, r, &hb, LC_TL_CTRL_IF_IDLE);
    }
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

void lc__ft_destroy(lc_ft_t *ft)
{
    if (ft == NULL) return;
    free(ft->peers);
    free(ft);
}
