/*
 * Test and benchmark data for the codecs, generated here so runs are
 * reproducible anywhere (same seed, same floats).
 *
 * Gaussian: N(0, 1) from a splitmix64 stream (Box-Muller).
 *
 * Gradient-like, the shape of a ReLU network's gradients: runs of exact
 * zeros (dead units; run lengths geometric, mean 32) alternate with runs of
 * values (mean 48), so about 40% of the elements are 0. Values are heavy
 * tailed: N(0, 1) times exp(N(0, 1)) (a log-normal scale mixture; kurtosis
 * far above a Gaussian's), times 1e-3, a typical gradient magnitude.
 */
#ifndef LC_PERF_DATAGEN_H
#define LC_PERF_DATAGEN_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LC_DATA_GAUSSIAN = 0, LC_DATA_GRADIENT = 1 } lc_data_kind_t;

/* Fill x[0..n) with data of kind from seed. */
void lc_datagen_fill(float *x, size_t n, lc_data_kind_t kind, uint64_t seed);
/* "gaussian" / "gradient". */
const char *lc_datagen_name(lc_data_kind_t kind);

#endif
