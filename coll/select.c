/*
 * Algorithm selection. The choice depends only on the arguments, the rank
 * count and the configuration, so every rank makes the same one (and the
 * algorithm is part of every message's signature, so ranks configured
 * differently get LC_ERR_MISMATCH rather than a deadlock).
 *
 * All-reduce: recursive doubling at or below LC_SMALL_BYTES (log2(n) steps,
 * latency-bound sizes), the double binary tree up to LC_TREE_BYTES (2 log2(n)
 * hops but pipelined, and no rank sends more than twice its data), and above
 * it the ring (2(n-1)/n of the data per rank, but 2(n-1) dependent steps) on
 * communicators of at most LC_RING_MAX_RANKS ranks, the tree on larger ones.
 * The default of 2 comes from runs with every rank on one host: there the
 * pipelined tree was ahead of the ring on 3, 4 and 8 ranks from 4 to 16 MiB
 * and level or ahead at 64 MiB, and the ring won on 2 (measured:
 * docs/performance.md, "On loopback"). Between hosts see below. Broadcast: the
 * binary tree up to LC_TREE_BYTES, the pipelined chain above (each link
 * carries the data once). All-gather and reduce-scatter: the ring. Barrier:
 * dissemination whatever is asked.
 *
 * Long links change the all-reduce answer. When the round trip measured at
 * set-up (the largest between any two ranks) is at least LC_WAN_RTT_US, the
 * machine is no longer what limits: the wire is, and the ring moves the
 * least data per rank (2(n-1)/n) with every receive posted up front, so it
 * streams at the link rate after a pipeline fill of 2(n-1) one-way delays.
 * The tree reduces into a few scratch slots per child, so on a long link
 * its children outrun the posted receives and the stream stalls on the round
 * trip. And two children sending to one parent at once overflow a shallow
 * switch queue: each tail drop then waits for a 200 ms retransmission
 * timeout, while the ring sends each host's data to one neighbour and no
 * queue sees two senders. At 64 MiB on 4 hosts, on the wan links (40 ms)
 * and on the dc links (1 Gbit/s, 0.5 ms, shallow queues; the scenarios are
 * perf/scenarios/), the tree took many times the ring's time
 * (measured: docs/performance.md). So above LC_SMALL_BYTES long links get
 * the ring, whatever the rank count.
 *
 * Ranks on several hosts (the transport compares each connection's two
 * addresses at set-up) get the ring above LC_TREE_BYTES even on a short
 * link: the ring wins between hosts because each tree parent takes two
 * children's streams through one link of the same rate, whatever the round
 * trip. On veth links shaped by tbf with a negligible round trip, 4 and 8
 * hosts, the ring was ahead of the tree at every size above LC_TREE_BYTES
 * that was tried, or level with it (measured: docs/performance.md, "Between
 * hosts"). LC_RING_MAX_RANKS decides only when every rank is on one host
 * (or the link is unknown). Many hosts were not measurable here; the ring's
 * 2(n-1) hops will cost there.
 *
 * Compressed all-reduce: two-phase (every rank's segments straight to
 * their owners, two encodes per element, two dependent hops), except on
 * long links for codecs that compress less than LC_CODED_RING_RATIO (8x:
 * int8, fp16, bf16, zstd), which get the compressed ring. Two-phase has n-1
 * senders converging on every receiver; with those codecs' large messages
 * that incast overflows a shallow switch queue: on the dc links the ring
 * beat two-phase for int8 and bf16, and on wan for int8. Onebit and topk
 * send 31-75x less: their messages are small, the queue holds them, and
 * the ring's 2(n-1) dependent hops cost more than the incast, so two-phase
 * won for both on dc and wan, and for every codec on loopback (measured:
 * docs/performance.md, "Which compressed all-reduce").
 *
 * The link rate measured at set-up (transport/tcp/tcp_probe.c) moves that
 * line: between hosts, a link that carries at most LC_CODED_RING_MBPS (8000)
 * Mbit/s of uncompressed data (its rate times the codec's ratio) gives the
 * ring to every codec (after the sparse rule for topk), whatever the round
 * trip. There the wire, not the encoders, sets the pace: two-phase's
 * converging senders share each receiver's link while the ring streams one
 * sender into each, and the ring's extra re-encodes cost time the link
 * would have made them wait anyway. Ring against two-phase on 4 hosts
 * (measured: docs/performance.md, "Choosing by the measured link rate"):
 * below the line the ring won (int8 and bf16 on 1 Gbit/s veth links with a
 * round trip the round-trip rule calls short; onebit on links slowed to 250
 * Mbit/s); well above it two-phase won (onebit on 1 Gbit/s, int8 on 10
 * Gbit/s); in a band around the line the two were even, and the default
 * sits in that band. The probe reads links low when the ranks and the link
 * emulator share a few cores, as on the machine those runs used; that
 * still left onebit on dc above the line. An unknown rate
 * (probe off, or a link too long for it: wan) leaves the round-trip rule
 * alone.
 *
 * The compressed double binary tree only from LC_CODED_TREE_RANKS (16) ranks
 * up: 2 log2(n) hops beat two-phase's n-1 converging senders only on many
 * ranks (an estimate: 16 ranks were beyond the machine the measurements ran
 * on). On 4 ranks it lost to two-phase on dc with its sends in flight for a
 * small part of the call: two children feed one parent, the shallow queue
 * drops, and a 200 ms retransmission timeout follows (as for the
 * uncompressed tree). With a 10 ms floor on that timeout
 * (LC_TCP_RTO_MIN_US) the tree came level on dc, but lost at 250 Mbit/s, on
 * 1 Gbit/s veth, on 10 Gbit/s and on wan: no rate picks it on 4 ranks
 * (measured: docs/performance.md, "Which compressed all-reduce" and
 * "Choosing by the measured link rate").
 *
 * Sparse all-gather for topk while n x density <= LC_SPARSE_FILL_PCT (2%).
 * It receives n/2 times the bytes of two-phase for the same number of
 * encodes (each element is encoded n times in both) and one lossy stage
 * instead of two, so its error is smaller. On 4 ranks at topk 1% (n d = 4%)
 * it sends twice two-phase's bytes and lost to two-phase and the ring on
 * dc; on loopback the three were even, on 4 ranks and on 2 (measured:
 * docs/performance.md, "Which compressed all-reduce"). On 2 ranks the
 * volumes are equal, so 2% takes it there and leaves 4 ranks at 1% to the
 * dense-at-owner algorithms.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"
#include "core/util.h"

static int lc__algo_fits(const lc_coll_args_t *a, lc_algo_t algo)
{
    if (a->codec != NULL) {
        switch (a->type) {
        case LC_COLL_ALLREDUCE:
            return algo == LC_ALGO_TWOPHASE || algo == LC_ALGO_RING || algo == LC_ALGO_TREE ||
                   algo == LC_ALGO_SPARSE;
        case LC_COLL_BROADCAST: return algo == LC_ALGO_CHAIN;
        case LC_COLL_ALLGATHER: return algo == LC_ALGO_RING;
        case LC_COLL_ALLTOALL:
        case LC_COLL_ALLTOALLV: return algo == LC_ALGO_PAIRWISE;
        default: return 0;
        }
    }
    switch (a->type) {
    case LC_COLL_ALLTOALL:
    case LC_COLL_ALLTOALLV: return algo == LC_ALGO_PAIRWISE;
    case LC_COLL_ALLREDUCE:
        return algo == LC_ALGO_RING || algo == LC_ALGO_TREE || algo == LC_ALGO_RECDBL;
    case LC_COLL_BROADCAST: return algo == LC_ALGO_CHAIN || algo == LC_ALGO_TREE;
    case LC_COLL_ALLGATHER:
    case LC_COLL_REDUCE_SCATTER: return algo == LC_ALGO_RING;
    case LC_COLL_BARRIER: return 1;
    }
    return 0;
}

/* Kept fraction of a topk codec (0 for other codecs). With k=N, topk keeps
 * N per selection unit: its block, or else the whole of what one encode
 * gets, a pipeline chunk. */
static double lc__sparse_density(const lc_coll_args_t *a)
{
    const lc_codec_params_t *p = lc__codec_params(a->codec);
    if (p->id != LC_CODEC_TOPK) return 0;
    if (p->k > 0) {
        size_t unit = LC_MIN(a->count, lc__coded_chunk_elems(a));
        if (p->block > 0) unit = LC_MIN(unit, (size_t)p->block);
        return unit > 0 ? LC_MIN(1.0, (double)p->k / (double)unit) : 1.0;
    }
    return p->density;
}

/* On long links, codecs that shrink data less than this use the ring. */
#define LC_CODED_RING_RATIO 8.0

/* The codec's worst-case ratio on a whole chunk (its message size), whatever
 * the buffer's: on a tiny buffer the headers would make every codec look
 * weak and send a latency-bound call round the ring. */
static double lc__coded_ratio(const lc_coll_args_t *a)
{
    size_t ce = lc__coded_chunk_elems(a);
    return (double)ce * sizeof(float) / (double)lc__codec_max_encoded_size(a->codec, ce);
}

/* 1 when the links, not the machines, limit a compressed all-reduce: ranks
 * on several hosts whose slowest link, measured at set-up, carries at most
 * LC_CODED_RING_MBPS of uncompressed data (its rate times the codec's ratio). */
static int lc__coded_link_bound(const lc_coll_link_t *link, const lc_config_t *cfg, double ratio)
{
    return link != NULL && !link->one_host && link->mbps > 0 &&
           (double)link->mbps * ratio <= (double)cfg->coded_ring_mbps;
}

static lc_algo_t lc__select_coded(const lc_coll_args_t *a, int n, const lc_config_t *cfg,
                                  const lc_coll_link_t *link, int long_haul)
{
    double d = lc__sparse_density(a), ratio = lc__coded_ratio(a);
    if (d > 0 && 100.0 * d * n <= cfg->sparse_fill_pct) return LC_ALGO_SPARSE;
    if ((long_haul && ratio < LC_CODED_RING_RATIO) || lc__coded_link_bound(link, cfg, ratio))
        return LC_ALGO_RING;
    return n >= cfg->coded_tree_ranks ? LC_ALGO_TREE : LC_ALGO_TWOPHASE;
}

lc_status_t lc__coll_select(const lc_coll_args_t *a, int nranks, const lc_config_t *cfg,
                            const lc_coll_link_t *link, lc_algo_t *algo_p)
{
    size_t bytes = a->count * lc_dtype_size(a->dtype);
    int long_haul = link != NULL && cfg->wan_rtt_us > 0 && link->rtt_us >= cfg->wan_rtt_us;
    /* Measured, and not every rank on one host. */
    int multi_host = link != NULL && link->rtt_us > 0 && !link->one_host;

    if (a->algo != LC_ALGO_AUTO && a->type != LC_COLL_BARRIER &&
        !(a->algo_env && !lc__algo_fits(a, a->algo))) {
        if (!lc__algo_fits(a, a->algo)) {
            lc_error("algorithm %s does not implement this collective%s", lc_algo_str(a->algo),
                     a->codec != NULL ? " with a codec" : "");
            return LC_ERR_UNSUPPORTED;
        }
        *algo_p = a->algo;
        return LC_OK;
    }
    if (a->codec != NULL) {
        switch (a->type) {
        case LC_COLL_ALLREDUCE:
            *algo_p = lc__select_coded(a, nranks, cfg, link, long_haul);
            return LC_OK;
        case LC_COLL_BROADCAST: *algo_p = LC_ALGO_CHAIN; return LC_OK;
        case LC_COLL_ALLGATHER: *algo_p = LC_ALGO_RING; return LC_OK;
        case LC_COLL_ALLTOALL:
        case LC_COLL_ALLTOALLV: *algo_p = LC_ALGO_PAIRWISE; return LC_OK;
        default: lc_error("this collective does not take a codec"); return LC_ERR_UNSUPPORTED;
        }
    }
    switch (a->type) {
    case LC_COLL_ALLTOALL:
    case LC_COLL_ALLTOALLV: *algo_p = LC_ALGO_PAIRWISE; break;
    case LC_COLL_ALLREDUCE:
        if (bytes <= cfg->small_bytes)
            *algo_p = LC_ALGO_RECDBL;
        else if (long_haul || (multi_host && bytes > cfg->tree_bytes))
            *algo_p = LC_ALGO_RING;
        else
            *algo_p = bytes <= cfg->tree_bytes || nranks > cfg->ring_max_ranks ? LC_ALGO_TREE
                                                                               : LC_ALGO_RING;
        break;
    case LC_COLL_BROADCAST:
        *algo_p = bytes <= cfg->tree_bytes ? LC_ALGO_TREE : LC_ALGO_CHAIN;
        break;
    case LC_COLL_BARRIER: *algo_p = LC_ALGO_RECDBL; break;
    default: *algo_p = LC_ALGO_RING; break;
    }
    return LC_OK;
}
