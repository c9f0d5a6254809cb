/*
 * Multi-process test harness: run a function in N forked ranks that find
 * each other the way lcrun sets them up (LC_RANK, LC_WORLD_SIZE, LC_COORD,
 * LC_COORD_FD for rank 0, LC_JOB_KEY), with a wall-clock limit. Every child
 * is killed and reaped before lc_mp_run returns, on success or failure.
 *
 * The parent must not call into liblaconic before forking: the library
 * reads its environment once per process, and each child sets its own.
 */
#ifndef LC_TESTS_MP_H
#define LC_TESTS_MP_H

#include <stddef.h>
#include <stdint.h>

/* Runs in each child; return 0 for success. */
typedef int (*lc_mp_fn_t)(int rank, int size, void *arg);

typedef struct {
    int exit_code[64]; /* per rank: exit status, or 128 + signal */
    int timed_out;
} lc_mp_result_t;

/*
 * Fork size ranks running fn(rank, size, arg) and wait for all of them, at
 * most timeout_s seconds (then SIGKILL all). extra_env: NULL-terminated
 * "K=V" strings set in every child, or NULL. Returns 0 when every rank
 * exited with 0; fills result if not NULL.
 */
int lc_mp_run(int size, lc_mp_fn_t fn, void *arg, int timeout_s, const char *const *extra_env,
              lc_mp_result_t *result);

/* Nonzero: lc_mp_run also starts a membership coordinator (lc_coord_create
 * in a process of its own, killed after the ranks end) and gives every rank
 * LC_COORDINATOR and LC_MP_COORD_PID (to kill it from a test). */
extern int lc_mp_with_coordinator;

/* Memory shared by the parent and all children (MAP_SHARED, zeroed). Map
 * before lc_mp_run; unmap with lc_mp_shared_free. */
void *lc_mp_shared(size_t bytes);
void lc_mp_shared_free(void *p, size_t bytes);

/* Number of open file descriptors and threads of this process. */
int lc_mp_count_fds(void);
int lc_mp_count_threads(void);

/* 64-bit FNV-1a of a buffer (result comparison across ranks). */
uint64_t lc_mp_hash(const void *buf, size_t len);

/* Monotonic time in seconds. */
double lc_mp_now(void);

/* Print a failure message prefixed with the rank and return 1. */
int lc_mp_fail(int rank, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Run the cmocka tests whose names match the shell pattern pattern (fnmatch:
 * "test_[nbu]*"), all of them when pattern is NULL. A pattern that matches
 * no test is an error (returns 1), so a mistyped filter cannot pass.
 * pattern "--list" prints the tests' names, one a line, and runs none.
 */
struct CMUnitTest;
int lc_mp_run_filtered(const char *group, const struct CMUnitTest *tests, size_t n,
                       const char *pattern, int (*setup)(void **), int (*teardown)(void **));

#endif
