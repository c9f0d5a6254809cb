/*
 * The progress engine: one thread per communicator that sleeps in
 * epoll_wait and runs callbacks for ready file descriptors and a periodic
 * tick. It never spins: with 4 ranks on 2 cores a polling thread would steal
 * the core its peers need. Everything registered with one engine runs on its
 * thread, so transports and schedules need no locks among themselves.
 *
 * Registration (fd_add/mod/del, tick_add) is allowed before the thread starts
 * and, afterwards, only from the progress thread itself. Other threads talk to
 * it through their own eventfd registered here.
 */
#ifndef LC_CORE_PROGRESS_H
#define LC_CORE_PROGRESS_H

#include "laconic.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct lc_progress lc_progress_t;

/* Called with the epoll event bits (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP...). */
typedef void (*lc_progress_fd_cb_t)(void *arg, uint32_t events);
/* Called every tick with the current monotonic time. */
typedef void (*lc_progress_tick_cb_t)(void *arg, uint64_t now_ns);

/* An fd registration; owned by the engine, handed back to mod/del. */
typedef struct lc_progress_fd lc_progress_fd_t;

/* tick_ms: period of the tick callbacks (heartbeats, timeouts). */
lc_status_t lc__progress_create(uint32_t tick_ms, lc_progress_t **progress_p);
/* Stops the thread if running, then frees. fds must have been deleted. */
void lc__progress_destroy(lc_progress_t *progress);

/* Start the thread (name shows in top/gdb, at most 15 characters). */
lc_status_t lc__progress_start(lc_progress_t *progress, const char *name);
/* Ask the thread to exit and join it. Safe to call twice. */
void lc__progress_stop(lc_progress_t *progress);
/* True when called from the progress thread. */
bool lc__progress_on_thread(const lc_progress_t *progress);

lc_status_t lc__progress_fd_add(lc_progress_t *progress, int fd, uint32_t events,
                                lc_progress_fd_cb_t cb, void *arg, lc_progress_fd_t **h_p);
lc_status_t lc__progress_fd_mod(lc_progress_t *progress, lc_progress_fd_t *h, uint32_t events);
/* Does not close fd. Safe to call from inside h's own callback. */
void lc__progress_fd_del(lc_progress_t *progress, lc_progress_fd_t *h);

/* Up to 8 tick callbacks; run in registration order. */
lc_status_t lc__progress_tick_add(lc_progress_t *progress, lc_progress_tick_cb_t cb, void *arg);

/* Run one iteration on the calling thread (for single-threaded tests):
 * wait up to timeout_ms for events, dispatch them, run due ticks. */
void lc__progress_run_once(lc_progress_t *progress, int timeout_ms);

#endif
