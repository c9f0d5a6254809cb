/*
 * Membership tests: real ranks (forked processes) over TCP on loopback with
 * a real coordinator (lc_mp_with_coordinator: lc_coord_create in a process
 * of its own).
 *
 * - a rank SIGKILLed in a step: every survivor gets the same outcome
 *   (aborted), lc_comm_shrink gives all of them the same smaller view, and
 *   the next steps commit with results bit-identical on every survivor;
 * - every rank commits when nobody fails; a shrink with nobody lost makes a
 *   new view with the same members;
 * - an aborted step (a mismatch) leaves residuals and restored inputs as
 *   they were: the run that retries it ends bit-identical to a run where it
 *   never happened;
 * - mass is kept across a view change: inputs summed over committed steps =
 *   results + every survivor's residuals + what the departed rank held;
 * - a stopped rank that resumes after it was removed gets LC_ERR_REMOVED;
 * - a rank that leaves finishes the collective it called; the others see
 *   the view pending, abort the next step and shrink;
 * - without a coordinator, lc_comm_shrink fails with LC_ERR_COORD_LOST;
 *   with the coordinator killed, steps still commit; a coordinator started
 *   again at the same address takes over and handles the next failure.
 */
#include "laconic.h"
#include "api/comm.h"
#include "mp.h"

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_RANKS 8
#define N 4099 /* elements per all-reduce: not a multiple of anything */

typedef struct {
    uint64_t hash[MAX_RANKS][16]; /* per rank, per step after the change */
    int committed[MAX_RANKS][16];
    uint32_t epoch[MAX_RANKS];
    int size_after[MAX_RANKS];
    int status[MAX_RANKS];
    pid_t pid[MAX_RANKS];
    double lhs[N], rhs[N]; /* mass test: sums over ranks (under a lock-free split: by rank) */
    double part_lhs[MAX_RANKS][N], part_rhs[MAX_RANKS][N];
    uint64_t final_hash[2][MAX_RANKS];
} shared_t;

static shared_t *g_sh;

static lc_comm_t *init_steps(void)
{
    lc_comm_params_t cp = { .field_mask = LC_COMM_PARAM_FIELD_STEPS, .steps = 1 };
    lc_comm_t *comm = NULL;
    if (lc_comm_init(&cp, &comm) != LC_OK) return NULL;
    return comm;
}

static void fill(float *g, int first_rank, int step)
{
    for (int i = 0; i < N; i++)
        g[i] = sinf(0.37f * (float)i + (float)step) * (float)(first_rank + 1) + 0.01f * (float)step;
}

static const lc_op_params_t onebit_key = {
    .field_mask = LC_OP_PARAM_FIELD_CODEC | LC_OP_PARAM_FIELD_TENSOR_KEY | LC_OP_PARAM_FIELD_FLAGS,
    .codec = LC_CODEC_ONEBIT,
    .tensor_key = 7,
    .flags = LC_OP_FLAG_RESTORE_INPUT,
};

/* ------------------------------------------------------------ kill + shrink */

static int kill_rank(int rank, int n, void *arg)
{
    int victim = *(int *)arg;
    static float g[N];
    lc_comm_t *comm = init_steps();
    lc_view_t v;
    int committed = 0, k = 0;

    if (comm == NULL) return lc_mp_fail(rank, "init");
    for (int step = 1; step <= 6; step++) {
        fill(g, rank, step);
        if (rank == victim && step == 3) raise(SIGKILL);
        lc_allreduce(g, g, N, LC_FLOAT32, LC_SUM, comm, &onebit_key);
        if (lc_step_commit(comm, &committed) != LC_OK) return lc_mp_fail(rank, "step_commit");
        g_sh->committed[rank][step] = committed + 1;
        if (!committed) {
            lc_status_t st = lc_comm_shrink(comm);
            if (st != LC_OK) return lc_mp_fail(rank, "shrink: %s", lc_status_str(st));
            lc_comm_view(comm, &v);
            g_sh->epoch[rank] = v.epoch;
            g_sh->size_after[rank] = v.size;
            if (v.nleft != 1 || v.left[0] != victim || v.members[v.rank] != rank)
                return lc_mp_fail(rank, "view: nleft %d left[0] %d", v.nleft, v.left[0]);
        } else if (step > 3) {
            g_sh->hash[rank][k++] = lc_mp_hash(g, sizeof(g));
        }
    }
    (void)n;
    lc_comm_destroy(comm);
    return 0;
}

static void check_kill(int n, int victim)
{
    lc_mp_result_t res;
    memset(g_sh, 0, sizeof(*g_sh));
    lc_mp_with_coordinator = 1;
    lc_mp_run(n, kill_rank, &victim, 60, NULL, &res);
    lc_mp_with_coordinator = 0;
    assert_false(res.timed_out);
    int ref = victim == 0 ? 1 : 0;
    for (int r = 0; r < n; r++) {
        if (r == victim) continue;
        if (res.exit_code[r] != 0) fail_msg("survivor %d exited with %d", r, res.exit_code[r]);
        /* Steps 1-2 committed, 3 aborted, 4-6 committed: everywhere. */
        for (int s = 1; s <= 6; s++)
            if (g_sh->committed[r][s] != (s == 3 ? 1 : 2))
                fail_msg("rank %d: step %d outcome %d", r, s, g_sh->committed[r][s] - 1);
        if (g_sh->epoch[r] != 1 || g_sh->size_after[r] != n - 1)
            fail_msg("rank %d: view %u size %d", r, g_sh->epoch[r], g_sh->size_after[r]);
        for (int k = 0; k < 3; k++)
            if (g_sh->hash[r][k] != g_sh->hash[ref][k])
                fail_msg("rank %d: step %d result differs from rank %d's", r, 4 + k, ref);
    }
}

static void test_kill_shrink_4(void **s)
{
    (void)s;
    check_kill(4, 2);
}

static void test_kill_shrink_3_rank0(void **s)
{
    (void)s;
    check_kill(3, 0);
}

/* ------------------------------------------------------------ no failure */

static int calm_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm = init_steps();
    float x[16];
    int committed = 0;
    lc_view_t v;

    (void)arg;
    if (comm == NULL) return lc_mp_fail(rank, "init");
    for (int step = 1; step <= 3; step++) {
        for (int i = 0; i < 16; i++) x[i] = (float)rank;
        if (lc_allreduce(x, x, 16, LC_FLOAT32, LC_SUM, comm, NULL) != LC_OK)
            return lc_mp_fail(rank, "allreduce");
        if (lc_step_commit(comm, &committed) != LC_OK || !committed)
            return lc_mp_fail(rank, "step %d did not commit", step);
    }
    /* A step with no collective commits too. */
    if (lc_step_commit(comm, &committed) != LC_OK || !committed)
        return lc_mp_fail(rank, "empty step did not commit");
    if (lc_comm_shrink(comm) != LC_OK) return lc_mp_fail(rank, "shrink");
    lc_comm_view(comm, &v);
    if (v.epoch != 1 || v.size != n || v.rank != rank || v.nleft != 0 || v.steps != 4)
        return lc_mp_fail(rank, "view %u size %d rank %d steps %llu", v.epoch, v.size, v.rank,
                          (unsigned long long)v.steps);
    for (int i = 0; i < 16; i++) x[i] = 1.0f;
    if (lc_allreduce(x, x, 16, LC_FLOAT32, LC_SUM, comm, NULL) != LC_OK || x[5] != (float)n)
        return lc_mp_fail(rank, "allreduce after shrink");
    lc_comm_destroy(comm);
    return 0;
}

static void test_commit_and_same_view(void **s)
{
    (void)s;
    lc_mp_with_coordinator = 1;
    int rc = lc_mp_run(3, calm_rank, NULL, 60, NULL, NULL);
    lc_mp_with_coordinator = 0;
    assert_int_equal(rc, 0);
}

/* ------------------------------------------------------------ abort undoes */

/* Three steps of onebit with error feedback; with arg 1, a failed step
 * (a mismatch) is inserted before the last and retried. Both runs must
 * end with the same result. */
static int undo_rank(int rank, int n, void *arg)
{
    int inject = *(int *)arg;
    static float g[N], keep[N];
    lc_comm_t *comm = init_steps();
    int committed;

    (void)n;
    if (comm == NULL) return lc_mp_fail(rank, "init");
    for (int step = 1; step <= 3; step++) {
        fill(g, rank, step);
        if (step == 3 && inject) {
            memcpy(keep, g, sizeof(g));
            lc_allreduce(g, g, N, LC_FLOAT32, LC_SUM, comm, &onebit_key); /* succeeds */
            float x[4] = { 0 };
            lc_status_t st = lc_allreduce(x, x, rank == 0 ? 3 : 4, LC_FLOAT32, LC_SUM, comm, NULL);
            if (st != LC_ERR_MISMATCH) return lc_mp_fail(rank, "mismatch: %s", lc_status_str(st));
            if (lc_step_commit(comm, &committed) != LC_OK || committed)
                return lc_mp_fail(rank, "the failed step committed");
            if (memcmp(keep, g, sizeof(g)) != 0) return lc_mp_fail(rank, "input not restored");
        }
        lc_allreduce(g, g, N, LC_FLOAT32, LC_SUM, comm, &onebit_key);
        if (lc_step_commit(comm, &committed) != LC_OK || !committed)
            return lc_mp_fail(rank, "step %d did not commit", step);
    }
    g_sh->final_hash[inject][rank] = lc_mp_hash(g, sizeof(g));
    lc_comm_destroy(comm);
    return 0;
}

static void test_abort_undoes(void **s)
{
    (void)s;
    memset(g_sh, 0, sizeof(*g_sh));
    for (int inject = 0; inject < 2; inject++) {
        assert_int_equal(lc_mp_run(3, undo_rank, &inject, 60, NULL, NULL), 0);
    }
    for (int r = 0; r < 3; r++)
        if (g_sh->final_hash[1][r] != g_sh->final_hash[0][r])
            fail_msg("rank %d: the aborted step changed the result", r);
}

/* ------------------------------------------------------------ mass */

static void add_residuals(lc_comm_t *comm, double *acc)
{
    pthread_mutex_lock(&comm->lock);
    for (lc_tensor_t *t = comm->tensors; t != NULL; t = t->next) {
        for (size_t i = 0; i < t->count && t->w[0]->residual != NULL; i++)
            acc[i] += t->w[0]->residual[i];
        if (t->red[0] != NULL && t->red[0]->residual != NULL)
            for (size_t i = 0; i < t->red_cnt; i++) acc[t->red_off + i] += t->red[0]->residual[i];
    }
    pthread_mutex_unlock(&comm->lock);
}

/* Rank 3 of 4 dies in step 4; 8 steps in all, onebit on two-phase with
 * the reducer residual (LC_EF_RESIDUAL). */
static int mass_rank(int rank, int n, void *arg)
{
    static float g[N], in[N];
    lc_op_params_t op = onebit_key;
    lc_comm_t *comm = init_steps();
    double *lhs = g_sh->part_lhs[rank], *rhs = g_sh->part_rhs[rank];
    int committed, first = 1;

    (void)arg;
    (void)n;
    op.field_mask |= LC_OP_PARAM_FIELD_ERROR_FEEDBACK | LC_OP_PARAM_FIELD_ALGO;
    op.error_feedback = LC_EF_RESIDUAL;
    op.algo = LC_ALGO_TWOPHASE;
    if (comm == NULL) return lc_mp_fail(rank, "init");
    for (int step = 1; step <= 8; step++) {
        fill(g, rank, step);
        memcpy(in, g, sizeof(g));
        if (rank == 3 && step == 4) {
            /* What the departed rank holds when it goes. */
            add_residuals(comm, rhs);
            raise(SIGKILL);
        }
        lc_allreduce(g, g, N, LC_FLOAT32, LC_SUM, comm, &op);
        if (lc_step_commit(comm, &committed) != LC_OK) return lc_mp_fail(rank, "commit");
        if (!committed) {
            if (lc_comm_shrink(comm) != LC_OK) return lc_mp_fail(rank, "shrink");
            first = 0;
            /* The first survivor accounts the result of every committed step. */
            continue;
        }
        for (int i = 0; i < N; i++) lhs[i] += in[i];
        lc_view_t v;
        lc_comm_view(comm, &v);
        if (v.rank == 0)
            for (int i = 0; i < N; i++) rhs[i] += g[i];
    }
    (void)first;
    add_residuals(comm, rhs);
    lc_comm_destroy(comm);
    return 0;
}

static void test_mass_kept(void **s)
{
    lc_mp_result_t res;
    double num = 0, den = 0;
    (void)s;
    memset(g_sh, 0, sizeof(*g_sh));
    lc_mp_with_coordinator = 1;
    lc_mp_run(4, mass_rank, NULL, 60, NULL, &res);
    lc_mp_with_coordinator = 0;
    assert_false(res.timed_out);
    for (int r = 0; r < 3; r++) assert_int_equal(res.exit_code[r], 0);
    for (int i = 0; i < N; i++) {
        double l = 0, rr = 0;
        for (int r = 0; r < 4; r++) {
            l += g_sh->part_lhs[r][i];
            rr += g_sh->part_rhs[r][i];
        }
        num += (l - rr) * (l - rr);
        den += l * l;
    }
    double rel = sqrt(num / den);
    print_message("mass: |inputs - (results + residuals + departed's)| / |inputs| = %.2e\n", rel);
    if (!(rel <= 1e-6)) fail_msg("mass not kept: relative error %.3e", rel);
}

/* ------------------------------------------------------------ zombie */

static int zombie_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm = init_steps();
    float x[64];
    int committed = 0;

    (void)arg;
    (void)n;
    if (comm == NULL) return lc_mp_fail(rank, "init");
    g_sh->pid[rank] = getpid();
    for (int step = 1; step <= 6; step++) {
        for (int i = 0; i < 64; i++) x[i] = 1.0f;
        if (rank == 2 && step == 2) raise(SIGSTOP); /* resumed by rank 0 after the shrink */
        lc_status_t st = lc_allreduce(x, x, 64, LC_FLOAT32, LC_SUM, comm, NULL);
        lc_status_t sc = lc_step_commit(comm, &committed);
        if (rank == 2 && step == 2) {
            /* It may finish its collective (the peers' frames were in its
             * socket) and settle the step as aborted by itself (its own
             * vote says so); the first call that needs the view tells it
             * it was removed, and so does every call after. */
            if (sc == LC_OK && committed) return lc_mp_fail(rank, "the zombie committed the step");
            lc_status_t sh = sc == LC_ERR_REMOVED ? sc : lc_comm_shrink(comm);
            g_sh->status[rank] = sh;
            if (sh != LC_ERR_REMOVED) return lc_mp_fail(rank, "shrink: %s", lc_status_str(sh));
            int pending;
            lc_status_t sv = lc_comm_view_pending(comm, &pending);
            if (sv != LC_ERR_REMOVED)
                return lc_mp_fail(rank, "view_pending: %s", lc_status_str(sv));
            if (lc_allreduce(x, x, 64, LC_FLOAT32, LC_SUM, comm, NULL) != LC_ERR_REMOVED)
                return lc_mp_fail(rank, "a later collective did not fail with LC_ERR_REMOVED");
            if (lc_step_commit(comm, &committed) != LC_ERR_REMOVED)
                return lc_mp_fail(rank, "a later step did not fail with LC_ERR_REMOVED");
            (void)st;
            lc_comm_destroy(comm);
            return 0;
        }
        if (sc != LC_OK) return lc_mp_fail(rank, "commit: %s", lc_status_str(sc));
        if (!committed) {
            if (lc_comm_shrink(comm) != LC_OK) return lc_mp_fail(rank, "shrink");
            if (rank == 0) kill(g_sh->pid[2], SIGCONT);
        }
        if (committed && step > 2 && x[0] != 2.0f)
            return lc_mp_fail(rank, "sum %g after the shrink", (double)x[0]);
    }
    lc_comm_destroy(comm);
    return 0;
}

static void test_zombie(void **s)
{
    static const char *const env[] = { "LC_PEER_TIMEOUT_MS=400", NULL };
    (void)s;
    memset(g_sh, 0, sizeof(*g_sh));
    lc_mp_with_coordinator = 1;
    int rc = lc_mp_run(3, zombie_rank, NULL, 60, env, NULL);
    lc_mp_with_coordinator = 0;
    assert_int_equal(rc, 0);
    assert_int_equal(g_sh->status[2], LC_ERR_REMOVED);
}

/* ------------------------------------------------------------ coordinator */

static int nocoord_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm = init_steps();
    int committed;
    float x[4] = { 1, 1, 1, 1 };
    const char *kill_it = arg;

    (void)n;
    if (comm == NULL) return lc_mp_fail(rank, "init");
    if (kill_it != NULL && rank == 0) kill(atoi(getenv("LC_MP_COORD_PID")), SIGKILL);
    /* Steps that every member votes for need no coordinator. */
    for (int step = 0; step < 3; step++) {
        if (lc_allreduce(x, x, 4, LC_FLOAT32, LC_SUM, comm, NULL) != LC_OK)
            return lc_mp_fail(rank, "allreduce");
        if (lc_step_commit(comm, &committed) != LC_OK || !committed)
            return lc_mp_fail(rank, "step without a coordinator");
    }
    lc_status_t st = lc_comm_shrink(comm);
    if (st != LC_ERR_COORD_LOST) return lc_mp_fail(rank, "shrink: %s", lc_status_str(st));
    lc_comm_destroy(comm);
    return 0;
}

static void test_no_coordinator(void **s)
{
    (void)s;
    assert_int_equal(lc_mp_run(3, nocoord_rank, NULL, 30, NULL, NULL), 0);
}

static void test_coordinator_killed(void **s)
{
    static const char *const env[] = { "LC_COORD_TIMEOUT_MS=500", NULL };
    (void)s;
    lc_mp_with_coordinator = 1;
    int rc = lc_mp_run(3, nocoord_rank, "kill", 30, env, NULL);
    lc_mp_with_coordinator = 0;
    assert_int_equal(rc, 0);
}

/* Rank 2 calls its step-3 all-reduce and leaves: the collective completes
 * everywhere (the leave waits for it), the others see the view pending,
 * step 3 aborts (rank 2 never voted), and they shrink to 2 ranks. */
static int leave_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm = init_steps();
    float x[16];
    int committed, pending = 0;

    (void)arg;
    (void)n;
    if (comm == NULL) return lc_mp_fail(rank, "init");
    for (int step = 1; step <= 4; step++) {
        for (int i = 0; i < 16; i++) x[i] = 1.0f;
        lc_request_t *req;
        if (lc_iallreduce(x, x, 16, LC_FLOAT32, LC_SUM, comm, NULL, &req) != LC_OK)
            return lc_mp_fail(rank, "iallreduce");
        if (rank == 2 && step == 3) {
            lc_status_t st = lc_comm_leave(comm);
            if (st != LC_OK) return lc_mp_fail(rank, "leave: %s", lc_status_str(st));
            if (lc_wait(req, NULL) != LC_OK || x[0] != 3.0f)
                return lc_mp_fail(rank, "its last collective did not complete");
            lc_request_free(req);
            return 0;
        }
        lc_status_t st = lc_wait(req, NULL);
        lc_request_free(req);
        if (step <= 3 && (st != LC_OK || x[0] != 3.0f))
            return lc_mp_fail(rank, "step %d with 3 ranks: %s", step, lc_status_str(st));
        if (step == 3) {
            for (int k = 0; k < 500 && !pending; k++) {
                lc_comm_view_pending(comm, &pending);
                if (!pending) usleep(10000);
            }
            if (!pending) return lc_mp_fail(rank, "the view is not pending after a leave");
        }
        if (lc_step_commit(comm, &committed) != LC_OK) return lc_mp_fail(rank, "commit");
        if (committed != (step != 3))
            return lc_mp_fail(rank, "step %d outcome %d", step, committed);
        if (!committed) {
            if (lc_comm_shrink(comm) != LC_OK) return lc_mp_fail(rank, "shrink");
            lc_view_t v;
            lc_comm_view(comm, &v);
            if (v.size != 2 || v.nleft != 1 || v.left[0] != 2)
                return lc_mp_fail(rank, "view size %d", v.size);
        }
        if (step == 4 && x[0] != 2.0f) return lc_mp_fail(rank, "sum %g after the leave", x[0]);
    }
    lc_comm_destroy(comm);
    return 0;
}

static void test_leave(void **s)
{
    (void)s;
    lc_mp_with_coordinator = 1;
    int rc = lc_mp_run(3, leave_rank, NULL, 60, NULL, NULL);
    lc_mp_with_coordinator = 0;
    assert_int_equal(rc, 0);
}

/* The coordinator is killed, steps go on, another starts at the same
 * address, and a failure after that is handled by it. */
static int restart_rank(int rank, int n, void *arg)
{
    lc_comm_t *comm = init_steps();
    float x[16];
    int committed;
    pid_t next = -1;

    (void)arg;
    (void)n;
    if (comm == NULL) return lc_mp_fail(rank, "init");
    for (int step = 1; step <= 6; step++) {
        if (rank == 0 && step == 2) {
            kill(atoi(getenv("LC_MP_COORD_PID")), SIGKILL);
            usleep(300000);
        }
        if (rank == 0 && step == 4) {
            /* A new coordinator at the same address, knowing nothing. */
            char *argv[] = { LC_TEST_LCCOORD, "--listen",          getenv("LC_COORDINATOR"),
                             "--job-id",      getenv("LC_JOB_ID"), NULL };
            next = fork();
            if (next == 0) {
                execv(LC_TEST_LCCOORD, argv);
                _exit(127);
            }
            usleep(300000);
        }
        if (rank == 2 && step == 5) raise(SIGKILL);
        for (int i = 0; i < 16; i++) x[i] = 1.0f;
        lc_allreduce(x, x, 16, LC_FLOAT32, LC_SUM, comm, NULL);
        lc_status_t st = lc_step_commit(comm, &committed);
        if (st != LC_OK) return lc_mp_fail(rank, "step %d: %s", step, lc_status_str(st));
        if (committed != (step != 5))
            return lc_mp_fail(rank, "step %d: outcome %d", step, committed);
        if (!committed) {
            st = lc_comm_shrink(comm);
            if (st != LC_OK)
                return lc_mp_fail(rank, "shrink with the new coordinator: %s", lc_status_str(st));
        }
    }
    lc_view_t v;
    lc_comm_view(comm, &v);
    if (v.epoch != 1 || v.size != 2) return lc_mp_fail(rank, "view %u size %d", v.epoch, v.size);
    lc_comm_destroy(comm);
    if (next > 0) {
        kill(next, SIGKILL);
        waitpid(next, NULL, 0);
    }
    return 0;
}

static void test_coordinator_restart(void **s)
{
    lc_mp_result_t res;
    (void)s;
    lc_mp_with_coordinator = 1;
    lc_mp_run(3, restart_rank, NULL, 60, NULL, &res);
    lc_mp_with_coordinator = 0;
    assert_false(res.timed_out);
    assert_int_equal(res.exit_code[0], 0);
    assert_int_equal(res.exit_code[1], 0);
    assert_int_equal(res.exit_code[2], 128 + SIGKILL);
}

static int setup(void **s)
{
    (void)s;
    g_sh = lc_mp_shared(sizeof(*g_sh));
    return g_sh == NULL ? -1 : 0;
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
        cmocka_unit_test(test_kill_shrink_4),
        cmocka_unit_test(test_kill_shrink_3_rank0),
        cmocka_unit_test(test_commit_and_same_view),
        cmocka_unit_test(test_abort_undoes),
        cmocka_unit_test(test_mass_kept),
        cmocka_unit_test(test_zombie),
        cmocka_unit_test(test_no_coordinator),
        cmocka_unit_test(test_coordinator_killed),
        cmocka_unit_test(test_coordinator_restart),
        cmocka_unit_test(test_leave),
    };
    return lc_mp_run_filtered("test_membership", tests, sizeof(tests) / sizeof(tests[0]),
                              argc > 1 ? argv[1] : NULL, setup, teardown);
}
