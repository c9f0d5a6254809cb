/*
 * Compressed pipelined chain broadcast: root -> root+1 -> ... (mod n). The
 * root encodes each chunk once (with its residual when error feedback is
 * on); every other rank forwards the bytes unchanged the moment a chunk has
 * arrived and decodes it into its buffer. The root decodes its own encoding
 * into its buffer too ("adopts" it), so every rank ends with the same bytes,
 * and does so only after the commit point: every chunk sent and the last
 * rank's closing message received (a failed broadcast leaves the root's
 * data as it was). The last rank of the chain closes with an empty
 * message to the root, as the uncompressed chain does, so a rank that names
 * another root is caught. Scratch: one encoded chunk per chunk.
 */
#include "coll/coll.h"
#include "coll/coll_util.h"

lc_status_t lc__broadcast_chain_coded(lc_sched_t *s, const lc_coll_args_t *a, int r, int n)
{
    const size_t ce = lc__coded_chunk_elems(a), nc = lc__nchunks(a->count, ce);
    const size_t cap = lc__codec_max_encoded_size(a->codec, ce);
    const int pos = lc__mod(r - a->root, n);
    const int next = pos < n - 1 ? lc__mod(r + 1, n) : -1, prev = pos > 0 ? lc__mod(r - 1, n) : -1;
    float *buf = a->recvbuf;
    uint8_t *bufs = lc__sched_scratch(s, nc * cap);
    int join = prev < 0 ? lc__sched_commit_point(s) : -1;
    int got = -1;

    if (bufs == NULL) return LC_ERR_NO_MEMORY;
    int *adopt = prev < 0 ? lc__coll_ids(s, nc) : NULL;
    if (prev < 0 && adopt == NULL) return LC_ERR_NO_MEMORY;
    for (size_t c = 0; c < nc; c++) {
        size_t e0 = c * ce, k = LC_MIN(ce, a->count - e0);
        int msg;
        if (prev < 0) {
            msg = lc__sched_encode(s, a->codec, a->ef_in, a->ef_out, e0, buf + e0, k,
                                   bufs + c * cap, cap);
            adopt[c] = msg;
        } else {
            msg = got = lc__sched_recv_upto(s, prev, bufs + c * cap, cap, k);
            lc__sched_decode(s, a->codec, msg, buf + e0, k, 0);
        }
        if (next >= 0) {
            int id = lc__sched_send_coded(s, next, msg);
            lc__sched_dep(s, id, join);
        }
    }
    if (prev < 0) {
        for (size_t c = 0; c < nc; c++) {
            size_t e0 = c * ce, k = LC_MIN(ce, a->count - e0);
            int d = lc__sched_decode(s, a->codec, adopt[c], buf + e0, k, 0);
            lc__sched_dep(s, join, d);
        }
    }
    lc__sched_dep(s, lc__broadcast_ack(s, r, n, a->root, pos == n - 1, got), join);
    return LC_OK;
}
