/*
 * The control plane's messages, byte by byte: what ft/ sends to a peer
 * through a transport's control channel (lc_tl_ops_t::ctrl_send), the same
 * on every transport. Little-endian, encoded field by field.
 *
 *   off size field
 *    0   1   version  1
 *    1   1   type     1 HEARTBEAT, 2 ABORT, 3 GOODBYE, 4 VOTE
 *    2   2   reserved 0
 *    4   4   epoch    the sender's view
 *    8   8   seq      ABORT: the collective that failed; GOODBYE: the last
 *                     collective the sender took part in; VOTE: the step;
 *                     HEARTBEAT: 0
 *   16   4   status   ABORT: why, an lc_status_t error code; VOTE: 0 to
 *                     commit the step, an error code to abort it; others: 0
 *   20   4   reserved 0
 *
 * A message that does not validate (lc__ctrl_msg_check) is a corrupt peer:
 * its status is never taken on trust, since an ABORT whose status were
 * LC_OK would make a running collective "succeed" with partial output.
 */
#ifndef LC_FT_CTRL_MSG_H
#define LC_FT_CTRL_MSG_H

#include "core/bytes.h"
#include "core/util.h"
#include "laconic.h"

#include <stddef.h>
#include <stdint.h>

#define LC_CTRL_MSG_LEN 24
#define LC_CTRL_MSG_VERSION 1

enum { LC_CTRL_HEARTBEAT = 1, LC_CTRL_ABORT = 2, LC_CTRL_GOODBYE = 3, LC_CTRL_VOTE = 4 };

typedef struct {
    uint8_t version, type;
    uint16_t reserved0;
    uint32_t epoch;
    uint64_t seq;
    int32_t status;
    uint32_t reserved1;
} lc_ctrl_msg_t;

static inline void lc__ctrl_msg_encode(const lc_ctrl_msg_t *m, uint8_t *p)
{
    p[0] = LC_CTRL_MSG_VERSION;
    p[1] = m->type;
    lc__put_u16(p + 2, 0);
    lc__put_u32(p + 4, m->epoch);
    lc__put_u64(p + 8, m->seq);
    lc__put_u32(p + 16, (uint32_t)m->status);
    lc__put_u32(p + 20, 0);
}

/* NULL if msg (len bytes) is a well-formed control message, decoded into
 * *m; else what is wrong with it. */
static inline const char *lc__ctrl_msg_decode(const void *msg, size_t len, lc_ctrl_msg_t *m)
{
    const uint8_t *p = msg;
    int st;

    if (len != LC_CTRL_MSG_LEN) return "control message of a bad length";
    m->version = p[0];
    m->type = p[1];
    m->reserved0 = lc__get_u16(p + 2);
    m->epoch = lc__get_u32(p + 4);
    m->seq = lc__get_u64(p + 8);
    m->status = (int32_t)lc__get_u32(p + 16);
    m->reserved1 = lc__get_u32(p + 20);
    if (m->version != LC_CTRL_MSG_VERSION) return "control message of an unknown version";
    if (m->reserved0 != 0 || m->reserved1 != 0) return "control message with reserved bits set";
    st = m->status;
    switch (m->type) {
    case LC_CTRL_HEARTBEAT:
        if (m->seq != 0 || st != 0) return "heartbeat with fields set";
        return NULL;
    case LC_CTRL_ABORT:
        if (m->seq == 0) return "abort of collective 0";
        /* An error code of lc_status_t, nothing else. */
        if (!lc__status_is_error((lc_status_t)st))
            return "abort with a status that is not an error code";
        return NULL;
    case LC_CTRL_GOODBYE:
        if (st != 0) return "goodbye with a status";
        return NULL;
    case LC_CTRL_VOTE:
        if (m->seq == 0) return "vote on step 0";
        if (st != 0 && !lc__status_is_error((lc_status_t)st))
            return "vote with a status that is not an error code";
        return NULL;
    default: return "control message of an unknown type";
    }
}

#endif
