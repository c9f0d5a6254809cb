/*
 * fp16 and bf16: every f32 becomes one 16-bit float, rounded to nearest even.
 *
 * Body (both codecs): count little-endian 16-bit values, exactly 2 * count bytes, nothing
 * else. Every 16-bit pattern is a valid value, so the decoder checks only the length.
 *
 *   off   size       field
 *     0   2 * count  values: IEEE 754 binary16 (fp16) or bfloat16 (bf16), little-endian
 *
 * Rounding is that of core/reduce.c (lc__f32_to_f16, lc__f32_to_bf16 and their inverses), bit
 * for bit: the collectives reduce f16/bf16 buffers with those, and a value must round the same
 * whether a rank reduced it or sent it through this codec.
 *  - fp16: |x| >= 65520 (the first value that rounds past 65504) becomes Inf; values below
 *    2^-25 become a signed zero; results below 2^-14 are subnormal halves, rounded exactly.
 *  - bf16: the top half of the f32, rounded to nearest even (same exponent range: only values
 *    within half a bf16 ulp of FLT_MAX overflow to Inf).
 *  - NaN stays NaN, with its sign and top payload bits, made quiet; Inf stays Inf.
 * Decoding widens exactly (a half NaN comes back as a quiet f32 NaN, as in lc__f16_to_f32).
 *
 * Kernels: portable C written without branches so compilers can vectorize it, and AVX2
 * variants chosen at run time: F16C's vcvtps2ph (immediate round-to-nearest-even, so MXCSR's
 * rounding mode does not apply) and vcvtph2ps for fp16, integer AVX2 for bf16. Both give the
 * reference's bits; tests/codecs/half.c checks every half for decoding and sweeps of f32
 * patterns (every exponent, the rounding boundaries, NaN payloads) for encoding. (All 2^32
 * patterns were checked once on both kernel sets, also with MXCSR's FTZ and DAZ set, which
 * deep-learning frameworks often turn on: no result changes.) There is no multiplication
 * here, so no FMA contraction can change a result.
 */
#include "codecs/codec.h"
#include "core/log.h"
#include "core/util.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define LC_AVX2 __attribute__((target("avx2,f16c")))
#endif

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the body is stored as host uint16 arrays: little-endian hosts only");

/* ------------------------------------------------------------ scalar conversions */

static inline float lc__half_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline uint32_t lc__half_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* f32 bits -> fp16, as lc__f32_to_f16 but without branches. */
static inline uint16_t lc__to_f16(uint32_t x)
{
    uint32_t ax = x & 0x7fffffffu, sign = (x >> 16) & 0x8000u;
    /* Normal result: round the 13 dropped mantissa bits to nearest even, rebias 127 -> 15. */
    uint32_t norm = (ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u) >> 13;
    /* Subnormal result (|x| < 2^-14): in 0.5 + |x| one f32 ulp is 2^-24, the spacing of the
     * half subnormals, so the f32 addition itself rounds |x| to nearest even in those steps
     * and the low bits of the sum are the half's mantissa (0x400 when it rounds up to the
     * smallest normal, which is also right). */
    uint32_t sub = lc__half_bits(lc__half_f32(ax) + 0.5f) - 0x3f000000u;
    uint32_t nan = 0x7e00u | ((ax >> 13) & 0x3ffu);
    /* Selections by masks: as ?: the compiler may turn them into branches around the f32
     * addition, and a loop with branches is not vectorized. */
    uint32_t m = 0u - (ax < 0x38800000u);
    uint32_t r = (sub & m) | (norm & ~m);
    m = 0u - (ax >= 0x477ff000u); /* rounds to 65520 or more, or Inf */
    r = (0x7c00u & m) | (r & ~m);
    m = 0u - (ax > 0x7f800000u);
    r = (nan & m) | (r & ~m);
    return (uint16_t)(sign | r);
}

/* fp16 -> f32 bits, as lc__f16_to_f32 but without branches. */
static inline uint32_t lc__from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, a = h & 0x7fffu;
    uint32_t norm = (a << 13) + 0x38000000u; /* rebias 15 -> 127 */
    /* Subnormal m * 2^-24: (1 + m/1024) * 2^-14 - 2^-14, exact in f32. */
    uint32_t sub = lc__half_bits(lc__half_f32(0x38800000u | a << 13) - 0x1p-14f);
    uint32_t inf = 0x7f800000u | a << 13 | ((0u - (a > 0x7c00u)) & 0x400000u); /* quiet NaN */
    uint32_t m = 0u - (a < 0x400u); /* masks, not ?:, as in lc__to_f16 */
    uint32_t r = (sub & m) | (norm & ~m);
    m = 0u - (a >= 0x7c00u);
    return sign | (inf & m) | (r & ~m);
}

/* f32 bits -> bf16, as lc__f32_to_bf16. */
static inline uint16_t lc__to_bf16(uint32_t x)
{
    uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    uint32_t nan = (x >> 16) | 0x40u;
    return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

/* ------------------------------------------------------------ portable kernels */

static void lc__f16_enc_c(const float *src, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h = lc__to_f16(lc__half_bits(src[i]));
        memcpy(dst + 2 * i, &h, 2);
    }
}

static void lc__f16_dec_c(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = lc__half_f32(lc__from_f16(h));
    }
}

static void lc__f16_acc_c(const uint8_t *src, size_t n, float *acc)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        acc[i] += lc__half_f32(lc__from_f16(h));
    }
}

static void lc__bf16_enc_c(const float *src, size_t n, uint8_t *dst)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h = lc__to_bf16(lc__half_bits(src[i]));
        memcpy(dst + 2 * i, &h, 2);
    }
}

static void lc__bf16_dec_c(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = lc__half_f32((uint32_t)h << 16);
    }
}

static void lc__bf16_acc_c(const uint8_t *src, size_t n, float *acc)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        acc[i] += lc__half_f32((uint32_t)h << 16);
    }
}

/* ------------------------------------------------------------ AVX2 kernels */

#if defined(__x86_64__)

/* Tails (fewer than a vector) go through the same instructions on a zero-padded copy, so the
 * whole AVX2 path is one implementation. */

LC_AVX2 static void lc__f16_enc_avx2(const float *src, size_t n, uint8_t *dst)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        __m128i b = _mm256_cvtps_ph(_mm256_loadu_ps(src + i + 8), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + 2 * i), a);
        _mm_storeu_si128((__m128i *)(dst + 2 * i + 16), b);
    }
    for (; i < n; i += 8) {
        float in[8] = { 0 };
        uint16_t out[8];
        size_t k = LC_MIN(n - i, (size_t)8);
        memcpy(in, src + i, k * 4);
        _mm_storeu_si128((__m128i *)out,
                         _mm256_cvtps_ph(_mm256_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT));
        memcpy(dst + 2 * i, out, k * 2);
    }
}

LC_AVX2 static void lc__f16_dec_avx2(const uint8_t *src, size_t n, float *dst, int acc)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i)));
        __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i + 16)));
        if (acc) {
            a = _mm256_add_ps(_mm256_loadu_ps(dst + i), a);
            b = _mm256_add_ps(_mm256_loadu_ps(dst + i + 8), b);
        }
        _mm256_storeu_ps(dst + i, a);
        _mm256_storeu_ps(dst + i + 8, b);
    }
    for (; i < n; i += 8) {
        uint16_t in[8] = { 0 };
        float out[8] = { 0 };
        size_t k = LC_MIN(n - i, (size_t)8);
        memcpy(in, src + 2 * i, k * 2);
        if (acc) memcpy(out, dst + i, k * 4);
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)in));
        if (acc) a = _mm256_add_ps(_mm256_loadu_ps(out), a);
        _mm256_storeu_ps(out, a);
        memcpy(dst + i, out, k * 4);
    }
}

/* 8 f32 (as integers) -> 8 bf16 in the low 16 bits of each lane. */
LC_AVX2 static inline __m256i lc__bf16_round8(__m256i x)
{
    const __m256i one = _mm256_set1_epi32(1);
    __m256i ax = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
    __m256i isnan = _mm256_cmpgt_epi32(ax, _mm256_set1_epi32(0x7f800000)); /* both positive */
    __m256i hi = _mm256_srli_epi32(x, 16);
    __m256i bias = _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(hi, one));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(x, bias), 16);
    __m256i nan = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(r, nan, isnan);
}

LC_AVX2 static void lc__bf16_enc_avx2(const float *src, size_t n, uint8_t *dst)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = lc__bf16_round8(_mm256_loadu_si256((const __m256i *)(src + i)));
        __m256i b = lc__bf16_round8(_mm256_loadu_si256((const __m256i *)(src + i + 8)));
        /* packus works per 128-bit lane (a0-3 b0-3 | a4-7 b4-7): put the quarters in order.
         * Every lane is at most 0xffff, so the unsigned saturation never changes a value. */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(dst + 2 * i), p);
    }
    for (; i < n; i += 8) {
        float in[8] = { 0 };
        uint16_t out[16];
        size_t k = LC_MIN(n - i, (size_t)8);
        memcpy(in, src + i, k * 4);
        __m256i a = lc__bf16_round8(_mm256_loadu_si256((const __m256i *)in));
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, a), 0xd8);
        _mm256_storeu_si256((__m256i *)out, p);
        memcpy(dst + 2 * i, out, k * 2);
    }
}

LC_AVX2 static void lc__bf16_dec_avx2(const uint8_t *src, size_t n, float *dst, int acc)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(src + 2 * i));
        /* Interleaving zeros below each value widens and shifts left by 16 in one step. */
        __m256i z = _mm256_setzero_si256();
        __m256i lo = _mm256_unpacklo_epi16(z, h), hi = _mm256_unpackhi_epi16(z, h);
        /* lo = h0-3 | h8-11, hi = h4-7 | h12-15 */
        __m256 a = _mm256_castsi256_ps(_mm256_permute2x128_si256(lo, hi, 0x20));
        __m256 b = _mm256_castsi256_ps(_mm256_permute2x128_si256(lo, hi, 0x31));
        if (acc) {
            a = _mm256_add_ps(_mm256_loadu_ps(dst + i), a);
            b = _mm256_add_ps(_mm256_loadu_ps(dst + i + 8), b);
        }
        _mm256_storeu_ps(dst + i, a);
        _mm256_storeu_ps(dst + i + 8, b);
    }
    for (; i < n; i += 8) {
        uint16_t in[8] = { 0 };
        float out[8] = { 0 };
        size_t k = LC_MIN(n - i, (size_t)8);
        memcpy(in, src + 2 * i, k * 2);
        if (acc) memcpy(out, dst + i, k * 4);
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)in));
        __m256 a = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
        if (acc) a = _mm256_add_ps(_mm256_loadu_ps(out), a);
        _mm256_storeu_ps(out, a);
        memcpy(dst + i, out, k * 4);
    }
}

#define LC_HALF_AVX2() (lc__codec_isa() == LC_CODEC_ISA_AVX2)
#else
#define LC_HALF_AVX2() 0
#endif

/* ------------------------------------------------------------ vtables */

static lc_status_t lc__half_check(lc_codec_params_t *p)
{
    /* block and seed mean nothing here and are ignored (every spec may carry them); option
     * flags belong to other codecs, and setting one on fp16/bf16 is a caller's mistake. */
    if (p->flags != 0) {
        lc_error("codec %s: option flags 0x%x do not apply (it has no options)",
                 p->id == LC_CODEC_FP16 ? "fp16" : "bf16", p->flags);
        return LC_ERR_INVALID_ARG;
    }
    return LC_OK;
}

static size_t lc__half_max_body(const lc_codec_params_t *p, size_t count)
{
    (void)p;
    return count > SIZE_MAX / 2 ? SIZE_MAX : 2 * count;
}

/* The kernels of one 16-bit format: portable C, and AVX2 (NULL without x86-64). */
typedef struct {
    const char *name;
    void (*enc_c)(const float *src, size_t n, uint8_t *dst);
    void (*dec_c)(const uint8_t *src, size_t n, float *dst);
    void (*acc_c)(const uint8_t *src, size_t n, float *acc);
    void (*enc_avx2)(const float *src, size_t n, uint8_t *dst);
    void (*dec_avx2)(const uint8_t *src, size_t n, float *dst, int acc);
} lc_half_kernels_t;

#if defined(__x86_64__)
#define LC_HALF_K(enc, dec) enc, dec
#else
#define LC_HALF_K(enc, dec) NULL, NULL
#endif
static const lc_half_kernels_t lc__half_fp16 = { "fp16", lc__f16_enc_c, lc__f16_dec_c,
                                                 lc__f16_acc_c,
                                                 LC_HALF_K(lc__f16_enc_avx2, lc__f16_dec_avx2) };
static const lc_half_kernels_t lc__half_bf16 = { "bf16", lc__bf16_enc_c, lc__bf16_dec_c,
                                                 lc__bf16_acc_c,
                                                 LC_HALF_K(lc__bf16_enc_avx2, lc__bf16_dec_avx2) };

/* The two vtables share their functions: params.id says which format. */
static const lc_half_kernels_t *lc__half_k(const lc_codec_params_t *p)
{
    return p->id == LC_CODEC_FP16 ? &lc__half_fp16 : &lc__half_bf16;
}

static lc_status_t lc__half_len(const char *name, size_t len, size_t count)
{
    if (count > SIZE_MAX / 2 || len != 2 * count) {
        lc_error("codec %s: body of %zu bytes for %zu elements (expected 2 per element)", name, len,
                 count);
        return LC_ERR_CORRUPT;
    }
    return LC_OK;
}

static lc_status_t lc__half_encode(const lc_codec_params_t *p, lc_codec_work_t *w, const float *src,
                                   float *residual, uint64_t *rng, size_t count, uint8_t *dst,
                                   size_t cap, size_t *len_p)
{
    const lc_half_kernels_t *k = lc__half_k(p);
    if (cap < lc__half_max_body(p, count)) return LC_ERR_INVALID_ARG;
    if (LC_HALF_AVX2())
        k->enc_avx2(src, count, dst);
    else
        k->enc_c(src, count, dst);
    *len_p = 2 * count;
    return LC_OK;
}

/* Decode into out (acc: add to it instead). */
static lc_status_t lc__half_expand(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                   float *out, size_t count, int acc)
{
    const lc_half_kernels_t *k = lc__half_k(p);
    LC_CHECK(lc__half_len(k->name, len, count));
    if (LC_HALF_AVX2())
        k->dec_avx2(src, count, out, acc);
    else if (acc)
        k->acc_c(src, count, out);
    else
        k->dec_c(src, count, out);
    return LC_OK;
}

static lc_status_t lc__half_decode(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                   float *dst, size_t count)
{
    return lc__half_expand(p, src, len, dst, count, 0);
}

static lc_status_t lc__half_decode_acc(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                       float *acc, size_t count)
{
    return lc__half_expand(p, src, len, acc, count, 1);
}

const lc_codec_ops_t lc__codec_fp16_ops = {
    .abi_version = LC_CODEC_ABI_VERSION,
    .id = LC_CODEC_FP16,
    .name = "fp16",
    .caps = LC_CODEC_CAP_LOSSY | LC_CODEC_CAP_SUMMABLE,
    .elem = 2,
    .check = lc__half_check,
    .max_body_size = lc__half_max_body,
    .encode = lc__half_encode,
    .decode = lc__half_decode,
    .decode_accumulate = lc__half_decode_acc,
};

const lc_codec_ops_t lc__codec_bf16_ops = {
    .abi_version = LC_CODEC_ABI_VERSION,
    .id = LC_CODEC_BF16,
    .name = "bf16",
    .caps = LC_CODEC_CAP_LOSSY | LC_CODEC_CAP_SUMMABLE,
    .elem = 2,
    .check = lc__half_check,
    .max_body_size = lc__half_max_body,
    .encode = lc__half_encode,
    .decode = lc__half_decode,
    .decode_accumulate = lc__half_decode_acc,
};
