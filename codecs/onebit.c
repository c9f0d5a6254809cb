/*
 * onebit: the sign of every element and one scale per block (1-bit SGD,
 * signSGD with a scale, DeepSpeed's 1-bit Adam wire format in spirit).
 *
 * A block of B elements (default 2048) is sent as its scale s, the mean
 * |y| of the block (or its RMS with ":rms"), and B sign bits; it decodes to
 * +s or -s per element. With error feedback y = x + e, and afterwards
 * e = y - decoded, so what the signs lose is added to the next step.
 *
 * Non-finite elements (NaN, Inf) count as 0 in the scale, send their sign
 * bit, and leave a residual of 0: a gradient that overflowed once must not
 * poison the residual of every later step. A scale that overflows (sums of
 * values near FLT_MAX) is sent as FLT_MAX: the wire never carries Inf.
 *
 * Body (little-endian):
 *
 *   off      size          field
 *     0      4             block B (a multiple of 8, >= 8)
 *     4      1             flags: bit 0 = scales are RMS (informational); other bits 0
 *     5      3             reserved, 0
 *     8      4 * nblocks   f32 scales, finite and >= 0 (nblocks = ceil(count / B))
 *     ...    ceil(count/8) sign bits: bit i % 8 of byte i / 8 (LSB first) is the sign
 *                          bit of element i (1 = negative); bits past count are 0
 *
 * Ratio at B = 2048: 32 / (1 + 32/2048) = 31.5x smaller than f32.
 *
 * Speed: two passes per block, the second over data still in L1 (a block is
 * 8 KiB): y, |y| sums (8 lanes) and the residual store, then signs (one
 * movemask per 8 elements) and the residual update. The AVX2 and C paths
 * sum |y| in the same 8 lanes and combine the lanes in the same order, so
 * their scales, bits and residuals are identical.
 */
#include "codecs/codec.h"
#include "core/log.h"
#include "core/util.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define LC_ONEBIT_HDR 8u

static lc_status_t lc__onebit_check(lc_codec_params_t *p)
{
    if (p->block == 0) p->block = LC_CODEC_ONEBIT_BLOCK;
    if (p->block % 8 != 0 || p->block > (1u << 30)) {
        lc_error("onebit: block %u must be a positive multiple of 8 (at most 2^30)", p->block);
        return LC_ERR_INVALID_ARG;
    }
    if (p->flags & ~(uint32_t)LC_CODEC_F_RMS) {
        lc_error("onebit: unknown flags 0x%x", p->flags);
        return LC_ERR_INVALID_ARG;
    }
    return LC_OK;
}

static size_t lc__onebit_nblocks(size_t count, uint32_t block)
{
    return count / block + (count % block ? 1 : 0);
}

static size_t lc__onebit_max_body(const lc_codec_params_t *p, size_t count)
{
    return LC_ONEBIT_HDR + 4 * lc__onebit_nblocks(count, p->block) + count / 8 +
           (count % 8 ? 1 : 0);
}

/* The scale from 8 lane sums, combined in a fixed order. */
static float lc__onebit_scale(const float lane[8], size_t n, int rms)
{
    float s =
        ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    float m = s / (float)n;
    m = rms ? sqrtf(m) : m;
    return isfinite(m) ? m : FLT_MAX; /* sums of huge finite values: keep the wire finite */
}

/* |v| or v^2 as the scale counts it: 0 for non-finite v. */
static inline float lc__onebit_mag(float v, int rms)
{
    if (!isfinite(v)) return 0.0f;
    return rms ? v * v : fabsf(v);
}

static inline uint32_t lc__f32_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

/* ------------------------------------------------------------ portable path */

/* Encode one block of n elements (n % 8 == 0 except for the last block):
 * returns its scale, writes the sign bits at bits (n / 8 bytes, rounded up). */
static float lc__onebit_block_c(const float *x, const float *ein, float *e, size_t n, int rms,
                                uint8_t *bits)
{
    float lane[8] = { 0 };
    for (size_t i = 0; i < n; i++) {
        float y = e ? x[i] + ein[i] : x[i];
        if (e) e[i] = y;
        lane[i % 8] += lc__onebit_mag(y, rms);
    }
    float s = lc__onebit_scale(lane, n, rms);
    const float *y = e ? e : x;
    memset(bits, 0, n / 8 + (n % 8 ? 1 : 0));
    for (size_t i = 0; i < n; i++) {
        float v = y[i];
        uint32_t neg = lc__f32_bits(v) >> 31;
        bits[i / 8] |= (uint8_t)(neg << (i % 8));
        if (e) e[i] = isfinite(v) ? (neg ? v + s : v - s) : 0.0f;
    }
    return s;
}

static void lc__onebit_expand_c(const uint8_t *bits, size_t n, float s, float *out, int acc)
{
    for (size_t i = 0; i < n; i++) {
        float d = (bits[i / 8] >> (i % 8)) & 1 ? -s : s;
        out[i] = acc ? out[i] + d : d;
    }
}

/* ------------------------------------------------------------ AVX2 path */

#if defined(__x86_64__)
/* Lane sums of |y| (or y^2) over y[0..n8), 8 at a time; non-finite y count as 0 when masked. */
__attribute__((target("avx2"))) static __m256 lc__onebit_sum_avx2(const float *y, size_t n8,
                                                                  int rms, int masked)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_set1_ps(INFINITY);
    __m256 acc = _mm256_setzero_ps();
    for (size_t i = 0; i < n8; i += 8) {
        __m256 v = _mm256_loadu_ps(y + i), a = _mm256_and_ps(v, absmask);
        __m256 m = rms ? _mm256_mul_ps(v, v) : a;
        if (masked) m = _mm256_and_ps(m, _mm256_cmp_ps(a, inf, _CMP_LT_OQ));
        acc = _mm256_add_ps(acc, m);
    }
    return acc;
}

/*
 * The fast path leaves the finiteness masks out: summing unmasked, a NaN or Inf anywhere
 * makes some lane non-finite, and then (rarely: also when finite values overflow) the lanes
 * are summed again with the masks. With every lane finite no element was masked, so the
 * sums, and everything after them, are the bits the C path computes.
 */
__attribute__((target("avx2"))) static float
lc__onebit_block_avx2(const float *x, const float *ein, float *e, size_t n, int rms, uint8_t *bits)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_set1_ps(INFINITY);
    size_t n8 = n & ~(size_t)7, i;
    float lane[8];
    __m256 acc = _mm256_setzero_ps();

    if (e) { /* y = x + e_in into e, summing as we go */
        for (i = 0; i < n8; i += 8) {
            __m256 y = _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(ein + i));
            _mm256_storeu_ps(e + i, y);
            acc = _mm256_add_ps(acc, rms ? _mm256_mul_ps(y, y) : _mm256_and_ps(y, absmask));
        }
    } else {
        acc = lc__onebit_sum_avx2(x, n8, rms, 0);
    }
    const float *ys = e ? e : x;
    int finite =
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(acc, absmask), inf, _CMP_LT_OQ)) == 0xff;
    for (i = n8; i < n; i++) {
        if (e) e[i] = x[i] + ein[i];
        finite &= isfinite(ys[i]) != 0;
    }
    if (!finite) acc = lc__onebit_sum_avx2(ys, n8, rms, 1);
    _mm256_storeu_ps(lane, acc);
    for (i = n8; i < n; i++) lane[i % 8] += lc__onebit_mag(ys[i], rms);
    float s = lc__onebit_scale(lane, n, rms);
    const __m256 vs = _mm256_set1_ps(s);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    for (i = 0; i < n8; i += 8) {
        __m256 y = _mm256_loadu_ps(ys + i);
        bits[i / 8] = (uint8_t)_mm256_movemask_ps(y);
        if (e) {
            /* y - s for non-negative y, y + s for negative: subtract s carrying y's sign. */
            __m256 r = _mm256_sub_ps(y, _mm256_or_ps(vs, _mm256_and_ps(y, sign)));
            if (!finite)
                r = _mm256_and_ps(r, _mm256_cmp_ps(_mm256_and_ps(y, absmask), inf, _CMP_LT_OQ));
            _mm256_storeu_ps(e + i, r);
        }
    }
    if (i < n) {
        bits[i / 8] = 0;
        for (; i < n; i++) {
            float v = ys[i];
            uint32_t neg = lc__f32_bits(v) >> 31;
            bits[i / 8] |= (uint8_t)(neg << (i % 8));
            if (e) e[i] = isfinite(v) ? (neg ? v + s : v - s) : 0.0f;
        }
    }
    return s;
}

__attribute__((target("avx2"))) static void lc__onebit_expand_avx2(const uint8_t *bits, size_t n,
                                                                   float s, float *out, int acc)
{
    const __m256i lanebit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256 vs = _mm256_set1_ps(s);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    size_t n8 = n & ~(size_t)7, i;
    for (i = 0; i < n8; i += 8) {
        __m256i b = _mm256_set1_epi32(bits[i / 8]);
        __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(b, lanebit), lanebit);
        __m256 d = _mm256_or_ps(vs, _mm256_and_ps(_mm256_castsi256_ps(set), sign));
        if (acc) d = _mm256_add_ps(_mm256_loadu_ps(out + i), d);
        _mm256_storeu_ps(out + i, d);
    }
    if (i < n) lc__onebit_expand_c(bits + i / 8, n - i, s, out + i, acc);
}
#endif

/* ------------------------------------------------------------ vtable */

static lc_status_t lc__onebit_encode_split(const lc_codec_params_t *p, lc_codec_work_t *w,
                                           const float *src, const float *res_in, float *residual,
                                           uint64_t *rng, size_t count, uint8_t *dst, size_t cap,
                                           size_t *len_p)
{
    const uint32_t B = p->block;
    const int rms = (p->flags & LC_CODEC_F_RMS) != 0;
    const size_t nb = lc__onebit_nblocks(count, B);
    uint8_t *scales = dst + LC_ONEBIT_HDR, *bits = scales + 4 * nb;
#if defined(__x86_64__)
    const int avx2 = lc__codec_isa() == LC_CODEC_ISA_AVX2;
#endif

    lc__codec_put32(dst, B);
    dst[4] = (uint8_t)(rms ? 1 : 0);
    dst[5] = dst[6] = dst[7] = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * B, n = LC_MIN((size_t)B, count - off);
        float *e = residual ? residual + off : NULL;
        const float *ein = residual ? res_in + off : NULL;
        float s;
#if defined(__x86_64__)
        if (avx2)
            s = lc__onebit_block_avx2(src + off, ein, e, n, rms, bits + off / 8);
        else
#endif
            s = lc__onebit_block_c(src + off, ein, e, n, rms, bits + off / 8);
        lc__codec_put32(scales + 4 * b, lc__f32_bits(s));
    }
    *len_p = lc__onebit_max_body(p, count);
    return LC_OK;
}

static lc_status_t lc__onebit_encode(const lc_codec_params_t *p, lc_codec_work_t *w,
                                     const float *src, float *residual, uint64_t *rng, size_t count,
                                     uint8_t *dst, size_t cap, size_t *len_p)
{
    return lc__onebit_encode_split(p, w, src, residual, residual, rng, count, dst, cap, len_p);
}

/* Validate a body completely; its block and the scales' offset on success. */
static lc_status_t lc__onebit_open(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                   size_t count, uint32_t *block_p)
{
    if (len < LC_ONEBIT_HDR) goto corrupt;
    uint32_t B = lc__codec_get32(src);
    if (B == 0 || B % 8 != 0 || B > (1u << 30) || (src[4] & ~1u) || src[5] || src[6] || src[7])
        goto corrupt;
    size_t nb = lc__onebit_nblocks(count, B);
    if (len != LC_ONEBIT_HDR + 4 * nb + count / 8 + (count % 8 ? 1 : 0)) goto corrupt;
    for (size_t b = 0; b < nb; b++) {
        uint32_t u = lc__codec_get32(src + LC_ONEBIT_HDR + 4 * b);
        float s;
        memcpy(&s, &u, 4);
        if (!isfinite(s) || s < 0.0f || (u >> 31)) goto corrupt;
    }
    if (count % 8 && (src[len - 1] >> (count % 8)) != 0) goto corrupt; /* bits past count */
    *block_p = B;
    return LC_OK;
corrupt:
    lc_error("onebit: malformed body (%zu bytes for %zu elements)", len, count);
    return LC_ERR_CORRUPT;
}

static lc_status_t lc__onebit_expand(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                     float *out, size_t count, int acc)
{
    uint32_t B;
    LC_CHECK(lc__onebit_open(p, src, len, count, &B));
    const size_t nb = lc__onebit_nblocks(count, B);
    const uint8_t *scales = src + LC_ONEBIT_HDR, *bits = scales + 4 * nb;
#if defined(__x86_64__)
    const int avx2 = lc__codec_isa() == LC_CODEC_ISA_AVX2;
#endif
    for (size_t b = 0; b < nb; b++) {
        size_t off = b * (size_t)B, n = LC_MIN((size_t)B, count - off);
        uint32_t u = lc__codec_get32(scales + 4 * b);
        float s;
        memcpy(&s, &u, 4);
#if defined(__x86_64__)
        if (avx2) {
            lc__onebit_expand_avx2(bits + off / 8, n, s, out + off, acc);
            continue;
        }
#endif
        lc__onebit_expand_c(bits + off / 8, n, s, out + off, acc);
    }
    return LC_OK;
}

static lc_status_t lc__onebit_decode(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                     float *dst, size_t count)
{
    return lc__onebit_expand(p, src, len, dst, count, 0);
}

static lc_status_t lc__onebit_decode_acc(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                         float *acc, size_t count)
{
    return lc__onebit_expand(p, src, len, acc, count, 1);
}

const lc_codec_ops_t lc__codec_onebit_ops = {
    .abi_version = LC_CODEC_ABI_VERSION,
    .id = LC_CODEC_ONEBIT,
    .name = "onebit",
    .caps = LC_CODEC_CAP_LOSSY | LC_CODEC_CAP_EF,
    .elem = 0,
    .check = lc__onebit_check,
    .max_body_size = lc__onebit_max_body,
    .encode = lc__onebit_encode,
    .decode = lc__onebit_decode,
    .decode_accumulate = lc__onebit_decode_acc,
    .encode_split = lc__onebit_encode_split,
};
