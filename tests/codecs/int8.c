/* The int8 codec: error bounds (nearest and stochastic), reproducible randomness, C and AVX2
 * kernels byte for byte, non-finite input, golden bytes, corrupt bodies, specs. */
#include "tests/codecs/codec_test.h"

#include "core/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Referenced by name so the codec is linked from the static library (and registered). */
extern const lc_codec_ops_t lc__codec_int8_ops;

#define I8_HDR 8u /* block, flags, reserved */

static float f32_at(const uint8_t *p)
{
    uint32_t b = lc__codec_get32(p);
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static size_t nblocks(size_t n, size_t block)
{
    return (n + block - 1) / block;
}

/* Check the layout of an int8 message of n elements and return pointers into its body. */
static void open_msg(const uint8_t *m, size_t len, size_t n, uint32_t block, const uint8_t **sc,
                     const int8_t **q)
{
    size_t nb = nblocks(n, block);
    assert_int_equal(len, LC_CODEC_HDR_LEN + I8_HDR + 4 * nb + n);
    assert_int_equal(lc__codec_get32(m + 4), I8_HDR + 4 * nb + n);
    assert_int_equal(lc__codec_get32(m + LC_CODEC_HDR_LEN), block);
    *sc = m + LC_CODEC_HDR_LEN + I8_HDR;
    *q = (const int8_t *)(*sc + 4 * nb);
}

static void test_int8_registered(void **state)
{
    const lc_codec_ops_t *o = &lc__codec_int8_ops;
    lc_codec_params_t p;
    assert_ptr_equal(lc__codec_ops_get(LC_CODEC_INT8), o);
    assert_int_equal(o->abi_version, LC_CODEC_ABI_VERSION);
    assert_string_equal(o->name, "int8");
    assert_int_equal(o->caps, LC_CODEC_CAP_LOSSY);
    assert_int_equal(o->elem, 0);
    memset(&p, 0, sizeof(p));
    p.id = LC_CODEC_INT8;
    assert_int_equal(o->check(&p), LC_OK);
    assert_int_equal(p.block, LC_CODEC_INT8_BLOCK);
    /* 1 Mi elements at block 256: 8 + 4 * 4096 + 1 Mi bytes, 3.94x below f32 */
    size_t body = o->max_body_size(&p, 1u << 20);
    assert_int_equal(body, 8 + 4 * 4096 + (1u << 20));
    assert_true((double)(4u << 20) / (double)body >= 3.9);
}

static void test_int8_spec(void **state)
{
    static const char *const good[][2] = {
        { "int8", "int8:256" },
        { "int8:128:stochastic:seed=5", "int8:128:stochastic:seed=5" },
        { "int8:stochastic", "int8:256:stochastic" },
        { "int8:64:nearest", "int8:64" },
        { "int8:block=1", "int8:1" },
        { "int8+zstd:force", "int8:256+zstd:1:force" },
    };
    lc_codec_test_canonical(good, sizeof(good) / sizeof(good[0]));
    lc_codec_params_t p;
    assert_int_equal(lc__codec_parse("int8:128:stochastic:seed=5", &p), LC_OK);
    assert_int_equal(p.id, LC_CODEC_INT8);
    assert_int_equal(p.block, 128);
    assert_int_equal(p.flags, LC_CODEC_F_STOCHASTIC);
    assert_int_equal(p.seed, 5);

    int lvl = lc__log_level;
    lc__log_set_level(LC_LOG_ERROR - 1); /* the failures below log; keep the output readable */
    static const char *const bad[] = { "int8:fast", "int8:128:fast", "int8:-1", "int8:rms",
                                       "int8:",     "int8:1.5",      "int8:k=4" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lc__codec_parse(bad[i], &p), LC_ERR_INVALID_ARG);
    lc_codec_t *c = NULL;
    memset(&p, 0, sizeof(p));
    p.id = LC_CODEC_INT8;
    p.flags = LC_CODEC_F_RMS; /* onebit's */
    assert_int_equal(lc__codec_create(&p, &c), LC_ERR_INVALID_ARG);
    lc__log_set_level(lvl);
    p.flags = LC_CODEC_F_STOCHASTIC;
    assert_int_equal(lc__codec_create(&p, &c), LC_OK);
    assert_int_equal(lc__codec_params(c)->block, LC_CODEC_INT8_BLOCK);
    lc__codec_destroy(c);
}

/*
 * Round trips at nearest rounding, every test size, both data kinds, both ISAs: the scale is
 * max |x| / 127 of its block, no value is -128, |x - x'| <= scale / 2 (with room for the f32
 * rounding of the quotient and the product, 2^-15 of scale), and accumulate adds exactly
 * the decoded values.
 */
static void test_int8_roundtrip_nearest(void **state)
{
    size_t sizes[6];
    size_t ns = lc_codec_test_sizes(256, sizes);
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    lc_codec_t *c = lc_codec_test_make("int8:256");
    for (int k = 0; k < ni; k++) {
        lc__codec_set_isa(isas[k]);
        for (size_t s = 0; s < ns; s++) {
            for (int kind = 0; kind < 2; kind++) {
                size_t n = sizes[s], len;
                float *x = lc_codec_test_data(n, (lc_data_kind_t)kind, 21 + s);
                float *base = lc_codec_test_data(n, LC_DATA_GAUSSIAN, 77 + s);
                float *y = malloc((n ? n : 1) * sizeof(float));
                float *acc = malloc((n ? n : 1) * sizeof(float));
                const uint8_t *sc;
                const int8_t *q;
                assert_non_null(y);
                assert_non_null(acc);
                uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
                open_msg(m, len, n, 256, &sc, &q);
                assert_int_equal(m[LC_CODEC_HDR_LEN + 4], 0); /* not stochastic */
                assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
                if (n) memcpy(acc, base, n * sizeof(float));
                assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, n), LC_OK);
                for (size_t b = 0; b < nblocks(n, 256); b++) {
                    size_t end = (n < (b + 1) * 256 ? n : (b + 1) * 256);
                    float mx = 0, scale = f32_at(sc + 4 * b);
                    for (size_t i = b * 256; i < end; i++) mx = fmaxf(mx, fabsf(x[i]));
                    assert_true(scale == mx / 127.0f);
                    for (size_t i = b * 256; i < end; i++) {
                        assert_true(q[i] >= -127 && q[i] <= 127);
                        assert_true(y[i] == (float)q[i] * scale);
                        double err = fabs((double)x[i] - (double)y[i]);
                        if (err > (double)scale * (0.5 + 0x1p-15))
                            fail_msg("element %zu: %a -> %a, error %g > scale/2 (%g)", i,
                                     (double)x[i], (double)y[i], err, (double)scale / 2);
                        assert_true(acc[i] == base[i] + y[i]);
                    }
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
    lc__codec_set_isa(was);
}

/* Stochastic rounding: each value is floor or floor + 1 of x / scale (error < scale), the same
 * seed gives the same bytes, another seed other bytes, and the tensor's stream advances. */
static void test_int8_stochastic_bounds_and_seed(void **state)
{
    size_t sizes[6];
    size_t ns = lc_codec_test_sizes(256, sizes);
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    lc_codec_t *c5 = lc_codec_test_make("int8:256:stochastic:seed=5");
    lc_codec_t *c5b = lc_codec_test_make("int8:stochastic:seed=5");
    lc_codec_t *c6 = lc_codec_test_make("int8:256:stochastic:seed=6");
    for (int k = 0; k < ni; k++) {
        lc__codec_set_isa(isas[k]);
        for (size_t s = 0; s < ns; s++) {
            for (int kind = 0; kind < 2; kind++) {
                size_t n = sizes[s], len, len2, len3;
                float *x = lc_codec_test_data(n, (lc_data_kind_t)kind, 31 + s);
                float *y = malloc((n ? n : 1) * sizeof(float));
                const uint8_t *sc;
                const int8_t *q;
                assert_non_null(y);
                uint8_t *m = lc_codec_test_encode(c5, NULL, x, n, &len);
                uint8_t *m2 = lc_codec_test_encode(c5b, NULL, x, n, &len2);
                uint8_t *m3 = lc_codec_test_encode(c6, NULL, x, n, &len3);
                open_msg(m, len, n, 256, &sc, &q);
                assert_int_equal(m[LC_CODEC_HDR_LEN + 4], 1); /* stochastic */
                assert_int_equal(len, len2);
                assert_memory_equal(m, m2, len);
                assert_int_equal(len, len3);
                if (n >= 256) assert_memory_not_equal(m, m3, len);
                assert_int_equal(lc__codec_decode(c5, m, len, y, n), LC_OK);
                for (size_t i = 0; i < n; i++) {
                    float scale = f32_at(sc + 4 * (i / 256));
                    assert_true(q[i] >= -127 && q[i] <= 127);
                    assert_true(y[i] == (float)q[i] * scale);
                    if (scale == 0) continue;
                    double t = (double)x[i] / (double)scale;
                    assert_true(q[i] >= floor(t) - 1e-4 && q[i] <= floor(t) + 1 + 1e-4);
                    assert_true(fabs((double)x[i] - (double)y[i]) < (double)scale * (1 + 0x1p-15));
                }
                free(m);
                free(m2);
                free(m3);
                free(x);
                free(y);
            }
        }
    }
    lc__codec_set_isa(was);
    /* With a state the stream continues: two encodes of the same data differ, and a fresh
     * state from the same seed repeats them. */
    size_t n = 1000, l1, l2, l3;
    float *x = lc_codec_test_data(n, LC_DATA_GAUSSIAN, 5);
    lc_codec_state_t *st, *st2;
    assert_int_equal(lc__codec_state_create(c5, n, &st), LC_OK);
    assert_int_equal(lc__codec_state_create(c5, n, &st2), LC_OK);
    uint8_t *a = lc_codec_test_encode(c5, st, x, n, &l1);
    uint8_t *b = lc_codec_test_encode(c5, st, x, n, &l2);
    uint8_t *a2 = lc_codec_test_encode(c5, st2, x, n, &l3);
    assert_memory_not_equal(a, b, l1);
    assert_memory_equal(a, a2, l1);
    uint8_t *nostate = lc_codec_test_encode(c5, NULL, x, n, &l3);
    assert_memory_equal(a, nostate, l1); /* a state starts where a stateless encode does */
    free(a);
    free(b);
    free(a2);
    free(nostate);
    free(x);
    lc__codec_state_destroy(st);
    lc__codec_state_destroy(st2);
    lc__codec_destroy(c5);
    lc__codec_destroy(c5b);
    lc__codec_destroy(c6);
}

/*
 * Unbiased: values a fixed 0.3 of a step above an integer (scale 1, set by a 127 at the start
 * of every block) come back 0.3 too high on average at nearest rounding but within a few
 * thousandths of exact with stochastic rounding, over 1 Mi elements; about 30% round up.
 * Also on Gaussian data the mean error is small against the scale.
 */
static void test_int8_stochastic_unbiased(void **state)
{
    const size_t n = 1u << 20;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    uint64_t s = 99;
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    assert_non_null(x);
    assert_non_null(y);
    for (size_t i = 0; i < n; i++)
        x[i] = i % 256 == 0 ? 127.0f : (float)((int)(lc__codec_rand(&s) % 200) - 100) + 0.3f;
    lc_codec_t *cs = lc_codec_test_make("int8:256:stochastic:seed=1");
    lc_codec_t *cn = lc_codec_test_make("int8:256");
    for (int k = 0; k < ni; k++) {
        size_t len;
        lc__codec_set_isa(isas[k]);
        for (int stoch = 0; stoch < 2; stoch++) {
            lc_codec_t *c = stoch ? cs : cn;
            uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
            assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
            double sum = 0;
            size_t up = 0, cnt = 0;
            for (size_t i = 0; i < n; i++) {
                if (i % 256 == 0) continue;
                double e = (double)y[i] - (double)x[i]; /* scale is 1 */
                sum += e;
                up += e > 0;
                cnt++;
            }
            double mean = sum / (double)cnt, frac_up = (double)up / (double)cnt;
            if (stoch) {
                assert_true(fabs(mean) < 0.005);
                assert_true(fabs(frac_up - 0.3) < 0.005);
            } else {
                assert_true(fabs(mean + 0.3) < 1e-5);
                assert_int_equal(up, 0);
            }
            free(m);
        }
        /* Gaussian data: mean error within 1% of the mean scale */
        float *g = lc_codec_test_data(n, LC_DATA_GAUSSIAN, 4);
        uint8_t *m = lc_codec_test_encode(cs, NULL, g, n, &len);
        assert_int_equal(lc__codec_decode(cs, m, len, y, n), LC_OK);
        double sum = 0, ssum = 0;
        const uint8_t *sc = m + LC_CODEC_HDR_LEN + I8_HDR;
        for (size_t i = 0; i < n; i++) sum += (double)y[i] - (double)g[i];
        for (size_t b = 0; b < n / 256; b++) ssum += f32_at(sc + 4 * b);
        assert_true(fabs(sum / (double)n) < 0.01 * ssum / (double)(n / 256));
        free(m);
        free(g);
    }
    lc__codec_set_isa(was);
    lc__codec_destroy(cs);
    lc__codec_destroy(cn);
    free(x);
    free(y);
}

/* Data with every awkward value: zeros, signed zeros, NaN, Inf, subnormals, huge and tiny
 * blocks. */
static void fill_awkward(float *x, size_t n, uint64_t seed)
{
    static const float special[] = { 0.0f,      -0.0f,     NAN,        -NAN,   INFINITY,
                                     -INFINITY, 0x1p-149f, -0x1p-130f, 1e-38f, 3e38f,
                                     -3.4e38f,  127.0f,    -127.0f,    0.5f,   -1.5f };
    static const double scales[3] = { 1.0, 1e-3, 1e-37 }; /* 1e-37: blocks sent as zeros */
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = lc__codec_rand(&s);
        if (r % 7 == 0)
            x[i] = special[(r >> 8) % (sizeof(special) / sizeof(special[0]))];
        else
            x[i] = (float)(((double)(r >> 11) * 0x1p-52 - 1.0) * scales[(i / 64) % 3]);
    }
}

/* The C and AVX2 kernels give the same bytes and the same decoded floats for every block size
 * (vector tails included), both roundings, and awkward data. */
static void test_int8_isa_identical(void **state)
{
    lc_codec_isa_t was = lc__codec_isa();
    if (lc__codec_set_isa(LC_CODEC_ISA_AVX2) != LC_CODEC_ISA_AVX2) {
        printf("test_int8_isa_identical: no AVX2 on this CPU, skipped\n");
        lc__codec_set_isa(was);
        return;
    }
    static const char *const specs[] = { "int8:1",
                                         "int8:7",
                                         "int8:33",
                                         "int8:100",
                                         "int8:256",
                                         "int8:1:stochastic:seed=3",
                                         "int8:7:stochastic:seed=3",
                                         "int8:33:stochastic",
                                         "int8:100:stochastic:seed=9",
                                         "int8:256:stochastic:seed=1" };
    static const size_t sizes[] = { 0, 1, 2, 7, 8, 9, 31, 32, 33, 63, 65, 255, 257, 1000, 4099 };
    float *x = malloc(4099 * sizeof(float)), *y[2], *acc[2];
    for (int k = 0; k < 2; k++) {
        y[k] = malloc(4099 * sizeof(float));
        acc[k] = malloc(4099 * sizeof(float));
        assert_non_null(y[k]);
        assert_non_null(acc[k]);
    }
    for (size_t sp = 0; sp < sizeof(specs) / sizeof(specs[0]); sp++) {
        lc_codec_t *c = lc_codec_test_make(specs[sp]);
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            for (int data = 0; data < 3; data++) {
                size_t n = sizes[s], len[2];
                uint8_t *m[2];
                if (data == 2)
                    fill_awkward(x, n, 17 + s);
                else
                    lc_datagen_fill(x, n, (lc_data_kind_t)data, 3 + s);
                for (int k = 0; k < 2; k++) {
                    lc__codec_set_isa(k ? LC_CODEC_ISA_AVX2 : LC_CODEC_ISA_C);
                    m[k] = lc_codec_test_encode(c, NULL, x, n, &len[k]);
                    assert_int_equal(lc__codec_decode(c, m[k], len[k], y[k], n), LC_OK);
                    for (size_t i = 0; i < n; i++) acc[k][i] = (float)i * 0.25f;
                    assert_int_equal(lc__codec_decode_accumulate(c, m[k], len[k], acc[k], n),
                                     LC_OK);
                }
                assert_int_equal(len[0], len[1]);
                if (memcmp(m[0], m[1], len[0]) != 0)
                    fail_msg("%s, %zu elements, data %d: C and AVX2 messages differ", specs[sp], n,
                             data);
                assert_memory_equal(y[0], y[1], n * sizeof(float));
                assert_memory_equal(acc[0], acc[1], n * sizeof(float));
                free(m[0]);
                free(m[1]);
            }
        }
        lc__codec_destroy(c);
    }
    lc__codec_set_isa(was);
    free(x);
    for (int k = 0; k < 2; k++) {
        free(y[k]);
        free(acc[k]);
    }
}

/* NaN and Inf count as 0: they do not enter the scale and decode to 0; blocks of nothing but
 * non-finite or tiny values get scale 0; every scale on the wire is finite. */
static void test_int8_nonfinite(void **state)
{
    const float x[12] = { NAN,      254.0f, -INFINITY, -127.0f,     /* block 0 */
                          INFINITY, NAN,    -NAN,      -INFINITY,   /* block 1 */
                          1e-37f,   0.0f,   -1e-38f,   0x1p-149f }; /* block 2: all tiny */
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    for (int stoch = 0; stoch < 2; stoch++) {
        lc_codec_t *c = lc_codec_test_make(stoch ? "int8:4:stochastic" : "int8:4");
        for (int k = 0; k < ni; k++) {
            float y[12];
            size_t len;
            const uint8_t *sc;
            const int8_t *q;
            lc__codec_set_isa(isas[k]);
            uint8_t *m = lc_codec_test_encode(c, NULL, x, 12, &len);
            open_msg(m, len, 12, 4, &sc, &q);
            assert_true(f32_at(sc) == 2.0f);
            assert_true(f32_at(sc + 4) == 0.0f);
            assert_true(f32_at(sc + 8) == 0.0f);
            assert_int_equal(q[0], 0);
            assert_int_equal(q[1], 127);
            assert_int_equal(q[2], 0);
            assert_true(q[3] == -64 || (stoch && q[3] == -63));
            for (int i = 4; i < 12; i++) assert_int_equal(q[i], 0);
            assert_int_equal(lc__codec_decode(c, m, len, y, 12), LC_OK);
            for (int i = 0; i < 12; i++) assert_true(isfinite(y[i]));
            assert_true(y[0] == 0 && y[2] == 0 && y[4] == 0);
            free(m);
        }
        lc__codec_destroy(c);
    }
    /* the extremes of the finite range: scale FLT_MAX / 127, values come back close */
    lc_codec_t *c = lc_codec_test_make("int8:4");
    const float big[4] = { 0x1.fffffep127f, -0x1.fffffep127f, 1e38f, 0 };
    float y[4];
    size_t len;
    uint8_t *m = lc_codec_test_encode(c, NULL, big, 4, &len);
    assert_int_equal(lc__codec_decode(c, m, len, y, 4), LC_OK);
    /* FLT_MAX / 127 rounds up so far that 127 times it is Inf: the scale is one ulp below */
    float scale = f32_at(m + LC_CODEC_HDR_LEN + I8_HDR);
    assert_true(scale < 0x1.fffffep127f / 127.0f && isfinite(127.0f * scale));
    assert_true(y[0] == 127.0f * scale && isfinite(y[0]));
    assert_true(0x1.fffffep127f - y[0] <= scale * 0x1p-15f);
    assert_true(y[1] == -y[0]);
    assert_true(fabsf(y[2] - 1e38f) <= scale * (0.5f + 0x1p-15f));
    free(m);
    lc__codec_destroy(c);
    lc__codec_set_isa(was);
}

/* Full messages, header included, checked against bytes worked out by hand (scales of 1 and
 * 2 keep the arithmetic exact; ties round to even; the stochastic one pins the order in
 * which elements take the splitmix64 stream). */
static void test_int8_golden(void **state)
{
    /* block 0 {127, -63.5, 1, 0}: scale 1, q 127, -64 (tie), 1, 0;
     * block 1 {-254, 5}: scale 2, q -127, 2 (2.5, tie) */
    const float xn[6] = { 127.0f, -63.5f, 1.0f, 0.0f, -254.0f, 5.0f };
    static const uint8_t gn[] = {
        3,    1,    0,    0,    22,   0,    0,    0,    6,    0,    0,    0,    0,
        0,    0,    0,    4,    0,    0,    0,    0,    0,    0,    0,    0x00, 0x00,
        0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x7f, 0xc0, 0x01, 0x00, 0x81, 0x02,
    };
    /* seed 5: the stream's first values are 0x63033b0ca389c35a, 0xc097314d939736f8,
     * 0x3b92d3f0106bc147; u = top 24 of each 32-bit half / 2^24, low half first.
     * block 0 {0.625, -0.5, 0.25, 127}, scale 1: 0.625 with u 0.639 stays 0; -0.5 with
     * u 0.387 (< 0.5) goes up to 0; 0.25 with u 0.577 stays 0; 127 is 127.
     * block 1 {-254, 100.6}, scale 2, starts at the third value: -127 exact; 50.3 with u 0.233
     * goes up to 51 (with the first or second value's high half, 0.387 or 0.752, it would
     * not). */
    const float xs[6] = { 0.625f, -0.5f, 0.25f, 127.0f, -254.0f, 100.6f };
    static const uint8_t gs[] = {
        3,    1,    0,    0,    22,   0,    0,    0,    6,    0,    0,    0,    0,
        0,    0,    0,    4,    0,    0,    0,    1,    0,    0,    0,    0x00, 0x00,
        0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x7f, 0x81, 0x33,
    };
    lc_codec_test_golden("int8:4", xn, 6, gn, sizeof(gn));
    lc_codec_test_golden("int8:4:stochastic:seed=5", xs, 6, gs, sizeof(gs));
}

/* Every way a body can be wrong is LC_ERR_CORRUPT, and neither dst nor acc is touched. */
static void test_int8_corrupt(void **state)
{
    const size_t n = 300; /* two blocks of 256: the second partial */
    lc_codec_t *c = lc_codec_test_make("int8");
    const lc_codec_params_t *p = lc__codec_params(c);
    float *x = lc_codec_test_data(n, LC_DATA_GAUSSIAN, 8);
    float acc[301], keep[301];
    size_t len;
    uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
    uint8_t *bad = malloc(len);
    const size_t body = LC_CODEC_HDR_LEN, scales = body + I8_HDR, vals = scales + 8;
    int lvl = lc__log_level;
    assert_non_null(bad);
    assert_int_equal(len, vals + n);
    for (size_t i = 0; i < 301; i++) acc[i] = keep[i] = (float)i - 150.0f;
    lc__log_set_level(LC_LOG_ERROR - 1); /* every failure logs a line */

#define EXPECT_CORRUPT(buf, l, cnt)                                                                \
    do {                                                                                           \
        assert_int_equal(lc__codec_decode_accumulate(c, (buf), (l), acc, (cnt)), LC_ERR_CORRUPT);  \
        assert_int_equal(lc__codec_decode(c, (buf), (l), acc, (cnt)), LC_ERR_CORRUPT);             \
        assert_memory_equal(acc, keep, sizeof(acc));                                               \
    } while (0)

    for (size_t cut = 0; cut < len; cut++) EXPECT_CORRUPT(m, cut, n); /* truncated */
    EXPECT_CORRUPT(m, len, n - 1);                                    /* wrong count */
    EXPECT_CORRUPT(m, len, n + 1);
    /* One corruption at a time: {offset, value (little-endian, 1 or 4 bytes)}. */
    const struct {
        size_t off, size;
        uint32_t v;
        const char *what;
    } cases[] = {
        { scales, 4, 0x7fc00000u, "NaN scale" },
        { scales + 4, 4, 0xffc00000u, "negative NaN scale" },
        { scales, 4, 0x7f800000u, "Inf scale" },
        { scales + 4, 4, 0xff800000u, "-Inf scale" },
        { scales, 4, 0xbf800000u, "negative scale" },
        { scales + 4, 4, 0x80000001u, "tiny negative scale" },
        { scales, 4, 0x7f7fffffu, "FLT_MAX scale (127 * scale is Inf)" },
        { vals, 1, 0x80u, "-128 first" },
        { vals + 137, 1, 0x80u, "-128 in the middle" },
        { vals + n - 1, 1, 0x80u, "-128 last" },
        { body + 5, 1, 1, "reserved byte 5" },
        { body + 6, 1, 0x80, "reserved byte 6" },
        { body + 7, 1, 1, "reserved byte 7" },
        { body + 4, 1, 2, "unknown flag" },
        { body, 4, 0, "block 0" },
        { body, 4, 128, "block 128 (length no longer matches)" },
        { body, 4, 300, "block 300 (one scale instead of two)" },
        { body, 4, 0xffffffffu, "huge block" },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        memcpy(bad, m, len);
        if (cases[k].size == 4)
            lc__codec_put32(bad + cases[k].off, cases[k].v);
        else
            bad[cases[k].off] = (uint8_t)cases[k].v;
        if (lc__codec_decode_accumulate(c, bad, len, acc, n) != LC_ERR_CORRUPT)
            fail_msg("%s: not reported as corrupt", cases[k].what);
        EXPECT_CORRUPT(bad, len, n);
    }
    /* The vtable itself checks the length (it must not rely on codec.c's header check). */
    const uint8_t *b = m + body;
    size_t blen = len - body;
    for (size_t l = 0; l < blen + 3; l++) {
        if (l == blen) continue;
        assert_int_equal(lc__codec_int8_ops.decode_accumulate(p, b, l, acc, n), LC_ERR_CORRUPT);
    }
    assert_int_equal(lc__codec_int8_ops.decode_accumulate(p, b, blen, acc, SIZE_MAX),
                     LC_ERR_CORRUPT);
    assert_memory_equal(acc, keep, sizeof(acc));
    lc__log_set_level(lvl);
#undef EXPECT_CORRUPT

    /* The intact message still decodes, and -0 as a scale is "finite and >= 0". */
    assert_int_equal(lc__codec_decode_accumulate(c, m, len, acc, n), LC_OK);
    assert_true(acc[300] == keep[300]);
    memcpy(bad, m, len);
    lc__codec_put32(bad + scales, 0x80000000u);
    assert_int_equal(lc__codec_decode(c, bad, len, acc, n), LC_OK);
    for (size_t i = 0; i < 256; i++) assert_true(acc[i] == 0.0f);
    free(bad);
    free(m);
    free(x);
    lc__codec_destroy(c);
}

/* Behind the zstd stage (no shuffle: elem 0) the decoded values are those of the plain
 * message. */
static void test_int8_zstd(void **state)
{
    lc_codec_test_zstd_same("int8", 1u << 16, 1); /* compressed, not shuffled */
}

LC_CODEC_TESTS(lc_int8_tests, cmocka_unit_test(test_int8_registered),
               cmocka_unit_test(test_int8_spec), cmocka_unit_test(test_int8_roundtrip_nearest),
               cmocka_unit_test(test_int8_stochastic_bounds_and_seed),
               cmocka_unit_test(test_int8_stochastic_unbiased),
               cmocka_unit_test(test_int8_isa_identical), cmocka_unit_test(test_int8_nonfinite),
               cmocka_unit_test(test_int8_golden), cmocka_unit_test(test_int8_corrupt),
               cmocka_unit_test(test_int8_zstd))
