/* Codec test and benchmark data (see datagen.h). */
#include "datagen.h"

#include <math.h>

static uint64_t lc__dg_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double lc__dg_unit(uint64_t *s)
{
    return ((double)(lc__dg_next(s) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static double lc__dg_normal(uint64_t *s)
{
    return sqrt(-2.0 * log(lc__dg_unit(s))) * cos(6.283185307179586 * lc__dg_unit(s));
}

/* Geometric run length with the given mean (>= 1). */
static size_t lc__dg_run(uint64_t *s, double mean)
{
    return 1 + (size_t)(-log(lc__dg_unit(s)) * (mean - 1.0));
}

void lc_datagen_fill(float *x, size_t n, lc_data_kind_t kind, uint64_t seed)
{
    uint64_t s = seed * 0x2545f4914f6cdd1dull + 1;
    if (kind == LC_DATA_GAUSSIAN) {
        for (size_t i = 0; i < n; i++) x[i] = (float)lc__dg_normal(&s);
        return;
    }
    size_t i = 0;
    int zeros = (int)(lc__dg_next(&s) & 1);
    while (i < n) {
        size_t len = lc__dg_run(&s, zeros ? 32.0 : 48.0);
        for (size_t j = 0; j < len && i < n; j++, i++)
            x[i] = zeros ? 0.0f : (float)(1e-3 * lc__dg_normal(&s) * exp(lc__dg_normal(&s)));
        zeros = !zeros;
    }
}

const char *lc_datagen_name(lc_data_kind_t kind)
{
    return kind == LC_DATA_GAUSSIAN ? "gaussian" : "gradient";
}
