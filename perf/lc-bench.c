/*
 * lc-bench: nccl-tests-style microbenchmark of Laconic's collectives, with
 * Open MPI's and Gloo's as baselines in the same run.
 *
 *   lcrun -n 4 lc-bench -b 8 -e 256M -f 4                         Laconic only
 *   lcrun -n 4 lc-bench -b 1M -e 64M --baseline gloo              Laconic and Gloo
 *   mpirun -n 4 lc-bench -b 8 -e 256M --baseline mpi,gloo         Laconic, MPI and Gloo
 *   lcrun -n 4 lc-bench -b 1M -e 16M --codec onebit --baseline gloo   Laconic compressed
 *
 * With baselines, every implementation runs in the same processes, over the
 * same loopback, size by size and back to back (the order reverses at every
 * size), so their ratios are measured under the same machine load. Under
 * mpirun with the MPI baseline, Laconic is bootstrapped with
 * lc_comm_init_mpi(). Gloo needs no MPI: it meets through a FileStore in a
 * fresh directory under --gloo-store (named by a nonce that rank 0 broadcasts
 * with lc_broadcast, removed by rank 0 once every rank is connected) and its
 * TCP device binds to $LC_IFADDR, else 127.0.0.1. For all-reduce Gloo gives
 * one row per algorithm (ring, hd = halving-doubling, bcube), each built once
 * per size outside the timing and reused, as Gloo's own benchmark does; the
 * other collectives use Gloo's function API.
 *
 * Collectives are registered in one table (colls[] below): name, busbw factor,
 * how the count follows from the size, how inputs are filled and outputs
 * checked, and one run function per implementation (NULL: the implementation
 * does not have it; its rows are skipped with "# IMPL: COLL not available").
 * Sizes follow nccl-tests: all-reduce and broadcast move SIZE bytes; all-gather
 * SIZE is the output, reduce-scatter's the input, all-to-all's the per-rank
 * send buffer (SIZE/n to each peer); the count column is the count argument.
 *
 * alltoallv is all-to-all with uneven, skewed blocks (MPI_Alltoallv,
 * gloo::alltoallv, lc_alltoallv: the same layout for all three). SIZE is again the per-rank send
 * buffer, count = SIZE / element size its elements (the count column), and
 * the fixed rule is: with n ranks and u = count / (n(n-1)/2), rank r sends
 * rank p a block of ((p - r) mod n) x u elements: nothing to itself (a
 * zero-sized block on every rank, n >= 2), u to the next rank, 2u to the one
 * after, ..., (n-1)u to the previous one. Blocks lie back to back in rank
 * order, on both sides; rank p receives ((p - r) mod n) x u from rank r. Every
 * rank thus sends and receives exactly count elements (SIZE is rounded down
 * to a multiple of n(n-1)/2 elements, as all-to-all's is to n), while what
 * a rank sends a peer and receives from it differ in size (but for the peer
 * n/2 away when n is even). One rank: a single block of count to itself.
 * busbw uses all-to-all's factor (n-1)/n on SIZE, the bytes each rank sends
 * (all of them cross the network here, as no rank sends to itself). Not in
 * place.
 *
 * Timing: after a barrier, each rank runs warm-up iterations and then -n
 * timed iterations back to back, recording the duration of each. Per
 * iteration the maximum over ranks is taken (the collective is done when
 * its slowest rank is), and the reported time is the median of those
 * maxima: robust to a noisy shared machine. algbw = size / time; busbw
 * applies nccl-tests' factors (all-reduce 2(n-1)/n, all-gather,
 * reduce-scatter and all-to-all (n-1)/n, broadcast 1) to the uncompressed
 * size, so it is goodput. With --link-mbps B (the link rate the harness
 * measured, Mbit/s), bound_us = factor x size / (ratio x B/8 bytes per us) is
 * the time the link alone needs for that traffic (ratio: Laconic's wire
 * compression ratio, 1 uncompressed and for the baselines) and %bound =
 * 100 x bound_us / time. After timing, -c 1 runs one more call on fresh
 * input and checks every element against the exact expected value (inputs
 * are small integers, exact in every datatype; the reference is computed in
 * double), printing #wrong and the largest relative error (with a lossy
 * codec: see Compression below). An element that is NaN counts as wrong,
 * and makes the largest relative error NaN ("nan" in the table, null in the
 * JSON). Test hook: with LC_BENCH_FAULT=nan in the
 * environment, rank 0 overwrites the first output element with NaN before
 * checking (floating-point types only), so that tests can see it flagged.
 *
 * Compression (--codec LIST, comma-separated spec strings of
 * lc_op_params_t::codec_spec, "none" for uncompressed): Laconic's rows of
 * all-reduce (two-phase), broadcast, all-gather, alltoall and alltoallv
 * send with the codec, one Laconic row per spec at every size (each with
 * its own tensor key); the baselines stay uncompressed, one row per size,
 * the reference in the same run. --coded-warmup N gives the compressed rows
 * N warm-up calls instead of -w (their first calls fault in residuals and
 * scratch). Laconic's reduce_scatter and barrier take no
 * codec: their rows run uncompressed (codec "none"), which rank 0 says once
 * on stderr. Codecs take float data (-d float) and all-reduce sum or avg.
 * Error feedback (onebit, topk) is on, with one tensor key per (collective,
 * size), released after that size's row, unless --no-ef: the timed calls
 * carry residuals from call to call as training does, but the checked call
 * starts from released (zero) residuals, because with a constant input each
 * call's output includes the residual it carries in (the error of one call
 * in that steady state is about twice one compression's, by design; it is
 * the sum over calls that error feedback keeps close). With a lossy codec
 * in the list (all but zstd alone and none) every implementation and every
 * codec's row gets gradient-like
 * floats instead of small integers (datagen.h: a codec's ratio and error
 * depend on the data), and the check compares each rank's whole output:
 * relerr = ||got - exact|| / ||exact|| (L2, exact reference in double; the
 * maximum over ranks), and the row is wrong (#wrong 1, else 0) when that
 * exceeds the codec's bound (onebit 1, topk 1, int8 0.05, fp16 0.002, bf16 0.02; the
 * uncompressed baselines 1e-5, float rounding of sums) or is NaN. The check
 * regenerates the inputs of every rank it needs (for all-reduce all of
 * them), which costs seconds at 16 MiB on a small machine, once per size:
 * the expected values are kept for the size's other rows (after the
 * timing; -c 0 skips it). A lossless codec keeps the small integers and the
 * exact element-wise check.
 * Laconic's rows take ratio (lowest over the ranks that sent anything) and
 * the encode, decode and wire times (largest over ranks, per call) from the
 * lc_op_info_t of one more non-blocking call after the timed ones; bound_us
 * uses that ratio, so a compressed row's bound is the uncompressed bound
 * divided by its measured ratio.
 *
 * Columns: size count type redop impl algo time(us) algbw busbw #wrong relerr
 * wire_B ratio bound_us %bound codec enc_us dec_us wire_us, plus peak RSS;
 * --json FILE appends one JSON object per row (rank 0): kind ("coll") impl
 * coll algo codec bytes count dtype op nranks time_us algbw_gbps busbw_gbps
 * wire_bytes ratio relerr wrong iters rss_mib scenario link_mbps bound_us
 * pct_bound (these four null when not given or not meaningful) encode_us
 * decode_us wire_us (null for the baselines) ef (1: the row kept
 * error-feedback residuals) relerr_bound (null: the exact check) data
 * ("smallint" or "gradient").
 */
#include <laconic.h>
#include "bench_util.h"
#include "datagen.h"
#ifdef LC_BENCH_MPI
#include <laconic_mpi.h>
#endif
#ifdef LC_BENCH_GLOO
#include "baselines/gloo_baseline.h"
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/stat.h>
#endif

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_MAX_ITERS 100000

typedef enum {
    COLL_ALLREDUCE,
    COLL_BROADCAST,
    COLL_ALLGATHER,
    COLL_REDUCE_SCATTER,
    COLL_ALLTOALL,
    COLL_ALLTOALLV,
    COLL_BARRIER,
    COLL_COUNT
} coll_t;

typedef enum { IMPL_LC, IMPL_MPI, IMPL_GLOO, IMPL_KINDS } impl_kind_t;
static const char *const impl_names[] = { "lc", "mpi", "gloo" };

/* Gloo's all-reduce algorithms, in gb_algo_t order (--gloo-algos). */
static const char *const gloo_algo_names[] = { "ring", "hd", "bcube" };
#define GLOO_ALGOS 3

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
    int baseline_mpi, baseline_gloo;
    unsigned gloo_algos;    /* bit k: gloo_algo_names[k] */
    const char *gloo_store; /* directory for Gloo's FileStore */
    double link_mbps;       /* 0: not given */
    const char *scenario;   /* NULL: not given */
    const char *json;
    const char *codec;  /* this row's codec spec (one of --codec's list); NULL: none */
    int coded_warmup;   /* --coded-warmup: warm-up calls of compressed rows; -1: -w */
    int ef;             /* error feedback with a tensor key per size (not --no-ef) */
    int coded;          /* Laconic's rows of this collective send with the codec */
    int lossy;          /* a lossy codec in the list: every row gradient-like data, L2 check */
    double codec_bound; /* lossy codec: the largest relative L2 error its rows may have */
    int ef_codec;       /* the codec keeps error-feedback residuals (onebit, topk) */
} opts_t;

/* One implementation under test: Laconic, the MPI baseline, or Gloo (one
 * entry per Gloo all-reduce algorithm). */
typedef struct impl impl_t;
struct impl {
    impl_kind_t kind;
    const char *algo; /* algo column; NULL: Laconic's, from lc_op_info_t */
    int gloo_algo;    /* gb_algo_t of a Gloo all-reduce row */
    int (*max_doubles)(impl_t *im, double *v, int n); /* in place, over ranks */
    int (*barrier)(impl_t *im);
    /* Untimed set-up before the warm-up of one size (NULL: none). */
    void (*prepare)(impl_t *im, const opts_t *o, void *r, size_t count);
    lc_comm_t *comm;
    void *gloo;        /* gb_ctx_t * */
    lc_op_info_t last; /* Laconic: what the last non-blocking call did */
    int has_info;
    int want_info;        /* make the next call non-blocking, for its lc_op_info_t */
    uint64_t tensor_key;  /* Laconic with a codec and error feedback: this size's key */
    const opts_t *opts;   /* Laconic: the options of its codec (one per --codec entry) */
    unsigned codec_index; /* its place in --codec's list, part of the tensor key */
};

typedef int (*run_fn)(impl_t *im, const opts_t *o, const void *s, void *r, size_t count);

/* How the count argument follows from the size in bytes. */
typedef enum {
    COUNT_WHOLE,    /* size / element size */
    COUNT_PER_RANK, /* size / (ranks x element size) */
    COUNT_SKEWED,   /* size / element size, a multiple of a2av_units() (alltoallv) */
    COUNT_NONE      /* no data */
} count_rule_t;

/* One collective: everything the driver needs to know about it. */
typedef struct {
    const char *name;
    double (*busbw_factor)(int n); /* nccl-tests' bus bandwidth factor */
    count_rule_t count_rule;
    int reduces;                       /* takes an op */
    size_t (*out_elems)(size_t count); /* output elements to check */
    void (*fill)(const opts_t *o, void *s, void *r, size_t count);
    double (*expect)(const opts_t *o, size_t i, size_t count); /* output element i */
    run_fn run[IMPL_KINDS];                                    /* NULL: not available */
} coll_desc_t;

static const coll_desc_t colls[COLL_COUNT];
#define COLL(o) (&colls[(o)->coll])

static int g_rank, g_size; /* g_rank mirrors bench_rank */
static int g_fault_nan;    /* LC_BENCH_FAULT=nan (a test hook, see the top comment) */

/* ------------------------------------------------------------ alltoallv layout */

/* alltoallv's rule (see the top comment): rank r sends rank p
 * a2av_weight(r, p) units of u = count / a2av_units() elements. */
static size_t a2av_weight(int r, int p, int n)
{
    return n == 1 ? 1 : (size_t)(((p - r) % n + n) % n);
}

/* Units each rank sends (and receives): the sum of its weights. */
static size_t a2av_units(int n)
{
    return n <= 1 ? 1 : (size_t)n * (size_t)(n - 1) / 2;
}

/* This rank's blocks for one count, in elements. */
typedef struct {
    size_t count;              /* what it was computed for */
    size_t stotal, rtotal;     /* elements sent, received */
    int64_t *scount, *rcount;  /* to / from each rank */
    size_t *zscount, *zrcount; /* the same as size_t, for Laconic */
    size_t *sdispl, *rdispl;   /* where each block starts (back to back) */
    size_t *peer_sdispl;       /* where rank r's block for this rank starts in r's input */
    int *iscount, *isdispl, *ircount, *irdispl; /* the same as int, for MPI (if it fits) */
    int fits_int;
} a2av_layout_t;

static a2av_layout_t g_a2av;

/* The layout for count (computed on a change of count: O(n^2) once per size). */
static const a2av_layout_t *a2av_layout(size_t count)
{
    a2av_layout_t *L = &g_a2av;
    const int n = g_size;
    if (L->scount != NULL && L->count == count) return L;
    if (L->scount == NULL) {
        size_t k = (size_t)n;
        L->scount = malloc(2 * k * sizeof(int64_t));
        L->sdispl = malloc(5 * k * sizeof(size_t));
        L->iscount = malloc(4 * k * sizeof(int));
        if (!L->scount || !L->sdispl || !L->iscount) bench_die("alltoallv: out of memory");
        L->rcount = L->scount + k;
        L->rdispl = L->sdispl + k;
        L->peer_sdispl = L->sdispl + 2 * k;
        L->zscount = L->sdispl + 3 * k;
        L->zrcount = L->sdispl + 4 * k;
        L->isdispl = L->iscount + k;
        L->ircount = L->iscount + 2 * k;
        L->irdispl = L->iscount + 3 * k;
    }
    const size_t u = count / a2av_units(n);
    L->count = count;
    L->stotal = L->rtotal = 0;
    L->fits_int = 1;
    for (int p = 0; p < n; p++) {
        L->scount[p] = (int64_t)(a2av_weight(g_rank, p, n) * u);
        L->rcount[p] = (int64_t)(a2av_weight(p, g_rank, n) * u);
        L->zscount[p] = (size_t)L->scount[p];
        L->zrcount[p] = (size_t)L->rcount[p];
        L->sdispl[p] = L->stotal;
        L->rdispl[p] = L->rtotal;
        L->stotal += (size_t)L->scount[p];
        L->rtotal += (size_t)L->rcount[p];
        size_t off = 0; /* rank p's blocks for ranks 0..g_rank-1 come first */
        for (int q = 0; q < g_rank; q++) off += a2av_weight(p, q, n) * u;
        L->peer_sdispl[p] = off;
    }
    if (L->stotal > (size_t)INT_MAX || L->rtotal > (size_t)INT_MAX) L->fits_int = 0;
    for (int p = 0; p < n && L->fits_int; p++) {
        L->iscount[p] = (int)L->scount[p];
        L->isdispl[p] = (int)L->sdispl[p];
        L->ircount[p] = (int)L->rcount[p];
        L->irdispl[p] = (int)L->rdispl[p];
    }
    return L;
}

static void a2av_free(void)
{
    free(g_a2av.scount);
    free(g_a2av.sdispl);
    free(g_a2av.iscount);
    memset(&g_a2av, 0, sizeof(g_a2av));
}

/* ------------------------------------------------------------ Laconic */

/* The call's parameters: --algo, --chunk and, for a collective that takes
 * it, --codec with this size's tensor key (unless --no-ef). */
static lc_op_params_t lc_params(const impl_t *im, const opts_t *o)
{
    lc_op_params_t p = { 0 };
    if (o->coded) {
        p.field_mask |= LC_OP_PARAM_FIELD_CODEC_SPEC;
        p.codec_spec = o->codec;
        if (o->ef) {
            p.field_mask |= LC_OP_PARAM_FIELD_TENSOR_KEY;
            p.tensor_key = im->tensor_key;
        }
    }
    if (o->algo != LC_ALGO_AUTO) {
        p.field_mask |= LC_OP_PARAM_FIELD_ALGO;
        p.algo = o->algo;
    }
    if (o->chunk_bytes) {
        p.field_mask |= LC_OP_PARAM_FIELD_CHUNK_BYTES;
        p.chunk_bytes = o->chunk_bytes;
    }
    return p;
}

/* Blocking calls unless --nonblocking, or the driver wants this call's lc_op_info_t. */
static int lc_blocking(const impl_t *im, const opts_t *o)
{
    return !o->nonblocking && !im->want_info;
}

/* Dies on failure; for a non-blocking call (req != NULL) waits and keeps what it did.
 * Callers store the call's status first: the call is what sets req. */
static int lc_finish(impl_t *im, const opts_t *o, lc_status_t st, lc_request_t *req)
{
    if (st != LC_OK) bench_die("%s: %s", COLL(o)->name, lc_status_str(st));
    if (req == NULL) return 0;
    st = lc_wait(req, &im->last);
    lc_request_free(req);
    if (st != LC_OK) bench_die("%s: %s", COLL(o)->name, lc_status_str(st));
    im->has_info = 1;
    return 0;
}

static int lc_allreduce_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    lc_op_params_t p = lc_params(im, o);
    lc_request_t *req = NULL;
    if (lc_blocking(im, o))
        return lc_finish(im, o, lc_allreduce(s, r, count, o->dt->lc, o->op, im->comm, &p), NULL);
    lc_status_t st = lc_iallreduce(s, r, count, o->dt->lc, o->op, im->comm, &p, &req);
    return lc_finish(im, o, st, req);
}

static int lc_broadcast_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    lc_op_params_t p = lc_params(im, o);
    lc_request_t *req = NULL;
    (void)s;
    if (lc_blocking(im, o))
        return lc_finish(im, o, lc_broadcast(r, count, o->dt->lc, o->root, im->comm, &p), NULL);
    lc_status_t st = lc_ibroadcast(r, count, o->dt->lc, o->root, im->comm, &p, &req);
    return lc_finish(im, o, st, req);
}

static int lc_allgather_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    lc_op_params_t p = lc_params(im, o);
    lc_request_t *req = NULL;
    if (lc_blocking(im, o))
        return lc_finish(im, o, lc_allgather(s, r, count, o->dt->lc, im->comm, &p), NULL);
    lc_status_t st = lc_iallgather(s, r, count, o->dt->lc, im->comm, &p, &req);
    return lc_finish(im, o, st, req);
}

static int lc_reduce_scatter_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    lc_op_params_t p = lc_params(im, o);
    lc_request_t *req = NULL;
    if (lc_blocking(im, o))
        return lc_finish(im, o, lc_reduce_scatter(s, r, count, o->dt->lc, o->op, im->comm, &p),
                         NULL);
    lc_status_t st = lc_ireduce_scatter(s, r, count, o->dt->lc, o->op, im->comm, &p, &req);
    return lc_finish(im, o, st, req);
}

static int lc_alltoall_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    lc_op_params_t p = lc_params(im, o);
    lc_request_t *req = NULL;
    if (lc_blocking(im, o))
        return lc_finish(im, o, lc_alltoall(s, r, count, o->dt->lc, im->comm, &p), NULL);
    lc_status_t st = lc_ialltoall(s, r, count, o->dt->lc, im->comm, &p, &req);
    return lc_finish(im, o, st, req);
}

/* The same skewed layout as the baselines' (a2av_layout). */
static int lc_alltoallv_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    const a2av_layout_t *L = a2av_layout(count);
    lc_op_params_t p = lc_params(im, o);
    lc_request_t *req = NULL;
    if (lc_blocking(im, o))
        return lc_finish(im, o,
                         lc_alltoallv(s, L->zscount, L->sdispl, r, L->zrcount, L->rdispl, o->dt->lc,
                                      im->comm, &p),
                         NULL);
    lc_status_t st = lc_ialltoallv(s, L->zscount, L->sdispl, r, L->zrcount, L->rdispl, o->dt->lc,
                                   im->comm, &p, &req);
    return lc_finish(im, o, st, req);
}

static int lc_barrier_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    lc_request_t *req = NULL;
    (void)s, (void)r, (void)count;
    if (lc_blocking(im, o)) return lc_finish(im, o, lc_barrier(im->comm), NULL);
    lc_status_t st = lc_ibarrier(im->comm, &req);
    return lc_finish(im, o, st, req);
}

/* This rank keeps error-feedback residuals under im's key: a codec that
 * keeps them, not --no-ef, and a rank that encodes (a broadcast's root; no
 * rank of a single-rank communicator, where nothing is encoded). */
static int has_residual(const impl_t *im, const opts_t *o)
{
    if (im->kind != IMPL_LC || !o->coded || !o->ef || !o->ef_codec || g_size < 2) return 0;
    return o->coll != COLL_BROADCAST || g_rank == o->root;
}

static void lc_release(impl_t *im)
{
    lc_status_t st = lc_tensor_release(im->comm, im->tensor_key);
    if (st != LC_OK) bench_die("lc_tensor_release: %s", lc_status_str(st));
}

static int lc_max_doubles(impl_t *im, double *v, int n)
{
    bench_lc_max(im->comm, v, n);
    return 0;
}

static int lc_bar(impl_t *im)
{
    bench_lc_barrier(im->comm);
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

static void mpi_check(const opts_t *o, int rc)
{
    if (rc != MPI_SUCCESS) bench_die("MPI %s failed (%d)", COLL(o)->name, rc);
}

static int mpi_allreduce_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    (void)im;
    mpi_check(o, MPI_Allreduce(o->inplace ? MPI_IN_PLACE : s, r, (int)count, mpi_dtype(o->dt->lc),
                               mpi_op(o->op), MPI_COMM_WORLD));
    return 0;
}

static int mpi_broadcast_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    (void)im, (void)s;
    mpi_check(o, MPI_Bcast(r, (int)count, mpi_dtype(o->dt->lc), o->root, MPI_COMM_WORLD));
    return 0;
}

static int mpi_allgather_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    MPI_Datatype dt = mpi_dtype(o->dt->lc);
    (void)im;
    /* In place: this rank's block already sits in r (s points into it). */
    mpi_check(o, MPI_Allgather(o->inplace ? MPI_IN_PLACE : s, (int)count, dt, r, (int)count, dt,
                               MPI_COMM_WORLD));
    return 0;
}

static int mpi_reduce_scatter_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    (void)im;
    mpi_check(o, MPI_Reduce_scatter_block(o->inplace ? MPI_IN_PLACE : s, r, (int)count,
                                          mpi_dtype(o->dt->lc), mpi_op(o->op), MPI_COMM_WORLD));
    return 0;
}

static int mpi_alltoall_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    MPI_Datatype dt = mpi_dtype(o->dt->lc);
    (void)im;
    mpi_check(o, MPI_Alltoall(o->inplace ? MPI_IN_PLACE : s, (int)count, dt, r, (int)count, dt,
                              MPI_COMM_WORLD));
    return 0;
}

static int mpi_alltoallv_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    MPI_Datatype dt = mpi_dtype(o->dt->lc);
    const a2av_layout_t *L = a2av_layout(count);
    (void)im;
    if (!L->fits_int) bench_die("MPI alltoallv: %zu elements exceed MPI's int counts", count);
    mpi_check(o, MPI_Alltoallv(s, L->iscount, L->isdispl, dt, r, L->ircount, L->irdispl, dt,
                               MPI_COMM_WORLD));
    return 0;
}

static int mpi_barrier_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    (void)im, (void)s, (void)r, (void)count;
    mpi_check(o, MPI_Barrier(MPI_COMM_WORLD));
    return 0;
}

static int mpi_max_doubles(impl_t *im, double *v, int n)
{
    (void)im;
    bench_mpi_max(v, n);
    return 0;
}

static int mpi_bar(impl_t *im)
{
    (void)im;
    bench_mpi_barrier();
    return 0;
}
#define MPI_FN(f) f
#else
#define MPI_FN(f) NULL
#endif

/* ------------------------------------------------------------ Gloo baseline */
#ifdef LC_BENCH_GLOO
/* Gloo's datatype for ours, or -1 (Gloo is given float, double, int32, int64). */
static int gloo_dtype(lc_dtype_t d)
{
    switch (d) {
    case LC_FLOAT32: return GB_FLOAT32;
    case LC_FLOAT64: return GB_FLOAT64;
    case LC_INT32: return GB_INT32;
    case LC_INT64: return GB_INT64;
    default: return -1;
    }
}

static int gloo_op(lc_op_t op)
{
    switch (op) {
    case LC_SUM: return GB_SUM;
    case LC_MAX: return GB_MAX;
    case LC_MIN: return GB_MIN;
    case LC_PROD: return GB_PROD;
    default: return -1; /* Gloo has no average */
    }
}

static int gloo_check(int rc)
{
    if (rc != 0) bench_die("%s", gb_last_error());
    return 0;
}

static void gloo_prepare(impl_t *im, const opts_t *o, void *r, size_t count)
{
    if (o->coll != COLL_ALLREDUCE) return;
    gloo_check(gb_allreduce_prepare(im->gloo, r, count, (gb_dtype_t)gloo_dtype(o->dt->lc),
                                    (gb_op_t)gloo_op(o->op), (gb_algo_t)im->gloo_algo));
}

static int gloo_allreduce_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    return gloo_check(gb_allreduce(im->gloo, s, r, count, (gb_dtype_t)gloo_dtype(o->dt->lc),
                                   (gb_op_t)gloo_op(o->op), (gb_algo_t)im->gloo_algo));
}

static int gloo_broadcast_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    (void)s;
    return gloo_check(gb_broadcast(im->gloo, r, count, (gb_dtype_t)gloo_dtype(o->dt->lc), o->root));
}

static int gloo_allgather_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    return gloo_check(gb_allgather(im->gloo, s, r, count, (gb_dtype_t)gloo_dtype(o->dt->lc)));
}

static int gloo_alltoall_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    return gloo_check(gb_alltoall(im->gloo, s, r, count, (gb_dtype_t)gloo_dtype(o->dt->lc)));
}

static int gloo_alltoallv_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    const a2av_layout_t *L = a2av_layout(count);
    return gloo_check(
        gb_alltoallv(im->gloo, s, L->scount, r, L->rcount, (gb_dtype_t)gloo_dtype(o->dt->lc)));
}

static int gloo_barrier_run(impl_t *im, const opts_t *o, const void *s, void *r, size_t count)
{
    (void)o, (void)s, (void)r, (void)count;
    return gloo_check(gb_barrier(im->gloo));
}

static int gloo_max_doubles(impl_t *im, double *v, int n)
{
    return gloo_check(gb_max_doubles(im->gloo, v, (size_t)n));
}

static int gloo_bar(impl_t *im)
{
    return gloo_check(gb_barrier(im->gloo));
}

/* The FileStore directory of this run; rank 0 owns it until it is removed.
 * gloo_dir is written once, before gloo_dir_owned is set, and only read after:
 * the signal handler needs no other state. */
static char gloo_dir[PATH_MAX];
static atomic_int gloo_dir_owned;

/* Best effort: remove the store's files and the directory (rank 0, once).
 * Async-signal-safe, as it also runs from gloo_on_signal(): only open,
 * getdents64 (a bare system call: no locks, no malloc, unlike readdir),
 * unlinkat, lseek, close and rmdir on the precomputed gloo_dir, with a static
 * buffer, and a lock-free atomic exchange so that only one caller removes. */
static void gloo_remove_store(void)
{
    static char buf[4096] __attribute__((aligned(8)));
    if (!atomic_exchange(&gloo_dir_owned, 0)) return;
    int fd = open(gloo_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        /* Rescan after a pass that removed something: a directory changed
         * while it is read may skip entries. */
        for (int pass = 0, removed = 1; removed && pass < 8; pass++) {
            removed = 0;
            if (lseek(fd, 0, SEEK_SET) != 0) break;
            for (;;) {
                ssize_t n = getdents64(fd, buf, sizeof(buf));
                if (n <= 0) break;
                for (ssize_t off = 0; off < n;) {
                    const struct dirent64 *e = (const struct dirent64 *)(buf + off);
                    const char *nm = e->d_name;
                    off += e->d_reclen;
                    if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
                        continue;
                    if (unlinkat(fd, nm, 0) == 0) removed = 1;
                }
            }
        }
        close(fd);
    }
    rmdir(gloo_dir);
}

/* SIGINT, SIGTERM, SIGHUP while rank 0 owns the store: remove it, then die
 * of the signal with its default action (so the exit status still says so). */
static void gloo_on_signal(int sig)
{
    int saved = errno;
    gloo_remove_store();
    signal(sig, SIG_DFL);
    raise(sig); /* pending until the handler returns (sig is blocked in it) */
    errno = saved;
}

/* Connect the Gloo context: rank 0 makes a fresh store directory named by a
 * nonce it broadcasts over Laconic; once every rank is connected, rank 0
 * removes it (also on exit or a fatal signal before that). */
static void *gloo_setup(const opts_t *o, lc_comm_t *comm)
{
    unsigned char nonce[8] = { 0 };
    char hex[2 * sizeof(nonce) + 1];
    gb_ctx_t *ctx = NULL;
    lc_status_t st;

    if (g_rank == 0) {
        if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce)) {
            uint64_t x = (uint64_t)bench_now_us() ^ ((uint64_t)getpid() << 32);
            memcpy(nonce, &x, sizeof(nonce));
        }
    }
    for (size_t k = 0; k < sizeof(nonce); k++) snprintf(hex + 2 * k, 3, "%02x", nonce[k]);
    if (g_rank == 0) {
        snprintf(gloo_dir, sizeof(gloo_dir), "%s/lc-bench-gloo-%s", o->gloo_store, hex);
        if (mkdir(gloo_dir, 0700) != 0)
            bench_die("gloo store: cannot create %s: %s", gloo_dir, strerror(errno));
        atomic_store(&gloo_dir_owned, 1);
        atexit(gloo_remove_store);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = gloo_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaddset(&sa.sa_mask, SIGTERM); /* one handler at a time */
        sigaddset(&sa.sa_mask, SIGINT);
        sigaddset(&sa.sa_mask, SIGHUP);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    st = lc_broadcast(nonce, sizeof(nonce), LC_UINT8, 0, comm, NULL);
    if (st != LC_OK) bench_die("gloo store: broadcast of the nonce: %s", lc_status_str(st));
    for (size_t k = 0; k < sizeof(nonce); k++) snprintf(hex + 2 * k, 3, "%02x", nonce[k]);
    if (g_rank != 0)
        snprintf(gloo_dir, sizeof(gloo_dir), "%s/lc-bench-gloo-%s", o->gloo_store, hex);

    const char *ifaddr = getenv("LC_IFADDR");
    if (ifaddr == NULL || *ifaddr == '\0') ifaddr = "127.0.0.1";
    const char *tmo = getenv("LC_TIMEOUT_MS"); /* Gloo's bound follows Laconic's */
    long timeout_ms = tmo != NULL && atol(tmo) > 0 ? atol(tmo) : 300000;
    if (gb_create(g_rank, g_size, gloo_dir, ifaddr, timeout_ms, &ctx) != 0)
        bench_die("%s (bind address %s)", gb_last_error(), ifaddr);
    st = lc_barrier(comm); /* every rank is connected: the store has served */
    if (st != LC_OK) bench_die("barrier: %s", lc_status_str(st));
    if (g_rank == 0) {
        gloo_remove_store();
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
    }
    return ctx;
}
#define GLOO_FN(f) f
#else
#define GLOO_FN(f) NULL
#endif

/* ------------------------------------------------------------ data and checking */

/* Input element i of rank r: small integers, exact in every datatype, whose
 * sums over up to 64 ranks stay exact too. */
static double int_value(const opts_t *o, size_t i, int r)
{
    if (o->op == LC_PROD) return ((i + (size_t)r) % (size_t)(g_size + 1)) == 0 ? 2.0 : 1.0;
    /* |value| <= k with k * ranks <= 255 for bfloat16 (8 significant bits),
     * so every partial sum stays exact; 30 for the others (f16: 30 x 64). */
    int k = 30;
    if (o->dt->lc == LC_BFLOAT16 && g_size * k > 255) k = 255 / g_size > 0 ? 255 / g_size : 1;
    double v = (double)((i * 7 + (size_t)r * 13) % (size_t)(2 * k + 1));
    return o->dt->lc == LC_UINT8 ? v : v - k;
}

/* With a lossy codec the inputs are gradient-like floats instead (a lossy
 * codec is not exact on small integers either, and its ratio and error
 * depend on the data): lc-codec-bench's generator (datagen.h: runs of exact
 * zeros between heavy-tailed values of magnitude ~1e-3), run on blocks of
 * GRAD_BLOCK elements, each seeded by (rank, block), so that any rank can
 * recompute any rank's element i for the check. A small direct-mapped cache
 * of blocks (at least two slots per rank) keeps that to about one generation
 * per block and rank for every access pattern of the checks (all ranks'
 * block b for all-reduce, one rank's blocks in a row for the others). */
#define GRAD_BLOCK 1024
typedef struct {
    int rank; /* -1: empty */
    size_t blk;
    float v[GRAD_BLOCK];
} grad_slot_t;
static grad_slot_t *g_grad;
static size_t g_grad_slots; /* a power of two */

static void grad_init(void)
{
    size_t n = 8;
    while (n < 2 * (size_t)g_size) n *= 2;
    g_grad = malloc(n * sizeof(*g_grad));
    if (g_grad == NULL) bench_die("cannot allocate the data generator's cache");
    for (size_t k = 0; k < n; k++) g_grad[k].rank = -1;
    g_grad_slots = n;
}

static double grad_value(size_t i, int r)
{
    size_t blk = i / GRAD_BLOCK;
    grad_slot_t *sl = &g_grad[(blk * 0x9e3779b9u + (size_t)r) & (g_grad_slots - 1)];
    if (sl->rank != r || sl->blk != blk) {
        lc_datagen_fill(sl->v, GRAD_BLOCK, LC_DATA_GRADIENT, ((uint64_t)(r + 1) << 40) ^ blk);
        sl->rank = r;
        sl->blk = blk;
    }
    return sl->v[i % GRAD_BLOCK];
}

/* Input element i of rank r for this run. */
static double input_value(const opts_t *o, size_t i, int r)
{
    return o->lossy ? grad_value(i, r) : int_value(o, i, r);
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

/* Fill the inputs of one call (in r when the call is in place or a broadcast). */
static void fill_reduce(const opts_t *o, void *s, void *r, size_t count)
{
    (void)r;
    for (size_t i = 0; i < count; i++) store(o->dt, s, i, input_value(o, i, g_rank));
}

static void fill_broadcast(const opts_t *o, void *s, void *r, size_t count)
{
    (void)s;
    for (size_t i = 0; i < count; i++)
        store(o->dt, r, i, g_rank == o->root ? input_value(o, i, 0) : -1.0);
}

static void fill_allgather(const opts_t *o, void *s, void *r, size_t count)
{
    (void)r; /* in place, s points at this rank's block of r */
    for (size_t i = 0; i < count; i++)
        store(o->dt, s, i, input_value(o, (size_t)g_rank * count + i, 0));
}

/* Reduce-scatter and all-to-all: count is per rank; the input holds size blocks. */
static void fill_blocks(const opts_t *o, void *s, void *r, size_t count)
{
    (void)r;
    for (size_t i = 0; i < count * (size_t)g_size; i++)
        store(o->dt, s, i, input_value(o, i, g_rank));
}

/* alltoallv: count elements, split into this rank's blocks by a2av_layout(). */
static void fill_skewed(const opts_t *o, void *s, void *r, size_t count)
{
    const a2av_layout_t *L = a2av_layout(count);
    (void)r;
    for (size_t i = 0; i < L->stotal; i++) store(o->dt, s, i, input_value(o, i, g_rank));
}

static void fill_none(const opts_t *o, void *s, void *r, size_t count)
{
    (void)o, (void)s, (void)r, (void)count;
}

/* Expected output element i (reference in double). */
static double expect_reduce(const opts_t *o, size_t i, size_t count)
{
    (void)count;
    return expected_reduce(o, i);
}

static double expect_root(const opts_t *o, size_t i, size_t count)
{
    (void)count; /* broadcast and all-gather: element i of the global input */
    return input_value(o, i, 0);
}

static double expect_reduce_scatter(const opts_t *o, size_t i, size_t count)
{
    return expected_reduce(o, (size_t)g_rank * count + i);
}

static double expect_alltoall(const opts_t *o, size_t i, size_t count)
{
    /* block j of the output is block g_rank of rank j's input */
    return input_value(o, (size_t)g_rank * count + i % count, (int)(i / count));
}

static double expect_alltoallv(const opts_t *o, size_t i, size_t count)
{
    /* Block r of the output (from rank r) is the block for this rank in
     * rank r's input: find r, the last rank whose block starts at or before
     * i (empty blocks start where the next one does). */
    const a2av_layout_t *L = a2av_layout(count);
    int lo = 0, hi = g_size - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (L->rdispl[mid] <= i)
            lo = mid;
        else
            hi = mid - 1;
    }
    return input_value(o, L->peer_sdispl[lo] + (i - L->rdispl[lo]), lo);
}

static size_t out_count(size_t count)
{
    return count;
}

static size_t out_all_ranks(size_t count)
{
    return count * (size_t)g_size;
}

static size_t out_skewed(size_t count)
{
    return a2av_layout(count)->rtotal;
}

static double bw_allreduce(int n)
{
    return 2.0 * (n - 1) / n;
}

static double bw_spread(int n)
{
    return (double)(n - 1) / n;
}

static double bw_one(int n)
{
    (void)n;
    return 1.0;
}

/* The collectives. A new one adds one entry (and its coll_t); an
 * implementation without it leaves its run function NULL. */
static const coll_desc_t colls[COLL_COUNT] = {
    [COLL_ALLREDUCE] = { .name = "allreduce",
                         .busbw_factor = bw_allreduce,
                         .count_rule = COUNT_WHOLE,
                         .reduces = 1,
                         .out_elems = out_count,
                         .fill = fill_reduce,
                         .expect = expect_reduce,
                         .run = { [IMPL_LC] = lc_allreduce_run,
                                  [IMPL_MPI] = MPI_FN(mpi_allreduce_run),
                                  [IMPL_GLOO] = GLOO_FN(gloo_allreduce_run) } },
    [COLL_BROADCAST] = { .name = "broadcast",
                         .busbw_factor = bw_one,
                         .count_rule = COUNT_WHOLE,
                         .reduces = 0,
                         .out_elems = out_count,
                         .fill = fill_broadcast,
                         .expect = expect_root,
                         .run = { [IMPL_LC] = lc_broadcast_run,
                                  [IMPL_MPI] = MPI_FN(mpi_broadcast_run),
                                  [IMPL_GLOO] = GLOO_FN(gloo_broadcast_run) } },
    [COLL_ALLGATHER] = { .name = "allgather",
                         .busbw_factor = bw_spread,
                         .count_rule = COUNT_PER_RANK,
                         .reduces = 0,
                         .out_elems = out_all_ranks,
                         .fill = fill_allgather,
                         .expect = expect_root,
                         .run = { [IMPL_LC] = lc_allgather_run,
                                  [IMPL_MPI] = MPI_FN(mpi_allgather_run),
                                  [IMPL_GLOO] = GLOO_FN(gloo_allgather_run) } },
    [COLL_REDUCE_SCATTER] = { .name = "reduce_scatter",
                              .busbw_factor = bw_spread,
                              .count_rule = COUNT_PER_RANK,
                              .reduces = 1,
                              .out_elems = out_count,
                              .fill = fill_blocks,
                              .expect = expect_reduce_scatter,
                              .run = { [IMPL_LC] = lc_reduce_scatter_run,
                                       [IMPL_MPI] = MPI_FN(mpi_reduce_scatter_run),
                                       [IMPL_GLOO] = NULL } },
    [COLL_ALLTOALL] = { .name = "alltoall",
                        .busbw_factor = bw_spread,
                        .count_rule = COUNT_PER_RANK,
                        .reduces = 0,
                        .out_elems = out_all_ranks,
                        .fill = fill_blocks,
                        .expect = expect_alltoall,
                        .run = { [IMPL_LC] = lc_alltoall_run,
                                 [IMPL_MPI] = MPI_FN(mpi_alltoall_run),
                                 [IMPL_GLOO] = GLOO_FN(gloo_alltoall_run) } },
    [COLL_ALLTOALLV] = { .name = "alltoallv",
                         .busbw_factor = bw_spread,
                         .count_rule = COUNT_SKEWED,
                         .reduces = 0,
                         .out_elems = out_skewed,
                         .fill = fill_skewed,
                         .expect = expect_alltoallv,
                         .run = { [IMPL_LC] = lc_alltoallv_run,
                                  [IMPL_MPI] = MPI_FN(mpi_alltoallv_run),
                                  [IMPL_GLOO] = GLOO_FN(gloo_alltoallv_run) } },
    [COLL_BARRIER] = { .name = "barrier",
                       .busbw_factor = bw_one,
                       .count_rule = COUNT_NONE,
                       .reduces = 0,
                       .out_elems = out_count,
                       .fill = fill_none,
                       .expect = expect_reduce,
                       .run = { [IMPL_LC] = lc_barrier_run,
                                [IMPL_MPI] = MPI_FN(mpi_barrier_run),
                                [IMPL_GLOO] = GLOO_FN(gloo_barrier_run) } },
};

/* The relative L2 error a row of im may have in a lossy run: the codec's
 * bound for Laconic, float rounding (sums in another order than the double
 * reference) for the uncompressed baselines. */
#define FP32_L2_BOUND 1e-5
static double l2_bound(const impl_t *im, const opts_t *o)
{
    return im->kind == IMPL_LC && o->coded && o->codec_bound > 0 ? o->codec_bound : FP32_L2_BOUND;
}

/* Expected output element i. In a lossy run every element costs a
 * regeneration of the ranks' gradient-like inputs (for all-reduce all of
 * them), seconds per check at 64 MiB: the values are computed once per size
 * and kept for the other rows of that size (with --codec LIST every codec's
 * row and every baseline's check the same values). Should the cache not
 * fit in memory, each element is computed again, as without it. */
static double *g_expect;
static size_t g_expect_count = SIZE_MAX, g_expect_cap;
static double expect_at(const opts_t *o, size_t i, size_t count)
{
    const coll_desc_t *c = COLL(o);
    if (!o->lossy) return c->expect(o, i, count);
    if (g_expect_count != count) {
        size_t n = c->out_elems(count);
        if (n > g_expect_cap) {
            free(g_expect);
            g_expect = malloc((n ? n : 1) * sizeof(double));
            g_expect_cap = g_expect ? n : 0;
        }
        if (g_expect == NULL) return c->expect(o, i, count);
        for (size_t k = 0; k < n; k++) g_expect[k] = c->expect(o, k, count);
        g_expect_count = count;
    }
    return g_expect[i];
}

/* Lossy run: this rank's output against the exact result, as a whole:
 * *relerr = ||got - exact|| / ||exact|| (NaN when an element is NaN);
 * returns 1 (wrong) when that exceeds bound or is NaN, else 0. */
static size_t check_l2(const opts_t *o, const void *r, size_t count, double bound, double *relerr)
{
    const coll_desc_t *c = COLL(o);
    size_t n = c->out_elems(count);
    double err2 = 0, ref2 = 0;
    for (size_t i = 0; i < n; i++) {
        double want = expect_at(o, i, count), d = load(o->dt, r, i) - want;
        err2 += d * d; /* a NaN makes err2 NaN */
        ref2 += want * want;
    }
    *relerr = err2 == 0 ? 0 : sqrt(err2) / (ref2 > 0 ? sqrt(ref2) : 1e-30);
    return !(*relerr <= bound);
}

static size_t check(const opts_t *o, const impl_t *im, const void *r, size_t count, double *relerr)
{
    const coll_desc_t *c = COLL(o);
    size_t wrong = 0, n = c->out_elems(count);
    if (o->lossy) return check_l2(o, r, count, l2_bound(im, o), relerr);
    double worst = 0;
    int nan_seen = 0;
    for (size_t i = 0; i < n; i++) {
        double want = expect_at(o, i, count), got = load(o->dt, r, i);
        double err = fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1.0);
        if (isnan(err))
            nan_seen = 1;
        else if (err > worst)
            worst = err;
        if (!(err <= o->dt->tol)) wrong++; /* a NaN is wrong too */
    }
    *relerr = nan_seen ? NAN : worst; /* a NaN anywhere makes the worst error NaN */
    return wrong;
}

/* Why im cannot run the collective of o (NULL: it can). */
static const char *unavailable(const impl_t *im, const opts_t *o)
{
    if (COLL(o)->run[im->kind] == NULL) return "not available";
    /* Laconic's and Gloo's all-to-all are not in place (MPI_IN_PLACE is). */
    if (im->kind != IMPL_MPI && o->inplace && o->coll == COLL_ALLTOALL)
        return "not available in place";
    if (o->inplace && o->coll == COLL_ALLTOALLV) /* receive blocks differ from send blocks */
        return "not available in place";
    return NULL;
}

/* ------------------------------------------------------------ driver */

static void usage(void)
{
    puts("usage: lc-bench [options]   (under lcrun; under mpirun for --baseline mpi)\n"
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
         "      --coll C            allreduce broadcast allgather reduce_scatter alltoall\n"
         "                          alltoallv barrier (alltoall: SIZE is the per-rank send\n"
         "                          buffer, SIZE/n per peer; alltoallv: the same buffer in\n"
         "                          skewed blocks, rank r sends rank p ((p-r) mod n) x u\n"
         "                          elements, u = SIZE/elt/(n(n-1)/2): none to itself;\n"
         "                          not in place)\n"
         "      --algo A            Laconic: auto ring tree recdbl chain twophase pairwise\n"
         "                          (default auto; with a codec, auto picks all-reduce\n"
         "                          twophase, or ring on links measured long; broadcast\n"
         "                          chain, all-gather ring)\n"
         "      --chunk SIZE        Laconic pipeline chunk size (default: LC_CHUNK_BYTES)\n"
         "      --inplace           in-place (default out-of-place)\n"
         "      --nonblocking       time Laconic's lc_i* + lc_wait (default: blocking calls)\n"
         "      --baseline LIST     also time these, comma-separated, in the same run:\n"
         "                          mpi  Open MPI (run under mpirun)\n"
         "                          gloo Gloo over TCP (under lcrun or mpirun), bound to\n"
         "                               $LC_IFADDR, else 127.0.0.1; float double int32\n"
         "                               int64, sum max min prod; timeout $LC_TIMEOUT_MS\n"
         "      --gloo-algos LIST   Gloo all-reduce algorithms: ring,hd,bcube (default all)\n"
         "      --gloo-store DIR    Gloo FileStore parent directory, shared by all ranks\n"
         "                          (default /tmp; a fresh subdirectory per run, removed)\n"
         "      --link-mbps B       link rate in Mbit/s (as measured): adds bound_us, the\n"
         "                          time the link needs for busbw's bytes, and %bound\n"
         "      --scenario NAME     label of the network scenario, copied into the JSON\n"
         "      --json FILE         append one JSON object per result row (rank 0)\n"
         "      --codec LIST        Laconic's rows compress with each SPEC of the comma-separated\n"
         "                          LIST in turn, one row per SPEC at every size (onebit,\n"
         "                          topk:0.01, int8, fp16, bf16, zstd, topk:0.01+zstd, none =\n"
         "                          uncompressed; -d float; all-reduce sum or avg); baselines\n"
         "                          stay uncompressed, one row per size. reduce_scatter and\n"
         "                          barrier take no codec: they run uncompressed (said once on\n"
         "                          stderr). A lossy codec gives every row gradient-like float\n"
         "                          data and an L2 check: relerr = ||got-exact||/||exact||, the\n"
         "                          row wrong (#wrong 1) above onebit 1, topk 1, int8 0.05,\n"
         "                          fp16 0.002, bf16 0.02 (baselines 1e-5) or on NaN (slower:\n"
         "                          it regenerates the ranks' inputs); lossless codecs keep\n"
         "                          the exact check\n"
         "      --coded-warmup N    warm-up iterations of compressed rows (default: -w); their\n"
         "                          first calls fault in residuals and scratch\n"
         "      --no-ef             no error feedback (default with onebit/topk: on, one tensor\n"
         "                          key per collective and size; the checked call starts from\n"
         "                          zero residuals)\n"
         "Columns: size count type redop impl algo time(us) algbw busbw #wrong relerr wire_B\n"
         "  ratio bound_us %bound codec enc_us dec_us wire_us. busbw counts uncompressed\n"
         "  bytes; ratio = uncompressed / sent bytes (lowest over ranks); bound_us = busbw's\n"
         "  factor x size / (ratio x link rate): with a codec the uncompressed bound divided\n"
         "  by the measured ratio; enc_us dec_us wire_us: lc_op_info_t's encode, decode and\n"
         "  wire times of one call (largest over ranks; - for the baselines).");
}

/* The codecs --codec knows, by the name a spec starts with (the rest of the
 * spec is the library's to check), and the largest relative L2 error a
 * Laconic row may have with each (lossy: -1 for the exact check). */
static const struct {
    const char *name;
    double bound;
    int ef; /* keeps error-feedback residuals */
} codec_bounds[] = {
    { "onebit", 1.0, 1 }, { "topk", 1.0, 1 }, { "int8", 0.05, 0 }, { "fp16", 0.002, 0 },
    { "bf16", 0.02, 0 },  { "zstd", -1, 0 },  { "none", -1, 0 },
};

/* One codec of --codec's list: which rows take it, with which data and
 * check (see the top comment). */
static void parse_codec(opts_t *o)
{
    if (o->codec == NULL) return;
    if (strcmp(o->codec, "none") == 0) { /* the library's default: no codec */
        o->codec = NULL;
        return;
    }
    size_t len = strcspn(o->codec, ":+"), k, nb = sizeof(codec_bounds) / sizeof(codec_bounds[0]);
    for (k = 0; k < nb; k++)
        if (strlen(codec_bounds[k].name) == len &&
            strncmp(o->codec, codec_bounds[k].name, len) == 0)
            break;
    if (k == nb)
        bench_die("--codec '%s': unknown codec (onebit topk int8 fp16 bf16 zstd none, "
                  "optionally +zstd)",
                  o->codec);
    if (o->coll == COLL_REDUCE_SCATTER || o->coll == COLL_BARRIER) {
        /* Laconic's reduce_scatter and barrier take no codec (LC_ERR_UNSUPPORTED). */
        o->coded = 0;
        return;
    }
    o->coded = 1;
    o->lossy = codec_bounds[k].bound > 0;
    if (strchr(o->codec, ',') != NULL) bench_die("--codec '%s': one spec per entry", o->codec);
    o->codec_bound = codec_bounds[k].bound;
    o->ef_codec = codec_bounds[k].ef;
    if (o->dt->lc != LC_FLOAT32)
        bench_die("--codec: codecs take float data (-d float), not %s", o->dt->name);
    if (o->coll == COLL_ALLREDUCE && o->op != LC_SUM && o->op != LC_AVG)
        bench_die("--codec: a compressed all-reduce sums: -o sum or avg, not %s", op_names[o->op]);
}

/* --codec LIST: one set of options per entry, each a copy of o with its
 * codec's fields; Laconic gets one row per entry at every size, the
 * baselines one row (they do not depend on the codec). A lossy codec
 * anywhere in the list gives every row the gradient-like data, so all rows
 * of a size see the same inputs. Without --codec: one entry, uncompressed. */
#define MAX_CODECS 16
static opts_t g_codec_opts[MAX_CODECS];
static int g_ncodecs;
static char g_codec_list[1024];
static void parse_codecs(opts_t *o)
{
    int lossy = 0;
    g_ncodecs = 0;
    if (o->codec == NULL) {
        g_codec_opts[g_ncodecs++] = *o;
        return;
    }
    if (strlen(o->codec) >= sizeof(g_codec_list)) bench_die("--codec: list too long");
    strcpy(g_codec_list, o->codec);
    for (char *save = NULL, *t = strtok_r(g_codec_list, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (g_ncodecs == MAX_CODECS) bench_die("--codec: at most %d entries", MAX_CODECS);
        opts_t *c = &g_codec_opts[g_ncodecs++];
        *c = *o;
        c->codec = t;
        parse_codec(c);
        lossy |= c->lossy;
    }
    if (g_ncodecs == 0) bench_die("--codec: empty list");
    o->codec = NULL; /* the baselines' options: uncompressed */
    o->lossy = lossy;
    for (int k = 0; k < g_ncodecs; k++) g_codec_opts[k].lossy = lossy;
}

/* Bit mask of the comma-separated names in list that appear in names[0..n). */
static unsigned parse_list(const char *list, const char *const *names, int n, const char *what)
{
    unsigned mask = 0;
    char buf[256];
    if (strlen(list) >= sizeof(buf)) bench_die("%s: list too long", what);
    strcpy(buf, list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k;
        for (k = 0; k < n && strcmp(t, names[k]) != 0; k++) continue;
        if (k == n) bench_die("%s: unknown name '%s'", what, t);
        mask |= 1u << k;
    }
    if (mask == 0) bench_die("%s: empty list", what);
    return mask;
}

static void parse(int argc, char **argv, opts_t *o)
{
    enum {
        O_COLL = 256,
        O_ALGO,
        O_CHUNK,
        O_INPLACE,
        O_BASE,
        O_JSON,
        O_NB,
        O_GALGOS,
        O_GSTORE,
        O_LINK,
        O_SCEN,
        O_CODEC,
        O_CWARM,
        O_NOEF
    };
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
        { "gloo-algos", 1, 0, O_GALGOS },
        { "gloo-store", 1, 0, O_GSTORE },
        { "link-mbps", 1, 0, O_LINK },
        { "scenario", 1, 0, O_SCEN },
        { "codec", 1, 0, O_CODEC },
        { "coded-warmup", 1, 0, O_CWARM },
        { "no-ef", 0, 0, O_NOEF },
        { "help", 0, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    static const char *const baselines[] = { "mpi", "gloo" };
    int c;
    memset(o, 0, sizeof(*o));
    o->min_bytes = 8;
    o->max_bytes = 32u << 20;
    o->step_factor = 2;
    o->iters = 20;
    o->warmup = 5;
    o->check = 1;
    o->dt = &dtypes[0];
    o->gloo_algos = (1u << GLOO_ALGOS) - 1;
    o->gloo_store = "/tmp";
    o->ef = 1;
    o->coded_warmup = -1;
    while ((c = getopt_long(argc, argv, "b:e:f:i:n:w:c:d:o:r:h", lo, NULL)) != -1) {
        switch (c) {
        case 'b': o->min_bytes = bench_parse_size(optarg); break;
        case 'e': o->max_bytes = bench_parse_size(optarg); break;
        case 'f': o->step_factor = atof(optarg); break;
        case 'i': o->step_bytes = bench_parse_size(optarg); break;
        case 'n': o->iters = atoi(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case 'c': o->check = atoi(optarg); break;
        case 'r': o->root = atoi(optarg); break;
        case 'd':
            o->dt = NULL;
            for (size_t k = 0; k < sizeof(dtypes) / sizeof(dtypes[0]); k++)
                if (strcmp(optarg, dtypes[k].name) == 0) o->dt = &dtypes[k];
            if (!o->dt) bench_die("unknown datatype '%s'", optarg);
            break;
        case 'o':
            o->op = LC_OP_COUNT;
            for (int k = 0; k < LC_OP_COUNT; k++)
                if (strcmp(optarg, op_names[k]) == 0) o->op = (lc_op_t)k;
            if (o->op == LC_OP_COUNT) bench_die("unknown op '%s'", optarg);
            break;
        case O_COLL: {
            int k;
            for (k = 0; k < COLL_COUNT && strcmp(optarg, colls[k].name) != 0; k++) continue;
            if (k == COLL_COUNT) bench_die("unknown collective '%s'", optarg);
            o->coll = (coll_t)k;
            break;
        }
        case O_ALGO: {
            int k;
            for (k = 0; k < LC_ALGO_COUNT && strcmp(optarg, lc_algo_str((lc_algo_t)k)) != 0; k++)
                continue;
            if (k == LC_ALGO_COUNT) bench_die("unknown algorithm '%s'", optarg);
            o->algo = (lc_algo_t)k;
            break;
        }
        case O_CHUNK: o->chunk_bytes = bench_parse_size(optarg); break;
        case O_INPLACE: o->inplace = 1; break;
        case O_BASE: {
            unsigned m = parse_list(optarg, baselines, 2, "--baseline");
            o->baseline_mpi = (m & 1u) != 0;
            o->baseline_gloo = (m & 2u) != 0;
            break;
        }
        case O_JSON: o->json = optarg; break;
        case O_NB: o->nonblocking = 1; break;
        case O_GALGOS:
            o->gloo_algos = parse_list(optarg, gloo_algo_names, GLOO_ALGOS, "--gloo-algos");
            break;
        case O_GSTORE: o->gloo_store = optarg; break;
        case O_LINK:
            o->link_mbps = atof(optarg);
            if (!(o->link_mbps > 0)) bench_die("--link-mbps must be a positive rate in Mbit/s");
            break;
        case O_SCEN: o->scenario = optarg; break;
        case O_CODEC: o->codec = optarg; break;
        case O_CWARM: o->coded_warmup = atoi(optarg); break;
        case O_NOEF: o->ef = 0; break;
        case 'h': usage(); exit(0);
        default: usage(); exit(2);
        }
    }
    if (optind < argc) bench_die("unexpected argument '%s'", argv[optind]);
    if (o->iters < 1 || o->iters > BENCH_MAX_ITERS)
        bench_die("-n must be in [1, %d]", BENCH_MAX_ITERS);
    if (o->warmup < 0) bench_die("-w must be >= 0");
    if (o->coded_warmup < -1) bench_die("--coded-warmup must be >= 0");
    if (o->step_bytes == 0 && o->step_factor <= 1) bench_die("-f must be > 1");
    if (o->min_bytes > o->max_bytes) bench_die("-b must not exceed -e");
    parse_codecs(o);
#ifndef LC_BENCH_MPI
    if (o->baseline_mpi) bench_die("--baseline mpi: lc-bench was built without MPI");
#endif
#ifndef LC_BENCH_GLOO
    if (o->baseline_gloo)
        bench_die("--baseline gloo: lc-bench was built without Gloo (libgloo-dev was not found "
                  "when it was configured)");
#else
    if (o->baseline_gloo) {
        if (gloo_dtype(o->dt->lc) < 0) bench_die("Gloo baseline has no %s datatype", o->dt->name);
        if (colls[o->coll].reduces && gloo_op(o->op) < 0)
            bench_die("Gloo baseline has no '%s' reduction", op_names[o->op]);
        for (int k = 0; k < GLOO_ALGOS; k++)
            if (gb_algo_from_name(gloo_algo_names[k]) != k) bench_die("Gloo algorithm table");
    }
#endif
}

/* Width of the codec column: the longest spec of the list, or "codec" / "none". */
static int codec_width(const opts_t *o)
{
    int w = 5;
    (void)o;
    for (int k = 0; k < g_ncodecs; k++)
        if (g_codec_opts[k].coded && (int)strlen(g_codec_opts[k].codec) > w)
            w = (int)strlen(g_codec_opts[k].codec);
    return w;
}

/* Time one size with one implementation and print its row on rank 0. */
static void bench_one(impl_t *im, const opts_t *o, void *sbuf, void *rbuf, size_t bytes,
                      double *times, FILE *json)
{
    const coll_desc_t *c = COLL(o);
    run_fn run = c->run[im->kind];
    size_t count = bytes / o->dt->size;
    void *s = sbuf, *r = rbuf;
    double relerr = 0, t_med, wire = -1, ratio = 1;
    double enc_us = NAN, dec_us = NAN, wire_us = NAN; /* lc_op_info_t of the last call */
    size_t wrong = 0;
    const int coded = im->kind == IMPL_LC && o->coded;

    if (c->count_rule == COUNT_PER_RANK) count /= (size_t)g_size;
    if (c->count_rule == COUNT_NONE) count = 0;
    if (o->inplace) {
        s = r;
        if (o->coll == COLL_ALLGATHER) s = (char *)r + (size_t)g_rank * count * o->dt->size;
    }
    im->has_info = 0;
    /* A fixed key per (collective, size): the error-feedback residuals live
     * through this size's calls and are released after its row. */
    im->tensor_key = ((uint64_t)0x4c42 << 48) | ((uint64_t)(im->codec_index & 0xf) << 44) |
                     ((uint64_t)o->coll << 40) | ((uint64_t)bytes & (((uint64_t)1 << 40) - 1));
    c->fill(o, s, r, count);
    if (im->prepare) im->prepare(im, o, r, count);
    im->barrier(im);
    /* Compressed rows may warm longer: their first calls fault in the
     * residuals and scratch (see --coded-warmup). */
    const int warmup = coded && o->coded_warmup >= 0 ? o->coded_warmup : o->warmup;
    for (int k = 0; k < warmup; k++) run(im, o, s, r, count);
    im->barrier(im);
    double t0 = bench_now_us();
    for (int k = 0; k < o->iters; k++) {
        run(im, o, s, r, count);
        double t1 = bench_now_us();
        times[k] = t1 - t0;
        t0 = t1;
    }
    im->max_doubles(im, times, o->iters);
    t_med = bench_median(times, o->iters);
    if (im->kind == IMPL_LC) { /* one more call, non-blocking, for its lc_op_info_t */
        im->want_info = 1;
        run(im, o, s, r, count);
        im->want_info = 0;
    }
    if (im->has_info) {
        /* Of the last call: the wire bytes and encode, decode and wire times
         * of the busiest rank, and the lowest ratio over ranks (the rank that
         * sent the most for its data; bound_us divides by it). */
        const lc_op_info_t *in = &im->last;
        times[0] = (double)in->wire_bytes;
        times[1] = in->bytes_sent > 0 && in->ratio > 0 ? -in->ratio : -1e300; /* sent nothing */
        times[2] = in->encode_us;
        times[3] = in->decode_us;
        times[4] = in->wire_us;
        im->max_doubles(im, times, 5);
        wire = times[0];
        ratio = times[1] > -1e300 ? -times[1] : 1.0;
        enc_us = times[2];
        dec_us = times[3];
        wire_us = times[4];
    }
    if (o->check && o->coll != COLL_BARRIER) {
        /* Poison the output first, so results of earlier calls cannot pass
         * for this one's; fill() then rewrites the inputs that live in it. */
        size_t out_bytes = c->out_elems(count) * o->dt->size;
        memset(r, 0xa5, out_bytes > bytes ? out_bytes : bytes);
        c->fill(o, s, r, count);
        /* With error feedback the residual carried in is part of a call's
         * output by design (on a constant input each call sends about x +
         * the last residual): the checked call starts from zero residuals
         * (released, then recreated by the call), so relerr is the error of
         * one compression, which the codec's bound is about. */
        if (has_residual(im, o)) lc_release(im);
        run(im, o, s, r, count);
        if (g_fault_nan && g_rank == 0 && o->dt->tol > 0 && c->out_elems(count) > 0)
            store(o->dt, r, 0, NAN); /* test hook: see LC_BENCH_FAULT above */
        wrong = check(o, im, r, count, &relerr);
        /* The maximum over ranks of a NaN is not defined (MPI_MAX, Gloo's
         * max and LC_MAX may each drop it): it travels as a flag. */
        times[0] = (double)wrong;
        times[1] = isnan(relerr) ? 0 : relerr;
        times[2] = isnan(relerr) ? 1 : 0;
        im->max_doubles(im, times, 3);
        wrong = (size_t)times[0];
        relerr = times[2] > 0 ? NAN : times[1];
    }
    if (has_residual(im, o)) lc_release(im);
    if (g_rank != 0) return;
    double factor = c->busbw_factor(g_size);
    double algbw = t_med > 0 ? (double)bytes / t_med / 1e3 : 0; /* bytes/us -> GB/s */
    double busbw = algbw * factor;
    /* What the link alone needs for the bytes busbw counts (at the wire ratio). */
    double bound = NAN, pct = NAN;
    if (o->link_mbps > 0 && bytes > 0) {
        double r_wire = ratio > 0 ? ratio : 1.0;
        bound = factor * (double)bytes / (r_wire * (o->link_mbps / 8.0)); /* Mbit/s/8 = B/us */
        pct = t_med > 0 ? 100.0 * bound / t_med : NAN;
    }
    const char *algo = im->algo ? im->algo : im->has_info ? lc_algo_str(im->last.algo) : "-";
    const char *codec = coded ? o->codec : "none";
    char bound_s[32] = "-", pct_s[32] = "-", enc_s[32] = "-", dec_s[32] = "-", wus_s[32] = "-";
    if (!isnan(bound)) snprintf(bound_s, sizeof(bound_s), "%.1f", bound);
    if (!isnan(pct)) snprintf(pct_s, sizeof(pct_s), "%.1f", pct);
    if (!isnan(enc_us)) snprintf(enc_s, sizeof(enc_s), "%.1f", enc_us);
    if (!isnan(dec_us)) snprintf(dec_s, sizeof(dec_s), "%.1f", dec_us);
    if (!isnan(wire_us)) snprintf(wus_s, sizeof(wus_s), "%.1f", wire_us);
    printf("%12zu %12zu %8s %6s %6s %8s %11.1f %9.3f %9.3f %7zu %8.1e %12.0f %6.2f %10s %6s "
           "%-*s %9s %9s %9s\n",
           bytes, count, o->dt->name, c->reduces ? op_names[o->op] : "none", impl_names[im->kind],
           algo, t_med, algbw, busbw, o->check ? wrong : 0, relerr, wire, ratio, bound_s, pct_s,
           codec_width(o), codec, enc_s, dec_s, wus_s);
    fflush(stdout);
    if (json != NULL) {
        fprintf(json,
                "{\"kind\":\"coll\",\"impl\":\"%s\",\"coll\":\"%s\",\"algo\":\"%s\","
                "\"codec\":",
                impl_names[im->kind], c->name, algo);
        bench_json_str(json, codec);
        fprintf(json,
                ",\"bytes\":%zu,\"count\":%zu,\"dtype\":\"%s\",\"op\":\"%s\","
                "\"nranks\":%d,\"time_us\":%.3f,\"algbw_gbps\":%.5f,\"busbw_gbps\":%.5f,"
                "\"wire_bytes\":%.0f,\"ratio\":%.4f,\"relerr\":",
                bytes, count, o->dt->name, op_names[o->op], g_size, t_med, algbw, busbw, wire,
                ratio);
        bench_json_num(json, "%.3e", relerr);
        fprintf(json,
                ",\"wrong\":%zu,\"iters\":%d,\"rss_mib\":%zu,\"scenario\":", o->check ? wrong : 0,
                o->iters, bench_peak_rss_mib());
        bench_json_str(json, o->scenario);
        fputs(",\"link_mbps\":", json);
        bench_json_num(json, "%.3f", o->link_mbps > 0 ? o->link_mbps : NAN);
        fputs(",\"bound_us\":", json);
        bench_json_num(json, "%.3f", bound);
        fputs(",\"pct_bound\":", json);
        bench_json_num(json, "%.3f", pct);
        fputs(",\"encode_us\":", json);
        bench_json_num(json, "%.3f", enc_us);
        fputs(",\"decode_us\":", json);
        bench_json_num(json, "%.3f", dec_us);
        fputs(",\"wire_us\":", json);
        bench_json_num(json, "%.3f", wire_us);
        fprintf(json, ",\"ef\":%d,\"relerr_bound\":", coded && o->ef && o->ef_codec);
        bench_json_num(json, "%.3g", o->lossy ? l2_bound(im, o) : NAN);
        fprintf(json, ",\"data\":\"%s\"}\n", o->lossy ? "gradient" : "smallint");
        fflush(json);
    }
}

int main(int argc, char **argv)
{
    opts_t o;
    impl_t lc, all[MAX_CODECS + 1 + GLOO_ALGOS], *list[MAX_CODECS + 1 + GLOO_ALGOS];
    int nall = 0, nimpl = 0;
    lc_status_t st;
    FILE *json = NULL;
    void *gloo = NULL;

    parse(argc, argv, &o);
    const char *fault = getenv("LC_BENCH_FAULT");
    g_fault_nan = fault != NULL && strcmp(fault, "nan") == 0;
    memset(&lc, 0, sizeof(lc));
    memset(all, 0, sizeof(all));
    lc = (impl_t){
        .kind = IMPL_LC, .max_doubles = lc_max_doubles, .barrier = lc_bar, .gloo_algo = -1
    };
#ifdef LC_BENCH_MPI
    /* Under mpirun MPI bootstraps Laconic, whether or not it is a baseline. */
    const int use_mpi = o.baseline_mpi || bench_under_mpirun();
    if (use_mpi) {
        MPI_Init(&argc, &argv);
        if (o.baseline_mpi && mpi_dtype(o.dt->lc) == MPI_DATATYPE_NULL)
            bench_die("MPI has no %s datatype", o.dt->name);
        if (o.baseline_mpi && COLL(&o)->reduces && mpi_op(o.op) == MPI_OP_NULL)
            bench_die("MPI has no '%s' reduction", op_names[o.op]);
        st = lc_comm_init_mpi(MPI_COMM_WORLD, NULL, &lc.comm);
    } else
#endif
        st = lc_comm_init(NULL, &lc.comm);
    if (st != LC_OK) bench_die("communicator: %s (run under lcrun or mpirun)", lc_status_str(st));
    lc_comm_rank(lc.comm, &g_rank);
    bench_rank = g_rank;
    lc_comm_size(lc.comm, &g_size);
    if (o.root < 0 || o.root >= g_size) bench_die("root %d out of range", o.root);
    for (int k = 0; k < g_ncodecs; k++)
        if (g_codec_opts[k].codec != NULL && !g_codec_opts[k].coded && g_rank == 0)
            fprintf(stderr,
                    "lc-bench: --codec %s: Laconic's %s takes no codec; its rows run "
                    "uncompressed (codec none)\n",
                    g_codec_opts[k].codec, COLL(&o)->name);
    if (o.lossy) grad_init();

    /* The implementations under test, each once (Laconic once per codec,
     * Gloo all-reduce once per algorithm). */
    for (int k = 0; k < g_ncodecs; k++) {
        all[nall] = lc;
        all[nall].opts = &g_codec_opts[k];
        all[nall++].codec_index = (unsigned)k;
    }
#ifdef LC_BENCH_MPI
    if (o.baseline_mpi)
        all[nall++] = (impl_t){
            .kind = IMPL_MPI, .algo = "-", .max_doubles = mpi_max_doubles, .barrier = mpi_bar
        };
#endif
#ifdef LC_BENCH_GLOO
    if (o.baseline_gloo) {
        gloo = gloo_setup(&o, lc.comm);
        impl_t g = { .kind = IMPL_GLOO,
                     .algo = "-",
                     .gloo_algo = -1,
                     .max_doubles = gloo_max_doubles,
                     .barrier = gloo_bar,
                     .prepare = gloo_prepare,
                     .gloo = gloo };
        if (o.coll == COLL_ALLREDUCE) {
            for (int k = 0; k < GLOO_ALGOS; k++) {
                if (!(o.gloo_algos & (1u << k))) continue;
                g.algo = gloo_algo_names[k];
                g.gloo_algo = k;
                all[nall++] = g;
            }
        } else {
            all[nall++] = g;
        }
    }
#endif
    for (int k = 0; k < nall; k++)
        if (unavailable(&all[k], &o) == NULL) list[nimpl++] = &all[k];

    /* Input and output never exceed the largest size (all-gather's output,
     * reduce-scatter's input and all-to-all's buffers are that size; the
     * other sides are smaller), except that the output is sized for the
     * largest receive total of alltoallv (its rule makes that the size too). */
    size_t max_bytes = o.max_bytes, rbuf_bytes = max_bytes;
    if (COLL(&o)->count_rule == COUNT_SKEWED) {
        size_t rb = a2av_layout(max_bytes / o.dt->size)->rtotal * o.dt->size;
        if (rb > rbuf_bytes) rbuf_bytes = rb;
    }
    void *sbuf = malloc(max_bytes ? max_bytes : 1), *rbuf = malloc(rbuf_bytes ? rbuf_bytes : 1);
    double *times = malloc(sizeof(double) * (size_t)(o.iters > 5 ? o.iters : 5));
    if (!sbuf || !rbuf || !times) bench_die("cannot allocate %zu bytes", max_bytes + rbuf_bytes);
    if (g_rank == 0) {
        if (o.json && (json = fopen(o.json, "a")) == NULL)
            bench_die("cannot open %s: %s", o.json, strerror(errno));
        printf("# lc-bench: %s, %d ranks, %s, op %s, %s, %d iterations (+%d warm-up), median of "
               "per-iteration max over ranks\n",
               COLL(&o)->name, g_size, o.dt->name, op_names[o.op],
               o.inplace ? "in-place" : "out-of-place", o.iters, o.warmup);
        for (int k = 0; k < g_ncodecs; k++) {
            const opts_t *c = &g_codec_opts[k];
            if (!c->coded) continue;
            printf("# codec %s on Laconic's rows (baselines uncompressed), ", c->codec);
            if (c->ef_codec)
                printf("error feedback %s, ", c->ef ? "on (one tensor key per size)" : "off");
            if (c->warmup != (c->coded_warmup >= 0 ? c->coded_warmup : c->warmup))
                printf("%d warm-up, ", c->coded_warmup);
            if (c->lossy && c->codec_bound > 0)
                printf("gradient-like data; relerr = ||got - exact|| / ||exact||, wrong above %g "
                       "(baselines %g)\n",
                       c->codec_bound, FP32_L2_BOUND);
            else if (c->lossy)
                printf("gradient-like data (a lossy codec is in the list), wrong above %g\n",
                       FP32_L2_BOUND);
            else
                printf("lossless: exact check\n");
        }
        if (o.scenario || o.link_mbps > 0) {
            printf("# scenario %s", o.scenario ? o.scenario : "-");
            if (o.link_mbps > 0) printf(", link %.1f Mbit/s", o.link_mbps);
            printf("\n");
        }
        for (int k = 0; k < nall; k++) { /* once per implementation that lacks it */
            const char *why = unavailable(&all[k], &o);
            if (why != NULL && (k == 0 || all[k].kind != all[k - 1].kind))
                printf("# %s: %s %s\n", impl_names[all[k].kind], COLL(&o)->name, why);
        }
        const int cw = codec_width(&o);
        printf("# %10s %12s %8s %6s %6s %8s %11s %9s %9s %7s %8s %12s %6s %10s %6s %-*s %9s %9s "
               "%9s\n",
               "size", "count", "type", "redop", "impl", "algo", "time(us)", "algbw", "busbw",
               "#wrong", "relerr", "wire_B", "ratio", "bound_us", "%bound", cw, "codec", "enc_us",
               "dec_us", "wire_us");
        printf("# %10s %12s %8s %6s %6s %8s %11s %9s %9s %7s %8s %12s %6s %10s %6s %-*s %9s %9s "
               "%9s\n",
               "(B)", "(elts)", "", "", "", "", "", "(GB/s)", "(GB/s)", "", "", "(max rank)",
               "(min)", "(link)", "", cw, "", "(max)", "(max)", "(max)");
    }
    int step = 0;
    size_t unit = o.dt->size;
    if (COLL(&o)->count_rule == COUNT_PER_RANK) unit *= (size_t)g_size;
    if (COLL(&o)->count_rule == COUNT_SKEWED) unit *= a2av_units(g_size);
    for (size_t bytes = o.min_bytes; bytes <= max_bytes; step++) {
        size_t b = bytes / unit * unit;
        if (b == 0 && o.coll != COLL_BARRIER) b = unit;
        if (b <= max_bytes) {
            for (int k = 0; k < nimpl; k++) {
                int which = (step % 2 == 0) ? k : nimpl - 1 - k; /* alternate who goes first */
                const opts_t *wo = list[which]->opts ? list[which]->opts : &o;
                bench_one(list[which], wo, sbuf, rbuf, b, times, json);
            }
        }
        size_t next = o.step_bytes ? bytes + o.step_bytes : (size_t)((double)bytes * o.step_factor);
        if (next <= bytes) next = bytes + 1;
        bytes = next;
    }
    if (g_rank == 0)
        printf("# peak RSS rank 0: %zu MiB (buffers %zu MiB)\n", bench_peak_rss_mib(),
               (max_bytes + rbuf_bytes) >> 20);
    double rss = (double)bench_peak_rss_mib();
    lc.max_doubles(&lc, &rss, 1);
    if (g_rank == 0) printf("# peak RSS, largest rank: %.0f MiB\n", rss);
    if (json) fclose(json);
    free(sbuf);
    free(rbuf);
    free(times);
    free(g_grad);
    free(g_expect);
    a2av_free();
#ifdef LC_BENCH_GLOO
    if (gloo != NULL) {
        lc.barrier(&lc); /* nobody is still in a Gloo call when the pairs close */
        gb_destroy(gloo);
    }
#else
    (void)gloo;
#endif
    lc_comm_destroy(lc.comm);
#ifdef LC_BENCH_MPI
    if (use_mpi) MPI_Finalize();
#endif
    return 0;
}
