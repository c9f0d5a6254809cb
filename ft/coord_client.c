/*
 * A rank's connection to the coordinator (coord_link.h has the messages),
 * driven by the progress engine and never blocking it: a non-blocking
 * connect, the handshake, then STATE and whatever is still owed (a view
 * request, a step report). When the connection drops it is made again
 * every tick or so; training goes on meanwhile, and a view change or a
 * step that needs the coordinator fails with LC_ERR_COORD_LOST once it has
 * been unreachable for the coordinator timeout.
 */
#include "core/bytes.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/sock.h"
#include "core/util.h"
#include "ft/ft_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void lc__cc_down(lc_ft_t *ft, const char *why)
{
    lc_ft_coord_t *c = &ft->c;

    if (c->phase == LC_CC_UP)
        lc_warn("coordinator connection lost (%s); reconnecting", why);
    else
        lc_debug("coordinator not reached (%s)", why);
    if (c->h != NULL) lc__progress_fd_del(ft->p.progress, c->h);
    c->h = NULL;
    lc__clink_close(&c->link);
    c->phase = LC_CC_DOWN;
    if (c->down_ns == 0) c->down_ns = lc__now_ns();
    c->retry_ns = lc__now_ns() + 100000000ull; /* 100 ms */
}

static void lc__cc_watch(lc_ft_t *ft)
{
    lc_ft_coord_t *c = &ft->c;
    uint32_t ev =
        EPOLLIN | (c->phase == LC_CC_CONNECTING || lc__clink_pending(&c->link) ? EPOLLOUT : 0);
    if (c->h != NULL) lc__progress_fd_mod(ft->p.progress, c->h, ev);
}

void lc__ft_coord_send(lc_ft_t *ft, int type, const void *body, size_t len)
{
    lc_ft_coord_t *c = &ft->c;

    if (c->phase != LC_CC_UP) return;
    if (lc__clink_send(&c->link, type, body, len) != LC_OK) {
        lc__cc_down(ft, "send failed");
        return;
    }
    lc__cc_watch(ft);
}

void lc__ft_coord_report(lc_ft_t *ft, uint64_t step, int complete, int asked)
{
    lc_ft_coord_t *c = &ft->c;
    uint8_t b[14];

    if (asked) {
        c->report = 1;
        c->report_step = step;
        c->report_complete = complete;
        c->report_asked = asked;
    }
    lc__put_u32(b, ft->p.epoch);
    lc__put_u64(b + 4, step);
    b[12] = (uint8_t)complete;
    b[13] = (uint8_t)asked;
    lc__ft_coord_send(ft, LC_CM_REPORT, b, sizeof(b));
}

/* Up: say which view we are in, then what is still owed. */
static void lc__cc_up(lc_ft_t *ft)
{
    lc_ft_coord_t *c = &ft->c;
    uint8_t head[4];
    size_t len;

    if (c->down_ns != 0) lc_info("coordinator connection up");
    c->phase = LC_CC_UP;
    c->down_ns = 0;
    c->beat_ns = lc__now_ns();
    lc__put_u32(head, ft->p.peer_timeout_ms);
    uint8_t *b = lc__cm_view_body(ft->p.epoch, head, sizeof(head), ft->members, ft->nmembers, &len);
    if (b == NULL) {
        lc__cc_down(ft, "out of memory");
        return;
    }
    lc__ft_coord_send(ft, LC_CM_STATE, b, len);
    free(b);
    /* Members lost while it was unreachable (a restarted coordinator would
     * otherwise learn of them only at its peer timeout). */
    for (int i = 0; i < ft->nmembers; i++) {
        int r = ft->members[i];
        if (r == ft->p.rank || ft->peers[r].alive || ft->peers[r].left) continue;
        uint8_t lost[8];
        lc__put_u32(lost, ft->p.epoch);
        lc__put_u32(lost + 4, (uint32_t)r);
        lc__ft_coord_send(ft, LC_CM_LOST, lost, sizeof(lost));
    }
    if (c->want_view) lc__ft_request_view(ft, c->next_seq);
    if (c->report) lc__ft_coord_report(ft, c->report_step, c->report_complete, c->report_asked);
}

static const char *lc__cc_on_msg(lc_ft_t *ft, const lc_cmsg_t *m)
{
    lc_ft_coord_t *c = &ft->c;
    uint8_t auth[LC_CM_AUTH_LEN], mac[32];

    switch (c->phase) {
    case LC_CC_CHALLENGE:
        if (m->type != LC_CM_CHALLENGE || m->len != LC_CM_CHALLENGE_LEN) return "no challenge";
        lc__put_u32(auth, (uint32_t)ft->p.rank);
        lc__put_u32(auth + 4, (uint32_t)ft->p.size);
        lc__put_u64(auth + 8, ft->p.job_id);
        if (lc__random_bytes(c->nonce, sizeof(c->nonce)) != LC_OK) return "no random bytes";
        memcpy(auth + 16, c->nonce, 16);
        lc__clink_auth_mac(ft->p.job_key, ft->p.job_key_len, m->body, (uint32_t)ft->p.rank,
                           (uint32_t)ft->p.size, ft->p.job_id, auth + 32);
        if (lc__clink_send(&c->link, LC_CM_AUTH, auth, sizeof(auth)) != LC_OK) return "send failed";
        c->phase = LC_CC_ACCEPT;
        return NULL;
    case LC_CC_ACCEPT:
        if (m->type != LC_CM_ACCEPT || m->len != LC_CM_ACCEPT_LEN) return "refused us";
        lc__clink_accept_mac(ft->p.job_key, ft->p.job_key_len, c->nonce, (uint32_t)ft->p.rank, mac);
        if (!lc__ct_equal(mac, m->body, 32)) return "could not prove it holds the job key";
        lc__cc_up(ft);
        return NULL;
    default: break;
    }
    if (m->len < 4) return "short message";
    uint32_t epoch = lc__get_u32(m->body);
    switch (m->type) {
    case LC_CM_REMOVED:
        if (m->len != 4) return "bad REMOVED";
        lc__ft_on_removed(ft);
        return NULL;
    case LC_CM_VIEW: {
        int n;
        if (m->len < 12) return "short VIEW";
        int *mem = lc__cm_view_members(m, 12, ft->p.size, &n);
        if (mem == NULL) return "bad VIEW";
        lc__ft_on_view(ft, epoch, lc__get_u64(m->body + 4), mem, n);
        free(mem);
        return NULL;
    }
    default: break;
    }
    if (epoch != ft->p.epoch) return NULL; /* about another view */
    switch (m->type) {
    case LC_CM_NOTICE: {
        if (m->len != 9 || m->body[8] < LC_CM_FAILED || m->body[8] > LC_CM_LEFT)
            return "bad NOTICE";
        uint32_t peer = lc__get_u32(m->body + 4);
        if (peer >= (uint32_t)ft->p.size) return "bad rank in NOTICE";
        lc__ft_on_notice(ft, (int)peer, m->body[8]);
        return NULL;
    }
    case LC_CM_OUTCOME:
        if (m->len != 13 || m->body[12] > 1) return "bad OUTCOME";
        lc__ft_step_on_outcome(ft, lc__get_u64(m->body + 4), m->body[12]);
        return NULL;
    case LC_CM_POLL:
        if (m->len != 12) return "bad POLL";
        lc__ft_step_on_poll(ft, lc__get_u64(m->body + 4));
        return NULL;
    default: return "unknown message type";
    }
}

static void lc__cc_on_fd(void *arg, uint32_t events)
{
    lc_ft_t *ft = arg;
    lc_ft_coord_t *c = &ft->c;
    lc_cmsg_t m;
    const char *bad = NULL;
    int got;

    if (c->phase == LC_CC_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(c->link.fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            lc__cc_down(ft, strerror(err ? err : errno));
            return;
        }
        c->phase = LC_CC_CHALLENGE;
    }
    if ((events & EPOLLOUT) && lc__clink_flush(&c->link) != LC_OK) {
        lc__cc_down(ft, "write failed");
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        lc_status_t st = lc__clink_fill(&c->link);
        while (c->phase != LC_CC_DOWN && (got = lc__clink_next(&c->link, &m, &bad)) == 1) {
            bad = lc__cc_on_msg(ft, &m);
            if (bad != NULL) break;
        }
        if (c->phase == LC_CC_DOWN) return;
        if (bad != NULL || got < 0) {
            lc_error("coordinator: %s", bad != NULL ? bad : "garbage");
            lc__cc_down(ft, bad != NULL ? bad : "garbage");
            return;
        }
        if (st != LC_OK) {
            lc__cc_down(ft, "closed");
            return;
        }
    }
    lc__cc_watch(ft);
}

static void lc__cc_connect(lc_ft_t *ft)
{
    lc_ft_coord_t *c = &ft->c;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        lc__cc_down(ft, strerror(errno));
        return;
    }
    lc__clink_init(&c->link, fd);
    lc__sock_set_nodelay(fd);
    if (connect(fd, (const struct sockaddr *)&c->addr, sizeof(c->addr)) != 0 &&
        errno != EINPROGRESS) {
        lc__cc_down(ft, strerror(errno));
        return;
    }
    c->phase = LC_CC_CONNECTING;
    if (lc__progress_fd_add(ft->p.progress, fd, EPOLLIN | EPOLLOUT, lc__cc_on_fd, ft, &c->h) !=
        LC_OK)
        lc__cc_down(ft, "cannot watch the socket");
}

lc_status_t lc__ft_coord_init(lc_ft_t *ft)
{
    if (ft->c.phase == LC_CC_OFF) return LC_OK;
    ft->c.down_ns = lc__now_ns();
    ft->c.retry_ns = ft->c.down_ns;
    lc__cc_connect(ft);
    return LC_OK;
}

/* What waits for the coordinator fails: the view request, and the step
 * (a later vote starts afresh). */
static void lc__cc_give_up(lc_ft_t *ft)
{
    lc_ft_event_t ev = { .type = LC_FT_EVENT_COORD_LOST, .peer = -1, .status = LC_ERR_COORD_LOST };

    ft->c.want_view = 0;
    ft->c.report = 0;
    ft->step = 0;
    ft->frozen = 0;
    lc__ft_emit(ft, &ev);
}

void lc__ft_coord_tick(lc_ft_t *ft, uint64_t now)
{
    lc_ft_coord_t *c = &ft->c;
    int waiting = c->want_view || c->report;

    if (c->phase == LC_CC_OFF) {
        if (waiting) {
            lc_error("a view change or a step outcome needs the coordinator, and none is set "
                     "(LC_COORDINATOR, which lcrun sets)");
            lc__cc_give_up(ft);
        }
        return;
    }
    if (c->phase == LC_CC_UP) {
        if (now - c->beat_ns >= (uint64_t)ft->p.peer_timeout_ms * 250000ull) {
            uint8_t b[4];
            lc__put_u32(b, ft->p.epoch);
            c->beat_ns = now;
            lc__ft_coord_send(ft, LC_CM_BEAT, b, sizeof(b));
        }
        return;
    }
    /* A handshake that stalls is a connection that failed. */
    if (c->phase != LC_CC_DOWN && now - c->retry_ns > 5000000000ull) {
        lc__cc_down(ft, "handshake timed out");
        return;
    }
    if (c->phase == LC_CC_DOWN && now >= c->retry_ns) {
        c->retry_ns = now;
        lc__cc_connect(ft);
    }
    if (waiting && c->down_ns != 0 &&
        now - c->down_ns > (uint64_t)ft->p.coord_timeout_ms * 1000000ull) {
        lc_error("the coordinator has been unreachable for %u ms (LC_COORD_TIMEOUT_MS)",
                 ft->p.coord_timeout_ms);
        lc__cc_give_up(ft);
    }
}

void lc__ft_coord_close(lc_ft_t *ft)
{
    lc_ft_coord_t *c = &ft->c;

    /* Before the engine is destroyed (it must hold no fd by then). */
    if (c->h != NULL) lc__progress_fd_del(ft->p.progress, c->h);
    c->h = NULL;
    lc__clink_close(&c->link);
    c->phase = LC_CC_OFF;
}
