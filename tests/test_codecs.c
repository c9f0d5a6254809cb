/*
 * test_codecs: the codec layer alone (no ranks, no sockets). The tests live
 * in tests/codecs/<codec>.c and register themselves (codec_test.h); this
 * file holds the shared helpers and runs them: test_codecs [shell pattern].
 */
#include "tests/codecs/codec_test.h"
#include "tests/mp.h"

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
