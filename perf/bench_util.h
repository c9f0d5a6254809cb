/*
 * Small helpers shared by the collective benchmarks (lc-bench, lc-overlap):
 * a monotonic clock, nccl-tests-style size parsing and a fatal-error exit
 * that names the rank. Only the public API is used, so they link against
 * the installed library like any user program.
 */
#ifndef LC_PERF_BENCH_UTIL_H
#define LC_PERF_BENCH_UTIL_H

#include <stddef.h>

/** Rank printed by bench_die() (set it once the communicator exists). */
extern int bench_rank;

/** Monotonic time in microseconds. */
double bench_now_us(void);

/** Parse "64", "4K", "16M", "1G" (optionally followed by B); dies on bad input. */
size_t bench_parse_size(const char *s);

/** Print "PROG[rank]: message" to stderr and exit(1). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/** Program name bench_die() prints (default "lc-bench"). */
extern const char *bench_prog;

/** Median of v[0..n) (sorts v in place). */
double bench_median(double *v, int n);

/**
 * 1 when started by mpirun (Open MPI's or a PMI launcher's variables are set)
 * without a Laconic rendezvous (LC_COORD): the communicator then has to be
 * bootstrapped through MPI even when MPI is not a baseline.
 */
int bench_under_mpirun(void);

/** Peak resident set size of this process in MiB. */
size_t bench_peak_rss_mib(void);

#endif
