/*
 * Reduction kernels. Plain loops over (dst, a, b) that gcc -O2 vectorizes
 * for the native types; f16 and bf16 go through f32 per element.
 *
 * Determinism: the result depends only on the operand values and their
 * order, never on the C library (MAX/MIN are written out, not fmax/fmin,
 * whose handling of NaN and signed zeros varies): max(a, b) = (b > a) ? b : a.
 * The comparison is false when either is NaN, so a NaN in a is kept and a
 * NaN in b never replaces a. Every rank that combines the same values in the
 * same order gets the same bits.
 */
#include "core/reduce.h"

#include <string.h>

float lc__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    float f;

    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13 | (man ? 0x400000u : 0); /* Inf / quiet NaN */
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t lc__f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;

    if (ax >= 0x7f800000u) /* Inf or NaN (NaN stays a quiet NaN) */
        return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0);
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* rounds to >= 65520: overflow */
    if (ax < 0x38800000u) {                      /* result is subnormal or zero */
        if (ax < 0x33000000u) return sign;       /* below half the smallest subnormal */
        uint32_t man = (ax & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(ax >> 23); /* 14..24 */
        uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t r = ax + 0xfff + ((ax >> 13) & 1); /* round to nearest even */
    return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

float lc__bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t lc__f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#define LC_RED_LOOP(T, EXPR)                                                                       \
    do {                                                                                           \
        T *d = dst;                                                                                \
        const T *x = a, *y = b;                                                                    \
        for (size_t i = 0; i < n; i++) {                                                           \
            T u = x[i], v = y[i];                                                                  \
            d[i] = (EXPR);                                                                         \
        }                                                                                          \
    } while (0)

#define LC_RED_ALL_OPS(T, UT)                                                                      \
    switch (op) {                                                                                  \
    case LC_SUM:                                                                                   \
    case LC_AVG: LC_RED_LOOP(T, (T)((UT)u + (UT)v)); break;                                        \
    case LC_PROD: LC_RED_LOOP(T, (T)((UT)u * (UT)v)); break;                                       \
    case LC_MAX: LC_RED_LOOP(T, v > u ? v : u); break;                                             \
    case LC_MIN: LC_RED_LOOP(T, v < u ? v : u); break;                                             \
    default: break;                                                                                \
    }

#define LC_RED_HALF(TO_F, FROM_F)                                                                  \
    do {                                                                                           \
        uint16_t *d = dst;                                                                         \
        const uint16_t *x = a, *y = b;                                                             \
        for (size_t i = 0; i < n; i++) {                                                           \
            float u = TO_F(x[i]), v = TO_F(y[i]), r;                                               \
            switch (op) {                                                                          \
            case LC_PROD: r = u * v; break;                                                        \
            case LC_MAX: r = v > u ? v : u; break;                                                 \
            case LC_MIN: r = v < u ? v : u; break;                                                 \
            default: r = u + v; break;                                                             \
            }                                                                                      \
            d[i] = FROM_F(r);                                                                      \
        }                                                                                          \
    } while (0)

void lc__reduce(void *dst, const void *a, const void *b, size_t n, lc_dtype_t dtype, lc_op_t op)
{
    switch (dtype) {
    case LC_FLOAT32: LC_RED_ALL_OPS(float, float); break;
    case LC_FLOAT64: LC_RED_ALL_OPS(double, double); break;
    case LC_INT32: LC_RED_ALL_OPS(int32_t, uint32_t); break;
    case LC_INT64: LC_RED_ALL_OPS(int64_t, uint64_t); break;
    case LC_UINT8: LC_RED_ALL_OPS(uint8_t, uint32_t); break;
    case LC_FLOAT16: LC_RED_HALF(lc__f16_to_f32, lc__f32_to_f16); break;
    case LC_BFLOAT16: LC_RED_HALF(lc__bf16_to_f32, lc__f32_to_bf16); break;
    default: break;
    }
}

void lc__reduce_div(void *buf, size_t n, lc_dtype_t dtype, int nranks)
{
    switch (dtype) {
    case LC_FLOAT32: {
        float *p = buf, k = (float)nranks;
        for (size_t i = 0; i < n; i++) p[i] /= k;
        break;
    }
    case LC_FLOAT64: {
        double *p = buf, k = (double)nranks;
        for (size_t i = 0; i < n; i++) p[i] /= k;
        break;
    }
    case LC_INT32: {
        int32_t *p = buf;
        for (size_t i = 0; i < n; i++) p[i] /= nranks;
        break;
    }
    case LC_INT64: {
        int64_t *p = buf;
        for (size_t i = 0; i < n; i++) p[i] /= nranks;
        break;
    }
    case LC_UINT8: {
        uint8_t *p = buf;
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(p[i] / (unsigned)nranks);
        break;
    }
    case LC_FLOAT16: {
        uint16_t *p = buf;
        for (size_t i = 0; i < n; i++) p[i] = lc__f32_to_f16(lc__f16_to_f32(p[i]) / (float)nranks);
        break;
    }
    case LC_BFLOAT16: {
        uint16_t *p = buf;
        for (size_t i = 0; i < n; i++)
            p[i] = lc__f32_to_bf16(lc__bf16_to_f32(p[i]) / (float)nranks);
        break;
    }
    default: break;
    }
}
