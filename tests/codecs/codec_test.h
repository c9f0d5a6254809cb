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

/* The kernel sets this CPU can run (C, and AVX2 when present); returns how many. */
int lc_codec_test_isas(lc_codec_isa_t out[2]);

/* spec's message for x[0..n) (no state) is exactly golden[0..len), on every kernel set. */
void lc_codec_test_golden(const char *spec, const float *x, size_t n, const uint8_t *golden,
                          size_t len);

/* Each pairs[i][0] parses, and formats as pairs[i][1]. */
void lc_codec_test_canonical(const char *const (*pairs)[2], size_t n);

/* spec and spec+zstd:force decode gradient-like data of n elements to the same floats, and
 * the zstd message is smaller with header flags flags (1: compressed, 3: and shuffled). */
void lc_codec_test_zstd_same(const char *spec, size_t n, uint8_t flags);

/* A buffer of n floats of kind (malloc'd). */
float *lc_codec_test_data(size_t n, lc_data_kind_t kind, uint64_t seed);

#endif
