/*
 * Who drives a communicator's progress engine: its progress thread, or the
 * thread of a blocking call.
 *
 * The engine (epoll set, transport, schedule) has one owner at a time,
 * handed over under loop_lock:
 *
 *   - The progress thread owns it while a collective is queued or running
 *     that no caller drives (the non-blocking calls), sleeping in
 *     epoll_wait between events. Non-blocking calls therefore return at
 *     once and the caller's thread does no communication work.
 *   - When nothing is queued, the progress thread gives the engine up and
 *     sleeps on loop_cond, waking once per tick to run the engine for an
 *     instant (heartbeats, control frames, lost-peer detection, timeouts).
 *     Data that arrives meanwhile waits in the socket.
 *   - A blocking call that finds the engine free takes it, queues its
 *     collective without waking anybody, and runs the engine on its own
 *     thread until the collective completes, sleeping in epoll_wait like the
 *     progress thread would. This takes two thread wake-ups off every
 *     blocking call's critical path (caller to progress thread, progress
 *     thread back to the caller), which is most of a small all-reduce's
 *     latency on a machine with more threads than cores. A blocking call
 *     that finds the engine busy queues behind the running work and sleeps
 *     on its request, as a non-blocking call's lc_wait does.
 *
 * Nothing spins: every owner sleeps in epoll_wait or on a condition.
 */
#include "api/comm.h"
#include "core/util.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Work the progress thread must drive: a running or a queued collective. */
static int lc__driver_busy(lc_comm_t *comm)
{
    int busy;
    pthread_mutex_lock(&comm->lock);
    busy = comm->active != NULL || comm->waiting != NULL || comm->q_head != NULL;
    pthread_mutex_unlock(&comm->lock);
    return busy;
}

/* Sleep on loop_cond for at most one tick (loop_lock held). */
static void lc__driver_nap(lc_comm_t *comm)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* loop_cond runs on the monotonic clock */
    ts.tv_nsec += (long)comm->tick_ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&comm->loop_cond, &comm->loop_lock, &ts);
}

static void *lc__driver_main(void *arg)
{
    lc_comm_t *comm = arg;

    pthread_mutex_lock(&comm->loop_lock);
    while (!comm->loop_stop) {
        /* A caller owns the engine: it ticks while it runs; come back at the
         * next tick at the latest (a caller that hands the engine back with
         * nothing queued does not wake us), so the ticks go on when it is
         * done and the application computes. */
        if (comm->loop_owner != LC_LOOP_FREE) {
            lc__driver_nap(comm);
            continue;
        }
        comm->loop_owner = LC_LOOP_THREAD;
        pthread_mutex_unlock(&comm->loop_lock);
        /* Busy: sleep in epoll_wait (at most until the next tick). Idle: one
         * pass over whatever is ready, and the tick if it is due. */
        lc__progress_run_once(comm->progress, lc__driver_busy(comm) ? -1 : 0);
        pthread_mutex_lock(&comm->loop_lock);
        comm->loop_owner = LC_LOOP_FREE;
        if (!comm->loop_stop && !lc__driver_busy(comm)) lc__driver_nap(comm);
    }
    pthread_mutex_unlock(&comm->loop_lock);
    return NULL;
}

lc_status_t lc__driver_start(lc_comm_t *comm)
{
    int rc;

    pthread_condattr_t ca;

    pthread_mutex_init(&comm->loop_lock, NULL);
    /* Naps are timed on the monotonic clock: a wall-clock step back must not
     * silence the heartbeats. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&comm->loop_cond, &ca);
    pthread_condattr_destroy(&ca);
    comm->loop_owner = LC_LOOP_FREE;
    comm->loop_stop = 0;
    rc = pthread_create(&comm->loop_thread, NULL, lc__driver_main, comm);
    if (rc != 0) {
        lc_error("pthread_create: %s", strerror(rc));
        pthread_cond_destroy(&comm->loop_cond);
        pthread_mutex_destroy(&comm->loop_lock);
        return LC_ERR_SYSTEM;
    }
    pthread_setname_np(comm->loop_thread, "lc-progress");
    return LC_OK;
}

void lc__driver_stop(lc_comm_t *comm)
{
    uint64_t one = 1;

    pthread_mutex_lock(&comm->loop_lock);
    atomic_store(&comm->loop_stop, 1);
    pthread_cond_broadcast(&comm->loop_cond);
    pthread_mutex_unlock(&comm->loop_lock);
    /* Whoever is in epoll_wait (the progress thread, or a blocking call on
     * another thread) wakes up and sees loop_stop. */
    if (write(comm->wake_fd, &one, sizeof(one)) != sizeof(one))
        lc_error("waking the progress thread failed: %s", strerror(errno));
    pthread_join(comm->loop_thread, NULL);
    /* A blocking call on another thread gives the engine back and finishes
     * in lc_wait(), which lc_comm_destroy's lc__comm_fail_all completes
     * (LC_ERR_REVOKED). Nothing may touch the engine until it has. */
    pthread_mutex_lock(&comm->loop_lock);
    while (comm->loop_owner == LC_LOOP_CALLER)
        pthread_cond_wait(&comm->loop_cond, &comm->loop_lock);
    pthread_mutex_unlock(&comm->loop_lock);
    pthread_cond_destroy(&comm->loop_cond);
    pthread_mutex_destroy(&comm->loop_lock);
}

void lc__driver_kick(lc_comm_t *comm)
{
    uint64_t one = 1;

    /* Idle: it sleeps on loop_cond. Busy: in epoll_wait, woken by wake_fd. */
    pthread_mutex_lock(&comm->loop_lock);
    pthread_cond_signal(&comm->loop_cond);
    pthread_mutex_unlock(&comm->loop_lock);
    if (write(comm->wake_fd, &one, sizeof(one)) != sizeof(one))
        lc_error("waking the progress thread failed: %s", strerror(errno));
}

int lc__driver_acquire(lc_comm_t *comm)
{
    int got = 0;

    pthread_mutex_lock(&comm->loop_lock);
    if (comm->loop_owner == LC_LOOP_FREE && !comm->loop_stop) {
        comm->loop_owner = LC_LOOP_CALLER;
        got = 1;
    }
    pthread_mutex_unlock(&comm->loop_lock);
    return got;
}

void lc__driver_run_until_done(lc_comm_t *comm, lc_request_t *req)
{
    lc__comm_pump(comm);
    while (atomic_load_explicit(&req->state, memory_order_acquire) != LC_REQ_DONE &&
           !atomic_load(&comm->loop_stop))
        lc__progress_run_once(comm->progress, -1);
    lc__driver_release(comm);
}

void lc__driver_release(lc_comm_t *comm)
{
    /* Hand the engine back. The progress thread is woken only if other
     * threads queued work meanwhile (their kick found the engine taken):
     * waking it for nothing would cost a context switch per call, and it
     * could take the engine just before this thread's next call wants it. */
    pthread_mutex_lock(&comm->loop_lock);
    /* Checked under loop_lock: a kick that found the engine taken cannot
     * slip in between the check and the hand-back. */
    int wake = lc__driver_busy(comm) || atomic_load(&comm->loop_stop);
    comm->loop_owner = LC_LOOP_FREE;
    if (wake) pthread_cond_broadcast(&comm->loop_cond);
    pthread_mutex_unlock(&comm->loop_lock);
}
