/*
 * Logging to stderr. Each line is formatted into one buffer and written with
 * a single write(2), so lines from the progress thread and the caller's
 * thread (and from several ranks sharing a terminal) do not interleave.
 */
#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int lc__log_level = LC_LOG_WARN;
static int lc__log_rank = -1;

static const char *const lc__log_names[] = { "ERROR", "WARN", "INFO", "DEBUG", "TRACE" };

void lc__log_set_level(int level)
{
    lc__log_level = level;
}

void lc__log_set_rank(int rank)
{
    lc__log_rank = rank;
}

void lc__log(int level, const char *file, int line, const char *fmt, ...)
{
    char buf[1024];
    const char *base = strrchr(file, '/');
    struct timespec ts;
    size_t n;
    va_list ap;
    int k;

    if (level < 0) level = 0;
    if (level > LC_LOG_TRACE) level = LC_LOG_TRACE;
    clock_gettime(CLOCK_REALTIME, &ts);
    k = snprintf(buf, sizeof(buf), "[laconic %ld.%06ld rank %d %s %s:%d] ", (long)ts.tv_sec,
                 ts.tv_nsec / 1000, lc__log_rank, lc__log_names[level], base ? base + 1 : file,
                 line);
    n = (k < 0) ? 0 : (size_t)k;
    if (n > sizeof(buf) - 2) n = sizeof(buf) - 2;
    va_start(ap, fmt);
    k = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
    va_end(ap);
    if (k > 0) n += (size_t)k;
    if (n > sizeof(buf) - 2) n = sizeof(buf) - 2;
    buf[n++] = '\n';
    /* Best effort: a failed log write has nowhere to be reported. */
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}
