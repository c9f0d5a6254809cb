/*
 * API-level tests: real ranks (forked processes) over real TCP sockets on
 * loopback, through include/laconic.h only (plus the f16/bf16 converters).
 *
 * - correctness of every collective for rank counts {1,2,3,4,5,8}, counts
 *   {0, 1, 7, 1023, 1Mi+3}, every datatype and operation, in place and out of
 *   place, every algorithm, with byte-identical results on every rank; and
 *   64 MiB (16 Mi floats) allreduces;
 * - a peer SIGKILLed or SIGSTOPped mid-collective: every survivor gets
 *   LC_ERR_PEER_LOST within 2 s;
 * - fault injection (LC_FAULT): a rank killed before a chosen send of a
 *   chosen collective, the collectives before it complete everywhere;
 * - ranks that disagree on count, datatype, operation, root or collective:
 *   every rank gets LC_ERR_MISMATCH, and the communicator still works after;
 * - bad arguments get LC_ERR_INVALID_ARG / LC_ERR_UNSUPPORTED, nothing runs;
 * - non-blocking calls make progress while the caller sleeps;
 * - unique-id initialisation; a rank with the wrong job key is refused;
 * - no file descriptor or thread outlives lc_comm_destroy.
 */
#include "laconic.h"
#include "api/comm.h"
#include "core/reduce.h"
#include "mp.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_RANKS 8
#define MAX_CASES 4096

typedef struct {
    int ncases;
    uint64_t hash[MAX_CASES][MAX_RANKS];
    double t_kill;
    lc_unique_id_t uid;
    int uid_ready;
    int fault_done[MAX_RANKS]; /* collectives each rank completed with LC_OK */
} shared_t;

static shared_t *g_sh;

/* ------------------------------------------------------------ values */

static void put(void *buf, lc_dtype_t dt, size_t i, double v)
{
    switch (dt) {
    case LC_FLOAT32: ((float *)buf)[i] = (float)v; break;
    case LC_FLOAT64: ((double *)buf)[i] = v; break;
    case LC_FLOAT16: ((uint16_t *)buf)[i] = lc__f32_to_f16((float)v); break;
    case LC_BFLOAT16: ((uint16_t *)buf)[i] = lc__f32_to_bf16((float)v); break;
    case LC_INT32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case LC_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
    case LC_UINT8: ((uint8_t *)buf)[i] = (uint8_t)(unsigned)v; break;
    default: break;
    }
}

static double get(const void *buf, lc_dtype_t dt, size_t i)
{
    switch (dt) {
    case LC_FLOAT32: return ((const float *)buf)[i];
    case LC_FLOAT64: return ((const double *)buf)[i];
    case LC_FLOAT16: return lc__f16_to_f32(((const uint16_t *)buf)[i]);
    case LC_BFLOAT16: return lc__bf16_to_f32(((const uint16_t *)buf)[i]);
    case LC_INT32: return ((const int32_t *)buf)[i];
    case LC_INT64: return (double)((const int64_t *)buf)[i];
    case LC_UINT8: return ((const uint8_t *)buf)[i];
    default: return 0;
    }
}

/* Input of rank r at element i: small integers, exact in every datatype. */
static double val(lc_op_t op, int r, size_t i)
{
    if (op == LC_PROD) return 1 + (double)((i + (size_t)r) % 2);
    return (double)((i * 7 + (size_t)r * 3) % 5) + 1;
}

static int is_float(lc_dtype_t dt)
{
    return dt == LC_FLOAT32 || dt == LC_FLOAT64 || dt == LC_FLOAT16 || dt == LC_BFLOAT16;
}

/* Expected reduction of element i over n ranks. */
static double expect(lc_op_t op, lc_dtype_t dt, int n, size_t i)
{
    double acc = val(op, 0, i);
    for (int r = 1; r < n; r++) {
        double v = val(op, r, i);
        switch (op) {
        case LC_SUM:
        case LC_AVG: acc += v; break;
        case LC_MAX: acc = v > acc ? v : acc; break;
        case LC_MIN: acc = v < acc ? v : acc; break;
        case LC_PROD: acc *= v; break;
        default: break;
        }
    }
    if (dt == LC_UINT8 && acc >= 256) acc = (double)((unsigned long long)acc % 256);
    if (op == LC_AVG) acc = is_float(dt) ? acc / n : (double)((long long)acc / n);
    return acc;
}

static int close_enough(double got, double want, lc_dtype_t dt)
{
    double tol = 0;
    if (dt == LC_FLOAT16 || dt == LC_BFLOAT16) tol = 1e-2;
    if (dt == LC_FLOAT32) tol = 1e-6;
    if (dt == LC_FLOAT64) tol = 1e-12;
    double d = got - want;
    if (d < 0) d = -d;
    return d <= tol * (want < 0 ? -want : want) || got == want;
}

/* ------------------------------------------------------------ cases */

typedef struct {
    int coll; /* 0 allreduce, 1 broadcast, 2 allgather, 3 reduce_scatter */
    size_t count;
    lc_dtype_t dt;
    lc_op_t op;
    int inplace;
    lc_algo_t algo;
    int root;
} tcase_t;

static const size_t k_counts[] = { 0, 1, 7, 1023, (1u << 20) + 3 };
#define BIG_COUNT ((size_t)16 << 20) /* 64 MiB of floats */

static int build_cases(int n, tcase_t *cs, int big)
{
    int k = 0;
    static const lc_algo_t ar_algos[] = { LC_ALGO_AUTO, LC_ALGO_RING, LC_ALGO_TREE,
                                          LC_ALGO_RECDBL };
    static const lc_algo_t bc_algos[] = { LC_ALGO_AUTO, LC_ALGO_CHAIN, LC_ALGO_TREE };

    for (size_t ci = 0; ci < sizeof(k_counts) / sizeof(k_counts[0]); ci++) {
        size_t count = k_counts[ci];
        int large = count > 4096;
        for (int dt = 0; dt < LC_DTYPE_COUNT; dt++) {
            for (int op = 0; op < LC_OP_COUNT; op++) {
                for (int ip = 0; ip < 2; ip++) {
                    for (int a = 0; a < 4; a++) {
                        /* Forced algorithms on large counts: f32 sum only. */
                        if (large && a > 0 && !(dt == LC_FLOAT32 && op == LC_SUM)) continue;
                        cs[k++] = (tcase_t){ 0, count, dt, op, ip, ar_algos[a], 0 };
                    }
                    if (op == LC_SUM || op == LC_MAX || !large)
                        cs[k++] = (tcase_t){ 3, count, dt, op, ip, LC_ALGO_AUTO, 0 };
                }
            }
            for (int ip = 0; ip < 2; ip++)
                cs[k++] = (tcase_t){ 2, count, dt, LC_SUM, ip, LC_ALGO_AUTO, 0 };
            for (int a = 0; a < 3; a++)
                cs[k++] = (tcase_t){ 1, count, dt, LC_SUM, 1, bc_algos[a], (int)(count % n) };
        }
    }
    if (big) {
        cs[k++] = (tcase_t){ 0, BIG_COUNT, LC_FLOAT32, LC_SUM, 0, LC_ALGO_AUTO, 0 };
        cs[k++] = (tcase_t){ 0, BIG_COUNT, LC_FLOAT32, LC_SUM, 1, LC_ALGO_AUTO, 0 };
        cs[k++] = (tcase_t){ 0, BIG_COUNT, LC_FLOAT32, LC_AVG, 0, LC_ALGO_TREE, 0 };
    }
    return k;
}

static int run_case(lc_comm_t *comm, int rank, int n, const tcase_t *c, char *sbuf, char *rbuf,
                    uint64_t *hash_p)
{
    size_t es = lc_dtype_size(c->dt), cnt = c->count;
    lc_op_params_t p = { .field_mask = LC_OP_PARAM_FIELD_ALGO, .algo = c->algo };
    lc_status_t st = LC_OK;
    size_t nout = 0;
    void *out = rbuf;

    memset(rbuf, 0xa5, cnt * es * (size_t)n + 16);
    switch (c->coll) {
    case 0:
        for (size_t i = 0; i < cnt; i++)
            put(c->inplace ? rbuf : sbuf, c->dt, i, val(c->op, rank, i));
        st = lc_allreduce(c->inplace ? rbuf : sbuf, rbuf, cnt, c->dt, c->op, comm, &p);
        nout = cnt;
        break;
    case 1:
        if (rank == c->root)
            for (size_t i = 0; i < cnt; i++) put(rbuf, c->dt, i, val(LC_SUM, rank, i));
        st = lc_broadcast(rbuf, cnt, c->dt, c->root, comm, &p);
        nout = cnt;
        break;
    case 2: {
        char *mine = c->inplace ? rbuf + (size_t)rank * cnt * es : sbuf;
        for (size_t i = 0; i < cnt; i++) put(mine, c->dt, i, val(LC_SUM, rank, i));
        st = lc_allgather(mine, rbuf, cnt, c->dt, comm, NULL);
        nout = cnt * (size_t)n;
        break;
    }
    case 3: {
        char *in = c->inplace ? rbuf : sbuf;
        for (size_t i = 0; i < cnt * (size_t)n; i++) put(in, c->dt, i, val(c->op, rank, i));
        out = c->inplace ? rbuf + (size_t)rank * cnt * es : rbuf;
        st = lc_reduce_scatter(in, out, cnt, c->dt, c->op, comm, NULL);
        nout = cnt;
        break;
    }
    }
    if (st != LC_OK)
        return lc_mp_fail(rank, "coll %d count %zu dtype %d op %d inplace %d algo %s: %s", c->coll,
                          cnt, c->dt, c->op, c->inplace, lc_algo_str(c->algo), lc_status_str(st));
    for (size_t i = 0; i < nout; i++) {
        double want, got = get(out, c->dt, i);
        switch (c->coll) {
        case 0: want = expect(c->op, c->dt, n, i); break;
        case 1: want = val(LC_SUM, c->root, i); break;
        case 2: want = val(LC_SUM, (int)(i / cnt), i % cnt); break;
        default: want = expect(c->op, c->dt, n, (size_t)rank * cnt + i); break;
        }
        if (!close_enough(got, want, c->dt))
            return lc_mp_fail(rank,
                              "coll %d count %zu dtype %d op %d inplace %d algo %s: element %zu "
                              "is %g, expected %g",
                              c->coll, cnt, c->dt, c->op, c->inplace, lc_algo_str(c->algo), i, got,
                              want);
    }
    /* Reduce-scatter gives each rank a different block: nothing to compare. */
    *hash_p = c->coll == 3 ? 0 : lc_mp_hash(out, nout * es);
    return 0;
}

typedef struct {
    int big;
    int hosts; /* each rank on its own loopback address: the ranks look like separate hosts */
} corr_arg_t;

static int correctness_rank(int rank, int n, void *arg)
{
    corr_arg_t *a = arg;
    static tcase_t cs[MAX_CASES];
    int ncases = build_cases(n, cs, a->big);
    size_t maxb = ((a->big ? BIG_COUNT : ((size_t)1 << 20) + 3)) * 8 * (size_t)n + 64;
    int fds0 = lc_mp_count_fds(), thr0 = lc_mp_count_threads();
    char *sbuf = malloc(maxb), *rbuf = malloc(maxb);
    lc_comm_t *comm;
    lc_status_t st;
    int bad = 0;

    if (sbuf == NULL || rbuf == NULL) return lc_mp_fail(rank, "out of memory");
    if (a->hosts) {
        /* 127.0.0.(rank + 1): the set-up finds the ranks on different addresses, so
         * the algorithms take their between-hosts shape (the tree's lag), and small
         * chunks give the 1M-element cases many of them. */
        char ip[32];
        snprintf(ip, sizeof(ip), "127.0.0.%d", rank + 1);
        setenv("LC_IFADDR", ip, 1);
        setenv("LC_CHUNK_BYTES", "64K", 1);
    }
    st = lc_comm_init(NULL, &comm);
    if (st != LC_OK) return lc_mp_fail(rank, "lc_comm_init: %s", lc_status_str(st));
    for (int k = 0; k < ncases && !bad; k++) {
        if (cs[k].count == BIG_COUNT && n > 4) continue; /* 64 MiB x 8 ranks: too slow here */
        bad = run_case(comm, rank, n, &cs[k], sbuf, rbuf, &g_sh->hash[k][rank]);
    }
    if (!bad && lc_barrier(comm) != LC_OK) bad = lc_mp_fail(rank, "final barrier failed");
    lc_comm_destroy(comm);
    free(sbuf);
    free(rbuf);
    if (rank == 0) g_sh->ncases = ncases;
    /* Rank 0's inherited rendezvous socket (LC_COORD_FD) is the server's to close. */
    if (getenv("LC_COORD_FD") != NULL) fds0--;
    if (lc_mp_count_fds() != fds0)
        bad = lc_mp_fail(rank, "fds leaked: %d before, %d after", fds0, lc_mp_count_fds());
    if (lc_mp_count_threads() != thr0)
        bad = lc_mp_fail(rank, "threads leaked: %d before, %d after", thr0, lc_mp_count_threads());
    return bad;
}

static void check_correctness_on(int n, int big, int hosts, int timeout_s)
{
    corr_arg_t a = { big, hosts };
    static tcase_t cs[MAX_CASES];
    memset(g_sh, 0, sizeof(*g_sh));
    assert_int_equal(lc_mp_run(n, correctness_rank, &a, timeout_s, NULL, NULL), 0);
    build_cases(n, cs, big);
    for (int k = 0; k < g_sh->ncases; k++) {
        for (int r = 1; r < n; r++) {
            if (g_sh->hash[k][r] != g_sh->hash[k][0])
                fail_msg("coll %d count %zu dtype %d op %d inplace %d algo %s: rank %d's result "
                         "differs from rank 0's",
                         cs[k].coll, cs[k].count, cs[k].dt, cs[k].op, cs[k].inplace,
                         lc_algo_str(cs[k].algo), r);
        }
    }
}

static void check_correctness(int n, int big, int timeout_s)
{
    check_correctness_on(n, big, 0, timeout_s);
}

/* As if on 3, 4 and 5 hosts (distinct addresses), every algorithm on 64 KiB chunks. */
static void test_correct_hosts(void **s)
{
    (void)s;
    for (int n = 3; n <= 5; n++) check_correctness_on(n, 0, 1, 300);
}

static void test_correct_1(void **s)
{
    (void)s;
    check_correctness(1, 1, 120);
}
static void test_correct_2(void **s)
{
    (void)s;
    check_correctness(2, 1, 300);
}
static void test_correct_3(void **s)
{
    (void)s;
    check_correctness(3, 0, 300);
}
static void test_correct_4(void **s)
{
    (void)s;
    check_correctness(4, 1, 400);
}
static void test_correct_5(void **s)
{
    (void)s;
    check_correctness(5, 0, 300);
}
static void test_correct_8(void **s)
{
    (void)s;
    check_correctness(8, 0, 400);
}

/* ------------------------------------------------------------ failures */

/* Rank `victim` dies (SIGKILL) or freezes (SIGSTOP) during a large allreduce;
 * every survivor's call must fail with LC_ERR_PEER_LOST within 2 s. */
typedef struct {
    int victim;
    int sig;
} kill_arg_t;

static int kill_rank(int rank, int n, void *arg)
{
    kill_arg_t *k = arg;
    size_t count = (size_t)4 << 20;
    float *buf = calloc(count, sizeof(float));
    lc_comm_t *comm;
    lc_status_t st;

    (void)n;
    if (buf == NULL) return 1;
    st = lc_comm_init(NULL, &comm);
    if (st != LC_OK) return lc_mp_fail(rank, "init: %s", lc_status_str(st));
    if (lc_allreduce(buf, buf, count, LC_FLOAT32, LC_SUM, comm, NULL) != LC_OK)
        return lc_mp_fail(rank, "warm-up allreduce failed");
    if (rank == k->victim) {
        lc_request_t *req;
        lc_iallreduce(buf, buf, count, LC_FLOAT32, LC_SUM, comm, NULL, &req);
        usleep(20 * 1000);
        g_sh->t_kill = lc_mp_now();
        raise(k->sig);
        pause(); /* SIGSTOP: the parent kills us after the test */
        return 0;
    }
    for (int it = 0; it < 1000; it++) {
        double t0 = lc_mp_now();
        st = lc_allreduce(buf, buf, count, LC_FLOAT32, LC_SUM, comm, NULL);
        if (st == LC_OK) continue;
        double t1 = lc_mp_now();
        double after = t1 - (g_sh->t_kill > 0 ? g_sh->t_kill : t0);
        if (st != LC_ERR_PEER_LOST)
            return lc_mp_fail(rank, "expected LC_ERR_PEER_LOST, got %s", lc_status_str(st));
        if (after > 2.0) return lc_mp_fail(rank, "PEER_LOST came %.2f s after the kill", after);
        /* The communicator stays broken: the next call fails at once. */
        t0 = lc_mp_now();
        st = lc_allreduce(buf, buf, 16, LC_FLOAT32, LC_SUM, comm, NULL);
        if (st != LC_ERR_PEER_LOST || lc_mp_now() - t0 > 0.5)
            return lc_mp_fail(rank, "call after a loss: %s", lc_status_str(st));
        lc_comm_destroy(comm);
        free(buf);
        return 0;
    }
    return lc_mp_fail(rank, "no failure seen");
}

static void check_kill(int sig, int n, int victim)
{
    kill_arg_t k = { victim, sig };
    lc_mp_result_t res;
    memset(g_sh, 0, sizeof(*g_sh));
    /* For SIGSTOP the frozen rank is found by the heartbeat timeout. */
    static const char *const env[] = { "LC_PEER_TIMEOUT_MS=1000", NULL };
    lc_mp_run(n, kill_rank, &k, sig == SIGSTOP ? 10 : 60, env, &res);
    assert_false(res.timed_out && sig == SIGKILL);
    for (int r = 0; r < n; r++) {
        if (r == victim) continue;
        if (res.exit_code[r] != 0) fail_msg("survivor %d exited with %d", r, res.exit_code[r]);
    }
}

/* LC_FAULT=kill:2:3:1 on 4 ranks: rank 2 dies before its second send of
 * collective 3 (so after its first went out). Collectives 1 and 2 complete
 * on every rank; on the survivors collective 3 fails with LC_ERR_PEER_LOST
 * and so does the next, at once; rank 2 never returns from 3. */
static int fault_rank(int rank, int n, void *arg)
{
    enum { COUNT = 1 << 18 };
    float *buf = calloc(COUNT, sizeof(float));
    lc_comm_t *comm;
    lc_status_t st;

    (void)n;
    (void)arg;
    if (buf == NULL) return 1;
    st = lc_comm_init(NULL, &comm);
    if (st != LC_OK) return lc_mp_fail(rank, "init: %s", lc_status_str(st));
    for (int c = 1; c <= 4; c++) {
        st = lc_allreduce(buf, buf, COUNT, LC_FLOAT32, LC_SUM, comm, NULL);
        if (st == LC_OK) {
            g_sh->fault_done[rank] = c;
            if (c >= 3) return lc_mp_fail(rank, "collective %d succeeded without rank 2", c);
            continue;
        }
        if (c < 3) return lc_mp_fail(rank, "collective %d: %s", c, lc_status_str(st));
        if (st != LC_ERR_PEER_LOST)
            return lc_mp_fail(rank, "collective %d: %s, not LC_ERR_PEER_LOST", c,
                              lc_status_str(st));
    }
    lc_comm_destroy(comm);
    free(buf);
    return 0;
}

static void test_fault_inject(void **s)
{
    static const char *const env[] = { "LC_FAULT=kill:2:3:1", "LC_ALGO=ring", NULL };
    lc_mp_result_t res;
    (void)s;
    memset(g_sh, 0, sizeof(*g_sh));
    lc_mp_run(4, fault_rank, NULL, 60, env, &res);
    assert_false(res.timed_out);
    for (int r = 0; r < 4; r++) {
        if (r == 2) continue;
        if (res.exit_code[r] != 0) fail_msg("survivor %d exited with %d", r, res.exit_code[r]);
    }
    /* The victim finished collectives 1 and 2, and died in 3. */
    if (g_sh->fault_done[2] != 2) fail_msg("rank 2 completed %d collectives", g_sh->fault_done[2]);
}

static void test_sigkill_4(void **s)
{
    (void)s;
    check_kill(SIGKILL, 4, 2);
}
static void test_sigkill_3_rank0(void **s)
{
    (void)s;
    check_kill(SIGKILL, 3, 0);
}
static void test_sigstop_4(void **s)
{
    (void)s;
    check_kill(SIGSTOP, 4, 1);
}

/* Each rank's view of one collective in a mismatch scenario. */
static int mismatch_rank(int rank, int n, void *arg)
{
    int scenario = *(int *)arg;
    float buf[64] = { 0 };
    double dbuf[64] = { 0 };
    lc_comm_t *comm;
    lc_status_t st;
    int odd = (rank == n - 1);

    if (lc_comm_init(NULL, &comm) != LC_OK) return 1;
    switch (scenario) {
    case 0: /* count */
        st = lc_allreduce(buf, buf, odd ? 17 : 16, LC_FLOAT32, LC_SUM, comm, NULL);
        break;
    case 1: /* dtype */
        st = odd ? lc_allreduce(dbuf, dbuf, 16, LC_FLOAT64, LC_SUM, comm, NULL)
                 : lc_allreduce(buf, buf, 16, LC_FLOAT32, LC_SUM, comm, NULL);
        break;
    case 2: /* op */
        st = lc_allreduce(buf, buf, 16, LC_FLOAT32, odd ? LC_MAX : LC_SUM, comm, NULL);
        break;
    case 3: /* root */
        for (int i = 0; i < 16; i++) buf[i] = rank == 0 ? 7.0f : -1.0f;
        st = lc_broadcast(buf, 16, LC_FLOAT32, odd ? 1 : 0, comm, NULL);
        /* Ranks whose part of the broadcast never touches the rank with the
         * other root may finish it (with the right data); all others fail. */
        if (!odd && st == LC_OK) {
            if (buf[15] != 7.0f) return lc_mp_fail(rank, "broadcast succeeded with wrong data");
            st = LC_ERR_MISMATCH;
        }
        break;
    case 4: /* collective */
        st = odd ? lc_broadcast(buf, 16, LC_FLOAT32, 0, comm, NULL)
                 : lc_allreduce(buf, buf, 16, LC_FLOAT32, LC_SUM, comm, NULL);
        break;
    case 5: { /* pipeline chunk: 16 against 32 elements */
        lc_op_params_t p = { .field_mask = LC_OP_PARAM_FIELD_CHUNK_BYTES,
                             .chunk_bytes = odd ? 128 : 64 };
        st = lc_allreduce(buf, buf, 64, LC_FLOAT32, LC_SUM, comm, &p);
        break;
    }
    default: /* count 0 against count 64, large enough to take the ring */
        st = lc_allreduce(buf, buf, odd ? 0 : 64, LC_FLOAT32, LC_SUM, comm, NULL);
        break;
    }
    if (st != LC_ERR_MISMATCH)
        return lc_mp_fail(rank, "scenario %d: expected LC_ERR_MISMATCH, got %s", scenario,
                          lc_status_str(st));
    /* The communicator is still usable. */
    for (int i = 0; i < 64; i++) buf[i] = (float)rank;
    st = lc_allreduce(buf, buf, 64, LC_FLOAT32, LC_SUM, comm, NULL);
    if (st != LC_OK || buf[63] != (float)(n * (n - 1) / 2))
        return lc_mp_fail(rank, "scenario %d: allreduce after mismatch: %s, %g", scenario,
                          lc_status_str(st), buf[63]);
    lc_comm_destroy(comm);
    return 0;
}

static void test_mismatch(void **s)
{
    (void)s;
    for (int sc = 0; sc < 7; sc++) {
        for (int n = 2; n <= 4; n += 2) {
            memset(g_sh, 0, sizeof(*g_sh));
            if (lc_mp_run(n, mismatch_rank, &sc, 60, NULL, NULL) != 0)
                fail_msg("mismatch scenario %d with %d ranks failed", sc, n);
        }
    }
}

/* ------------------------------------------------------------ bad input */

static int bad_args_rank(int rank, int n, void *arg)
{
    float buf[8] = { 0 };
    lc_comm_t *comm;
    lc_request_t *req = NULL;
    lc_op_params_t chain = { .field_mask = LC_OP_PARAM_FIELD_ALGO, .algo = LC_ALGO_CHAIN };
    lc_op_params_t junk = { .field_mask = LC_OP_PARAM_FIELD_ALGO, .algo = (lc_algo_t)77 };
    int bad = 0;

    (void)arg;
    if (lc_comm_init(NULL, &comm) != LC_OK) return 1;
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        lc_status_t got_ = (call);                                                                 \
        if (got_ != (want)) bad = lc_mp_fail(rank, "%s: got %s", #call, lc_status_str(got_));      \
    } while (0)
    EXPECT(lc_allreduce(NULL, buf, 8, LC_FLOAT32, LC_SUM, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_allreduce(buf, NULL, 8, LC_FLOAT32, LC_SUM, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_allreduce(buf, buf, SIZE_MAX / 2, LC_FLOAT32, LC_SUM, comm, NULL),
           LC_ERR_INVALID_ARG);
    EXPECT(lc_allreduce(buf, buf, 8, (lc_dtype_t)99, LC_SUM, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_allreduce(buf, buf, 8, (lc_dtype_t)-1, LC_SUM, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_allreduce(buf, buf, 8, LC_FLOAT32, (lc_op_t)42, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_allreduce(buf, buf, 8, LC_FLOAT32, LC_SUM, NULL, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_allreduce(buf, buf, 8, LC_FLOAT32, LC_SUM, comm, &junk), LC_ERR_INVALID_ARG);
    EXPECT(lc_allreduce(buf, buf, 8, LC_FLOAT32, LC_SUM, comm, &chain), LC_ERR_UNSUPPORTED);
    EXPECT(lc_iallreduce(buf, buf, 8, LC_FLOAT32, LC_SUM, comm, NULL, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_broadcast(buf, 8, LC_FLOAT32, n, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_broadcast(buf, 8, LC_FLOAT32, -1, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_broadcast(NULL, 8, LC_FLOAT32, 0, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_allgather(buf, NULL, 2, LC_FLOAT32, comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_reduce_scatter(buf, buf, SIZE_MAX / 4, LC_FLOAT32, LC_SUM, comm, NULL),
           LC_ERR_INVALID_ARG);
    EXPECT(lc_ibarrier(comm, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_wait(NULL, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_test(NULL, NULL), LC_ERR_INVALID_ARG);
    EXPECT(lc_comm_rank(NULL, NULL), LC_ERR_INVALID_ARG);
    /* Nothing was queued by the failed calls: a real collective still lines up. */
    EXPECT(lc_iallreduce(buf, buf, 8, LC_FLOAT32, LC_SUM, comm, NULL, &req), LC_OK);
    EXPECT(lc_wait(req, NULL), LC_OK);
    lc_request_free(req);
#undef EXPECT
    lc_comm_destroy(comm);
    return bad;
}

static void test_bad_args(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(1, bad_args_rank, NULL, 60, NULL, NULL), 0);
    assert_int_equal(lc_mp_run(3, bad_args_rank, NULL, 60, NULL, NULL), 0);
}

static int bad_init_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm = NULL;
    lc_comm_params_t p = { .field_mask = LC_COMM_PARAM_FIELD_RANK | LC_COMM_PARAM_FIELD_SIZE,
                           .rank = 5,
                           .size = 2 };
    (void)n;
    (void)arg;
    if (lc_comm_init(&p, &comm) != LC_ERR_INVALID_ARG || comm != NULL)
        return lc_mp_fail(rank, "rank >= size accepted");
    p.rank = 0;
    p.size = 0;
    if (lc_comm_init(&p, &comm) != LC_ERR_INVALID_ARG) return lc_mp_fail(rank, "size 0 accepted");
    if (lc_comm_init(NULL, NULL) != LC_ERR_INVALID_ARG) return lc_mp_fail(rank, "NULL comm_p");
    p.field_mask |= LC_COMM_PARAM_FIELD_COORD;
    p.rank = 1;
    p.size = 2;
    p.coord = NULL;
    if (lc_comm_init(&p, &comm) != LC_ERR_INVALID_ARG)
        return lc_mp_fail(rank, "missing coordinator address accepted");
    p.coord = "no-port-here";
    if (lc_comm_init(&p, &comm) != LC_ERR_INVALID_ARG)
        return lc_mp_fail(rank, "coordinator address without a port accepted");
    p.coord = "127.0.0.1:99999";
    if (lc_comm_init(&p, &comm) != LC_ERR_INVALID_ARG)
        return lc_mp_fail(rank, "port 99999 accepted");
    return 0;
}

static void test_bad_init(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(1, bad_init_rank, NULL, 30, NULL, NULL), 0);
}

/* A rank whose job key differs is refused; the others fail in bounded time. */
static int wrong_key_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm;
    lc_status_t st;
    (void)arg;
    if (rank == n - 1) setenv("LC_JOB_KEY", "not-the-key", 1);
    st = lc_comm_init(NULL, &comm);
    if (st == LC_OK) return lc_mp_fail(rank, "joined a job with the wrong key");
    if (rank == n - 1 && st != LC_ERR_REJECTED && st != LC_ERR_COORD_LOST)
        return lc_mp_fail(rank, "stranger got %s", lc_status_str(st));
    return 0;
}

static void test_wrong_key(void **s)
{
    (void)s;
    static const char *const env[] = { "LC_CONNECT_TIMEOUT_MS=3000", NULL };
    double t0 = lc_mp_now();
    assert_int_equal(lc_mp_run(3, wrong_key_rank, NULL, 60, env, NULL), 0);
    assert_true(lc_mp_now() - t0 < 20);
}

/* ------------------------------------------------------------ progress */

static int nonblocking_rank(int rank, int n, void *arg)
{
    size_t count = (size_t)8 << 20;
    float *a = malloc(count * sizeof(float)), *b = malloc(count * sizeof(float));
    lc_request_t *r1, *r2, *r3;
    lc_comm_t *comm;
    lc_op_info_t info;
    lc_status_t st;
    double t0;

    (void)arg;
    if (a == NULL || b == NULL || lc_comm_init(NULL, &comm) != LC_OK) return 1;
    for (size_t i = 0; i < count; i++) a[i] = b[i] = 1.0f;
    t0 = lc_mp_now();
    if (lc_iallreduce(a, a, count, LC_FLOAT32, LC_SUM, comm, NULL, &r1) != LC_OK ||
        lc_iallreduce(b, b, count, LC_FLOAT32, LC_MAX, comm, NULL, &r2) != LC_OK ||
        lc_ibarrier(comm, &r3) != LC_OK)
        return lc_mp_fail(rank, "start failed");
    if (lc_mp_now() - t0 > 0.05) return lc_mp_fail(rank, "lc_i* calls blocked");
    /* The caller does nothing; the progress thread must finish the work. */
    for (int i = 0; i < 300 && lc_test(r3, NULL) == LC_INPROGRESS; i++) usleep(100 * 1000);
    st = lc_test(r1, &info);
    if (st != LC_OK)
        return lc_mp_fail(rank, "r1 not done while caller slept: %s", lc_status_str(st));
    if (lc_test(r2, NULL) != LC_OK || lc_test(r3, NULL) != LC_OK)
        return lc_mp_fail(rank, "r2/r3 not done");
    if (a[count - 1] != (float)n || b[count - 1] != 1.0f) return lc_mp_fail(rank, "wrong values");
    if (info.bytes_sent == 0 || info.bytes_received == 0 || info.algo == LC_ALGO_AUTO ||
        info.seq != 1 || info.elapsed_us <= 0)
        return lc_mp_fail(rank, "op info not filled");
    lc_request_free(r1);
    lc_request_free(r2);
    lc_request_free(r3);
    lc_comm_destroy(comm);
    free(a);
    free(b);
    return 0;
}

static void test_nonblocking(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(4, nonblocking_rank, NULL, 120, NULL, NULL), 0);
}

/*
 * Blocking calls run the engine on the caller's thread when it is free, and
 * queue behind the progress thread's work when it is not. Interleave both
 * kinds, with random sizes and pauses so that either side can own the
 * engine at any call, and check every result and the order.
 */
static int mixed_rank(int rank, int n, void *arg)
{
    enum { ROUNDS = 300, MAXC = 70000 };
    int32_t *x = malloc(MAXC * sizeof(int32_t)), *y = malloc(MAXC * sizeof(int32_t));
    lc_comm_t *comm;
    unsigned seed = 12345; /* the same on every rank: same sizes, same order */
    int bad = 0;
    (void)arg;
    if (x == NULL || y == NULL || lc_comm_init(NULL, &comm) != LC_OK) return 1;
    for (int k = 0; k < ROUNDS && !bad; k++) {
        size_t cx = (size_t)rand_r(&seed) % MAXC, cy = (size_t)rand_r(&seed) % MAXC;
        lc_request_t *req;
        lc_op_info_t info;
        for (size_t i = 0; i < cx; i++) x[i] = rank + (int32_t)i;
        for (size_t i = 0; i < cy; i++) y[i] = 2 * rank + k;
        if (lc_iallreduce(x, x, cx, LC_INT32, LC_SUM, comm, NULL, &req) != LC_OK)
            return lc_mp_fail(rank, "iallreduce");
        if (rand_r(&seed) % 3 == 0) usleep((useconds_t)(rand_r(&seed) % 500));
        lc_status_t st = lc_allreduce(y, y, cy, LC_INT32, LC_MAX, comm, NULL);
        if (st != LC_OK) bad = lc_mp_fail(rank, "round %d allreduce: %s", k, lc_status_str(st));
        st = lc_wait(req, &info);
        if (st != LC_OK) bad = lc_mp_fail(rank, "round %d iallreduce: %s", k, lc_status_str(st));
        if (st == LC_OK && info.seq != (uint64_t)(2 * k + 1))
            bad = lc_mp_fail(rank, "round %d ran as collective %llu", k,
                             (unsigned long long)info.seq);
        lc_request_free(req);
        for (size_t i = 0; i < cx && !bad; i++)
            if (x[i] != n * (n - 1) / 2 + n * (int32_t)i) bad = lc_mp_fail(rank, "x[%zu]", i);
        for (size_t i = 0; i < cy && !bad; i++)
            if (y[i] != 2 * (n - 1) + k) bad = lc_mp_fail(rank, "y[%zu]", i);
    }
    lc_comm_destroy(comm);
    free(x);
    free(y);
    return bad;
}

static void test_mixed(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(3, mixed_rank, NULL, 120, NULL, NULL), 0);
}

/*
 * A rank that computes between blocking collectives for three times the
 * peer timeout is slow, not dead: its progress thread keeps the heartbeats
 * going once the caller hands the engine back.
 */
static int slow_peer_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm;
    int x = 1;
    (void)arg;
    if (lc_comm_init(NULL, &comm) != LC_OK) return 1;
    /* Enough back-to-back calls to span several ticks, so the progress
     * thread finds the engine taken by the caller at least once. */
    for (int k = 0; k < 3001; k++) {
        x = 1;
        lc_status_t st = lc_allreduce(&x, &x, 1, LC_INT32, LC_SUM, comm, NULL);
        if (st != LC_OK || x != n)
            return lc_mp_fail(rank, "allreduce %d: %s (%d)", k, lc_status_str(st), x);
        if (k == 2999 && rank == 1) usleep(1500 * 1000); /* "computing": no library call */
    }
    lc_comm_destroy(comm);
    return 0;
}

static void test_slow_peer(void **s)
{
    static const char *const env[] = { "LC_PEER_TIMEOUT_MS=500", NULL };
    (void)s;
    assert_int_equal(lc_mp_run(3, slow_peer_rank, NULL, 60, env, NULL), 0);
}

/*
 * lc_comm_destroy while another thread is inside a blocking collective that
 * drives the engine itself (rank 1 never joins the barrier): the blocked call
 * returns LC_ERR_REVOKED and gives the engine back before anything is freed
 * (the TSan run checks the hand-over).
 */
static lc_comm_t *g_destroy_comm;

static void *destroy_blocked_thread(void *arg)
{
    *(lc_status_t *)arg = lc_barrier(g_destroy_comm);
    return NULL;
}

static int destroy_blocked_rank(int rank, int n, void *arg)
{
    (void)n;
    (void)arg;
    if (lc_comm_init(NULL, &g_destroy_comm) != LC_OK) return 1;
    if (rank == 1) {
        usleep(1500 * 1000); /* never joins the barrier; leaves after rank 0 destroyed */
        lc_comm_destroy(g_destroy_comm);
        return 0;
    }
    pthread_t th;
    lc_status_t st = LC_OK;
    if (pthread_create(&th, NULL, destroy_blocked_thread, &st) != 0) return 1;
    usleep(300 * 1000);
    lc_comm_destroy(g_destroy_comm);
    pthread_join(th, NULL);
    if (st != LC_ERR_REVOKED) return lc_mp_fail(rank, "blocked barrier: %s", lc_status_str(st));
    return 0;
}

static void test_destroy_while_blocked(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(2, destroy_blocked_rank, NULL, 30, NULL, NULL), 0);
}

static int barrier_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm;
    double t0;
    (void)arg;
    (void)n;
    if (lc_comm_init(NULL, &comm) != LC_OK) return 1;
    lc_barrier(comm);
    if (rank == 1) usleep(300 * 1000);
    t0 = lc_mp_now();
    if (lc_barrier(comm) != LC_OK) return lc_mp_fail(rank, "barrier failed");
    if (rank != 1 && lc_mp_now() - t0 < 0.2) return lc_mp_fail(rank, "barrier did not wait");
    lc_comm_destroy(comm);
    return 0;
}

static void test_barrier(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(5, barrier_rank, NULL, 60, NULL, NULL), 0);
}

/*
 * A rank that finishes a collective and leaves at once must not fail the
 * slower ranks still on that collective: in a 3-rank chain broadcast, rank 1
 * forwards to rank 2 and destroys its communicator before rank 2 has even
 * started the broadcast. Rank 2 still gets the data; the next collective
 * fails with LC_ERR_PEER_LOST on both survivors, well within the timeout.
 */
static int leave_early_rank(int rank, int n, void *arg)
{
    enum { COUNT = 1 << 18 };
    lc_op_params_t p = { .field_mask = LC_OP_PARAM_FIELD_ALGO, .algo = LC_ALGO_CHAIN };
    float *buf = malloc(COUNT * sizeof(float));
    lc_comm_t *comm;
    lc_status_t st;
    int bad = 0;
    (void)arg;
    (void)n;
    if (buf == NULL || lc_comm_init(NULL, &comm) != LC_OK) return 1;
    for (int i = 0; i < COUNT; i++) buf[i] = rank == 0 ? (float)i : -1.0f;
    if (rank == 2) usleep(300 * 1000);
    st = lc_broadcast(buf, COUNT, LC_FLOAT32, 0, comm, &p);
    if (st != LC_OK) bad = lc_mp_fail(rank, "broadcast: %s", lc_status_str(st));
    for (int i = 0; i < COUNT && !bad; i++)
        if (buf[i] != (float)i) bad = lc_mp_fail(rank, "element %d is %g", i, buf[i]);
    if (rank != 1 && !bad) {
        double t0 = lc_mp_now();
        st = lc_barrier(comm);
        if (st != LC_ERR_PEER_LOST)
            bad = lc_mp_fail(rank, "barrier after rank 1 left: %s", lc_status_str(st));
        if (lc_mp_now() - t0 > 5) bad = lc_mp_fail(rank, "took %.1f s", lc_mp_now() - t0);
    }
    lc_comm_destroy(comm);
    free(buf);
    return bad;
}

static void test_leave_early(void **s)
{
    (void)s;
    for (int k = 0; k < 3; k++)
        assert_int_equal(lc_mp_run(3, leave_early_rank, NULL, 60, NULL, NULL), 0);
}

/* NCCL-style start-up: rank 0 makes an id, the others receive it. */
static int unique_id_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm;
    float x = 1.0f;
    (void)arg;
    if (rank == 0) {
        if (lc_get_unique_id(&g_sh->uid) != LC_OK) return lc_mp_fail(rank, "get_unique_id");
        __atomic_store_n(&g_sh->uid_ready, 1, __ATOMIC_RELEASE);
    } else {
        for (int i = 0; i < 3000 && !__atomic_load_n(&g_sh->uid_ready, __ATOMIC_ACQUIRE); i++)
            usleep(2000);
    }
    /* Rank 1 takes the plain call; the others set timeouts through params,
     * which must hold although rank 0's lc_get_unique_id read the
     * environment first. Params naming what the id gives are refused. */
    lc_comm_params_t bad = { .field_mask = LC_COMM_PARAM_FIELD_RANK, .rank = rank };
    if (lc_comm_init_rank_params(n, &g_sh->uid, rank, &bad, &comm) != LC_ERR_INVALID_ARG)
        return lc_mp_fail(rank, "init_rank_params took a rank in params");
    lc_comm_params_t p = { .field_mask =
                               LC_COMM_PARAM_FIELD_TIMEOUT_MS | LC_COMM_PARAM_FIELD_PEER_TIMEOUT_MS,
                           .timeout_ms = 12345,
                           .peer_timeout_ms = 4321 };
    lc_status_t st = rank == 1 ? lc_comm_init_rank(n, &g_sh->uid, rank, &comm)
                               : lc_comm_init_rank_params(n, &g_sh->uid, rank, &p, &comm);
    if (st != LC_OK) return lc_mp_fail(rank, "init_rank failed");
    if (rank != 1 && (comm->cfg.timeout_ms != 12345 || comm->cfg.peer_timeout_ms != 4321))
        return lc_mp_fail(rank, "params' timeouts not in effect (%u, %u)", comm->cfg.timeout_ms,
                          comm->cfg.peer_timeout_ms);
    if (lc_allreduce(&x, &x, 1, LC_FLOAT32, LC_SUM, comm, NULL) != LC_OK || x != (float)n)
        return lc_mp_fail(rank, "allreduce over a unique-id communicator");
    lc_comm_destroy(comm);
    return 0;
}

static void test_unique_id(void **s)
{
    (void)s;
    memset(g_sh, 0, sizeof(*g_sh));
    assert_int_equal(lc_mp_run(3, unique_id_rank, NULL, 60, NULL, NULL), 0);
}

static int setup(void **s)
{
    (void)s;
    g_sh = lc_mp_shared(sizeof(*g_sh));
    return g_sh == NULL;
}

static int teardown(void **s)
{
    (void)s;
    lc_mp_shared_free(g_sh, sizeof(*g_sh));
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_init),      cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_correct_1),     cmocka_unit_test(test_correct_2),
        cmocka_unit_test(test_correct_3),     cmocka_unit_test(test_correct_4),
        cmocka_unit_test(test_correct_5),     cmocka_unit_test(test_correct_8),
        cmocka_unit_test(test_correct_hosts), cmocka_unit_test(test_nonblocking),
        cmocka_unit_test(test_barrier),       cmocka_unit_test(test_unique_id),
        cmocka_unit_test(test_mismatch),      cmocka_unit_test(test_sigkill_4),
        cmocka_unit_test(test_fault_inject),  cmocka_unit_test(test_sigkill_3_rank0),
        cmocka_unit_test(test_sigstop_4),     cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_leave_early),   cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_slow_peer),     cmocka_unit_test(test_destroy_while_blocked),
    };
    /* Optional filter: test_api '<shell pattern>' runs the matching tests. */
    return lc_mp_run_filtered("test_api", tests, sizeof(tests) / sizeof(tests[0]),
                              argc > 1 ? argv[1] : NULL, setup, teardown);
}
