/*
 * Logging. One line per event on stderr, prefixed with the level, the rank
 * (once known) and the source location. The level comes from LC_LOG
 * (error|warn|info|debug|trace; default warn), read once by lc__config.
 */
#ifndef LC_CORE_LOG_H
#define LC_CORE_LOG_H

#include <stdarg.h>

typedef enum {
    LC_LOG_ERROR = 0,
    LC_LOG_WARN = 1,
    LC_LOG_INFO = 2,
    LC_LOG_DEBUG = 3,
    LC_LOG_TRACE = 4
} lc_log_level_t;

/* Current threshold; messages above it are dropped before formatting. */
extern int lc__log_level;

void lc__log_set_level(int level);
/* Rank shown in every line; -1 before the rank is known. Per process. */
void lc__log_set_rank(int rank);
void lc__log(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define lc__log_at(level, ...)                                                                     \
    do {                                                                                           \
        if ((level) <= lc__log_level) lc__log((level), __FILE__, __LINE__, __VA_ARGS__);           \
    } while (0)

#define lc_error(...) lc__log_at(LC_LOG_ERROR, __VA_ARGS__)
#define lc_warn(...) lc__log_at(LC_LOG_WARN, __VA_ARGS__)
#define lc_info(...) lc__log_at(LC_LOG_INFO, __VA_ARGS__)
#define lc_debug(...) lc__log_at(LC_LOG_DEBUG, __VA_ARGS__)
#define lc_trace(...) lc__log_at(LC_LOG_TRACE, __VA_ARGS__)

#endif
