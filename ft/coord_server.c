/*
 * The coordinator's poll loop (coord_server.h says what it decides).
 *
 * State per rank of the first view: its connection (or none), whether it
 * is a member of the current view and whether it failed in it, when it was
 * last heard, and what it asked for (the next view; a step's outcome).
 * Everything is decided in lc__crd_settle after each event: remove the
 * failed, form the next view when every live member asked, answer a step
 * when every live member reported.
 */
#include "ft/coord_server.h"

#include "core/bytes.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/util.h"
#include "ft/coord_link.h"
#include "core/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection that has not authenticated within this long is dropped. */
#define LC_CRD_AUTH_MS 5000
/* At most this many connections wait for their handshake. */
#define LC_CRD_MAX_UNAUTH 64

typedef struct {
    lc_clink_t link;
    int rank; /* -1 until authenticated */
    uint8_t nonce[16];
    uint64_t deadline_ns; /* of the handshake */
} lc_crd_conn_t;

typedef struct {
    int conn;         /* index in conns, or -1 */
    int member;       /* in the current view */
    int failed;       /* ... and failed or left in it: out of the next */
    int left;         /* it said it leaves */
    uint64_t seen_ns; /* last message, or when its connection went */
    int shrink;       /* asked for the next view */
    uint64_t next_seq;
    int reported[2]; /* step rounds (by step parity): reported */
    int complete[2]; /* ... that it received every vote for commit */
} lc_crd_rank_t;

struct lc_coord_server {
    lc_coord_server_params_t p;
    uint8_t key[256];
    int lfd;
    int stop_pipe[2];
    pthread_t thread;
    char addr[64];

    lc_crd_conn_t *conns;
    int nconns, capconns;

    int size; /* of the first view; 0 until the first rank authenticates */
    lc_crd_rank_t *ranks;
    int have_view;
    uint32_t epoch;
    uint64_t seq_base;   /* of the current view */
    uint32_t timeout_ms; /* peer timeout in force */
    /* Steps being settled (0: none) and the last settled, with their
     * outcomes, by step parity: a member stuck on step s keeps the others
     * from deciding s + 1 alone, so two rounds can be open, never three. */
    uint64_t round_step[2];
    uint64_t done_step[2];
    int done_commit[2];
};

/* ------------------------------------------------------------ sending */

static void lc__crd_drop(lc_coord_server_t *s, int i, const char *why);

static void lc__crd_send(lc_coord_server_t *s, int i, int type, const void *body, size_t len)
{
    lc_status_t st = lc__clink_send(&s->conns[i].link, type, body, len);
    if (st != LC_OK) lc_debug("coordinator: send to rank %d failed", s->conns[i].rank);
}

static void lc__crd_send_rank(lc_coord_server_t *s, int r, int type, const void *body, size_t len)
{
    if (s->ranks[r].conn >= 0) lc__crd_send(s, s->ranks[r].conn, type, body, len);
}

static int lc__crd_live(const lc_coord_server_t *s, int r)
{
    return s->ranks[r].member && !s->ranks[r].failed;
}

static void lc__crd_send_view(lc_coord_server_t *s, int r)
{
    int *m = malloc((size_t)s->size * sizeof(*m));
    uint8_t head[8];
    size_t len;
    int n = 0;

    if (m == NULL) return;
    for (int i = 0; i < s->size; i++)
        if (s->ranks[i].member) m[n++] = i;
    lc__put_u64(head, s->seq_base);
    uint8_t *b = lc__cm_view_body(s->epoch, head, sizeof(head), m, n, &len);
    if (b != NULL) lc__crd_send_rank(s, r, LC_CM_VIEW, b, len);
    free(b);
    free(m);
}

static void lc__crd_send_epoch_step(lc_coord_server_t *s, int r, int type, uint64_t step, int flag)
{
    uint8_t b[13];
    lc__put_u32(b, s->epoch);
    lc__put_u64(b + 4, step);
    b[12] = (uint8_t)flag;
    lc__crd_send_rank(s, r, type, b, type == LC_CM_POLL ? 12 : 13);
}

static void lc__crd_send_removed(lc_coord_server_t *s, int i)
{
    uint8_t b[4];
    lc__put_u32(b, s->epoch);
    lc__crd_send(s, i, LC_CM_REMOVED, b, sizeof(b));
}

/* ------------------------------------------------------------ decisions */

static void lc__crd_reset_rounds(lc_coord_server_t *s)
{
    for (int i = 0; i < 2; i++) {
        s->round_step[i] = s->done_step[i] = 0;
        for (int r = 0; r < s->size; r++) s->ranks[r].reported[i] = s->ranks[r].complete[i] = 0;
    }
}

static void lc__crd_fail(lc_coord_server_t *s, int r, int why, const char *what)
{
    uint8_t b[9];

    if (!lc__crd_live(s, r)) return;
    s->ranks[r].failed = 1;
    if (why == LC_CM_LEFT)
        lc_info("coordinator: rank %d %s (epoch %u)", r, what, s->epoch);
    else
        lc_warn("coordinator: rank %d %s (epoch %u)", r, what, s->epoch);
    lc__put_u32(b, s->epoch);
    lc__put_u32(b + 4, (uint32_t)r);
    b[8] = (uint8_t)why;
    for (int i = 0; i < s->size; i++)
        if (lc__crd_live(s, i)) lc__crd_send_rank(s, i, LC_CM_NOTICE, b, sizeof(b));
}

/* Every live member asked for the next view: form it. */
static void lc__crd_try_view(lc_coord_server_t *s)
{
    uint64_t base = s->seq_base;
    int n = 0, asked = 0;

    for (int r = 0; r < s->size; r++) {
        if (!lc__crd_live(s, r)) continue;
        n++;
        if (s->ranks[r].shrink) {
            asked++;
            base = LC_MAX(base, s->ranks[r].next_seq);
        }
    }
    if (asked == 0 || asked < n) return;
    s->epoch++;
    s->seq_base = base;
    lc__crd_reset_rounds(s);
    for (int r = 0; r < s->size; r++) {
        lc_crd_rank_t *k = &s->ranks[r];
        k->member = k->member && !k->failed && k->shrink;
        k->failed = 0;
        k->shrink = 0;
    }
    lc_info("coordinator: view %u has %d ranks; collectives from %llu", s->epoch, n,
            (unsigned long long)base);
    for (int r = 0; r < s->size; r++)
        if (s->ranks[r].member) lc__crd_send_view(s, r);
}

/* Every live member reported on round i's step: settle it. */
static void lc__crd_try_outcome(lc_coord_server_t *s, int i)
{
    int commit = 0;
    uint64_t step = s->round_step[i];

    if (step == 0) return;
    for (int r = 0; r < s->size; r++) {
        /* A report that every vote said commit counts from whoever sent
         * it, a member failed since included: it decided commit. */
        if (s->ranks[r].reported[i])
            commit |= s->ranks[r].complete[i];
        else if (lc__crd_live(s, r))
            return;
    }
    lc_info("coordinator: step %llu of view %u %s", (unsigned long long)step, s->epoch,
            commit ? "committed" : "aborted");
    s->done_step[i] = step;
    s->done_commit[i] = commit;
    s->round_step[i] = 0;
    for (int r = 0; r < s->size; r++)
        if (lc__crd_live(s, r)) lc__crd_send_epoch_step(s, r, LC_CM_OUTCOME, step, commit);
}

static void lc__crd_settle(lc_coord_server_t *s)
{
    if (!s->have_view) return;
    /* The older step first: its answers may be what the newer waits on. */
    int older =
        s->round_step[1] != 0 && (s->round_step[0] == 0 || s->round_step[1] < s->round_step[0]);
    lc__crd_try_outcome(s, older);
    lc__crd_try_outcome(s, !older);
    lc__crd_try_view(s);
}

/* ------------------------------------------------------------ messages */

/* The view a (re)connecting rank is in: adopt it if we have none or it is
 * newer; tell the rank where it stands. */
static const char *lc__crd_on_state(lc_coord_server_t *s, int i, const lc_cmsg_t *m)
{
    int r = s->conns[i].rank, n;
    if (m->len < 12) return "short STATE";
    uint32_t epoch = lc__get_u32(m->body);
    uint32_t pto = lc__get_u32(m->body + 4);
    int *mem = lc__cm_view_members(m, 8, s->size, &n);
    if (mem == NULL) return "bad view in STATE";
    if (pto > s->timeout_ms) s->timeout_ms = pto;
    if (!s->have_view || epoch > s->epoch) {
        s->have_view = 1;
        s->epoch = epoch;
        lc__crd_reset_rounds(s);
        for (int k = 0; k < s->size; k++) {
            s->ranks[k].member = 0;
            s->ranks[k].failed = 0;
            s->ranks[k].shrink = 0;
            s->ranks[k].seen_ns = lc__now_ns(); /* everyone gets a timeout to reconnect */
        }
        for (int k = 0; k < n; k++) s->ranks[mem[k]].member = 1;
        lc_info("coordinator: took view %u (%d ranks) from rank %d", epoch, n, r);
    }
    free(mem);
    if (!s->ranks[r].member || (epoch < s->epoch && s->ranks[r].failed)) {
        lc_warn("coordinator: rank %d (view %u) is not in view %u: removed", r, epoch, s->epoch);
        lc__crd_send_removed(s, i);
    } else if (epoch < s->epoch) {
        lc__crd_send_view(s, r); /* it missed the last one */
    } else {
        /* Back after a lost connection: a poll it may have missed. */
        for (int j = 0; j < 2; j++)
            if (s->round_step[j] != 0 && !s->ranks[r].reported[j])
                lc__crd_send_epoch_step(s, r, LC_CM_POLL, s->round_step[j], 0);
    }
    return NULL;
}

static const char *lc__crd_on_msg(lc_coord_server_t *s, int i, const lc_cmsg_t *m)
{
    int r = s->conns[i].rank;
    lc_crd_rank_t *k = &s->ranks[r];

    if (m->type == LC_CM_STATE) return lc__crd_on_state(s, i, m);
    if (m->len < 4) return "short message";
    uint32_t epoch = lc__get_u32(m->body);
    if (!k->member || (epoch < s->epoch && k->failed)) {
        lc__crd_send_removed(s, i);
        return NULL;
    }
    if (epoch != s->epoch) {
        if (m->type == LC_CM_SHRINK && epoch < s->epoch) lc__crd_send_view(s, r);
        return NULL; /* stale; a newer message follows */
    }
    switch (m->type) {
    case LC_CM_BEAT:
        if (m->len != 4) return "bad BEAT";
        return NULL;
    case LC_CM_LOST: {
        if (m->len != 8) return "bad LOST";
        uint32_t peer = lc__get_u32(m->body + 4);
        if (peer >= (uint32_t)s->size || (int)peer == r) return "bad rank in LOST";
        if (!k->failed) lc__crd_fail(s, (int)peer, LC_CM_FAILED, "lost (reported by a peer)");
        return NULL;
    }
    case LC_CM_LEAVE:
        if (m->len != 4) return "bad LEAVE";
        k->left = 1;
        lc__crd_fail(s, r, LC_CM_LEFT, "leaves");
        return NULL;
    case LC_CM_SHRINK:
        if (m->len != 12) return "bad SHRINK";
        if (k->failed) {
            lc__crd_send_removed(s, i);
            return NULL;
        }
        k->shrink = 1;
        k->next_seq = lc__get_u64(m->body + 4);
        return NULL;
    case LC_CM_REPORT: {
        if (m->len != 14 || m->body[12] > 1 || m->body[13] > 1) return "bad REPORT";
        uint64_t step = lc__get_u64(m->body + 4);
        int j = (int)(step & 1);
        if (step == 0) return "REPORT of step 0";
        if (step == s->done_step[j]) { /* settled already */
            if (m->body[13]) lc__crd_send_epoch_step(s, r, LC_CM_OUTCOME, step, s->done_commit[j]);
            return NULL;
        }
        if (step != s->round_step[j]) {
            if (s->round_step[j] != 0 && step < s->round_step[j]) return NULL; /* stale */
            s->round_step[j] = step;
            for (int q = 0; q < s->size; q++) s->ranks[q].reported[j] = s->ranks[q].complete[j] = 0;
            for (int q = 0; q < s->size; q++)
                if (q != r && lc__crd_live(s, q))
                    lc__crd_send_epoch_step(s, q, LC_CM_POLL, step, 0);
        }
        k->reported[j] = 1;
        k->complete[j] = m->body[12];
        return NULL;
    }
    default: return "unknown message type";
    }
}

/* ------------------------------------------------------------ connections */

static void lc__crd_drop(lc_coord_server_t *s, int i, const char *why)
{
    lc_crd_conn_t *c = &s->conns[i];
    int r = c->rank;

    if (why != NULL) lc_warn("coordinator: dropped connection of rank %d: %s", r, why);
    if (r >= 0 && s->ranks[r].conn == i) {
        s->ranks[r].conn = -1;
        s->ranks[r].seen_ns = lc__now_ns(); /* the peer timeout counts from here */
    }
    lc__clink_close(&c->link);
    s->conns[i] = s->conns[--s->nconns];
    if (i < s->nconns && s->conns[i].rank >= 0) s->ranks[s->conns[i].rank].conn = i;
}

static void lc__crd_accept(lc_coord_server_t *s)
{
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    int unauth = 0;

    if (fd < 0) return;
    lc__sock_set_nodelay(fd);
    for (int i = 0; i < s->nconns; i++) unauth += s->conns[i].rank < 0;
    if (unauth >= LC_CRD_MAX_UNAUTH) {
        lc_warn("coordinator: %d connections wait for their handshake; refusing another", unauth);
        close(fd);
        return;
    }
    if (s->nconns == s->capconns) {
        int ncap = s->capconns ? 2 * s->capconns : 16;
        lc_crd_conn_t *n = realloc(s->conns, (size_t)ncap * sizeof(*n));
        if (n == NULL) {
            close(fd);
            return;
        }
        s->conns = n;
        s->capconns = ncap;
    }
    lc_crd_conn_t *c = &s->conns[s->nconns];
    memset(c, 0, sizeof(*c));
    lc__clink_init(&c->link, fd);
    c->rank = -1;
    c->deadline_ns = lc__now_ns() + (uint64_t)LC_CRD_AUTH_MS * 1000000ull;
    if (lc__random_bytes(c->nonce, sizeof(c->nonce)) != LC_OK) {
        close(fd);
        return;
    }
    s->nconns++;
    lc__crd_send(s, s->nconns - 1, LC_CM_CHALLENGE, c->nonce, sizeof(c->nonce));
}

static int lc__crd_find(const lc_coord_server_t *s, int fd)
{
    for (int i = 0; i < s->nconns; i++)
        if (s->conns[i].link.fd == fd) return i;
    return -1;
}

static const char *lc__crd_on_auth(lc_coord_server_t *s, int i, const lc_cmsg_t *m)
{
    lc_crd_conn_t *c = &s->conns[i];
    uint8_t mac[32];

    if (m->type != LC_CM_AUTH || m->len != LC_CM_AUTH_LEN) return "no handshake";
    uint32_t rank = lc__get_u32(m->body), size = lc__get_u32(m->body + 4);
    uint64_t job = lc__get_u64(m->body + 8);
    lc__clink_auth_mac(s->key, s->p.job_key_len, c->nonce, rank, size, job, mac);
    if (!lc__ct_equal(mac, m->body + 32, 32)) return "wrong job key";
    if (job != s->p.job_id) return "wrong job id";
    if (size < 1 || size > LC_CLINK_MAX_RANKS || rank >= size) return "bad rank or size";
    if (s->size == 0) {
        s->ranks = calloc(size, sizeof(*s->ranks));
        if (s->ranks == NULL) return "out of memory";
        s->size = (int)size;
        for (uint32_t r = 0; r < size; r++) s->ranks[r].conn = -1;
    }
    if ((int)size != s->size) return "size differs from the other ranks'";
    /* A rank that reconnects replaces its old connection (which may move
     * this one in the array). */
    if (s->ranks[rank].conn >= 0) {
        int fd = c->link.fd;
        lc__crd_drop(s, s->ranks[rank].conn, "replaced by a new one");
        i = lc__crd_find(s, fd);
        c = &s->conns[i];
    }
    c->rank = (int)rank;
    s->ranks[rank].conn = i;
    s->ranks[rank].seen_ns = lc__now_ns();
    lc__clink_accept_mac(s->key, s->p.job_key_len, m->body + 16, rank, mac);
    lc__crd_send(s, i, LC_CM_ACCEPT, mac, sizeof(mac));
    return NULL;
}

/* Read and handle what connection i sent; returns 0 if it was dropped. */
static int lc__crd_read(lc_coord_server_t *s, int i)
{
    lc_cmsg_t m;
    const char *bad = NULL;
    int got;

    /* What arrived before the end of the stream counts (a LEAVE, say). */
    lc_status_t fst = lc__clink_fill(&s->conns[i].link);
    int fd = s->conns[i].link.fd;
    while ((got = lc__clink_next(&s->conns[i].link, &m, &bad)) == 1) {
        int r = s->conns[i].rank;
        bad = r < 0 ? lc__crd_on_auth(s, i, &m) : lc__crd_on_msg(s, i, &m);
        i = lc__crd_find(s, fd); /* a handshake may have moved it */
        if (bad != NULL) break;
        r = s->conns[i].rank;
        if (r >= 0) s->ranks[r].seen_ns = lc__now_ns();
    }
    if (got < 0 || bad != NULL) {
        lc__crd_drop(s, i, bad);
        return 0;
    }
    if (fst != LC_OK) {
        int r = s->conns[i].rank;
        /* A rank that left or was removed closes as expected. */
        int quiet = r < 0 || !s->ranks[r].member || s->ranks[r].left;
        lc__crd_drop(s, i, quiet ? NULL : "connection closed");
        return 0;
    }
    return 1;
}

static void lc__crd_timers(lc_coord_server_t *s, uint64_t now)
{
    uint64_t to = (uint64_t)s->timeout_ms * 1000000ull;

    for (int i = 0; i < s->nconns; i++) {
        if (s->conns[i].rank < 0 && now > s->conns[i].deadline_ns) {
            lc__crd_drop(s, i, "no handshake in time");
            i--;
        }
    }
    if (!s->have_view) return;
    for (int r = 0; r < s->size; r++) {
        if (lc__crd_live(s, r) && now - s->ranks[r].seen_ns > to)
            lc__crd_fail(s, r, LC_CM_FAILED,
                         s->ranks[r].conn >= 0 ? "silent" : "disconnected and not back");
    }
}

static void *lc__crd_thread(void *arg)
{
    lc_coord_server_t *s = arg;
    struct pollfd *pf = NULL;
    int cap = 0;

    for (;;) {
        int n = s->nconns + 2;
        if (n > cap) {
            struct pollfd *np = realloc(pf, (size_t)n * 2 * sizeof(*np));
            if (np == NULL) {
                usleep(100000);
                continue;
            }
            pf = np;
            cap = n * 2;
        }
        pf[0] = (struct pollfd){ .fd = s->stop_pipe[0], .events = POLLIN };
        pf[1] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
        for (int i = 0; i < s->nconns; i++) {
            pf[i + 2].fd = s->conns[i].link.fd;
            pf[i + 2].events =
                (short)(POLLIN | (lc__clink_pending(&s->conns[i].link) ? POLLOUT : 0));
            pf[i + 2].revents = 0;
        }
        int tick = (int)LC_MAX(10u, LC_MIN(100u, s->timeout_ms / 4));
        int rc = poll(pf, (nfds_t)n, tick);
        if (rc < 0 && errno != EINTR) {
            lc_error("coordinator: poll: %s", strerror(errno));
            break;
        }
        if (pf[0].revents) break;
        /* Walk backwards: a drop moves the last connection into its slot. */
        int nc = s->nconns;
        for (int i = nc - 1; i >= 0; i--) {
            short ev = pf[i + 2].revents;
            if (ev == 0 || i >= s->nconns) continue;
            if ((ev & POLLOUT) && lc__clink_flush(&s->conns[i].link) != LC_OK) {
                lc__crd_drop(s, i, s->conns[i].rank >= 0 ? "connection failed" : NULL);
                continue;
            }
            if (ev & (POLLIN | POLLERR | POLLHUP)) lc__crd_read(s, i);
        }
        if (pf[1].revents & POLLIN) lc__crd_accept(s);
        lc__crd_timers(s, lc__now_ns());
        lc__crd_settle(s);
    }
    free(pf);
    return NULL;
}

/* ------------------------------------------------------------ life cycle */

lc_status_t lc__coord_server_start(const lc_coord_server_params_t *p, lc_coord_server_t **s_p)
{
    lc_coord_server_t *s;
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    lc_status_t st;

    if (p->job_key == NULL || p->job_key_len == 0 || p->job_key_len > sizeof(s->key))
        return LC_ERR_INVALID_ARG;
    s = calloc(1, sizeof(*s));
    if (s == NULL) return LC_ERR_NO_MEMORY;
    s->p = *p;
    memcpy(s->key, p->job_key, p->job_key_len);
    s->p.job_key = s->key;
    s->timeout_ms = LC_MAX(10u, p->peer_timeout_ms);
    s->lfd = p->listen_fd;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    if (s->lfd < 0) {
        LC_CHECK_GOTO(lc__sock_parse_addr(p->addr != NULL ? p->addr : "127.0.0.1:0", &a), st, err);
        LC_CHECK_GOTO(lc__sock_listen(&a, 128, &s->lfd), st, err);
    }
    lc__sock_set_nonblock(s->lfd, 1);
    if (getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 || pipe(s->stop_pipe) != 0) {
        lc_error("coordinator: %s", strerror(errno));
        st = LC_ERR_SYSTEM;
        goto err;
    }
    char ip[INET_ADDRSTRLEN] = "127.0.0.1";
    if (a.sin_addr.s_addr != htonl(INADDR_ANY)) inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
    snprintf(s->addr, sizeof(s->addr), "%s:%u", ip, (unsigned)ntohs(a.sin_port));
    if (pthread_create(&s->thread, NULL, lc__crd_thread, s) != 0) {
        st = LC_ERR_SYSTEM;
        goto err;
    }
    lc_info("coordinator serving at %s", s->addr);
    *s_p = s;
    return LC_OK;
err:
    if (s->lfd >= 0) close(s->lfd);
    if (s->stop_pipe[0] >= 0) close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0) close(s->stop_pipe[1]);
    free(s);
    return st;
}

void lc__coord_server_address(const lc_coord_server_t *s, char *buf, size_t len)
{
    snprintf(buf, len, "%s", s->addr);
}

void lc__coord_server_stop(lc_coord_server_t *s)
{
    if (s == NULL) return;
    if (write(s->stop_pipe[1], "x", 1) != 1) lc_error("coordinator: cannot stop its thread");
    pthread_join(s->thread, NULL);
    while (s->nconns > 0) lc__crd_drop(s, s->nconns - 1, NULL);
    free(s->conns);
    free(s->ranks);
    close(s->lfd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    free(s);
}
