/* Helpers shared by the collective benchmarks; see bench_util.h. */
#include "bench_util.h"

#ifdef LC_BENCH_MPI
#include <mpi.h>
#endif

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

int bench_rank;
const char *bench_prog = "lc-bench";

double bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s[%d]: ", bench_prog, bench_rank);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

size_t bench_parse_size(const char *s)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0) bench_die("bad size '%s'", s);
    switch (*end) {
    case 'k':
    case 'K':
        v *= 1024;
        end++;
        break;
    case 'm':
    case 'M':
        v *= 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        v *= 1024.0 * 1024 * 1024;
        end++;
        break;
    default: break;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end != '\0') bench_die("bad size '%s'", s);
    return (size_t)v;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int bench_under_mpirun(void)
{
    if (getenv("LC_COORD") != NULL) return 0;
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMI_SIZE") != NULL ||
           getenv("PMIX_RANK") != NULL;
}

void bench_json_str(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

void bench_json_num(FILE *f, const char *fmt, double v)
{
    if (!isfinite(v))
        fputs("null", f);
    else
        fprintf(f, fmt, v);
}

void bench_lc_max(lc_comm_t *comm, double *v, int n)
{
    lc_status_t st = lc_allreduce(v, v, (size_t)n, LC_FLOAT64, LC_MAX, comm, NULL);
    if (st != LC_OK) bench_die("allreduce of timings: %s", lc_status_str(st));
}

void bench_lc_barrier(lc_comm_t *comm)
{
    lc_status_t st = lc_barrier(comm);
    if (st != LC_OK) bench_die("barrier: %s", lc_status_str(st));
}

#ifdef LC_BENCH_MPI
void bench_mpi_max(double *v, int n)
{
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) bench_die("MPI_Allreduce of timings failed (%d)", rc);
}

void bench_mpi_barrier(void)
{
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) bench_die("MPI_Barrier failed (%d)", rc);
}
#endif

size_t bench_peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss / 1024;
}
