/*
 * TCP rendezvous: the start-up exchange of every communicator that is not
 * built on MPI.
 *
 * One server (a thread in rank 0, or the detached thread that
 * lc_get_unique_id starts) and one client per rank. Protocol, all integers
 * little-endian:
 *
 *   server -> client  CHALLENGE  magic "LCRV" u32, version u32, nonce[16]
 *   client -> server  AUTH       magic u32, rank u32, size u32, job_id u64,
 *                                client_nonce[16],
 *                                HMAC(key, "lc-rdv-c" nonce rank size job_id)
 *   server -> client  ACCEPT     magic u32, status i32,
 *                                HMAC(key, "lc-rdv-s" client_nonce rank)
 *   then per allgather round:
 *   client -> server  len u32, blob[len]                (len <= 64 KiB)
 *   server -> client  len u32, size u32, blobs[size*len] (once every rank sent)
 *
 * Both sides prove they hold the job key, so neither a stranger client nor a
 * stranger server can join or feed addresses. The server is a single
 * poll() loop: a client that sends garbage, a wrong key, a wrong job, a
 * duplicate rank, or nothing at all is logged and dropped without stalling the
 * others. The server ends when every rank has checked in and hung up, or
 * when nothing happened for the timeout.
 */
#include "transport/bootstrap.h"
#include "core/sha256.h"
#include "core/util.h"
#include "core/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LC_RDV_MAGIC 0x5652434cu /* "LCRV" */
#define LC_RDV_VERSION 1u
#define LC_RDV_MAX_BLOB (64u << 10)
#define LC_RDV_MAX_RANKS (1 << 20)
#define LC_RDV_CHALLENGE_LEN 24
#define LC_RDV_AUTH_LEN (4 + 4 + 4 + 8 + 16 + 32)
#define LC_RDV_ACCEPT_LEN (4 + 4 + 32)
/* A client that has not authenticated within this long is dropped. */
#define LC_RDV_AUTH_MS 5000

/* ------------------------------------------------------------ shared */

static void lc__rdv_client_mac(const uint8_t *key, size_t keylen, const uint8_t nonce[16],
                               uint32_t rank, uint32_t size, uint64_t job_id, uint8_t out[32])
{
    uint8_t ids[16];
    lc__put_u32(ids, rank);
    lc__put_u32(ids + 4, size);
    lc__put_u64(ids + 8, job_id);
    lc__hmac_proof(key, keylen, "lc-rdv-c", nonce, ids, sizeof(ids), out);
}

static void lc__rdv_server_mac(const uint8_t *key, size_t keylen, const uint8_t nonce[16],
                               uint32_t rank, uint8_t out[32])
{
    uint8_t r[4];
    lc__put_u32(r, rank);
    lc__hmac_proof(key, keylen, "lc-rdv-s", nonce, r, sizeof(r), out);
}

/* ------------------------------------------------------------ server */

enum { LC_RDV_C_AUTH, LC_RDV_C_HDR, LC_RDV_C_BLOB, LC_RDV_C_WAIT };

typedef struct {
    int fd;
    int state;
    int rank;
    uint8_t nonce[16];
    uint8_t hdr[LC_RDV_AUTH_LEN];
    size_t got;
    uint32_t len;
    uint8_t *blob;
    uint64_t auth_deadline_ns;
} lc_rdv_client_t;

typedef struct {
    int lfd;
    int size; /* 0 until the first authenticated client tells it */
    uint8_t key[256];
    size_t keylen;
    uint64_t job_id;
    uint32_t timeout_ms;
    lc_rdv_client_t *c;
    int nc, capc;
    int nauthed;     /* ranks that ever authenticated */
    int round_count; /* blobs received in the current round */
    uint32_t round_len;
    uint8_t *round; /* size * round_len */
    uint8_t *seen;  /* per rank: authenticated */
} lc_rdv_server_t;

static void lc__rdv_drop(lc_rdv_server_t *s, int i, const char *why)
{
    lc_rdv_client_t *c = &s->c[i];
    if (why != NULL) {
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        char ip[INET_ADDRSTRLEN] = "?";
        if (getpeername(c->fd, (struct sockaddr *)&a, &al) == 0)
            inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
        lc_warn("rendezvous: dropped connection from %s: %s", ip, why);
    }
    close(c->fd);
    free(c->blob);
    s->c[i] = s->c[--s->nc];
}

static int lc__rdv_accept(lc_rdv_server_t *s)
{
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
    uint8_t ch[LC_RDV_CHALLENGE_LEN];
    lc_rdv_client_t *c;

    if (fd < 0) return 0;
    if (s->nc == s->capc) {
        int ncap = s->capc ? 2 * s->capc : 16;
        lc_rdv_client_t *n = realloc(s->c, (size_t)ncap * sizeof(*n));
        if (n == NULL) {
            close(fd);
            return 0;
        }
        s->c = n;
        s->capc = ncap;
    }
    c = &s->c[s->nc];
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->rank = -1;
    c->state = LC_RDV_C_AUTH;
    c->auth_deadline_ns = lc__now_ns() + (uint64_t)LC_RDV_AUTH_MS * 1000000ull;
    if (lc__random_bytes(c->nonce, sizeof(c->nonce)) != LC_OK) {
        close(fd);
        return 0;
    }
    lc__put_u32(ch, LC_RDV_MAGIC);
    lc__put_u32(ch + 4, LC_RDV_VERSION);
    memcpy(ch + 8, c->nonce, 16);
    lc__sock_set_nonblock(fd, 1);
    if (send(fd, ch, sizeof(ch), MSG_NOSIGNAL) != (ssize_t)sizeof(ch)) {
        close(fd);
        return 0;
    }
    s->nc++;
    return 1;
}

/* Validate an AUTH message; returns NULL if accepted, else the reason. */
static const char *lc__rdv_check_auth(lc_rdv_server_t *s, lc_rdv_client_t *c)
{
    const uint8_t *h = c->hdr;
    uint32_t rank = lc__get_u32(h + 4), size = lc__get_u32(h + 8);
    uint64_t job = lc__get_u64(h + 12);
    uint8_t mac[32];

    if (lc__get_u32(h) != LC_RDV_MAGIC) return "not a Laconic client (bad magic)";
    lc__rdv_client_mac(s->key, s->keylen, c->nonce, rank, size, job, mac);
    if (!lc__ct_equal(mac, h + 36, 32)) return "wrong job key";
    if (job != s->job_id) return "wrong job id";
    if (size < 1 || size > LC_RDV_MAX_RANKS || rank >= size) return "bad rank or size";
    if (s->size != 0 && (int)size != s->size) return "size differs from the other ranks'";
    if (s->size == 0) {
        s->size = (int)size;
        s->seen = calloc(size, 1);
        if (s->seen == NULL) return "out of memory";
    }
    if (s->seen[rank]) return "rank already checked in";
    s->seen[rank] = 1;
    c->rank = (int)rank;
    return NULL;
}

static void lc__rdv_send_accept(lc_rdv_server_t *s, lc_rdv_client_t *c, int32_t status)
{
    uint8_t m[LC_RDV_ACCEPT_LEN];
    lc__put_u32(m, LC_RDV_MAGIC);
    lc__put_u32(m + 4, (uint32_t)status);
    lc__rdv_server_mac(s->key, s->keylen, c->hdr + 20, (uint32_t)c->rank, m + 8);
    lc__sock_write_full(c->fd, m, sizeof(m), lc__now_ns() + 1000000000ull);
}

/* Every rank sent its blob: answer everyone, start the next round. */
static void lc__rdv_finish_round(lc_rdv_server_t *s)
{
    uint8_t h[8];
    size_t total = (size_t)s->size * s->round_len;
    uint64_t deadline = lc__now_ns() + (uint64_t)s->timeout_ms * 1000000ull;

    lc__put_u32(h, s->round_len);
    lc__put_u32(h + 4, (uint32_t)s->size);
    for (int i = 0; i < s->nc; i++) {
        lc_rdv_client_t *c = &s->c[i];
        if (c->state != LC_RDV_C_WAIT) continue;
        lc__sock_set_nonblock(c->fd, 0);
        if (lc__sock_write_full(c->fd, h, sizeof(h), deadline) != LC_OK ||
            lc__sock_write_full(c->fd, s->round, total, deadline) != LC_OK)
            lc_warn("rendezvous: rank %d did not take the round's answer", c->rank);
        lc__sock_set_nonblock(c->fd, 1);
        c->state = LC_RDV_C_HDR;
        c->got = 0;
    }
    s->round_count = 0;
}

/* Read what is available from client i. Returns 0 if it was dropped. */
static int lc__rdv_read(lc_rdv_server_t *s, int i)
{
    lc_rdv_client_t *c = &s->c[i];
    for (;;) {
        uint8_t *dst;
        size_t want;
        if (c->state == LC_RDV_C_AUTH) {
            dst = c->hdr + c->got;
            want = LC_RDV_AUTH_LEN - c->got;
        } else if (c->state == LC_RDV_C_HDR) {
            dst = c->hdr + c->got;
            want = 4 - c->got;
        } else if (c->state == LC_RDV_C_BLOB) {
            dst = c->blob + c->got;
            want = c->len - c->got;
        } else {
            /* Waiting for the round: anything but EOF is a protocol error. */
            uint8_t b;
            ssize_t n = recv(c->fd, &b, 1, MSG_DONTWAIT);
            if (n == 0) {
                lc__rdv_drop(s, i, NULL);
                return 0;
            }
            if (n > 0) {
                lc__rdv_drop(s, i, "sent data out of turn");
                return 0;
            }
            return 1;
        }
        ssize_t n = want ? recv(c->fd, dst, want, MSG_DONTWAIT) : 0;
        if (want && n == 0) {
            lc__rdv_drop(s, i,
                         c->state == LC_RDV_C_HDR && c->got == 0 ? NULL : "closed mid-message");
            return 0;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 1;
            lc__rdv_drop(s, i, strerror(errno));
            return 0;
        }
        c->got += (size_t)n;
        if ((size_t)n < want) return 1;
        if (c->state == LC_RDV_C_AUTH) {
            const char *why = lc__rdv_check_auth(s, c);
            if (why != NULL) {
                lc__rdv_drop(s, i, why);
                return 0;
            }
            lc__rdv_send_accept(s, c, LC_OK);
            s->nauthed++;
            c->state = LC_RDV_C_HDR;
            c->got = 0;
        } else if (c->state == LC_RDV_C_HDR) {
            c->len = lc__get_u32(c->hdr);
            if (c->len > LC_RDV_MAX_BLOB || (s->round_count > 0 && c->len != s->round_len)) {
                lc__rdv_drop(s, i, "bad blob length");
                return 0;
            }
            free(c->blob);
            c->blob = malloc(c->len ? c->len : 1);
            if (c->blob == NULL) {
                lc__rdv_drop(s, i, "out of memory");
                return 0;
            }
            c->state = LC_RDV_C_BLOB;
            c->got = 0;
        } else {
            if (s->round_count == 0) {
                uint8_t *r = realloc(s->round, (size_t)s->size * c->len + 1);
                if (r == NULL) {
                    lc__rdv_drop(s, i, "out of memory");
                    return 0;
                }
                s->round = r;
                s->round_len = c->len;
            }
            memcpy(s->round + (size_t)c->rank * c->len, c->blob, c->len);
            c->state = LC_RDV_C_WAIT;
            s->round_count++;
            if (s->round_count == s->size) lc__rdv_finish_round(s);
            return 1;
        }
    }
}

static void lc__rdv_serve(lc_rdv_server_t *s)
{
    uint64_t idle_deadline = lc__now_ns() + (uint64_t)s->timeout_ms * 1000000ull;
    struct pollfd *pfds = NULL;
    int cap = 0;

    for (;;) {
        uint64_t now = lc__now_ns();
        /* Done: everyone checked in and every rank has hung up. Connections
         * that never authenticated (strangers, scanners) do not keep the
         * server, and so rank 0's lc_comm_init, waiting. */
        if (s->size > 0 && s->nauthed == s->size) {
            int ranks_left = 0;
            for (int i = 0; i < s->nc; i++) ranks_left += s->c[i].state != LC_RDV_C_AUTH;
            if (ranks_left == 0) {
                while (s->nc > 0) lc__rdv_drop(s, s->nc - 1, "job formed before it authenticated");
                break;
            }
        }
        if (now > idle_deadline) {
            if (s->size == 0 || s->nauthed < s->size)
                lc_warn("rendezvous: gave up after %u ms with %d of %d ranks", s->timeout_ms,
                        s->nauthed, s->size);
            break;
        }
        for (int i = 0; i < s->nc;) {
            if (s->c[i].state == LC_RDV_C_AUTH && now > s->c[i].auth_deadline_ns)
                lc__rdv_drop(s, i, "did not authenticate in time");
            else
                i++;
        }
        if (cap < s->nc + 1) {
            struct pollfd *n = realloc(pfds, (size_t)(s->nc + 16) * sizeof(*n));
            if (n == NULL) break;
            pfds = n;
            cap = s->nc + 16;
        }
        int accepting = s->size == 0 || s->nauthed < s->size;
        pfds[0].fd = accepting ? s->lfd : -1;
        pfds[0].events = POLLIN;
        for (int i = 0; i < s->nc; i++) {
            pfds[i + 1].fd = s->c[i].fd;
            pfds[i + 1].events = POLLIN;
        }
        int r = poll(pfds, (nfds_t)s->nc + 1, 100);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        idle_deadline = lc__now_ns() + (uint64_t)s->timeout_ms * 1000000ull;
        /* Walk clients from the end: drops move the last one into the hole. */
        int n = s->nc;
        for (int i = n - 1; i >= 0; i--) {
            if (pfds[i + 1].revents) lc__rdv_read(s, i);
        }
        if (pfds[0].revents & POLLIN) lc__rdv_accept(s);
    }
    free(pfds);
}

static void lc__rdv_server_free(lc_rdv_server_t *s)
{
    while (s->nc > 0) lc__rdv_drop(s, s->nc - 1, NULL);
    free(s->c);
    free(s->round);
    free(s->seen);
    if (s->lfd >= 0) close(s->lfd);
    free(s);
}

static void *lc__rdv_thread(void *arg)
{
    lc_rdv_server_t *s = arg;
    lc__rdv_serve(s);
    lc__rdv_server_free(s);
    return NULL;
}

static lc_status_t lc__rdv_server_new(int lfd, int size, const uint8_t *key, size_t keylen,
                                      uint64_t job_id, uint32_t timeout_ms, lc_rdv_server_t **s_p)
{
    lc_rdv_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return LC_ERR_NO_MEMORY;
    if (keylen > sizeof(s->key)) keylen = sizeof(s->key);
    s->lfd = lfd;
    s->size = size;
    if (size > 0) {
        s->seen = calloc((size_t)size, 1);
        if (s->seen == NULL) {
            free(s);
            return LC_ERR_NO_MEMORY;
        }
    }
    memcpy(s->key, key, keylen);
    s->keylen = keylen;
    s->job_id = job_id;
    s->timeout_ms = timeout_ms;
    lc__sock_set_nonblock(lfd, 1);
    *s_p = s;
    return LC_OK;
}

lc_status_t lc__bootstrap_tcp_serve_detached(const char *host, const uint8_t *job_key,
                                             size_t job_key_len, uint64_t job_id,
                                             uint32_t timeout_ms, uint16_t *port_p)
{
    struct sockaddr_in a;
    lc_rdv_server_t *s;
    pthread_t t;
    pthread_attr_t attr;
    int lfd, rc;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (host != NULL && *host != '\0' && inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        lc_error("rendezvous: '%s' is not an IPv4 address", host);
        return LC_ERR_INVALID_ARG;
    }
    LC_CHECK(lc__sock_listen(&a, 128, &lfd));
    if (lc__rdv_server_new(lfd, 0, job_key, job_key_len, job_id, timeout_ms, &s) != LC_OK) {
        close(lfd);
        return LC_ERR_NO_MEMORY;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, lc__rdv_thread, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        lc__rdv_server_free(s);
        return LC_ERR_SYSTEM;
    }
    *port_p = ntohs(a.sin_port);
    return LC_OK;
}

/* ------------------------------------------------------------ client */

typedef struct {
    lc_bootstrap_t super;
    int fd;
    uint32_t timeout_ms;
    int have_server;
    pthread_t server;
} lc_bootstrap_tcp_t;

static lc_status_t lc__bootstrap_tcp_allgather(lc_bootstrap_t *bs, const void *mine, size_t len,
                                               void *out)
{
    lc_bootstrap_tcp_t *b = (lc_bootstrap_tcp_t *)bs;
    uint64_t deadline = lc__now_ns() + (uint64_t)b->timeout_ms * 1000000ull;
    uint8_t h[8];
    lc_status_t st;

    if (len > LC_RDV_MAX_BLOB) return LC_ERR_INVALID_ARG;
    lc__put_u32(h, (uint32_t)len);
    st = lc__sock_write_full(b->fd, h, 4, deadline);
    if (st == LC_OK) st = lc__sock_write_full(b->fd, mine, len, deadline);
    if (st == LC_OK) st = lc__sock_read_full(b->fd, h, 8, deadline);
    if (st != LC_OK) {
        lc_error("rendezvous: allgather failed: %s", lc_status_str(st));
        return LC_ERR_COORD_LOST;
    }
    if (lc__get_u32(h) != len || lc__get_u32(h + 4) != (uint32_t)bs->size) {
        lc_error("rendezvous: answer has %u x %u bytes, expected %d x %zu", lc__get_u32(h + 4),
                 lc__get_u32(h), bs->size, len);
        return LC_ERR_CORRUPT;
    }
    if (lc__sock_read_full(b->fd, out, len * (size_t)bs->size, deadline) != LC_OK)
        return LC_ERR_COORD_LOST;
    return LC_OK;
}

static void lc__bootstrap_tcp_destroy(lc_bootstrap_t *bs)
{
    lc_bootstrap_tcp_t *b = (lc_bootstrap_tcp_t *)bs;
    if (b->fd >= 0) close(b->fd);
    /* The server ends once every rank has hung up (bounded by its timeout). */
    if (b->have_server) pthread_join(b->server, NULL);
    free(b);
}

static const lc_bootstrap_ops_t lc__bootstrap_tcp_ops = {
    .allgather = lc__bootstrap_tcp_allgather,
    .destroy = lc__bootstrap_tcp_destroy,
};

static lc_status_t lc__rdv_client_auth(lc_bootstrap_tcp_t *b, const lc_bootstrap_tcp_params_t *p,
                                       uint64_t deadline)
{
    uint8_t ch[LC_RDV_CHALLENGE_LEN], auth[LC_RDV_AUTH_LEN], acc[LC_RDV_ACCEPT_LEN], mac[32];
    lc_status_t st;

    st = lc__sock_read_full(b->fd, ch, sizeof(ch), deadline);
    if (st != LC_OK) {
        lc_error("rendezvous at %s: no challenge (%s)", p->coord, lc_status_str(st));
        return LC_ERR_COORD_LOST;
    }
    if (lc__get_u32(ch) != LC_RDV_MAGIC || lc__get_u32(ch + 4) != LC_RDV_VERSION) {
        lc_error("rendezvous at %s: not a Laconic rendezvous (or another version)", p->coord);
        return LC_ERR_REJECTED;
    }
    lc__put_u32(auth, LC_RDV_MAGIC);
    lc__put_u32(auth + 4, (uint32_t)p->rank);
    lc__put_u32(auth + 8, (uint32_t)p->size);
    lc__put_u64(auth + 12, p->job_id);
    LC_CHECK(lc__random_bytes(auth + 20, 16));
    lc__rdv_client_mac(p->job_key, p->job_key_len, ch + 8, (uint32_t)p->rank, (uint32_t)p->size,
                       p->job_id, auth + 36);
    st = lc__sock_write_full(b->fd, auth, sizeof(auth), deadline);
    if (st == LC_OK) st = lc__sock_read_full(b->fd, acc, sizeof(acc), deadline);
    if (st != LC_OK) {
        lc_error("rendezvous at %s refused rank %d (wrong job key, job id, size, or rank taken)",
                 p->coord, p->rank);
        return LC_ERR_REJECTED;
    }
    lc__rdv_server_mac(p->job_key, p->job_key_len, auth + 20, (uint32_t)p->rank, mac);
    if (lc__get_u32(acc) != LC_RDV_MAGIC || !lc__ct_equal(mac, acc + 8, 32)) {
        lc_error("rendezvous at %s could not prove it holds the job key", p->coord);
        return LC_ERR_REJECTED;
    }
    return LC_OK;
}

lc_status_t lc__bootstrap_tcp_create(const lc_bootstrap_tcp_params_t *p, lc_bootstrap_t **bs_p)
{
    lc_bootstrap_tcp_t *b;
    struct sockaddr_in addr;
    uint64_t deadline = lc__now_ns() + (uint64_t)p->timeout_ms * 1000000ull;
    lc_status_t st;

    if (p->rank < 0 || p->size < 1 || p->rank >= p->size) return LC_ERR_INVALID_ARG;
    LC_CHECK(lc__sock_parse_addr(p->coord, &addr));
    b = calloc(1, sizeof(*b));
    if (b == NULL) return LC_ERR_NO_MEMORY;
    b->super.ops = &lc__bootstrap_tcp_ops;
    b->super.rank = p->rank;
    b->super.size = p->size;
    b->fd = -1;
    b->timeout_ms = p->timeout_ms;

    if (p->rank == 0 && !p->external_server) {
        lc_rdv_server_t *s;
        int lfd = p->listen_fd;
        if (lfd < 0) {
            struct sockaddr_in la = addr;
            st = lc__sock_listen(&la, 128, &lfd);
            if (st != LC_OK) {
                /* The coordinator's host name may not be a local address. */
                la.sin_addr.s_addr = htonl(INADDR_ANY);
                LC_CHECK_GOTO(lc__sock_listen(&la, 128, &lfd), st, err_free);
            }
        }
        LC_CHECK_GOTO(lc__rdv_server_new(lfd, p->size, p->job_key, p->job_key_len, p->job_id,
                                         p->timeout_ms, &s),
                      st, err_free);
        if (pthread_create(&b->server, NULL, lc__rdv_thread, s) != 0) {
            lc__rdv_server_free(s);
            st = LC_ERR_SYSTEM;
            goto err_free;
        }
        b->have_server = 1;
    }
    st = lc__sock_connect(&addr, deadline, &b->fd);
    if (st != LC_OK) {
        lc_error("rank %d: cannot reach the rendezvous at %s", p->rank, p->coord);
        st = LC_ERR_COORD_LOST;
        goto err_close;
    }
    LC_CHECK_GOTO(lc__rdv_client_auth(b, p, deadline), st, err_close);
    {
        struct sockaddr_in la;
        socklen_t ll = sizeof(la);
        if (getsockname(b->fd, (struct sockaddr *)&la, &ll) == 0)
            inet_ntop(AF_INET, &la.sin_addr, b->super.local_ip, sizeof(b->super.local_ip));
    }
    *bs_p = &b->super;
    return LC_OK;

err_close:
    lc__bootstrap_tcp_destroy(&b->super);
    return st;
err_free:
    free(b);
    return st;
}
