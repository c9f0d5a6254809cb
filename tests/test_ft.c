/*
 * The control plane (ft/): its messages byte by byte, and the control plane
 * over the TCP transport between two forked ranks (tests/tl_harness.h):
 *   - every well-formed control message round-trips, and each kind of
 *     malformed one is refused (a status that is not an error code above
 *     all: an abort with LC_OK would make a collective "succeed");
 *   - a peer's abort notice of our epoch and its goodbye arrive as events,
 *     a notice of another epoch is dropped, a message it sent before the
 *     goodbye is still received after it, and the goodbye makes the end of
 *     its streams a departure (the transport told), not a failure;
 *   - an abort whose status is not an error code disconnects its sender
 *     with LC_ERR_CORRUPT;
 *   - heartbeats keep a quiet peer alive for many timeouts, and a peer that
 *     stops (no heartbeat, no byte) is lost within the peer timeout and a
 *     tick or two;
 *   - the link probe (ft/probe.c) measures a rate between "hosts" (loopback
 *     addresses), the same on every rank, and none within one host or
 *     with LC_LINK_PROBE_BYTES=0 on any rank;
 *   - the coordinator closes strangers (a wrong key, garbage, a length over
 *     the limit, another version, a message before the handshake) and a
 *     member's malformed view, and goes on serving.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/util.h"
#include "api/comm.h"
#include "core/bytes.h"
#include "core/sock.h"
#include "ft/coord_link.h"
#include "ft/ctrl_msg.h"
#include "ft/ft.h"
#include "mp.h"
#include "tl_harness.h"

/* ------------------------------------------------------------ messages */

static const char *decode(const lc_ctrl_msg_t *m, lc_ctrl_msg_t *out)
{
    uint8_t b[LC_CTRL_MSG_LEN];
    lc__ctrl_msg_encode(m, b);
    return lc__ctrl_msg_decode(b, sizeof(b), out);
}

static void test_ctrl_msg(void **s)
{
    lc_ctrl_msg_t out;
    uint8_t b[LC_CTRL_MSG_LEN];
    const lc_ctrl_msg_t good[] = {
        { .type = LC_CTRL_HEARTBEAT, .epoch = 3 },
        { .type = LC_CTRL_ABORT, .epoch = 3, .seq = 1ull << 40, .status = LC_ERR_TIMEOUT },
        { .type = LC_CTRL_ABORT, .epoch = 0, .seq = 1, .status = LC_ERR_INVALID_ARG },
        { .type = LC_CTRL_ABORT, .epoch = 0, .seq = 1, .status = LC_ERR_SYSTEM },
        { .type = LC_CTRL_ABORT, .epoch = 0, .seq = 1, .status = LC_ERR_PEER_LOST },
        { .type = LC_CTRL_ABORT, .epoch = 0, .seq = 1, .status = LC_ERR_REJECTED },
        { .type = LC_CTRL_GOODBYE, .epoch = 7, .seq = 12 },
        { .type = LC_CTRL_GOODBYE, .epoch = 7, .seq = 0 }, /* left before any collective */
        { .type = LC_CTRL_VOTE, .epoch = 2, .seq = 9, .status = 0 },
        { .type = LC_CTRL_VOTE, .epoch = 2, .seq = 9, .status = LC_ERR_PEER_LOST },
        { .type = LC_CTRL_ABORT, .epoch = 0, .seq = 1, .status = LC_ERR_REMOVED },
    };
    (void)s;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_null(decode(&good[i], &out));
        assert_int_equal(out.type, good[i].type);
        assert_int_equal(out.epoch, good[i].epoch);
        assert_true(out.seq == good[i].seq);
        assert_int_equal(out.status, good[i].status);
    }
    /* A status that is not an error code, in an abort. */
    const int32_t bad_status[] = {
        LC_OK,    LC_INPROGRESS, 7, LC_ERR_SYSTEM - 1, LC_ERR_PEER_LOST + 1, LC_ERR_REMOVED - 1,
        INT32_MIN
    };
    for (size_t i = 0; i < sizeof(bad_status) / sizeof(bad_status[0]); i++) {
        lc_ctrl_msg_t m = { .type = LC_CTRL_ABORT, .seq = 5, .status = bad_status[i] };
        assert_non_null(decode(&m, &out));
    }
    lc_ctrl_msg_t m = { .type = LC_CTRL_ABORT, .seq = 0, .status = LC_ERR_TIMEOUT };
    assert_non_null(decode(&m, &out)); /* collective 0 does not exist */
    m = (lc_ctrl_msg_t){ .type = LC_CTRL_HEARTBEAT, .seq = 1 };
    assert_non_null(decode(&m, &out));
    m = (lc_ctrl_msg_t){ .type = LC_CTRL_GOODBYE, .seq = 1, .status = LC_ERR_TIMEOUT };
    assert_non_null(decode(&m, &out));
    m = (lc_ctrl_msg_t){ .type = LC_CTRL_VOTE }; /* step 0 */
    assert_non_null(decode(&m, &out));
    m = (lc_ctrl_msg_t){ .type = LC_CTRL_VOTE, .seq = 3, .status = LC_INPROGRESS };
    assert_non_null(decode(&m, &out));
    m = (lc_ctrl_msg_t){ .type = 5 };
    assert_non_null(decode(&m, &out));
    m = (lc_ctrl_msg_t){ .type = 0 };
    assert_non_null(decode(&m, &out));
    /* Byte-level damage: version, reserved bytes, length. */
    m = (lc_ctrl_msg_t){ .type = LC_CTRL_HEARTBEAT };
    lc__ctrl_msg_encode(&m, b);
    assert_null(lc__ctrl_msg_decode(b, sizeof(b), &out));
    const size_t flip[] = { 0, 2, 3, 20, 23 };
    for (size_t i = 0; i < sizeof(flip) / sizeof(flip[0]); i++) {
        b[flip[i]] ^= 0x10;
        assert_non_null(lc__ctrl_msg_decode(b, sizeof(b), &out));
        b[flip[i]] ^= 0x10;
    }
    assert_non_null(lc__ctrl_msg_decode(b, sizeof(b) - 1, &out));
    assert_non_null(lc__ctrl_msg_decode(b, 0, &out));
}

/* ------------------------------------------------------------ over TCP */

typedef struct {
    int n;
    lc_ft_event_t ev[16];
    int lost, left; /* a PEER_LOST / PEER_LEFT event came */
} ft_log_t;

static void ft_log(void *arg, const lc_ft_event_t *ev)
{
    ft_log_t *l = arg;
    if (l->n < 16) l->ev[l->n++] = *ev;
    if (ev->type == LC_FT_EVENT_PEER_LOST) l->lost = 1;
    if (ev->type == LC_FT_EVENT_PEER_LEFT) l->left = 1;
}

typedef struct {
    tt_t t;
    ft_log_t log;
} ft_rank_t;

/* The transport with the control plane over it, its events logged. */
static int ft_up(ft_rank_t *r, int rank, int n)
{
    memset(r, 0, sizeof(*r));
    r->t.with_ft = 1;
    r->t.ft_cb = ft_log;
    r->t.ft_arg = &r->log;
    return tt_up(&r->t, rank, n);
}

static void ft_down(ft_rank_t *r)
{
    tt_down(&r->t);
}

/* Rank 0 sends raw control messages to rank 1. */
static void send_raw(ft_rank_t *r, const lc_ctrl_msg_t *m)
{
    uint8_t b[LC_CTRL_MSG_LEN];
    lc__ctrl_msg_encode(m, b);
    assert_int_equal(r->t.ops->ctrl_send(r->t.tl, 1, b, sizeof(b), 0), LC_OK);
}

static int notices_rank(int rank, int n, void *arg)
{
    ft_rank_t r;
    int bad = 0;
    (void)arg;
    uint8_t data[4096], got[4096];
    lc_tl_tag_t tag = tt_tag(9, 0, 3);
    tt_op_t op = { 0 };
    for (size_t i = 0; i < sizeof(data); i++) data[i] = (uint8_t)(i * 7 + 1);
    if (ft_up(&r, rank, n) != 0) return lc_mp_fail(rank, "up");
    if (rank == 0) {
        lc_ctrl_msg_t m = { .type = LC_CTRL_ABORT, .seq = 7, .status = LC_ERR_TIMEOUT };
        send_raw(&r, &m);
        m.epoch = 5; /* another view's: dropped */
        m.seq = 8;
        send_raw(&r, &m);
        /* Collective 9's message, then the goodbye after it, then leave:
         * what was sent is read before the end of the streams. */
        r.t.ops->send(r.t.tl, 1, &tag, data, sizeof(data), tt_complete, &op);
        if (tt_until(&r.t, &op.done, 20) != 0) return lc_mp_fail(rank, "send hangs");
        lc__ft_goodbye(r.t.ft, 9);
        ft_down(&r);
        return 0;
    }
    if (tt_until(&r.t, &r.log.left, 20) != 0) return lc_mp_fail(rank, "no goodbye");
    /* A receive for collective 9, posted after the goodbye: still served. */
    memset(got, 0, sizeof(got));
    if (r.t.ops->recv(r.t.tl, 0, &tag, got, sizeof(got), tt_complete, &op) != LC_OK ||
        tt_until(&r.t, &op.done, 20) != 0 || op.status != LC_OK ||
        memcmp(got, data, sizeof(data)) != 0)
        bad = lc_mp_fail(rank, "collective 9's message lost after the goodbye: %s",
                         lc_status_str(op.status));
    /* Then its streams end: a departure, not a loss. */
    if (tt_until_lost(&r.t, 0, 2) != 0) bad = lc_mp_fail(rank, "rank 0's streams did not end");
    if (!r.t.lost_leaving) bad = lc_mp_fail(rank, "the transport was not told rank 0 leaves");
    if (r.log.lost) bad = lc_mp_fail(rank, "a goodbye and a close reported as a loss");
    tt_op_t late = { 0 };
    if (r.t.ops->send(r.t.tl, 0, &tag, data, 1, tt_complete, &late) != LC_ERR_PEER_LOST)
        bad = lc_mp_fail(rank, "a send to a departed peer was taken");
    if (r.log.n < 2 || r.log.ev[0].type != LC_FT_EVENT_ABORT || r.log.ev[0].seq != 7 ||
        r.log.ev[0].status != LC_ERR_TIMEOUT || r.log.ev[0].peer != 0)
        bad = lc_mp_fail(rank, "the abort notice of collective 7 is not the first event");
    else if (r.log.ev[1].type != LC_FT_EVENT_PEER_LEFT || r.log.ev[1].seq != 9)
        bad = lc_mp_fail(rank, "the goodbye after collective 9 is not the second event "
                               "(an abort of another epoch got through?)");
    for (int i = 2; i < r.log.n; i++)
        if (r.log.ev[i].type != LC_FT_EVENT_PEER_LEFT || r.log.ev[i].seq != 9)
            bad = lc_mp_fail(rank, "event %d: type %d", i, r.log.ev[i].type);
    ft_down(&r);
    return bad;
}

static void test_notices(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(2, notices_rank, NULL, 30, NULL, NULL), 0);
}

static int bad_abort_rank(int rank, int n, void *arg)
{
    ft_rank_t r;
    int bad = 0;
    (void)arg;
    if (ft_up(&r, rank, n) != 0) return lc_mp_fail(rank, "up");
    if (rank == 0) {
        /* An abort claiming success: encoded by hand, decoded nowhere here. */
        lc_ctrl_msg_t m = { .type = LC_CTRL_ABORT, .seq = 3, .status = LC_OK };
        send_raw(&r, &m);
        /* Rank 1 must drop us: our connections get closed. */
        if (tt_until(&r.t, &r.log.lost, 20) != 0) bad = lc_mp_fail(rank, "rank 1 kept us");
    } else {
        if (tt_until(&r.t, &r.log.lost, 20) != 0) return lc_mp_fail(rank, "bad abort accepted");
        for (int i = 0; i < r.log.n; i++) {
            if (r.log.ev[i].type == LC_FT_EVENT_ABORT)
                bad = lc_mp_fail(rank, "an abort with status %d reached the communicator",
                                 r.log.ev[i].status);
            if (r.log.ev[i].type == LC_FT_EVENT_PEER_LOST && r.log.ev[i].status != LC_ERR_CORRUPT)
                bad = lc_mp_fail(rank, "lost with %s, not LC_ERR_CORRUPT",
                                 lc_status_str(r.log.ev[i].status));
        }
    }
    ft_down(&r);
    return bad;
}

static void test_bad_abort(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(2, bad_abort_rank, NULL, 30, NULL, NULL), 0);
}

/* LC_PEER_TIMEOUT_MS=600: both ranks quiet but alive for 2.4 s (4 timeouts);
 * then rank 0 stops its engine (no heartbeat, no byte) and rank 1 must
 * lose it within the timeout plus a margin for ticks and a busy machine. */
static int silence_rank(int rank, int n, void *arg)
{
    ft_rank_t r;
    int bad = 0, never = 0;
    (void)arg;
    if (ft_up(&r, rank, n) != 0) return lc_mp_fail(rank, "up");
    tt_until(&r.t, &never, 2.4);
    if (r.log.lost) bad = lc_mp_fail(rank, "a quiet live peer was taken for dead");
    if (rank == 0) {
        sleep(3); /* silent: the engine does not run */
    } else {
        double t0 = lc_mp_now();
        if (tt_until(&r.t, &r.log.lost, 10) != 0) return lc_mp_fail(rank, "silence not found");
        /* Silence counts from the last byte heard, which may be a quarter of
         * the timeout before rank 0 stopped. */
        double silent = (double)(lc__now_ns() - r.t.ops->last_heard(r.t.tl, 0)) / 1e9;
        double took = lc_mp_now() - t0;
        if (silent < 0.6 || silent > 1.5 || took > 1.8)
            bad = lc_mp_fail(rank,
                             "lost %.2f s after the last byte, %.2f s after it stopped "
                             "(timeout 0.6 s)",
                             silent, took);
    }
    ft_down(&r);
    return bad;
}

static void test_silence(void **s)
{
    static const char *const env[] = { "LC_PEER_TIMEOUT_MS=600", NULL };
    (void)s;
    assert_int_equal(lc_mp_run(2, silence_rank, NULL, 30, env, NULL), 0);
}

/* ------------------------------------------------------------ link rate probe */

/* The set-up's link probe (ft/probe.c), through real communicators. Each
 * rank listens on its own loopback address, as if on its own host
 * (127.0.0.2 up, so no connection looks local), and 2 ranks exercise the
 * one pair both ways. With bytes to send it measures a rate, the same on
 * every rank (on loopback the 16 MiB probe lasts well over 16 round
 * trips). With LC_LINK_PROBE_BYTES=0 on every rank, or on one rank only
 * ("off-one"), and with every rank on 127.0.0.1 ("one-host": no probe),
 * the set-up still completes, the rate is unknown (0) on every rank, and
 * collectives work afterwards. */
static int probe_rank(int rank, int n, void *arg)
{
    const char *mode = arg;
    int off = !strcmp(mode, "off-all") || (!strcmp(mode, "off-one") && rank == 1);
    char ip[32];
    lc_comm_t *comm;

    snprintf(ip, sizeof(ip), "127.0.0.%d", strcmp(mode, "one-host") ? rank + 2 : 1);
    setenv("LC_IFADDR", ip, 1);
    setenv("LC_LINK_PROBE_BYTES", off ? "0" : "16777216", 1);
    if (lc_comm_init(NULL, &comm) != LC_OK) return lc_mp_fail(rank, "%s: init", mode);
    double mbps[2] = { comm->link.mbps, -(double)comm->link.mbps };
    if (!strcmp(mode, "on") ? mbps[0] == 0 : mbps[0] != 0)
        return lc_mp_fail(rank, "%s: link rate %g Mbit/s", mode, mbps[0]);
    /* The same on every rank: max == -min(-x). */
    if (lc_allreduce(mbps, mbps, 2, LC_FLOAT64, LC_MAX, comm, NULL) != LC_OK)
        return lc_mp_fail(rank, "%s: allreduce after the probe", mode);
    if (mbps[0] != -mbps[1]) return lc_mp_fail(rank, "%s: the ranks differ", mode);
    lc_comm_destroy(comm);
    return 0;
}

static void test_link_probe(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(2, probe_rank, (void *)"on", 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(3, probe_rank, (void *)"on", 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(3, probe_rank, (void *)"one-host", 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(3, probe_rank, (void *)"off-all", 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(3, probe_rank, (void *)"off-one", 60, NULL, NULL), 0);
}

/* ------------------------------------------------------------ coordinator */

static int crd_connect(const char *addr)
{
    struct sockaddr_in a;
    int fd;
    if (lc__sock_parse_addr(addr, &a) != LC_OK) return -1;
    if (lc__sock_connect(&a, lc__now_ns() + 2000000000ull, &fd) != LC_OK) return -1;
    return fd;
}

/* Read one whole message (blocking, 2 s); 0 and its type, or -1 when the
 * coordinator closed the connection. */
static int crd_read(int fd, uint8_t *body, size_t cap, int *type)
{
    uint8_t h[LC_CLINK_HDR];
    uint64_t dl = lc__now_ns() + 2000000000ull;
    if (lc__sock_read_full(fd, h, sizeof(h), dl) != LC_OK) return -1;
    uint32_t len = lc__get_u32(h);
    if (len > cap || lc__sock_read_full(fd, body, len, dl) != LC_OK) return -1;
    *type = h[4];
    return (int)len;
}

static void crd_write(int fd, int type, const void *body, size_t len, uint32_t fake_len)
{
    uint8_t h[LC_CLINK_HDR];
    lc__put_u32(h, fake_len ? fake_len : (uint32_t)len);
    h[4] = (uint8_t)type;
    h[5] = LC_CLINK_VERSION;
    lc__put_u16(h + 6, 0);
    assert_int_equal(lc__sock_write_full(fd, h, sizeof(h), lc__now_ns() + 1000000000ull), LC_OK);
    if (len > 0)
        assert_int_equal(lc__sock_write_full(fd, body, len, lc__now_ns() + 1000000000ull), LC_OK);
}

/* Closed by the coordinator (EOF), not merely quiet. */
static int crd_closed(int fd)
{
    uint8_t b[256];
    int type;
    while (crd_read(fd, b, sizeof(b), &type) >= 0) {
    }
    return 1;
}

/* An authenticated rank r of size 3 (job key "k", job "j"); returns its fd. */
static int crd_auth(const char *addr, const char *key, uint32_t r, int *accepted)
{
    uint8_t ch[64], auth[LC_CM_AUTH_LEN], mac[32];
    int type, fd = crd_connect(addr);
    assert_true(fd >= 0);
    assert_int_equal(crd_read(fd, ch, sizeof(ch), &type), 16);
    assert_int_equal(type, LC_CM_CHALLENGE);
    lc__put_u32(auth, r);
    lc__put_u32(auth + 4, 3);
    lc__put_u64(auth + 8, lc__hash64("j", 1, 0));
    memset(auth + 16, 0x5a, 16);
    lc__clink_auth_mac((const uint8_t *)key, strlen(key), ch, r, 3, lc__hash64("j", 1, 0),
                       auth + 32);
    crd_write(fd, LC_CM_AUTH, auth, sizeof(auth), 0);
    *accepted = crd_read(fd, ch, sizeof(ch), &type) == 32 && type == LC_CM_ACCEPT;
    if (*accepted) {
        lc__clink_accept_mac((const uint8_t *)"k", 1, auth + 16, r, mac);
        assert_memory_equal(mac, ch, 32); /* it proves the key back */
    }
    return fd;
}

/* Strangers and garbage are closed; the coordinator keeps serving, and a
 * member's malformed message ends only that member's connection. */
static void test_coordinator_hostile(void **s)
{
    lc_coord_params_t cp = { .field_mask =
                                 LC_COORD_PARAM_FIELD_JOB_KEY | LC_COORD_PARAM_FIELD_JOB_ID,
                             .job_key = "k",
                             .job_id = "j" };
    lc_coord_t *c;
    char addr[64];
    uint8_t junk[64] = { 0 };
    int ok, fd;
    (void)s;
    assert_int_equal(lc_coord_create(&cp, &c), LC_OK);
    lc_coord_address(c, addr, sizeof(addr));
    /* The wrong key: no ACCEPT, closed. */
    fd = crd_auth(addr, "not the key", 0, &ok);
    assert_false(ok);
    assert_true(crd_closed(fd));
    close(fd);
    /* A header announcing more than the limit. */
    fd = crd_connect(addr);
    crd_write(fd, LC_CM_AUTH, junk, 8, LC_CLINK_MAX_BODY + 1);
    assert_true(crd_closed(fd));
    close(fd);
    /* Another version, and a message before the handshake. */
    fd = crd_connect(addr);
    uint8_t h[LC_CLINK_HDR] = { 0, 0, 0, 0, LC_CM_STATE, 9, 0, 0 };
    assert_int_equal(lc__sock_write_full(fd, h, sizeof(h), lc__now_ns() + 1000000000ull), LC_OK);
    assert_true(crd_closed(fd));
    close(fd);
    fd = crd_connect(addr);
    crd_write(fd, LC_CM_BEAT, junk, 4, 0);
    assert_true(crd_closed(fd));
    close(fd);
    /* A member whose STATE lists ranks out of order is dropped... */
    fd = crd_auth(addr, "k", 1, &ok);
    assert_true(ok);
    uint8_t st[24];
    lc__put_u32(st, 0);
    lc__put_u32(st + 4, 2000);
    lc__put_u32(st + 8, 3);
    lc__put_u32(st + 12, 2);
    lc__put_u32(st + 16, 1);
    lc__put_u32(st + 20, 0);
    crd_write(fd, LC_CM_STATE, st, sizeof(st), 0);
    assert_true(crd_closed(fd));
    close(fd);
    /* ... and a well-behaved one is still served. */
    fd = crd_auth(addr, "k", 1, &ok);
    assert_true(ok);
    close(fd);
    lc_coord_destroy(c);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctrl_msg),
        cmocka_unit_test(test_notices),
        cmocka_unit_test(test_bad_abort),
        cmocka_unit_test(test_silence),
        cmocka_unit_test(test_coordinator_hostile),
        cmocka_unit_test(test_link_probe),
    };
    return lc_mp_run_filtered("test_ft", tests, sizeof(tests) / sizeof(tests[0]),
                              argc > 1 ? argv[1] : NULL, NULL, NULL);
}
