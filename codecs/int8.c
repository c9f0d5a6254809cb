/*
 * int8: one f32 scale per block of params.block elements (default LC_CODEC_INT8_BLOCK, 256)
 * and one signed byte per element, symmetric around 0:
 *
 *   scale = max |x| / 127 over the block   (0 for a block of zeros)
 *   q     = x / scale, rounded, clamped to [-127, 127]
 *   x'    = q * scale                       (the decoder)
 *
 * Rounding: to nearest even by default, so |x - x'| <= scale / 2 (plus the f32 rounding of the
 * quotient and the product, under 2^-16 of scale). With LC_CODEC_F_STOCHASTIC, q is floor(t)
 * or floor(t) + 1 (t = x / scale), the latter with probability t - floor(t): E[q] = t, so
 * x' is an unbiased estimate of x, with |x - x'| < scale. The random numbers come from the
 * tensor's splitmix64 stream (seeded from params.seed): a block of n elements takes
 * ceil(n / 2) lc__codec_rand values in order, element j of the block uses the low 32 bits of
 * value j / 2 when j is even and the high 32 bits when it is odd, and only the top 24 of those
 * bits (u = bits / 2^32 in steps of 2^-24). Same seed and same input, same bytes.
 *
 * Choices:
 *  - x / scale, not x * (1 / scale): the quotient is then correctly rounded (no second error
 *    from a rounded reciprocal), and the division hides under the memory traffic anyway.
 *  - Non-finite inputs (NaN, +-Inf) count as 0: they neither enter max |x| nor go out as
 *    anything but 0. A single Inf would otherwise make the scale Inf and wipe out the block
 *    (and an Inf or NaN scale is corrupt on the wire); NaN/Inf in gradients are the caller's
 *    to detect before compressing, and this codec does not propagate them.
 *  - A block whose max |x| is below 127 * FLT_MIN (about 1.5e-36) is sent as zeros with scale
 *    0: its scale would be subnormal, which loses the precision the error bound relies on
 *    (x / scale could land well past 127).
 *  - Near FLT_MAX, max |x| / 127 can round up so far that 127 * scale overflows to Inf on
 *    decoding; the scale then steps down by an ulp until it does not (lc__i8_scale).
 *  - The C and AVX2 kernels do the same IEEE operations per element (divide, compare,
 *    integer arithmetic on the rounded bits), so their output is bit-identical. Rounding to
 *    nearest even is t + 1.5 * 2^23 (whose f32 sum rounds t to an integer in the low mantissa
 *    bits), which assumes the default rounding mode; the decoder's product is kept from
 *    fusing with the accumulating add (see LC_ROUNDED) so no FMA can change a bit.
 *
 * Body (little-endian):
 *
 *   off              size          field
 *     0              4             block: elements per scale, u32, >= 1
 *     4              1             flags: bit 0 = stochastic rounding (informational: the
 *                                  decoder does not need it); bits 1-7 are 0
 *     5              3             reserved, 0
 *     8              4 * nblocks   scales, f32, finite and >= 0; nblocks = ceil(count / block)
 *     8 + 4*nblocks  count         values, int8 in [-127, 127]; -128 is invalid
 *
 * The decoder takes the block from the body; the body must be exactly as long as count and
 * block imply. Any failed check (length, block 0, nonzero flag or reserved bits, a NaN, Inf
 * or negative scale, a -128) is LC_ERR_CORRUPT, found before anything is written: dst and
 * acc are untouched on error. At block 256 a message is 1 + 4/256 bytes per element, 3.94x
 * smaller than f32.
 */
#include "codecs/codec.h"
#include "core/log.h"
#include "core/util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define LC_AVX2 __attribute__((target("avx2,f16c")))
#endif

#define LC_INT8_HDR 8u
#define LC_INT8_F_STOCHASTIC 1u
/* Below 127 * FLT_MIN (2^-126) the scale would be subnormal; such a block goes out as zeros. */
#define LC_INT8_MIN_MAX 0x1.fcp-120f
#define LC_INT8_MAGIC 0x1.8p23f /* t + 1.5 * 2^23 rounds t to an integer in the low bits */
#define LC_INT8_MAGIC_BITS 0x4b400000
#define LC_SPLITMIX_GAMMA 0x9e3779b97f4a7c15ull /* lc__codec_rand's state increment */

/* Keep v a rounded value of its own: GCC contracts a * b + c into one FMA across statements
 * (-ffp-contract=fast is its default in GNU C) whenever the target has FMA (__FP_FAST_FMAF:
 * e.g. built with -march=native), and the fused result differs in the last bit. An empty asm
 * that takes v in a register is opaque to that and costs nothing but, in the C loop,
 * vectorization on such targets. */
#if !defined(__FP_FAST_FMAF)
#define LC_ROUNDED(v) ((void)0) /* no FMA on this target: nothing to fuse */
#elif defined(__x86_64__) || defined(__i386__)
#define LC_ROUNDED(v) __asm__("" : "+x"(v))
#elif defined(__aarch64__)
#define LC_ROUNDED(v) __asm__("" : "+w"(v))
#else
#define LC_ROUNDED(v) ((void)0)
#endif

static inline uint32_t lc__i8_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static inline float lc__i8_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static size_t lc__int8_nblocks(size_t count, uint32_t block)
{
    return count / block + (count % block != 0);
}

/* ------------------------------------------------------------ portable kernels */

/* |x| as f32 bits, 0 for NaN and Inf (finite |x| compare as integers the way they do as
 * floats, so the block maximum can be an integer maximum). */
static inline int32_t lc__i8_abs(uint32_t bits)
{
    int32_t a = (int32_t)(bits & 0x7fffffffu);
    return a < 0x7f800000 ? a : 0;
}

/* x / scale, 0 for non-finite x. |x| <= max |x| = 127 * scale within a few 2^-24 (rounding,
 * lc__i8_scale's steps), so the quotient is at most 127 + 2^-15 in magnitude: the clamp to
 * [-127, 127] can wait until it is an integer (it then gives what clamping t first would). */
static inline float lc__i8_ratio(float x, float scale)
{
    /* Divide first and mask after: a division only under a condition (?:) would be a branch,
     * and a loop with branches is not vectorized. */
    uint32_t keep = 0u - ((lc__i8_bits(x) & 0x7fffffffu) < 0x7f800000u);
    return lc__i8_f32(lc__i8_bits(x / scale) & keep);
}

static inline int32_t lc__i8_clamp(int32_t q)
{
    q = q < -127 ? -127 : q;
    return q > 127 ? 127 : q;
}

/* t rounded to nearest even (|t| < 2^22). */
static inline int32_t lc__i8_rne(float t)
{
    return (int32_t)(lc__i8_bits(t + LC_INT8_MAGIC) - LC_INT8_MAGIC_BITS);
}

/* floor(t) + (u < t - floor(t)), u = top 24 bits of r / 2^24. */
static inline int32_t lc__i8_stoch(float t, uint32_t r)
{
    int32_t n = lc__i8_rne(t);
    int32_t fl = n - ((float)n > t);
    float frac = t - (float)fl;
    float u = (float)(int32_t)(r >> 8) * 0x1p-24f;
    return fl + (u < frac);
}

/* The scale of a block whose largest finite |x| has bits mx; 0 when the block is all zeros,
 * non-finite or below LC_INT8_MIN_MAX. Near FLT_MAX, m / 127 can round up far enough that
 * 127 * scale overflows to Inf on decoding: the scale then steps down an ulp at a time (q
 * stays 127 for the largest element: x / scale is then a few 2^-24 above 127). */
static inline float lc__i8_scale(uint32_t mx)
{
    float m = lc__i8_f32(mx);
    if (!(m >= LC_INT8_MIN_MAX)) return 0.0f;
    float scale = m / 127.0f;
    while (!(127.0f * scale <= 0x1.fffffep127f)) scale = lc__i8_f32(lc__i8_bits(scale) - 1);
    return scale;
}

/* One block of n elements: its scale goes to *scale_p, its values to q. rng: the block's
 * first stream state (stochastic only). */
static void lc__i8_enc_block_c(const float *x, size_t n, int stoch, uint64_t rng, float *scale_p,
                               int8_t *q)
{
    int32_t mx = 0; /* signed: SSE2 has no unsigned 32-bit max, and this loop should vectorize */
    for (size_t j = 0; j < n; j++) {
        int32_t a = lc__i8_abs(lc__i8_bits(x[j]));
        mx = a > mx ? a : mx;
    }
    float scale = lc__i8_scale((uint32_t)mx);
    *scale_p = scale;
    if (scale == 0.0f) {
        memset(q, 0, n);
        return;
    }
    if (!stoch) {
        for (size_t j = 0; j < n; j++)
            q[j] = (int8_t)lc__i8_clamp(lc__i8_rne(lc__i8_ratio(x[j], scale)));
        return;
    }
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        uint64_t r = lc__codec_rand(&rng);
        q[j] = (int8_t)lc__i8_clamp(lc__i8_stoch(lc__i8_ratio(x[j], scale), (uint32_t)r));
        q[j + 1] =
            (int8_t)lc__i8_clamp(lc__i8_stoch(lc__i8_ratio(x[j + 1], scale), (uint32_t)(r >> 32)));
    }
    if (j < n)
        q[j] = (int8_t)lc__i8_clamp(
            lc__i8_stoch(lc__i8_ratio(x[j], scale), (uint32_t)lc__codec_rand(&rng)));
}

static void lc__i8_dec_block_c(const int8_t *q, size_t n, float scale, float *dst, int acc)
{
    if (acc) {
        for (size_t j = 0; j < n; j++) {
            float v = (float)q[j] * scale;
            LC_ROUNDED(v);
            dst[j] += v;
        }
    } else {
        for (size_t j = 0; j < n; j++) dst[j] = (float)q[j] * scale;
    }
}

static int lc__i8_has_min_c(const int8_t *q, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= q[i] == INT8_MIN;
    return bad;
}

/* ------------------------------------------------------------ AVX2 kernels */

#if defined(__x86_64__)

/* a * c mod 2^64 per 64-bit lane (AVX2 has only 32x32->64 multiplies). */
LC_AVX2 static inline __m256i lc__mul64(__m256i a, uint64_t c)
{
    const __m256i clo = _mm256_set1_epi64x((int64_t)(c & 0xffffffffu));
    const __m256i chi = _mm256_set1_epi64x((int64_t)(c >> 32));
    __m256i lo = _mm256_mul_epu32(a, clo);
    __m256i cross =
        _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), clo), _mm256_mul_epu32(a, chi));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

/* lc__codec_rand's output for the four states in z (already advanced by the gamma). Read as
 * eight 32-bit lanes, the result is the low then high half of each value: exactly the order
 * in which elements take them. */
LC_AVX2 static inline __m256i lc__splitmix4(__m256i z)
{
    z = lc__mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xbf58476d1ce4e5b9ull);
    z = lc__mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94d049bb133111ebull);
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

/* 8 elements: x / scale rounded (nearest, or stochastic with the 8 u32 in r) and clamped,
 * the operations of lc__i8_ratio, lc__i8_rne, lc__i8_stoch and lc__i8_clamp. */
LC_AVX2 static inline __m256i lc__i8_quant8(__m256 x, __m256 scale, int stoch, __m256i r)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_castsi256_ps(_mm256_set1_epi32(0x7f800000));
    __m256 finite = _mm256_cmp_ps(_mm256_and_ps(x, absmask), inf, _CMP_LT_OQ);
    __m256 t = _mm256_and_ps(_mm256_div_ps(x, scale), finite);
    __m256i n =
        _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(t, _mm256_set1_ps(LC_INT8_MAGIC))),
                         _mm256_set1_epi32(LC_INT8_MAGIC_BITS));
    if (stoch) {
        __m256 gt = _mm256_cmp_ps(_mm256_cvtepi32_ps(n), t, _CMP_GT_OQ);
        __m256i fl = _mm256_add_epi32(n, _mm256_castps_si256(gt)); /* true lanes are -1 */
        __m256 frac = _mm256_sub_ps(t, _mm256_cvtepi32_ps(fl));
        __m256 u =
            _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(r, 8)), _mm256_set1_ps(0x1p-24f));
        __m256 up = _mm256_cmp_ps(u, frac, _CMP_LT_OQ);
        n = _mm256_sub_epi32(fl, _mm256_castps_si256(up));
    }
    n = _mm256_max_epi32(n, _mm256_set1_epi32(-127));
    return _mm256_min_epi32(n, _mm256_set1_epi32(127));
}

LC_AVX2 static void lc__i8_enc_block_avx2(const float *x, size_t n, int stoch, uint64_t rng,
                                          float *scale_p, int8_t *q)
{
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff);
    const __m256i inf = _mm256_set1_epi32(0x7f800000);
    __m256i vmx = _mm256_setzero_si256();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256i a = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + j)), absmask);
        a = _mm256_and_si256(a, _mm256_cmpgt_epi32(inf, a)); /* NaN and Inf count as 0 */
        vmx = _mm256_max_epu32(vmx, a);
    }
    uint32_t lanes[8], mx = 0;
    _mm256_storeu_si256((__m256i *)lanes, vmx);
    for (int k = 0; k < 8; k++) mx = lanes[k] > mx ? lanes[k] : mx;
    for (; j < n; j++) {
        uint32_t a = (uint32_t)lc__i8_abs(lc__i8_bits(x[j]));
        mx = a > mx ? a : mx;
    }
    float scale = lc__i8_scale((uint32_t)mx);
    *scale_p = scale;
    if (scale == 0.0f) {
        memset(q, 0, n);
        return;
    }
    const __m256 vs = _mm256_set1_ps(scale);
    /* State of the stream before value 0, 1, 2, 3 of the next group of four. */
    __m256i st = _mm256_add_epi64(
        _mm256_set1_epi64x((int64_t)rng),
        _mm256_set_epi64x((int64_t)(4 * LC_SPLITMIX_GAMMA), (int64_t)(3 * LC_SPLITMIX_GAMMA),
                          (int64_t)(2 * LC_SPLITMIX_GAMMA), (int64_t)LC_SPLITMIX_GAMMA));
    const __m256i step = _mm256_set1_epi64x((int64_t)(4 * LC_SPLITMIX_GAMMA));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i r0 = _mm256_setzero_si256(), r1 = r0, r2 = r0, r3 = r0;
    j = 0;
    for (; j + 32 <= n; j += 32) {
        if (stoch) {
            r0 = lc__splitmix4(st);
            st = _mm256_add_epi64(st, step);
            r1 = lc__splitmix4(st);
            st = _mm256_add_epi64(st, step);
            r2 = lc__splitmix4(st);
            st = _mm256_add_epi64(st, step);
            r3 = lc__splitmix4(st);
            st = _mm256_add_epi64(st, step);
        }
        __m256i a = lc__i8_quant8(_mm256_loadu_ps(x + j), vs, stoch, r0);
        __m256i b = lc__i8_quant8(_mm256_loadu_ps(x + j + 8), vs, stoch, r1);
        __m256i c = lc__i8_quant8(_mm256_loadu_ps(x + j + 16), vs, stoch, r2);
        __m256i d = lc__i8_quant8(_mm256_loadu_ps(x + j + 24), vs, stoch, r3);
        /* The packs work per 128-bit lane: a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7 as bytes;
         * the dword permutation puts them in order. Values are in [-127, 127]: no saturation. */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
        _mm256_storeu_si256((__m256i *)(q + j), _mm256_permutevar8x32_epi32(p, order));
    }
    for (; j + 8 <= n; j += 8) {
        if (stoch) {
            r0 = lc__splitmix4(st);
            st = _mm256_add_epi64(st, step);
        }
        __m256i a = lc__i8_quant8(_mm256_loadu_ps(x + j), vs, stoch, r0);
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, a), _mm256_setzero_si256());
        p = _mm256_permutevar8x32_epi32(p, order);
        _mm_storel_epi64((__m128i *)(q + j), _mm256_castsi256_si128(p));
    }
    /* The last n % 8 (j is even here, so stream value j / 2 starts a pair). */
    uint64_t s = rng + (uint64_t)(j / 2) * LC_SPLITMIX_GAMMA, r = 0;
    for (; j < n; j++) {
        float t = lc__i8_ratio(x[j], scale);
        if (!stoch) {
            q[j] = (int8_t)lc__i8_clamp(lc__i8_rne(t));
            continue;
        }
        if ((j & 1) == 0) r = lc__codec_rand(&s);
        q[j] = (int8_t)lc__i8_clamp(lc__i8_stoch(t, (uint32_t)(r >> (32 * (j & 1)))));
    }
}

LC_AVX2 static void lc__i8_dec_block_avx2(const int8_t *q, size_t n, float scale, float *dst,
                                          int acc)
{
    const __m256 vs = _mm256_set1_ps(scale);
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(q + j));
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), vs);
        if (acc) {
            LC_ROUNDED(v);
            v = _mm256_add_ps(_mm256_loadu_ps(dst + j), v);
        }
        _mm256_storeu_ps(dst + j, v);
    }
    for (; j < n; j++) {
        float v = (float)q[j] * scale;
        LC_ROUNDED(v);
        dst[j] = acc ? dst[j] + v : v;
    }
}

LC_AVX2 static int lc__i8_has_min_avx2(const int8_t *q, size_t n)
{
    const __m256i min = _mm256_set1_epi8(INT8_MIN);
    __m256i bad = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m256i a = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(q + i)), min);
        __m256i b = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(q + i + 32)), min);
        __m256i c = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(q + i + 64)), min);
        __m256i d = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(q + i + 96)), min);
        bad = _mm256_or_si256(bad, _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)));
    }
    for (; i + 32 <= n; i += 32)
        bad = _mm256_or_si256(bad,
                              _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(q + i)), min));
    return !_mm256_testz_si256(bad, bad) || lc__i8_has_min_c(q + i, n - i);
}

#define LC_INT8_AVX2() (lc__codec_isa() == LC_CODEC_ISA_AVX2)
#else
#define LC_INT8_AVX2() 0
#endif

/* ------------------------------------------------------------ vtable */

static lc_status_t lc__int8_check(lc_codec_params_t *p)
{
    if (p->block == 0) p->block = LC_CODEC_INT8_BLOCK;
    if (p->flags & ~(uint32_t)LC_CODEC_F_STOCHASTIC) {
        lc_error("codec int8: option flags 0x%x: only stochastic (0x%x) applies", p->flags,
                 (unsigned)LC_CODEC_F_STOCHASTIC);
        return LC_ERR_INVALID_ARG;
    }
    return LC_OK;
}

static size_t lc__int8_max_body(const lc_codec_params_t *p, size_t count)
{
    uint32_t block = p->block ? p->block : LC_CODEC_INT8_BLOCK;
    size_t nb = lc__int8_nblocks(count, block);
    if (count > (SIZE_MAX - LC_INT8_HDR) / 5) return SIZE_MAX; /* nb <= count */
    return LC_INT8_HDR + 4 * nb + count;
}

static lc_status_t lc__int8_encode(const lc_codec_params_t *p, lc_codec_work_t *w, const float *src,
                                   float *residual, uint64_t *rng, size_t count, uint8_t *dst,
                                   size_t cap, size_t *len_p)
{
    uint32_t block = p->block ? p->block : LC_CODEC_INT8_BLOCK;
    size_t nb = lc__int8_nblocks(count, block), len = lc__int8_max_body(p, count);
    int stoch = (p->flags & LC_CODEC_F_STOCHASTIC) != 0;
    uint64_t s = *rng;
    uint8_t *scales = dst + LC_INT8_HDR;
    int8_t *q = (int8_t *)(scales + 4 * nb);

    if (cap < len) return LC_ERR_INVALID_ARG;
    lc__codec_put32(dst, block);
    dst[4] = stoch ? LC_INT8_F_STOCHASTIC : 0;
    dst[5] = dst[6] = dst[7] = 0;
#if defined(__x86_64__)
    int avx2 = LC_INT8_AVX2();
#endif
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * block, n = LC_MIN((size_t)block, count - off);
        float scale;
#if defined(__x86_64__)
        if (avx2)
            lc__i8_enc_block_avx2(src + off, n, stoch, s, &scale, q + off);
        else
#endif
            lc__i8_enc_block_c(src + off, n, stoch, s, &scale, q + off);
        lc__codec_put32(scales + 4 * b, lc__i8_bits(scale));
        if (stoch) s += (uint64_t)((n + 1) / 2) * LC_SPLITMIX_GAMMA; /* values the block took */
    }
    *rng = s;
    *len_p = len;
    return LC_OK;
}

/* Check a body completely; its block, scales and values go to the pointers. */
static lc_status_t lc__int8_open(const uint8_t *src, size_t len, size_t count, uint32_t *block_p,
                                 const uint8_t **scales_p, const int8_t **q_p)
{
    if (len < LC_INT8_HDR || count > len) {
        lc_error("codec int8: body of %zu bytes cannot hold %zu elements", len, count);
        return LC_ERR_CORRUPT;
    }
    uint32_t block = lc__codec_get32(src);
    if (block == 0 || (src[4] & ~LC_INT8_F_STOCHASTIC) || src[5] || src[6] || src[7]) {
        lc_error("codec int8: bad body header (block %u, flags 0x%x, reserved %02x%02x%02x)", block,
                 src[4], src[5], src[6], src[7]);
        return LC_ERR_CORRUPT;
    }
    size_t nb = lc__int8_nblocks(count, block);
    if (len != LC_INT8_HDR + 4 * nb + count) { /* no overflow: nb <= count <= len */
        lc_error("codec int8: body of %zu bytes, %zu expected for %zu elements in blocks of %u",
                 len, LC_INT8_HDR + 4 * nb + count, count, block);
        return LC_ERR_CORRUPT;
    }
    const uint8_t *scales = src + LC_INT8_HDR;
    for (size_t b = 0; b < nb; b++) {
        float s = lc__i8_f32(lc__codec_get32(scales + 4 * b));
        /* NaN fails every comparison; a scale whose 127 * s overflows would decode to Inf,
         * and the encoder never sends one (lc__i8_scale). */
        if (!(s >= 0.0f && 127.0f * s <= 0x1.fffffep127f)) {
            lc_error("codec int8: scale %zu is %g (must be >= 0 with 127 * scale finite)", b,
                     (double)s);
            return LC_ERR_CORRUPT;
        }
    }
    const int8_t *q = (const int8_t *)(scales + 4 * nb);
#if defined(__x86_64__)
    int bad = LC_INT8_AVX2() ? lc__i8_has_min_avx2(q, count) : lc__i8_has_min_c(q, count);
#else
    int bad = lc__i8_has_min_c(q, count);
#endif
    if (bad) {
        lc_error("codec int8: a value is -128 (values are in [-127, 127])");
        return LC_ERR_CORRUPT;
    }
    *block_p = block;
    *scales_p = scales;
    *q_p = q;
    return LC_OK;
}

static lc_status_t lc__int8_dec(const uint8_t *src, size_t len, float *dst, size_t count, int acc)
{
    uint32_t block;
    const uint8_t *scales;
    const int8_t *q;
    LC_CHECK(lc__int8_open(src, len, count, &block, &scales, &q));
#if defined(__x86_64__)
    int avx2 = LC_INT8_AVX2();
#endif
    for (size_t off = 0, b = 0; off < count; off += block, b++) {
        size_t n = LC_MIN((size_t)block, count - off);
        float scale = lc__i8_f32(lc__codec_get32(scales + 4 * b));
#if defined(__x86_64__)
        if (avx2)
            lc__i8_dec_block_avx2(q + off, n, scale, dst + off, acc);
        else
#endif
            lc__i8_dec_block_c(q + off, n, scale, dst + off, acc);
    }
    return LC_OK;
}

static lc_status_t lc__int8_decode(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                   float *dst, size_t count)
{
    return lc__int8_dec(src, len, dst, count, 0);
}

static lc_status_t lc__int8_decode_acc(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                       float *acc, size_t count)
{
    return lc__int8_dec(src, len, acc, count, 1);
}

const lc_codec_ops_t lc__codec_int8_ops = {
    .abi_version = LC_CODEC_ABI_VERSION,
    .id = LC_CODEC_INT8,
    .name = "int8",
    .caps = LC_CODEC_CAP_LOSSY,
    .elem = 0,
    .check = lc__int8_check,
    .max_body_size = lc__int8_max_body,
    .encode = lc__int8_encode,
    .decode = lc__int8_decode,
    .decode_accumulate = lc__int8_decode_acc,
};
