/*
 * Small helpers shared by the collective benchmarks (lc-bench, lc-overlap):
 * a monotonic clock, nccl-tests-style size parsing and a fatal-error exit
 * that names the rank. Only the public API is used, so they link against
 * the installed library like any user program.
 */
#ifndef LC_PERF_BENCH_UTIL_H
#define LC_PERF_BENCH_UTIL_H

#include <laconic.h>
#include <stdio.h>
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

/** Write s to f as a JSON string (quotes, backslashes and control bytes escaped), or null. */
void bench_json_str(FILE *f, const char *s);

/** Write v to f with fmt, or null when it is not finite (JSON has no NaN or inf). */
void bench_json_num(FILE *f, const char *fmt, double v);

/** Element-wise maximum over the ranks of comm, in place; dies on error. */
void bench_lc_max(lc_comm_t *comm, double *v, int n);

/** lc_barrier on comm; dies on error. */
void bench_lc_barrier(lc_comm_t *comm);

#ifdef LC_BENCH_MPI
/** Element-wise maximum over MPI_COMM_WORLD, in place; dies on error. */
void bench_mpi_max(double *v, int n);

/** MPI_Barrier on MPI_COMM_WORLD; dies on error. */
void bench_mpi_barrier(void);
#endif

/** Peak resident set size of this process in MiB. */
size_t bench_peak_rss_mib(void);

#endif
