/*
 * core/ tests: progress engine (fd dispatch, ticks, deletion from inside a
 * callback, a stop that does not hang), configuration parsing, status
 * strings. Single process; the progress thread makes it a threaded test.
 */
#include "core/config.h"
#include "core/progress.h"
#include "core/util.h"
#include "laconic.h"
#include "tests/mp.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    lc_progress_t *p;
    lc_progress_fd_t *h;
    int fd;
    atomic_int calls;
    int delete_self;
} fd_ctx_t;

static void on_fd(void *arg, uint32_t events)
{
    fd_ctx_t *c = arg;
    uint64_t v;
    assert_true(events & EPOLLIN);
    assert_int_equal(read(c->fd, &v, sizeof(v)), sizeof(v));
    atomic_fetch_add(&c->calls, 1);
    if (c->delete_self) lc__progress_fd_del(c->p, c->h);
}

static void on_tick(void *arg, uint64_t now)
{
    assert_true(now > 0);
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_progress_run_once(void **s)
{
    (void)s;
    lc_progress_t *p;
    fd_ctx_t c = { 0 };
    uint64_t one = 1;

    assert_int_equal(lc__progress_create(10, &p), LC_OK);
    c.p = p;
    c.fd = eventfd(0, EFD_NONBLOCK);
    assert_int_equal(lc__progress_fd_add(p, c.fd, EPOLLIN, on_fd, &c, &c.h), LC_OK);
    lc__progress_run_once(p, 0);
    assert_int_equal(atomic_load(&c.calls), 0);
    assert_int_equal(write(c.fd, &one, sizeof(one)), sizeof(one));
    lc__progress_run_once(p, 100);
    assert_int_equal(atomic_load(&c.calls), 1);
    assert_true(lc__progress_on_thread(p));
    /* Delete from inside the callback: later events must not reach it. */
    c.delete_self = 1;
    assert_int_equal(write(c.fd, &one, sizeof(one)), sizeof(one));
    lc__progress_run_once(p, 100);
    assert_int_equal(write(c.fd, &one, sizeof(one)), sizeof(one));
    lc__progress_run_once(p, 20);
    assert_int_equal(atomic_load(&c.calls), 2);
    close(c.fd);
    lc__progress_destroy(p);
}

static void test_progress_thread_ticks(void **s)
{
    (void)s;
    lc_progress_t *p;
    atomic_int ticks = 0;
    fd_ctx_t c = { 0 };
    uint64_t one = 1;

    assert_int_equal(lc__progress_create(10, &p), LC_OK);
    c.p = p;
    c.fd = eventfd(0, EFD_NONBLOCK);
    assert_int_equal(lc__progress_fd_add(p, c.fd, EPOLLIN, on_fd, &c, &c.h), LC_OK);
    assert_int_equal(lc__progress_tick_add(p, on_tick, &ticks), LC_OK);
    assert_int_equal(lc__progress_start(p, "test"), LC_OK);
    assert_false(lc__progress_on_thread(p));
    usleep(200 * 1000);
    int t = atomic_load(&ticks);
    /* About 20 ticks of 10 ms in 200 ms; allow a loaded machine. */
    assert_true(t >= 5 && t <= 40);
    assert_int_equal(write(c.fd, &one, sizeof(one)), sizeof(one));
    for (int i = 0; i < 100 && atomic_load(&c.calls) == 0; i++) usleep(1000);
    assert_int_equal(atomic_load(&c.calls), 1);
    lc__progress_stop(p);
    lc__progress_stop(p); /* twice is fine */
    lc__progress_fd_del(p, c.h);
    close(c.fd);
    lc__progress_destroy(p);
}

static void test_status_strings(void **s)
{
    (void)s;
    assert_string_equal(lc_status_str(LC_OK), "success");
    assert_string_equal(lc_status_str(LC_ERR_PEER_LOST), "peer lost");
    assert_string_equal(lc_status_str((lc_status_t)12345), "unknown status");
    /* Error codes, and only they, are errors (a peer's abort status is checked so). */
    for (int v = -100; v <= 10; v++) {
        int known = strcmp(lc_status_str((lc_status_t)v), "unknown status") != 0;
        assert_int_equal(lc__status_is_error((lc_status_t)v), known && v < 0);
    }
    assert_true(lc__status_is_error(LC_ERR_REJECTED) && lc__status_is_error(LC_ERR_INVALID_ARG));
    assert_false(lc__status_is_error(LC_OK) || lc__status_is_error(LC_INPROGRESS));
    assert_string_equal(lc_algo_str(LC_ALGO_RING), "ring");
    assert_string_equal(lc_algo_str((lc_algo_t)99), "unknown");
    assert_int_equal(lc_dtype_size(LC_BFLOAT16), 2);
    assert_int_equal(lc_dtype_size(LC_INT64), 8);
    assert_int_equal(lc_dtype_size((lc_dtype_t)77), 0);
    /* Status values are ABI: they never change. */
    assert_int_equal(LC_ERR_MISMATCH, -6);
    assert_int_equal(LC_ERR_PEER_LOST, -40);
    assert_int_equal(LC_ERR_REJECTED, -44);
    assert_int_equal(LC_ERR_REMOVED, -45);
}

static void test_algo_parse(void **s)
{
    (void)s;
    lc_algo_t a;
    assert_int_equal(lc__algo_parse("TREE", &a), LC_OK);
    assert_int_equal(a, LC_ALGO_TREE);
    assert_int_equal(lc__algo_parse("bogus", &a), LC_ERR_INVALID_ARG);
}

/* Runs before anything else reads the configuration (first test). */
static void test_config_env(void **s)
{
    (void)s;
    setenv("LC_CHUNK_BYTES", "2M", 1);
    setenv("LC_TCP_CONNS", "banana", 1); /* bad: default kept, warning logged */
    setenv("LC_ALGO", "ring", 1);
    setenv("LC_FAULT", "stop:1:7:4", 1);
    setenv("OMPI_COMM_WORLD_RANK", "3", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "8", 1);
    unsetenv("LC_RANK");
    unsetenv("LC_WORLD_SIZE");
    const lc_config_t *c = lc__config_get();
    assert_int_equal(c->chunk_bytes, 2u << 20);
    assert_int_equal(c->tcp_conns, 2);
    assert_int_equal(c->algo, LC_ALGO_RING);
    assert_int_equal(c->rank, 3);
    assert_int_equal(c->world_size, 8);
    assert_int_equal(c->peer_timeout_ms, 2000);
    assert_int_equal(c->fault_sig, SIGSTOP);
    assert_int_equal(c->fault_rank, 1);
    assert_true(c->fault_seq == 7);
    assert_int_equal(c->fault_msg, 4);
    assert_ptr_equal(lc__config_get(), c); /* parsed once */
}

static void test_random(void **s)
{
    (void)s;
    uint8_t a[32] = { 0 }, b[32] = { 0 };
    assert_int_equal(lc__random_bytes(a, sizeof(a)), LC_OK);
    assert_int_equal(lc__random_bytes(b, sizeof(b)), LC_OK);
    assert_memory_not_equal(a, b, sizeof(a));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_env),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_algo_parse),
        cmocka_unit_test(test_progress_run_once),
        cmocka_unit_test(test_progress_thread_ticks),
        cmocka_unit_test(test_random),
    };
    /* Optional filter: test_core '<shell pattern>' runs the matching tests. */
    return lc_mp_run_filtered("test_core", tests, sizeof(tests) / sizeof(tests[0]),
                              argc > 1 ? argv[1] : NULL, NULL, NULL);
}
