/*
 * lc-failover: what membership costs and how fast a job recovers.
 *
 *   lc-failover agree [--size BYTES] [--codec SPEC] [--iters N] [--rtt-ms R] [--json FILE]
 *   lc-failover fail --victim R [--signal kill|stop] [--at STEP] [--size BYTES]
 *                    [--codec SPEC] [--algo NAME] [--json FILE]
 *
 * agree: the cost of lc_step_commit. Every rank runs steps of one
 * all-reduce (default 64 MiB f32 with onebit and error feedback), in pairs:
 * one step without lc_step_commit, one with it, alternating so that both
 * see the same load. Prints the medians of both, their difference, the
 * commit call's own median time, and the bound of issue 18: one round trip
 * (--rtt-ms, the scenario's) + 2% of the step without it.
 *
 * fail: recovery from a failure. Steps of one all-reduce (default 1 MiB f32,
 * uncompressed) and lc_step_commit; in step --at, rank --victim notes the
 * time and raises SIGKILL or SIGSTOP on itself. Every survivor times, from
 * that instant: the failure seen (its collective or its step failed),
 * lc_comm_shrink done, and the first step that committed in the new view.
 * A stopped victim is killed by the survivors at the end (it was removed).
 * Run under lcrun --keep-going (all ranks on one host: the victim's clock
 * is theirs; the mark file is in /dev/shm).
 *
 * JSON lines (--json, appended): one per rank and run.
 */
#include <laconic.h>
#include "bench_util.h"
#ifdef LC_BENCH_MPI
#include <laconic_mpi.h>
#include <mpi.h>
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *mode;
    size_t bytes;
    const char *codec;
    const char *algo;
    int iters;
    double rtt_ms;
    int victim, at, sig;
    const char *json;
} opts_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void usage(void)
{
    fputs("usage: lc-failover agree [--size B] [--codec SPEC] [--iters N] [--rtt-ms R] [--json F]\n"
          "       lc-failover fail --victim R [--signal kill|stop] [--at STEP] [--size B]\n"
          "                        [--codec SPEC] [--algo NAME] [--json F]\n",
          stderr);
    exit(2);
}

static void parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->iters = 10;
    o->at = 5;
    o->victim = -1;
    o->sig = SIGKILL;
    o->rtt_ms = 0.5;
    if (argc < 2) usage();
    o->mode = argv[1];
    o->bytes = strcmp(o->mode, "agree") == 0 ? 64u << 20 : 1u << 20;
    o->codec = strcmp(o->mode, "agree") == 0 ? "onebit" : NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) usage();
        if (strcmp(a, "--size") == 0) o->bytes = bench_parse_size(v);
        else if (strcmp(a, "--codec") == 0) o->codec = strcmp(v, "none") == 0 ? NULL : v;
        else if (strcmp(a, "--algo") == 0) o->algo = v;
        else if (strcmp(a, "--iters") == 0) o->iters = atoi(v);
        else if (strcmp(a, "--rtt-ms") == 0) o->rtt_ms = atof(v);
        else if (strcmp(a, "--victim") == 0) o->victim = atoi(v);
        else if (strcmp(a, "--at") == 0) o->at = atoi(v);
        else if (strcmp(a, "--signal") == 0) o->sig = strcmp(v, "stop") == 0 ? SIGSTOP : SIGKILL;
        else if (strcmp(a, "--json") == 0) o->json = v;
        else usage();
        i++;
    }
    if (strcmp(o->mode, "agree") != 0 && strcmp(o->mode, "fail") != 0) usage();
    if (strcmp(o->mode, "fail") == 0 && o->victim < 0) bench_die("fail: --victim R is required");
}

static lc_op_params_t op_params(const opts_t *o)
{
    lc_op_params_t p = { 0 };
    if (o->codec != NULL) {
        p.field_mask |= LC_OP_PARAM_FIELD_CODEC_SPEC | LC_OP_PARAM_FIELD_TENSOR_KEY;
        p.codec_spec = o->codec;
        p.tensor_key = 1;
    }
    if (o->algo != NULL) {
        static const char *const names[] = { "auto", "ring", "tree", "recdbl", "chain",
                                             "twophase", "pairwise", "sparse" };
        for (int a = 0; a < (int)(sizeof(names) / sizeof(names[0])); a++) {
            if (strcmp(names[a], o->algo) == 0 && strcmp(lc_algo_str((lc_algo_t)a), o->algo) == 0) {
                p.field_mask |= LC_OP_PARAM_FIELD_ALGO;
                p.algo = (lc_algo_t)a;
            }
        }
        if (!(p.field_mask & LC_OP_PARAM_FIELD_ALGO)) bench_die("unknown algorithm %s", o->algo);
    }
    return p;
}

static void agree(const opts_t *o, lc_comm_t *comm, int rank, int size)
{
    size_t n = o->bytes / sizeof(float);
    float *buf = malloc(n * sizeof(float));
    double *plain = calloc((size_t)o->iters, sizeof(double));
    double *with = calloc((size_t)o->iters, sizeof(double));
    double *commit = calloc((size_t)o->iters, sizeof(double));
    lc_op_params_t p = op_params(o);
    int committed;

    if (buf == NULL || plain == NULL || with == NULL || commit == NULL) bench_die("out of memory");
    for (size_t i = 0; i < n; i++) buf[i] = (float)((i * 7 + (size_t)rank) % 13) - 6.0f;
    /* Warm-up: residuals and scratch are faulted in by the first calls. */
    for (int w = 0; w < 3; w++) {
        if (lc_allreduce(buf, buf, n, LC_FLOAT32, LC_SUM, comm, &p) != LC_OK) bench_die("allreduce");
        if (lc_step_commit(comm, &committed) != LC_OK) bench_die("lc_step_commit");
    }
    for (int it = 0; it < o->iters; it++) {
        bench_lc_barrier(comm);
        double t0 = now_ms();
        if (lc_allreduce(buf, buf, n, LC_FLOAT32, LC_SUM, comm, &p) != LC_OK) bench_die("allreduce");
        plain[it] = now_ms() - t0;
        bench_lc_barrier(comm);
        t0 = now_ms();
        if (lc_allreduce(buf, buf, n, LC_FLOAT32, LC_SUM, comm, &p) != LC_OK) bench_die("allreduce");
        double t1 = now_ms();
        if (lc_step_commit(comm, &committed) != LC_OK || !committed) bench_die("step aborted");
        with[it] = now_ms() - t0;
        commit[it] = now_ms() - t1;
    }
    double mp = bench_median(plain, o->iters), mw = bench_median(with, o->iters);
    double mc = bench_median(commit, o->iters), bound = o->rtt_ms + 0.02 * mp;
    if (rank == 0) {
        printf("lc-failover agree: %d ranks, %zu MiB f32, %s, %d pairs of steps\n", size,
               o->bytes >> 20, o->codec ? o->codec : "uncompressed", o->iters);
        printf("  step without lc_step_commit  %9.2f ms (median)\n", mp);
        printf("  step with lc_step_commit     %9.2f ms (median)\n", mw);
        printf("  difference                   %9.2f ms\n", mw - mp);
        printf("  the commit call alone        %9.3f ms (median)\n", mc);
        printf("  bound: 1 RTT + 2%%            %9.2f ms (RTT %.2f ms): %s\n", bound, o->rtt_ms,
               mc <= bound ? "within" : "OVER");
    }
    if (o->json != NULL && rank == 0) {
        FILE *f = fopen(o->json, "a");
        if (f != NULL) {
            fprintf(f,
                    "{\"mode\":\"agree\",\"ranks\":%d,\"bytes\":%zu,\"codec\":\"%s\",\"iters\":%d,"
                    "\"step_ms\":%.3f,\"step_commit_ms\":%.3f,\"commit_ms\":%.4f,"
                    "\"rtt_ms\":%.3f,\"bound_ms\":%.3f}\n",
                    size, o->bytes, o->codec ? o->codec : "none", o->iters, mp, mw, mc, o->rtt_ms,
                    bound);
            fclose(f);
        }
    }
    free(buf);
    free(plain);
    free(with);
    free(commit);
}

static void fail(const opts_t *o, lc_comm_t *comm, int rank, int size)
{
    size_t n = o->bytes / sizeof(float);
    float *buf = malloc(n * sizeof(float));
    lc_op_params_t p = op_params(o);
    char mark[128];
    const char *job = getenv("LC_JOB_ID");
    double t_seen = 0, t_view = 0, t_ok = 0, t_mark = 0;
    int committed, victim_pid = 0;

    if (buf == NULL) bench_die("out of memory");
    snprintf(mark, sizeof(mark), "/dev/shm/lc-failover-%s", job != NULL ? job : "job");
    for (int step = 1; t_ok == 0; step++) {
        for (size_t i = 0; i < n; i++) buf[i] = 1.0f;
        if (rank == o->victim && step == o->at) {
            FILE *f = fopen(mark, "w");
            if (f == NULL) bench_die("%s: cannot write", mark);
            fprintf(f, "%.6f %d\n", now_ms(), (int)getpid());
            fclose(f);
            raise(o->sig);
        }
        lc_status_t st = lc_allreduce(buf, buf, n, LC_FLOAT32, LC_SUM, comm, &p);
        if (st != LC_OK && t_seen == 0) t_seen = now_ms();
        if (lc_step_commit(comm, &committed) != LC_OK) bench_die("lc_step_commit failed");
        if (committed) {
            if (t_view > 0) t_ok = now_ms();
            continue;
        }
        if (t_seen == 0) t_seen = now_ms();
        if (lc_comm_shrink(comm) != LC_OK) bench_die("lc_comm_shrink failed");
        t_view = now_ms();
    }
    FILE *f = fopen(mark, "r");
    if (f == NULL || fscanf(f, "%lf %d", &t_mark, &victim_pid) != 2) bench_die("no mark file");
    fclose(f);
    lc_view_t v;
    lc_comm_view(comm, &v);
    printf("rank %d: %s of rank %d: seen after %.1f ms, new view after %.1f ms, first step "
           "committed after %.1f ms (%d of %d ranks left)\n",
           v.first_rank, o->sig == SIGKILL ? "SIGKILL" : "SIGSTOP", o->victim, t_seen - t_mark,
           t_view - t_mark, t_ok - t_mark, v.size, size);
    if (o->json != NULL) {
        FILE *j = fopen(o->json, "a");
        if (j != NULL) {
            fprintf(j,
                    "{\"mode\":\"fail\",\"signal\":\"%s\",\"ranks\":%d,\"rank\":%d,\"victim\":%d,"
                    "\"algo\":\"%s\",\"codec\":\"%s\",\"bytes\":%zu,\"seen_ms\":%.3f,"
                    "\"view_ms\":%.3f,\"first_ok_ms\":%.3f}\n",
                    o->sig == SIGKILL ? "kill" : "stop", size, v.first_rank, o->victim,
                    o->algo ? o->algo : "auto", o->codec ? o->codec : "none", o->bytes,
                    t_seen - t_mark, t_view - t_mark, t_ok - t_mark);
            fclose(j);
        }
    }
    /* A stopped victim was removed: end it, or the launcher waits forever.
     * The mark file is the caller's to remove (every survivor reads it). */
    if (o->sig == SIGSTOP && v.rank == 0) kill(victim_pid, SIGKILL);
    free(buf);
}

int main(int argc, char **argv)
{
    opts_t o;
    lc_comm_params_t cp = { .field_mask = LC_COMM_PARAM_FIELD_STEPS, .steps = 1 };
    lc_comm_t *comm;
    lc_status_t st;
    int rank, size;

    parse(argc, argv, &o);
#ifdef LC_BENCH_MPI
    if (bench_under_mpirun()) {
        if (strcmp(o.mode, "fail") == 0) bench_die("fail: run under lcrun --keep-going");
        MPI_Init(&argc, &argv);
        setenv("LC_STEPS", "1", 1); /* read when the library first reads its environment */
        st = lc_comm_init_mpi(MPI_COMM_WORLD, NULL, &comm);
    } else
#endif
        st = lc_comm_init(&cp, &comm);
    if (st != LC_OK) bench_die("communicator: %s (run under lcrun or mpirun)", lc_status_str(st));
    lc_comm_rank(comm, &rank);
    lc_comm_size(comm, &size);
    bench_rank = rank;
    if (strcmp(o.mode, "agree") == 0) agree(&o, comm, rank, size);
    else fail(&o, comm, rank, size);
    lc_comm_destroy(comm);
#ifdef LC_BENCH_MPI
    if (bench_under_mpirun()) MPI_Finalize();
#endif
    return 0;
}
