/*
 * The TCP transport's frame header and connection handshake, byte by byte.
 * All integers are little-endian and encoded/decoded explicitly (never by
 * copying a struct), so the format does not depend on the compiler.
 *
 * Frame header, 40 bytes, in front of every message:
 *
 *   off size field
 *    0   4   magic    0x3146434c ("LCF1")
 *    4   1   version  2
 *    5   1   type     1 DATA, 2 CTRL (a control message of ft/, opaque here)
 *    6   1   flags    bit 0: crc holds the CRC32C of the payload; other bits 0
 *    7   1   codec    codec id of the payload (0 = raw)
 *    8   4   epoch    membership epoch
 *   12   4   sig      hash of the collective's arguments
 *   16   8   seq      DATA: collective sequence number; CTRL: 0
 *   24   4   index    DATA: message index in the collective for this pair;
 *                     CTRL: 0
 *   28   4   length   payload bytes that follow (DATA <= 1 GiB; CTRL 1..64)
 *   32   4   crc      CRC32C of the payload when flags bit 0 is set, else 0
 *   36   4   reserved 0
 *
 * Connection handshake (before any frame), both sides at once:
 *
 *   HELLO1, 44 bytes: magic 0x3148434c ("LCH1") u32, version u32, job id
 *     u64, rank u32, connection index u32, world size u32, nonce[16]
 *   HELLO2, 32 bytes: HMAC-SHA256(job key, "lc-hello" || peer's nonce ||
 *     own nonce || own rank u32 || connection index u32 || job id u64)
 *
 * Connection 0 to a peer carries CTRL frames only, so control messages
 * never wait behind data; DATA message k travels on connection
 * 1 + (k mod lanes), lanes being LC_TCP_CONNS or the collective's
 * lc_tl_tag_t.lanes when that is fewer (both sides of a pair use the same).
 * Version 1 had the control plane here (HEARTBEAT, ABORT, BYE frames); it
 * moved to ft/ (ft/ctrl_msg.h) and rides in CTRL frames.
 */
#ifndef LC_TRANSPORT_TCP_FRAME_H
#define LC_TRANSPORT_TCP_FRAME_H

#include "core/sock.h"

#include <stdint.h>

#define LC_TCP_FRAME_MAGIC 0x3146434cu
#define LC_TCP_FRAME_VERSION 2
#define LC_TCP_HDR_LEN 40
#define LC_TCP_MAX_PAYLOAD (1u << 30)
#define LC_TCP_FLAG_CRC 1u

#define LC_TCP_HELLO_MAGIC 0x3148434cu
#define LC_TCP_HELLO_VERSION                                                                       \
    4u /* 2: the link probe follows the handshake; 3: frames v2; 4: no raw probe (ft/ probes in    \
          frames) */
#define LC_TCP_HELLO1_LEN 44
#define LC_TCP_HELLO2_LEN 32

enum { LC_TCP_DATA = 1, LC_TCP_CTRL = 2 };
#define LC_TCP_CTRL_MAX 64u /* LC_TL_CTRL_MAX */

typedef struct {
    uint8_t version, type, flags, codec;
    uint32_t magic, epoch, sig, index, length, crc, reserved;
    uint64_t seq;
} lc_tcp_frame_t;

static inline void lc__tcp_frame_encode(const lc_tcp_frame_t *f, uint8_t *p)
{
    lc__put_u32(p, LC_TCP_FRAME_MAGIC);
    p[4] = LC_TCP_FRAME_VERSION;
    p[5] = f->type;
    p[6] = f->flags;
    p[7] = f->codec;
    lc__put_u32(p + 8, f->epoch);
    lc__put_u32(p + 12, f->sig);
    lc__put_u64(p + 16, f->seq);
    lc__put_u32(p + 24, f->index);
    lc__put_u32(p + 28, f->length);
    lc__put_u32(p + 32, f->crc);
    lc__put_u32(p + 36, 0);
}

static inline void lc__tcp_frame_decode(const uint8_t *p, lc_tcp_frame_t *f)
{
    f->magic = lc__get_u32(p);
    f->version = p[4];
    f->type = p[5];
    f->flags = p[6];
    f->codec = p[7];
    f->epoch = lc__get_u32(p + 8);
    f->sig = lc__get_u32(p + 12);
    f->seq = lc__get_u64(p + 16);
    f->index = lc__get_u32(p + 24);
    f->length = lc__get_u32(p + 28);
    f->crc = lc__get_u32(p + 32);
    f->reserved = lc__get_u32(p + 36);
}

/* NULL if the header is well formed, else what is wrong with it. */
static inline const char *lc__tcp_frame_check(const lc_tcp_frame_t *f)
{
    if (f->magic != LC_TCP_FRAME_MAGIC) return "bad magic";
    if (f->version != LC_TCP_FRAME_VERSION) return "unknown version";
    if (f->type != LC_TCP_DATA && f->type != LC_TCP_CTRL) return "unknown frame type";
    if (f->flags & ~LC_TCP_FLAG_CRC) return "unknown flag bits";
    if (f->reserved != 0) return "reserved field not zero";
    if (f->length > LC_TCP_MAX_PAYLOAD) return "payload longer than 1 GiB";
    if (f->type == LC_TCP_CTRL) {
        if (f->length == 0 || f->length > LC_TCP_CTRL_MAX) return "control frame of a bad length";
        if (f->seq != 0 || f->index != 0 || f->sig != 0 || f->codec != 0)
            return "control frame with data fields set";
    }
    if (!(f->flags & LC_TCP_FLAG_CRC) && f->crc != 0) return "crc set without its flag";
    return NULL;
}

#endif
