/*
 * Small kernels shared by several codecs, with their AVX2 variants chosen
 * at run time (lc__codec_isa()). Every variant gives bit-identical results:
 * no FMA contraction, same operation order per element.
 */
#ifndef LC_CODECS_KERNELS_H
#define LC_CODECS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* acc[i] += src[i] for n f32 values; src may be unaligned (wire bytes). */
void lc__kern_add_f32(float *acc, const void *src, size_t n);

#endif
