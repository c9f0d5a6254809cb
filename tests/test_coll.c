/*
 * Algorithm selection (coll/select.c): the automatic choice by size and
 * rank count, each threshold honoured, forced algorithms checked against
 * the collective.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "coll/coll.h"
#include "core/config.h"

static lc_algo_t pick(lc_coll_type_t type, size_t bytes, int nranks, const lc_config_t *cfg)
{
    lc_coll_args_t a = { .type = type, .count = bytes / 4, .dtype = LC_FLOAT32 };
    lc_algo_t algo = LC_ALGO_AUTO;
    assert_int_equal(lc__coll_select(&a, nranks, cfg, &algo), LC_OK);
    return algo;
}

static void test_allreduce_auto(void **s)
{
    lc_config_t c = *lc__config_get();
    (void)s;
    c.small_bytes = 16 << 10;
    c.tree_bytes = 256 << 10;
    c.ring_max_ranks = 2;
    for (int n = 2; n <= 8; n++) {
        assert_int_equal(pick(LC_COLL_ALLREDUCE, 8, n, &c), LC_ALGO_RECDBL);
        assert_int_equal(pick(LC_COLL_ALLREDUCE, 16 << 10, n, &c), LC_ALGO_RECDBL);
        assert_int_equal(pick(LC_COLL_ALLREDUCE, (16 << 10) + 4, n, &c), LC_ALGO_TREE);
        assert_int_equal(pick(LC_COLL_ALLREDUCE, 256 << 10, n, &c), LC_ALGO_TREE);
        /* Above LC_TREE_BYTES: the ring on at most LC_RING_MAX_RANKS ranks. */
        assert_int_equal(pick(LC_COLL_ALLREDUCE, 64 << 20, n, &c),
                         n <= 2 ? LC_ALGO_RING : LC_ALGO_TREE);
    }
    c.ring_max_ranks = 8;
    assert_int_equal(pick(LC_COLL_ALLREDUCE, 64 << 20, 8, &c), LC_ALGO_RING);
    assert_int_equal(pick(LC_COLL_ALLREDUCE, 64 << 20, 9, &c), LC_ALGO_TREE);
}

static void test_other_auto(void **s)
{
    lc_config_t c = *lc__config_get();
    (void)s;
    c.tree_bytes = 256 << 10;
    assert_int_equal(pick(LC_COLL_BROADCAST, 256 << 10, 4, &c), LC_ALGO_TREE);
    assert_int_equal(pick(LC_COLL_BROADCAST, 1 << 20, 4, &c), LC_ALGO_CHAIN);
    assert_int_equal(pick(LC_COLL_ALLGATHER, 1 << 20, 4, &c), LC_ALGO_RING);
    assert_int_equal(pick(LC_COLL_REDUCE_SCATTER, 8, 4, &c), LC_ALGO_RING);
    assert_int_equal(pick(LC_COLL_BARRIER, 0, 4, &c), LC_ALGO_RECDBL);
}

static void test_forced(void **s)
{
    lc_config_t c = *lc__config_get();
    lc_coll_args_t a = { .type = LC_COLL_ALLREDUCE, .count = 1 << 20, .dtype = LC_FLOAT32 };
    lc_algo_t algo;
    (void)s;
    a.algo = LC_ALGO_RECDBL;
    assert_int_equal(lc__coll_select(&a, 4, &c, &algo), LC_OK);
    assert_int_equal(algo, LC_ALGO_RECDBL);
    a.algo = LC_ALGO_CHAIN;
    assert_int_equal(lc__coll_select(&a, 4, &c, &algo), LC_ERR_UNSUPPORTED);
    a.type = LC_COLL_ALLGATHER;
    a.algo = LC_ALGO_TREE;
    assert_int_equal(lc__coll_select(&a, 4, &c, &algo), LC_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduce_auto),
        cmocka_unit_test(test_other_auto),
        cmocka_unit_test(test_forced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
