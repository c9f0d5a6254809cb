/*
 * lc-overlap: how much of a non-blocking all-reduce hides behind computation,
 * measured the way OSU's osu_iallreduce does, for Laconic and (under mpirun,
 * --baseline mpi) for Open MPI in the same run.
 *
 *   lcrun -n 4 lc-overlap -b 1M -e 16M                    Laconic only
 *   mpirun -n 4 lc-overlap -b 1M -e 16M --baseline mpi    Laconic and MPI
 *
 * Why: Laconic, like Gloo, runs every collective on a background thread (one
 * progress thread per communicator), so lc_iallreduce() returns at once and
 * the bytes move while the caller computes; lc_wait() then only sleeps until
 * the rest is done. The promise of the non-blocking calls is therefore
 * overlap, and this program measures it directly. Open MPI's non-blocking
 * collectives on TCP, by contrast, progress only inside MPI calls: the
 * "mpi" row (MPI_Iallreduce, compute, MPI_Wait, no calls in between) shows
 * what an application gets without help, and the "mpi+test" row the common
 * work-around of calling MPI_Test between slices of the computation (here
 * every 1/100 of it).
 *
 * Method, per size and implementation (float, sum, out-of-place):
 *  1. t_pure: after warm-up, -n iterations of "start, wait at once"; per
 *     iteration the maximum over ranks (the collective is done when its
 *     slowest rank is), t_pure the median of those maxima, as in lc-bench.
 *  2. Calibration: a dummy computation (real float arithmetic on a small,
 *     L1-resident array, so it neither touches the network buffers nor
 *     competes for memory bandwidth more than a compute kernel would) is
 *     sized so that, run alone, it takes t_pure. A global rate measured at
 *     start gives a first guess; then the computation is timed alone (all
 *     ranks at once, so under the same CPU sharing as in step 3 minus the
 *     collective) and rescaled until it is within 5% of t_pure on every rank (at most 5
 *     tries: on a busy machine it may stay off, and the JSON says by how much).
 *  3. -n iterations of "start, compute, wait". t_overall is start to end
 *     of the wait, t_compute the time the arithmetic actually took in that
 *     iteration (without the MPI_Test calls of mpi+test: time spent driving
 *     MPI is communication the caller paid for, so it counts against overlap;
 *     OSU counts it as compute, which flatters that row). Both are medians
 *     of per-iteration maxima over ranks, as printed. The exposed time
 *     t_exposed is taken per pair instead: per iteration and rank
 *     t_overall - t_compute, per iteration the maximum over ranks, t_exposed
 *     the median of those (so that the difference is never taken between
 *     medians of different iterations or ranks).
 *  4. Two overlap figures:
 *     overlap% (OSU) = 100 - 100 * t_exposed / t_pure: 100 when the
 *       collective adds nothing to the time the computation took, 0 when it
 *       adds all of t_pure. It measures t_compute while the collective runs,
 *       so CPU the progress threads (or anything else) take from the
 *       computation stretches t_compute and counts as compute: it can show
 *       ~100% while t_overall ~ t_compute_alone + t_pure.
 *     strict% = 100 - 100 * (t_overall - t_compute_alone) / t_pure, with
 *       t_compute_alone the calibrated time of the computation alone (step
 *       2): what the caller actually gains over computing, then communicating.
 *       Slowing the computation down counts against it.
 *     The table clamps both to [0, 100]; the JSON has the raw values
 *     (negative when the pair took longer than compute alone + t_pure, above
 *     100 when it was faster than that). t_compute above t_compute_alone
 *     means the collective's threads took CPU from the computation.
 *  The last timed iteration runs on a poisoned output buffer and its result
 *  is checked element by element (inputs are small integers, so the sums are
 *  exact); #wrong is the maximum over ranks. Any error status ends the run.
 *
 * Caveat: on a small machine (e.g. 2 cores running 4 ranks) the computation
 * of every rank competes with the progress threads for the cores, so overlap
 * there is limited by CPU, not by the library: the reduction, the copies and
 * the socket calls have to run somewhere, and every cycle they take is a
 * cycle the computation waits for. Where the wire is the bound (e.g. 1 Gbit/s
 * with 40 ms RTT between hosts) the progress threads mostly sleep in epoll
 * and overlap should be high. Read the figures together with the machine.
 *
 * Output (rank 0): a table (size impl t_pure t_compute t_overall overlap
 * strict #wrong) and, with --json FILE, one line per row appended to FILE:
 *   {"kind":"overlap","scenario":...,"impl":...,"coll":"allreduce","bytes":N,
 *    "nranks":n,"t_pure_us":x,"t_compute_us":x,"t_overall_us":x,
 *    "overlap_pct":x,"wrong":k,"iters":n,"t_compute_alone_us":x,
 *    "t_exposed_us":x,"overlap_strict_pct":x}
 */
#include <laconic.h>
#include "bench_util.h"
#ifdef LC_BENCH_MPI
#include <laconic_mpi.h>
#endif

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OVL_MAX_ITERS 100000
#define OVL_SLICES 100     /* the computation runs in this many slices */
#define OVL_ARRAY 256      /* floats the computation works on (1 KiB, in L1) */
#define OVL_CALIB_TOL 0.05 /* calibrated compute within 5% of t_pure */
#define OVL_CALIB_TRIES 5
#define OVL_CALIB_RUNS 3 /* median of this many runs per calibration try */

typedef struct {
    size_t min_bytes, max_bytes;
    double step_factor;
    int iters, warmup, baseline_mpi;
    const char *json, *scenario;
} opts_t;

/* One implementation under test. */
typedef struct impl impl_t;
struct impl {
    const char *name;
    void (*start)(impl_t *im, const float *s, float *r, size_t count);
    void (*probe)(impl_t *im); /* called between compute slices, or NULL */
    void (*wait)(impl_t *im);
    void (*max_doubles)(impl_t *im, double *v, int n); /* in place, over ranks */
    void (*barrier)(impl_t *im);
    lc_comm_t *comm;
    lc_request_t *req;
#ifdef LC_BENCH_MPI
    MPI_Request mreq;
#endif
};

static int g_rank, g_size;

/* ------------------------------------------------------------ the computation */

static float g_work[OVL_ARRAY];
static volatile float g_sink; /* keeps the arithmetic observable */

/* units passes of a multiply-add over g_work (values converge to 2: no
 * overflow, no denormals). */
static void compute_units(uint64_t units)
{
    for (uint64_t u = 0; u < units; u++)
        for (int i = 0; i < OVL_ARRAY; i++) g_work[i] = g_work[i] * 0.5f + 1.0f;
    g_sink = g_sink + g_work[units % OVL_ARRAY];
}

/* Run units of computation in OVL_SLICES slices, calling im->probe between
 * them when im has one. Returns the time the arithmetic took (us), without
 * the probes. */
static double compute(uint64_t units, impl_t *im)
{
    uint64_t slices = units < OVL_SLICES ? (units ? units : 1) : OVL_SLICES;
    double t_probe = 0, t0 = bench_now_us();
    for (uint64_t k = 0; k < slices; k++) {
        compute_units(units * (k + 1) / slices - units * k / slices);
        if (im && im->probe && k + 1 < slices) {
            double p0 = bench_now_us();
            im->probe(im);
            t_probe += bench_now_us() - p0;
        }
    }
    return bench_now_us() - t0 - t_probe;
}

/* Units per microsecond, measured once at start: double the work until a run
 * takes 20 ms. */
static double compute_rate(void)
{
    for (int i = 0; i < OVL_ARRAY; i++) g_work[i] = (float)(i % 7);
    uint64_t units = 64;
    for (;;) {
        double t = compute(units, NULL);
        if (t >= 20000 || units >= (UINT64_C(1) << 40)) return (double)units / (t > 0 ? t : 1);
        units *= 2;
    }
}

/* Size the computation to take target_us alone; *alone_us gets its time (median of
 * the last try). Collective: every rank computes during the same periods (so the CPU is
 * shared as it will be while overlapping) and all stop when every rank is in tolerance.
 * The rate used to rescale is the mean over all runs of this size, which on a shared
 * machine converges where rescaling from the last (noisy) run alone would wander. */
static uint64_t calibrate(impl_t *im, double *rate, double target_us, double *alone_us)
{
    double runs[OVL_CALIB_RUNS], t = 0, sum_t = 0, sum_units = 0;
    uint64_t units = (uint64_t)fmax(1.0, target_us * *rate);
    for (int tries = 0; tries < OVL_CALIB_TRIES; tries++) {
        for (int k = 0; k < OVL_CALIB_RUNS; k++) {
            runs[k] = compute(units, NULL);
            sum_t += runs[k];
            sum_units += (double)units;
        }
        t = bench_median(runs, OVL_CALIB_RUNS);
        double err = target_us > 0 ? fabs(t - target_us) / target_us : 0;
        im->max_doubles(im, &err, 1);
        if (err <= OVL_CALIB_TOL) break;
        if (sum_t > 0) *rate = sum_units / sum_t;
        units = (uint64_t)fmax(1.0, target_us * *rate);
    }
    *alone_us = t;
    return units;
}

/* ------------------------------------------------------------ Laconic */

static void lc_start(impl_t *im, const float *s, float *r, size_t count)
{
    lc_status_t st = lc_iallreduce(s, r, count, LC_FLOAT32, LC_SUM, im->comm, NULL, &im->req);
    if (st != LC_OK) bench_die("lc_iallreduce: %s", lc_status_str(st));
}

static void lc_wait_req(impl_t *im)
{
    lc_status_t st = lc_wait(im->req, NULL);
    lc_request_free(im->req);
    im->req = NULL;
    if (st != LC_OK) bench_die("lc_wait(allreduce): %s", lc_status_str(st));
}

static void lc_max_doubles(impl_t *im, double *v, int n)
{
    bench_lc_max(im->comm, v, n);
}

static void lc_bar(impl_t *im)
{
    bench_lc_barrier(im->comm);
}

/* ------------------------------------------------------------ MPI baseline */
#ifdef LC_BENCH_MPI
static void mpi_start(impl_t *im, const float *s, float *r, size_t count)
{
    if (count > INT32_MAX) bench_die("MPI count %zu too large", count);
    int rc = MPI_Iallreduce(s, r, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &im->mreq);
    if (rc != MPI_SUCCESS) bench_die("MPI_Iallreduce failed (%d)", rc);
}

static void mpi_probe(impl_t *im)
{
    int flag = 0, rc = MPI_Test(&im->mreq, &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) bench_die("MPI_Test failed (%d)", rc);
}

static void mpi_wait_req(impl_t *im)
{
    int rc = MPI_Wait(&im->mreq, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) bench_die("MPI_Wait failed (%d)", rc);
}

static void mpi_max_doubles(impl_t *im, double *v, int n)
{
    (void)im;
    bench_mpi_max(v, n);
}

static void mpi_bar(impl_t *im)
{
    (void)im;
    bench_mpi_barrier();
}
#endif

/* ------------------------------------------------------------ data and checking */

/* Input element i of rank r: small integers, so sums over ranks are exact. */
static float input_value(size_t i, int r)
{
    return (float)((int)((i * 7 + (size_t)r * 13) % 61) - 30);
}

static size_t check(const float *r, size_t count)
{
    size_t wrong = 0;
    for (size_t i = 0; i < count; i++) {
        float want = 0;
        for (int k = 0; k < g_size; k++) want += input_value(i, k);
        if (r[i] != want) wrong++;
    }
    return wrong;
}

/* ------------------------------------------------------------ driver */

static void usage(void)
{
    puts(
        "usage: lc-overlap [options]   (under lcrun, or mpirun for --baseline mpi)\n"
        "Compute/communication overlap of a non-blocking all-reduce (float, sum), OSU-style:\n"
        "t_pure is start+wait alone; then each iteration starts the all-reduce, computes for\n"
        "t_pure (calibrated), and waits. Two figures:\n"
        "  overlap% (OSU) = 100 - 100 t_exposed / t_pure, t_exposed the median over iterations of\n"
        "    the max over ranks of t_overall - t_compute (t_compute measured during the\n"
        "    collective: CPU taken from the computation counts as compute);\n"
        "  strict% = 100 - 100 (t_overall - t_compute_alone) / t_pure, t_compute_alone the\n"
        "    calibrated compute time measured alone (slowing the computation down counts).\n"
        "The table clamps both to [0, 100]; the JSON has the raw values.\n"
        "  -b, --minbytes SIZE     smallest message (default 1M; K/M/G suffixes)\n"
        "  -e, --maxbytes SIZE     largest message (default 16M)\n"
        "  -f, --stepfactor F      multiply the size by F each step (default 2)\n"
        "  -n, --iters N           timed iterations per phase and size (default 10)\n"
        "  -w, --warmup_iters N    untimed iterations first (default 2)\n"
        "      --baseline mpi      also time MPI_Iallreduce, without and with MPI_Test\n"
        "                          between compute slices (under mpirun)\n"
        "      --scenario NAME     label written into the JSON lines (e.g. the network)\n"
        "      --json FILE         append one JSON object per result row (rank 0)");
}

static void parse(int argc, char **argv, opts_t *o)
{
    enum { O_BASE = 256, O_JSON, O_SCEN };
    static const struct option lo[] = {
        { "minbytes", 1, 0, 'b' },     { "maxbytes", 1, 0, 'e' },
        { "stepfactor", 1, 0, 'f' },   { "iters", 1, 0, 'n' },
        { "warmup_iters", 1, 0, 'w' }, { "baseline", 1, 0, O_BASE },
        { "json", 1, 0, O_JSON },      { "scenario", 1, 0, O_SCEN },
        { "help", 0, 0, 'h' },         { 0, 0, 0, 0 },
    };
    int c;
    memset(o, 0, sizeof(*o));
    o->min_bytes = 1u << 20;
    o->max_bytes = 16u << 20;
    o->step_factor = 2;
    o->iters = 10;
    o->warmup = 2;
    while ((c = getopt_long(argc, argv, "b:e:f:n:w:h", lo, NULL)) != -1) {
        switch (c) {
        case 'b': o->min_bytes = bench_parse_size(optarg); break;
        case 'e': o->max_bytes = bench_parse_size(optarg); break;
        case 'f': o->step_factor = atof(optarg); break;
        case 'n': o->iters = atoi(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case O_BASE:
            if (strcmp(optarg, "mpi") != 0) bench_die("--baseline: only 'mpi' is built in");
            o->baseline_mpi = 1;
            break;
        case O_JSON: o->json = optarg; break;
        case O_SCEN: o->scenario = optarg; break;
        case 'h': usage(); exit(0);
        default: usage(); exit(2);
        }
    }
    if (optind < argc) bench_die("unexpected argument '%s' (see --help)", argv[optind]);
    if (o->iters < 1 || o->iters > OVL_MAX_ITERS) bench_die("-n must be in [1, %d]", OVL_MAX_ITERS);
    if (o->warmup < 0) bench_die("-w must be >= 0");
    if (o->step_factor <= 1) bench_die("-f must be > 1");
    if (o->min_bytes < sizeof(float)) o->min_bytes = sizeof(float);
    if (o->min_bytes > o->max_bytes) bench_die("-b must not exceed -e");
}

/* Measure one size with one implementation and print its row on rank 0. */
/* times: room for 3 * o->iters + 2 doubles. */
static void overlap_one(impl_t *im, const opts_t *o, const float *s, float *r, size_t bytes,
                        double *rate, double *times, FILE *json)
{
    size_t count = bytes / sizeof(float);
    int n = o->iters;
    double *tcomp = times + n, *texp = times + 2 * n, *v = times + 3 * n;
    double t_pure, t_overall, t_compute, t_exposed, alone;

    /* 1. the collective alone */
    im->barrier(im);
    for (int k = 0; k < o->warmup; k++) {
        im->start(im, s, r, count);
        im->wait(im);
    }
    im->barrier(im);
    for (int k = 0; k < o->iters; k++) {
        double t0 = bench_now_us();
        im->start(im, s, r, count);
        im->wait(im);
        times[k] = bench_now_us() - t0;
    }
    im->max_doubles(im, times, o->iters);
    t_pure = bench_median(times, o->iters);

    /* 2. a computation of the same length (all ranks calibrate together) */
    im->barrier(im);
    uint64_t units = calibrate(im, rate, t_pure, &alone);

    /* 3. the collective behind the computation; the last iteration is checked */
    im->barrier(im);
    for (int k = 0; k < o->iters; k++) {
        if (k == o->iters - 1) memset(r, 0xa5, bytes); /* outside the timed region */
        double t0 = bench_now_us();
        im->start(im, s, r, count);
        tcomp[k] = compute(units, im);
        im->wait(im);
        times[k] = bench_now_us() - t0;
        texp[k] = times[k] - tcomp[k]; /* this rank's pair, before any maximum */
    }
    size_t wrong = check(r, count);
    v[0] = (double)wrong;
    v[1] = alone;
    im->max_doubles(im, times, 3 * n + 2); /* times, tcomp, texp, v: one call */
    t_overall = bench_median(times, n);
    t_compute = bench_median(tcomp, n);
    t_exposed = bench_median(texp, n);
    wrong = (size_t)v[0];
    alone = v[1];

    if (g_rank != 0) return;
    double ovl = t_pure > 0 ? 100.0 - 100.0 * t_exposed / t_pure : 0;
    double strict = t_pure > 0 ? 100.0 - 100.0 * (t_overall - alone) / t_pure : 0;
    double shown = ovl < 0 ? 0 : ovl > 100 ? 100 : ovl;
    double shown_strict = strict < 0 ? 0 : strict > 100 ? 100 : strict;
    printf("%12zu %9s %12.1f %13.1f %13.1f %11.1f %10.1f %7zu\n", bytes, im->name, t_pure,
           t_compute, t_overall, shown, shown_strict, wrong);
    fflush(stdout);
    if (json != NULL) {
        fputs("{\"kind\":\"overlap\",\"scenario\":", json);
        bench_json_str(json, o->scenario);
        fprintf(json,
                ",\"impl\":\"%s\",\"coll\":\"allreduce\","
                "\"bytes\":%zu,\"nranks\":%d,\"t_pure_us\":%.3f,\"t_compute_us\":%.3f,"
                "\"t_overall_us\":%.3f,\"overlap_pct\":%.3f,\"wrong\":%zu,\"iters\":%d,"
                "\"t_compute_alone_us\":%.3f,\"t_exposed_us\":%.3f,\"overlap_strict_pct\":%.3f}\n",
                im->name, bytes, g_size, t_pure, t_compute, t_overall, ovl, wrong, o->iters, alone,
                t_exposed, strict);
        fflush(json);
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    impl_t impls[3];
    int nimpl = 1;
    lc_status_t st;
    FILE *json = NULL;

    bench_prog = "lc-overlap";
    parse(argc, argv, &o);
    memset(impls, 0, sizeof(impls));
    impls[0] = (impl_t){ .name = "lc",
                         .start = lc_start,
                         .wait = lc_wait_req,
                         .max_doubles = lc_max_doubles,
                         .barrier = lc_bar };
    int mpi_inited = 0;
    if (o.baseline_mpi) {
#ifdef LC_BENCH_MPI
        MPI_Init(&argc, &argv);
        st = lc_comm_init_mpi(MPI_COMM_WORLD, NULL, &impls[0].comm);
        impls[1] = (impl_t){ .name = "mpi",
                             .start = mpi_start,
                             .wait = mpi_wait_req,
                             .max_doubles = mpi_max_doubles,
                             .barrier = mpi_bar };
        impls[2] = impls[1];
        impls[2].name = "mpi+test";
        impls[2].probe = mpi_probe;
        nimpl = 3;
#else
        bench_die("--baseline mpi: lc-overlap was built without MPI (configure with "
                  "-DLC_WITH_MPI=ON and an MPI installed)");
#endif
    } else {
#ifdef LC_BENCH_MPI
        if (bench_under_mpirun()) { /* MPI bootstraps Laconic, not a baseline */
            MPI_Init(&argc, &argv);
            st = lc_comm_init_mpi(MPI_COMM_WORLD, NULL, &impls[0].comm);
            mpi_inited = 1;
        } else
#endif
            st = lc_comm_init(NULL, &impls[0].comm);
    }
    if (st != LC_OK) bench_die("communicator: %s (run under lcrun or mpirun)", lc_status_str(st));
    lc_comm_rank(impls[0].comm, &g_rank);
    bench_rank = g_rank;
    lc_comm_size(impls[0].comm, &g_size);

    size_t max_count = o.max_bytes / sizeof(float);
    float *sbuf = malloc(max_count * sizeof(float)), *rbuf = malloc(max_count * sizeof(float));
    double *times = malloc(sizeof(double) * (3 * (size_t)o.iters + 2));
    if (!sbuf || !rbuf || !times)
        bench_die("cannot allocate %zu bytes", 2 * max_count * sizeof(float));
    for (size_t i = 0; i < max_count; i++) sbuf[i] = input_value(i, g_rank);
    if (g_rank == 0 && o.json && (json = fopen(o.json, "a")) == NULL)
        bench_die("cannot open %s: %s", o.json, strerror(errno));

    impls[0].barrier(&impls[0]); /* measure the compute rate with every rank busy */
    double rate = compute_rate();
    if (g_rank == 0) {
        printf("# lc-overlap: allreduce, float, sum, %d ranks, %d iterations (+%d warm-up) per "
               "phase; median of per-iteration max over ranks%s%s\n",
               g_size, o.iters, o.warmup, o.scenario ? "; scenario " : "",
               o.scenario ? o.scenario : "");
        printf("# compute: %.1f passes/us over %d floats, in %d slices (mpi+test: MPI_Test "
               "between slices)\n",
               rate, OVL_ARRAY, OVL_SLICES);
        printf("# overlap (OSU): 100 - 100 t_exposed / t_pure, t_exposed = median of per-iteration "
               "max over ranks of t_overall - t_compute; strict: 100 - 100 (t_overall - "
               "t_compute_alone) / t_pure\n");
        printf("# %10s %9s %12s %13s %13s %11s %10s %7s\n", "size", "impl", "t_pure(us)",
               "t_compute(us)", "t_overall(us)", "overlap(%)", "strict(%)", "#wrong");
    }
    int step = 0;
    for (size_t bytes = o.min_bytes; bytes <= o.max_bytes; step++) {
        size_t b = bytes / sizeof(float) * sizeof(float);
        for (int k = 0; k < nimpl; k++) /* rotate who goes first */
            overlap_one(&impls[(k + step) % nimpl], &o, sbuf, rbuf, b, &rate, times, json);
        size_t next = (size_t)((double)bytes * o.step_factor);
        if (next <= bytes) next = bytes + 1;
        bytes = next;
    }
    if (json) fclose(json);
    free(sbuf);
    free(rbuf);
    free(times);
    lc_comm_destroy(impls[0].comm);
#ifdef LC_BENCH_MPI
    if (o.baseline_mpi || mpi_inited) MPI_Finalize();
#endif
    return 0;
}
