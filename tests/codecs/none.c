/* The front of the codec layer with the none codec: spec strings, header
 * validation, the zstd stage. */
#include "tests/codecs/codec_test.h"

#include <stdlib.h>
#include <string.h>

static void test_spec_roundtrip(void **state)
{
    static const char *const good[][2] = {
        { "none", "none" },
        { "zstd", "zstd:1:auto" },
        { "zstd:3:force", "zstd:3:force" },
        { "none+zstd:5", "zstd:5:auto" },
    };
    lc_codec_test_canonical(good, sizeof(good) / sizeof(good[0]));
}

static void test_spec_bad(void **state)
{
    static const char *const bad[] = { "",         "nonsense",  "none:3",      "zstd:0",
                                       "zstd:20",  "zstd+zstd", "zstd+none",   "none+",
                                       "+zstd",    "zstd:",     "zstd::force", "zstd:level=x",
                                       "none+gzip" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lc_codec_params_t p;
        assert_int_equal(lc__codec_parse(bad[i], &p), LC_ERR_INVALID_ARG);
    }
    assert_int_equal(lc__codec_parse(NULL, NULL), LC_ERR_INVALID_ARG);
}

/* none and zstd are lossless at every size, and the zstd stage only ever shrinks. */
static void test_none_zstd_lossless(void **state)
{
    const char *specs[] = { "none", "zstd:force", "zstd", "zstd:9:force" };
    size_t sizes[6];
    size_t ns = lc_codec_test_sizes(2048, sizes);
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        lc_codec_t *c = lc_codec_test_make(specs[s]);
        for (size_t k = 0; k < ns; k++) {
            for (int kind = 0; kind < 2; kind++) {
                size_t n = sizes[k], len;
                float *x = lc_codec_test_data(n, (lc_data_kind_t)kind, 7 + k);
                float *y = malloc((n ? n : 1) * sizeof(float));
                uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
                assert_true(len <= LC_CODEC_HDR_LEN + 4 * n);
                assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
                assert_memory_equal(x, y, n * sizeof(float));
                /* accumulate onto zeros is the value itself */
                memset(y, 0, n * sizeof(float));
                assert_int_equal(lc__codec_decode_accumulate(c, m, len, y, n), LC_OK);
                for (size_t i = 0; i < n; i++) assert_true(y[i] == x[i] + 0.0f);
                free(m);
                free(x);
                free(y);
            }
        }
        lc__codec_destroy(c);
    }
}

/* The gradient-like data compresses under zstd:force (runs of zeros). */
static void test_zstd_compresses_gradients(void **state)
{
    lc_codec_t *c = lc_codec_test_make("zstd:force");
    size_t n = 1 << 18, len;
    float *x = lc_codec_test_data(n, LC_DATA_GRADIENT, 3);
    uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
    lc_codec_zstd_stats_t zs;
    lc__codec_zstd_stats(c, &zs);
    assert_int_equal(zs.compressed, 1);
    assert_true(len < n * sizeof(float) * 3 / 4);
    assert_int_equal(m[2] & 3, 3); /* compressed + shuffled */
    free(m);
    free(x);
    lc__codec_destroy(c);
}

/* Header fields: every corruption is LC_ERR_CORRUPT; the buffer is never overrun. */
static void test_header_corrupt(void **state)
{
    lc_codec_t *c = lc_codec_test_make("none");
    float x[5] = { 1, 2, 3, 4, 5 }, y[5];
    size_t len;
    uint8_t *m = lc_codec_test_encode(c, NULL, x, 5, &len);
    uint8_t bad[64];
    assert_int_equal(len, LC_CODEC_HDR_LEN + 20);
    for (size_t cut = 0; cut < len; cut++) /* truncated */
        assert_int_equal(lc__codec_decode(c, m, cut, y, 5), LC_ERR_CORRUPT);
    assert_int_equal(lc__codec_decode(c, m, len, y, 4), LC_ERR_CORRUPT); /* wrong count */
    assert_int_equal(lc__codec_decode(c, m, len, y, 6), LC_ERR_CORRUPT);
    const size_t fields[] = { 0, 1, 2, 3, 4, 8 };
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        memcpy(bad, m, len);
        bad[fields[f]] ^= 0x41;
        assert_int_equal(lc__codec_decode(c, bad, len, y, 5), LC_ERR_CORRUPT);
    }
    /* a zstd flag on a raw body: the frame check rejects it */
    memcpy(bad, m, len);
    bad[2] = 1;
    assert_int_equal(lc__codec_decode(c, bad, len, y, 5), LC_ERR_CORRUPT);
    free(m);
    lc__codec_destroy(c);
}

/* Golden bytes of the header and a none body. */
static void test_none_golden(void **state)
{
    static const uint8_t golden[] = { 0, 1, 0, 0, 8,    0,    0,    0,    2,    0,    0,    0,
                                      0, 0, 0, 0, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0 };
    const float x[2] = { 1.0f, -2.0f };
    lc_codec_test_golden("none", x, 2, golden, sizeof(golden));
}

/* Encode arguments: short buffer, range outside the state, non-float dtype. */
static void test_encode_bad_args(void **state)
{
    lc_codec_t *c = lc_codec_test_make("none");
    lc_codec_state_t *st;
    float x[4] = { 0 };
    uint8_t buf[64];
    size_t len;
    assert_int_equal(lc__codec_encode(c, NULL, 0, x, LC_FLOAT32, 4, buf, 20, &len),
                     LC_ERR_INVALID_ARG);
    assert_int_equal(lc__codec_state_create(c, 4, &st), LC_OK);
    assert_int_equal(lc__codec_encode(c, st, 2, x, LC_FLOAT32, 3, buf, sizeof(buf), &len),
                     LC_ERR_INVALID_ARG);
    assert_int_equal(lc__codec_encode(c, st, 1, x, LC_FLOAT32, 3, buf, sizeof(buf), &len), LC_OK);
    assert_int_equal(lc__codec_encode(c, NULL, 0, x, LC_INT32, 4, buf, sizeof(buf), &len),
                     LC_ERR_INVALID_ARG);
    lc__codec_state_destroy(st);
    lc__codec_destroy(c);
}

/* f16 and bf16 input is converted to f32 first. */
static void test_half_input(void **state)
{
    lc_codec_t *c = lc_codec_test_make("none");
    uint16_t h[3] = { 0x3c00, 0xc000, 0x3800 }; /* f16 1, -2, 0.5 */
    uint16_t b[3] = { 0x3f80, 0xc000, 0x3f00 }; /* bf16 1, -2, 0.5 */
    float y[3];
    uint8_t buf[64];
    size_t len;
    assert_int_equal(lc__codec_encode(c, NULL, 0, h, LC_FLOAT16, 3, buf, sizeof(buf), &len), LC_OK);
    assert_int_equal(lc__codec_decode(c, buf, len, y, 3), LC_OK);
    assert_true(y[0] == 1.0f && y[1] == -2.0f && y[2] == 0.5f);
    assert_int_equal(lc__codec_encode(c, NULL, 0, b, LC_BFLOAT16, 3, buf, sizeof(buf), &len),
                     LC_OK);
    assert_int_equal(lc__codec_decode(c, buf, len, y, 3), LC_OK);
    assert_true(y[0] == 1.0f && y[1] == -2.0f && y[2] == 0.5f);
    lc__codec_destroy(c);
}

/* Canonical specs parse back to the same parameters, for every field a spec can set. */
static void test_spec_canonical_reparses(void **state)
{
    static const char *const specs[] = {
        "topk:0.0123456789+zstd:link_mbps=100",
        "int8:seed=18446744073709551615",
        "topk:k=5:density=0.5",
        "fp16:block=64:seed=3",
        "onebit:512:rms:seed=9+zstd:4:force",
        "topk:0.3:approx:block=77:seed=2",
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        lc_codec_params_t a, b;
        char buf[LC_CODEC_SPEC_MAX];
        assert_int_equal(lc__codec_parse(specs[i], &a), LC_OK);
        lc__codec_format(&a, buf, sizeof(buf));
        assert_int_equal(lc__codec_parse(buf, &b), LC_OK);
        assert_memory_equal(&a, &b, sizeof(a));
    }
    lc_codec_params_t p;
    assert_int_equal(lc__codec_parse("int8:seed=18446744073709551616", &p), LC_ERR_INVALID_ARG);
    assert_int_equal(lc__codec_parse("topk: 0.5", &p), LC_ERR_INVALID_ARG);
    assert_int_equal(lc__codec_parse("topk:0x0.8p0", &p), LC_ERR_INVALID_ARG);
}

/* A compressed body must be a current zstd frame: a legacy (v0.7) frame that libzstd would
 * still decode is refused. */
static void test_zstd_legacy_frame_refused(void **state)
{
    lc_codec_t *c = lc_codec_test_make("zstd:force");
    float y[16];
    /* header: none, version 1, flags zstd, body 64 bytes, count 16; then a v0.7 magic */
    uint8_t m[LC_CODEC_HDR_LEN + 16] = { 0, 1, 1, 0, 64, 0, 0,    0,    16,   0,
                                         0, 0, 0, 0, 0,  0, 0x27, 0xb5, 0x2f, 0xfd };
    assert_int_equal(lc__codec_decode(c, m, sizeof(m), y, 16), LC_ERR_CORRUPT);
    lc__codec_destroy(c);
}

/* auto mode: the stage stays on while it pays for its time on the link, and backs off (15
 * encodes, then a new probe) when it does not. The first probe is never judged on time. */
static void test_zstd_auto_backs_off(void **state)
{
    const size_t n = 1 << 16;
    float *x = lc_codec_test_data(n, LC_DATA_GRADIENT, 4);
    lc_codec_zstd_stats_t zs;
    size_t len;
    /* a 1 Mbit/s link: compressing gradient-like floats always pays */
    lc_codec_t *slow = lc_codec_test_make("zstd:link_mbps=1");
    for (int i = 0; i < 20; i++) free(lc_codec_test_encode(slow, NULL, x, n, &len));
    lc__codec_zstd_stats(slow, &zs);
    assert_int_equal(zs.calls, 20);
    assert_int_equal(zs.compressed, 20);
    /* a 4 Pbit/s link: nothing pays; probes at encodes 1 (kept), 2, 18 */
    lc_codec_t *fast = lc_codec_test_make("zstd:link_mbps=4000000000");
    for (int i = 0; i < 20; i++) {
        uint8_t *m = lc_codec_test_encode(fast, NULL, x, n, &len);
        float *y = malloc(n * sizeof(float));
        assert_int_equal(lc__codec_decode(fast, m, len, y, n), LC_OK);
        assert_memory_equal(x, y, n * sizeof(float));
        free(y);
        free(m);
    }
    lc__codec_zstd_stats(fast, &zs);
    assert_int_equal(zs.calls, 3);
    assert_int_equal(zs.compressed, 1);
    /* random signs do not compress: the raw body goes, and the stage backs off */
    lc_codec_t *bits = lc_codec_test_make("onebit+zstd");
    float *g = lc_codec_test_data(n, LC_DATA_GAUSSIAN, 4);
    for (int i = 0; i < 17; i++) {
        uint8_t *m = lc_codec_test_encode(bits, NULL, g, n, &len);
        assert_int_equal(m[2], 0);
        free(m);
    }
    lc__codec_zstd_stats(bits, &zs);
    assert_int_equal(zs.calls, 2);
    assert_int_equal(zs.compressed, 0);
    free(g);
    free(x);
    lc__codec_destroy(slow);
    lc__codec_destroy(fast);
    lc__codec_destroy(bits);
}

LC_CODEC_TESTS(lc_none_tests, cmocka_unit_test(test_spec_roundtrip),
               cmocka_unit_test(test_spec_bad), cmocka_unit_test(test_none_zstd_lossless),
               cmocka_unit_test(test_zstd_compresses_gradients),
               cmocka_unit_test(test_header_corrupt), cmocka_unit_test(test_none_golden),
               cmocka_unit_test(test_encode_bad_args), cmocka_unit_test(test_half_input),
               cmocka_unit_test(test_spec_canonical_reparses),
               cmocka_unit_test(test_zstd_legacy_frame_refused),
               cmocka_unit_test(test_zstd_auto_backs_off))
