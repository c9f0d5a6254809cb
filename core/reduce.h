/*
 * Element-wise reduction kernels for every datatype and operation. f16 and
 * bf16 are widened to f32, combined, and rounded back to nearest even.
 * Integer sum and product wrap (computed unsigned, no undefined behaviour).
 */
#ifndef LC_CORE_REDUCE_H
#define LC_CORE_REDUCE_H

#include "laconic.h"

#include <stddef.h>
#include <stdint.h>

/* dst[i] = a[i] (op) b[i]; dst may alias a or b; LC_AVG acts as LC_SUM. */
void lc__reduce(void *dst, const void *a, const void *b, size_t count, lc_dtype_t dtype,
                lc_op_t op);
/* buf[i] /= n (integer division for integer types). */
void lc__reduce_div(void *buf, size_t count, lc_dtype_t dtype, int n);

/* Conversions (round to nearest even; NaN stays NaN, Inf stays Inf). */
float lc__f16_to_f32(uint16_t h);
uint16_t lc__f32_to_f16(float f);
float lc__bf16_to_f32(uint16_t h);
uint16_t lc__f32_to_bf16(float f);

#endif
