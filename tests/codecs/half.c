/* The fp16 and bf16 codecs: bit-exact agreement with core/reduce.c's conversions (the
 * reference) on both kernel sets, NaN/Inf, golden bytes, corrupt bodies, specs. */
#include "tests/codecs/codec_test.h"

#include "core/log.h"
#include "core/reduce.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Referenced by name so the codecs are linked from the static library (and registered). */
extern const lc_codec_ops_t lc__codec_fp16_ops, lc__codec_bf16_ops;

static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static float float_of(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static uint16_t ref_enc(int bf16, float f)
{
    return bf16 ? lc__f32_to_bf16(f) : lc__f32_to_f16(f);
}

static float ref_dec(int bf16, uint16_t h)
{
    return bf16 ? lc__bf16_to_f32(h) : lc__f16_to_f32(h);
}

/* The ISAs this CPU runs: C always, AVX2 when present. */
/* A message around body (header as codec.c writes it, no zstd). */
static uint8_t *make_msg(lc_codec_id_t id, const void *body, size_t blen, size_t count,
                         size_t *len_p)
{
    uint8_t *m = malloc(LC_CODEC_HDR_LEN + blen + 1);
    assert_non_null(m);
    memset(m, 0, LC_CODEC_HDR_LEN);
    m[0] = (uint8_t)id;
    m[1] = LC_CODEC_FORMAT_VERSION;
    lc__codec_put32(m + 4, (uint32_t)blen);
    lc__codec_put64(m + 8, count);
    if (blen) memcpy(m + LC_CODEC_HDR_LEN, body, blen);
    *len_p = LC_CODEC_HDR_LEN + blen;
    return m;
}

/* Encode x[0..n) with c under each ISA and check every value against the reference. */
static void check_encode_all_isas(lc_codec_t *c, int bf16, const float *x, size_t n)
{
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    for (int k = 0; k < ni; k++) {
        size_t len;
        lc__codec_set_isa(isas[k]);
        uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
        assert_int_equal(len, LC_CODEC_HDR_LEN + 2 * n);
        for (size_t i = 0; i < n; i++) {
            uint16_t h =
                (uint16_t)(m[LC_CODEC_HDR_LEN + 2 * i] | m[LC_CODEC_HDR_LEN + 2 * i + 1] << 8);
            if (h != ref_enc(bf16, x[i]))
                fail_msg("%s isa %d: f32 0x%08x -> 0x%04x, reference 0x%04x",
                         bf16 ? "bf16" : "fp16", (int)isas[k], bits_of(x[i]), h,
                         ref_enc(bf16, x[i]));
        }
        free(m);
    }
    lc__codec_set_isa(was);
}

static void test_half_registered(void **state)
{
    assert_ptr_equal(lc__codec_ops_get(LC_CODEC_FP16), &lc__codec_fp16_ops);
    assert_ptr_equal(lc__codec_ops_get(LC_CODEC_BF16), &lc__codec_bf16_ops);
    const lc_codec_ops_t *o[2] = { &lc__codec_fp16_ops, &lc__codec_bf16_ops };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(o[i]->abi_version, LC_CODEC_ABI_VERSION);
        assert_int_equal(o[i]->caps, LC_CODEC_CAP_LOSSY | LC_CODEC_CAP_SUMMABLE);
        assert_int_equal(o[i]->elem, 2);
        assert_int_equal(o[i]->max_body_size(NULL, 1000), 2000);
    }
    assert_string_equal(lc__codec_fp16_ops.name, "fp16");
    assert_string_equal(lc__codec_bf16_ops.name, "bf16");
}

static void test_half_spec(void **state)
{
    static const char *const good[][2] = {
        { "fp16", "fp16" },
        { "bf16", "bf16" },
        { "fp16+zstd", "fp16+zstd:1:auto" },
        { "bf16+zstd:3:force", "bf16+zstd:3:force" },
    };
    lc_codec_test_canonical(good, sizeof(good) / sizeof(good[0]));
    int lvl = lc__log_level;
    lc__log_set_level(LC_LOG_ERROR - 1); /* the failures below log; keep the output readable */
    static const char *const bad[] = { "fp16:3",   "bf16:3", "fp16:stochastic",
                                       "bf16:rms", "fp16:",  "fp16:k=3" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lc_codec_params_t p;
        assert_int_equal(lc__codec_parse(bad[i], &p), LC_ERR_INVALID_ARG);
    }
    /* Flags of other codecs make no sense here. */
    lc_codec_params_t p;
    lc_codec_t *c = NULL;
    memset(&p, 0, sizeof(p));
    p.id = LC_CODEC_FP16;
    p.flags = LC_CODEC_F_STOCHASTIC;
    assert_int_equal(lc__codec_create(&p, &c), LC_ERR_INVALID_ARG);
    p.id = LC_CODEC_BF16;
    assert_int_equal(lc__codec_create(&p, &c), LC_ERR_INVALID_ARG);
    lc__log_set_level(lvl);
    p.flags = 0;
    assert_int_equal(lc__codec_create(&p, &c), LC_OK);
    lc__codec_destroy(c);
}

/* Round trips at every test size on both data kinds and both ISAs: bytes = reference
 * conversion, decode = reference widening, accumulate = acc + widened, exactly. */
static void test_half_roundtrip(void **state)
{
    size_t sizes[6];
    size_t ns = lc_codec_test_sizes(256, sizes);
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    for (int bf16 = 0; bf16 < 2; bf16++) {
        lc_codec_t *c = lc_codec_test_make(bf16 ? "bf16" : "fp16");
        for (int k = 0; k < ni; k++) {
            lc__codec_set_isa(isas[k]);
            for (size_t s = 0; s < ns; s++) {
                for (int kind = 0; kind < 2; kind++) {
                    size_t n = sizes[s], len;
                    float *x = lc_codec_test_data(n, (lc_data_kind_t)kind, 11 + s);
                    float *base = lc_codec_test_data(n, LC_DATA_GAUSSIAN, 99 + s);
                    float *y = malloc((n ? n : 1) * sizeof(float));
                    float *acc = malloc((n ? n : 1) * sizeof(float));
                    assert_non_null(y);
                    assert_non_null(acc);
                    uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
                    assert_int_equal(len, LC_CODEC_HDR_LEN + 2 * n);
                    assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
                    if (n) memcpy(acc, base, n * sizeof(float));
                    assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, n), LC_OK);
                    for (size_t i = 0; i < n; i++) {
                        uint16_t h = (uint16_t)(m[LC_CODEC_HDR_LEN + 2 * i] |
                                                m[LC_CODEC_HDR_LEN + 2 * i + 1] << 8);
                        assert_int_equal(h, ref_enc(bf16, x[i]));
                        assert_int_equal(bits_of(y[i]), bits_of(ref_dec(bf16, h)));
                        assert_int_equal(bits_of(acc[i]), bits_of(base[i] + y[i]));
                    }
                    free(m);
                    free(x);
                    free(base);
                    free(y);
                    free(acc);
                }
            }
        }
        lc__codec_destroy(c);
    }
    lc__codec_set_isa(was);
}

/* Every half and every bf16 decodes (and accumulates) to the reference on both ISAs. */
static void test_half_decode_exhaustive(void **state)
{
    const size_t n = 65536;
    uint16_t *h = malloc(2 * n);
    float *y = malloc(4 * n), *acc = malloc(4 * n);
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    assert_non_null(h);
    assert_non_null(y);
    assert_non_null(acc);
    for (size_t i = 0; i < n; i++) h[i] = (uint16_t)i;
    for (int bf16 = 0; bf16 < 2; bf16++) {
        lc_codec_t *c = lc_codec_test_make(bf16 ? "bf16" : "fp16");
        size_t len;
        uint8_t *m = make_msg(bf16 ? LC_CODEC_BF16 : LC_CODEC_FP16, h, 2 * n, n, &len);
        for (int k = 0; k < ni; k++) {
            lc__codec_set_isa(isas[k]);
            assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
            for (size_t i = 0; i < n; i++) acc[i] = (float)(i % 7) - 3.0f;
            assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, n), LC_OK);
            for (size_t i = 0; i < n; i++) {
                float r = ref_dec(bf16, (uint16_t)i);
                if (bits_of(y[i]) != bits_of(r))
                    fail_msg("%s isa %d: 0x%04zx -> 0x%08x, reference 0x%08x",
                             bf16 ? "bf16" : "fp16", (int)isas[k], i, bits_of(y[i]), bits_of(r));
                float a = ((float)(i % 7) - 3.0f) + r;
                /* NaN + x keeps the NaN's payload on x86 but not everywhere: compare NaN-ness */
                if (isnan(a))
                    assert_true(isnan(acc[i]));
                else
                    assert_int_equal(bits_of(acc[i]), bits_of(a));
            }
        }
        free(m);
        lc__codec_destroy(c);
    }
    lc__codec_set_isa(was);
    free(h);
    free(y);
    free(acc);
}

/* f32 patterns for the encoder: every sign and exponent (256 of them, NaN payloads
 * included), each with mantissas around every power-of-two bit position (the rounding
 * boundaries of fp16 normals sit at bit 12, of fp16 subnormals at bits 13..23, of bf16 at
 * bit 15) under several high parts; then a strided walk over all 2^32 patterns. */
static size_t boundary_patterns(float *out)
{
    static const uint32_t highs[] = { 0, 0x7fffff, 0x2aaaaa, 0x555555 };
    size_t n = 0;
    for (uint32_t sign = 0; sign < 2; sign++)
        for (uint32_t e = 0; e < 256; e++)
            for (uint32_t b = 0; b < 24; b++)
                for (size_t hi = 0; hi < sizeof(highs) / sizeof(highs[0]); hi++)
                    for (int d = -2; d <= 2; d++) {
                        uint32_t above = b + 1 < 24 ? ~((2u << b) - 1) : 0;
                        uint32_t man = ((highs[hi] & above) | ((1u << b) + (uint32_t)d)) & 0x7fffff;
                        out[n++] = float_of(sign << 31 | e << 23 | man);
                    }
    return n;
}

static void test_half_encode_sweep(void **state)
{
    const size_t chunk = 1u << 20;
    float *x = malloc(chunk * sizeof(float));
    assert_non_null(x);
    lc_codec_t *c[2] = { lc_codec_test_make("fp16"), lc_codec_test_make("bf16") };
    size_t nb = boundary_patterns(x);
    assert_true(nb <= chunk);
    for (int bf16 = 0; bf16 < 2; bf16++) check_encode_all_isas(c[bf16], bf16, x, nb);
    /* stride 251 (prime): about 17 million patterns, every exponent and payload region */
    uint64_t p = 0;
    while (p < (1ull << 32)) {
        size_t n = 0;
        for (; n < chunk && p < (1ull << 32); n++, p += 251) x[n] = float_of((uint32_t)p);
        for (int bf16 = 0; bf16 < 2; bf16++) check_encode_all_isas(c[bf16], bf16, x, n);
    }
    lc__codec_destroy(c[0]);
    lc__codec_destroy(c[1]);
    free(x);
}

/* NaN stays a (quiet) NaN with its sign, Inf stays Inf, overflow goes to Inf. */
static void test_half_nan_inf(void **state)
{
    const float in[] = { INFINITY,
                         -INFINITY,
                         float_of(0x7fc00000), /* quiet NaN */
                         float_of(0xffc00001), /* negative quiet NaN with payload */
                         float_of(0x7f800001), /* signaling NaN, lowest payload bit only */
                         float_of(0x7fa00000), /* signaling NaN */
                         65520.0f,             /* first fp16 overflow */
                         -1e30f,               /* fp16 overflow */
                         0x1.fffffep127f,      /* bf16 overflow (rounds up) */
                         65504.0f };
    const size_t n = sizeof(in) / sizeof(in[0]);
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    for (int bf16 = 0; bf16 < 2; bf16++) {
        lc_codec_t *c = lc_codec_test_make(bf16 ? "bf16" : "fp16");
        for (int k = 0; k < ni; k++) {
            float y[16];
            size_t len;
            lc__codec_set_isa(isas[k]);
            uint8_t *m = lc_codec_test_encode(c, NULL, in, n, &len);
            assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
            for (size_t i = 0; i < n; i++) {
                if (isnan(in[i])) {
                    assert_true(isnan(y[i]));
                    assert_true(bits_of(y[i]) & 0x400000); /* quiet */
                    assert_int_equal(signbit(y[i]) != 0, signbit(in[i]) != 0);
                } else if (isinf(in[i])) {
                    assert_true(y[i] == in[i]);
                }
            }
            assert_true(bf16 ? isinf(y[8]) && y[8] > 0 : isinf(y[6]) && y[6] > 0);
            assert_true(bf16 ? y[6] == 65536.0f : isinf(y[7]) && y[7] < 0);
            assert_true(y[9] == (bf16 ? 65536.0f : 65504.0f));
            free(m);
        }
        lc__codec_destroy(c);
    }
    lc__codec_set_isa(was);
}

/* Full messages, header included, for inputs whose halves are known independently. */
static void test_half_golden(void **state)
{
    const float f16_in[] = { 1.0f,
                             -2.0f,
                             65520.0f,
                             0x1p-24f,
                             1.0f / 3,
                             65504.0f,
                             0x1.8p-24f,
                             0x1p-25f,
                             -0.0f,
                             -INFINITY,
                             float_of(0x7fc00000) };
    static const uint8_t f16_golden[] = {
        4,    1,    0,    0,    22,   0,    0,    0,    11,   0,    0,    0,    0,
        0,    0,    0,    0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x01, 0x00, 0x55, 0x35,
        0xff, 0x7b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0xfc, 0x00, 0x7e,
    };
    /* 1 + 2^-8 and 1 + 3 * 2^-8 are ties: they go to the even neighbour. */
    const float bf16_in[] = { 1.0f,
                              -2.0f,
                              1.0f / 3,
                              float_of(0x3f808000),
                              float_of(0x3f818000),
                              0x1.fffffep127f,
                              float_of(0x7f800001) };
    static const uint8_t bf16_golden[] = {
        5, 1,    0,    0,    14,   0,    0,    0,    7,    0,    0,    0,    0,    0,    0,
        0, 0x80, 0x3f, 0x00, 0xc0, 0xab, 0x3e, 0x80, 0x3f, 0x82, 0x3f, 0x80, 0x7f, 0xc0, 0x7f,
    };
    lc_codec_test_golden("fp16", f16_in, 11, f16_golden, sizeof(f16_golden));
    lc_codec_test_golden("bf16", bf16_in, 7, bf16_golden, sizeof(bf16_golden));
}

/* Bodies of the wrong length are corrupt, at the message level and at the vtable (which
 * must not trust codec.c to have checked); acc is untouched after a failure. */
static void test_half_corrupt(void **state)
{
    int lvl = lc__log_level;
    lc__log_set_level(LC_LOG_ERROR - 1);
    for (int bf16 = 0; bf16 < 2; bf16++) {
        const lc_codec_ops_t *o = bf16 ? &lc__codec_bf16_ops : &lc__codec_fp16_ops;
        lc_codec_t *c = lc_codec_test_make(o->name);
        const lc_codec_params_t *p = lc__codec_params(c);
        float x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, acc[10], keep[10];
        size_t len;
        uint8_t *m = lc_codec_test_encode(c, NULL, x, 9, &len);
        for (size_t i = 0; i < 10; i++) acc[i] = keep[i] = (float)i * 0.5f;
        for (size_t cut = 0; cut < len; cut++) {
            assert_int_equal(lc__codec_decode(c, m, cut, acc, 9), LC_ERR_CORRUPT);
            assert_int_equal(lc__codec_decode_accumulate(c, m, cut, acc, 9), LC_ERR_CORRUPT);
        }
        assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, 8), LC_ERR_CORRUPT);
        assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, 10), LC_ERR_CORRUPT);
        const uint8_t *body = m + LC_CODEC_HDR_LEN;
        for (size_t bl = 0; bl <= 20; bl++) {
            if (bl == 18) continue;
            assert_int_equal(o->decode(p, body, bl, acc, 9), LC_ERR_CORRUPT);
            assert_int_equal(o->decode_accumulate(p, body, bl, acc, 9), LC_ERR_CORRUPT);
        }
        assert_int_equal(o->decode_accumulate(p, body, 18, acc, 8), LC_ERR_CORRUPT);
        assert_int_equal(o->decode_accumulate(p, body, 18, acc, SIZE_MAX / 2 + 10), LC_ERR_CORRUPT);
        assert_memory_equal(acc, keep, sizeof(acc));
        assert_int_equal(o->decode_accumulate(p, body, 18, acc, 9), LC_OK);
        for (size_t i = 0; i < 9; i++) assert_true(acc[i] == keep[i] + x[i]);
        assert_true(acc[9] == keep[9]);
        free(m);
        lc__codec_destroy(c);
    }
    lc__log_set_level(lvl);
}

/* The two kernel sets agree byte for byte on arbitrary bit patterns at every length (the
 * tails of the vector loops included). */
static void test_half_isa_identical(void **state)
{
    lc_codec_isa_t was = lc__codec_isa();
    if (lc__codec_set_isa(LC_CODEC_ISA_AVX2) != LC_CODEC_ISA_AVX2) {
        printf("test_half_isa_identical: no AVX2 on this CPU, skipped\n");
        lc__codec_set_isa(was);
        return;
    }
    uint64_t s = 12345;
    for (int bf16 = 0; bf16 < 2; bf16++) {
        lc_codec_t *c = lc_codec_test_make(bf16 ? "bf16" : "fp16");
        for (size_t n = 0; n < 70; n++) {
            float x[70], y[2][70], acc[2][70];
            uint8_t *m[2];
            size_t len[2];
            for (size_t i = 0; i < n; i++) x[i] = float_of((uint32_t)lc__codec_rand(&s));
            for (int k = 0; k < 2; k++) {
                lc__codec_set_isa(k ? LC_CODEC_ISA_AVX2 : LC_CODEC_ISA_C);
                m[k] = lc_codec_test_encode(c, NULL, x, n, &len[k]);
                assert_int_equal(lc__codec_decode(c, m[k], len[k], y[k], n), LC_OK);
                for (size_t i = 0; i < n; i++) acc[k][i] = (float)i;
                assert_int_equal(lc__codec_decode_accumulate(c, m[k], len[k], acc[k], n), LC_OK);
            }
            assert_int_equal(len[0], len[1]);
            assert_memory_equal(m[0], m[1], len[0]);
            assert_memory_equal(y[0], y[1], n * sizeof(float));
            assert_memory_equal(acc[0], acc[1], n * sizeof(float));
            free(m[0]);
            free(m[1]);
        }
        lc__codec_destroy(c);
    }
    lc__codec_set_isa(was);
}

/* Behind the zstd stage (shuffled by 2 bytes) the values are those of the plain message. */
static void test_half_zstd(void **state)
{
    lc_codec_test_zstd_same("fp16", 1u << 16, 3);
    lc_codec_test_zstd_same("bf16", 1u << 16, 3);
}

LC_CODEC_TESTS(lc_half_tests, cmocka_unit_test(test_half_registered),
               cmocka_unit_test(test_half_spec), cmocka_unit_test(test_half_roundtrip),
               cmocka_unit_test(test_half_decode_exhaustive),
               cmocka_unit_test(test_half_encode_sweep), cmocka_unit_test(test_half_nan_inf),
               cmocka_unit_test(test_half_golden), cmocka_unit_test(test_half_corrupt),
               cmocka_unit_test(test_half_isa_identical), cmocka_unit_test(test_half_zstd))
