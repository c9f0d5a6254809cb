/*
 * TCP transport tests: two (or more) forked ranks bring up the transport
 * through the TCP rendezvous and drive it from the test thread with
 * lc__progress_run_once (no progress thread), then
 *   - exchange framed messages in FIFO order, with and without CRC32C;
 *   - see a receive with other arguments fail with LC_ERR_MISMATCH;
 *   - write a garbage header / a payload with a wrong CRC32C straight into an
 *     authenticated data connection: the receiver fails the pending receive
 *     with LC_ERR_CORRUPT and reports the peer, and never trusts the frame;
 *   - control frames that break the rules (a length of 0 or over 64, data
 *     fields set, a data frame on the control connection or a control
 *     frame on a data one, a wrong CRC32C) make the receiver drop their
 *     sender with LC_ERR_CORRUPT;
 *   - control messages arrive whole and in order, and a heartbeat-style
 *     send behind queued ones is dropped (LC_TL_CTRL_IF_IDLE);
 *   - strangers at the rendezvous (garbage bytes, a silent connection, a
 *     HELLO with the wrong key) are turned away while the real job forms;
 *   - ranks on distinct addresses are not taken for one host;
 *   - LC_TCP_CONGESTION is set on every connection, and a name the kernel
 *     refuses, on any rank, stops the set-up of every rank.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/crc32c.h"
#include "core/progress.h"
#include "laconic.h"
#include "mp.h"
#include "transport/bootstrap.h"
#include "transport/tcp/tcp_frame.h"
#include "transport/tcp/tcp_priv.h"
#include "transport/transport.h"
#include "tl_harness.h"

/* ------------------------------------------------------------ FIFO frames */

static int fifo_rank(int rank, int n, void *arg)
{
    enum { LEN = 300000, MSGS = 6 };
    tt_t t = { 0 };
    tt_op_t ops[MSGS];
    uint8_t *buf[MSGS];
    (void)arg;
    if (tt_up(&t, rank, n) != 0) return lc_mp_fail(rank, "transport up");
    /* Both ranks listen on loopback: the set-up agrees they share a host. */
    lc_tl_stats_t ts;
    t.ops->stats(t.tl, &ts);
    if (ts.link_one_host != 1) return lc_mp_fail(rank, "one host not detected over loopback");
    memset(ops, 0, sizeof(ops));
    for (int k = 0; k < MSGS; k++) {
        lc_tl_tag_t tag = tt_tag(1, (uint32_t)k, 7);
        buf[k] = malloc(LEN);
        if (rank == 0) {
            for (int i = 0; i < LEN; i++) buf[k][i] = (uint8_t)(i * 31 + k);
            /* Odd messages are shorter than the receive: lengths must arrive. */
            t.ops->send(t.tl, 1, &tag, buf[k], k % 2 ? LEN / 3 : LEN, tt_complete, &ops[k]);
        } else {
            memset(buf[k], 0, LEN);
            t.ops->recv(t.tl, 0, &tag, buf[k], LEN, tt_complete, &ops[k]);
        }
    }
    int bad = 0;
    for (int k = 0; k < MSGS; k++) {
        if (tt_until(&t, &ops[k].done, 20) != 0) return lc_mp_fail(rank, "message %d hangs", k);
        if (ops[k].status != LC_OK)
            bad = lc_mp_fail(rank, "message %d: %s", k, lc_status_str(ops[k].status));
        size_t want = k % 2 ? LEN / 3 : LEN;
        if (ops[k].length != want)
            bad = lc_mp_fail(rank, "message %d: length %zu", k, ops[k].length);
        for (size_t i = 0; rank == 1 && i < want && !bad; i++)
            if (buf[k][i] != (uint8_t)(i * 31 + (size_t)k))
                bad = lc_mp_fail(rank, "message %d byte %zu", k, i);
    }
    /* A receive whose signature differs from the sender's: LC_ERR_MISMATCH. */
    tt_op_t m = { 0 };
    lc_tl_tag_t tag = tt_tag(2, 0, rank == 0 ? 1 : 2);
    if (rank == 0)
        t.ops->send(t.tl, 1, &tag, buf[0], 64, tt_complete, &m);
    else
        t.ops->recv(t.tl, 0, &tag, buf[0], 64, tt_complete, &m);
    if (tt_until(&t, &m.done, 20) != 0) return lc_mp_fail(rank, "mismatch hangs");
    if (rank == 1 && m.status != LC_ERR_MISMATCH)
        bad = lc_mp_fail(rank, "mismatched receive: %s", lc_status_str(m.status));
    for (int k = 0; k < MSGS; k++) free(buf[k]);
    /* Both sides done before either closes. */
    tt_op_t b = { 0 };
    tag = tt_tag(3, 0, 0);
    if (rank == 0)
        t.ops->recv(t.tl, 1, &tag, NULL, 0, tt_complete, &b);
    else
        t.ops->send(t.tl, 0, &tag, NULL, 0, tt_complete, &b);
    tt_until(&t, &b.done, 20);
    tt_down(&t);
    return bad;
}

static void test_fifo(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(2, fifo_rank, NULL, 60, NULL, NULL), 0);
}

static void test_fifo_crc(void **s)
{
    static const char *const env[] = { "LC_CHECKSUM=1", "LC_TCP_CONNS=3", NULL };
    (void)s;
    assert_int_equal(lc_mp_run(2, fifo_rank, NULL, 60, env, NULL), 0);
}

/* ------------------------------------------------------------ corruption */

typedef enum { CORRUPT_HEADER, CORRUPT_CRC } corrupt_t;

static int corrupt_rank(int rank, int n, void *arg)
{
    corrupt_t how = *(corrupt_t *)arg;
    tt_t t = { 0 };
    tt_op_t op = { 0 };
    uint8_t payload[256], hdr[LC_TCP_HDR_LEN];
    int bad = 0;

    if (tt_up(&t, rank, n) != 0) return lc_mp_fail(rank, "transport up");
    if (rank == 0) {
        /* Write straight into the authenticated data connection to rank 1. */
        lc_tl_tcp_t *tl = (lc_tl_tcp_t *)t.tl;
        int fd = tl->peers[1].conns[1].fd;
        memset(payload, 0xab, sizeof(payload));
        if (how == CORRUPT_HEADER) {
            for (size_t i = 0; i < sizeof(hdr); i++) hdr[i] = (uint8_t)(i * 37 + 1);
        } else {
            lc_tcp_frame_t f = { .type = LC_TCP_DATA,
                                 .flags = LC_TCP_FLAG_CRC,
                                 .seq = 1,
                                 .index = 0,
                                 .sig = 9,
                                 .length = sizeof(payload) };
            f.crc = lc__crc32c(0, payload, sizeof(payload)) ^ 1u; /* one bit off */
            lc__tcp_frame_encode(&f, hdr);
        }
        if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
            (how == CORRUPT_CRC && write(fd, payload, sizeof(payload)) != (ssize_t)sizeof(payload)))
            return lc_mp_fail(rank, "write");
        /* Rank 1 must drop us: our connections get closed. */
        if (tt_dropped_by(&t, 1, 20) != 0) bad = lc_mp_fail(rank, "rank 1 kept the connection");
    } else {
        lc_tl_tag_t tag = tt_tag(1, 0, 9);
        memset(payload, 0, sizeof(payload));
        t.ops->recv(t.tl, 0, &tag, payload, sizeof(payload), tt_complete, &op);
        if (tt_until(&t, &op.done, 20) != 0) return lc_mp_fail(rank, "corrupt frame: no error");
        if (op.status != LC_ERR_CORRUPT)
            bad = lc_mp_fail(rank, "corrupt frame gave %s", lc_status_str(op.status));
        if (t.lost_peer != 0) bad = lc_mp_fail(rank, "rank 0 not reported");
        if (how == CORRUPT_CRC && payload[0] == 0xab && op.status == LC_OK)
            bad = lc_mp_fail(rank, "bad payload delivered as good");
        /* Later operations with that peer fail at once. */
        if (t.ops->recv(t.tl, 0, &tag, payload, 1, tt_complete, &op) != LC_ERR_PEER_LOST)
            bad = lc_mp_fail(rank, "peer still usable after corruption");
    }
    tt_down(&t);
    return bad;
}

static void test_corrupt_header(void **s)
{
    corrupt_t how = CORRUPT_HEADER;
    (void)s;
    assert_int_equal(lc_mp_run(2, corrupt_rank, &how, 60, NULL, NULL), 0);
}

static void test_corrupt_crc(void **s)
{
    static const char *const env[] = { "LC_CHECKSUM=1", NULL };
    corrupt_t how = CORRUPT_CRC;
    (void)s;
    assert_int_equal(lc_mp_run(2, corrupt_rank, &how, 60, env, NULL), 0);
}

/* ------------------------------------------------------------ control frames */

/* Raw control-connection frames that break the rules; each must get its
 * sender dropped with LC_ERR_CORRUPT. */
typedef struct {
    const char *what;
    int conn;        /* connection written to */
    int type;        /* frame type */
    uint32_t length; /* header's length; payload bytes written: min(length, 64) */
    uint64_t seq;    /* a field a control frame leaves 0 */
    int bad_crc;     /* set the CRC flag with a wrong CRC32C */
} ctrl_case_t;

static const ctrl_case_t ctrl_cases[] = {
    { "empty control frame", 0, LC_TCP_CTRL, 0, 0, 0 },
    { "control frame over 64 bytes", 0, LC_TCP_CTRL, 65, 0, 0 },
    { "control frame with a sequence number", 0, LC_TCP_CTRL, 24, 5, 0 },
    { "data frame on the control connection", 0, LC_TCP_DATA, 24, 1, 0 },
    { "control frame on a data connection", 1, LC_TCP_CTRL, 24, 0, 0 },
    { "control frame with a wrong CRC32C", 0, LC_TCP_CTRL, 24, 0, 1 },
};

static int ctrl_bad_rank(int rank, int n, void *arg)
{
    const ctrl_case_t *c = arg;
    tt_t t = { 0 };
    uint8_t hdr[LC_TCP_HDR_LEN], payload[LC_TCP_CTRL_MAX];
    int bad = 0;

    if (tt_up(&t, rank, n) != 0) return lc_mp_fail(rank, "transport up");
    if (rank == 0) {
        int fd = ((lc_tl_tcp_t *)t.tl)->peers[1].conns[c->conn].fd;
        size_t plen = c->length < sizeof(payload) ? c->length : sizeof(payload);
        lc_tcp_frame_t f = { .type = (uint8_t)c->type, .seq = c->seq, .length = c->length };
        memset(payload, 0x5a, sizeof(payload));
        if (c->bad_crc) {
            f.flags = LC_TCP_FLAG_CRC;
            f.crc = lc__crc32c(0, payload, plen) ^ 1u;
        }
        lc__tcp_frame_encode(&f, hdr);
        if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
            (plen > 0 && write(fd, payload, plen) != (ssize_t)plen))
            return lc_mp_fail(rank, "write");
        /* Rank 1 must drop us: our connections get closed. */
        if (tt_dropped_by(&t, 1, 20) != 0) bad = lc_mp_fail(rank, "%s: kept", c->what);
    } else {
        if (tt_until_lost(&t, 0, 20) != 0)
            bad = lc_mp_fail(rank, "%s: rank 0 not dropped", c->what);
        else if (t.lost_status != LC_ERR_CORRUPT)
            bad = lc_mp_fail(rank, "%s: dropped with %s", c->what, lc_status_str(t.lost_status));
    }
    tt_down(&t);
    return bad;
}

static void test_ctrl_corrupt(void **s)
{
    (void)s;
    for (size_t i = 0; i < sizeof(ctrl_cases) / sizeof(ctrl_cases[0]); i++)
        assert_int_equal(lc_mp_run(2, ctrl_bad_rank, (void *)&ctrl_cases[i], 30, NULL, NULL), 0);
}

/* Control messages of 1, 24 and 64 bytes arrive whole and in order; sizes
 * outside 1..64 are refused; a send with LC_TL_CTRL_IF_IDLE behind one still
 * queued is dropped (LC_INPROGRESS) and never arrives. */
static int ctrl_rank(int rank, int n, void *arg)
{
    static const uint8_t want_first[5] = { 0x10, 0x11, 0x12, 0x20, 0x21 };
    static const size_t want_len[5] = { 1, 24, 64, 8, 8 };
    tt_t t = { 0 };
    uint8_t msg[LC_TCP_CTRL_MAX + 1];
    int bad = 0, never = 0;
    (void)arg;
    if (tt_up(&t, rank, n) != 0) return lc_mp_fail(rank, "transport up");
    if (rank == 0) {
        for (int k = 0; k < 3; k++) {
            memset(msg, want_first[k], sizeof(msg));
            if (t.ops->ctrl_send(t.tl, 1, msg, want_len[k], 0) != LC_OK)
                bad = lc_mp_fail(rank, "control message %d refused", k);
        }
        if (t.ops->ctrl_send(t.tl, 1, msg, 0, 0) != LC_ERR_INVALID_ARG ||
            t.ops->ctrl_send(t.tl, 1, msg, LC_TCP_CTRL_MAX + 1, 0) != LC_ERR_INVALID_ARG)
            bad = lc_mp_fail(rank, "a control message of 0 or 65 bytes taken");
        /* Hold the control connection's writes (as if inside its write loop)
         * so one message stays queued. */
        lc_tcp_conn_t *c0 = &((lc_tl_tcp_t *)t.tl)->peers[1].conns[0];
        c0->busy_tx = 1;
        memset(msg, 0x20, sizeof(msg));
        if (t.ops->ctrl_send(t.tl, 1, msg, 8, 0) != LC_OK) bad = lc_mp_fail(rank, "queue");
        memset(msg, 0x30, sizeof(msg));
        if (t.ops->ctrl_send(t.tl, 1, msg, 8, LC_TL_CTRL_IF_IDLE) != LC_INPROGRESS)
            bad = lc_mp_fail(rank, "an IF_IDLE send behind a queued one was not dropped");
        c0->busy_tx = 0;
        memset(msg, 0x21, sizeof(msg));
        if (t.ops->ctrl_send(t.tl, 1, msg, 8, 0) != LC_OK) bad = lc_mp_fail(rank, "flush");
        tt_until(&t, &never, 1.0); /* let rank 1 read before we close */
    } else {
        for (int i = 0; i < 2000 && t.nctrl < 5; i++) lc__progress_run_once(t.progress, 10);
        tt_until(&t, &never, 0.3); /* anything more would be the dropped one */
        if (t.nctrl != 5) bad = lc_mp_fail(rank, "%d control messages, not 5", t.nctrl);
        for (int k = 0; k < 5 && k < t.nctrl; k++)
            if (t.ctrl_len[k] != want_len[k] || t.ctrl_first[k] != want_first[k] ||
                t.ctrl_last[k] != want_first[k])
                bad = lc_mp_fail(rank, "control message %d: %zu bytes of 0x%02x", k, t.ctrl_len[k],
                                 t.ctrl_first[k]);
    }
    tt_down(&t);
    return bad;
}

static void test_ctrl(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(2, ctrl_rank, NULL, 30, NULL, NULL), 0);
}

/* ------------------------------------------------------------ strangers */

static int stranger_connect(void)
{
    const lc_config_t *cfg = lc__config_get();
    const char *colon = strrchr(cfg->coord, ':');
    struct sockaddr_in a = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (int i = 0; i < 200; i++) {
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) return fd;
        usleep(10000);
    }
    close(fd);
    return -1;
}

/* Ranks 0..2 form a job (LC_WORLD_SIZE=3); "rank" 3 is a stranger that
 * pesters the rendezvous first. The job must form and work regardless. */
static int stranger_rank(int rank, int n, void *arg)
{
    (void)arg;
    (void)n;
    if (rank == 3) {
        int fds[4];
        uint8_t junk[512];
        for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (uint8_t)(i * 13 + 5);
        fds[0] = stranger_connect(); /* garbage */
        fds[1] = stranger_connect(); /* connects and says nothing */
        fds[2] = stranger_connect(); /* a few bytes, then hangs up */
        fds[3] = stranger_connect(); /* a flood of garbage */
        if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || fds[3] < 0)
            return lc_mp_fail(rank, "connect");
        (void)!write(fds[0], junk, 64);
        (void)!write(fds[2], "LCON", 4);
        close(fds[2]);
        for (int i = 0; i < 50; i++)
            if (send(fds[3], junk, sizeof(junk), MSG_NOSIGNAL) < 0) break;
        sleep(3);
        for (int i = 0; i < 4; i++)
            if (i != 2) close(fds[i]);
        return 0;
    }
    if (rank == 0) usleep(100 * 1000); /* let the strangers in first */
    lc_comm_t *comm;
    lc_status_t st = lc_comm_init(NULL, &comm);
    if (st != LC_OK) return lc_mp_fail(rank, "init among strangers: %s", lc_status_str(st));
    int x = rank + 1;
    st = lc_allreduce(&x, &x, 1, LC_INT32, LC_SUM, comm, NULL);
    if (st != LC_OK || x != 6) return lc_mp_fail(rank, "allreduce: %s, %d", lc_status_str(st), x);
    lc_comm_destroy(comm);
    return 0;
}

static void test_strangers(void **s)
{
    static const char *const env[] = { "LC_WORLD_SIZE=3", "LC_JOB_KEY=" KEY, NULL };
    (void)s;
    assert_int_equal(lc_mp_run(4, stranger_rank, NULL, 60, env, NULL), 0);
}

/* ------------------------------------------------------------ hosts */

/* Each rank listens on its own loopback address, as if on its own host: the
 * set-up must not call that one host, and every rank must agree. 3 ranks:
 * outgoing connections are not bound, so every connection to rank 0
 * (127.0.0.1) starts from 127.0.0.1 and looks local; ranks 1 and 2
 * (127.0.0.2 and .3) are what shows the hosts apart. */
static int hosts_rank(int rank, int n, void *arg)
{
    char ip[32];
    tt_t t = { 0 };
    lc_tl_stats_t ts;
    (void)arg;
    snprintf(ip, sizeof(ip), "127.0.0.%d", rank + 1);
    setenv("LC_IFADDR", ip, 1);
    if (tt_up(&t, rank, n) != 0) return lc_mp_fail(rank, "transport up");
    t.ops->stats(t.tl, &ts);
    tt_down(&t);
    if (ts.link_one_host != 0) return lc_mp_fail(rank, "distinct addresses taken for one host");
    return 0;
}

static void test_hosts(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(3, hosts_rank, NULL, 60, NULL, NULL), 0);
}

/* ------------------------------------------------------------ congestion control */

/* LC_TCP_CONGESTION: a name the kernel lets us use ("reno" is built in and
 * always allowed) is set on every connection; a name it refuses, even on
 * one rank only (arg "bad-one": rank 1), stops the set-up of every rank
 * with LC_ERR_INVALID_ARG, within the test's time limit. */
static int congestion_rank(int rank, int n, void *arg)
{
    const char *mode = arg;
    tt_t t = { 0 };
    int bad = 0;

    if (!strcmp(mode, "reno")) {
        setenv("LC_TCP_CONGESTION", "reno", 1);
    } else if (!strcmp(mode, "bad-all") || rank == 1) {
        setenv("LC_TCP_CONGESTION", "no-such-cc", 1);
    } else {
        unsetenv("LC_TCP_CONGESTION");
    }
    int failed = tt_up(&t, rank, n);
    if (strcmp(mode, "reno") != 0) {
        if (!failed) {
            tt_down(&t);
            return lc_mp_fail(rank, "%s: set-up succeeded", mode);
        }
        if (t.up_status != LC_ERR_INVALID_ARG)
            return lc_mp_fail(rank, "%s: %s", mode, lc_status_str(t.up_status));
        return 0;
    }
    if (failed) return lc_mp_fail(rank, "transport up with reno");
    const lc_tl_tcp_t *tl = (const lc_tl_tcp_t *)t.tl;
    for (int i = 0; i <= tl->ndata; i++) {
        char got[32] = "";
        socklen_t len = sizeof(got);
        int fd = tl->peers[1 - rank].conns[i].fd;
        if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, got, &len) != 0 || strcmp(got, "reno"))
            bad = lc_mp_fail(rank, "connection %d uses '%s'", i, got);
    }
    tt_down(&t);
    return bad;
}

/* The system's default congestion control for a new socket ("" if unknown). */
static void default_congestion(char *name, socklen_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    name[0] = '\0';
    if (fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) name[0] = '\0';
    if (fd >= 0) close(fd);
}

static void test_congestion(void **s)
{
    char def[32];
    (void)s;
    default_congestion(def, sizeof(def));
    if (strcmp(def, "reno") == 0)
        printf("# test_congestion: reno is this system's default; its half proves nothing here\n");
    assert_int_equal(lc_mp_run(2, congestion_rank, (void *)"reno", 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(2, congestion_rank, (void *)"bad-all", 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(3, congestion_rank, (void *)"bad-one", 60, NULL, NULL), 0);
}

/* ------------------------------------------------------------ retransmission floor */

/* The system's floor: what a new socket gets (net.ipv4.tcp_rto_min_us). */
static int rto_system_floor;

/* LC_TCP_RTO_MIN_US (arg: the value set, NULL = unset, the 10 ms default)
 * reaches every connection; 0 leaves the system's floor. The kernel keeps
 * the floor in clock ticks, so it reads back rounded up to a tick (at least
 * 2 ticks: at most 20 ms at HZ=100). */
static int rto_rank(int rank, int n, void *arg)
{
    const char *val = arg;
    long want = val ? atol(val) : 10000;
    tt_t t = { 0 };
    int bad = 0;

    if (val)
        setenv("LC_TCP_RTO_MIN_US", val, 1);
    else
        unsetenv("LC_TCP_RTO_MIN_US");
    if (tt_up(&t, rank, n)) return lc_mp_fail(rank, "transport up");
    const lc_tl_tcp_t *tl = (const lc_tl_tcp_t *)t.tl;
    for (int i = 0; i <= tl->ndata; i++) {
        int got = 0;
        socklen_t len = sizeof(got);
        int fd = tl->peers[1 - rank].conns[i].fd;
        if (getsockopt(fd, IPPROTO_TCP, TCP_RTO_MIN_US, &got, &len) != 0)
            bad = lc_mp_fail(rank, "getsockopt TCP_RTO_MIN_US: %s", strerror(errno));
        else if (want == 0 ? got != rto_system_floor : got < want || got > want + 20000)
            bad = lc_mp_fail(rank, "connection %d: floor %d us, want %ld", i, got, want);
    }
    tt_down(&t);
    return bad;
}

static void test_rto_min(void **s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof(rto_system_floor);
    (void)s;
    assert_true(fd >= 0);
    int rc = getsockopt(fd, IPPROTO_TCP, TCP_RTO_MIN_US, &rto_system_floor, &len);
    close(fd);
    if (rc != 0) {
        printf("# test_rto_min: skipped: this kernel has no TCP_RTO_MIN_US (Linux < 6.15)\n");
        skip();
    }
    assert_int_equal(lc_mp_run(2, rto_rank, NULL, 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(2, rto_rank, (void *)"40000", 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(2, rto_rank, (void *)"0", 60, NULL, NULL), 0);
}

/* ------------------------------------------------------------ straggler */

/* A receiver that posts its receive late (a straggler still computing)
 * leaves the sender's message parked: the receiver stops reading, its
 * window closes, and the sender's kernel probes a zero window. Heartbeats
 * (the control plane runs, as in a communicator) still flow on the control
 * connection, so the peer is alive and the message must arrive once the
 * receive is posted, however late. */
static int straggler_rank(int rank, int n, void *arg)
{
    enum { LEN = 64 << 20 };
    const double late_s = 7.0; /* longer than any user timeout at the 2 s default */
    tt_t t = { .with_ft = 1 };
    tt_op_t op = { 0 };
    int never = 0, bad = 0;
    uint8_t *buf = malloc(LEN);
    lc_tl_tag_t tag = tt_tag(1, 0, 7);
    (void)arg;

    if (buf == NULL) return lc_mp_fail(rank, "malloc");
    /* The default peer timeout, and socket buffers far smaller than the
     * message, whatever the environment says: the send must wait. */
    setenv("LC_PEER_TIMEOUT_MS", "2000", 1);
    setenv("LC_TCP_BUFSIZE", "1048576", 1);
    if (tt_up(&t, rank, n)) return lc_mp_fail(rank, "transport up");
    if (rank == 0) {
        for (size_t i = 0; i < LEN; i++) buf[i] = (uint8_t)(i * 13);
        t.ops->send(t.tl, 1, &tag, buf, LEN, tt_complete, &op);
        if (tt_until(&t, &op.done, late_s - 2) == 0)
            bad = lc_mp_fail(rank, "the send finished before the receive was posted");
    } else {
        tt_until(&t, &never, late_s); /* computing: the engine runs, no receive posted */
        memset(buf, 0, LEN);
        t.ops->recv(t.tl, 0, &tag, buf, LEN, tt_complete, &op);
    }
    if (tt_until(&t, &op.done, late_s + 20) != 0) {
        bad = lc_mp_fail(rank, "message hangs");
    } else if (op.status != LC_OK) {
        bad = lc_mp_fail(rank, "late receive: %s", lc_status_str(op.status));
    } else {
        for (size_t i = 0; rank == 1 && i < LEN && !bad; i++)
            if (buf[i] != (uint8_t)(i * 13)) bad = lc_mp_fail(rank, "byte %zu", i);
    }
    if (t.lost_peer >= 0) bad = lc_mp_fail(rank, "peer %d reported lost", t.lost_peer);
    tt_down(&t);
    free(buf);
    return bad;
}

static void test_straggler(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(2, straggler_rank, NULL, 90, NULL, NULL), 0);
}

/* ------------------------------------------------------------ keepalive */

/* Keepalive (arg: LC_PEER_TIMEOUT_MS): an idle connection is probed every
 * quarter of the peer timeout (whole seconds, at least 1) and dropped after
 * 4 probes unanswered in a row; no TCP_USER_TIMEOUT (the system's default,
 * 0), which would end a live straggler's connection (test_straggler) and,
 * at the peer timeout, let one lost probe end it too. */
static int keepalive_rank(int rank, int n, void *arg)
{
    const char *t_ms = arg;
    const int ms = atoi(t_ms), want_intvl = ms >= 8000 ? ms / 4000 : 1;
    tt_t t = { 0 };
    int bad = 0;

    setenv("LC_PEER_TIMEOUT_MS", t_ms, 1);
    if (tt_up(&t, rank, n)) return lc_mp_fail(rank, "transport up");
    const lc_tl_tcp_t *tl = (const lc_tl_tcp_t *)t.tl;
    for (int i = 0; i <= tl->ndata; i++) {
        int fd = tl->peers[1 - rank].conns[i].fd, on = 0, idle = 0, intvl = 0, cnt = 0;
        unsigned int uto = 1;
        socklen_t l1 = sizeof(on), l2 = sizeof(idle), l3 = sizeof(intvl), l4 = sizeof(uto),
                  l5 = sizeof(cnt);
        if (getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &l1) != 0 ||
            getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &l2) != 0 ||
            getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, &l3) != 0 ||
            getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, &l4) != 0 ||
            getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, &l5) != 0)
            bad = lc_mp_fail(rank, "getsockopt: %s", strerror(errno));
        else if (!on || idle != want_intvl || intvl != want_intvl || cnt != 4 || uto != 0)
            bad = lc_mp_fail(rank,
                             "peer timeout %s ms, connection %d: keepalive %d idle %d s every "
                             "%d s, %d probes, user timeout %u ms",
                             t_ms, i, on, idle, intvl, cnt, uto);
    }
    tt_down(&t);
    return bad;
}

static void test_keepalive(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(2, keepalive_rank, (void *)"10000", 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(2, keepalive_rank, (void *)"2000", 60, NULL, NULL), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),           cmocka_unit_test(test_fifo_crc),
        cmocka_unit_test(test_corrupt_header), cmocka_unit_test(test_corrupt_crc),
        cmocka_unit_test(test_ctrl_corrupt),   cmocka_unit_test(test_ctrl),
        cmocka_unit_test(test_strangers),      cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_congestion),     cmocka_unit_test(test_rto_min),
        cmocka_unit_test(test_keepalive),      cmocka_unit_test(test_straggler),
    };
    return lc_mp_run_filtered("test_transport", tests, sizeof(tests) / sizeof(tests[0]),
                              argc > 1 ? argv[1] : NULL, NULL, NULL);
}
