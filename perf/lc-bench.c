/*
 * lc-bench: nccl-tests-style microbenchmark of Laconic's collectives, with
 * Open MPI's as the baseline in the same run.
 *
 *   lcrun -n 4 lc-bench -b 8 -e 256M -f 4                 Laconic only
 *   mpirun -n 4 lc-bench -b 8 -e 256M --baseline mpi      Laconic and MPI
 *
 * Under mpirun with --baseline mpi both implementations run in the same
 * processes, over the same loopback, size by size and back to back (the
 * order alternates per size), so their ratio is measured under the same
 * machine load; Laconic is then bootstrapped with lc_comm_init_mpi().
 *
 * Timing: after a barrier, each rank runs warm-up iterations and then -n
 * timed iterations back to back, recording the duration of each. Per
 * iteration the maximum over ranks is taken (the collective is done when
 * its slowest rank is), and the reported time is the median of those
 * maxima: robust to a noisy shared machine. algbw = size / time; busbw
 * applies nccl-tests' factors (all-reduce 2(n-1)/n, all-gather and
 * reduce-scatter (n-1)/n, broadcast 1) to the uncompressed size, so it is
 * goodput. After timing, -c 1 runs one more call on fresh input and checks
 * every element against the exact expected value (inputs are small integers,
 * exact in every datatype), printing #wrong and the largest relative error.
 *
 * Columns: size count type redop algo time(us) algbw busbw #wrong relerr
 * wire_B ratio, plus peak RSS; --json FILE appends one JSON object per row.
 */
#include <laconic.h>
#ifdef LC_BENCH_MPI
#include <laconic_mpi.h>
#endif

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_ITERS 100000

typedef enum {
    COLL_ALLREDUCE,
    COLL_BROADCAST,
    COLL_ALLGATHER,
    COLL_REDUCE_SCATTER,
    COLL_BARRIER
} coll_t;
static const char *const coll_names[] = { "allreduce", "broadcast", "allgather", "reduce_scatter",
                                          "barrier" };

typedef struct {
    const char *name; /* nccl-tests name */
    lc_dtype_t lc;
    size_t size;
    double tol; /* relative tolerance for avg (the only inexact op on these inputs) */
} dtype_info_t;

static const dtype_info_t dtypes[] = {
    { "float", LC_FLOAT32, 4, 1e-6 },     { "half", LC_FLOAT16, 2, 1e-3 },
    { "bfloat16", LC_BFLOAT16, 2, 8e-3 }, { "double", LC_FLOAT64, 8, 1e-14 },
    { "int32", LC_INT32, 4, 0 },          { "int64", LC_INT64, 8, 0 },
    { "uint8", LC_UINT8, 1, 0 },
};
static const char *const op_names[] = { "sum", "avg", "max", "min", "prod" };

typedef struct {
    size_t min_bytes, max_bytes;
    double step_factor;
    size_t step_bytes;
    int iters, warmup, check, inplace, root, nonblocking;
    const dtype_info_t *dt;
    lc_op_t op;
    coll_t coll;
    lc_algo_t algo;
    size_t chunk_bytes;
    int baseline_mpi;
    const char *json;
} opts_t;

/* One implementation under test: Laconic or the MPI baseline. */
typedef struct impl impl_t;
struct impl {
    const char *name;
    int (*run)(impl_t *im, const opts_t *o, const void *s, void *r, size_t count);
    int (*max_doubles)(impl_t *im, double *v, int n); /* in place, over ranks */
    int (*barrier)(impl_t *im);
    lc_comm_t *comm;
    lc_op_info_t last; /* Laconic: what the last non-blocking call did */
    int has_info;
    int want_info; /* make the next call non-blocking, for its lc_op_info_t */
};

static int g_rank, g_size;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lc-bench[%d]: ", g_rank);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* ------------------------------------------------------------ Laconic */

static int lc_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    lc_op_params_t p = { 0 };
    lc_request_t *req = NULL;
    lc_status_t st;

    if (o->algo != LC_ALGO_AUTO) {
        p.field_mask |= LC_OP_PARAM_FIELD_ALGO;
        p.algo = o->algo;
    }
    if (o->chunk_bytes) {
        p.field_mask |= LC_OP_PARAM_FIELD_CHUNK_BYTES;
        p.chunk_bytes = o->chunk_bytes;
    }
    if (!o->nonblocking && !im->want_info) {
        switch (o->coll) {
        case COLL_ALLREDUCE: st = lc_allreduce(s, r, count, o->dt->lc, o->op, im->comm, &p); break;
        case COLL_BROADCAST: st = lc_broadcast(r, count, o->dt->lc, o->root, im->comm, &p); break;
        case COLL_ALLGATHER: st = lc_allgather(s, r, count, o->dt->lc, im->comm, &p); break;
        case COLL_REDUCE_SCATTER:
            st = lc_reduce_scatter(s, r, count, o->dt->lc, o->op, im->comm, &p);
            break;
        default: st = lc_barrier(im->comm); break;
        }
        if (st != LC_OK) die("%s: %s", coll_names[o->coll], lc_status_str(st));
        return 0;
    }
    /* The non-blocking form: lc_wait() reports what the call did. */
    switch (o->coll) {
    case COLL_ALLREDUCE:
        st = lc_iallreduce(s, r, count, o->dt->lc, o->op, im->comm, &p, &req);
        break;
    case COLL_BROADCAST:
        st = lc_ibroadcast(r, count, o->dt->lc, o->root, im->comm, &p, &req);
        break;
    case COLL_ALLGATHER: st = lc_iallgather(s, r, count, o->dt->lc, im->comm, &p, &req); break;
    case COLL_REDUCE_SCATTER:
        st = lc_ireduce_scatter(s, r, count, o->dt->lc, o->op, im->comm, &p, &req);
        break;
    default: st = lc_ibarrier(im->comm, &req); break;
    }
    if (st != LC_OK) die("%s: %s", coll_names[o->coll], lc_status_str(st));
    st = lc_wait(req, &im->last);
    lc_request_free(req);
    if (st != LC_OK) die("%s: %s", coll_names[o->coll], lc_status_str(st));
    im->has_info = 1;
    return 0;
}

static int lc_max_doubles(impl_t *im, double *v, int n)
{
    lc_status_t st = lc_allreduce(v, v, (size_t)n, LC_FLOAT64, LC_MAX, im->comm, NULL);
    if (st != LC_OK) die("allreduce of timings: %s", lc_status_str(st));
    return 0;
}

static int lc_bar(impl_t *im)
{
    lc_status_t st = lc_barrier(im->comm);
    if (st != LC_OK) die("barrier: %s", lc_status_str(st));
    return 0;
}

/* ------------------------------------------------------------ MPI baseline */
#ifdef LC_BENCH_MPI
static MPI_Datatype mpi_dtype(lc_dtype_t d)
{
    switch (d) {
    case LC_FLOAT32: return MPI_FLOAT;
    case LC_FLOAT64: return MPI_DOUBLE;
    case LC_INT32: return MPI_INT32_T;
    case LC_INT64: return MPI_INT64_T;
    case LC_UINT8: return MPI_UINT8_T;
    default: return MPI_DATATYPE_NULL; /* MPI has no half or bfloat16 */
    }
}

static MPI_Op mpi_op(lc_op_t op)
{
    switch (op) {
    case LC_SUM: return MPI_SUM;
    case LC_MAX: return MPI_MAX;
    case LC_MIN: return MPI_MIN;
    case LC_PROD: return MPI_PROD;
    default: return MPI_OP_NULL; /* MPI has no average */
    }
}

static int mpi_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    MPI_Datatype dt = mpi_dtype(o->dt->lc);
    int n = (int)count, rc;
    const void *sb = o->inplace ? MPI_IN_PLACE : s;
    (void)im;
    switch (o->coll) {
    case COLL_ALLREDUCE: rc = MPI_Allreduce(sb, r, n, dt, mpi_op(o->op), MPI_COMM_WORLD); break;
    case COLL_BROADCAST: rc = MPI_Bcast(r, n, dt, o->root, MPI_COMM_WORLD); break;
    case COLL_ALLGATHER:
        /* In place: this rank's block already sits in r (s points into it). */
        rc = MPI_Allgather(sb, n, dt, r, n, dt, MPI_COMM_WORLD);
        break;
    case COLL_REDUCE_SCATTER:
        rc = MPI_Reduce_scatter_block(sb, r, n, dt, mpi_op(o->op), MPI_COMM_WORLD);
        break;
    default: rc = MPI_Barrier(MPI_COMM_WORLD); break;
    }
    if (rc != MPI_SUCCESS) die("MPI %s failed (%d)", coll_names[o->coll], rc);
    return 0;
}

static int mpi_max_doubles(impl_t *im, double *v, int n)
{
    (void)im;
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return 0;
}

static int mpi_bar(impl_t *im)
{
    (void)im;
    MPI_Barrier(MPI_COMM_WORLD);
    return 0;
}
#endif

/* ------------------------------------------------------------ data and checking */

/* Input element i of rank r: small integers, exact in every datatype, whose
 * sums over up to 64 ranks stay exact too. */
static double input_value(const opts_t *o, size_t i, int r)
{
    if (o->op == LC_PROD) return ((i + (size_t)r) % (size_t)(g_size + 1)) == 0 ? 2.0 : 1.0;
    /* |value| <= k with k * ranks <= 255 for bfloat16 (8 significant bits),
     * so every partial sum stays exact; 30 for the others (f16: 30 x 64). */
    int k = 30;
    if (o->dt->lc == LC_BFLOAT16 && g_size * k > 255) k = 255 / g_size > 0 ? 255 / g_size : 1;
    double v = (double)((i * 7 + (size_t)r * 13) % (size_t)(2 * k + 1));
    return o->dt->lc == LC_UINT8 ? v : v - k;
}

static uint16_t f16_from_small_int(double v)
{
    /* v is an integer with |v| < 2048: exact in binary16. */
    _Float16 h = (_Float16)v;
    uint16_t b;
    memcpy(&b, &h, 2);
    return b;
}

static double f16_to_double(uint16_t b)
{
    _Float16 h;
    memcpy(&h, &b, 2);
    return (double)h;
}

static void store(const dtype_info_t *dt, void *buf, size_t i, double v)
{
    switch (dt->lc) {
    case LC_FLOAT32: ((float *)buf)[i] = (float)v; break;
    case LC_FLOAT16: ((uint16_t *)buf)[i] = f16_from_small_int(v); break;
    case LC_BFLOAT16: {
        float f = (float)v; /* small integers: the upper half is exact */
        uint32_t u;
        memcpy(&u, &f, 4);
        ((uint16_t *)buf)[i] = (uint16_t)(u >> 16);
        break;
    }
    case LC_FLOAT64: ((double *)buf)[i] = v; break;
    case LC_INT32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case LC_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
    default: ((uint8_t *)buf)[i] = (uint8_t)(int)v; break;
    }
}

static double load(const dtype_info_t *dt, const void *buf, size_t i)
{
    switch (dt->lc) {
    case LC_FLOAT32: return ((const float *)buf)[i];
    case LC_FLOAT16: return f16_to_double(((const uint16_t *)buf)[i]);
    case LC_BFLOAT16: {
        uint32_t u = (uint32_t)((const uint16_t *)buf)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case LC_FLOAT64: return ((const double *)buf)[i];
    case LC_INT32: return ((const int32_t *)buf)[i];
    case LC_INT64: return (double)((const int64_t *)buf)[i];
    default: return ((const uint8_t *)buf)[i];
    }
}

static double expected_reduce(const opts_t *o, size_t i)
{
    double acc = input_value(o, i, 0);
    for (int r = 1; r < g_size; r++) {
        double v = input_value(o, i, r);
        switch (o->op) {
        case LC_MAX: acc = v > acc ? v : acc; break;
        case LC_MIN: acc = v < acc ? v : acc; break;
        case LC_PROD: acc *= v; break;
        default: acc += v; break;
        }
    }
    if (o->dt->lc == LC_UINT8 && o->op != LC_MAX && o->op != LC_MIN) acc = fmod(acc, 256.0);
    if (o->op == LC_AVG) {
        acc /= g_size;
        if (o->dt->tol == 0) acc = trunc(acc); /* integer average truncates, as in C */
    }
    return acc;
}

/* Fill the send buffer (and recv for in-place/broadcast) for one call. */
static void fill(const opts_t *o, void *s, void *r, size_t count)
{
    switch (o->coll) {
    case COLL_BROADCAST:
        for (size_t i = 0; i < count; i++)
            store(o->dt, r, i, g_rank == o->root ? input_value(o, i, 0) : -1.0);
        break;
    case COLL_REDUCE_SCATTER: /* count is per rank; the input holds size blocks */
        for (size_t i = 0; i < count * (size_t)g_size; i++)
            store(o->dt, s, i, input_value(o, i, g_rank));
        break;
    case COLL_ALLGATHER:
        for (size_t i = 0; i < count; i++)
            store(o->dt, o->inplace ? r : s, (o->inplace ? (size_t)g_rank * count : 0) + i,
                  input_value(o, (size_t)g_rank * count + i, 0));
        break;
    default:
        for (size_t i = 0; i < count; i++) store(o->dt, s, i, input_value(o, i, g_rank));
        break;
    }
}

static size_t check(const opts_t *o, const void *r, size_t count, double *relerr)
{
    size_t wrong = 0, n = count;
    double worst = 0;
    if (o->coll == COLL_ALLGATHER) n = count * (size_t)g_size;
    for (size_t i = 0; i < n; i++) {
        double want, got = load(o->dt, r, i);
        switch (o->coll) {
        case COLL_BROADCAST: want = input_value(o, i, 0); break;
        case COLL_ALLGATHER: want = input_value(o, i, 0); break;
        case COLL_REDUCE_SCATTER: want = expected_reduce(o, (size_t)g_rank * count + i); break;
        default: want = expected_reduce(o, i); break;
        }
        double err = fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1.0);
        if (err > worst) worst = err;
        if (err > o->dt->tol) wrong++;
    }
    *relerr = worst;
    return wrong;
}

/* ------------------------------------------------------------ driver */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double busbw_factor(coll_t c, int n)
{
    switch (c) {
    case COLL_ALLREDUCE: return 2.0 * (n - 1) / n;
    case COLL_ALLGATHER:
    case COLL_REDUCE_SCATTER: return (double)(n - 1) / n;
    default: return 1.0;
    }
}

static size_t parse_size(const char *s)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0) die("bad size '%s'", s);
    switch (*end) {
    case 'k':
    case 'K':
        v *= 1024;
        end++;
        break;
    case 'm':
    case 'M':
        v *= 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        v *= 1024.0 * 1024 * 1024;
        end++;
        break;
    default: break;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end != '\0') die("bad size '%s'", s);
    return (size_t)v;
}

static void usage(void)
{
    puts("usage: lc-bench [options]   (under lcrun, or mpirun for --baseline mpi)\n"
         "  -b, --minbytes SIZE     smallest message (default 8; K/M/G suffixes)\n"
         "  -e, --maxbytes SIZE     largest message (default 32M)\n"
         "  -f, --stepfactor F      multiply the size by F each step (default 2)\n"
         "  -i, --stepbytes SIZE    or add SIZE each step\n"
         "  -n, --iters N           timed iterations per size (default 20)\n"
         "  -w, --warmup_iters N    untimed iterations first (default 5)\n"
         "  -c, --check 0|1         verify results (default 1)\n"
         "  -d, --datatype T        float half bfloat16 double int32 int64 uint8 (default float)\n"
         "  -o, --op OP             sum avg max min prod (default sum)\n"
         "  -r, --root R            broadcast root (default 0)\n"
         "      --coll C            allreduce broadcast allgather reduce_scatter barrier\n"
         "      --algo A            auto ring tree recdbl chain (default auto)\n"
         "      --chunk SIZE        pipeline chunk size (default: LC_CHUNK_BYTES)\n"
         "      --inplace           in-place (default out-of-place)\n"
         "      --nonblocking       time Laconic's lc_i* + lc_wait (default: blocking calls)\n"
         "      --baseline mpi      also time Open MPI in the same run (under mpirun)\n"
         "      --json FILE         append one JSON object per result row (rank 0)");
}

static void parse(int argc, char **argv, opts_t *o)
{
    enum { O_COLL = 256, O_ALGO, O_CHUNK, O_INPLACE, O_BASE, O_JSON, O_NB };
    static const struct option lo[] = {
        { "minbytes", 1, 0, 'b' },
        { "maxbytes", 1, 0, 'e' },
        { "stepfactor", 1, 0, 'f' },
        { "stepbytes", 1, 0, 'i' },
        { "iters", 1, 0, 'n' },
        { "warmup_iters", 1, 0, 'w' },
        { "check", 1, 0, 'c' },
        { "datatype", 1, 0, 'd' },
        { "op", 1, 0, 'o' },
        { "root", 1, 0, 'r' },
        { "coll", 1, 0, O_COLL },
        { "algo", 1, 0, O_ALGO },
        { "chunk", 1, 0, O_CHUNK },
        { "inplace", 0, 0, O_INPLACE },
        { "baseline", 1, 0, O_BASE },
        { "json", 1, 0, O_JSON },
        { "nonblocking", 0, 0, O_NB },
        { "help", 0, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int c;
    memset(o, 0, sizeof(*o));
    o->min_bytes = 8;
    o->max_bytes = 32u << 20;
    o->step_factor = 2;
    o->iters = 20;
    o->warmup = 5;
    o->check = 1;
    o->dt = &dtypes[0];
    while ((c = getopt_long(argc, argv, "b:e:f:i:n:w:c:d:o:r:h", lo, NULL)) != -1) {
        switch (c) {
        case 'b': o->min_bytes = parse_size(optarg); break;
        case 'e': o->max_bytes = parse_size(optarg); break;
        case 'f': o->step_factor = atof(optarg); break;
        case 'i': o->step_bytes = parse_size(optarg); break;
        case 'n': o->iters = atoi(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case 'c': o->check = atoi(optarg); break;
        case 'r': o->root = atoi(optarg); break;
        case 'd':
            o->dt = NULL;
            for (size_t k = 0; k < sizeof(dtypes) / sizeof(dtypes[0]); k++)
                if (strcmp(optarg, dtypes[k].name) == 0) o->dt = &dtypes[k];
            if (!o->dt) die("unknown datatype '%s'", optarg);
            break;
        case 'o':
            o->op = LC_OP_COUNT;
            for (int k = 0; k < LC_OP_COUNT; k++)
                if (strcmp(optarg, op_names[k]) == 0) o->op = (lc_op_t)k;
            if (o->op == LC_OP_COUNT) die("unknown op '%s'", optarg);
            break;
        case O_COLL: {
            int k;
            for (k = 0; k <= COLL_BARRIER && strcmp(optarg, coll_names[k]) != 0; k++) continue;
            if (k > COLL_BARRIER) die("unknown collective '%s'", optarg);
            o->coll = (coll_t)k;
            break;
        }
        case O_ALGO: {
            int k;
            for (k = 0; k < LC_ALGO_COUNT && strcmp(optarg, lc_algo_str((lc_algo_t)k)) != 0; k++)
                continue;
            if (k == LC_ALGO_COUNT) die("unknown algorithm '%s'", optarg);
            o->algo = (lc_algo_t)k;
            break;
        }
        case O_CHUNK: o->chunk_bytes = parse_size(optarg); break;
        case O_INPLACE: o->inplace = 1; break;
        case O_BASE:
            if (strcmp(optarg, "mpi") != 0) die("--baseline: only 'mpi' is built in");
            o->baseline_mpi = 1;
            break;
        case O_JSON: o->json = optarg; break;
        case O_NB: o->nonblocking = 1; break;
        case 'h': usage(); exit(0);
        default: usage(); exit(2);
        }
    }
    if (o->iters < 1 || o->iters > BENCH_MAX_ITERS) die("-n must be in [1, %d]", BENCH_MAX_ITERS);
    if (o->warmup < 0) die("-w must be >= 0");
    if (o->step_bytes == 0 && o->step_factor <= 1) die("-f must be > 1");
    if (o->min_bytes > o->max_bytes) die("-b must not exceed -e");
}

static size_t peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss / 1024;
}

/* Time one size with one implementation and print its row on rank 0. */
static void bench_one(impl_t *im, const opts_t *o, void *sbuf, void *rbuf, size_t bytes,
                      double *times, FILE *json)
{
    size_t count = bytes / o->dt->size;
    void *s = sbuf, *r = rbuf;
    double relerr = 0, t_med, wire = -1, ratio = 1;
    size_t wrong = 0;

    /* nccl-tests conventions: all-gather size is the output, reduce-scatter's the input. */
    if (o->coll == COLL_ALLGATHER || o->coll == COLL_REDUCE_SCATTER) count /= (size_t)g_size;
    if (o->coll == COLL_BARRIER) count = 0;
    if (o->inplace) {
        s = r;
        if (o->coll == COLL_ALLGATHER) s = (char *)r + (size_t)g_rank * count * o->dt->size;
    }
    fill(o, s, r, count);
    im->barrier(im);
    for (int k = 0; k < o->warmup; k++) im->run(im, o, s, r, count);
    im->barrier(im);
    double t0 = now_us();
    for (int k = 0; k < o->iters; k++) {
        im->run(im, o, s, r, count);
        double t1 = now_us();
        times[k] = t1 - t0;
        t0 = t1;
    }
    im->max_doubles(im, times, o->iters);
    qsort(times, (size_t)o->iters, sizeof(double), cmp_double);
    t_med =
        o->iters % 2 ? times[o->iters / 2] : 0.5 * (times[o->iters / 2 - 1] + times[o->iters / 2]);
    if (im->barrier == lc_bar) { /* one more call, non-blocking, for its lc_op_info_t */
        im->want_info = 1;
        im->run(im, o, s, r, count);
        im->want_info = 0;
    }
    if (im->has_info) { /* wire bytes of the busiest rank in the last call */
        times[0] = (double)im->last.wire_bytes;
        im->max_doubles(im, times, 1);
        wire = times[0];
        ratio = im->last.ratio;
    }
    if (o->check && o->coll != COLL_BARRIER) {
        /* Poison the output first, so results of earlier calls cannot pass
         * for this one's; fill() then rewrites the inputs that live in it. */
        memset(r, 0xa5, bytes);
        fill(o, s, r, count);
        im->run(im, o, s, r, count);
        wrong = check(o, r, count, &relerr);
        times[0] = (double)wrong;
        times[1] = relerr;
        im->max_doubles(im, times, 2);
        wrong = (size_t)times[0];
        relerr = times[1];
    }
    if (g_rank != 0) return;
    double algbw = t_med > 0 ? (double)bytes / t_med / 1e3 : 0; /* bytes/us -> GB/s */
    double busbw = algbw * busbw_factor(o->coll, g_size);
    const char *algo = im->has_info ? lc_algo_str(im->last.algo) : "-";
    printf("%12zu %12zu %8s %6s %6s %6s %11.1f %9.3f %9.3f %7zu %8.1e %12.0f %6.2f\n", bytes, count,
           o->dt->name,
           o->coll == COLL_ALLREDUCE || o->coll == COLL_REDUCE_SCATTER ? op_names[o->op] : "none",
           im->name, algo, t_med, algbw, busbw, o->check ? wrong : 0, relerr, wire, ratio);
    fflush(stdout);
    if (json != NULL) {
        fprintf(json,
                "{\"impl\":\"%s\",\"coll\":\"%s\",\"algo\":\"%s\",\"codec\":\"none\","
                "\"bytes\":%zu,\"count\":%zu,\"dtype\":\"%s\",\"op\":\"%s\",\"nranks\":%d,"
                "\"time_us\":%.3f,\"algbw_gbps\":%.5f,\"busbw_gbps\":%.5f,\"wire_bytes\":%.0f,"
                "\"ratio\":%.4f,\"relerr\":%.3e,\"wrong\":%zu,\"iters\":%d,\"rss_mib\":%zu}\n",
                im->name, coll_names[o->coll], algo, bytes, count, o->dt->name, op_names[o->op],
                g_size, t_med, algbw, busbw, wire, ratio, relerr, o->check ? wrong : 0, o->iters,
                peak_rss_mib());
        fflush(json);
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    impl_t impls[2];
    int nimpl = 0;
    lc_status_t st;
    FILE *json = NULL;

    parse(argc, argv, &o);
    memset(impls, 0, sizeof(impls));
    impls[0] =
        (impl_t){ .name = "lc", .run = lc_run, .max_doubles = lc_max_doubles, .barrier = lc_bar };
    nimpl = 1;
    if (o.baseline_mpi) {
#ifdef LC_BENCH_MPI
        MPI_Init(&argc, &argv);
        if (mpi_dtype(o.dt->lc) == MPI_DATATYPE_NULL) die("MPI has no %s datatype", o.dt->name);
        if ((o.coll == COLL_ALLREDUCE || o.coll == COLL_REDUCE_SCATTER) &&
            mpi_op(o.op) == MPI_OP_NULL)
            die("MPI has no '%s' reduction", op_names[o.op]);
        st = lc_comm_init_mpi(MPI_COMM_WORLD, NULL, &impls[0].comm);
        impls[1] = (impl_t){
            .name = "mpi", .run = mpi_run, .max_doubles = mpi_max_doubles, .barrier = mpi_bar
        };
        nimpl = 2;
#else
        die("--baseline mpi: lc-bench was built without MPI");
#endif
    } else {
        st = lc_comm_init(NULL, &impls[0].comm);
    }
    if (st != LC_OK) die("communicator: %s (run under lcrun or mpirun)", lc_status_str(st));
    lc_comm_rank(impls[0].comm, &g_rank);
    lc_comm_size(impls[0].comm, &g_size);
    if (o.root < 0 || o.root >= g_size) die("root %d out of range", o.root);

    /* Input and output never exceed the largest size (all-gather's output and
     * reduce-scatter's input are that size; the other sides are smaller). */
    size_t max_bytes = o.max_bytes;
    void *sbuf = malloc(max_bytes ? max_bytes : 1), *rbuf = malloc(max_bytes ? max_bytes : 1);
    double *times = malloc(sizeof(double) * (size_t)(o.iters > 2 ? o.iters : 2));
    if (!sbuf || !rbuf || !times) die("cannot allocate %zu bytes", 2 * max_bytes);
    if (g_rank == 0) {
        if (o.json && (json = fopen(o.json, "a")) == NULL)
            die("cannot open %s: %s", o.json, strerror(errno));
        printf("# lc-bench: %s, %d ranks, %s, op %s, %s, %d iterations (+%d warm-up), median of "
               "per-iteration max over ranks\n",
               coll_names[o.coll], g_size, o.dt->name, op_names[o.op],
               o.inplace ? "in-place" : "out-of-place", o.iters, o.warmup);
        printf("# %10s %12s %8s %6s %6s %6s %11s %9s %9s %7s %8s %12s %6s\n", "size", "count",
               "type", "redop", "impl", "algo", "time(us)", "algbw", "busbw", "#wrong", "relerr",
               "wire_B", "ratio");
        printf("# %10s %12s %8s %6s %6s %6s %11s %9s %9s %7s %8s %12s %6s\n", "(B)", "(elts)", "",
               "", "", "", "", "(GB/s)", "(GB/s)", "", "", "(max rank)", "");
    }
    int step = 0;
    for (size_t bytes = o.min_bytes; bytes <= max_bytes; step++) {
        size_t unit =
            o.dt->size *
            (o.coll == COLL_ALLGATHER || o.coll == COLL_REDUCE_SCATTER ? (size_t)g_size : 1);
        size_t b = bytes / unit * unit;
        if (b == 0 && o.coll != COLL_BARRIER) b = unit;
        if (b <= max_bytes) {
            for (int k = 0; k < nimpl; k++) {
                int which = (step % 2 == 0) ? k : nimpl - 1 - k; /* alternate who goes first */
                bench_one(&impls[which], &o, sbuf, rbuf, b, times, json);
            }
        }
        size_t next = o.step_bytes ? bytes + o.step_bytes : (size_t)((double)bytes * o.step_factor);
        if (next <= bytes) next = bytes + 1;
        bytes = next;
    }
    if (g_rank == 0)
        printf("# peak RSS rank 0: %zu MiB (buffers %zu MiB)\n", peak_rss_mib(),
               (2 * max_bytes) >> 20);
    double rss = (double)peak_rss_mib();
    impls[0].max_doubles(&impls[0], &rss, 1);
    if (g_rank == 0) printf("# peak RSS, largest rank: %.0f MiB\n", rss);
    if (json) fclose(json);
    free(sbuf);
    free(rbuf);
    free(times);
    lc_comm_destroy(impls[0].comm);
#ifdef LC_BENCH_MPI
    if (o.baseline_mpi) MPI_Finalize();
#endif
    return 0;
}
