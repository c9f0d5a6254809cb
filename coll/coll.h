/*
 * Collective algorithms. Each algorithm file turns the arguments of one
 * collective into a schedule (coll/sched.h); select.c picks the algorithm.
 * Nothing here knows which transport runs the schedule.
 */
#ifndef LC_COLL_COLL_H
#define LC_COLL_COLL_H

#include "laconic.h"
#include "coll/sched.h"
#include "core/config.h"

#include <stddef.h>

typedef enum {
    LC_COLL_ALLREDUCE = 1,
    LC_COLL_BROADCAST = 2,
    LC_COLL_ALLGATHER = 3,
    LC_COLL_REDUCE_SCATTER = 4,
    LC_COLL_BARRIER = 5,
    LC_COLL_ALLTOALL = 6,
    LC_COLL_ALLTOALLV = 7
} lc_coll_type_t;

typedef struct {
    lc_coll_type_t type;
    const void *sendbuf; /* allreduce, allgather, reduce_scatter */
    void *recvbuf;       /* allreduce, allgather, reduce_scatter; broadcast: the buffer */
    size_t
        count; /* allreduce/broadcast: elements; allgather: per rank; reduce_scatter: recvcount */
    lc_dtype_t dtype;
    lc_op_t op;
    int root;           /* broadcast */
    lc_algo_t algo;     /* requested (LC_ALGO_AUTO = choose) */
    int algo_env;       /* algo came from LC_ALGO: ignored where it does not apply */
    size_t chunk_bytes; /* pipeline chunk (already defaulted from the config) */
    int one_host;       /* lc_coll_link_t.one_host, the same on every rank */
    /* alltoallv: per-rank element counts and displacements (elements). */
    const size_t *sendcounts, *sdispls, *recvcounts, *rdispls;
    /* Compression (NULL codec: none; only LC_FLOAT32 data). Error feedback:
     * the worker residual covers the input (elements indexed like sendbuf),
     * the reducer residual the segment this rank reduces (lc__coll_owned);
     * each is read from *_in and written to *_out, NULL when off. ef: the
     * scheme in effect (LC_EF_OFF without a tensor key). */
    lc_codec_t *codec;
    lc_ef_t ef;
    lc_codec_state_t *ef_in, *ef_out;
    lc_codec_state_t *red_in, *red_out;
} lc_coll_args_t;

/* What the communicator measured of its links at set-up (the same on every rank). */
typedef struct {
    uint32_t rtt_us; /* longest round trip between any two ranks; 0 = unknown */
    uint32_t mbps;   /* slowest link rate measured between hosts, Mbit/s; 0 = unknown */
    int one_host;    /* 1: all ranks on one host (their links are memory copies) */
} lc_coll_link_t;

/*
 * Choose the algorithm for args on nranks ranks: args->algo if forced (LC_ERR_UNSUPPORTED
 * when it does not implement args->type), else by size, rank count and link
 * (NULL = unknown) using cfg's thresholds. Deterministic: every rank with the
 * same arguments, configuration and link picks the same algorithm.
 */
lc_status_t lc__coll_select(const lc_coll_args_t *args, int nranks, const lc_config_t *cfg,
                            const lc_coll_link_t *link, lc_algo_t *algo_p);

/* The elements [*off_p, *off_p + *cnt_p) this rank reduces and re-encodes
 * (and keeps a reducer residual for) in a compressed collective; 0 elements
 * when it re-encodes nothing. */
void lc__coll_owned(const lc_coll_args_t *args, lc_algo_t algo, int rank, int nranks, size_t *off_p,
                    size_t *cnt_p);
/* The part of lc__coll_owned's span that args->ef keeps a reducer residual
 * for: all of it, except under LC_EF_HOPS where a span only ever re-encoded
 * as a complete sum (the two-phase owner's segment, the tree root's half)
 * keeps none, so none is allocated (0 elements). */
void lc__coll_red_span(const lc_coll_args_t *args, lc_algo_t algo, int rank, int nranks,
                       size_t *off_p, size_t *cnt_p);

/* Build the schedule for args with algorithm algo on (rank, nranks). */
lc_status_t lc__coll_build(lc_sched_t *s, const lc_coll_args_t *args, lc_algo_t algo, int rank,
                           int nranks);

/* Per-algorithm builders, called by lc__coll_build. */
lc_status_t lc__allreduce_ring(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__allreduce_tree(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__allreduce_recdbl(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__allgather_ring(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__reduce_scatter_ring(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__broadcast_chain(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__broadcast_tree(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__barrier_dissemination(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__alltoall_pairwise(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
/* Compressed (a->codec set). */
lc_status_t lc__allreduce_twophase(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__allreduce_tree_coded(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__allreduce_sparse(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__allreduce_ring_coded(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__allgather_ring_coded(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);
lc_status_t lc__broadcast_chain_coded(lc_sched_t *s, const lc_coll_args_t *a, int rank, int n);

#endif
