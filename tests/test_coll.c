/*
 * Algorithm selection (coll/select.c): the automatic choice by size and
 * rank count, each threshold honoured, forced algorithms checked against
 * the collective. And the span of a compressed all-reduce each rank keeps
 * a reducer residual for, per error-feedback scheme (coll/coll.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "codecs/codec.h"
#include "coll/coll.h"
#include "core/config.h"
#include "tests/mp.h"

static lc_algo_t pick(lc_coll_type_t type, size_t bytes, int nranks, const lc_config_t *cfg)
{
    lc_coll_args_t a = { .type = type, .count = bytes / 4, .dtype = LC_FLOAT32 };
    lc_algo_t algo = LC_ALGO_AUTO;
    assert_int_equal(lc__coll_select(&a, nranks, cfg, NULL, &algo), LC_OK);
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

/* A link measured as long (RTT >= LC_WAN_RTT_US) gets the ring above
 * LC_SMALL_BYTES on any rank count; a short one between hosts gets it above
 * LC_TREE_BYTES; ranks on one host, or an unknown link, keep the default. */
static void test_allreduce_long_haul(void **s)
{
    lc_config_t c = *lc__config_get();
    lc_coll_args_t a = { .type = LC_COLL_ALLREDUCE, .dtype = LC_FLOAT32 };
    lc_coll_link_t wan = { .rtt_us = 40000 }, lan = { .rtt_us = 60 }, edge = { .rtt_us = 250 };
    lc_coll_link_t local = { .rtt_us = 20, .one_host = 1 };
    lc_algo_t algo;
    (void)s;
    c.small_bytes = 16 << 10;
    c.tree_bytes = 256 << 10;
    c.ring_max_ranks = 2;
    c.wan_rtt_us = 250;
    const size_t sizes[] = { 8, 16 << 10, (16 << 10) + 4, 256 << 10, 64 << 20 };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        a.count = sizes[i] / 4;
        for (int n = 3; n <= 64; n *= 2) {
            lc_algo_t want_wan = sizes[i] <= (16 << 10) ? LC_ALGO_RECDBL : LC_ALGO_RING;
            assert_int_equal(lc__coll_select(&a, n, &c, &wan, &algo), LC_OK);
            assert_int_equal(algo, want_wan);
            assert_int_equal(lc__coll_select(&a, n, &c, &edge, &algo), LC_OK);
            assert_int_equal(algo, want_wan);
            assert_int_equal(lc__coll_select(&a, n, &c, &lan, &algo), LC_OK);
            assert_int_equal(algo, sizes[i] > (256 << 10)
                                       ? LC_ALGO_RING
                                       : pick(LC_COLL_ALLREDUCE, sizes[i], n, &c));
            assert_int_equal(lc__coll_select(&a, n, &c, &local, &algo), LC_OK);
            assert_int_equal(algo, pick(LC_COLL_ALLREDUCE, sizes[i], n, &c));
        }
    }
    /* LC_WAN_RTT_US=0 turns the long-link rule off (at 64 KiB a long link
     * between hosts then gets the tree); an unmeasured link turns both off. */
    a.count = (64 << 10) / 4;
    c.wan_rtt_us = 0;
    assert_int_equal(lc__coll_select(&a, 4, &c, &wan, &algo), LC_OK);
    assert_int_equal(algo, LC_ALGO_TREE);
    a.count = (64 << 20) / 4;
    assert_int_equal(lc__coll_select(&a, 4, &c, &wan, &algo), LC_OK);
    assert_int_equal(algo, LC_ALGO_RING);
    c.wan_rtt_us = 250;
    wan.rtt_us = 0;
    assert_int_equal(lc__coll_select(&a, 4, &c, &wan, &algo), LC_OK);
    assert_int_equal(algo, LC_ALGO_TREE);
}

static lc_algo_t pick_coded(lc_codec_t *codec, size_t count, int n, const lc_config_t *c,
                            const lc_coll_link_t *link)
{
    lc_coll_args_t a = { .type = LC_COLL_ALLREDUCE,
                         .count = count,
                         .dtype = LC_FLOAT32,
                         .codec = codec,
                         .chunk_bytes = 512 << 10 };
    lc_algo_t algo = LC_ALGO_AUTO;
    assert_int_equal(lc__coll_select(&a, n, c, link, &algo), LC_OK);
    return algo;
}

static lc_codec_t *make_codec(const char *spec)
{
    lc_codec_params_t p;
    lc_codec_t *codec = NULL;
    assert_int_equal(lc__codec_parse(spec, &p), LC_OK);
    assert_int_equal(lc__codec_create(&p, &codec), LC_OK);
    return codec;
}

/* Compressed all-reduce: sparse for topk while ranks x density is at most
 * LC_SPARSE_FILL_PCT percent (whatever the link); else the ring on long
 * links for codecs that compress less than 8x, the tree from
 * LC_CODED_TREE_RANKS ranks, two-phase below. */
static void test_coded_auto(void **s)
{
    lc_config_t c = *lc__config_get();
    lc_coll_link_t wan = { .rtt_us = 40000 }, lan = { .rtt_us = 60 };
    lc_codec_t *t1 = make_codec("topk:0.01"), *t05 = make_codec("topk:0.005");
    lc_codec_t *tk = make_codec("topk:k=100"), *ob = make_codec("onebit");
    lc_codec_t *i8 = make_codec("int8"), *bf = make_codec("bf16");
    const size_t count = 1 << 20;
    (void)s;
    c.wan_rtt_us = 250;
    c.coded_tree_ranks = 16;
    c.sparse_fill_pct = 2;
    assert_int_equal(pick_coded(t1, count, 2, &c, &lan), LC_ALGO_SPARSE);
    assert_int_equal(pick_coded(t1, count, 2, &c, &wan), LC_ALGO_SPARSE);
    assert_int_equal(pick_coded(t1, count, 3, &c, &lan), LC_ALGO_TWOPHASE);
    assert_int_equal(pick_coded(t1, count, 3, &c, &wan), LC_ALGO_TWOPHASE);
    assert_int_equal(pick_coded(t05, count, 4, &c, &lan), LC_ALGO_SPARSE);
    assert_int_equal(pick_coded(t05, count, 5, &c, &lan), LC_ALGO_TWOPHASE);
    /* k = 100 per encode: of 10000 elements 1%; of a 512 KiB chunk 0.076%
     * (whatever the buffer's size: each chunk is encoded on its own). */
    assert_int_equal(pick_coded(tk, 10000, 4, &c, &lan), LC_ALGO_TWOPHASE);
    assert_int_equal(pick_coded(tk, count, 26, &c, &lan), LC_ALGO_SPARSE);
    assert_int_equal(pick_coded(tk, count, 27, &c, &lan), LC_ALGO_TREE); /* >= 16 ranks */
    for (int n = 2; n <= 64; n *= 2) {
        assert_int_equal(pick_coded(ob, count, n, &c, &lan),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
        assert_int_equal(pick_coded(ob, count, n, &c, &wan),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
        /* Codecs that compress less than 8x: the ring on long links. */
        assert_int_equal(pick_coded(i8, count, n, &c, &wan), LC_ALGO_RING);
        assert_int_equal(pick_coded(bf, count, n, &c, &wan), LC_ALGO_RING);
        assert_int_equal(pick_coded(i8, count, n, &c, &lan),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
        assert_int_equal(pick_coded(ob, count, n, &c, NULL),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
    }
    /* A tiny buffer is judged by the codec, not by its headers. */
    assert_int_equal(pick_coded(ob, 16, 4, &c, &wan), LC_ALGO_TWOPHASE);
    assert_int_equal(pick_coded(i8, 16, 4, &c, &wan), LC_ALGO_RING);
    c.sparse_fill_pct = 0;
    assert_int_equal(pick_coded(t1, count, 2, &c, &lan), LC_ALGO_TWOPHASE);
    c.coded_tree_ranks = 4;
    assert_int_equal(pick_coded(ob, count, 4, &c, &lan), LC_ALGO_TREE);
    lc__codec_destroy(t1);
    lc__codec_destroy(t05);
    lc__codec_destroy(tk);
    lc__codec_destroy(ob);
    lc__codec_destroy(i8);
    lc__codec_destroy(bf);
}

/* Compressed all-reduce between hosts whose measured rate times the codec's
 * ratio is at most LC_CODED_RING_MBPS (the links limit, not the machines)
 * gets the ring, on short links as on long ones; a faster link, ranks on
 * one host, an unmeasured rate or LC_CODED_RING_MBPS=0 leave the choice to
 * the other rules. The links are those measured in README (Performance):
 * 250 and 1000 Mbit/s at 0.5 ms (dc), 1000 Mbit/s at 0.01 ms (veth), 10
 * Gbit/s (lan). */
static void test_coded_link_rate(void **s)
{
    lc_config_t c = *lc__config_get();
    lc_coll_link_t dc250 = { .rtt_us = 600, .mbps = 221 }, dc = { .rtt_us = 600, .mbps = 318 };
    lc_coll_link_t veth = { .rtt_us = 10, .mbps = 800 }, lan = { .rtt_us = 8, .mbps = 6000 };
    lc_coll_link_t local = { .rtt_us = 5, .mbps = 800, .one_host = 1 };
    lc_coll_link_t unmeasured = { .rtt_us = 10, .mbps = 0 };
    lc_codec_t *t1 = make_codec("topk:0.01"), *ob = make_codec("onebit");
    lc_codec_t *i8 = make_codec("int8"), *bf = make_codec("bf16");
    const size_t count = 1 << 24;
    (void)s;
    c.wan_rtt_us = 250;
    c.coded_tree_ranks = 16;
    c.sparse_fill_pct = 2;
    c.coded_ring_mbps = 8000;
    for (int n = 2; n <= 32; n *= 2) {
        /* onebit (31x): 221 x 31 <= 8000 < 318 x 31 (the probe's readings on dc). */
        assert_int_equal(pick_coded(ob, count, n, &c, &dc250), LC_ALGO_RING);
        assert_int_equal(pick_coded(ob, count, n, &c, &dc),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
        assert_int_equal(pick_coded(ob, count, n, &c, &veth),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
        /* int8 and bf16 on a short 1 Gbit/s link: the ring (two-phase on 10 Gbit/s). */
        assert_int_equal(pick_coded(i8, count, n, &c, &veth), LC_ALGO_RING);
        assert_int_equal(pick_coded(bf, count, n, &c, &veth), LC_ALGO_RING);
        assert_int_equal(pick_coded(i8, count, n, &c, &lan),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
        assert_int_equal(pick_coded(i8, count, n, &c, &local),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
        assert_int_equal(pick_coded(i8, count, n, &c, &unmeasured),
                         n >= 16 ? LC_ALGO_TREE : LC_ALGO_TWOPHASE);
    }
    /* topk 1% sends about 50x less: two-phase even at 220 Mbit/s; sparse on 2 ranks. */
    assert_int_equal(pick_coded(t1, count, 4, &c, &dc250), LC_ALGO_TWOPHASE);
    assert_int_equal(pick_coded(t1, count, 2, &c, &dc250), LC_ALGO_SPARSE);
    /* The line itself: rate x ratio at LC_CODED_RING_MBPS is the ring, 1 Mbit/s more is not. */
    size_t ce = (512u << 10) / sizeof(float);
    double ratio = (double)(ce * sizeof(float)) / (double)lc__codec_max_encoded_size(i8, ce);
    lc_coll_link_t edge = { .rtt_us = 10, .mbps = (uint32_t)(8000.0 / ratio) };
    assert_int_equal(pick_coded(i8, count, 4, &c, &edge), LC_ALGO_RING);
    edge.mbps++;
    assert_int_equal(pick_coded(i8, count, 4, &c, &edge), LC_ALGO_TWOPHASE);
    c.coded_ring_mbps = 0;
    assert_int_equal(pick_coded(i8, count, 4, &c, &veth), LC_ALGO_TWOPHASE);
    assert_int_equal(pick_coded(ob, count, 4, &c, &dc250), LC_ALGO_TWOPHASE);
    lc__codec_destroy(t1);
    lc__codec_destroy(ob);
    lc__codec_destroy(i8);
    lc__codec_destroy(bf);
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
    assert_int_equal(lc__coll_select(&a, 4, &c, NULL, &algo), LC_OK);
    assert_int_equal(algo, LC_ALGO_RECDBL);
    a.algo = LC_ALGO_CHAIN;
    assert_int_equal(lc__coll_select(&a, 4, &c, NULL, &algo), LC_ERR_UNSUPPORTED);
    a.type = LC_COLL_ALLGATHER;
    a.algo = LC_ALGO_TREE;
    assert_int_equal(lc__coll_select(&a, 4, &c, NULL, &algo), LC_ERR_UNSUPPORTED);
}

/* lc__coll_red_span: RESIDUAL keeps one for all a rank re-encodes; HOPS
 * none where every re-encode is of a complete sum (the two-phase owner, the
 * tree roots: rank 0 of tree 0, rank n-1 of its mirror), the rest as
 * RESIDUAL; a rank that re-encodes nothing (a tree leaf) keeps none. */
static void test_red_span(void **s)
{
    lc_codec_params_t p;
    lc_codec_t *codec = NULL;
    lc_coll_args_t a = { .type = LC_COLL_ALLREDUCE, .count = 1000, .dtype = LC_FLOAT32 };
    size_t off, cnt, own_off, own_cnt;
    const int n = 5;
    (void)s;
    assert_int_equal(lc__codec_parse("onebit", &p), LC_OK);
    assert_int_equal(lc__codec_create(&p, &codec), LC_OK);
    a.codec = codec;
    for (int r = 0; r < n; r++) {
        a.ef = LC_EF_RESIDUAL;
        lc__coll_red_span(&a, LC_ALGO_TWOPHASE, r, n, &off, &cnt);
        lc__coll_owned(&a, LC_ALGO_TWOPHASE, r, n, &own_off, &own_cnt);
        assert_int_equal(cnt, own_cnt);
        assert_int_equal(off, own_off);
        assert_true(cnt > 0);
        a.ef = LC_EF_HOPS;
        lc__coll_red_span(&a, LC_ALGO_TWOPHASE, r, n, &off, &cnt);
        assert_int_equal(cnt, 0);
        lc__coll_red_span(&a, LC_ALGO_RING, r, n, &off, &cnt);
        assert_int_equal(cnt, a.count); /* every segment passes it as a partial sum */
        lc__coll_red_span(&a, LC_ALGO_TREE, r, n, &off, &cnt);
        lc__coll_owned(&a, LC_ALGO_TREE, r, n, &own_off, &own_cnt);
        if (r == 0 || r == n - 1) {
            assert_true(own_cnt > 0); /* a root reduces its half, as a complete sum */
            assert_int_equal(cnt, 0);
        } else {
            assert_int_equal(cnt, own_cnt); /* an inner node (ranks 1, 2, 3 of 5) or a leaf */
            assert_int_equal(off, own_off);
        }
    }
    a.ef = LC_EF_HOPS;
    lc__coll_red_span(&a, LC_ALGO_TREE, 1, n, &off, &cnt);
    assert_true(cnt > 0); /* rank 1 is inner in tree 0 (children 3 and 4) */
    lc__codec_destroy(codec);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduce_auto), cmocka_unit_test(test_allreduce_long_haul),
        cmocka_unit_test(test_coded_auto),     cmocka_unit_test(test_coded_link_rate),
        cmocka_unit_test(test_other_auto),     cmocka_unit_test(test_forced),
        cmocka_unit_test(test_red_span),
    };
    /* Optional filter: test_coll '<shell pattern>' runs the matching tests. */
    return lc_mp_run_filtered("test_coll", tests, sizeof(tests) / sizeof(tests[0]),
                              argc > 1 ? argv[1] : NULL, NULL, NULL);
}
