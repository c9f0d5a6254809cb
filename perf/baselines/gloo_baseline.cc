/*
 * The Gloo baseline of lc-bench: the C interface of gloo_baseline.h over
 * Gloo's C++ API. Each entry point checks its arguments, dispatches on the
 * datatype to a template, and catches every exception so that none crosses
 * into C; the message is kept per thread for gb_last_error().
 *
 * All-reduce keeps, per algorithm, the last algorithm object it built and the
 * arguments it was built for; a call with the same buffer, count, datatype
 * and op reuses it, any other call rebuilds it (every rank does the same, so
 * Gloo's slot numbers stay in step across ranks).
 */
#include "gloo_baseline.h"

#include <gloo/algorithm.h>
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/allreduce_bcube.h>
#include <gloo/allreduce_halving_doubling.h>
#include <gloo/allreduce_ring.h>
#include <gloo/alltoall.h>
#include <gloo/alltoallv.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace
{

thread_local std::string last_error;

int fail(const std::string &what)
{
    last_error = what;
    return -1;
}

/* The algorithm object all-reduce reuses, and what it was built for. */
struct cached_algo {
    std::unique_ptr<gloo::Algorithm> algo;
    void *buf = nullptr;
    size_t count = 0;
    gb_dtype_t dtype = GB_FLOAT32;
    gb_op_t op = GB_SUM;
};

size_t dtype_size(gb_dtype_t d)
{
    switch (d) {
    case GB_FLOAT32: return sizeof(float);
    case GB_FLOAT64: return sizeof(double);
    case GB_INT32: return sizeof(int32_t);
    case GB_INT64: return sizeof(int64_t);
    }
    return 0;
}

template <typename T> const gloo::ReductionFunction<T> *reduction(gb_op_t op)
{
    switch (op) {
    case GB_SUM: return gloo::ReductionFunction<T>::sum;
    case GB_PROD: return gloo::ReductionFunction<T>::product;
    case GB_MAX: return gloo::ReductionFunction<T>::max;
    case GB_MIN: return gloo::ReductionFunction<T>::min;
    }
    return nullptr;
}

template <typename T>
std::unique_ptr<gloo::Algorithm> build(const std::shared_ptr<gloo::Context> &c, void *buf,
                                       int count, gb_op_t op, gb_algo_t algo)
{
    std::vector<T *> ptrs(1, static_cast<T *>(buf));
    const gloo::ReductionFunction<T> *fn = reduction<T>(op);
    switch (algo) {
    case GB_ALGO_RING: return std::make_unique<gloo::AllreduceRing<T>>(c, ptrs, count, fn);
    case GB_ALGO_HD: return std::make_unique<gloo::AllreduceHalvingDoubling<T>>(c, ptrs, count, fn);
    case GB_ALGO_BCUBE: return std::make_unique<gloo::AllreduceBcube<T>>(c, ptrs, count, fn);
    case GB_ALGO_COUNT: break;
    }
    return nullptr;
}

/* Typed wrappers of the option-based collectives (their setters are templates). */
template <typename T>
void alltoall_typed(const std::shared_ptr<gloo::Context> &c, const void *send, void *recv,
                    size_t total)
{
    gloo::AlltoallOptions opts(c);
    opts.setInput(static_cast<T *>(const_cast<void *>(send)), total);
    opts.setOutput(static_cast<T *>(recv), total);
    gloo::alltoall(opts);
}

template <typename T>
void alltoallv_typed(const std::shared_ptr<gloo::Context> &c, const void *send,
                     const std::vector<int64_t> &send_counts, void *recv,
                     const std::vector<int64_t> &recv_counts)
{
    gloo::AlltoallvOptions opts(c);
    opts.setInput(static_cast<T *>(const_cast<void *>(send)), send_counts);
    opts.setOutput(static_cast<T *>(recv), recv_counts);
    gloo::alltoallv(opts);
}

template <typename T>
void allgather_typed(const std::shared_ptr<gloo::Context> &c, const void *send, void *recv,
                     size_t count)
{
    gloo::AllgatherOptions opts(c);
    if (send != nullptr) opts.setInput(static_cast<T *>(const_cast<void *>(send)), count);
    opts.setOutput(static_cast<T *>(recv), count * static_cast<size_t>(c->size));
    gloo::allgather(opts);
}

template <typename T>
void broadcast_typed(const std::shared_ptr<gloo::Context> &c, void *buf, size_t count, int root)
{
    gloo::BroadcastOptions opts(c);
    opts.setOutput(static_cast<T *>(buf), count);
    opts.setRoot(root);
    gloo::broadcast(opts);
}

/* Run f<T>(args...) for the C datatype d. */
#define GB_DISPATCH(d, f, ...)                                                                     \
    do {                                                                                           \
        switch (d) {                                                                               \
        case GB_FLOAT32: f<float>(__VA_ARGS__); break;                                             \
        case GB_FLOAT64: f<double>(__VA_ARGS__); break;                                            \
        case GB_INT32: f<int32_t>(__VA_ARGS__); break;                                             \
        case GB_INT64: f<int64_t>(__VA_ARGS__); break;                                             \
        }                                                                                          \
    } while (0)

/* Bcube groups the ranks base at a time and is only right when size is a power
 * of the base: the smallest base >= 2 of which size is a power (size itself at worst). */
int bcube_base(int size)
{
    for (int b = 2; b < size; b++) {
        long p = b;
        while (p < size) p *= b;
        if (p == size) return b;
    }
    return size > 2 ? size : 2;
}

} // namespace

struct gb_ctx {
    std::shared_ptr<gloo::transport::Device> dev;
    std::shared_ptr<gloo::Context> ctx;
    cached_algo cache[GB_ALGO_COUNT];
};

/* Run f() with every exception turned into -1 and a message naming what failed. */
template <typename F> int guarded(const std::string &what, F &&f)
{
    try {
        f();
        return 0;
    } catch (const std::exception &e) {
        return fail(what + ": " + e.what());
    } catch (...) {
        return fail(what + ": unknown exception");
    }
}

static int check_common(const gb_ctx_t *ctx, gb_dtype_t dtype, const char *what)
{
    if (ctx == nullptr) return fail(std::string(what) + ": NULL context");
    if (dtype_size(dtype) == 0) return fail(std::string(what) + ": unknown datatype");
    return 0;
}

extern "C" {

const char *gb_algo_name(gb_algo_t algo)
{
    switch (algo) {
    case GB_ALGO_RING: return "ring";
    case GB_ALGO_HD: return "hd";
    case GB_ALGO_BCUBE: return "bcube";
    case GB_ALGO_COUNT: break;
    }
    return "?";
}

int gb_algo_from_name(const char *name)
{
    for (int k = 0; k < GB_ALGO_COUNT; k++)
        if (name != nullptr && std::strcmp(name, gb_algo_name(static_cast<gb_algo_t>(k))) == 0)
            return k;
    return -1;
}

const char *gb_last_error(void)
{
    return last_error.c_str();
}

int gb_create(int rank, int size, const char *store_dir, const char *ifaddr, long timeout_ms,
              gb_ctx_t **out)
{
    if (out == nullptr || store_dir == nullptr || size < 1 || rank < 0 || rank >= size)
        return fail("gb_create: bad arguments");
    if (timeout_ms < 0) return fail("gb_create: negative timeout");
    gb_ctx_t *g = nullptr;
    try {
        g = new gb_ctx_t();
        gloo::transport::tcp::attr attr(ifaddr != nullptr && *ifaddr ? ifaddr : "127.0.0.1");
        g->dev = gloo::transport::tcp::CreateDevice(attr);
        auto rc = std::make_shared<gloo::rendezvous::Context>(rank, size, bcube_base(size));
        if (timeout_ms > 0) rc->setTimeout(std::chrono::milliseconds(timeout_ms));
        gloo::rendezvous::FileStore store(store_dir);
        rc->connectFullMesh(store, g->dev);
        g->ctx = rc;
        *out = g;
        return 0;
    } catch (const std::exception &e) {
        delete g;
        return fail(std::string("gloo rendezvous in ") + store_dir + ": " + e.what());
    } catch (...) {
        delete g;
        return fail("gloo rendezvous: unknown exception");
    }
}

void gb_destroy(gb_ctx_t *ctx)
{
    if (ctx == nullptr) return;
    try {
        for (auto &c : ctx->cache) c.algo.reset();
        ctx->ctx.reset();
        ctx->dev.reset();
    } catch (...) { /* nothing useful to do while tearing down */
    }
    delete ctx;
}

int gb_allreduce_prepare(gb_ctx_t *ctx, void *recv, size_t count, gb_dtype_t dtype, gb_op_t op,
                         gb_algo_t algo)
{
    if (check_common(ctx, dtype, "gloo allreduce") != 0) return -1;
    if (static_cast<int>(algo) < 0 || algo >= GB_ALGO_COUNT)
        return fail("gloo allreduce: unknown algorithm");
    if (static_cast<int>(op) < 0 || op > GB_MIN) return fail("gloo allreduce: unknown op");
    if (count > static_cast<size_t>(INT_MAX)) return fail("gloo allreduce: count exceeds INT_MAX");
    if (recv == nullptr && count > 0) return fail("gloo allreduce: NULL buffer");
    cached_algo &c = ctx->cache[algo];
    if (c.algo && c.buf == recv && c.count == count && c.dtype == dtype && c.op == op) return 0;
    return guarded(std::string("gloo allreduce (") + gb_algo_name(algo) + ") set-up", [&] {
        c.algo.reset();
        std::unique_ptr<gloo::Algorithm> a;
        int n = static_cast<int>(count);
        switch (dtype) {
        case GB_FLOAT32: a = build<float>(ctx->ctx, recv, n, op, algo); break;
        case GB_FLOAT64: a = build<double>(ctx->ctx, recv, n, op, algo); break;
        case GB_INT32: a = build<int32_t>(ctx->ctx, recv, n, op, algo); break;
        case GB_INT64: a = build<int64_t>(ctx->ctx, recv, n, op, algo); break;
        }
        c.algo = std::move(a);
        c.buf = recv;
        c.count = count;
        c.dtype = dtype;
        c.op = op;
    });
}

int gb_allreduce(gb_ctx_t *ctx, const void *send, void *recv, size_t count, gb_dtype_t dtype,
                 gb_op_t op, gb_algo_t algo)
{
    if (gb_allreduce_prepare(ctx, recv, count, dtype, op, algo) != 0) return -1;
    if (send == nullptr && count > 0) return fail("gloo allreduce: NULL send buffer");
    return guarded(std::string("gloo allreduce (") + gb_algo_name(algo) + ")", [&] {
        if (send != recv && count > 0) std::memcpy(recv, send, count * dtype_size(dtype));
        ctx->cache[algo].algo->run();
    });
}

int gb_alltoall(gb_ctx_t *ctx, const void *send, void *recv, size_t count, gb_dtype_t dtype)
{
    if (check_common(ctx, dtype, "gloo alltoall") != 0) return -1;
    size_t total = count * static_cast<size_t>(ctx->ctx->size);
    const char *s = static_cast<const char *>(send), *r = static_cast<const char *>(recv);
    size_t bytes = total * dtype_size(dtype);
    if (count > 0 && (send == nullptr || recv == nullptr))
        return fail("gloo alltoall: NULL buffer");
    if (count > 0 && s < r + bytes && r < s + bytes)
        return fail("gloo alltoall: send and receive buffers overlap (no in-place all-to-all)");
    if (count == 0) return 0; /* Gloo rejects empty buffers; nothing to move */
    return guarded("gloo alltoall",
                   [&] { GB_DISPATCH(dtype, alltoall_typed, ctx->ctx, send, recv, total); });
}

int gb_alltoallv(gb_ctx_t *ctx, const void *send, const int64_t *send_counts, void *recv,
                 const int64_t *recv_counts, gb_dtype_t dtype)
{
    if (check_common(ctx, dtype, "gloo alltoallv") != 0) return -1;
    if (send_counts == nullptr || recv_counts == nullptr)
        return fail("gloo alltoallv: NULL counts");
    const int size = ctx->ctx->size, me = ctx->ctx->rank;
    std::vector<int64_t> sc(send_counts, send_counts + size), rc(recv_counts, recv_counts + size);
    size_t stotal = 0, rtotal = 0;
    for (int j = 0; j < size; j++) {
        if (sc[j] < 0 || rc[j] < 0) return fail("gloo alltoallv: negative count");
        stotal += static_cast<size_t>(sc[j]);
        rtotal += static_cast<size_t>(rc[j]);
    }
    if (sc[me] != rc[me])
        return fail("gloo alltoallv: this rank's own block differs in size on the two sides");
    if (stotal == 0 && rtotal == 0) return 0; /* nothing to move */
    if ((stotal > 0 && send == nullptr) || (rtotal > 0 && recv == nullptr))
        return fail("gloo alltoallv: NULL buffer");
    const char *s = static_cast<const char *>(send), *r = static_cast<const char *>(recv);
    size_t sbytes = stotal * dtype_size(dtype), rbytes = rtotal * dtype_size(dtype);
    if (sbytes > 0 && rbytes > 0 && s < r + rbytes && r < s + sbytes)
        return fail("gloo alltoallv: send and receive buffers overlap (no in-place all-to-all)");
    /* An empty side still needs an address for Gloo's buffer. */
    static char empty[16] __attribute__((aligned(16)));
    const void *sp = stotal > 0 ? send : empty;
    void *rp = rtotal > 0 ? recv : empty;
    return guarded("gloo alltoallv",
                   [&] { GB_DISPATCH(dtype, alltoallv_typed, ctx->ctx, sp, sc, rp, rc); });
}

int gb_allgather(gb_ctx_t *ctx, const void *send, void *recv, size_t count, gb_dtype_t dtype)
{
    if (check_common(ctx, dtype, "gloo allgather") != 0) return -1;
    if (count > 0 && recv == nullptr) return fail("gloo allgather: NULL buffer");
    if (count == 0) return 0;
    const char *mine = static_cast<const char *>(recv) +
                       static_cast<size_t>(ctx->ctx->rank) * count * dtype_size(dtype);
    if (send == mine) send = nullptr; /* in place: Gloo then takes our block from the output */
    return guarded("gloo allgather",
                   [&] { GB_DISPATCH(dtype, allgather_typed, ctx->ctx, send, recv, count); });
}

int gb_broadcast(gb_ctx_t *ctx, void *buf, size_t count, gb_dtype_t dtype, int root)
{
    if (check_common(ctx, dtype, "gloo broadcast") != 0) return -1;
    if (root < 0 || root >= ctx->ctx->size) return fail("gloo broadcast: root out of range");
    if (count > 0 && buf == nullptr) return fail("gloo broadcast: NULL buffer");
    if (count == 0) return 0;
    return guarded("gloo broadcast",
                   [&] { GB_DISPATCH(dtype, broadcast_typed, ctx->ctx, buf, count, root); });
}

int gb_barrier(gb_ctx_t *ctx)
{
    if (ctx == nullptr) return fail("gloo barrier: NULL context");
    return guarded("gloo barrier", [&] {
        gloo::BarrierOptions opts(ctx->ctx);
        gloo::barrier(opts);
    });
}

int gb_max_doubles(gb_ctx_t *ctx, double *v, size_t n)
{
    if (ctx == nullptr) return fail("gloo max: NULL context");
    if (n == 0) return 0;
    if (v == nullptr) return fail("gloo max: NULL buffer");
    return guarded("gloo max", [&] {
        gloo::AllreduceOptions opts(ctx->ctx);
        opts.setOutput(v, n);
        opts.setReduceFunction([](void *o, const void *a, const void *b, size_t k) {
            double *x = static_cast<double *>(o);
            const double *p = static_cast<const double *>(a), *q = static_cast<const double *>(b);
            for (size_t i = 0; i < k; i++) x[i] = std::max(p[i], q[i]);
        });
        gloo::allreduce(opts);
    });
}

} /* extern "C" */
