/*
 * test_codecs: the codec layer alone (no ranks, no sockets). The tests live
 * in tests/codecs/<codec>.c and register themselves (codec_test.h); this
 * file holds the shared helpers and runs them: test_codecs [shell pattern].
 */
#include "tests/codecs/codec_test.h"
#include "tests/mp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct CMUnitTest *lc_all_tests;
static size_t lc_all_n;

void lc_codec_test_register(const struct CMUnitTest *tests, size_t n)
{
    struct CMUnitTest *t = realloc(lc_all_tests, (lc_all_n + n) * sizeof(*t));
    if (t == NULL) abort();
    memcpy(t + lc_all_n, tests, n * sizeof(*t));
    lc_all_tests = t;
    lc_all_n += n;
}

lc_codec_t *lc_codec_test_make(const char *spec)
{
    lc_codec_params_t p;
    lc_codec_t *c = NULL;
    assert_int_equal(lc__codec_parse(spec, &p), LC_OK);
    assert_int_equal(lc__codec_create(&p, &c), LC_OK);
    return c;
}

uint8_t *lc_codec_test_encode(lc_codec_t *c, lc_codec_state_t *st, const float *src, size_t count,
                              size_t *len_p)
{
    size_t cap = lc__codec_max_encoded_size(c, count);
    uint8_t *buf = malloc(cap ? cap : 1);
    assert_non_null(buf);
    assert_int_equal(lc__codec_encode(c, st, 0, src, LC_FLOAT32, count, buf, cap, len_p), LC_OK);
    assert_true(*len_p <= cap);
    return buf;
}

size_t lc_codec_test_sizes(uint32_t block, size_t out[6])
{
    size_t b = block ? block : 2048;
    out[0] = 0;
    out[1] = 1;
    out[2] = b - 1;
    out[3] = b;
    out[4] = b + 1;
    out[5] = (1u << 20) + 7;
    return 6;
}

int lc_codec_test_isas(lc_codec_isa_t out[2])
{
    lc_codec_isa_t was = lc__codec_isa();
    int n = 0;
    out[n++] = LC_CODEC_ISA_C;
    if (lc__codec_set_isa(LC_CODEC_ISA_AVX2) == LC_CODEC_ISA_AVX2) out[n++] = LC_CODEC_ISA_AVX2;
    lc__codec_set_isa(was);
    return n;
}

void lc_codec_test_golden(const char *spec, const float *x, size_t n, const uint8_t *golden,
                          size_t len)
{
    lc_codec_isa_t isas[2], was = lc__codec_isa();
    int ni = lc_codec_test_isas(isas);
    for (int k = 0; k < ni; k++) {
        size_t got;
        lc__codec_set_isa(isas[k]);
        lc_codec_t *c = lc_codec_test_make(spec);
        uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &got);
        assert_int_equal(got, len);
        assert_memory_equal(m, golden, len);
        free(m);
        lc__codec_destroy(c);
    }
    lc__codec_set_isa(was);
}

void lc_codec_test_canonical(const char *const (*pairs)[2], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lc_codec_params_t p;
        char buf[LC_CODEC_SPEC_MAX];
        assert_int_equal(lc__codec_parse(pairs[i][0], &p), LC_OK);
        lc__codec_format(&p, buf, sizeof(buf));
        assert_string_equal(buf, pairs[i][1]);
    }
}

void lc_codec_test_zstd_same(const char *spec, size_t n, uint8_t flags)
{
    char zspec[LC_CODEC_SPEC_MAX];
    snprintf(zspec, sizeof(zspec), "%s+zstd:force", spec);
    lc_codec_t *c = lc_codec_test_make(spec), *cz = lc_codec_test_make(zspec);
    float *x = lc_codec_test_data(n, LC_DATA_GRADIENT, 12);
    float *y = malloc(n * sizeof(float)), *yz = malloc(n * sizeof(float));
    size_t len, lenz;
    assert_non_null(y);
    assert_non_null(yz);
    uint8_t *m = lc_codec_test_encode(c, NULL, x, n, &len);
    uint8_t *mz = lc_codec_test_encode(cz, NULL, x, n, &lenz);
    assert_int_equal(mz[2], flags);
    assert_true(lenz < len);
    assert_int_equal(lc__codec_decode(c, m, len, y, n), LC_OK);
    assert_int_equal(lc__codec_decode(cz, mz, lenz, yz, n), LC_OK);
    assert_memory_equal(y, yz, n * sizeof(float));
    free(m);
    free(mz);
    free(x);
    free(y);
    free(yz);
    lc__codec_destroy(c);
    lc__codec_destroy(cz);
}

float *lc_codec_test_data(size_t n, lc_data_kind_t kind, uint64_t seed)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    lc_datagen_fill(x, n, kind, seed);
    return x;
}

int main(int argc, char **argv)
{
    int rc =
        lc_mp_run_filtered("codecs", lc_all_tests, lc_all_n, argc > 1 ? argv[1] : NULL, NULL, NULL);
    free(lc_all_tests);
    return rc;
}
