/*
 * The coordinator's wire (ft/coord_server.c on one side, ft/coord_client.c
 * in every rank on the other): one TCP connection per rank, carrying
 * length-prefixed messages. Little-endian, encoded field by field.
 *
 * Every message: a header, then its body.
 *
 *   off size field
 *    0   4   length   bytes of the body (<= LC_CLINK_MAX_BODY)
 *    4   1   type     LC_CM_*
 *    5   1   version  LC_CLINK_VERSION
 *    6   2   reserved 0
 *
 * Handshake (the connecting rank proves it holds the job key first, so a
 * stranger learns nothing but a nonce):
 *
 *   coordinator -> rank  CHALLENGE  nonce[16]
 *   rank -> coordinator  AUTH       rank u32, size u32, job_id u64, nonce[16],
 *                                   HMAC(key, "lc-crd-c" challenge rank size job_id)
 *   coordinator -> rank  ACCEPT     HMAC(key, "lc-crd-s" nonce rank)
 *
 * Then (ranks are numbered as in the communicator's first view; a view is
 * a list of those numbers, ascending):
 *
 *   rank -> coordinator
 *     STATE   epoch u32, peer_timeout_ms u32, n u32, members[n] u32
 *             (first after ACCEPT: the view the rank is in)
 *     BEAT    epoch u32                    (every quarter of the peer timeout)
 *     LOST    epoch u32, peer u32          (the rank lost its link to peer)
 *     LEAVE   epoch u32                    (it leaves on purpose)
 *     SHRINK  epoch u32, next_seq u64      (it asks for the next view)
 *     REPORT  epoch u32, step u64, complete u8, asked u8
 *             (what it knows of a step: complete = it received every
 *             member's vote, all for commit; asked = it waits for the outcome)
 *   coordinator -> rank
 *     NOTICE  epoch u32, peer u32, why u8  (a member failed (1) or left (2))
 *     VIEW    epoch u32, seq_base u64, n u32, members[n] u32
 *     OUTCOME epoch u32, step u64, commit u8
 *     POLL    epoch u32, step u64          (report what you know of step)
 *     REMOVED epoch u32                    (you are in no view any more)
 *
 * A message that does not parse ends the connection; nothing in it is used.
 */
#ifndef LC_FT_COORD_LINK_H
#define LC_FT_COORD_LINK_H

#include "laconic.h"

#include <stddef.h>
#include <stdint.h>

#define LC_CLINK_VERSION 1
#define LC_CLINK_HDR 8
#define LC_CLINK_MAX_BODY (1u << 20)
#define LC_CLINK_MAX_RANKS (LC_CLINK_MAX_BODY / 4 - 8)

enum {
    LC_CM_CHALLENGE = 1,
    LC_CM_AUTH = 2,
    LC_CM_ACCEPT = 3,
    LC_CM_STATE = 10,
    LC_CM_BEAT = 11,
    LC_CM_LOST = 12,
    LC_CM_LEAVE = 13,
    LC_CM_SHRINK = 14,
    LC_CM_REPORT = 15,
    LC_CM_NOTICE = 20,
    LC_CM_VIEW = 21,
    LC_CM_OUTCOME = 22,
    LC_CM_POLL = 23,
    LC_CM_REMOVED = 24
};

/* NOTICE's why. */
enum { LC_CM_FAILED = 1, LC_CM_LEFT = 2 };

#define LC_CM_CHALLENGE_LEN 16
#define LC_CM_AUTH_LEN (4 + 4 + 8 + 16 + 32)
#define LC_CM_ACCEPT_LEN 32

/* One end of a connection: non-blocking fd, what was read and not yet
 * taken as messages, what is queued to write. */
typedef struct {
    int fd;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    size_t rx_taken; /* bytes of the message lc__clink_next handed out last */
    uint8_t *tx;
    size_t tx_off, tx_len, tx_cap;
} lc_clink_t;

/* A decoded message (body points into the link's buffer until the next
 * lc__clink_next). */
typedef struct {
    int type;
    const uint8_t *body;
    uint32_t len;
} lc_cmsg_t;

void lc__clink_init(lc_clink_t *l, int fd);
/* Close the fd and free the buffers. */
void lc__clink_close(lc_clink_t *l);
/* Queue a message and write what the socket takes now. LC_ERR_PEER_LOST
 * when the connection failed; LC_ERR_NO_MEMORY. */
lc_status_t lc__clink_send(lc_clink_t *l, int type, const void *body, size_t len);
/* Write what is queued: LC_OK, or LC_ERR_PEER_LOST. */
lc_status_t lc__clink_flush(lc_clink_t *l);
/* Bytes still queued. */
size_t lc__clink_pending(const lc_clink_t *l);
/* Read what the socket has: LC_OK; LC_ERR_PEER_LOST at end of stream or
 * on error. */
lc_status_t lc__clink_fill(lc_clink_t *l);
/* The next whole message: 1 (in *m), 0 if none yet, -1 if the stream
 * holds garbage (*bad says what). Consumes the previous message. */
int lc__clink_next(lc_clink_t *l, lc_cmsg_t *m, const char **bad);

/* The handshake's MACs (see above). */
void lc__clink_auth_mac(const uint8_t *key, size_t keylen, const uint8_t challenge[16],
                        uint32_t rank, uint32_t size, uint64_t job_id, uint8_t out[32]);
void lc__clink_accept_mac(const uint8_t *key, size_t keylen, const uint8_t nonce[16], uint32_t rank,
                          uint8_t out[32]);

/* Encode a view (epoch, then head bytes, then n, members) into a
 * malloc'd body; NULL on failure. */
uint8_t *lc__cm_view_body(uint32_t epoch, const uint8_t *head, size_t head_len, const int *members,
                          int n, size_t *len_p);
/* Decode the members of a view body at off: n and members (malloc'd);
 * NULL when malformed (ascending, each < size, n >= 1). */
int *lc__cm_view_members(const lc_cmsg_t *m, size_t off, int size, int *n_p);

#endif
