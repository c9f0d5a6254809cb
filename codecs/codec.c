/*
 * The codec layer's front: the registry, spec strings, the message header,
 * input conversion (f16/bf16 to f32), the zstd stage and per-tensor state.
 * The codecs themselves (codecs/<name>.c) only see f32 and their body.
 *
 * The zstd stage: the body is byte-shuffled by the codec's element width
 * (byte 0 of every element, then byte 1, ...: exponents and high mantissa
 * bytes line up, which is what makes floats compressible) and compressed
 * with zstd at the configured level. When the compressed body is not smaller
 * the raw body is sent (flag bit 0 clear), so the stage never costs wire
 * bytes. In auto mode it also has to pay for its time: the bytes it saves
 * must take longer on the link (params.link_mbps) than the compression took;
 * when they do not, the next 15 encodes skip zstd and the 16th measures
 * again (data and links change; a probe costs one compression).
 */
#include "codecs/codec.h"
#include "core/reduce.h"
#include "core/util.h"

#include <ctype.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "codec bodies store f32 arrays as host bytes: little-endian hosts only");

extern const lc_codec_ops_t lc__codec_none_ops, lc__codec_onebit_ops, lc__codec_topk_ops,
    lc__codec_int8_ops, lc__codec_fp16_ops, lc__codec_bf16_ops;

/* The registry, indexed by codec id. A new codec takes more than its line here:
 * its file (codecs/<name>.c, built by the codecs/ glob) with its ops; a new
 * id in the public lc_codec_type_t (laconic.h; ids go into every message
 * header, so they never change) and LC_CODEC_ID_MAX (codec.h) raised; its
 * ops declared above; its default spec in api/collectives.c (for
 * lc_op_params_t::codec); and its parameters in lc__parse_opt,
 * lc__codec_normalize and lc__codec_format below, which name codecs by id. */
static const lc_codec_ops_t *const lc__codec_registry[LC_CODEC_ID_MAX] = {
    [LC_CODEC_NONE] = &lc__codec_none_ops, [LC_CODEC_ONEBIT] = &lc__codec_onebit_ops,
    [LC_CODEC_TOPK] = &lc__codec_topk_ops, [LC_CODEC_INT8] = &lc__codec_int8_ops,
    [LC_CODEC_FP16] = &lc__codec_fp16_ops, [LC_CODEC_BF16] = &lc__codec_bf16_ops,
};

#define LC_CODEC_WORK_SLOTS 4
#define LC_ZSTD_SKIP 15 /* encodes skipped after a compression that did not pay */

struct lc_codec_work {
    void *buf[LC_CODEC_WORK_SLOTS];
    size_t cap[LC_CODEC_WORK_SLOTS];
};

struct lc_codec {
    lc_codec_params_t p;
    const lc_codec_ops_t *ops;
    lc_codec_work_t work;  /* for the codec body */
    lc_codec_work_t stage; /* conversion, zstd and shuffle buffers */
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    unsigned zstd_skip; /* auto mode: encodes left to skip */
    lc_codec_zstd_stats_t zs;
};

enum { LC_STAGE_CONVERT = 0, LC_STAGE_BODY = 1, LC_STAGE_SHUFFLE = 2 };

/* ------------------------------------------------------------ registry */

const lc_codec_ops_t *lc__codec_ops_get(lc_codec_id_t id)
{
    return (unsigned)id < LC_CODEC_ID_MAX ? lc__codec_registry[id] : NULL;
}

const lc_codec_ops_t *lc__codec_ops_find(const char *name, size_t len)
{
    for (int i = 0; i < LC_CODEC_ID_MAX; i++) {
        const lc_codec_ops_t *o = lc__codec_registry[i];
        if (o != NULL && strlen(o->name) == len && memcmp(o->name, name, len) == 0) return o;
    }
    return NULL;
}

/* ------------------------------------------------------------ scratch */

void *lc__codec_work_get(lc_codec_work_t *w, int slot, size_t bytes)
{
    if (slot < 0 || slot >= LC_CODEC_WORK_SLOTS) return NULL;
    if (bytes == 0) bytes = 1;
    if (w->cap[slot] < bytes) {
        size_t cap = LC_MAX(bytes, w->cap[slot] + w->cap[slot] / 2);
        void *p = NULL;
        if (posix_memalign(&p, 64, LC_DIV_UP(cap, 64) * 64) != 0) return NULL;
        free(w->buf[slot]);
        w->buf[slot] = p;
        w->cap[slot] = cap;
    }
    return w->buf[slot];
}

static void lc__codec_work_free(lc_codec_work_t *w)
{
    for (int i = 0; i < LC_CODEC_WORK_SLOTS; i++) free(w->buf[i]);
    memset(w, 0, sizeof(*w));
}

/* ------------------------------------------------------------ SIMD choice */

static _Atomic int lc__isa = -1;

static int lc__cpu_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    __builtin_cpu_init();
    /* F16C from cpuid directly: clang 14 has no "f16c" for __builtin_cpu_supports. */
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return __builtin_cpu_supports("avx2") && (c & (1u << 29)) != 0;
#else
    return 0;
#endif
}

lc_codec_isa_t lc__codec_isa(void)
{
    int isa = atomic_load_explicit(&lc__isa, memory_order_relaxed);
    if (isa >= 0) return (lc_codec_isa_t)isa;
    const char *env = getenv("LC_CODEC_ISA");
    isa = lc__cpu_avx2() ? LC_CODEC_ISA_AVX2 : LC_CODEC_ISA_C;
    if (env != NULL && strcmp(env, "c") == 0) {
        isa = LC_CODEC_ISA_C;
    } else if (env != NULL && strcmp(env, "avx2") != 0 && env[0] != '\0') {
        lc_warn("LC_CODEC_ISA=%s: expected c or avx2; using %s", env,
                isa == LC_CODEC_ISA_AVX2 ? "avx2" : "c");
    }
    atomic_store_explicit(&lc__isa, isa, memory_order_relaxed);
    return (lc_codec_isa_t)isa;
}

lc_codec_isa_t lc__codec_set_isa(lc_codec_isa_t isa)
{
    if (isa == LC_CODEC_ISA_AVX2 && !lc__cpu_avx2()) isa = LC_CODEC_ISA_C;
    atomic_store_explicit(&lc__isa, (int)isa, memory_order_relaxed);
    return isa;
}

/* ------------------------------------------------------------ spec strings */

/* Parse a whole unsigned decimal token [s, s+len) into *v. */
static int lc__parse_u64(const char *s, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    if (len == 0 || len > 20) return 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]) || __builtin_mul_overflow(x, 10, &x) ||
            __builtin_add_overflow(x, (uint64_t)(s[i] - '0'), &x))
            return 0;
    }
    *v = x;
    return 1;
}

static int lc__parse_double(const char *s, size_t len, double *v)
{
    char tmp[64];
    char *end;
    /* Plain decimals only (strtod would also take spaces, hex and "inf"); "1e+0" cannot be
     * written anyway, '+' separates the stages of a spec. */
    if (len == 0 || len >= sizeof(tmp) || strspn(s, "0123456789.eE-") < len) return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    errno = 0;
    *v = strtod(tmp, &end);
    return errno == 0 && *end == '\0';
}

static int lc__tok_is(const char *t, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(t, word, len) == 0;
}

#define LC_SPEC_BAD(fmt, ...)                                                                      \
    do {                                                                                           \
        lc_error("codec spec '%s': " fmt, spec, __VA_ARGS__);                                      \
        return LC_ERR_INVALID_ARG;                                                                 \
    } while (0)

/* One option token t of a codec or of the zstd stage (zstd != 0). */
static lc_status_t lc__parse_opt(const char *spec, lc_codec_params_t *p, int zstd, int pos,
                                 const char *t, size_t n)
{
    uint64_t u = 0;
    double d = 0;
    const char *eq = memchr(t, '=', n);

    if (eq != NULL) {
        size_t kl = (size_t)(eq - t), vl = n - kl - 1;
        const char *v = eq + 1;
        if (!lc__parse_u64(v, vl, &u) &&
            !(lc__tok_is(t, kl, "density") && lc__parse_double(v, vl, &d)))
            LC_SPEC_BAD("'%.*s' needs a number after '='", (int)n, t);
        if (zstd && lc__tok_is(t, kl, "level")) {
            if (u < 1 || u > 19) LC_SPEC_BAD("zstd level '%.*s' is not in 1..19", (int)n, t);
            p->zstd_level = (int)u;
        } else if (zstd && lc__tok_is(t, kl, "link_mbps")) {
            if (u < 1 || u > UINT32_MAX) LC_SPEC_BAD("'%.*s' is out of range", (int)n, t);
            p->link_mbps = (uint32_t)u;
        } else if (!zstd && lc__tok_is(t, kl, "block")) {
            if (u > UINT32_MAX) LC_SPEC_BAD("'%.*s' is out of range", (int)n, t);
            p->block = (uint32_t)u;
        } else if (!zstd && lc__tok_is(t, kl, "seed")) {
            p->seed = u;
        } else if (!zstd && p->id == LC_CODEC_TOPK && lc__tok_is(t, kl, "k")) {
            if (u == 0) LC_SPEC_BAD("'%.*s': k must be at least 1", (int)n, t);
            p->k = u;
        } else if (!zstd && p->id == LC_CODEC_TOPK && lc__tok_is(t, kl, "density")) {
            if (!lc__parse_double(v, vl, &d) || !(d > 0.0 && d <= 1.0))
                LC_SPEC_BAD("'%.*s' is not a density in (0, 1]", (int)n, t);
            p->density = d;
        } else {
            LC_SPEC_BAD("unknown option '%.*s'", (int)n, t);
        }
        return LC_OK;
    }
    if (zstd) {
        if (lc__tok_is(t, n, "force"))
            p->zstd = LC_CODEC_ZSTD_FORCE;
        else if (lc__tok_is(t, n, "auto"))
            p->zstd = LC_CODEC_ZSTD_AUTO;
        else if (pos == 0 && lc__parse_u64(t, n, &u) && u >= 1 && u <= 19)
            p->zstd_level = (int)u;
        else
            LC_SPEC_BAD("'%.*s' is not a zstd level (1..19), auto or force", (int)n, t);
        return LC_OK;
    }
    switch (p->id) {
    case LC_CODEC_ONEBIT:
        if (lc__tok_is(t, n, "rms"))
            p->flags |= LC_CODEC_F_RMS;
        else if (lc__tok_is(t, n, "mean"))
            p->flags &= ~(uint32_t)LC_CODEC_F_RMS;
        else if (pos == 0 && lc__parse_u64(t, n, &u) && u <= UINT32_MAX)
            p->block = (uint32_t)u;
        else
            LC_SPEC_BAD("'%.*s' is not a block size, mean or rms", (int)n, t);
        break;
    case LC_CODEC_INT8:
        if (lc__tok_is(t, n, "stochastic"))
            p->flags |= LC_CODEC_F_STOCHASTIC;
        else if (lc__tok_is(t, n, "nearest"))
            p->flags &= ~(uint32_t)LC_CODEC_F_STOCHASTIC;
        else if (pos == 0 && lc__parse_u64(t, n, &u) && u <= UINT32_MAX)
            p->block = (uint32_t)u;
        else
            LC_SPEC_BAD("'%.*s' is not a block size, nearest or stochastic", (int)n, t);
        break;
    case LC_CODEC_TOPK:
        if (lc__tok_is(t, n, "exact"))
            p->flags &= ~(uint32_t)LC_CODEC_F_APPROX;
        else if (lc__tok_is(t, n, "approx"))
            p->flags |= LC_CODEC_F_APPROX;
        else if (pos == 0 && lc__parse_double(t, n, &d) && d > 0.0 && d <= 1.0)
            p->density = d;
        else
            LC_SPEC_BAD("'%.*s' is not a density in (0, 1], k=N, exact or approx", (int)n, t);
        break;
    default:
        LC_SPEC_BAD("codec %s takes no option '%.*s'", lc__codec_ops_get(p->id)->name, (int)n, t);
    }
    return LC_OK;
}

/* After a codec's check: clear what that codec does not use, so that equal behaviour means
 * equal parameters and the canonical spec parses back to exactly these. */
static void lc__codec_normalize(lc_codec_params_t *p)
{
    if (p->id != LC_CODEC_INT8 && p->id != LC_CODEC_TOPK) p->seed = 0;
    if (p->id == LC_CODEC_NONE || p->id == LC_CODEC_FP16 || p->id == LC_CODEC_BF16) p->block = 0;
    if (p->id != LC_CODEC_TOPK) p->density = 0, p->k = 0;
    if (p->id == LC_CODEC_TOPK && p->k > 0) p->density = 0;
    if (p->zstd == LC_CODEC_ZSTD_OFF) p->zstd_level = 0, p->link_mbps = 0;
}

lc_status_t lc__codec_parse(const char *spec, lc_codec_params_t *params_p)
{
    lc_codec_params_t p;
    int stage = 0; /* 0: the codec part, 1: after "+zstd" */

    memset(&p, 0, sizeof(p));
    if (spec == NULL || params_p == NULL) {
        lc_error("codec spec: NULL");
        return LC_ERR_INVALID_ARG;
    }
    for (const char *part = spec;;) {
        const char *end = strchr(part, '+');
        size_t plen = end ? (size_t)(end - part) : strlen(part);
        const char *colon = memchr(part, ':', plen);
        size_t nlen = colon ? (size_t)(colon - part) : plen;
        int zstd = lc__tok_is(part, nlen, "zstd");

        if (nlen == 0) LC_SPEC_BAD("empty codec name%s", end ? " before '+'" : "");
        if (zstd) {
            if (p.zstd != LC_CODEC_ZSTD_OFF) LC_SPEC_BAD("%s", "zstd appears twice");
            p.zstd = LC_CODEC_ZSTD_AUTO;
            stage = 1;
        } else {
            const lc_codec_ops_t *o = lc__codec_ops_find(part, nlen);
            if (o == NULL) LC_SPEC_BAD("unknown codec '%.*s'", (int)nlen, part);
            if (stage != 0) LC_SPEC_BAD("'%.*s' after zstd: zstd must come last", (int)nlen, part);
            p.id = o->id;
            stage = 1;
        }
        const char *t = colon ? colon + 1 : part + plen;
        if (colon != NULL && t == part + plen) LC_SPEC_BAD("'%.*s' ends with ':'", (int)plen, part);
        for (int pos = 0; t < part + plen; pos++) {
            const char *c = memchr(t, ':', (size_t)(part + plen - t));
            size_t n = c ? (size_t)(c - t) : (size_t)(part + plen - t);
            if (n == 0) LC_SPEC_BAD("empty option in '%.*s'", (int)plen, part);
            LC_CHECK(lc__parse_opt(spec, &p, zstd, pos, t, n));
            t += n + (c ? 1 : 0);
            if (c != NULL && t == part + plen) LC_SPEC_BAD("'%.*s' ends with ':'", (int)plen, part);
        }
        if (end == NULL) break;
        part = end + 1;
        if (strncmp(part, "zstd", 4) != 0 || (part[4] != '\0' && part[4] != ':' && part[4] != '+'))
            LC_SPEC_BAD("only zstd may follow '+', not '%s'", part);
    }
    const lc_codec_ops_t *o = lc__codec_ops_get(p.id);
    LC_CHECK(o->check(&p));
    if (p.zstd != LC_CODEC_ZSTD_OFF && p.zstd_level == 0) p.zstd_level = LC_CODEC_ZSTD_LEVEL;
    if (p.zstd != LC_CODEC_ZSTD_OFF && p.link_mbps == 0) p.link_mbps = LC_CODEC_LINK_MBPS;
    lc__codec_normalize(&p);
    *params_p = p;
    return LC_OK;
}

void lc__codec_format(const lc_codec_params_t *p, char *buf, size_t len)
{
    const lc_codec_ops_t *o = lc__codec_ops_get(p->id);
    int n = 0;
    if (len == 0) return;
    buf[0] = '\0';
#define LC_FMT(...)                                                                                \
    do {                                                                                           \
        if ((size_t)n < len) n += snprintf(buf + n, len - (size_t)n, __VA_ARGS__);                 \
    } while (0)
    if (p->id != LC_CODEC_NONE || p->zstd == LC_CODEC_ZSTD_OFF) LC_FMT("%s", o ? o->name : "?");
    switch (p->id) {
    case LC_CODEC_ONEBIT:
        LC_FMT(":%u:%s", p->block, p->flags & LC_CODEC_F_RMS ? "rms" : "mean");
        break;
    case LC_CODEC_INT8:
        LC_FMT(":%u%s", p->block, p->flags & LC_CODEC_F_STOCHASTIC ? ":stochastic" : "");
        break;
    case LC_CODEC_TOPK:
        if (p->k) {
            LC_FMT(":k=%llu", (unsigned long long)p->k);
        } else { /* the shortest decimal that parses back to the same density */
            char d[32];
            snprintf(d, sizeof(d), "%.15g", p->density);
            if (strtod(d, NULL) != p->density) snprintf(d, sizeof(d), "%.17g", p->density);
            LC_FMT(":%s", d);
        }
        LC_FMT(":%s", p->flags & LC_CODEC_F_APPROX ? "approx" : "exact");
        if (p->block) LC_FMT(":block=%u", p->block);
        break;
    default: break;
    }
    if (p->seed != 0 && (p->id == LC_CODEC_INT8 || p->id == LC_CODEC_TOPK))
        LC_FMT(":seed=%llu", (unsigned long long)p->seed);
    if (p->zstd != LC_CODEC_ZSTD_OFF) {
        LC_FMT("%szstd:%d:%s", p->id == LC_CODEC_NONE ? "" : "+", p->zstd_level,
               p->zstd == LC_CODEC_ZSTD_FORCE ? "force" : "auto");
        if (p->link_mbps != 0 && p->link_mbps != LC_CODEC_LINK_MBPS)
            LC_FMT(":link_mbps=%u", p->link_mbps);
    }
#undef LC_FMT
}

/* ------------------------------------------------------------ objects */

lc_status_t lc__codec_create(const lc_codec_params_t *params, lc_codec_t **codec_p)
{
    const lc_codec_ops_t *o = params ? lc__codec_ops_get(params->id) : NULL;
    lc_codec_t *c;

    if (o == NULL || codec_p == NULL || o->abi_version != LC_CODEC_ABI_VERSION) {
        lc_error("codec: unknown codec id %d", params ? (int)params->id : -1);
        return LC_ERR_INVALID_ARG;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) return LC_ERR_NO_MEMORY;
    c->p = *params;
    c->ops = o;
    lc_status_t st = o->check(&c->p);
    if (st == LC_OK && (c->p.zstd < LC_CODEC_ZSTD_OFF || c->p.zstd > LC_CODEC_ZSTD_FORCE ||
                        c->p.zstd_level < 0 || c->p.zstd_level > 19)) {
        lc_error("codec: bad zstd stage settings (%d, level %d)", (int)c->p.zstd, c->p.zstd_level);
        st = LC_ERR_INVALID_ARG;
    }
    if (st != LC_OK) {
        free(c);
        return st;
    }
    if (c->p.zstd != LC_CODEC_ZSTD_OFF) {
        if (c->p.zstd_level == 0) c->p.zstd_level = LC_CODEC_ZSTD_LEVEL;
        if (c->p.link_mbps == 0) c->p.link_mbps = LC_CODEC_LINK_MBPS;
        c->cctx = ZSTD_createCCtx();
        c->dctx = ZSTD_createDCtx();
        if (c->cctx == NULL || c->dctx == NULL) {
            lc__codec_destroy(c);
            return LC_ERR_NO_MEMORY;
        }
        ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, c->p.zstd_level);
    }
    lc__codec_normalize(&c->p);
    *codec_p = c;
    return LC_OK;
}

void lc__codec_destroy(lc_codec_t *c)
{
    if (c == NULL) return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    lc__codec_work_free(&c->work);
    lc__codec_work_free(&c->stage);
    free(c);
}

const lc_codec_params_t *lc__codec_params(const lc_codec_t *c)
{
    return &c->p;
}
const lc_codec_ops_t *lc__codec_ops(const lc_codec_t *c)
{
    return c->ops;
}

size_t lc__codec_max_encoded_size(const lc_codec_t *c, size_t count)
{
    /* The zstd stage only ever sends a compressed body when it is smaller. Saturates: a size
     * that does not fit is refused by encode. */
    size_t body = c->ops->max_body_size(&c->p, count);
    return body > SIZE_MAX - LC_CODEC_HDR_LEN ? SIZE_MAX : LC_CODEC_HDR_LEN + body;
}

void lc__codec_zstd_stats(const lc_codec_t *c, lc_codec_zstd_stats_t *stats_p)
{
    *stats_p = c->zs;
}

lc_status_t lc__codec_state_create(const lc_codec_t *c, size_t count, lc_codec_state_t **state_p)
{
    lc_codec_state_t *st = calloc(1, sizeof(*st));
    size_t bytes;
    if (st == NULL) return LC_ERR_NO_MEMORY;
    st->count = count;
    st->rng = c->p.seed;
    if (c->ops->caps & LC_CODEC_CAP_EF) {
        if (!lc__mul_ok(count ? count : 1, sizeof(float), &bytes) ||
            (st->residual = calloc(1, bytes)) == NULL) {
            free(st);
            lc_error("codec: no memory for the residual of %zu elements", count);
            return LC_ERR_NO_MEMORY;
        }
    }
    *state_p = st;
    return LC_OK;
}

void lc__codec_state_destroy(lc_codec_state_t *st)
{
    if (st == NULL) return;
    free(st->residual);
    free(st);
}

/* ------------------------------------------------------------ header */

static void lc__hdr_put(uint8_t *h, lc_codec_id_t id, uint8_t flags, size_t body, size_t count)
{
    h[0] = (uint8_t)id;
    h[1] = LC_CODEC_FORMAT_VERSION;
    h[2] = flags;
    h[3] = 0;
    lc__codec_put32(h + 4, (uint32_t)body);
    lc__codec_put64(h + 8, count);
}

enum { LC_HDR_ZSTD = 1u << 0, LC_HDR_SHUFFLE = 1u << 1 };

/* Validate a message header; the body length (decompressed when zstd) goes to *body_p. */
static lc_status_t lc__hdr_check(const lc_codec_t *c, const uint8_t *m, size_t len, size_t count,
                                 uint8_t *flags_p, size_t *body_p)
{
    if (m == NULL || len < LC_CODEC_HDR_LEN) {
        lc_error("codec: message of %zu bytes is shorter than its header", len);
        return LC_ERR_CORRUPT;
    }
    uint8_t flags = m[2];
    size_t body = lc__codec_get32(m + 4);
    uint64_t n = lc__codec_get64(m + 8);
    if (m[0] != (uint8_t)c->ops->id || m[1] != LC_CODEC_FORMAT_VERSION || m[3] != 0 ||
        (flags & ~(LC_HDR_ZSTD | LC_HDR_SHUFFLE)) ||
        ((flags & LC_HDR_SHUFFLE) && !(flags & LC_HDR_ZSTD))) {
        lc_error("codec: bad header (codec %u, version %u, flags 0x%x) for %s", m[0], m[1], flags,
                 c->ops->name);
        return LC_ERR_CORRUPT;
    }
    if (n != count) {
        lc_error("codec: message holds %llu elements, %zu expected", (unsigned long long)n, count);
        return LC_ERR_CORRUPT;
    }
    if (body > c->ops->max_body_size(&c->p, count) ||
        (!(flags & LC_HDR_ZSTD) && body != len - LC_CODEC_HDR_LEN)) {
        lc_error("codec: body of %zu bytes does not fit a %zu-byte message of %zu elements", body,
                 len, count);
        return LC_ERR_CORRUPT;
    }
    *flags_p = flags;
    *body_p = body;
    return LC_OK;
}

/* ------------------------------------------------------------ zstd stage */

static void lc__shuffle(uint8_t *dst, const uint8_t *src, size_t len, size_t e)
{
    size_t n = len / e;
    for (size_t b = 0; b < e; b++)
        for (size_t i = 0; i < n; i++) dst[b * n + i] = src[i * e + b];
    memcpy(dst + n * e, src + n * e, len - n * e);
}

static void lc__unshuffle(uint8_t *dst, const uint8_t *src, size_t len, size_t e)
{
    size_t n = len / e;
    for (size_t b = 0; b < e; b++)
        for (size_t i = 0; i < n; i++) dst[i * e + b] = src[b * n + i];
    memcpy(dst + n * e, src + n * e, len - n * e);
}

/* Try to compress body (blen bytes) into out (below blen bytes). Returns the compressed
 * length, or 0 when the raw body should go (no gain, no time to gain, or an error). */
static size_t lc__zstd_try(lc_codec_t *c, const uint8_t *body, size_t blen, uint8_t *out,
                           int *shuffled_p)
{
    size_t e = c->ops->elem;
    const uint8_t *in = body;
    uint64_t t0;
    size_t z;

    *shuffled_p = 0;
    if (blen < 64) return 0;
    t0 = lc__now_ns();
    if (e > 1) {
        uint8_t *sh = lc__codec_work_get(&c->stage, LC_STAGE_SHUFFLE, blen);
        if (sh != NULL) {
            lc__shuffle(sh, body, blen, e);
            in = sh;
            *shuffled_p = 1;
        }
    }
    z = ZSTD_compress2(c->cctx, out, blen - 1, in, blen);
    uint64_t ns = lc__now_ns() - t0;
    c->zs.calls++;
    c->zs.in_bytes += blen;
    c->zs.ns += ns;
    if (ZSTD_isError(z)) { /* dstSize_tooSmall: it would not have been smaller */
        c->zs.out_bytes += blen;
        if (c->p.zstd == LC_CODEC_ZSTD_AUTO) c->zstd_skip = LC_ZSTD_SKIP;
        return 0;
    }
    c->zs.out_bytes += z;
    if (c->p.zstd == LC_CODEC_ZSTD_AUTO && c->zs.calls > 1) {
        /* Saved bytes at link_mbps vs the compression time (ns). The first call is not judged
         * on time: it pays for zstd's workspace and first touches of the scratch. */
        double saved_ns = (double)(blen - z) * 8.0 * 1e3 / (double)c->p.link_mbps;
        if (saved_ns <= (double)ns) {
            c->zstd_skip = LC_ZSTD_SKIP;
            return 0;
        }
    }
    c->zs.compressed++;
    return z;
}

/* ------------------------------------------------------------ encode / decode */

lc_status_t lc__codec_encode(lc_codec_t *c, lc_codec_state_t *st, size_t offset, const void *src,
                             lc_dtype_t dtype, size_t count, void *dst, size_t cap, size_t *len_p)
{
    return lc__codec_encode_ef(c, st, st, offset, 0, src, dtype, count, dst, cap, len_p);
}

lc_status_t lc__codec_encode_ef(lc_codec_t *c, const lc_codec_state_t *st_in, lc_codec_state_t *st,
                                size_t offset, uint64_t stream, const void *src, lc_dtype_t dtype,
                                size_t count, void *dst, size_t cap, size_t *len_p)
{
    const float *x = src, *res_in = NULL;
    float *res = NULL;
    uint64_t *rng = NULL, rng_local = c != NULL ? c->p.seed ^ stream : 0;
    uint8_t *out = dst, *body;
    size_t blen = 0, bcap;

    if (c == NULL || (src == NULL && count > 0) || dst == NULL || len_p == NULL) {
        lc_error("codec encode: NULL argument");
        return LC_ERR_INVALID_ARG;
    }
    if (c->ops->max_body_size(&c->p, count) > UINT32_MAX) {
        lc_error("codec encode: %zu elements is more than one message holds (4 GiB body)", count);
        return LC_ERR_INVALID_ARG;
    }
    if (cap < lc__codec_max_encoded_size(c, count)) {
        lc_error("codec encode: %zu elements need %zu bytes, buffer has %zu", count,
                 lc__codec_max_encoded_size(c, count), cap);
        return LC_ERR_INVALID_ARG;
    }
    if (st != NULL) {
        if (offset > st->count || count > st->count - offset || st_in == NULL ||
            st_in->count != st->count || (st_in->residual == NULL) != (st->residual == NULL)) {
            lc_error("codec encode: elements [%zu, %zu) outside the tensor's %zu", offset,
                     offset + count, st->count);
            return LC_ERR_INVALID_ARG;
        }
        res = st->residual ? st->residual + offset : NULL;
        res_in = st_in->residual ? st_in->residual + offset : NULL;
        rng = stream != 0 ? &rng_local : &st->rng;
    } else {
        rng = &rng_local;
    }
    if (dtype == LC_FLOAT16 || dtype == LC_BFLOAT16) {
        float *f = lc__codec_work_get(&c->stage, LC_STAGE_CONVERT, count * sizeof(float));
        const uint16_t *h = src;
        if (f == NULL) return LC_ERR_NO_MEMORY;
        if (dtype == LC_FLOAT16)
            for (size_t i = 0; i < count; i++) f[i] = lc__f16_to_f32(h[i]);
        else
            for (size_t i = 0; i < count; i++) f[i] = lc__bf16_to_f32(h[i]);
        x = f;
    } else if (dtype != LC_FLOAT32) {
        lc_error("codec encode: datatype %d is not f32, f16 or bf16", (int)dtype);
        return LC_ERR_INVALID_ARG;
    }
    bcap = c->ops->max_body_size(&c->p, count);
    int zstd = c->p.zstd != LC_CODEC_ZSTD_OFF;
    if (c->p.zstd == LC_CODEC_ZSTD_AUTO && c->zstd_skip > 0) {
        c->zstd_skip--;
        zstd = 0;
    }
    body = zstd ? lc__codec_work_get(&c->stage, LC_STAGE_BODY, bcap) : out + LC_CODEC_HDR_LEN;
    if (body == NULL) return LC_ERR_NO_MEMORY;
    if (res != NULL && res_in != res) {
        if (c->ops->encode_split != NULL)
            LC_CHECK(c->ops->encode_split(&c->p, &c->work, x, res_in, res, rng, count, body, bcap,
                                          &blen));
        else {
            memcpy(res, res_in, count * sizeof(float));
            LC_CHECK(c->ops->encode(&c->p, &c->work, x, res, rng, count, body, bcap, &blen));
        }
    } else {
        LC_CHECK(c->ops->encode(&c->p, &c->work, x, res, rng, count, body, bcap, &blen));
    }
    uint8_t flags = 0;
    if (zstd) {
        int shuffled;
        size_t z = lc__zstd_try(c, body, blen, out + LC_CODEC_HDR_LEN, &shuffled);
        if (z > 0) {
            flags = (uint8_t)(LC_HDR_ZSTD | (shuffled ? LC_HDR_SHUFFLE : 0));
            lc__hdr_put(out, c->ops->id, flags, blen, count);
            *len_p = LC_CODEC_HDR_LEN + z;
            return LC_OK;
        }
        memcpy(out + LC_CODEC_HDR_LEN, body, blen);
    }
    lc__hdr_put(out, c->ops->id, flags, blen, count);
    *len_p = LC_CODEC_HDR_LEN + blen;
    return LC_OK;
}

/* Validate the header and produce the plain body (decompressed when needed). */
static lc_status_t lc__codec_open(lc_codec_t *c, const void *src, size_t len, size_t count,
                                  const uint8_t **body_p, size_t *blen_p)
{
    const uint8_t *m = src;
    uint8_t flags;
    size_t blen;

    if (c == NULL) return LC_ERR_INVALID_ARG;
    LC_CHECK(lc__hdr_check(c, m, len, count, &flags, &blen));
    if (!(flags & LC_HDR_ZSTD)) {
        *body_p = m + LC_CODEC_HDR_LEN;
        *blen_p = blen;
        return LC_OK;
    }
    const uint8_t *z = m + LC_CODEC_HDR_LEN;
    size_t zlen = len - LC_CODEC_HDR_LEN;
    /* Only current zstd frames: libzstd still decodes the legacy v0.5-v0.7 formats, whose
     * decoders are older and allocate per call; we never send those. */
    if (zlen < 4 || lc__codec_get32(z) != ZSTD_MAGICNUMBER) {
        lc_error("codec: compressed body is not a zstd frame");
        return LC_ERR_CORRUPT;
    }
    unsigned long long fcs = ZSTD_getFrameContentSize(z, zlen);
    if (fcs != blen) {
        lc_error("codec: zstd frame declares %llu bytes, header %zu", fcs, blen);
        return LC_ERR_CORRUPT;
    }
    if (c->dctx == NULL && (c->dctx = ZSTD_createDCtx()) == NULL) return LC_ERR_NO_MEMORY;
    uint8_t *plain = lc__codec_work_get(&c->stage, LC_STAGE_BODY, blen);
    if (plain == NULL) return LC_ERR_NO_MEMORY;
    size_t got = ZSTD_decompressDCtx(c->dctx, plain, blen, z, zlen);
    if (ZSTD_isError(got) || got != blen) {
        lc_error("codec: zstd body does not decompress to %zu bytes (%s)", blen,
                 ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
        return LC_ERR_CORRUPT;
    }
    if ((flags & LC_HDR_SHUFFLE) && c->ops->elem > 1) {
        uint8_t *un = lc__codec_work_get(&c->stage, LC_STAGE_SHUFFLE, blen);
        if (un == NULL) return LC_ERR_NO_MEMORY;
        lc__unshuffle(un, plain, blen, c->ops->elem);
        plain = un;
    }
    *body_p = plain;
    *blen_p = blen;
    return LC_OK;
}

lc_status_t lc__codec_decode(lc_codec_t *c, const void *src, size_t len, float *dst, size_t count)
{
    const uint8_t *body;
    size_t blen;
    if (dst == NULL && count > 0) return LC_ERR_INVALID_ARG;
    LC_CHECK(lc__codec_open(c, src, len, count, &body, &blen));
    return c->ops->decode(&c->p, body, blen, dst, count);
}

lc_status_t lc__codec_decode_accumulate(lc_codec_t *c, const void *src, size_t len, float *acc,
                                        size_t count)
{
    const uint8_t *body;
    size_t blen;
    if (acc == NULL && count > 0) return LC_ERR_INVALID_ARG;
    LC_CHECK(lc__codec_open(c, src, len, count, &body, &blen));
    return c->ops->decode_accumulate(&c->p, body, blen, acc, count);
}
