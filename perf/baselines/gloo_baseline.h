/*
 * Gloo as a baseline for lc-bench: a small C interface over Facebook's Gloo
 * collectives library (Debian's libgloo-dev), so that a C program can time
 * Gloo's collectives next to Laconic's in the same processes.
 *
 * One gb_ctx_t is one Gloo context: a full mesh of TCP pairs between the
 * ranks, found through a Gloo FileStore (a directory every rank can read and
 * write; on one host any local directory will do) and bound to one local
 * IPv4/IPv6 address. All-reduce uses Gloo's algorithm classes (ring,
 * halving-doubling, bcube); like Gloo's own benchmark, the algorithm object
 * for a (buffer, count, datatype, op) is built once and reused by later calls
 * on the same arguments, so building it is set-up (gb_allreduce_prepare()),
 * not part of a timed call. The other collectives use Gloo's function API
 * (gloo::alltoall, gloo::alltoallv, gloo::allgather, gloo::broadcast,
 * gloo::barrier).
 *
 * Every call is collective: all ranks of the context make it, in the same
 * order, with matching arguments. Nothing throws across this interface: a
 * failure (a Gloo exception, a bad argument) returns -1 and leaves a message
 * for gb_last_error(). The implementation is C++ (gloo_baseline.cc) and is
 * compiled only when libgloo-dev is found (LC_BENCH_GLOO).
 */
#ifndef LC_PERF_GLOO_BASELINE_H
#define LC_PERF_GLOO_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A Gloo context (opaque). */
typedef struct gb_ctx gb_ctx_t;

/** Element types Gloo is given (its templates are instantiated for these). */
typedef enum {
    GB_FLOAT32, /**< float */
    GB_FLOAT64, /**< double */
    GB_INT32,   /**< int32_t */
    GB_INT64    /**< int64_t */
} gb_dtype_t;

/** Reductions (Gloo's built-in ReductionFunction sum, product, max, min). */
typedef enum {
    GB_SUM,  /**< element-wise sum */
    GB_PROD, /**< element-wise product */
    GB_MAX,  /**< element-wise maximum */
    GB_MIN   /**< element-wise minimum */
} gb_op_t;

/** Gloo's all-reduce algorithms. */
typedef enum {
    GB_ALGO_RING,  /**< gloo::AllreduceRing ("ring") */
    GB_ALGO_HD,    /**< gloo::AllreduceHalvingDoubling ("hd") */
    GB_ALGO_BCUBE, /**< gloo::AllreduceBcube ("bcube") */
    GB_ALGO_COUNT  /**< number of algorithms (not an algorithm) */
} gb_algo_t;

/** Short name of an algorithm: "ring", "hd", "bcube" ("?" if out of range). */
const char *gb_algo_name(gb_algo_t algo);

/** The algorithm named @p name ("ring", "hd", "bcube"), or -1 if there is none. */
int gb_algo_from_name(const char *name);

/** Message of the last failed call on this thread ("" if none failed). */
const char *gb_last_error(void);

/**
 * Join a Gloo context of @p size ranks as rank @p rank.
 *
 * @param store_dir  FileStore directory, the same for every rank, existing and
 *                   empty of other jobs' keys (use a fresh directory per run).
 * @param ifaddr     local address (or host name) the TCP device binds to;
 *                   NULL means "127.0.0.1".
 * @param timeout_ms bound on rendezvous and on every collective (0: Gloo's default).
 * @param out        the new context, on success.
 * @return 0, or -1 (see gb_last_error()).
 */
int gb_create(int rank, int size, const char *store_dir, const char *ifaddr, long timeout_ms,
              gb_ctx_t **out);

/** Close the context's connections and free it (NULL is ignored). */
void gb_destroy(gb_ctx_t *ctx);

/**
 * Build (or keep, if already built) the all-reduce algorithm object that
 * gb_allreduce() will use for @p recv, @p count, @p dtype, @p op and @p algo.
 * Collective: call it on every rank. Optional (gb_allreduce() builds on a
 * miss), but it keeps the construction out of a timed first call.
 * @return 0, or -1 (see gb_last_error()).
 */
int gb_allreduce_prepare(gb_ctx_t *ctx, void *recv, size_t count, gb_dtype_t dtype, gb_op_t op,
                         gb_algo_t algo);

/**
 * All-reduce of @p count elements with Gloo algorithm @p algo. Gloo reduces
 * in place: if @p send differs from @p recv it is first copied into @p recv
 * (that copy is part of the call). @p count must fit in an int.
 * @return 0, or -1 (see gb_last_error()).
 */
int gb_allreduce(gb_ctx_t *ctx, const void *send, void *recv, size_t count, gb_dtype_t dtype,
                 gb_op_t op, gb_algo_t algo);

/**
 * All-to-all: block j (@p count elements) of @p send goes to rank j, and
 * block j of @p recv comes from rank j. Both hold size x @p count elements and
 * must not overlap (Gloo has no in-place all-to-all).
 * @return 0, or -1 (see gb_last_error()).
 */
int gb_alltoall(gb_ctx_t *ctx, const void *send, void *recv, size_t count, gb_dtype_t dtype);

/**
 * All-to-all with a block size per peer (gloo::alltoallv): block j of @p send
 * (@p send_counts[j] elements) goes to rank j, and block j of @p recv
 * (@p recv_counts[j] elements) comes from rank j. Blocks lie back to back in
 * rank order (Gloo takes counts, not displacements); both arrays hold size
 * entries, none negative, and this rank's own block has the same size on both
 * sides (send_counts[rank] == recv_counts[rank]). Blocks may be empty. The
 * buffers must not overlap (no in-place form).
 * @return 0, or -1 (see gb_last_error()).
 */
int gb_alltoallv(gb_ctx_t *ctx, const void *send, const int64_t *send_counts, void *recv,
                 const int64_t *recv_counts, gb_dtype_t dtype);

/**
 * All-gather: @p recv (size x @p count elements) gets every rank's @p count
 * elements in rank order. In place when @p send is NULL or points at this
 * rank's block of @p recv.
 * @return 0, or -1 (see gb_last_error()).
 */
int gb_allgather(gb_ctx_t *ctx, const void *send, void *recv, size_t count, gb_dtype_t dtype);

/**
 * Broadcast of @p count elements of @p buf from rank @p root to every rank.
 * @return 0, or -1 (see gb_last_error()).
 */
int gb_broadcast(gb_ctx_t *ctx, void *buf, size_t count, gb_dtype_t dtype, int root);

/** Barrier over the context's ranks. @return 0, or -1 (see gb_last_error()). */
int gb_barrier(gb_ctx_t *ctx);

/**
 * In-place maximum over ranks of @p v[0..n) (for aggregating timings; not
 * meant to be timed itself).
 * @return 0, or -1 (see gb_last_error()).
 */
int gb_max_doubles(gb_ctx_t *ctx, double *v, size_t n);

#ifdef __cplusplus
}
#endif

#endif
