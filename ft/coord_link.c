/*
 * Buffered, non-blocking message framing for the coordinator's connections
 * (coord_link.h has the format). Both ends use it: the coordinator's poll
 * loop and each rank's progress engine.
 */
#include "ft/coord_link.h"

#include "core/bytes.h"
#include "core/sha256.h"
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void lc__clink_init(lc_clink_t *l, int fd)
{
    memset(l, 0, sizeof(*l));
    l->fd = fd;
}

void lc__clink_close(lc_clink_t *l)
{
    if (l->fd >= 0) close(l->fd);
    free(l->rx);
    free(l->tx);
    lc__clink_init(l, -1);
}

static int lc__grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t ncap = LC_MAX(need, *cap ? 2 * *cap : 256);
    uint8_t *n = realloc(*buf, ncap);
    if (n == NULL) return -1;
    *buf = n;
    *cap = ncap;
    return 0;
}

lc_status_t lc__clink_flush(lc_clink_t *l)
{
    while (l->tx_off < l->tx_len) {
        ssize_t w = send(l->fd, l->tx + l->tx_off, l->tx_len - l->tx_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return LC_OK;
            return LC_ERR_PEER_LOST;
        }
        l->tx_off += (size_t)w;
    }
    l->tx_off = l->tx_len = 0;
    return LC_OK;
}

size_t lc__clink_pending(const lc_clink_t *l)
{
    return l->tx_len - l->tx_off;
}

lc_status_t lc__clink_send(lc_clink_t *l, int type, const void *body, size_t len)
{
    uint8_t *p;

    if (l->fd < 0) return LC_ERR_PEER_LOST;
    if (len > LC_CLINK_MAX_BODY) return LC_ERR_INVALID_ARG;
    if (l->tx_off > 0 && l->tx_off == l->tx_len) l->tx_off = l->tx_len = 0;
    if (lc__grow(&l->tx, &l->tx_cap, l->tx_len + LC_CLINK_HDR + len) != 0) return LC_ERR_NO_MEMORY;
    p = l->tx + l->tx_len;
    lc__put_u32(p, (uint32_t)len);
    p[4] = (uint8_t)type;
    p[5] = LC_CLINK_VERSION;
    lc__put_u16(p + 6, 0);
    if (len > 0) memcpy(p + LC_CLINK_HDR, body, len);
    l->tx_len += LC_CLINK_HDR + len;
    return lc__clink_flush(l);
}

lc_status_t lc__clink_fill(lc_clink_t *l)
{
    for (;;) {
        if (lc__grow(&l->rx, &l->rx_cap, l->rx_len + 4096) != 0) return LC_ERR_NO_MEMORY;
        ssize_t r = recv(l->fd, l->rx + l->rx_len, l->rx_cap - l->rx_len, 0);
        if (r > 0) {
            l->rx_len += (size_t)r;
            /* Never more than one message and a header ahead of the parser. */
            if (l->rx_len > LC_CLINK_MAX_BODY + 2 * LC_CLINK_HDR) return LC_OK;
            continue;
        }
        if (r == 0) return LC_ERR_PEER_LOST;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return LC_OK;
        return LC_ERR_PEER_LOST;
    }
}

int lc__clink_next(lc_clink_t *l, lc_cmsg_t *m, const char **bad)
{
    /* Drop the message handed out last time. */
    if (l->rx_taken > 0) {
        memmove(l->rx, l->rx + l->rx_taken, l->rx_len - l->rx_taken);
        l->rx_len -= l->rx_taken;
        l->rx_taken = 0;
    }
    m->body = NULL;
    m->len = 0;
    if (l->rx_len < LC_CLINK_HDR) return 0;
    uint32_t len = lc__get_u32(l->rx);
    if (len > LC_CLINK_MAX_BODY) {
        *bad = "message longer than the limit";
        return -1;
    }
    if (l->rx[5] != LC_CLINK_VERSION || lc__get_u16(l->rx + 6) != 0) {
        *bad = "message of another version";
        return -1;
    }
    if (l->rx_len < LC_CLINK_HDR + (size_t)len) return 0;
    m->type = l->rx[4];
    m->body = l->rx + LC_CLINK_HDR;
    m->len = len;
    l->rx_taken = LC_CLINK_HDR + (size_t)len;
    return 1;
}

void lc__clink_auth_mac(const uint8_t *key, size_t keylen, const uint8_t challenge[16],
                        uint32_t rank, uint32_t size, uint64_t job_id, uint8_t out[32])
{
    uint8_t ids[16];
    lc__put_u32(ids, rank);
    lc__put_u32(ids + 4, size);
    lc__put_u64(ids + 8, job_id);
    lc__hmac_proof(key, keylen, "lc-crd-c", challenge, ids, sizeof(ids), out);
}

void lc__clink_accept_mac(const uint8_t *key, size_t keylen, const uint8_t nonce[16], uint32_t rank,
                          uint8_t out[32])
{
    uint8_t r[4];
    lc__put_u32(r, rank);
    lc__hmac_proof(key, keylen, "lc-crd-s", nonce, r, sizeof(r), out);
}

uint8_t *lc__cm_view_body(uint32_t epoch, const uint8_t *head, size_t head_len, const int *members,
                          int n, size_t *len_p)
{
    size_t len = 4 + head_len + 4 + 4 * (size_t)n;
    uint8_t *b = malloc(len);

    if (b == NULL) return NULL;
    lc__put_u32(b, epoch);
    if (head_len > 0) memcpy(b + 4, head, head_len);
    lc__put_u32(b + 4 + head_len, (uint32_t)n);
    for (int i = 0; i < n; i++) lc__put_u32(b + 8 + head_len + 4 * (size_t)i, (uint32_t)members[i]);
    *len_p = len;
    return b;
}

int *lc__cm_view_members(const lc_cmsg_t *m, size_t off, int size, int *n_p)
{
    if (m->len < off + 4) return NULL;
    uint32_t n = lc__get_u32(m->body + off);
    if (n < 1 || n > (uint32_t)size || m->len != off + 4 + 4 * (size_t)n) return NULL;
    int *v = malloc(n * sizeof(*v));
    if (v == NULL) return NULL;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = lc__get_u32(m->body + off + 4 + 4 * (size_t)i);
        if (r >= (uint32_t)size || (i > 0 && r <= (uint32_t)v[i - 1])) {
            free(v);
            return NULL;
        }
        v[i] = (int)r;
    }
    *n_p = (int)n;
    return v;
}
