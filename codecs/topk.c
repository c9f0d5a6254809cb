/*
 * topk: keep the k largest magnitudes of y = x + e (e: the error-feedback
 * residual, when there is one) and send them as indices + f32 values.
 *
 * Selection. Per selection unit: the whole tensor when params.block is 0,
 * else each run of params.block elements (the last one may be shorter).
 * k per unit is params.k (clamped to the unit) or ceil(density * len), at
 * least 1. Elements are ranked by the bits of |y| as an unsigned integer
 * (the f32 bits with the sign cleared): for numbers that is the order of
 * the magnitudes, and NaNs (0x7f800001..0x7fffffff) rank above +inf, by
 * payload, so NaNs are always kept first. Ties at the threshold go to the
 * lowest indices. This makes the exact selection a pure function of y.
 *
 *  - exact (default): radix select on those 31-bit keys, O(n), no sort.
 *    Large units (over LC_TOPK_SMALL elements): a sample of the unit gives
 *    a threshold t a little below the k-th largest key; one pass computes
 *    y (stored in e) and gathers every element with key >= t, about 1.1 k
 *    of them; a radix select among those gives the k-th key T; kept are the
 *    keys > T and the first ties == T. The sample only decides how much is
 *    gathered: when fewer than k (or too many to hold) come out, the unit
 *    falls back to histogram passes over all of it (top 11 bits, then the
 *    keys of the threshold bucket, refined digit by digit, then an emit
 *    pass). The result is the same function of y either way.
 *    Small units: y and the keys in one pass with a histogram of their top
 *    8 bits, the threshold bucket refined, then the emit pass.
 *  - approx (LC_CODEC_F_APPROX): DGC-style. The threshold is the matching
 *    rank of a stratified random sample (about 1% of the unit, at least
 *    LC_TOPK_SAMPLE_MIN elements and ~1000 above the threshold, drawn from
 *    the tensor's stream); one pass keeps every |y| >= that threshold. When
 *    the count lands outside k +- 10% the unit is resolved exactly (among
 *    the gathered candidates when there are too many, else by the exact
 *    histogram path), so the kept count is always within +-10% of k. Units
 *    up to LC_TOPK_SMALL elements are always exact. exact mode does not
 *    touch the tensor's stream (its sample positions are a fixed sequence).
 *
 * Error feedback: e[i] = y[i] for elements not kept, 0 for kept ones (their
 * values go out losslessly as f32).
 *
 * SIMD: the passes over the unit have AVX2 variants (lc__codec_isa()). They
 * do the same single f32 add per element and the same integer compares, in
 * the same order, so bodies and residuals are bit-identical to the C path.
 *
 * Body wire format (little-endian; the 16-byte message header comes first,
 * written by codec.c):
 *
 *   off      size    field
 *     0         1    index coding: 0 = delta varints, 1 = bitmap
 *     1         1    mode: bit 0 = approximate selection (informational);
 *                    other bits 0
 *     2         2    reserved, 0
 *     4         4    selection block (0 = whole tensor; informational)
 *     8         8    nnz: number of kept elements (<= count)
 *    16         8    L: index section length in bytes
 *    24         L    index section
 *    24 + L  4 nnz   kept values, f32, in increasing index order
 *
 * The body is exactly 24 + L + 4 nnz bytes. Indices are global (0..count-1)
 * and strictly increasing.
 *
 *  - Delta varints: nnz unsigned LEB128 numbers (7 bits per byte, low group
 *    first, bit 7 = more bytes follow): the first index itself, then each
 *    index minus the previous one (so >= 1). A varint is at most 10 bytes,
 *    carries no bits past 64 and is in shortest form (no final 0x00 byte
 *    after a continuation). L is the sum of their lengths.
 *  - Bitmap: L = ceil(count / 8); bit i%8 (LSB first) of byte i/8 set =
 *    element i kept. Bits at or past count are 0; the popcount is nnz.
 *
 * The encoder writes whichever section is shorter (varints on a tie).
 * Decoders validate the whole body (every field above, every index) before
 * writing anything: a bad body is LC_ERR_CORRUPT and leaves dst/acc as is.
 */
#include "codecs/codec.h"
#include "core/log.h"
#include "core/util.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "topk values are copied as host f32: little-endian hosts only");

#define LC_TOPK_HDR 24u
#define LC_TOPK_SMALL 32768u      /* units up to this: keys buffered, selected exactly */
#define LC_TOPK_SAMPLE_MIN 8192u  /* large units: smallest threshold sample */
#define LC_TOPK_SAMPLE_DIV 100u   /* approx samples 1/100 of a unit, exact 1/400 */
#define LC_TOPK_CAND_EXTRA 65536u /* candidates held: max(2 hi, hi + this), hi = k + 10% */
#define LC_TOPK_HBITS 11u         /* top digit of the large-unit path */
#define LC_TOPK_HBINS (1u << LC_TOPK_HBITS)
#define LC_TOPK_HSHIFT (31u - LC_TOPK_HBITS)
#define LC_TOPK_CHUNK ((size_t)1 << 30) /* u32 histogram counters are folded before this */

enum { LC_TOPK_VARINT = 0, LC_TOPK_BITMAP = 1 };
enum { LC_TOPK_MODE_APPROX = 1 };
/* Work slots: output indices, output values, candidates/keys, sample/histograms. */
enum { LC_TOPK_W_IDX = 0, LC_TOPK_W_VAL = 1, LC_TOPK_W_CAND = 2, LC_TOPK_W_AUX = 3 };

/* ------------------------------------------------------------ parameters */

static inline uint32_t lc__topk_key(float y)
{
    uint32_t u;
    memcpy(&u, &y, sizeof(u));
    return u & 0x7fffffffu;
}

/* k for a unit of len elements. */
static uint64_t lc__topk_k(const lc_codec_params_t *p, size_t len)
{
    if (len == 0) return 0;
    if (p->k > 0) return p->k < len ? p->k : len;
    double t = p->density * (double)len;
    if (!(t < (double)len)) return len;
    uint64_t k = (uint64_t)t;
    /* ceil, forgiving the last bits of the product: 0.07 * 100 is 7, not 8 */
    if ((double)k < t - 1e-9 * t) k++;
    if (k < 1) k = 1;
    return k < len ? k : len;
}

/* At most this many kept in a unit: approx keeps up to k + 10%. */
static uint64_t lc__topk_kmax(const lc_codec_params_t *p, size_t len)
{
    uint64_t k = lc__topk_k(p, len);
    if (p->flags & LC_CODEC_F_APPROX) k += k / 10;
    return k < len ? k : len;
}

static size_t lc__topk_max_nnz(const lc_codec_params_t *p, size_t count)
{
    if (p->block == 0 || count <= p->block) return (size_t)lc__topk_kmax(p, count);
    /* each term is at most its units' elements: no overflow */
    return (count / p->block) * (size_t)lc__topk_kmax(p, p->block) +
           (size_t)lc__topk_kmax(p, count % p->block);
}

static inline unsigned lc__topk_vlen(uint64_t v)
{
    return 1u + (unsigned)(63 - __builtin_clzll(v | 1)) / 7u;
}

static inline size_t lc__topk_bitmap_len(size_t count)
{
    return count / 8 + (count % 8 != 0);
}

static inline size_t lc__topk_sat_add(size_t a, size_t b)
{
    size_t r;
    return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}

static size_t lc__topk_max_body(const lc_codec_params_t *p, size_t count)
{
    size_t nnz = lc__topk_max_nnz(p, count);
    size_t idx = lc__topk_bitmap_len(count), vals, vmax;
    /* every varint is at most the length of count - 1 */
    if (!lc__mul_ok(nnz, lc__topk_vlen(count), &vmax)) vmax = SIZE_MAX;
    if (vmax < idx) idx = vmax;
    if (!lc__mul_ok(nnz, sizeof(float), &vals)) return SIZE_MAX;
    return lc__topk_sat_add(lc__topk_sat_add(LC_TOPK_HDR, idx), vals);
}

static lc_status_t lc__topk_check(lc_codec_params_t *p)
{
    if (p->flags & ~(uint32_t)LC_CODEC_F_APPROX) {
        lc_error("codec topk: option flags 0x%x are not topk's (only approx)", (unsigned)p->flags);
        return LC_ERR_INVALID_ARG;
    }
    /* Neither k nor density: the default density. */
    if (p->k == 0 && p->density == 0.0) p->density = 0.01;
    /* A density is checked whenever one is given, even when k overrides it. */
    if ((p->k == 0 || p->density != 0.0) && !(p->density > 0.0 && p->density <= 1.0)) {
        lc_error("codec topk: density %.9g is not in (0, 1]", p->density);
        return LC_ERR_INVALID_ARG;
    }
    return LC_OK;
}

/* ------------------------------------------------------------ radix select */

/* The bucket holding the *krem-th largest key (counting from the top bin); *krem becomes
 * its rank inside that bucket. Needs sum(h) >= *krem >= 1. */
static unsigned lc__topk_bucket(const size_t *h, unsigned nb, uint64_t *krem)
{
    uint64_t above = 0;
    unsigned b = nb - 1;
    while (b > 0 && above + h[b] < *krem) above += h[b--];
    *krem -= above;
    return b;
}

/*
 * The *krem-th largest of the n keys c[], which agree on every bit from top up: radix select
 * on the bits below top, most significant digit first, compacting c in place to the bucket
 * that holds it. Digits are as wide as the candidates are many (4 to 11 bits), so small sets
 * do not pay for big histograms. On return *krem is how many keys equal to the result are
 * among the krem largest: the ties to keep. Needs n >= *krem >= 1.
 */
static uint32_t lc__topk_refine(uint32_t *c, size_t n, unsigned top, uint64_t *krem)
{
    size_t h[1u << 11];
    while (top > 0 && n > 1) {
        if (*krem == 1 || *krem == n) { /* the largest or the smallest: no digits needed */
            uint32_t t = c[0];
            size_t ties = 0;
            for (size_t i = 1; i < n; i++)
                t = (*krem == 1) ? (c[i] > t ? c[i] : t) : (c[i] < t ? c[i] : t);
            for (size_t i = 0; i < n; i++) ties += c[i] == t;
            *krem = *krem == 1 ? 1 : ties;
            return t;
        }
        unsigned w = 64u - (unsigned)__builtin_clzll((uint64_t)n);
        w = LC_MIN(LC_MAX(w, 4u), 11u);
        w = LC_MIN(w, top);
        const unsigned sh = top - w, nb = 1u << w, mask = nb - 1;
        memset(h, 0, nb * sizeof(h[0]));
        for (size_t i = 0; i < n; i++) h[(c[i] >> sh) & mask]++;
        const unsigned b = lc__topk_bucket(h, nb, krem);
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t v = c[i];
            c[m] = v;
            m += ((v >> sh) & mask) == b;
        }
        n = m;
        top = sh;
    }
    return c[0];
}

/* ------------------------------------------------------------ passes (portable C) */

/*
 * Every pass reads x and, when e is non-NULL, computes y = x + e and stores it in e (one f32
 * add per element; the AVX2 variants do exactly the same). With e NULL, y = x.
 */

/* y, and a histogram of the top LC_TOPK_HBITS key bits into h[4][HBINS] (u32, n <= CHUNK). */
static void lc__topk_hist_c(const float *x, float *e, size_t n, uint32_t *h)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float y0 = x[i], y1 = x[i + 1], y2 = x[i + 2], y3 = x[i + 3];
        if (e) {
            y0 += e[i], y1 += e[i + 1], y2 += e[i + 2], y3 += e[i + 3];
            e[i] = y0, e[i + 1] = y1, e[i + 2] = y2, e[i + 3] = y3;
        }
        h[lc__topk_key(y0) >> LC_TOPK_HSHIFT]++;
        h[LC_TOPK_HBINS + (lc__topk_key(y1) >> LC_TOPK_HSHIFT)]++;
        h[2 * LC_TOPK_HBINS + (lc__topk_key(y2) >> LC_TOPK_HSHIFT)]++;
        h[3 * LC_TOPK_HBINS + (lc__topk_key(y3) >> LC_TOPK_HSHIFT)]++;
    }
    for (; i < n; i++) {
        float y = x[i];
        if (e) e[i] = y = y + e[i];
        h[lc__topk_key(y) >> LC_TOPK_HSHIFT]++;
    }
}

/* The keys among the n 32-bit words at src (f32 y, or keys: the sign bit is ignored) whose
 * bits from shift up equal b, in order; returns how many. out may be src (it never passes the
 * word being read). */
static size_t lc__topk_gather_c(const void *src, size_t n, unsigned shift, uint32_t b,
                                uint32_t *out)
{
    const uint8_t *p = src;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, sizeof(u));
        u &= 0x7fffffffu;
        if ((u >> shift) == b) out[m++] = u;
    }
    return m;
}

/* y, all its keys, and a histogram of their top 8 bits into h[4][256] (small units; four
 * copies so that runs of equal exponents do not serialize on one counter). */
static void lc__topk_keys_c(const float *x, float *e, size_t n, uint32_t *keys, uint32_t *h)
{
    for (size_t i = 0; i < n; i++) {
        float y = x[i];
        if (e) e[i] = y = y + e[i];
        keys[i] = lc__topk_key(y);
        h[(i & 3) * 256 + (keys[i] >> 23)]++;
    }
}

/* Emit y's keys > t and the first need keys == t (at most k in all): indices base + i,
 * values y[i]; e[i] = 0 for them when e is non-NULL (e may be y). Returns how many. */
static size_t lc__topk_emit_c(const float *y, float *e, size_t n, uint32_t t, uint64_t need,
                              uint64_t k, size_t base, uint64_t *idx, float *val)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = lc__topk_key(y[i]);
        if (u < t) continue;
        if (u == t) {
            if (need == 0) continue;
            need--;
        }
        idx[m] = base + i;
        val[m] = y[i];
        if (e) e[i] = 0.0f;
        if (++m == k) break;
    }
    return m;
}

/* approx: y, and every element with key >= t counted; the first cap of them recorded
 * (offset, y) with e[i] = 0 when e is non-NULL. Returns the count, *rec_p the recorded. */
static size_t lc__topk_scan_c(const float *x, float *e, size_t n, uint32_t t, size_t *cidx,
                              float *cval, size_t cap, size_t *rec_p)
{
    size_t c = 0, rec = 0;
    for (size_t i = 0; i < n; i++) {
        float y = x[i];
        if (e) e[i] = y = y + e[i];
        if (lc__topk_key(y) < t) continue;
        c++;
        if (rec < cap) {
            cidx[rec] = i;
            cval[rec++] = y;
            if (e) e[i] = 0.0f;
        }
    }
    *rec_p = rec;
    return c;
}

/* ------------------------------------------------------------ passes (AVX2) */

#if defined(__x86_64__)
#define LC_TOPK_AVX2 __attribute__((target("avx2")))

LC_TOPK_AVX2 static inline __m256 lc__topk_y8(const float *x, float *e, size_t i)
{
    __m256 y = _mm256_loadu_ps(x + i);
    if (e) {
        y = _mm256_add_ps(y, _mm256_loadu_ps(e + i));
        _mm256_storeu_ps(e + i, y);
    }
    return y;
}

LC_TOPK_AVX2 static inline __m256i lc__topk_key8(__m256 y)
{
    return _mm256_and_si256(_mm256_castps_si256(y), _mm256_set1_epi32(0x7fffffff));
}

/* Lanes whose key is >= t (t <= 0x7fffffff; keys are non-negative as int32). */
LC_TOPK_AVX2 static inline unsigned lc__topk_ge8(__m256i key, __m256i tm1)
{
    return (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(key, tm1)));
}

LC_TOPK_AVX2 static void lc__topk_hist_avx2(const float *x, float *e, size_t n, uint32_t *h)
{
    uint32_t d[8] __attribute__((aligned(32)));
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i b = _mm256_srli_epi32(lc__topk_key8(lc__topk_y8(x, e, i)), LC_TOPK_HSHIFT);
        _mm256_store_si256((__m256i *)d, b);
        h[d[0]]++;
        h[LC_TOPK_HBINS + d[1]]++;
        h[2 * LC_TOPK_HBINS + d[2]]++;
        h[3 * LC_TOPK_HBINS + d[3]]++;
        h[d[4]]++;
        h[LC_TOPK_HBINS + d[5]]++;
        h[2 * LC_TOPK_HBINS + d[6]]++;
        h[3 * LC_TOPK_HBINS + d[7]]++;
    }
    lc__topk_hist_c(x + i, e ? e + i : NULL, n - i, h);
}

/* Byte shuffles that pack the lanes set in a 4-bit mask to the front (lowest lane first). */
#define LC_TOPK_L(a) 4 * (a), 4 * (a) + 1, 4 * (a) + 2, 4 * (a) + 3
#define LC_TOPK_Z -128, -128, -128, -128
static const int8_t lc__topk_pack4[16][16] __attribute__((aligned(16))) = {
    { LC_TOPK_Z, LC_TOPK_Z, LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(0), LC_TOPK_Z, LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(1), LC_TOPK_Z, LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(0), LC_TOPK_L(1), LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(2), LC_TOPK_Z, LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(0), LC_TOPK_L(2), LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(1), LC_TOPK_L(2), LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(0), LC_TOPK_L(1), LC_TOPK_L(2), LC_TOPK_Z },
    { LC_TOPK_L(3), LC_TOPK_Z, LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(0), LC_TOPK_L(3), LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(1), LC_TOPK_L(3), LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(0), LC_TOPK_L(1), LC_TOPK_L(3), LC_TOPK_Z },
    { LC_TOPK_L(2), LC_TOPK_L(3), LC_TOPK_Z, LC_TOPK_Z },
    { LC_TOPK_L(0), LC_TOPK_L(2), LC_TOPK_L(3), LC_TOPK_Z },
    { LC_TOPK_L(1), LC_TOPK_L(2), LC_TOPK_L(3), LC_TOPK_Z },
    { LC_TOPK_L(0), LC_TOPK_L(1), LC_TOPK_L(2), LC_TOPK_L(3) },
};
#undef LC_TOPK_L
#undef LC_TOPK_Z

/*
 * Branch-free: each half of 8 keys is packed with one shuffle and stored whole (16 bytes at
 * out + m, then m advances by its popcount), so out needs 4 words of slack past the result;
 * when out is src the stores stay within the 8 words just loaded.
 */
LC_TOPK_AVX2 static size_t lc__topk_gather_avx2(const void *src, size_t n, unsigned shift,
                                                uint32_t b, uint32_t *out)
{
    const uint8_t *p = src;
    const __m256i vb = _mm256_set1_epi32((int)b), mask = _mm256_set1_epi32(0x7fffffff);
    const __m128i sh = _mm_cvtsi32_si128((int)shift);
    size_t m = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i key = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(p + 4 * i)), mask);
        __m256i eq = _mm256_cmpeq_epi32(_mm256_srl_epi32(key, sh), vb);
        unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(eq));
        __m128i lo = _mm256_castsi256_si128(key), hi = _mm256_extracti128_si256(key, 1);
        _mm_storeu_si128(
            (__m128i *)(out + m),
            _mm_shuffle_epi8(lo, _mm_load_si128((const __m128i *)lc__topk_pack4[bits & 15])));
        m += (size_t)__builtin_popcount(bits & 15);
        _mm_storeu_si128(
            (__m128i *)(out + m),
            _mm_shuffle_epi8(hi, _mm_load_si128((const __m128i *)lc__topk_pack4[bits >> 4])));
        m += (size_t)__builtin_popcount(bits >> 4);
    }
    return m + lc__topk_gather_c(p + 4 * i, n - i, shift, b, out + m);
}

/*
 * The compare-and-pick passes below test 32 elements per step and then walk the set bits of
 * one 32-bit mask: hits are rare (about k/n), and one unpredictable loop exit per 32 elements
 * costs far less than one per 8.
 */
LC_TOPK_AVX2 static void lc__topk_keys_avx2(const float *x, float *e, size_t n, uint32_t *keys,
                                            uint32_t *h)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_si256((__m256i *)(keys + i), lc__topk_key8(lc__topk_y8(x, e, i)));
        for (unsigned l = 0; l < 8; l++) h[(l & 3) * 256 + (keys[i + l] >> 23)]++;
    }
    lc__topk_keys_c(x + i, e ? e + i : NULL, n - i, keys + i, h);
}

LC_TOPK_AVX2 static size_t lc__topk_emit_avx2(const float *y, float *e, size_t n, uint32_t t,
                                              uint64_t need, uint64_t k, size_t base, uint64_t *idx,
                                              float *val)
{
    const __m256i tm1 = _mm256_set1_epi32((int)t - 1);
    size_t m = 0, i = 0;
    for (; i + 32 <= n; i += 32) {
        uint32_t bits = 0;
        for (unsigned q = 0; q < 4; q++)
            bits |= lc__topk_ge8(lc__topk_key8(_mm256_loadu_ps(y + i + 8 * q)), tm1) << (8 * q);
        for (; bits; bits &= bits - 1) {
            size_t j = i + (unsigned)__builtin_ctz(bits);
            if (lc__topk_key(y[j]) == t) {
                if (need == 0) continue;
                need--;
            }
            idx[m] = base + j;
            val[m] = y[j];
            if (e) e[j] = 0.0f;
            if (++m == k) return m;
        }
    }
    return m + lc__topk_emit_c(y + i, e ? e + i : NULL, n - i, t, need, k - m, base + i, idx + m,
                               val + m);
}

LC_TOPK_AVX2 static size_t lc__topk_scan_avx2(const float *x, float *e, size_t n, uint32_t t,
                                              size_t *cidx, float *cval, size_t cap, size_t *rec_p)
{
    const __m256i tm1 = _mm256_set1_epi32((int)t - 1);
    float yv[32] __attribute__((aligned(32)));
    size_t c = 0, rec = 0, i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 y[4];
        uint32_t bits = 0;
        for (unsigned q = 0; q < 4; q++) {
            y[q] = lc__topk_y8(x, e, i + 8 * q);
            bits |= lc__topk_ge8(lc__topk_key8(y[q]), tm1) << (8 * q);
        }
        if (bits == 0) continue;
        c += (size_t)__builtin_popcount(bits);
        for (unsigned q = 0; q < 4; q++) _mm256_store_ps(yv + 8 * q, y[q]);
        for (; bits && rec < cap; bits &= bits - 1) {
            unsigned l = (unsigned)__builtin_ctz(bits);
            cidx[rec] = i + l;
            cval[rec++] = yv[l];
            if (e) e[i + l] = 0.0f;
        }
    }
    size_t rec2 = 0;
    c += lc__topk_scan_c(x + i, e ? e + i : NULL, n - i, t, cidx + rec, cval + rec, cap - rec,
                         &rec2);
    for (size_t j = rec; j < rec + rec2; j++) cidx[j] += i;
    *rec_p = rec + rec2;
    return c;
}
#endif

/* ------------------------------------------------------------ encode */

typedef struct {
    lc_codec_work_t *w;
    uint64_t *idx; /* kept indices so far, increasing */
    float *val;    /* their values */
    size_t nnz;
    int avx2;
} lc__topk_enc_t;

static void lc__topk_hist(const lc__topk_enc_t *en, const float *x, float *e, size_t n, uint32_t *h)
{
#if defined(__x86_64__)
    if (en->avx2) {
        lc__topk_hist_avx2(x, e, n, h);
        return;
    }
#endif
    lc__topk_hist_c(x, e, n, h);
}

static size_t lc__topk_gather(const lc__topk_enc_t *en, const void *src, size_t n, unsigned shift,
                              uint32_t b, uint32_t *out)
{
#if defined(__x86_64__)
    if (en->avx2) return lc__topk_gather_avx2(src, n, shift, b, out);
#endif
    return lc__topk_gather_c(src, n, shift, b, out);
}

static void lc__topk_keys(const lc__topk_enc_t *en, const float *x, float *e, size_t n,
                          uint32_t *keys, uint32_t *h)
{
#if defined(__x86_64__)
    if (en->avx2) {
        lc__topk_keys_avx2(x, e, n, keys, h);
        return;
    }
#endif
    lc__topk_keys_c(x, e, n, keys, h);
}

static size_t lc__topk_emit(const lc__topk_enc_t *en, const float *y, float *e, size_t n,
                            uint32_t t, uint64_t need, uint64_t k, size_t base)
{
#if defined(__x86_64__)
    if (en->avx2)
        return lc__topk_emit_avx2(y, e, n, t, need, k, base, en->idx + en->nnz, en->val + en->nnz);
#endif
    return lc__topk_emit_c(y, e, n, t, need, k, base, en->idx + en->nnz, en->val + en->nnz);
}

static size_t lc__topk_scan(const lc__topk_enc_t *en, const float *x, float *e, size_t n,
                            uint32_t t, size_t *cidx, float *cval, size_t cap, size_t *rec_p)
{
#if defined(__x86_64__)
    if (en->avx2) return lc__topk_scan_avx2(x, e, n, t, cidx, cval, cap, rec_p);
#endif
    return lc__topk_scan_c(x, e, n, t, cidx, cval, cap, rec_p);
}

/* k >= len: every element goes. */
static void lc__topk_unit_all(lc__topk_enc_t *en, const float *x, float *e, size_t base, size_t len)
{
    uint64_t *idx = en->idx + en->nnz;
    float *val = en->val + en->nnz;
    for (size_t i = 0; i < len; i++) {
        float y = x[i];
        if (e) {
            y = y + e[i];
            e[i] = 0.0f;
        }
        idx[i] = base + i;
        val[i] = y;
    }
    en->nnz += len;
}

/*
 * Exact top-k of one unit (1 <= k < len). add: y = x + e is still to be computed (stored in
 * e); else y is already in e (or in x when e is NULL).
 */
static lc_status_t lc__topk_unit_exact(lc__topk_enc_t *en, const float *x, float *e, int add,
                                       size_t base, size_t len, uint64_t k)
{
    const float *in = (add || e == NULL) ? x : e;
    float *e_add = add ? e : NULL;
    const float *y = e ? e : x;
    uint64_t krem = k;
    uint32_t t;

    if (len <= LC_TOPK_SMALL) {
        uint32_t h32[4 * 256] = { 0 };
        size_t h[256] = { 0 };
        uint32_t *keys = lc__codec_work_get(en->w, LC_TOPK_W_CAND, len * sizeof(uint32_t));
        if (keys == NULL) return LC_ERR_NO_MEMORY;
        lc__topk_keys(en, in, e_add, len, keys, h32);
        for (unsigned b = 0; b < 256; b++)
            h[b] = (size_t)h32[b] + h32[256 + b] + h32[512 + b] + h32[768 + b];
        unsigned b = lc__topk_bucket(h, 256, &krem);
        size_t n = lc__topk_gather(en, keys, len, 23, b, keys);
        t = lc__topk_refine(keys, n, 23, &krem);
    } else {
        size_t h[LC_TOPK_HBINS] = { 0 };
        uint32_t *h32 =
            lc__codec_work_get(en->w, LC_TOPK_W_AUX, 4 * LC_TOPK_HBINS * sizeof(uint32_t));
        if (h32 == NULL) return LC_ERR_NO_MEMORY;
        for (size_t off = 0; off < len; off += LC_TOPK_CHUNK) {
            size_t n = LC_MIN(LC_TOPK_CHUNK, len - off);
            memset(h32, 0, 4 * LC_TOPK_HBINS * sizeof(uint32_t));
            lc__topk_hist(en, in + off, e_add ? e_add + off : NULL, n, h32);
            for (unsigned b = 0; b < LC_TOPK_HBINS; b++)
                h[b] += (size_t)h32[b] + h32[LC_TOPK_HBINS + b] + h32[2 * LC_TOPK_HBINS + b] +
                        h32[3 * LC_TOPK_HBINS + b];
        }
        unsigned b = lc__topk_bucket(h, LC_TOPK_HBINS, &krem);
        uint32_t *cand =
            lc__codec_work_get(en->w, LC_TOPK_W_CAND, (h[b] + 8) * sizeof(uint32_t)); /* slack */
        if (cand == NULL) return LC_ERR_NO_MEMORY;
        size_t n = lc__topk_gather(en, y, len, LC_TOPK_HSHIFT, b, cand);
        t = lc__topk_refine(cand, n, LC_TOPK_HSHIFT, &krem);
    }
    en->nnz += lc__topk_emit(en, y, e, len, t, krem, k, base);
    return LC_OK;
}

/* Uniform in [0, n) from the tensor's stream. */
static inline size_t lc__topk_below(uint64_t *rng, size_t n)
{
#if defined(__SIZEOF_INT128__)
    return (size_t)(((unsigned __int128)lc__codec_rand(rng) * n) >> 64);
#else
    return (size_t)(lc__codec_rand(rng) % n);
#endif
}

/*
 * Top-k of one large unit (k < len, len > LC_TOPK_SMALL) from a sampled threshold t: one
 * pass computes y and gathers every key >= t; then
 *  - approx: when their count is within k +- 10%, they are the answer;
 *  - when there are at least k of them (and they fit): the exact top k among them, which is
 *    the exact top k of the unit, since everything left out is below t;
 *  - else (too few, or too many to gather): the exact path over the unit.
 * approx takes the rank matching k in the sample, from the tensor's stream. exact takes a
 * rank a few standard deviations above it (so t is below the true threshold and about 1.1 k
 * are gathered), sampled from a fixed sequence: the result is exact whatever the sample, and
 * exact mode leaves the stream alone.
 */
static lc_status_t lc__topk_unit_large(lc__topk_enc_t *en, const float *x, float *e, uint64_t *rng,
                                       int approx, size_t base, size_t len, uint64_t k)
{
    /* The sample: one element per stratum of len / m. exact only needs a lower bound and
     * samples 1/400; approx wants ~1000 sample elements above its threshold, so that the
     * count lands within +-10% of k nearly always. */
    size_t m = len / (approx ? LC_TOPK_SAMPLE_DIV : 4 * LC_TOPK_SAMPLE_DIV);
    if (approx) m = LC_MIN(m, (size_t)LC_MIN((uint64_t)len, 1000 * (len / k)));
    m = LC_MIN(LC_MAX(m, (size_t)LC_TOPK_SAMPLE_MIN), len / 4);
    size_t stride = len / m;
    uint64_t fixed = 0x746f706b5f657861ull ^ len, *stream = approx ? rng : &fixed;
    uint32_t *keys = lc__codec_work_get(en->w, LC_TOPK_W_AUX, m * sizeof(uint32_t));
    if (keys == NULL) return LC_ERR_NO_MEMORY;
    for (size_t j0 = 0; j0 < m; j0 += 64) {
        /* positions first, so the cache misses overlap */
        size_t pos[64], nb = LC_MIN((size_t)64, m - j0);
        for (size_t j = 0; j < nb; j++) {
            pos[j] = (j0 + j) * stride + lc__topk_below(stream, stride);
            __builtin_prefetch(x + pos[j]);
            if (e) __builtin_prefetch(e + pos[j]);
        }
        for (size_t j = 0; j < nb; j++)
            keys[j0 + j] = lc__topk_key(e ? x[pos[j]] + e[pos[j]] : x[pos[j]]);
    }
    double mu = (double)k * (double)m / (double)len;
    uint64_t r = (uint64_t)(approx ? mu + 0.5 : mu + 4.0 * sqrt(mu) + 8.0);
    r = LC_MAX(r, 1);
    r = LC_MIN(r, m);
    uint32_t t = lc__topk_refine(keys, m, 31, &r);

    /* One pass: y, and every key >= t gathered (up to cap). */
    const uint64_t lo = k - k / 10, hi = k + k / 10;
    size_t cap = (size_t)LC_MIN((uint64_t)len, LC_MAX(2 * hi, hi + LC_TOPK_CAND_EXTRA)), rec;
    uint8_t *buf = lc__codec_work_get(en->w, LC_TOPK_W_CAND,
                                      cap * (sizeof(size_t) + sizeof(float) + sizeof(uint32_t)));
    if (buf == NULL) return LC_ERR_NO_MEMORY;
    size_t *cidx = (size_t *)buf;
    float *cval = (float *)(cidx + cap);
    uint32_t *ckey = (uint32_t *)(cval + cap);
    size_t c = lc__topk_scan(en, x, e, len, t, cidx, cval, cap, &rec);

    if (approx && c >= lo && c <= hi) {
        for (size_t j = 0; j < c; j++) {
            en->idx[en->nnz + j] = base + cidx[j];
            en->val[en->nnz + j] = cval[j];
        }
        en->nnz += c;
        return LC_OK;
    }
    if (c >= k && c <= cap) {
        for (size_t j = 0; j < c; j++) ckey[j] = lc__topk_key(cval[j]);
        uint64_t need = k;
        uint32_t t2 = lc__topk_refine(ckey, c, 31, &need);
        for (size_t j = 0; j < c; j++) {
            uint32_t u = lc__topk_key(cval[j]);
            if (u > t2 || (u == t2 && need > 0)) {
                need -= u == t2;
                en->idx[en->nnz] = base + cidx[j];
                en->val[en->nnz++] = cval[j];
            } else if (e) {
                e[cidx[j]] = cval[j]; /* not kept after all: y back in the residual */
            }
        }
        return LC_OK;
    }
    /* Too few (or far too many): y is in place again, then the exact path. */
    if (e)
        for (size_t j = 0; j < rec; j++) e[cidx[j]] = cval[j];
    return lc__topk_unit_exact(en, x, e, 0, base, len, k);
}

/* Write the body; returns its length (cap was checked against max_body_size). */
static size_t lc__topk_write(uint8_t *dst, const uint64_t *idx, const float *val, size_t nnz,
                             size_t count, const lc_codec_params_t *p)
{
    size_t vb = 0, bm = lc__topk_bitmap_len(count), l;
    for (size_t j = 0; j < nnz; j++) vb += lc__topk_vlen(j ? idx[j] - idx[j - 1] : idx[0]);
    int coding = vb <= bm ? LC_TOPK_VARINT : LC_TOPK_BITMAP;
    l = coding == LC_TOPK_VARINT ? vb : bm;

    dst[0] = (uint8_t)coding;
    dst[1] = (p->flags & LC_CODEC_F_APPROX) ? LC_TOPK_MODE_APPROX : 0;
    dst[2] = dst[3] = 0;
    lc__codec_put32(dst + 4, p->block);
    lc__codec_put64(dst + 8, nnz);
    lc__codec_put64(dst + 16, l);
    uint8_t *q = dst + LC_TOPK_HDR;
    if (coding == LC_TOPK_VARINT) {
        for (size_t j = 0; j < nnz; j++) {
            uint64_t d = j ? idx[j] - idx[j - 1] : idx[0];
            while (d >= 0x80) {
                *q++ = (uint8_t)(d | 0x80);
                d >>= 7;
            }
            *q++ = (uint8_t)d;
        }
    } else {
        memset(q, 0, bm);
        for (size_t j = 0; j < nnz; j++) q[idx[j] >> 3] |= (uint8_t)(1u << (idx[j] & 7));
        q += bm;
    }
    if (nnz) memcpy(q, val, nnz * sizeof(float));
    return LC_TOPK_HDR + l + nnz * sizeof(float);
}

static lc_status_t lc__topk_encode(const lc_codec_params_t *p, lc_codec_work_t *w, const float *src,
                                   float *residual, uint64_t *rng, size_t count, uint8_t *dst,
                                   size_t cap, size_t *len_p)
{
    lc__topk_enc_t en = { .w = w };
    size_t nmax = lc__topk_max_nnz(p, count), unit = p->block ? p->block : count;

    if (cap < lc__topk_max_body(p, count)) {
        lc_error("codec topk: %zu-byte buffer below the %zu-byte bound for %zu elements", cap,
                 lc__topk_max_body(p, count), count);
        return LC_ERR_INVALID_ARG;
    }
    en.idx = lc__codec_work_get(w, LC_TOPK_W_IDX, nmax * sizeof(uint64_t));
    en.val = lc__codec_work_get(w, LC_TOPK_W_VAL, nmax * sizeof(float));
    if (en.idx == NULL || en.val == NULL) return LC_ERR_NO_MEMORY;
#if defined(__x86_64__)
    en.avx2 = lc__codec_isa() == LC_CODEC_ISA_AVX2;
#endif
    for (size_t s = 0; s < count; s += unit) {
        size_t len = LC_MIN(unit, count - s);
        uint64_t k = lc__topk_k(p, len);
        float *e = residual ? residual + s : NULL;
        if (k >= len)
            lc__topk_unit_all(&en, src + s, e, s, len);
        else if (len > LC_TOPK_SMALL)
            LC_CHECK(lc__topk_unit_large(&en, src + s, e, rng, !!(p->flags & LC_CODEC_F_APPROX), s,
                                         len, k));
        else
            LC_CHECK(lc__topk_unit_exact(&en, src + s, e, 1, s, len, k));
    }
    *len_p = lc__topk_write(dst, en.idx, en.val, en.nnz, count, p);
    return LC_OK;
}

/* ------------------------------------------------------------ decode */

typedef struct {
    int coding;
    size_t nnz;
    size_t ilen;
    const uint8_t *isec; /* index section */
    const uint8_t *vals; /* nnz f32 */
} lc__topk_body_t;

#define LC_TOPK_BAD(...)                                                                           \
    do {                                                                                           \
        lc_error("codec topk: corrupt body: " __VA_ARGS__);                                        \
        return LC_ERR_CORRUPT;                                                                     \
    } while (0)

/* One LEB128 varint from [*pp, end): 0 when it runs off, overflows 64 bits or is not in
 * shortest form. */
static inline int lc__topk_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *pp;
    uint64_t r = 0;
    for (unsigned s = 0; s < 64 && q < end; s += 7) {
        uint8_t b = *q++;
        if (s == 63 && b > 1) return 0;
        r |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) {
            if (b == 0 && s > 0) return 0;
            *v = r;
            *pp = q;
            return 1;
        }
    }
    return 0;
}

/* Validate a whole body (header fields, lengths, every index) without writing anything. */
static lc_status_t lc__topk_open(const uint8_t *src, size_t len, size_t count, lc__topk_body_t *b)
{
    if (len < LC_TOPK_HDR) LC_TOPK_BAD("%zu bytes, below its %u-byte header", len, LC_TOPK_HDR);
    uint64_t nnz = lc__codec_get64(src + 8), ilen = lc__codec_get64(src + 16);
    size_t rest = len - LC_TOPK_HDR;
    if (src[0] > LC_TOPK_BITMAP || (src[1] & ~LC_TOPK_MODE_APPROX) || src[2] || src[3])
        LC_TOPK_BAD("coding %u, mode 0x%x, reserved 0x%02x%02x", src[0], src[1], src[3], src[2]);
    if (nnz > count || nnz > rest / sizeof(float) || ilen != rest - nnz * sizeof(float))
        LC_TOPK_BAD("%llu values and a %llu-byte index section in %zu bytes for %zu elements",
                    (unsigned long long)nnz, (unsigned long long)ilen, len, count);
    b->coding = src[0];
    b->nnz = (size_t)nnz;
    b->ilen = (size_t)ilen;
    b->isec = src + LC_TOPK_HDR;
    b->vals = b->isec + b->ilen;

    if (b->coding == LC_TOPK_VARINT) {
        const uint8_t *q = b->isec, *end = b->isec + b->ilen;
        uint64_t prev = 0, d;
        for (size_t j = 0; j < b->nnz; j++) {
            if (!lc__topk_varint(&q, end, &d)) LC_TOPK_BAD("bad varint for index %zu", j);
            if (j == 0 ? d >= count : (d == 0 || d > count - 1 - prev))
                LC_TOPK_BAD("index %zu: delta %llu after %llu is not increasing below %zu", j,
                            (unsigned long long)d, (unsigned long long)prev, count);
            prev = j == 0 ? d : prev + d;
        }
        if (q != end) LC_TOPK_BAD("%zu bytes after the last varint", (size_t)(end - q));
        return LC_OK;
    }
    if (b->ilen != lc__topk_bitmap_len(count))
        LC_TOPK_BAD("bitmap of %zu bytes for %zu elements", b->ilen, count);
    size_t pop = 0, i = 0;
    for (; i + 8 <= b->ilen; i += 8) {
        uint64_t v;
        memcpy(&v, b->isec + i, 8);
        pop += (size_t)__builtin_popcountll(v);
    }
    for (; i < b->ilen; i++) pop += (size_t)__builtin_popcount(b->isec[i]);
    if (count % 8 && (b->isec[b->ilen - 1] >> (count % 8)))
        LC_TOPK_BAD("bitmap bits set past element %zu", count);
    if (pop != b->nnz) LC_TOPK_BAD("bitmap holds %zu indices, header %zu", pop, b->nnz);
    return LC_OK;
}

static inline void lc__topk_put(float *dst, size_t i, const uint8_t *v, int acc)
{
    float f;
    memcpy(&f, v, sizeof(f));
    if (acc)
        dst[i] += f;
    else
        dst[i] = f;
}

/* Apply a validated body: dst[idx] = value (acc: +=). */
static void lc__topk_apply(const lc__topk_body_t *b, float *dst, int acc)
{
    const uint8_t *v = b->vals;
    if (b->coding == LC_TOPK_VARINT) {
        const uint8_t *q = b->isec;
        uint64_t i = 0, d = 0;
        for (size_t j = 0; j < b->nnz; j++, v += sizeof(float)) {
            lc__topk_varint(&q, b->isec + b->ilen, &d);
            i = j == 0 ? d : i + d;
            lc__topk_put(dst, (size_t)i, v, acc);
        }
        return;
    }
    for (size_t byte = 0; byte < b->ilen; byte += 8) {
        uint64_t word = 0;
        memcpy(&word, b->isec + byte, LC_MIN((size_t)8, b->ilen - byte));
        for (; word; word &= word - 1, v += sizeof(float))
            lc__topk_put(dst, byte * 8 + (size_t)__builtin_ctzll(word), v, acc);
    }
}

static lc_status_t lc__topk_decode(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                   float *dst, size_t count)
{
    lc__topk_body_t b;
    LC_CHECK(lc__topk_open(src, len, count, &b));
    if (count) memset(dst, 0, count * sizeof(float));
    lc__topk_apply(&b, dst, 0);
    return LC_OK;
}

static lc_status_t lc__topk_decode_acc(const lc_codec_params_t *p, const uint8_t *src, size_t len,
                                       float *acc, size_t count)
{
    lc__topk_body_t b;
    LC_CHECK(lc__topk_open(src, len, count, &b));
    lc__topk_apply(&b, acc, 1);
    return LC_OK;
}

const lc_codec_ops_t lc__codec_topk_ops = {
    .abi_version = LC_CODEC_ABI_VERSION,
    .id = LC_CODEC_TOPK,
    .name = "topk",
    .caps = LC_CODEC_CAP_LOSSY | LC_CODEC_CAP_EF | LC_CODEC_CAP_SUMMABLE,
    .elem = 0,
    .check = lc__topk_check,
    .max_body_size = lc__topk_max_body,
    .encode = lc__topk_encode,
    .decode = lc__topk_decode,
    .decode_accumulate = lc__topk_decode_acc,
};
