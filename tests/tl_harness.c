/* The transport test harness (tl_harness.h). */
#include "tl_harness.h"

#include "core/config.h"
#include "mp.h"
#include "transport/bootstrap.h"

#include <string.h>

void tt_complete(void *arg, lc_status_t status, size_t length)
{
    tt_op_t *op = arg;
    op->done = 1;
    op->status = status;
    op->length = length;
}

static void tt_event(void *arg, const lc_tl_event_t *ev)
{
    tt_t *t = arg;
    if (ev->type == LC_TL_EVENT_PEER_LOST) {
        t->lost_peer = ev->peer;
        t->lost_status = ev->status;
        t->lost_leaving = ev->leaving;
    }
    if (ev->type == LC_TL_EVENT_CTRL && t->nctrl < 8) {
        const uint8_t *m = ev->msg;
        t->ctrl_len[t->nctrl] = ev->len;
        t->ctrl_first[t->nctrl] = m[0];
        t->ctrl_last[t->nctrl] = m[ev->len - 1];
        t->nctrl++;
    }
    if (t->ft != NULL) lc__ft_on_tl_event(t->ft, ev);
}

int tt_up(tt_t *t, int rank, int size)
{
    const lc_config_t *cfg = lc__config_get();
    lc_bootstrap_t *bs = NULL;
    lc_bootstrap_tcp_params_t bp = {
        .rank = rank,
        .size = size,
        .coord = cfg->coord,
        .listen_fd = rank == 0 ? cfg->coord_fd : -1,
        .job_key = (const uint8_t *)KEY,
        .job_key_len = strlen(KEY),
        .job_id = 42,
        .timeout_ms = 20000,
    };
    tt_t keep = *t;
    memset(t, 0, sizeof(*t));
    t->with_ft = keep.with_ft;
    t->ft_cb = keep.ft_cb;
    t->ft_arg = keep.ft_arg;
    t->lost_peer = -1;
    if (lc__progress_create(20, &t->progress) != LC_OK) return 1;
    if (t->with_ft) {
        lc_ft_params_t fp = {
            .rank = rank,
            .size = size,
            .peer_timeout_ms = cfg->peer_timeout_ms,
            .progress = t->progress,
            .event_cb = t->ft_cb,
            .event_arg = t->ft_arg,
        };
        if (lc__ft_create(&fp, &t->ft) != LC_OK) return 1;
    }
    if (lc__bootstrap_tcp_create(&bp, &bs) != LC_OK) return 1;
    lc_tl_params_t tp = {
        .rank = rank,
        .size = size,
        .progress = t->progress,
        .bootstrap = bs,
        .job_key = (const uint8_t *)KEY,
        .job_key_len = strlen(KEY),
        .job_id = 42,
        .config = cfg,
        .event_cb = tt_event,
        .event_arg = t,
    };
    t->ops = lc__tl_find("tcp");
    lc_status_t st = t->ops->create(&tp, &t->tl);
    bs->ops->destroy(bs);
    t->up_status = st;
    if (st == LC_OK && t->ft != NULL) st = lc__ft_start(t->ft, t->ops, t->tl);
    return st != LC_OK;
}

void tt_down(tt_t *t)
{
    t->ops->destroy(t->tl);
    lc__progress_destroy(t->progress);
    lc__ft_destroy(t->ft); /* after the engine: its tick refers to it */
}

int tt_until(tt_t *t, const int *flag, double timeout_s)
{
    double end = lc_mp_now() + timeout_s;
    while (!*flag && lc_mp_now() < end) lc__progress_run_once(t->progress, 10);
    return *flag ? 0 : 1;
}

int tt_until_lost(tt_t *t, int peer, double timeout_s)
{
    double end = lc_mp_now() + timeout_s;
    while (t->lost_peer != peer && lc_mp_now() < end) lc__progress_run_once(t->progress, 10);
    return t->lost_peer == peer ? 0 : 1;
}

int tt_dropped_by(tt_t *t, int peer, double timeout_s)
{
    uint8_t sink[64];
    tt_op_t r = { 0 };
    lc_tl_tag_t tag = tt_tag(5, 0, 0);
    t->ops->recv(t->tl, peer, &tag, sink, sizeof(sink), tt_complete, &r);
    return tt_until(t, &r.done, timeout_s);
}

lc_tl_tag_t tt_tag(uint64_t seq, uint32_t index, uint32_t sig)
{
    lc_tl_tag_t tag = { .seq = seq, .index = index, .sig = sig, .codec = 0 };
    return tag;
}
