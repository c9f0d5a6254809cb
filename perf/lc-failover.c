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
 * is theirs; the mark file is in /dev/shm). With --signal none the victim
 * raises nothing: the caller cuts it off (ip link set down in its network
 * namespace) and writes the mark file (LC_FAILOVER_MARK: "ms pid", ms of
 * CLOCK_MONOTONIC); the ranks step until then, and the victim exits 0 once
 * it sees the failure.
 *
 * starve: a rank that is alive but starved is not removed. Every rank runs
 * --steps steps of a small all-reduce and lc_step_commit, with --seconds of
 * busy computation (wall clock) between them; rank --victim (default the
 * last) first lowers itself and its threads to nice 19. Prints whether any
 * step aborted or the view changed (a false removal).
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
    double seconds;
    int steps;
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
          "       lc-failover fail --victim R [--signal kill|stop|none] [--at STEP] [--size B]\n"
          "                        [--codec SPEC] [--algo NAME] [--json F]\n"
          "       lc-failover starve [--victim R] [--seconds S] [--steps N] [--json F]\n",
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
    o->seconds = 10;
    o->steps = 2;
    if (argc < 2) usage();
    o->mode = argv[1];
    o->bytes = strcmp(o->mode, "agree") == 0 ? 64u << 20 : 1u << 20;
    o->codec = strcmp(o->mode, "agree") == 0 ? "onebit" : NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) usage();
        if (strcmp(a, "--size") == 0)
            o->bytes = bench_parse_size(v);
        else if (strcmp(a, "--codec") == 0)
            o->codec = strcmp(v, "none") == 0 ? NULL : v;
        else if (strcmp(a, "--algo") == 0)
            o->algo = v;
        else if (strcmp(a, "--iters") == 0)
            o->iters = atoi(v);
        else if (strcmp(a, "--rtt-ms") == 0)
            o->rtt_ms = atof(v);
        else if (strcmp(a, "--victim") == 0)
            o->victim = atoi(v);
        else if (strcmp(a, "--at") == 0)
            o->at = atoi(v);
        else if (strcmp(a, "--signal") == 0)
            o->sig = strcmp(v, "stop") == 0 ? SIGSTOP : strcmp(v, "none") == 0 ? 0 : SIGKILL;
        else if (strcmp(a, "--json") == 0)
            o->json = v;
        else if (strcmp(a, "--seconds") == 0)
            o->seconds = atof(v);
        else if (strcmp(a, "--steps") == 0)
            o->steps = atoi(v);
        else
            usage();
        i++;
    }
    if (strcmp(o->mode, "agree") != 0 && strcmp(o->mode, "fail") != 0 &&
        strcmp(o->mode, "starve") != 0)
        usage();
    if (strcmp(o->mode, "fail") == 0 && o->victim < 0) bench_die("fail: --victim R is required");
    if (strcmp(o->mode, "starve") == 0 && o->seconds < 0) bench_die("starve: --seconds >= 0");
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
        static const char *const names[] = { "auto",  "ring",     "tree",     "recdbl",
                                             "chain", "twophase", "pairwise", "sparse" };
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
    double *a_end = calloc((size_t)o->iters, sizeof(double));
    double *c_end = calloc((size_t)o->iters, sizeof(double));
    lc_op_params_t p = op_params(o);
    int committed;

    if (buf == NULL || plain == NULL || with == NULL || commit == NULL || a_end == NULL ||
        c_end == NULL)
        bench_die("out of memory");
    for (size_t i = 0; i < n; i++) buf[i] = (float)((i * 7 + (size_t)rank) % 13) - 6.0f;
    /* Warm-up: residuals and scratch are faulted in by the first calls. */
    for (int w = 0; w < 3; w++) {
        if (lc_allreduce(buf, buf, n, LC_FLOAT32, LC_SUM, comm, &p) != LC_OK)
            bench_die("allreduce");
        if (lc_step_commit(comm, &committed) != LC_OK) bench_die("lc_step_commit");
    }
    for (int it = 0; it < o->iters; it++) {
        bench_lc_barrier(comm);
        double t0 = now_ms();
        if (lc_allreduce(buf, buf, n, LC_FLOAT32, LC_SUM, comm, &p) != LC_OK)
            bench_die("allreduce");
        plain[it] = now_ms() - t0;
        bench_lc_barrier(comm);
        t0 = now_ms();
        if (lc_allreduce(buf, buf, n, LC_FLOAT32, LC_SUM, comm, &p) != LC_OK)
            bench_die("allreduce");
        double t1 = now_ms();
        if (lc_step_commit(comm, &committed) != LC_OK || !committed) bench_die("step aborted");
        double t2 = now_ms();
        with[it] = t2 - t0;
        commit[it] = t2 - t1;
        a_end[it] = t1; /* CLOCK_MONOTONIC: one clock for every rank of one host */
        c_end[it] = t2;
    }
    /* A step ends when its last rank is done: the slowest rank's time,
     * for both kinds (the commit waits for the last vote, so one rank's
     * own time would charge it the ranks' skew). The commit call alone is
     * the fastest rank's: the last one to vote, which waits for nobody
     * but the message delay. */
    bench_lc_max(comm, plain, o->iters);
    bench_lc_max(comm, with, o->iters);
    for (int it = 0; it < o->iters; it++) commit[it] = -commit[it];
    bench_lc_max(comm, commit, o->iters);
    for (int it = 0; it < o->iters; it++) commit[it] = -commit[it];
    /* What the agreement adds to a step: from the moment the last rank
     * finished the all-reduce to the moment the last rank has the outcome
     * (the ranks share one clock on one host, namespaces included). */
    bench_lc_max(comm, a_end, o->iters);
    bench_lc_max(comm, c_end, o->iters);
    for (int it = 0; it < o->iters; it++) c_end[it] -= a_end[it];
    if (rank == 0 && getenv("LC_FAILOVER_VERBOSE") != NULL)
        for (int it = 0; it < o->iters; it++)
            printf("  pair %2d: without %8.2f ms, with %8.2f ms, last commit after last "
                   "all-reduce %6.3f ms\n",
                   it, plain[it], with[it], c_end[it]);
    double mp = bench_median(plain, o->iters), mw = bench_median(with, o->iters);
    double mc = bench_median(commit, o->iters), bound = o->rtt_ms + 0.02 * mp;
    double added = bench_median(c_end, o->iters);
    if (rank == 0) {
        printf("lc-failover agree: %d ranks, %zu MiB f32, %s, %d pairs of steps\n", size,
               o->bytes >> 20, o->codec ? o->codec : "uncompressed", o->iters);
        printf("  step without lc_step_commit  %9.2f ms (median of the slowest rank's)\n", mp);
        printf("  step with lc_step_commit     %9.2f ms (median of the slowest rank's)\n", mw);
        printf("  difference                   %9.2f ms\n", mw - mp);
        printf("  the commit call alone        %9.3f ms (median of the fastest rank's)\n", mc);
        printf(
            "  added to the step            %9.3f ms (median: the last rank's outcome after the\n"
            "                                         last rank's all-reduce)\n",
            added);
        printf("  bound: 1 RTT + 2%%            %9.2f ms (RTT %.2f ms): what it adds is %s\n",
               bound, o->rtt_ms, added <= bound ? "within" : "OVER");
        printf("  (the difference of the two medians is step-to-step noise on this machine:\n"
               "   steps vary by tens of ms, the agreement by tenths)\n");
    }
    if (o->json != NULL && rank == 0) {
        FILE *f = fopen(o->json, "a");
        if (f != NULL) {
            fprintf(f,
                    "{\"mode\":\"agree\",\"ranks\":%d,\"bytes\":%zu,\"codec\":\"%s\",\"iters\":%d,"
                    "\"step_ms\":%.3f,\"step_commit_ms\":%.3f,\"commit_ms\":%.4f,"
                    "\"added_ms\":%.4f,\"rtt_ms\":%.3f,\"bound_ms\":%.3f}\n",
                    size, o->bytes, o->codec ? o->codec : "none", o->iters, mp, mw, mc, added,
                    o->rtt_ms, bound);
            fclose(f);
        }
    }
    free(buf);
    free(plain);
    free(with);
    free(commit);
    free(a_end);
    free(c_end);
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
    if (getenv("LC_FAILOVER_MARK") != NULL)
        snprintf(mark, sizeof(mark), "%s", getenv("LC_FAILOVER_MARK"));
    for (int step = 1; t_ok == 0; step++) {
        for (size_t i = 0; i < n; i++) buf[i] = 1.0f;
        if (o->sig == 0 && rank == o->victim && t_seen > 0) {
            printf("rank %d: cut off after step %d; leaving\n", rank, step);
            free(buf);
            return;
        }
        if (o->sig != 0 && rank == o->victim && step == o->at) {
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
        if (o->sig == 0 && rank == o->victim) continue; /* it leaves at the top */
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
           v.first_rank,
           o->sig == SIGKILL ? "SIGKILL"
           : o->sig          ? "SIGSTOP"
                             : "link cut",
           o->victim, t_seen - t_mark, t_view - t_mark, t_ok - t_mark, v.size, size);
    if (o->json != NULL) {
        FILE *j = fopen(o->json, "a");
        if (j != NULL) {
            fprintf(j,
                    "{\"mode\":\"fail\",\"signal\":\"%s\",\"ranks\":%d,\"rank\":%d,\"victim\":%d,"
                    "\"algo\":\"%s\",\"codec\":\"%s\",\"bytes\":%zu,\"seen_ms\":%.3f,"
                    "\"view_ms\":%.3f,\"first_ok_ms\":%.3f}\n",
                    o->sig == SIGKILL ? "kill"
                    : o->sig          ? "stop"
                                      : "linkdown",
                    size, v.first_rank, o->victim, o->algo ? o->algo : "auto",
                    o->codec ? o->codec : "none", o->bytes, t_seen - t_mark, t_view - t_mark,
                    t_ok - t_mark);
            fclose(j);
        }
    }
    /* A stopped victim was removed: end it, or the launcher waits forever.
     * The mark file is the caller's to remove (every survivor reads it). */
    if (o->sig == SIGSTOP && v.rank == 0) kill(victim_pid, SIGKILL);
    free(buf);
}

static void starve(const opts_t *o, lc_comm_t *comm, int rank, int size)
{
    float x[256];
    volatile double sink = 0;
    int committed, aborted = 0;
    lc_view_t v;

    for (int step = 0; step < o->steps; step++) {
        double end = now_ms() + o->seconds * 1e3;
        while (now_ms() < end) /* the user's computation, not the library's */
            for (int i = 0; i < 100000; i++) sink += (double)i * 1e-9;
        for (int i = 0; i < 256; i++) x[i] = 1.0f;
        lc_status_t st = lc_allreduce(x, x, 256, LC_FLOAT32, LC_SUM, comm, NULL);
        if (lc_step_commit(comm, &committed) != LC_OK || !committed || st != LC_OK) aborted++;
    }
    lc_comm_view(comm, &v);
    int removed = aborted > 0 || v.epoch != 0 || v.size != size;
    printf("rank %d%s: %d steps, %d aborted, view %u with %d ranks: %s\n", rank,
           rank == o->victim ? " (nice 19)" : "", o->steps, aborted, v.epoch, v.size,
           removed ? "FALSE REMOVAL" : "nobody removed");
    if (o->json != NULL) {
        FILE *j = fopen(o->json, "a");
        if (j != NULL) {
            fprintf(j,
                    "{\"mode\":\"starve\",\"ranks\":%d,\"rank\":%d,\"starved\":%d,"
                    "\"seconds\":%.1f,\"steps\":%d,\"aborted\":%d,\"epoch\":%u,\"removed\":%d}\n",
                    size, rank, rank == o->victim, o->seconds, o->steps, aborted, v.epoch, removed);
            fclose(j);
        }
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    lc_comm_params_t cp = { .field_mask = LC_COMM_PARAM_FIELD_STEPS, .steps = 1 };
    lc_comm_t *comm;
    lc_status_t st;
    int rank, size;

    parse(argc, argv, &o);
    if (strcmp(o.mode, "starve") == 0) {
        /* Before the library's threads exist: they inherit it. */
        const char *r = getenv("LC_RANK"), *n = getenv("LC_WORLD_SIZE");
        if (o.victim < 0 && n != NULL) o.victim = atoi(n) - 1;
        if (r != NULL && atoi(r) == o.victim && nice(19) < 0) bench_die("nice");
    }
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
    if (strcmp(o.mode, "agree") == 0)
        agree(&o, comm, rank, size);
    else if (strcmp(o.mode, "starve") == 0)
        starve(&o, comm, rank, size);
    else
        fail(&o, comm, rank, size);
    lc_comm_destroy(comm);
#ifdef LC_BENCH_MPI
    if (bench_under_mpirun()) MPI_Finalize();
#endif
    return 0;
}
