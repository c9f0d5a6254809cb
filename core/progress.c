/*
 * Progress engine: epoll_wait + a periodic tick, on one thread.
 *
 * The thread blocks in epoll_wait until an fd is ready or the next tick is
 * due, so an idle communicator costs no CPU. Callbacks may delete fds
 * (their own included) while a batch of events is being dispatched: deleted
 * registrations are only marked and freed after the batch, so a stale event
 * in the same batch is ignored instead of touching freed memory.
 */
#include "core/progress.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LC_PROGRESS_MAX_TICKS 8
#define LC_PROGRESS_BATCH 64

struct lc_progress_fd {
    int fd;
    int deleted;
    lc_progress_fd_cb_t cb;
    void *arg;
    struct lc_progress_fd *next_dead;
};

typedef struct {
    lc_progress_tick_cb_t cb;
    void *arg;
} lc_progress_tick_t;

struct lc_progress {
    int epfd;
    int stop_fd; /* eventfd that wakes the thread to exit */
    uint32_t tick_ms;
    uint64_t next_tick_ns;
    lc_progress_tick_t ticks[LC_PROGRESS_MAX_TICKS];
    int nticks;
    struct lc_progress_fd *dead; /* deleted during dispatch; freed after the batch */
    int dispatching;
    pthread_t thread;
    int started;
    atomic_int stop;
    atomic_int have_owner;
    pthread_t owner; /* the thread that runs the loop */
};

lc_status_t lc__progress_create(uint32_t tick_ms, lc_progress_t **progress_p)
{
    lc_progress_t *p = calloc(1, sizeof(*p));
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

    if (p == NULL) return LC_ERR_NO_MEMORY;
    p->tick_ms = tick_ms ? tick_ms : 100;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        lc_error("epoll_create1: %s", strerror(errno));
        free(p);
        return LC_ERR_SYSTEM;
    }
    p->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->stop_fd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->stop_fd, &ev) != 0) {
        lc_error("eventfd/epoll_ctl: %s", strerror(errno));
        if (p->stop_fd >= 0) close(p->stop_fd);
        close(p->epfd);
        free(p);
        return LC_ERR_SYSTEM;
    }
    p->next_tick_ns = lc__now_ns() + (uint64_t)p->tick_ms * 1000000ull;
    *progress_p = p;
    return LC_OK;
}

static void lc__progress_free_dead(lc_progress_t *p)
{
    while (p->dead != NULL) {
        struct lc_progress_fd *h = p->dead;
        p->dead = h->next_dead;
        free(h);
    }
}

void lc__progress_destroy(lc_progress_t *p)
{
    if (p == NULL) return;
    lc__progress_stop(p);
    lc__progress_free_dead(p);
    close(p->stop_fd);
    close(p->epfd);
    free(p);
}

lc_status_t lc__progress_fd_add(lc_progress_t *p, int fd, uint32_t events, lc_progress_fd_cb_t cb,
                                void *arg, lc_progress_fd_t **h_p)
{
    struct lc_progress_fd *h = calloc(1, sizeof(*h));
    struct epoll_event ev;

    if (h == NULL) return LC_ERR_NO_MEMORY;
    h->fd = fd;
    h->cb = cb;
    h->arg = arg;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = h;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        lc_error("epoll_ctl(ADD, fd %d): %s", fd, strerror(errno));
        free(h);
        return LC_ERR_SYSTEM;
    }
    *h_p = h;
    return LC_OK;
}

lc_status_t lc__progress_fd_mod(lc_progress_t *p, lc_progress_fd_t *h, uint32_t events)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = h;
    if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, h->fd, &ev) != 0) {
        lc_error("epoll_ctl(MOD, fd %d): %s", h->fd, strerror(errno));
        return LC_ERR_SYSTEM;
    }
    return LC_OK;
}

void lc__progress_fd_del(lc_progress_t *p, lc_progress_fd_t *h)
{
    if (h == NULL || h->deleted) return;
    /* Fails only if fd was already closed, which also removed it. */
    (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, h->fd, NULL);
    h->deleted = 1;
    h->next_dead = p->dead;
    p->dead = h;
    if (!p->dispatching) lc__progress_free_dead(p);
}

lc_status_t lc__progress_tick_add(lc_progress_t *p, lc_progress_tick_cb_t cb, void *arg)
{
    if (p->nticks == LC_PROGRESS_MAX_TICKS) return LC_ERR_NO_MEMORY;
    p->ticks[p->nticks].cb = cb;
    p->ticks[p->nticks].arg = arg;
    p->nticks++;
    return LC_OK;
}

static void lc__progress_iterate(lc_progress_t *p, int max_wait_ms)
{
    struct epoll_event evs[LC_PROGRESS_BATCH];
    uint64_t now = lc__now_ns();
    int wait_ms, n;

    wait_ms = (p->next_tick_ns > now) ? (int)LC_DIV_UP(p->next_tick_ns - now, 1000000ull) : 0;
    if (max_wait_ms >= 0 && max_wait_ms < wait_ms) wait_ms = max_wait_ms;
    n = epoll_wait(p->epfd, evs, LC_PROGRESS_BATCH, wait_ms);
    if (n < 0 && errno != EINTR) lc_error("epoll_wait: %s", strerror(errno));
    p->dispatching = 1;
    for (int i = 0; i < n; i++) {
        struct lc_progress_fd *h = evs[i].data.ptr;
        if (h == NULL) {
            uint64_t v;
            ssize_t r = read(p->stop_fd, &v, sizeof(v));
            (void)r;
            continue;
        }
        if (!h->deleted) h->cb(h->arg, evs[i].events);
    }
    now = lc__now_ns();
    if (now >= p->next_tick_ns) {
        p->next_tick_ns = now + (uint64_t)p->tick_ms * 1000000ull;
        for (int i = 0; i < p->nticks; i++) p->ticks[i].cb(p->ticks[i].arg, now);
    }
    p->dispatching = 0;
    lc__progress_free_dead(p);
}

void lc__progress_run_once(lc_progress_t *p, int timeout_ms)
{
    if (!atomic_load(&p->have_owner)) {
        p->owner = pthread_self();
        atomic_store(&p->have_owner, 1);
    }
    lc__progress_iterate(p, timeout_ms);
}

static void *lc__progress_main(void *arg)
{
    lc_progress_t *p = arg;

    while (!atomic_load_explicit(&p->stop, memory_order_acquire)) lc__progress_iterate(p, -1);
    return NULL;
}

lc_status_t lc__progress_start(lc_progress_t *p, const char *name)
{
    int rc;

    atomic_store(&p->stop, 0);
    rc = pthread_create(&p->thread, NULL, lc__progress_main, p);
    if (rc != 0) {
        lc_error("pthread_create: %s", strerror(rc));
        return LC_ERR_SYSTEM;
    }
    p->owner = p->thread;
    atomic_store(&p->have_owner, 1);
    p->started = 1;
    if (name != NULL) {
        char n[16];
        snprintf(n, sizeof(n), "%s", name);
        pthread_setname_np(p->thread, n);
    }
    return LC_OK;
}

void lc__progress_stop(lc_progress_t *p)
{
    uint64_t one = 1;

    if (!p->started) return;
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    if (write(p->stop_fd, &one, sizeof(one)) != sizeof(one)) lc_error("eventfd write failed");
    pthread_join(p->thread, NULL);
    p->started = 0;
    atomic_store(&p->have_owner, 0);
}

bool lc__progress_on_thread(const lc_progress_t *p)
{
    return atomic_load(&((lc_progress_t *)p)->have_owner) &&
           pthread_equal(pthread_self(), p->owner);
}
