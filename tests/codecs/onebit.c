/* onebit: signs + per-block scale, error feedback, AVX2 = C, hostile bodies. */
#include "tests/codecs/codec_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reference: every element decodes to +-(mean |x| of its block), sign from x's sign bit. */
static void onebit_check_block(const float *x, const float *y, size_t n, int rms)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += rms ? (double)x[i] * x[i] : fabs((double)x[i]);
    s = rms ? sqrt(s / (double)n) : s / (double)n;
    for (size_t i = 0; i < n; i++) {
        assert_true(signbit(y[i]) == signbit(x[i]));
        assert_true(fabs(fabs((double)y[i]) - s) <= 1e-5 * s + 1e-30);
    }
}

static void onebit_roundtrip(const char *spec, uint32_t block, int rms)
{
    lc_codec_t *c = lc_codec_test_make(spec);
    size_t sizes[6], ns = lc_codec_test_sizes(block, sizes);
    for (size_t k = 0; k < ns; k++) {
        for (int kind = 0; kind < 2; kind++) {
            size_t n = sizes[k], len;
            float *x = lc_codec_test_data(n, (lc_data_kind_t)kind, 11 + k);
            float *y = calloc(n + 1, sizeof(float)), *acc = calloc(n + 1, sizeof(float));
            uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
            assert_int_equal(len, lc__codec_max_encoded_size(c, n));
            assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
            for (size_t off = 0; off < n; off += block)
                onebit_check_block(x + off, y + off, n - off < block ? n - off : block, rms);
            for (size_t i = 0; i < n; i++) acc[i] = (float)i;
            assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, n), LC_OK);
            for (size_t i = 0; i < n; i++) assert_true(acc[i] == (float)i + y[i]);
            free(m);
            free(x);
            free(y);
            free(acc);
        }
    }
    lc__codec_destroy(c);
}

static void test_onebit_roundtrip(void **state)
{
    onebit_roundtrip("onebit", 2048, 0);
    onebit_roundtrip("onebit:64:rms", 64, 1);
}

/* Wire ratio at the default block: >= 30x smaller than f32 on 1 Mi elements. */
static void test_onebit_ratio(void **state)
{
    lc_codec_t *c = lc_codec_test_make("onebit");
    size_t n = 1 << 20;
    double ratio = (double)(n * 4) / (double)lc__codec_max_encoded_size(c, n);
    assert_true(ratio >= 30.0);
    lc__codec_destroy(c);
}

/*
 * Error feedback: T encodes of the same g. The decoded sum plus the residual is T g (up to
 * rounding), so the distance of the sum from T g is the residual, and it stays bounded:
 * scaled sign is a contraction with delta >= 1/B, which bounds |e| by about 2 B max|g|
 * whatever T (without feedback the distance grows like T). The average decoded value
 * converges to g.
 */
static void test_onebit_error_feedback(void **state)
{
    const size_t B = 256, n = 4096;
    lc_codec_t *c = lc_codec_test_make("onebit:256");
    float *g = lc_codec_test_data(n, LC_DATA_GAUSSIAN, 5);
    float *sum = calloc(n, sizeof(float));
    lc_codec_state_t *st;
    double err100 = 0, gmax = 0;
    size_t len;
    assert_int_equal(lc__codec_state_create(c, n, &st), LC_OK);
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    for (int t = 1; t <= 2000; t++) {
        uint8_t *m = lc_codec_test_encode(c, st, g, n, &len);
        assert_int_equal(lc__codec_decode_accumulate(c, m, len, sum, n), LC_OK);
        free(m);
        if (t != 100 && t != 500 && t != 2000) continue;
        double err = 0;
        for (size_t i = 0; i < n; i++) {
            double tg = (double)t * g[i];
            err = fmax(err, fabs((double)sum[i] - tg));
            assert_true(fabs((double)sum[i] + st->residual[i] - tg) <= 1e-5 * t * (gmax + 1));
        }
        assert_true(err <= 2.0 * B * gmax);
        if (t == 100) err100 = err;
        if (t == 2000) assert_true(err / 2000 < err100 / 100 / 4);
    }
    lc__codec_state_destroy(st);
    free(g);
    free(sum);
    lc__codec_destroy(c);
}

/* The AVX2 and portable paths give the same bytes, residuals and decodes. */
static void test_onebit_simd_identical(void **state)
{
    const char *specs[] = { "onebit", "onebit:64:rms", "onebit:8" };
    if (lc__codec_set_isa(LC_CODEC_ISA_AVX2) != LC_CODEC_ISA_AVX2) {
        printf("# no AVX2 on this CPU: C path only\n");
        return;
    }
    for (size_t s = 0; s < 3; s++) {
        size_t n = (1 << 16) + 13, len[2];
        float *x = lc_codec_test_data(n, LC_DATA_GRADIENT, 21);
        x[5] = NAN;
        x[77] = -INFINITY;
        x[300] = -0.0f;
        uint8_t *m[2];
        float *res[2], *y[2];
        for (int isa = 0; isa < 2; isa++) {
            lc__codec_set_isa(isa ? LC_CODEC_ISA_AVX2 : LC_CODEC_ISA_C);
            lc_codec_t *c = lc_codec_test_make(specs[s]);
            lc_codec_state_t *st;
            assert_int_equal(lc__codec_state_create(c, n, &st), LC_OK);
            for (int t = 0; t < 3; t++) { /* a few steps so the residual is exercised */
                m[isa] = lc_codec_test_encode(c, st, x, n, &len[isa]);
                if (t < 2) free(m[isa]);
            }
            res[isa] = malloc(n * sizeof(float));
            memcpy(res[isa], st->residual, n * sizeof(float));
            y[isa] = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++) y[isa][i] = 1.0f;
            assert_int_equal(lc__codec_decode_accumulate(c, m[isa], len[isa], y[isa], n), LC_OK);
            lc__codec_state_destroy(st);
            lc__codec_destroy(c);
        }
        assert_int_equal(len[0], len[1]);
        assert_memory_equal(m[0], m[1], len[0]);
        assert_memory_equal(res[0], res[1], n * sizeof(float));
        assert_memory_equal(y[0], y[1], n * sizeof(float));
        for (int i = 0; i < 2; i++) {
            free(m[i]);
            free(res[i]);
            free(y[i]);
        }
        free(x);
    }
    lc__codec_set_isa(LC_CODEC_ISA_AVX2);
}

/* Non-finite input: finite scale on the wire, residual 0 there. */
static void test_onebit_nonfinite(void **state)
{
    lc_codec_t *c = lc_codec_test_make("onebit:8");
    float x[8] = { 1, -1, NAN, INFINITY, 1, -1, 1, -1 }, y[8];
    lc_codec_state_t *st;
    size_t len;
    assert_int_equal(lc__codec_state_create(c, 8, &st), LC_OK);
    uint8_t *m = lc_codec_test_encode(c, st, x, 8, &len);
    assert_int_equal(lc__codec_decode(c, m, len, y, 8), LC_OK);
    assert_true(y[0] == 0.75f && y[1] == -0.75f); /* 6 / 8 */
    assert_true(st->residual[2] == 0.0f && st->residual[3] == 0.0f);
    assert_true(st->residual[0] == 0.25f && st->residual[1] == -0.25f);
    free(m);
    lc__codec_state_destroy(st);
    lc__codec_destroy(c);
}

/* Golden bytes: 10 elements, block 8 (two scales, two sign bytes). */
static void test_onebit_golden(void **state)
{
    static const uint8_t golden[] = {
        1,    1,    0,    0,    18, 0, 0, 0,
        10,   0,    0,    0,    0,  0, 0, 0, /* header: onebit, body 18, count 10 */
        8,    0,    0,    0,    0,  0, 0, 0, /* block 8, mean scales */
        0x00, 0x00, 0x20, 0x40,              /* scale 2.5 */
        0x00, 0x00, 0x00, 0x3f,              /* scale 0.5 */
        0xa5,                                /* signs of elements 0..7 */
        0x02,                                /* element 9 negative */
    };
    const float x[10] = { -1, 2, -3, 4, 5, -1, 2, -2, 0.5f, -0.5f };
    lc_codec_test_golden("onebit:8", x, 10, golden, sizeof(golden));
}

static void onebit_expect_corrupt(lc_codec_t *c, const uint8_t *m, size_t len, size_t n)
{
    float acc[16], before[16];
    for (int i = 0; i < 16; i++) acc[i] = before[i] = (float)i;
    assert_int_equal(lc__codec_decode(c, m, len, acc, n), LC_ERR_CORRUPT);
    for (int i = 0; i < 16; i++) acc[i] = (float)i;
    assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, n), LC_ERR_CORRUPT);
    assert_memory_equal(acc, before, sizeof(acc));
}

static void test_onebit_corrupt(void **state)
{
    float x[10] = { -1, 2, -3, 4, 5, -1, 2, -2, 0.5f, -0.5f };
    lc_codec_t *c = lc_codec_test_make("onebit:8");
    size_t len;
    uint8_t *m = lc_codec_test_encode(c, NULL, x, 10, &len), bad[64];
    for (size_t cut = 0; cut < len; cut++) onebit_expect_corrupt(c, m, cut, 10);
    onebit_expect_corrupt(c, m, len, 9);
    onebit_expect_corrupt(c, m, len, 11);
    const struct {
        size_t off;
        uint8_t v;
    } edits[] = {
        { 16, 12 },   /* block not a multiple of 8 */
        { 16, 0 },    /* block 0 (with the other bytes 0) */
        { 20, 2 },    /* unknown flag */
        { 21, 1 },    /* reserved */
        { 27, 0x7f }, /* first scale NaN (0x7f..) */
        { 27, 0xc0 }, /* negative scale */
        { 31, 0xff }, /* second scale NaN */
        { 33, 0x06 }, /* a sign bit past count */
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        memcpy(bad, m, len);
        bad[edits[i].off] = edits[i].v;
        if (edits[i].off == 27 && edits[i].v == 0x7f) bad[26] = 0xc0;
        onebit_expect_corrupt(c, bad, len, 10);
    }
    free(m);
    lc__codec_destroy(c);
}

static void test_onebit_spec(void **state)
{
    static const char *const good[][2] = {
        { "onebit", "onebit:2048:mean" },
        { "onebit:1024:rms+zstd:3", "onebit:1024:rms+zstd:3:auto" },
    };
    lc_codec_params_t p;
    lc_codec_test_canonical(good, 2);
    const char *bad[] = { "onebit:12", "onebit:0x10", "onebit:fast", "onebit:8:rms:9",
                          "onebit:k=3" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lc__codec_parse(bad[i], &p), LC_ERR_INVALID_ARG);
}

LC_CODEC_TESTS(lc_onebit_tests, cmocka_unit_test(test_onebit_roundtrip),
               cmocka_unit_test(test_onebit_ratio), cmocka_unit_test(test_onebit_error_feedback),
               cmocka_unit_test(test_onebit_simd_identical),
               cmocka_unit_test(test_onebit_nonfinite), cmocka_unit_test(test_onebit_golden),
               cmocka_unit_test(test_onebit_corrupt), cmocka_unit_test(test_onebit_spec))
