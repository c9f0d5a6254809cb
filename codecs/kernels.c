/* Shared codec kernels (see kernels.h). */
#include "codecs/kernels.h"
#include "codecs/codec.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2"))) static void lc__add_f32_avx2(float *acc, const uint8_t *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i),
                                                _mm256_loadu_ps((const float *)(s + 4 * i))));
    for (; i < n; i++) {
        float v;
        memcpy(&v, s + 4 * i, 4);
        acc[i] += v;
    }
}
#endif

void lc__kern_add_f32(float *acc, const void *src, size_t n)
{
    const uint8_t *s = src;
#if defined(__x86_64__)
    if (lc__codec_isa() == LC_CODEC_ISA_AVX2) {
        lc__add_f32_avx2(acc, s, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, s + 4 * i, 4);
        acc[i] += v;
    }
}
