/* The topk codec: exact and approximate selection, error feedback, the body
 * wire format (golden bytes), hostile bodies, SIMD/C identity, specs. */
#include "tests/codecs/codec_test.h"
#include "core/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A strong reference, so the static library's topk object is linked in. */
extern const lc_codec_ops_t lc__codec_topk_ops;

/* ------------------------------------------------------------ helpers */

static uint32_t tk_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u & 0x7fffffffu;
}

static int tk_same(float a, float b)
{
    return memcmp(&a, &b, 4) == 0;
}

/* k of a unit, written independently of the codec: ceil(d * len), at least 1. */
static size_t tk_k(double d, uint64_t k, size_t len)
{
    if (len == 0) return 0;
    if (k) return k < len ? (size_t)k : len;
    size_t r = (size_t)ceil(d * (double)len - 1e-9);
    if (r < 1) r = 1;
    return r < len ? r : len;
}

/* A parsed topk message. */
typedef struct {
    int coding;
    size_t nnz;
    uint64_t *idx;
    float *val;
} tk_msg_t;

static uint64_t tk_get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Parse a whole message (header + body) with the format as documented, asserting it is
 * well-formed: a second reading of the wire format, independent of the decoder. */
static tk_msg_t tk_parse(const uint8_t *m, size_t len, size_t count)
{
    tk_msg_t r = { 0 };
    assert_true(len >= 16 + 24);
    assert_int_equal(m[0], LC_CODEC_TOPK);
    assert_int_equal(m[2], 0); /* not zstd-compressed */
    assert_int_equal(tk_get(m + 4, 4), len - 16);
    assert_int_equal(tk_get(m + 8, 8), count);
    const uint8_t *b = m + 16;
    size_t nnz = tk_get(b + 8, 8), l = tk_get(b + 16, 8);
    assert_true(b[0] <= 1);
    assert_int_equal(b[2] | b[3], 0);
    assert_int_equal(len - 16, 24 + l + 4 * nnz);
    r.coding = b[0];
    r.nnz = nnz;
    r.idx = malloc((nnz ? nnz : 1) * sizeof(uint64_t));
    r.val = malloc((nnz ? nnz : 1) * sizeof(float));
    assert_non_null(r.idx);
    assert_non_null(r.val);
    const uint8_t *s = b + 24;
    if (r.coding == 0) {
        size_t pos = 0;
        uint64_t prev = 0;
        for (size_t j = 0; j < nnz; j++) {
            uint64_t d = 0;
            int sh = 0;
            for (;;) {
                assert_true(pos < l);
                d |= (uint64_t)(s[pos] & 0x7f) << sh;
                sh += 7;
                if (!(s[pos++] & 0x80)) break;
            }
            r.idx[j] = j ? prev + d : d;
            if (j) assert_true(d >= 1);
            prev = r.idx[j];
        }
        assert_int_equal(pos, l);
        /* the encoder picks the shorter coding: varints only when not longer */
        assert_true(l <= (count + 7) / 8);
    } else {
        size_t j = 0;
        assert_int_equal(l, (count + 7) / 8);
        for (size_t i = 0; i < count; i++)
            if (s[i / 8] >> (i % 8) & 1) {
                assert_true(j < nnz);
                r.idx[j++] = i;
            }
        assert_int_equal(j, nnz);
    }
    for (size_t j = 0; j < nnz; j++) {
        assert_true(r.idx[j] < count);
        if (j) assert_true(r.idx[j] > r.idx[j - 1]);
    }
    if (nnz) memcpy(r.val, s + l, 4 * nnz);
    return r;
}

static void tk_msg_free(tk_msg_t *r)
{
    free(r->idx);
    free(r->val);
}

typedef struct {
    uint32_t key;
    size_t i;
} tk_ref_t;

/* Larger magnitude first; equal magnitudes by index. */
static int tk_ref_cmp(const void *a, const void *b)
{
    const tk_ref_t *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Data kinds beyond datagen's: 2 = few distinct magnitudes (ties everywhere). */
static float *tk_data(size_t n, int kind, uint64_t seed)
{
    if (kind < 2) return lc_codec_test_data(n, (lc_data_kind_t)kind, seed);
    float *x = malloc((n ? n : 1) * sizeof(float));
    uint64_t s = seed;
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = lc__codec_rand(&s);
        x[i] = (float)(r % 4) * ((r >> 8) & 1 ? 1.0f : -1.0f);
    }
    return x;
}

/*
 * Encode x (no state: y = x) and check the exact selection against a sort: per unit exactly
 * k kept, and they are the k largest |x| (ties to the lowest indices); decode gives x there
 * and +0 elsewhere; decode_accumulate adds exactly there and leaves the rest alone.
 */
static void tk_check_exact(lc_codec_t *c, const float *x, size_t n, double d, uint64_t kk,
                           uint32_t block)
{
    size_t len;
    uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
    tk_msg_t r = tk_parse(m, len, n);
    unsigned char *kept = calloc(n ? n : 1, 1);
    size_t unit = block ? block : n, j = 0;
    tk_ref_t *ref = malloc((unit ? unit : 1) * sizeof(*ref));
    assert_non_null(kept);
    assert_non_null(ref);
    for (size_t q = 0; q < r.nnz; q++) {
        kept[r.idx[q]] = 1;
        assert_true(tk_same(r.val[q], x[r.idx[q]]));
    }
    for (size_t s = 0; s < n; s += unit) {
        size_t ul = n - s < unit ? n - s : unit, k = tk_k(d, kk, ul), got = 0;
        while (j < r.nnz && r.idx[j] < s + ul) j++, got++;
        assert_int_equal(got, k);
        for (size_t i = 0; i < ul; i++) ref[i] = (tk_ref_t){ tk_key(x[s + i]), s + i };
        qsort(ref, ul, sizeof(*ref), tk_ref_cmp);
        for (size_t i = 0; i < k; i++) assert_true(kept[ref[i].i]);
    }
    assert_int_equal(j, r.nnz);

    float *y = malloc((n ? n : 1) * sizeof(float));
    float *acc = tk_data(n, 0, 99), *acc0 = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(y);
    assert_non_null(acc0);
    memset(y, 0x7f, n * sizeof(float));
    assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
    for (size_t i = 0; i < n; i++) assert_true(tk_same(y[i], kept[i] ? x[i] : 0.0f));
    memcpy(acc0, acc, n * sizeof(float));
    assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, n), LC_OK);
    for (size_t i = 0; i < n; i++) assert_true(tk_same(acc[i], kept[i] ? acc0[i] + x[i] : acc0[i]));
    free(y);
    free(acc);
    free(acc0);
    free(ref);
    free(kept);
    tk_msg_free(&r);
    free(m);
}

/* ------------------------------------------------------------ tests */

/* The registry holds this codec with the advertised shape. */
static void test_topk_registry(void **state)
{
    const lc_codec_ops_t *o = lc__codec_ops_get(LC_CODEC_TOPK);
    assert_ptr_equal(o, &lc__codec_topk_ops);
    assert_string_equal(o->name, "topk");
    assert_int_equal(o->caps, LC_CODEC_CAP_LOSSY | LC_CODEC_CAP_EF | LC_CODEC_CAP_SUMMABLE);
    assert_int_equal(o->elem, 0);
}

/* Exact selection at every test size, whole-tensor and blocked, on three kinds of data. */
static void test_topk_exact_roundtrip(void **state)
{
    static const struct {
        const char *spec;
        double d;
        uint64_t k;
        uint32_t block;
    } cases[] = {
        { "topk:0.01", 0.01, 0, 0 },
        { "topk:0.01:block=1000", 0.01, 0, 1000 },
        { "topk:k=100", 0, 100, 0 },
        { "topk:k=3:block=1000", 0, 3, 1000 },
        { "topk:0.3:block=1000", 0.3, 0, 1000 }, /* dense: bitmap coding */
        { "topk:1", 1, 0, 0 },
        { "topk:k=5000:block=4096", 0, 5000, 4096 },
    };
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        lc_codec_t *c = lc_codec_test_make(cases[t].spec);
        size_t sizes[6];
        size_t ns = lc_codec_test_sizes(cases[t].block, sizes);
        for (size_t s = 0; s < ns; s++)
            for (int kind = 0; kind < 3; kind++) {
                float *x = tk_data(sizes[s], kind, 17 + s);
                tk_check_exact(c, x, sizes[s], cases[t].d, cases[t].k, cases[t].block);
                free(x);
            }
        lc__codec_destroy(c);
    }
}

/* NaN ranks above inf (so NaNs go first), -inf above every finite value; bits kept. */
static void test_topk_nan_inf(void **state)
{
    lc_codec_t *c = lc_codec_test_make("topk:k=3");
    float x[8] = { 1.0f, NAN, -INFINITY, 2.0f, -NAN, 0.0f, 3e38f, -1.0f };
    float y[8];
    size_t len;
    uint8_t *m = lc_codec_test_encode(c, NULL, x, 8, &len);
    tk_msg_t r = tk_parse(m, len, 8);
    assert_int_equal(r.nnz, 3);
    assert_int_equal(r.idx[0], 1);
    assert_int_equal(r.idx[1], 2);
    assert_int_equal(r.idx[2], 4);
    assert_int_equal(lc__codec_decode(c, m, len, y, 8), LC_OK);
    for (int i = 0; i < 8; i++)
        assert_true(tk_same(y[i], (i == 1 || i == 2 || i == 4) ? x[i] : 0.0f));
    tk_msg_free(&r);
    free(m);
    lc__codec_destroy(c);
}

/*
 * approx: the kept count is within k +- 10% and the kept values are exact, on 1 Mi elements
 * of both datagen kinds and on ties; every kept |y| is >= every dropped one (one threshold);
 * the residual holds y where dropped and 0 where kept. Small k and heavy ties make the
 * sample miss, which exercises the exact fallbacks.
 */
static void test_topk_approx_count(void **state)
{
    static const struct {
        const char *spec;
        double d;
        uint64_t k;
    } cases[] = {
        { "topk:0.01:approx", 0.01, 0 },
        { "topk:k=200:approx", 0, 200 },
        { "topk:k=5:approx", 0, 5 },
        { "topk:0.2:approx", 0.2, 0 },
    };
    const size_t n = 1u << 20;
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        for (int kind = 0; kind < 3; kind++) {
            for (uint64_t seed = 0; seed < 4; seed++) {
                char spec[64];
                snprintf(spec, sizeof(spec), "%s:seed=%llu", cases[t].spec,
                         (unsigned long long)seed);
                lc_codec_t *c = lc_codec_test_make(spec);
                lc_codec_state_t *st;
                size_t len, k = tk_k(cases[t].d, cases[t].k, n);
                float *x = tk_data(n, kind, 31 + seed);
                assert_int_equal(lc__codec_state_create(c, n, &st), LC_OK);
                uint8_t *m = lc_codec_test_encode(c, st, x, n, &len);
                tk_msg_t r = tk_parse(m, len, n);
                assert_true(r.nnz * 10 >= 9 * k && r.nnz * 10 <= 11 * k);
                unsigned char *kept = calloc(n, 1);
                uint32_t kmin = UINT32_MAX, dmax = 0;
                for (size_t q = 0; q < r.nnz; q++) {
                    kept[r.idx[q]] = 1;
                    assert_true(tk_same(r.val[q], x[r.idx[q]] + 0.0f));
                    if (tk_key(r.val[q]) < kmin) kmin = tk_key(r.val[q]);
                }
                for (size_t i = 0; i < n; i++) {
                    assert_true(tk_same(st->residual[i], kept[i] ? 0.0f : x[i] + 0.0f));
                    if (!kept[i] && tk_key(x[i]) > dmax) dmax = tk_key(x[i]);
                }
                assert_true(dmax <= kmin);
                free(kept);
                tk_msg_free(&r);
                free(m);
                free(x);
                lc__codec_state_destroy(st);
                lc__codec_destroy(c);
            }
        }
    }
}

/*
 * Error feedback: encoding the same g for T steps, the decoded sum S_T plus the residual is
 * T g (what is dropped is sent later), so |S_T - T g| is the residual, which stays below a
 * bound that does not grow with T. Without feedback the gap grows like T.
 */
static void test_topk_error_feedback(void **state)
{
    static const char *const specs[] = { "topk:0.25", "topk:0.25:block=1000", "topk:0.25:approx" };
    const size_t n = 4096;
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        lc_codec_t *c = lc_codec_test_make(specs[s]);
        lc_codec_state_t *st;
        float *g = lc_codec_test_data(n, LC_DATA_GAUSSIAN, 5);
        float *sum = calloc(n, sizeof(float));
        double gmax = 0, dev10 = 0;
        assert_non_null(sum);
        assert_int_equal(lc__codec_state_create(c, n, &st), LC_OK);
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
        for (int t = 1; t <= 50; t++) {
            size_t len;
            uint8_t *m = lc_codec_test_encode(c, st, g, n, &len);
            assert_int_equal(lc__codec_decode_accumulate(c, m, len, sum, n), LC_OK);
            free(m);
            if (t != 10 && t != 50) continue;
            double dev = 0, tel = 0;
            for (size_t i = 0; i < n; i++) {
                double want = (double)t * g[i];
                dev = fmax(dev, fabs(sum[i] - want));
                tel = fmax(tel, fabs(sum[i] + st->residual[i] - want));
            }
            assert_true(tel <= 1e-5 * t * t * gmax); /* float rounding only */
            assert_true(dev <= 2 * gmax);            /* independent of t */
            if (t == 10) dev10 = dev;
            if (t == 50) assert_true(dev <= 1.5 * dev10); /* it does not grow */
        }
        free(g);
        free(sum);
        lc__codec_state_destroy(st);
        lc__codec_destroy(c);
    }
}

/* The AVX2 and C paths give the same bytes and residuals, step after step. */
static void test_topk_avx2_matches_c(void **state)
{
    static const char *const specs[] = { "topk:0.01",
                                         "topk:0.01:approx",
                                         "topk:k=100:block=1000",
                                         "topk:0.02:approx:block=100000",
                                         "topk:k=7:approx",
                                         "topk:0.4" };
    const size_t n = (1u << 20) + 7;
    if (lc__codec_set_isa(LC_CODEC_ISA_AVX2) != LC_CODEC_ISA_AVX2) {
        print_message("no AVX2 on this CPU: C/AVX2 comparison skipped\n");
        return;
    }
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        for (int kind = 0; kind < 3; kind++) {
            lc_codec_t *c[2];
            lc_codec_state_t *st[2];
            float *x = tk_data(n, kind, 3 + s);
            for (int v = 0; v < 2; v++) {
                c[v] = lc_codec_test_make(specs[s]);
                assert_int_equal(lc__codec_state_create(c[v], n, &st[v]), LC_OK);
            }
            for (int step = 0; step < 3; step++) {
                uint8_t *m[2];
                size_t len[2];
                for (int v = 0; v < 2; v++) {
                    lc__codec_set_isa(v ? LC_CODEC_ISA_AVX2 : LC_CODEC_ISA_C);
                    m[v] = lc_codec_test_encode(c[v], st[v], x, n, &len[v]);
                }
                assert_int_equal(len[0], len[1]);
                assert_memory_equal(m[0], m[1], len[0]);
                assert_memory_equal(st[0]->residual, st[1]->residual, n * sizeof(float));
                assert_int_equal(st[0]->rng, st[1]->rng);
                free(m[0]);
                free(m[1]);
            }
            for (int v = 0; v < 2; v++) {
                lc__codec_state_destroy(st[v]);
                lc__codec_destroy(c[v]);
            }
            free(x);
        }
    }
    lc__codec_set_isa(LC_CODEC_ISA_AVX2);
}

/* Golden messages: header + body, bitmap and varint codings (one with a 2-byte varint). */
static void test_topk_golden(void **state)
{
    /* 8 floats, k=2: indices 1 and 6; a 1-byte bitmap beats 2 varint bytes */
    static const uint8_t bitmap[] = {
        2,    1,    0,    0,    33, 0, 0,    0,    8, 0, 0, 0, 0, 0, 0, 0, /* header */
        1,    0,    0,    0,    0,  0, 0,    0,                            /* bitmap, block 0 */
        2,    0,    0,    0,    0,  0, 0,    0,                            /* nnz */
        1,    0,    0,    0,    0,  0, 0,    0,                            /* index bytes */
        0x42,                                                              /* bits 1 and 6 */
        0x00, 0x00, 0x40, 0xc0, 0,  0, 0x80, 0x40,                         /* -3, 4 */
    };
    /* 32 floats in blocks of 16, k=1 each: indices 3 and 20 as varints 3, 17 */
    static const uint8_t varint[] = {
        2,    1,    0,    0,    34, 0, 0, 0,    32, 0, 0, 0, 0, 0, 0, 0, /* header */
        0,    0,    0,    0,    16, 0, 0, 0,                             /* varints, block 16 */
        2,    0,    0,    0,    0,  0, 0, 0,                             /* nnz */
        2,    0,    0,    0,    0,  0, 0, 0,                             /* index bytes */
        0x03, 0x11,                                                      /* 3, +17 */
        0x00, 0x00, 0x80, 0x3f, 0,  0, 0, 0xc0,                          /* 1, -2 */
    };
    /* 300 floats, k=2: indices 5 and 290; the delta 285 takes two bytes (0x9d 0x02) */
    static const uint8_t varint2[] = {
        2,    1,    0,    0,    35, 0, 0,    0,    0x2c, 1, 0, 0, 0, 0, 0, 0, /* header */
        0,    0,    0,    0,    0,  0, 0,    0,                               /* varints */
        2,    0,    0,    0,    0,  0, 0,    0,                               /* nnz */
        3,    0,    0,    0,    0,  0, 0,    0,                               /* index bytes */
        0x05, 0x9d, 0x02,                                                     /* 5, +285 */
        0x00, 0x00, 0x00, 0x3f, 0,  0, 0x80, 0x40,                            /* 0.5, 4 */
    };
    float a[8] = { 0.5f, -3.0f, 1.0f, 0.0f, 2.0f, -0.25f, 4.0f, 1.5f };
    float b[32] = { 0 }, d[300] = { 0 }, y[300];
    b[3] = 1.0f, b[20] = -2.0f, b[25] = 0.5f;
    d[5] = 0.5f, d[290] = 4.0f, d[100] = 0.25f;
    const struct {
        const char *spec;
        const float *x;
        size_t n;
        const uint8_t *golden;
        size_t len;
    } cases[] = {
        { "topk:k=2", a, 8, bitmap, sizeof(bitmap) },
        { "topk:k=1:block=16", b, 32, varint, sizeof(varint) },
        { "topk:k=2", d, 300, varint2, sizeof(varint2) },
    };
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        lc_codec_t *c = lc_codec_test_make(cases[t].spec);
        size_t len;
        uint8_t *m = lc_codec_test_encode(c, NULL, cases[t].x, cases[t].n, &len);
        assert_int_equal(len, cases[t].len);
        assert_memory_equal(m, cases[t].golden, len);
        /* and the golden bytes decode back */
        assert_int_equal(lc__codec_decode(c, cases[t].golden, cases[t].len, y, cases[t].n), LC_OK);
        for (size_t i = 0; i < cases[t].n; i++) {
            float want = cases[t].x[i];
            if (t == 0 && i != 1 && i != 6) want = 0;
            if (t == 1 && i != 3 && i != 20) want = 0;
            if (t == 2 && i != 5 && i != 290) want = 0;
            assert_true(tk_same(y[i], want));
        }
        free(m);
        lc__codec_destroy(c);
    }
}

/* A body from its parts: coding, mode, reserved, nnz, index section, values. */
static size_t tk_body(uint8_t *out, uint8_t coding, uint8_t mode, uint16_t rsv, uint64_t nnz,
                      const uint8_t *isec, size_t ilen, size_t nvals)
{
    memset(out, 0, 24);
    out[0] = coding;
    out[1] = mode;
    out[2] = (uint8_t)rsv;
    out[3] = (uint8_t)(rsv >> 8);
    lc__codec_put64(out + 8, nnz);
    lc__codec_put64(out + 16, ilen);
    memcpy(out + 24, isec, ilen);
    for (size_t j = 0; j < nvals; j++) {
        float v = (float)(j + 1);
        memcpy(out + 24 + ilen + 4 * j, &v, 4);
    }
    return 24 + ilen + 4 * nvals;
}

/* A body must be LC_ERR_CORRUPT for decode and decode_accumulate, acc untouched. */
static void tk_expect_corrupt(const lc_codec_params_t *p, const uint8_t *body, size_t len,
                              size_t count)
{
    float *dst = malloc((count ? count : 1) * sizeof(float));
    float *acc = malloc((count ? count : 1) * sizeof(float));
    float *acc0 = malloc((count ? count : 1) * sizeof(float));
    assert_non_null(dst);
    assert_non_null(acc);
    assert_non_null(acc0);
    for (size_t i = 0; i < count; i++) acc[i] = acc0[i] = (float)i * 0.5f - 3.0f;
    assert_int_equal(lc__codec_topk_ops.decode(p, body, len, dst, count), LC_ERR_CORRUPT);
    assert_int_equal(lc__codec_topk_ops.decode_accumulate(p, body, len, acc, count),
                     LC_ERR_CORRUPT);
    assert_memory_equal(acc, acc0, count * sizeof(float));
    free(dst);
    free(acc);
    free(acc0);
}

static void tk_expect_ok(const lc_codec_params_t *p, const uint8_t *body, size_t len, size_t count)
{
    float dst[64];
    assert_true(count <= 64);
    assert_int_equal(lc__codec_topk_ops.decode(p, body, len, dst, count), LC_OK);
}

/* Hostile bodies: every malformation is LC_ERR_CORRUPT, and acc is left alone. */
static void test_topk_corrupt(void **state)
{
    lc_codec_t *c = lc_codec_test_make("topk:0.1");
    const lc_codec_params_t *p = lc__codec_params(c);
    uint8_t b[256], bad[256];
    size_t n, len;

    /* well-formed baselines (the corruptions below differ in one thing) */
    const uint8_t v3[] = { 2, 5, 30 }; /* indices 2, 7, 37 */
    n = tk_body(b, 0, 0, 0, 3, v3, 3, 3);
    tk_expect_ok(p, b, n, 40);
    const uint8_t bm[] = { 0x84, 0x00, 0x00, 0x00, 0x20 }; /* indices 2, 7, 37 of 40 */
    n = tk_body(b, 1, 1, 0, 3, bm, 5, 3);
    tk_expect_ok(p, b, n, 40);

    /* header fields */
    n = tk_body(b, 2, 0, 0, 3, v3, 3, 3); /* unknown coding */
    tk_expect_corrupt(p, b, n, 40);
    n = tk_body(b, 0, 2, 0, 3, v3, 3, 3); /* unknown mode bit */
    tk_expect_corrupt(p, b, n, 40);
    n = tk_body(b, 0, 0, 1, 3, v3, 3, 3); /* reserved */
    tk_expect_corrupt(p, b, n, 40);
    n = tk_body(b, 0, 0, 0x100, 3, v3, 3, 3);
    tk_expect_corrupt(p, b, n, 40);
    n = tk_body(b, 0, 0, 0, 3, v3, 3, 3); /* wrong index length in the header */
    lc__codec_put64(b + 16, 2);
    tk_expect_corrupt(p, b, n, 40);
    lc__codec_put64(b + 16, UINT64_MAX);
    tk_expect_corrupt(p, b, n, 40);
    n = tk_body(b, 0, 0, 0, 3, v3, 3, 3); /* nnz disagrees with the lengths */
    lc__codec_put64(b + 8, 2);
    tk_expect_corrupt(p, b, n, 40);
    lc__codec_put64(b + 8, UINT64_MAX / 2);
    tk_expect_corrupt(p, b, n, 40);
    n = tk_body(b, 0, 0, 0, 3, v3, 3, 3); /* more values than elements */
    tk_expect_corrupt(p, b, n, 2);
    n = tk_body(b, 0, 0, 0, 3, v3, 3, 3); /* values section one byte short / long */
    tk_expect_corrupt(p, b, n - 1, 40);
    b[n] = 0;
    tk_expect_corrupt(p, b, n + 1, 40);
    tk_expect_corrupt(p, b, 0, 40);

    /* varint index section */
    n = tk_body(b, 0, 0, 0, 3, v3, 3, 3);
    tk_expect_corrupt(p, b, n, 37); /* index 37 out of range for 37 elements */
    tk_expect_ok(p, b, n, 38);
    const uint8_t zero_delta[] = { 2, 0, 30 }; /* non-increasing */
    n = tk_body(b, 0, 0, 0, 3, zero_delta, 3, 3);
    tk_expect_corrupt(p, b, n, 40);
    /* wraps past 2^64 back below the previous index */
    const uint8_t wrap[] = { 2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 30 };
    n = tk_body(b, 0, 0, 0, 3, wrap, sizeof(wrap), 3);
    tk_expect_corrupt(p, b, n, 40);
    const uint8_t first_oob[] = { 40 };
    n = tk_body(b, 0, 0, 0, 1, first_oob, 1, 1);
    tk_expect_corrupt(p, b, n, 40);
    const uint8_t runs_off[] = { 2, 5, 0x9e }; /* last varint continues past the section */
    n = tk_body(b, 0, 0, 0, 3, runs_off, 3, 3);
    tk_expect_corrupt(p, b, n, 40);
    const uint8_t too_long[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
    n = tk_body(b, 0, 0, 0, 1, too_long, sizeof(too_long), 1);
    tk_expect_corrupt(p, b, n, 40);
    const uint8_t over64[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02 };
    n = tk_body(b, 0, 0, 0, 1, over64, sizeof(over64), 1);
    tk_expect_corrupt(p, b, n, 40);
    const uint8_t overlong[] = { 0x82, 0x00 }; /* 2 in two bytes: not shortest form */
    n = tk_body(b, 0, 0, 0, 1, overlong, 2, 1);
    tk_expect_corrupt(p, b, n, 40);
    const uint8_t trailing[] = { 2, 5, 30, 7 }; /* a varint more than nnz */
    n = tk_body(b, 0, 0, 0, 3, trailing, 4, 3);
    tk_expect_corrupt(p, b, n, 40);

    /* bitmap index section */
    uint8_t bm2[5];
    memcpy(bm2, bm, 5);
    bm2[1] = 0x01; /* a fourth bit: popcount 4 != 3 */
    n = tk_body(b, 1, 0, 0, 3, bm2, 5, 3);
    tk_expect_corrupt(p, b, n, 40);
    memcpy(bm2, bm, 5);
    bm2[0] = 0x04; /* two bits: popcount 2 != 3 */
    n = tk_body(b, 1, 0, 0, 3, bm2, 5, 3);
    tk_expect_corrupt(p, b, n, 40);
    n = tk_body(b, 1, 0, 0, 3, bm, 5, 3); /* bit 37 is past 37 elements */
    tk_expect_corrupt(p, b, n, 37);
    tk_expect_ok(p, b, n, 38);
    tk_expect_corrupt(p, b, n, 41);       /* 6 bytes expected */
    tk_expect_corrupt(p, b, n, 32);       /* 4 bytes expected */
    n = tk_body(b, 1, 0, 0, 3, bm, 4, 3); /* section shorter than the bitmap */
    tk_expect_corrupt(p, b, n, 40);

    /* every truncation of real bodies (varint and bitmap), at the body and message level */
    static const char *const specs[] = { "topk:0.01", "topk:0.5" };
    for (size_t s = 0; s < 2; s++) {
        lc_codec_t *c2 = lc_codec_test_make(specs[s]);
        float *x = lc_codec_test_data(500, LC_DATA_GAUSSIAN, 8);
        float y[500];
        uint8_t *m = lc_codec_test_encode(c2, NULL, x, 500, &len);
        assert_int_equal(m[16], s); /* the coding this case is about */
        for (size_t cut = 0; cut < len - 16; cut++)
            tk_expect_corrupt(lc__codec_params(c2), m + 16, cut, 500);
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(lc__codec_decode(c2, m, cut, y, 500), LC_ERR_CORRUPT);
        /* a wrong count in the message header, and a different expected count */
        assert_int_equal(lc__codec_decode(c2, m, len, y, 499), LC_ERR_CORRUPT);
        memcpy(bad, m, len < sizeof(bad) ? len : sizeof(bad));
        if (len <= sizeof(bad)) {
            bad[8] ^= 1;
            assert_int_equal(lc__codec_decode(c2, bad, len, y, 500), LC_ERR_CORRUPT);
        }
        assert_int_equal(lc__codec_decode(c2, m, len, y, 500), LC_OK);
        free(m);
        free(x);
        lc__codec_destroy(c2);
    }
    lc__codec_destroy(c);
}

/* Random damage to real bodies: never a read or write outside the buffers (run it under
 * ASan), only LC_OK or LC_ERR_CORRUPT, and acc untouched on LC_ERR_CORRUPT. */
static void test_topk_fuzz(void **state)
{
    static const char *const specs[] = { "topk:0.02", "topk:0.4" }; /* varints, bitmap */
    const size_t n = 3000;
    const int level = lc__log_level;
    uint64_t rng = 12345;
    lc__log_set_level(-1); /* thousands of expected "corrupt body" lines */
    for (size_t s = 0; s < 2; s++) {
        lc_codec_t *c = lc_codec_test_make(specs[s]);
        const lc_codec_params_t *p = lc__codec_params(c);
        float *x = lc_codec_test_data(n, LC_DATA_GRADIENT, 9);
        float *acc = malloc(n * sizeof(float)), *acc0 = malloc(n * sizeof(float));
        size_t len, corrupt = 0;
        uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
        const size_t blen = len - 16;
        uint8_t *b = malloc(blen + 8);
        assert_non_null(acc);
        assert_non_null(acc0);
        assert_non_null(b);
        for (size_t i = 0; i < n; i++) acc0[i] = (float)i;
        for (int it = 0; it < 4000; it++) {
            size_t l = blen;
            memcpy(b, m + 16, blen);
            for (int f = 0; f < 1 + it % 3; f++) {
                uint64_t r = lc__codec_rand(&rng);
                /* mostly the header and the index section, where the structure is */
                size_t at = (r & 1) ? (r >> 8) % (blen < 64 ? blen : 64) : (r >> 8) % blen;
                b[at] = (r & 2) ? (uint8_t)(r >> 40) : (uint8_t)(b[at] ^ (1u << ((r >> 32) & 7)));
            }
            if (it % 7 == 0) l = blen - 1 - (size_t)(lc__codec_rand(&rng) % 8);
            memcpy(acc, acc0, n * sizeof(float));
            lc_status_t st = lc__codec_topk_ops.decode_accumulate(p, b, l, acc, n);
            assert_true(st == LC_OK || st == LC_ERR_CORRUPT);
            if (st == LC_ERR_CORRUPT) {
                assert_memory_equal(acc, acc0, n * sizeof(float));
                corrupt++;
            }
            assert_int_equal(lc__codec_topk_ops.decode(p, b, l, acc, n), st);
        }
        assert_true(corrupt > 1000); /* the damage was mostly caught, not mostly harmless */
        free(b);
        free(m);
        free(x);
        free(acc);
        free(acc0);
        lc__codec_destroy(c);
    }
    lc__log_set_level(level);
}

/* max_body_size bounds the worst cases: all kept (bitmap), spread indices (long varints). */
static void test_topk_max_body(void **state)
{
    static const char *const specs[] = { "topk:1",           "topk:0.5",        "topk:k=1",
                                         "topk:k=3:block=7", "topk:0.1:approx", "topk:0.125" };
    const size_t sizes[] = { 0, 1, 7, 8, 9, 1000, 70000 };
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        lc_codec_t *c = lc_codec_test_make(specs[s]);
        for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
            size_t n = sizes[z], len;
            float *x = malloc((n ? n : 1) * sizeof(float));
            for (int pat = 0; pat < 3; pat++) {
                /* pat 0: the largest at the end; 1: every 8th large; 2: random */
                uint64_t r = 5;
                for (size_t i = 0; i < n; i++)
                    x[i] = pat == 0   ? (float)i
                           : pat == 1 ? (i % 8 == 7 ? 10.0f : 1.0f)
                                      : (float)(lc__codec_rand(&r) >> 40);
                uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len); /* asserts len <= cap */
                assert_true(len - 16 <= lc__codec_topk_ops.max_body_size(lc__codec_params(c), n));
                free(m);
            }
            free(x);
        }
        lc__codec_destroy(c);
    }
}

/* With the zstd stage the decoded result is the same (topk bodies are not shuffled). */
static void test_topk_zstd(void **state)
{
    lc_codec_test_zstd_same("topk:0.05", 100000, 1);
}

/* At density 0.01 on 16 Mi floats the message is at least 40x smaller than f32. */
static void test_topk_ratio(void **state)
{
    lc_codec_t *c = lc_codec_test_make("topk:0.01");
    const size_t n = 16u << 20;
    float *x = lc_codec_test_data(n, LC_DATA_GRADIENT, 6);
    size_t len;
    uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
    print_message("topk:0.01 on 16 Mi gradient floats: %zu bytes, %.1fx\n", len,
                  (double)n * 4 / (double)len);
    assert_true((double)n * 4 / (double)len >= 40.0);
    free(m);
    free(x);
    lc__codec_destroy(c);
}

/* Specs: bad ones rejected, good ones in canonical form, defaults filled by check. */
static void test_topk_spec(void **state)
{
    static const char *const bad[] = { "topk:0",    "topk:density=0", "topk:1.5",
                                       "topk:nan",  "topk:k=0",       "topk:0.01:fast",
                                       "topk:-0.1", "topk:density=2", "topk:k=5:density=1.5",
                                       "topk:inf",  "topk:0.01:rms" };
    static const char *const good[][2] = {
        { "topk:0.01", "topk:0.01:exact" },
        { "topk:k=100:approx:block=4096", "topk:k=100:approx:block=4096" },
        { "topk", "topk:0.01:exact" },
        { "topk:density=0.5:approx", "topk:0.5:approx" },
        { "topk:1", "topk:1:exact" },
        { "topk:0.001:block=1+zstd", "topk:0.001:exact:block=1+zstd:1:auto" },
        { "topk:approx:exact:k=7", "topk:k=7:exact" },
    };
    lc_codec_params_t p;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lc__codec_parse(bad[i], &p), LC_ERR_INVALID_ARG);
    lc_codec_test_canonical(good, sizeof(good) / sizeof(good[0]));
    /* check directly: zeroed params get the default; bad densities are refused */
    memset(&p, 0, sizeof(p));
    p.id = LC_CODEC_TOPK;
    assert_int_equal(lc__codec_topk_ops.check(&p), LC_OK);
    assert_true(p.density == 0.01);
    p.density = NAN;
    assert_int_equal(lc__codec_topk_ops.check(&p), LC_ERR_INVALID_ARG);
    p.density = -0.5;
    assert_int_equal(lc__codec_topk_ops.check(&p), LC_ERR_INVALID_ARG);
    p.density = 1.0000001;
    assert_int_equal(lc__codec_topk_ops.check(&p), LC_ERR_INVALID_ARG);
    p.density = 1.0;
    assert_int_equal(lc__codec_topk_ops.check(&p), LC_OK);
    p.flags = LC_CODEC_F_RMS;
    assert_int_equal(lc__codec_topk_ops.check(&p), LC_ERR_INVALID_ARG);
}

LC_CODEC_TESTS(lc_topk_tests, cmocka_unit_test(test_topk_registry),
               cmocka_unit_test(test_topk_exact_roundtrip), cmocka_unit_test(test_topk_nan_inf),
               cmocka_unit_test(test_topk_approx_count), cmocka_unit_test(test_topk_error_feedback),
               cmocka_unit_test(test_topk_avx2_matches_c), cmocka_unit_test(test_topk_golden),
               cmocka_unit_test(test_topk_corrupt), cmocka_unit_test(test_topk_fuzz),
               cmocka_unit_test(test_topk_max_body), cmocka_unit_test(test_topk_zstd),
               cmocka_unit_test(test_topk_ratio), cmocka_unit_test(test_topk_spec))
