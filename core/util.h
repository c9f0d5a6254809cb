/*
 * Small helpers shared by every layer: the error-handling idiom, time,
 * arithmetic that must not overflow.
 */
#ifndef LC_CORE_UTIL_H
#define LC_CORE_UTIL_H

#include "laconic.h"
#include "core/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Propagate a non-OK status. */
#define LC_CHECK(call)                                                                             \
    do {                                                                                           \
        lc_status_t lc__st = (call);                                                               \
        if (lc__st != LC_OK) return lc__st;                                                        \
    } while (0)

/* Store a non-OK status in st and jump to an unwind label named for what it undoes. */
#define LC_CHECK_GOTO(call, st, label)                                                             \
    do {                                                                                           \
        (st) = (call);                                                                             \
        if ((st) != LC_OK) goto label;                                                             \
    } while (0)

#define LC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define LC_DIV_UP(a, b) (((a) + (b)-1) / (b))
#define LC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock in nanoseconds. */
static inline uint64_t lc__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* a * b into *out; false on overflow. */
static inline bool lc__mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Fill buf with len bytes from the kernel's random source; LC_ERR_SYSTEM on failure. */
lc_status_t lc__random_bytes(void *buf, size_t len);

/* 1 if status is one of lc_status_t's error codes (core/status.c), else 0
 * (LC_OK, LC_INPROGRESS, or a value no code has). */
int lc__status_is_error(lc_status_t status);

#endif
