/*
 * Shared by the codec tests (one executable, test_codecs; one file per
 * codec under tests/codecs/). Each file registers its cmocka tests with
 * LC_CODEC_TESTS at load time, so adding a codec's tests touches no other
 * file.
 */
#ifndef LC_TESTS_CODEC_TEST_H
#define LC_TESTS_CODEC_TEST_H

#include "codecs/codec.h"
#include "perf/datagen.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

void lc_codec_test_register(const struct CMUnitTest *tests, size_t n);

#define LC_CODEC_TESTS(name, ...)                                                                  \
    static const struct CMUnitTest name[] = { __VA_ARGS__ };                                       \
    __attribute__((constructor)) static void name##_register(void)                                 \
    {                                                                                              \
        lc_codec_test_register(name, sizeof(name) / sizeof(name[0]));                              \
    }

/* A codec from a spec string (asserts it parses and instantiates). */
lc_codec_t *lc_codec_test_make(const char *spec);

/* Encode src (f32, count) with state (may be NULL) into a malloc'd message; length in *len_p. */
uint8_t *lc_codec_test_encode(lc_codec_t *c, lc_codec_state_t *st, const float *src, size_t count,
                              size_t *len_p);

/* Sizes every codec round-trips: 0, 1, block-1, block, block+1, 1 Mi + 7. */
size_t lc_codec_test_sizes(uint32_t block, size_t out[6]);

/* A buffer of n floats of kind (malloc'd). */
float *lc_codec_test_data(size_t n, lc_data_kind_t kind, uint64_t seed);

#endif
