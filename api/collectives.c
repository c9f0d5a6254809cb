/*
 * The collective entry points of include/laconic.h and the request calls.
 *
 * Every lc_i* call validates its arguments on the caller's thread (so bad
 * input is reported at once, with a log line, and nothing is queued), picks
 * the algorithm (deterministic from the arguments and configuration, hence
 * the same on every rank), computes the argument signature that every
 * message of the collective carries, and queues the request for the
 * progress thread. Blocking calls do the same checks and queue the same
 * way, but when the engine is free they run it on the calling thread until
 * their collective completes (lc__comm_run, api/driver.c); else they wait
 * as lc_wait does.
 */
#include "api/comm.h"
#include "coll/coll_util.h"
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const lc__coll_names[] = { "?",         "allreduce",      "broadcast",
                                              "allgather", "reduce_scatter", "barrier",
                                              "alltoall",  "alltoallv" };

/* The signature every message of the collective carries: ranks whose
 * arguments differ (count, type, op, root, algorithm, codec, pipeline chunk,
 * the one-host flag that shapes the tree's schedule: agreed at set-up, so a
 * guard only) fail with
 * LC_ERR_MISMATCH instead of misreading each other's bytes. alltoallv counts
 * differ legitimately between ranks; a block of the wrong size is caught on
 * arrival. */
static uint32_t lc__coll_sig(const lc_coll_args_t *a, lc_algo_t algo, int size)
{
    char spec[LC_CODEC_SPEC_MAX] = "";
    if (a->codec != NULL) lc__codec_format(lc__codec_params(a->codec), spec, sizeof(spec));
    /* The chunk as the algorithms cut it (a coded chunk is whole codec blocks); the
     * barrier has none. */
    size_t chunk = a->type == LC_COLL_BARRIER ? 0
                   : a->codec != NULL         ? lc__coded_chunk_elems(a)
                                              : lc__chunk_elems(a);
    uint64_t fields[10] = { (uint64_t)a->type,  (uint64_t)a->count,
                            (uint64_t)a->dtype, (uint64_t)a->op,
                            (uint64_t)a->root,  (uint64_t)algo,
                            (uint64_t)size,     lc__hash64(spec, strlen(spec), 0),
                            (uint64_t)chunk,    (uint64_t)a->one_host };
    uint64_t h = lc__hash64(fields, sizeof(fields), 0);
    return (uint32_t)(h ^ (h >> 32));
}

/* Elements of the send buffer an alltoallv reads: max(sdispls + sendcounts). */
static int lc__alltoallv_extent(const lc_coll_args_t *a, int size, int send, size_t *ext_p)
{
    const size_t *cnt = send ? a->sendcounts : a->recvcounts;
    const size_t *dis = send ? a->sdispls : a->rdispls;
    size_t ext = 0, end;
    for (int i = 0; i < size; i++) {
        if (cnt[i] == 0) continue;
        if (cnt[i] > SIZE_MAX - dis[i]) return 0;
        end = dis[i] + cnt[i];
        ext = LC_MAX(ext, end);
    }
    *ext_p = ext;
    return 1;
}

static lc_status_t lc__check_args(lc_comm_t *comm, const lc_coll_args_t *a, lc_request_t **req_p)
{
    const char *name = lc__coll_names[a->type];
    size_t esize, bytes, total;

    if (comm == NULL || req_p == NULL) {
        lc_error("%s: %s is NULL", name, comm == NULL ? "comm" : "req_p");
        return LC_ERR_INVALID_ARG;
    }
    if (a->type == LC_COLL_BARRIER) return LC_OK;
    if ((unsigned)a->dtype >= LC_DTYPE_COUNT) {
        lc_error("%s: unknown datatype %d", name, (int)a->dtype);
        return LC_ERR_INVALID_ARG;
    }
    if ((a->type == LC_COLL_ALLREDUCE || a->type == LC_COLL_REDUCE_SCATTER) &&
        (unsigned)a->op >= LC_OP_COUNT) {
        lc_error("%s: unknown reduction operation %d", name, (int)a->op);
        return LC_ERR_INVALID_ARG;
    }
    if (a->type == LC_COLL_BROADCAST && (a->root < 0 || a->root >= comm->size)) {
        lc_error("%s: root %d is not a rank of this communicator (size %d)", name, a->root,
                 comm->size);
        return LC_ERR_INVALID_ARG;
    }
    esize = lc_dtype_size(a->dtype);
    if (a->type == LC_COLL_ALLTOALLV) {
        size_t se, re;
        if (a->sendcounts == NULL || a->sdispls == NULL || a->recvcounts == NULL ||
            a->rdispls == NULL) {
            lc_error("%s: NULL count or displacement array", name);
            return LC_ERR_INVALID_ARG;
        }
        if (!lc__alltoallv_extent(a, comm->size, 1, &se) ||
            !lc__alltoallv_extent(a, comm->size, 0, &re) || !lc__mul_ok(se, esize, &bytes) ||
            !lc__mul_ok(re, esize, &bytes) || LC_MAX(se, re) > (SIZE_MAX >> 2) / esize) {
            lc_error("%s: counts and displacements overflow", name);
            return LC_ERR_INVALID_ARG;
        }
        if ((se > 0 && a->sendbuf == NULL) || (re > 0 && a->recvbuf == NULL)) {
            lc_error("%s: NULL buffer with non-zero counts", name);
            return LC_ERR_INVALID_ARG;
        }
        if (se > 0 && a->sendbuf == a->recvbuf) {
            lc_error("%s: in place is not supported (sendbuf == recvbuf)", name);
            return LC_ERR_INVALID_ARG;
        }
        return LC_OK;
    }
    /* The largest buffer any collective touches is size * count elements. */
    if (!lc__mul_ok(a->count, esize, &bytes) || !lc__mul_ok(bytes, (size_t)comm->size, &total) ||
        total > (SIZE_MAX >> 2)) {
        lc_error("%s: count %zu of %zu-byte elements overflows", name, a->count, esize);
        return LC_ERR_INVALID_ARG;
    }
    if (a->count > 0) {
        int need_send = a->type != LC_COLL_BROADCAST;
        if (a->recvbuf == NULL || (need_send && a->sendbuf == NULL)) {
            lc_error("%s: NULL buffer with count %zu", name, a->count);
            return LC_ERR_INVALID_ARG;
        }
        if (a->type == LC_COLL_ALLTOALL && a->sendbuf == a->recvbuf) {
            lc_error("%s: in place is not supported (sendbuf == recvbuf)", name);
            return LC_ERR_INVALID_ARG;
        }
    }
    return LC_OK;
}

/* The codec a call asks for (codec_spec, else codec), or none. */
static lc_status_t lc__codec_asked(const lc_coll_args_t *a, const lc_op_params_t *p,
                                   lc_codec_params_t *cp, int *have_p)
{
    static const char *const defaults[] = { "none", "onebit", "topk:0.01", "int8", "fp16", "bf16" };
    const char *name = lc__coll_names[a->type];
    const char *spec = NULL;

    *have_p = 0;
    if (p == NULL) return LC_OK;
    if ((p->field_mask & LC_OP_PARAM_FIELD_CODEC_SPEC) && p->codec_spec != NULL) {
        spec = p->codec_spec;
    } else if (p->field_mask & LC_OP_PARAM_FIELD_CODEC) {
        if ((unsigned)p->codec >= sizeof(defaults) / sizeof(defaults[0])) {
            lc_error("%s: unknown codec %d", name, (int)p->codec);
            return LC_ERR_INVALID_ARG;
        }
        spec = defaults[p->codec];
    }
    if (spec == NULL) return LC_OK;
    if (lc__codec_parse(spec, cp) != LC_OK) {
        lc_error("%s: bad codec spec '%s'", name, spec);
        return LC_ERR_INVALID_ARG;
    }
    /* "none" without a zstd stage is no codec at all. */
    *have_p = cp->id != LC_CODEC_NONE || cp->zstd != LC_CODEC_ZSTD_OFF;
    return LC_OK;
}

/* Resolve the call's codec into a->codec; check what it can code. */
static lc_status_t lc__codec_resolve(lc_comm_t *comm, lc_coll_args_t *a, const lc_op_params_t *p)
{
    const char *name = lc__coll_names[a->type];
    lc_codec_params_t cp;
    int have;
    lc_status_t st;

    LC_CHECK(lc__codec_asked(a, p, &cp, &have));
    if (!have) return LC_OK;
    if (a->type == LC_COLL_REDUCE_SCATTER || a->type == LC_COLL_BARRIER) {
        lc_error("%s does not take a codec", name);
        return LC_ERR_UNSUPPORTED;
    }
    if (a->dtype != LC_FLOAT32) {
        lc_error("%s: codecs take float32 data (dtype %d)", name, (int)a->dtype);
        return LC_ERR_UNSUPPORTED;
    }
    if (a->type == LC_COLL_ALLREDUCE && a->op != LC_SUM && a->op != LC_AVG) {
        lc_error("%s: a codec sums its data: only LC_SUM and LC_AVG (op %d)", name, (int)a->op);
        return LC_ERR_UNSUPPORTED;
    }
    pthread_mutex_lock(&comm->lock);
    st = lc__comm_codec_get(comm, &cp, &a->codec);
    pthread_mutex_unlock(&comm->lock);
    return st;
}

/* The error-feedback scheme of a call (LC_EF_OFF when it keeps no state:
 * no tensor key, one rank, or a codec without residuals). LC_EF_ON, chosen
 * on real training (docs/training.md): LC_EF_HOPS for onebit, whose final
 * re-encode with a residual of its own drove classifiers to 58-85%
 * accuracy; LC_EF_RESIDUAL for topk, whose residuals at every re-encode
 * trained every model better than fewer. */
static lc_status_t lc__ef_resolve(const lc_comm_t *comm, lc_coll_args_t *a, const lc_op_params_t *p)
{
    int ef = LC_EF_ON;

    a->ef = LC_EF_OFF;
    if (p != NULL && (p->field_mask & LC_OP_PARAM_FIELD_ERROR_FEEDBACK)) {
        ef = p->error_feedback;
        if (ef < 0 || ef >= LC_EF_COUNT) {
            lc_error("%s: unknown error_feedback scheme %d (lc_ef_t: 0..%d)",
                     lc__coll_names[a->type], ef, LC_EF_COUNT - 1);
            return LC_ERR_INVALID_ARG;
        }
    }
    if (a->codec == NULL || p == NULL || !(p->field_mask & LC_OP_PARAM_FIELD_TENSOR_KEY) ||
        comm->size == 1 || !(lc__codec_ops(a->codec)->caps & LC_CODEC_CAP_EF))
        return LC_OK;
    if (ef == LC_EF_ON)
        ef = lc__codec_params(a->codec)->id == LC_CODEC_ONEBIT ? LC_EF_HOPS : LC_EF_RESIDUAL;
    a->ef = (lc_ef_t)ef;
    return LC_OK;
}

/* The error-feedback state of the call, when it keeps one. */
static lc_status_t lc__tensor_resolve(lc_comm_t *comm, const lc_coll_args_t *a,
                                      const lc_op_params_t *p, lc_tensor_t **t_p)
{
    size_t count = a->count;
    lc_status_t st;

    *t_p = NULL;
    /* No codec, no key, one rank or no residuals: lc__ef_resolve said off
     * (otherwise p holds a tensor key). */
    if (a->ef == LC_EF_OFF) return LC_OK;
    /* Broadcast: only the root encodes. */
    if (a->type == LC_COLL_BROADCAST && a->root != comm->rank) return LC_OK;
    if (a->type == LC_COLL_ALLTOALL) count = a->count * (size_t)comm->size;
    if (a->type == LC_COLL_ALLTOALLV) lc__alltoallv_extent(a, comm->size, 1, &count);
    pthread_mutex_lock(&comm->lock);
    st = lc__tensor_acquire(comm, p->tensor_key, a->codec, count, a->ef, t_p);
    pthread_mutex_unlock(&comm->lock);
    return st;
}

/* Validate, select, number and queue a collective. kick: wake the progress
 * thread to run it (0 when the calling thread owns the engine and runs it). */
static lc_status_t lc__comm_enqueue(lc_comm_t *comm, const lc_coll_args_t *args,
                                    const lc_op_params_t *params, lc_request_t **req_p, int kick)
{
    lc_coll_args_t a = *args;
    lc_request_t *req;
    lc_algo_t algo;

    LC_CHECK(lc__check_args(comm, &a, req_p));
    a.algo = comm->cfg.algo;
    a.algo_env = 1;
    a.chunk_bytes = comm->cfg.chunk_bytes;
    a.one_host = comm->link.one_host;
    if (params != NULL) {
        if (params->field_mask & LC_OP_PARAM_FIELD_ALGO) {
            if ((unsigned)params->algo >= LC_ALGO_COUNT) {
                lc_error("%s: unknown algorithm %d", lc__coll_names[a.type], (int)params->algo);
                return LC_ERR_INVALID_ARG;
            }
            if (params->algo != LC_ALGO_AUTO) {
                a.algo = params->algo;
                a.algo_env = 0;
            }
        }
        if ((params->field_mask & LC_OP_PARAM_FIELD_CHUNK_BYTES) && params->chunk_bytes > 0) {
            if (params->chunk_bytes < 64 || params->chunk_bytes > ((size_t)1 << 30)) {
                lc_error("%s: chunk_bytes %zu is outside [64, 1 GiB]", lc__coll_names[a.type],
                         params->chunk_bytes);
                return LC_ERR_INVALID_ARG;
            }
            a.chunk_bytes = params->chunk_bytes;
        }
    }
    LC_CHECK(lc__codec_resolve(comm, &a, params));
    LC_CHECK(lc__ef_resolve(comm, &a, params));
    LC_CHECK(lc__coll_select(&a, comm->size, &comm->cfg, &comm->link, &algo));

    /* An in-place input the caller wants back if the step aborts. */
    if (params != NULL && (params->field_mask & LC_OP_PARAM_FIELD_FLAGS) &&
        (params->flags & LC_OP_FLAG_RESTORE_INPUT) && a.sendbuf == a.recvbuf && a.count > 0 &&
        (a.type == LC_COLL_ALLREDUCE || a.type == LC_COLL_BROADCAST))
        LC_CHECK(lc__comm_save_input(comm, a.recvbuf, a.count * lc_dtype_size(a.dtype)));

    req = calloc(1, sizeof(*req));
    if (req == NULL) return LC_ERR_NO_MEMORY;
    /* Error-feedback state is per rank: a key bound to another count or
     * codec here may be fine on the others. The call still takes its place
     * in the sequence and fails when its turn comes, telling the peers, so
     * every rank fails this collective and the next ones stay paired. */
    req->fail = lc__tensor_resolve(comm, &a, params, &req->tensor);
    req->args = a;
    req->algo = algo;
    req->sig = lc__coll_sig(&a, algo, comm->size);
    lc__req_queue(comm, req, 1);
    if (kick) lc__driver_kick(comm);
    *req_p = req;
    return LC_OK;
}

void lc__req_queue(lc_comm_t *comm, lc_request_t *req, int numbered)
{
    req->comm = comm;
    atomic_init(&req->state, LC_REQ_QUEUED);
    pthread_mutex_init(&req->lock, NULL);
    pthread_cond_init(&req->cond, NULL);
    pthread_mutex_lock(&comm->lock);
    if (numbered) req->seq = comm->next_seq++;
    if (comm->q_tail != NULL)
        comm->q_tail->next = req;
    else
        comm->q_head = req;
    comm->q_tail = req;
    pthread_mutex_unlock(&comm->lock);
}

lc_status_t lc__comm_submit(lc_comm_t *comm, const lc_coll_args_t *args,
                            const lc_op_params_t *params, lc_request_t **req_p)
{
    return lc__comm_enqueue(comm, args, params, req_p, 1);
}

/* A blocking collective: run the engine on this thread when it is free (see
 * api/driver.c), else queue behind the running work and sleep until done. */
static lc_status_t lc__comm_run(lc_comm_t *comm, const lc_coll_args_t *args,
                                const lc_op_params_t *params)
{
    lc_request_t *req;
    lc_status_t st;
    int mine = comm != NULL && lc__driver_acquire(comm);

    st = lc__comm_enqueue(comm, args, params, &req, !mine);
    if (st != LC_OK) {
        if (mine) lc__driver_release(comm);
        return st;
    }
    if (mine) lc__driver_run_until_done(comm, req);
    st = lc_wait(req, NULL);
    lc_request_free(req);
    return st;
}

lc_status_t lc_wait(lc_request_t *req, lc_op_info_t *info)
{
    lc_status_t st;

    if (req == NULL) return LC_ERR_INVALID_ARG;
    pthread_mutex_lock(&req->lock);
    /* Whoever runs the engine (the progress thread, or a blocking call on its
     * own thread) completes every request: successfully, or with
     * LC_ERR_TIMEOUT after LC_TIMEOUT_MS without progress, or with an error
     * when a peer is lost. */
    while (atomic_load(&req->state) != LC_REQ_DONE) pthread_cond_wait(&req->cond, &req->lock);
    st = req->status;
    pthread_mutex_unlock(&req->lock);
    if (st == LC_OK && info != NULL) *info = req->info;
    return st;
}

lc_status_t lc_test(lc_request_t *req, lc_op_info_t *info)
{
    if (req == NULL) return LC_ERR_INVALID_ARG;
    if (atomic_load_explicit(&req->state, memory_order_acquire) != LC_REQ_DONE)
        return LC_INPROGRESS;
    return lc_wait(req, info);
}

void lc_request_free(lc_request_t *req)
{
    if (req == NULL) return;
    (void)lc_wait(req, NULL);
    pthread_cond_destroy(&req->cond);
    pthread_mutex_destroy(&req->lock);
    free(req);
}

/* A collective's arguments, for its blocking and non-blocking forms (op and
 * root are 0 where the collective has none: they enter the signature). */
static lc_coll_args_t lc__args(lc_coll_type_t type, const void *sendbuf, void *recvbuf,
                               size_t count, lc_dtype_t dtype, lc_op_t op, int root)
{
    lc_coll_args_t a = { .type = type,
                         .sendbuf = sendbuf,
                         .recvbuf = recvbuf,
                         .count = count,
                         .dtype = dtype,
                         .op = op,
                         .root = root };
    return a;
}

static const lc_coll_args_t lc__barrier_args = { .type = LC_COLL_BARRIER, .dtype = LC_UINT8 };

lc_status_t lc_iallreduce(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                          lc_op_t op, lc_comm_t *comm, const lc_op_params_t *params,
                          lc_request_t **req_p)
{
    lc_coll_args_t a = lc__args(LC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dtype, op, 0);
    return lc__comm_submit(comm, &a, params, req_p);
}

lc_status_t lc_allreduce(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                         lc_op_t op, lc_comm_t *comm, const lc_op_params_t *params)
{
    lc_coll_args_t a = lc__args(LC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dtype, op, 0);
    return lc__comm_run(comm, &a, params);
}

lc_status_t lc_ibroadcast(void *buf, size_t count, lc_dtype_t dtype, int root, lc_comm_t *comm,
                          const lc_op_params_t *params, lc_request_t **req_p)
{
    lc_coll_args_t a = lc__args(LC_COLL_BROADCAST, buf, buf, count, dtype, LC_SUM, root);
    return lc__comm_submit(comm, &a, params, req_p);
}

lc_status_t lc_broadcast(void *buf, size_t count, lc_dtype_t dtype, int root, lc_comm_t *comm,
                         const lc_op_params_t *params)
{
    lc_coll_args_t a = lc__args(LC_COLL_BROADCAST, buf, buf, count, dtype, LC_SUM, root);
    return lc__comm_run(comm, &a, params);
}

lc_status_t lc_iallgather(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                          lc_comm_t *comm, const lc_op_params_t *params, lc_request_t **req_p)
{
    lc_coll_args_t a = lc__args(LC_COLL_ALLGATHER, sendbuf, recvbuf, count, dtype, LC_SUM, 0);
    return lc__comm_submit(comm, &a, params, req_p);
}

lc_status_t lc_allgather(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                         lc_comm_t *comm, const lc_op_params_t *params)
{
    lc_coll_args_t a = lc__args(LC_COLL_ALLGATHER, sendbuf, recvbuf, count, dtype, LC_SUM, 0);
    return lc__comm_run(comm, &a, params);
}

lc_status_t lc_ireduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                               lc_dtype_t dtype, lc_op_t op, lc_comm_t *comm,
                               const lc_op_params_t *params, lc_request_t **req_p)
{
    lc_coll_args_t a = lc__args(LC_COLL_REDUCE_SCATTER, sendbuf, recvbuf, recvcount, dtype, op, 0);
    return lc__comm_submit(comm, &a, params, req_p);
}

lc_status_t lc_reduce_scatter(const void *sendbuf, void *recvbuf, size_t recvcount,
                              lc_dtype_t dtype, lc_op_t op, lc_comm_t *comm,
                              const lc_op_params_t *params)
{
    lc_coll_args_t a = lc__args(LC_COLL_REDUCE_SCATTER, sendbuf, recvbuf, recvcount, dtype, op, 0);
    return lc__comm_run(comm, &a, params);
}

lc_status_t lc_ibarrier(lc_comm_t *comm, lc_request_t **req_p)
{
    return lc__comm_submit(comm, &lc__barrier_args, NULL, req_p);
}

lc_status_t lc_barrier(lc_comm_t *comm)
{
    return lc__comm_run(comm, &lc__barrier_args, NULL);
}

lc_status_t lc_ialltoall(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                         lc_comm_t *comm, const lc_op_params_t *params, lc_request_t **req_p)
{
    lc_coll_args_t a = lc__args(LC_COLL_ALLTOALL, sendbuf, recvbuf, count, dtype, LC_SUM, 0);
    return lc__comm_submit(comm, &a, params, req_p);
}

lc_status_t lc_alltoall(const void *sendbuf, void *recvbuf, size_t count, lc_dtype_t dtype,
                        lc_comm_t *comm, const lc_op_params_t *params)
{
    lc_coll_args_t a = lc__args(LC_COLL_ALLTOALL, sendbuf, recvbuf, count, dtype, LC_SUM, 0);
    return lc__comm_run(comm, &a, params);
}

static lc_coll_args_t lc__args_v(const void *sendbuf, const size_t *sendcounts,
                                 const size_t *sdispls, void *recvbuf, const size_t *recvcounts,
                                 const size_t *rdispls, lc_dtype_t dtype)
{
    lc_coll_args_t a = lc__args(LC_COLL_ALLTOALLV, sendbuf, recvbuf, 0, dtype, LC_SUM, 0);
    a.sendcounts = sendcounts;
    a.sdispls = sdispls;
    a.recvcounts = recvcounts;
    a.rdispls = rdispls;
    return a;
}

lc_status_t lc_ialltoallv(const void *sendbuf, const size_t *sendcounts, const size_t *sdispls,
                          void *recvbuf, const size_t *recvcounts, const size_t *rdispls,
                          lc_dtype_t dtype, lc_comm_t *comm, const lc_op_params_t *params,
                          lc_request_t **req_p)
{
    lc_coll_args_t a =
        lc__args_v(sendbuf, sendcounts, sdispls, recvbuf, recvcounts, rdispls, dtype);
    return lc__comm_submit(comm, &a, params, req_p);
}

lc_status_t lc_alltoallv(const void *sendbuf, const size_t *sendcounts, const size_t *sdispls,
                         void *recvbuf, const size_t *recvcounts, const size_t *rdispls,
                         lc_dtype_t dtype, lc_comm_t *comm, const lc_op_params_t *params)
{
    lc_coll_args_t a =
        lc__args_v(sendbuf, sendcounts, sdispls, recvbuf, recvcounts, rdispls, dtype);
    return lc__comm_run(comm, &a, params);
}
