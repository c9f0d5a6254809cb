/*
 * The fault sweep: a rank killed at every message of a collective, over
 * every all-reduce and all-to-all algorithm, codec, in and out of place and
 * rank count, with a real coordinator.
 *
 *   fault_sweep --all                 every case (tests/fault-sweep.sh)
 *   fault_sweep --sample K [--seed S] K cases drawn at random (CI)
 *   fault_sweep --list                the configurations
 *   fault_sweep CONFIG MSG            one case: CONFIG as --list prints it
 *
 * A case: n ranks run three steps (a collective, then lc_step_commit) with
 * error feedback under a tensor key and LC_OP_FLAG_RESTORE_INPUT. In step
 * 2, LC_FAULT kills the victim just before its send number MSG. Pass:
 * - nothing hangs (each case has a wall-clock limit);
 * - every survivor gets the same outcome of step 2;
 * - a committed all-reduce is bit-identical on every survivor;
 * - an aborted step leaves every survivor's input and error-feedback
 *   residuals as they were before it, and lc_comm_shrink gives every
 *   survivor the view without the victim, where step 3 commits (and its
 *   all-reduce is bit-identical everywhere).
 * A MSG past the victim's last send of the collective kills nobody: every
 * rank commits, and --all moves on to the next configuration.
 */
#include "laconic.h"
#include "api/comm.h"
#include "mp.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXR 8
#define COUNT 600 /* all-reduce elements; all-to-all: per peer COUNT / 8 */

typedef struct {
    int alltoall;
    lc_algo_t algo;
    const char *codec; /* NULL: none */
    int inplace;
    int n;
    int victim;
} sweep_cfg_t;

typedef struct {
    int outcome[MAXR]; /* step 2: 1 aborted, 2 committed */
    uint64_t h2[MAXR], h3[MAXR];
    int restored[MAXR]; /* 1 input and residuals as before, 2 not */
    char why[MAXR][96];
} sweep_shared_t;

static sweep_shared_t *g;

static const char *const codecs[] = { NULL, "onebit", "topk:0.05", "int8" };
static const int sizes[] = { 3, 4, 5, 8 };

/* Every configuration, in a fixed order. */
static int sweep_configs(sweep_cfg_t *out, int max)
{
    static const lc_algo_t plain[] = { LC_ALGO_RING, LC_ALGO_TREE, LC_ALGO_RECDBL };
    static const lc_algo_t coded[] = { LC_ALGO_TWOPHASE, LC_ALGO_RING, LC_ALGO_TREE,
                                       LC_ALGO_SPARSE };
    int k = 0;

    for (size_t ni = 0; ni < sizeof(sizes) / sizeof(sizes[0]); ni++) {
        for (int ci = 0; ci < 4; ci++) {
            for (int inplace = 0; inplace < 2; inplace++) {
                const lc_algo_t *al = ci == 0 ? plain : coded;
                int na = ci == 0 ? 3 : 4;
                for (int a = 0; a <= na; a++) {
                    sweep_cfg_t c = {
                        .alltoall = a == na, .codec = codecs[ci], .inplace = inplace, .n = sizes[ni]
                    };
                    if (c.alltoall && inplace) continue; /* not supported in place */
                    c.algo = c.alltoall ? LC_ALGO_PAIRWISE : al[a];
                    c.victim = (k * 7 + 1) % c.n;
                    if (k < max) out[k] = c;
                    k++;
                }
            }
        }
    }
    return k;
}

static void cfg_name(const sweep_cfg_t *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%s:%s:%s:%d:%d", c->alltoall ? "alltoall" : "allreduce",
             lc_algo_str(c->algo), c->codec ? c->codec : "none", c->inplace ? "inplace" : "out",
             c->n, c->victim);
}

static uint64_t residual_hash(lc_comm_t *comm)
{
    uint64_t h = 0;
    pthread_mutex_lock(&comm->lock);
    for (lc_tensor_t *t = comm->tensors; t != NULL; t = t->next) {
        if (t->w[0]->residual != NULL) h ^= lc_mp_hash(t->w[0]->residual, t->count * sizeof(float));
        if (t->red[0] != NULL && t->red[0]->residual != NULL)
            h ^= 31 * lc_mp_hash(t->red[0]->residual, t->red_cnt * sizeof(float));
    }
    pthread_mutex_unlock(&comm->lock);
    return h;
}

static void fill(float *x, size_t n, int rank, int step)
{
    for (size_t i = 0; i < n; i++)
        x[i] = sinf(0.1f * (float)i + (float)(rank * 3 + step)) * (float)(rank + 1);
}

static lc_status_t run_coll(const sweep_cfg_t *c, lc_comm_t *comm, float *s, float *r,
                            const lc_op_params_t *op)
{
    if (c->alltoall) return lc_alltoall(s, r, COUNT / 8, LC_FLOAT32, comm, op);
    return lc_allreduce(s, c->inplace ? s : r, COUNT, LC_FLOAT32, LC_SUM, comm, op);
}

static int sweep_rank(int rank, int n, void *arg)
{
    const sweep_cfg_t *c = arg;
    static float s[COUNT * 2], r[COUNT * 2], keep[COUNT * 2];
    lc_comm_params_t cp = { .field_mask = LC_COMM_PARAM_FIELD_STEPS, .steps = 1 };
    lc_op_params_t op = { .field_mask = LC_OP_PARAM_FIELD_ALGO | LC_OP_PARAM_FIELD_FLAGS,
                          .algo = c->algo,
                          .flags = LC_OP_FLAG_RESTORE_INPUT };
    lc_comm_t *comm;
    int committed, me = rank;
    size_t len = c->alltoall ? (size_t)(COUNT / 8) * (size_t)n : COUNT;

    if (c->codec != NULL) {
        op.field_mask |= LC_OP_PARAM_FIELD_CODEC_SPEC | LC_OP_PARAM_FIELD_TENSOR_KEY;
        op.codec_spec = c->codec;
        op.tensor_key = 5;
    }
    if (lc_comm_init(&cp, &comm) != LC_OK) return lc_mp_fail(me, "init");
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(g->why[me], sizeof(g->why[me]), __VA_ARGS__);                                     \
        return 1;                                                                                  \
    } while (0)
    /* Step 1: nobody fails. */
    fill(s, len, me, 1);
    lc_status_t st = run_coll(c, comm, s, r, &op);
    if (st != LC_OK) FAIL("step 1: %s", lc_status_str(st));
    if (lc_step_commit(comm, &committed) != LC_OK || !committed) FAIL("step 1 did not commit");
    /* Step 2: the victim dies at message MSG (LC_FAULT). */
    fill(s, len, me, 2);
    memcpy(keep, s, len * sizeof(float));
    uint64_t rh = residual_hash(comm);
    (void)run_coll(c, comm, s, r, &op);
    st = lc_step_commit(comm, &committed);
    if (st != LC_OK) FAIL("step 2 commit: %s", lc_status_str(st));
    g->outcome[me] = committed + 1;
    const float *res = c->inplace ? s : r;
    if (committed) {
        g->h2[me] = lc_mp_hash(res, len * sizeof(float));
    } else {
        int ok = memcmp(keep, s, len * sizeof(float)) == 0 && residual_hash(comm) == rh;
        g->restored[me] = ok ? 1 : 2;
        st = lc_comm_shrink(comm);
        if (st != LC_OK) FAIL("shrink: %s", lc_status_str(st));
        lc_view_t v;
        lc_comm_view(comm, &v);
        if (v.size != n - 1 || v.nleft != 1 || v.left[0] != c->victim)
            FAIL("view: size %d, nleft %d", v.size, v.nleft);
        len = c->alltoall ? (size_t)(COUNT / 8) * (size_t)v.size : COUNT;
    }
    /* Step 3, in whatever view this is. */
    fill(s, len, me, 3);
    st = run_coll(c, comm, s, r, &op);
    if (st != LC_OK) FAIL("step 3: %s", lc_status_str(st));
    if (lc_step_commit(comm, &committed) != LC_OK || !committed) FAIL("step 3 did not commit");
    g->h3[me] = lc_mp_hash(c->inplace ? s : r, len * sizeof(float));
    lc_comm_destroy(comm);
    return 0;
#undef FAIL
}

/* One case: 0 pass, 1 fail; *beyond: the victim never reached MSG. */
static int sweep_case(const sweep_cfg_t *c, int msg, int *beyond)
{
    char name[96], fault[64];
    lc_mp_result_t res;
    const char *env[] = { fault, "LC_PEER_TIMEOUT_MS=2000", NULL };
    int bad = 0, ref = -1;

    cfg_name(c, name, sizeof(name));
    snprintf(fault, sizeof(fault), "LC_FAULT=kill:%d:2:%d", c->victim, msg);
    memset(g, 0, sizeof(*g));
    lc_mp_with_coordinator = 1;
    lc_mp_run(c->n, sweep_rank, (void *)c, 30, env, &res);
    *beyond = res.exit_code[c->victim] == 0;
    if (res.timed_out) {
        printf("FAIL %s msg %d: hang (timed out)\n", name, msg);
        return 1;
    }
    for (int r = 0; r < c->n; r++) {
        if (r == c->victim && !*beyond) continue;
        if (res.exit_code[r] != 0) {
            printf("FAIL %s msg %d: rank %d exited %d (%s)\n", name, msg, r, res.exit_code[r],
                   g->why[r]);
            bad = 1;
            continue;
        }
        if (ref < 0) ref = r;
        if (g->outcome[r] != g->outcome[ref]) {
            printf("FAIL %s msg %d: rank %d outcome %d, rank %d outcome %d\n", name, msg, r,
                   g->outcome[r] - 1, ref, g->outcome[ref] - 1);
            bad = 1;
        }
        if (!c->alltoall && g->outcome[ref] == 2 && g->h2[r] != g->h2[ref]) {
            printf("FAIL %s msg %d: committed results differ (ranks %d, %d)\n", name, msg, r, ref);
            bad = 1;
        }
        if (g->outcome[r] == 1 && g->restored[r] != 1) {
            printf("FAIL %s msg %d: rank %d: aborted step changed its input or residuals\n", name,
                   msg, r);
            bad = 1;
        }
        if (!c->alltoall && g->h3[r] != g->h3[ref]) {
            printf("FAIL %s msg %d: step 3 results differ (ranks %d, %d)\n", name, msg, r, ref);
            bad = 1;
        }
    }
    if (*beyond && !bad && g->outcome[ref] != 2) {
        printf("FAIL %s msg %d: nobody died but step 2 aborted\n", name, msg);
        bad = 1;
    }
    if (!bad)
        printf("ok   %s msg %d: %s\n", name, msg,
               *beyond                ? "past the last send (all committed)"
               : g->outcome[ref] == 2 ? "committed everywhere"
                                      : "aborted everywhere");
    fflush(stdout);
    return bad;
}

int main(int argc, char **argv)
{
    sweep_cfg_t cfgs[512];
    int ncfg = sweep_configs(cfgs, 512), failed = 0, cases = 0, beyond;
    char name[96];

    g = lc_mp_shared(sizeof(*g));
    if (g == NULL) return 2;
    if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ncfg; i++) {
            cfg_name(&cfgs[i], name, sizeof(name));
            printf("%s\n", name);
        }
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--all") == 0) {
        for (int i = 0; i < ncfg; i++) {
            for (int m = 0; m < 64; m++) {
                failed += sweep_case(&cfgs[i], m, &beyond);
                cases++;
                if (beyond) break;
            }
        }
    } else if (argc >= 3 && strcmp(argv[1], "--sample") == 0) {
        int k = atoi(argv[2]);
        unsigned seed = argc >= 5 && strcmp(argv[3], "--seed") == 0 ? (unsigned)atoi(argv[4])
                                                                    : (unsigned)time(NULL);
        printf("fault_sweep: %d random cases, seed %u (fault_sweep --sample %d --seed %u "
               "repeats them)\n",
               k, seed, k, seed);
        srand(seed);
        for (int j = 0; j < k; j++) {
            const sweep_cfg_t *c = &cfgs[rand() % ncfg];
            /* Early messages are where most schedules differ; a later index
             * past the last send still checks that nothing breaks. */
            failed += sweep_case(c, rand() % (2 * c->n + 2), &beyond);
            cases++;
        }
    } else if (argc == 3) {
        for (int i = 0; i < ncfg; i++) {
            cfg_name(&cfgs[i], name, sizeof(name));
            if (strcmp(name, argv[1]) == 0) {
                failed += sweep_case(&cfgs[i], atoi(argv[2]), &beyond);
                cases++;
            }
        }
        if (cases == 0) {
            fprintf(stderr, "fault_sweep: no configuration %s (--list)\n", argv[1]);
            return 2;
        }
    } else {
        fprintf(stderr, "usage: fault_sweep --all | --sample K [--seed S] | --list | CONFIG MSG\n");
        return 2;
    }
    printf("fault_sweep: %d cases, %d failed, %d configurations\n", cases, failed, ncfg);
    lc_mp_shared_free(g, sizeof(*g));
    return failed != 0;
}
