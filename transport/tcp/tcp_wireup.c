/*
 * TCP transport set-up: every rank listens, publishes its address through
 * the bootstrap, then connects to every lower rank and accepts every higher
 * one, 1 + LC_TCP_CONNS connections per pair. Each connection is
 * authenticated by the HELLO handshake of tcp_frame.h before it counts.
 *
 * Advertised address: LC_IFADDR if set; else the address this process used
 * to reach the rendezvous (the interface its peers most likely share); else
 * the first non-loopback IPv4 interface that is up; else 127.0.0.1.
 *
 * The accept loop survives strangers: a connection that sends garbage, the
 * wrong job id, a rank that is not expected, a bad HMAC, or nothing within 5
 * seconds is logged and closed, and accepting goes on until every expected
 * connection arrived or the connect timeout passed.
 */
#include "core/sha256.h"
#include "core/util.h"
#include "transport/tcp/tcp_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LC_TCP_HANDSHAKE_MS 5000

static void lc__tcp_pick_address(const lc_tl_params_t *p, struct in_addr *ip)
{
    struct ifaddrs *ifs, *i;

    ip->s_addr = htonl(INADDR_LOOPBACK);
    if (p->config->ifaddr != NULL && inet_pton(AF_INET, p->config->ifaddr, ip) == 1) return;
    if (p->config->ifaddr != NULL)
        lc_warn("LC_IFADDR=%s is not an IPv4 address", p->config->ifaddr);
    if (p->bootstrap->local_ip[0] != '\0' && inet_pton(AF_INET, p->bootstrap->local_ip, ip) == 1)
        return;
    if (getifaddrs(&ifs) != 0) return;
    for (i = ifs; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET) continue;
        if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
        *ip = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        break;
    }
    freeifaddrs(ifs);
}

static void lc__tcp_hello2(const lc_tl_params_t *p, const uint8_t *peer_nonce,
                           const uint8_t *own_nonce, uint32_t rank, uint32_t index, uint8_t *out)
{
    uint8_t ids[16];
    lc__put_u32(ids, rank);
    lc__put_u32(ids + 4, index);
    lc__put_u64(ids + 8, p->job_id);
    const void *parts[] = { "lc-hello", peer_nonce, own_nonce, ids };
    const size_t lens[] = { 8, 16, 16, sizeof(ids) };
    lc__hmac_sha256(p->job_key, p->job_key_len, parts, lens, 4, out);
}

/*
 * Run the handshake on fd. expect_rank >= 0: the peer must be that rank with
 * that index (we connected to it). expect_rank < 0: we accepted; the peer must
 * be a higher rank; its rank and index are returned.
 */
static lc_status_t lc__tcp_handshake(const lc_tl_params_t *p, int fd, int expect_rank,
                                     int expect_index, int ndata, int *rank_p, int *index_p)
{
    uint64_t deadline = lc__now_ns() + (uint64_t)LC_TCP_HANDSHAKE_MS * 1000000ull;
    uint8_t mine[LC_TCP_HELLO1_LEN], theirs[LC_TCP_HELLO1_LEN];
    uint8_t mac[LC_TCP_HELLO2_LEN], want[LC_TCP_HELLO2_LEN];
    uint32_t index = (uint32_t)(expect_rank >= 0 ? expect_index : 0);
    uint32_t prank, pindex;
    lc_status_t st;

    lc__put_u32(mine, LC_TCP_HELLO_MAGIC);
    lc__put_u32(mine + 4, LC_TCP_HELLO_VERSION);
    lc__put_u64(mine + 8, p->job_id);
    lc__put_u32(mine + 16, (uint32_t)p->rank);
    lc__put_u32(mine + 20, index);
    lc__put_u32(mine + 24, (uint32_t)p->size);
    LC_CHECK(lc__random_bytes(mine + 28, 16));
    /* The connecting side speaks first so the acceptor reveals nothing to
     * a stranger before it has at least sent a well-formed hello. */
    if (expect_rank >= 0) LC_CHECK(lc__sock_write_full(fd, mine, sizeof(mine), deadline));
    st = lc__sock_read_full(fd, theirs, sizeof(theirs), deadline);
    if (st != LC_OK) return st == LC_ERR_TIMEOUT ? LC_ERR_TIMEOUT : LC_ERR_REJECTED;
    prank = lc__get_u32(theirs + 16);
    pindex = lc__get_u32(theirs + 20);
    if (lc__get_u32(theirs) != LC_TCP_HELLO_MAGIC ||
        lc__get_u32(theirs + 4) != LC_TCP_HELLO_VERSION) {
        lc_warn("connection refused: not a Laconic peer (bad hello)");
        return LC_ERR_REJECTED;
    }
    if (lc__get_u64(theirs + 8) != p->job_id || lc__get_u32(theirs + 24) != (uint32_t)p->size) {
        lc_warn("connection refused: rank %u belongs to another job", prank);
        return LC_ERR_REJECTED;
    }
    if (expect_rank >= 0 ? (prank != (uint32_t)expect_rank || pindex != index)
                         : (prank <= (uint32_t)p->rank || prank >= (uint32_t)p->size ||
                            pindex > (uint32_t)ndata)) {
        lc_warn("connection refused: unexpected rank %u / connection %u", prank, pindex);
        return LC_ERR_REJECTED;
    }
    if (expect_rank < 0) {
        index = pindex;
        lc__put_u32(mine + 20, index);
        LC_CHECK(lc__sock_write_full(fd, mine, sizeof(mine), deadline));
    }
    lc__tcp_hello2(p, theirs + 28, mine + 28, (uint32_t)p->rank, index, mac);
    LC_CHECK(lc__sock_write_full(fd, mac, sizeof(mac), deadline));
    st = lc__sock_read_full(fd, mac, sizeof(mac), deadline);
    if (st != LC_OK) return LC_ERR_REJECTED;
    lc__tcp_hello2(p, mine + 28, theirs + 28, prank, index, want);
    if (!lc__ct_equal(mac, want, sizeof(want))) {
        lc_warn("connection refused: rank %u does not hold the job key", prank);
        return LC_ERR_REJECTED;
    }
    *rank_p = (int)prank;
    *index_p = (int)index;
    return LC_OK;
}

int lc__tcp_set_congestion(int fd, const char *name)
{
    return setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name));
}

/* LC_OK when LC_TCP_CONGESTION is unset or names a congestion control this
 * kernel lets this process use (tried on a throwaway socket), else a clear
 * message and LC_ERR_INVALID_ARG. */
static lc_status_t lc__tcp_check_congestion(const lc_config_t *cfg)
{
    int fd, rc, err;

    if (cfg->tcp_congestion == NULL) return LC_OK;
    if (strlen(cfg->tcp_congestion) >= 16) { /* TCP_CA_NAME_MAX */
        lc_error("LC_TCP_CONGESTION=%s: longer than any congestion control's name",
                 cfg->tcp_congestion);
        return LC_ERR_INVALID_ARG;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        lc_error("socket: %s", strerror(errno));
        return LC_ERR_SYSTEM;
    }
    rc = lc__tcp_set_congestion(fd, cfg->tcp_congestion);
    err = errno;
    close(fd);
    if (rc == 0) return LC_OK;
    lc_error("LC_TCP_CONGESTION=%s: %s (the kernel offers those in "
             "/proc/sys/net/ipv4/tcp_available_congestion_control; without privilege, only those "
             "in tcp_allowed_congestion_control)",
             cfg->tcp_congestion, strerror(err));
    return LC_ERR_INVALID_ARG;
}

lc_status_t lc__tcp_wireup(const lc_tl_params_t *p, int ndata, int *fds)
{
    const int per = 1 + ndata;
    uint64_t deadline = lc__now_ns() + (uint64_t)p->config->connect_timeout_ms * 1000000ull;
    struct sockaddr_in la;
    uint8_t blob[8], *all = NULL;
    int lfd = -1, expected, accepted = 0;
    lc_status_t st;

    for (int i = 0; i < p->size * per; i++) fds[i] = -1;
    memset(&la, 0, sizeof(la));
    la.sin_family = AF_INET;
    lc__tcp_pick_address(p, &la.sin_addr);
    /* Listen on every interface; the advertised address is what peers use. */
    struct sockaddr_in bind_addr = la;
    bind_addr.sin_addr.s_addr = htonl(INADDR_ANY);
    /* A rank that cannot go on still joins the address exchange, with its
     * reason in blob[6], so every rank stops with it instead of waiting for
     * its address (forever, under an MPI bootstrap). */
    lc_status_t cc = lc__tcp_check_congestion(p->config);
    lc_status_t ls = lc__sock_listen(&bind_addr, 1024, &lfd);
    memcpy(blob, &la.sin_addr.s_addr, 4);
    memcpy(blob + 4, &bind_addr.sin_port, 2);
    blob[6] = (uint8_t)((cc == LC_ERR_INVALID_ARG ? 1 : 0) |
                        ((cc != LC_OK && cc != LC_ERR_INVALID_ARG) || ls != LC_OK ? 2 : 0));
    blob[7] = 0;
    all = malloc((size_t)p->size * sizeof(blob));
    if (all == NULL) {
        st = LC_ERR_NO_MEMORY;
        goto out;
    }
    LC_CHECK_GOTO(p->bootstrap->ops->allgather(p->bootstrap, blob, sizeof(blob), all), st, out);
    st = LC_OK;
    for (int r = 0; r < p->size; r++) {
        uint8_t why = all[r * 8 + 6];
        if (why == 0) continue;
        if (r != p->rank)
            lc_error("rank %d cannot connect: %s", r,
                     why & 1 ? "it refused LC_TCP_CONGESTION" : "it could not open a socket");
        /* A refused congestion control is a configuration error on every rank. */
        if ((why & 1) || st == LC_OK) st = why & 1 ? LC_ERR_INVALID_ARG : LC_ERR_SYSTEM;
    }
    if (st != LC_OK) goto out;

    /* Connect to every lower rank. */
    for (int peer = 0; peer < p->rank; peer++) {
        struct sockaddr_in pa;
        memset(&pa, 0, sizeof(pa));
        pa.sin_family = AF_INET;
        memcpy(&pa.sin_addr.s_addr, all + peer * 8, 4);
        memcpy(&pa.sin_port, all + peer * 8 + 4, 2);
        for (int idx = 0; idx < per; idx++) {
            int fd, r, i;
            LC_CHECK_GOTO(lc__sock_connect(&pa, deadline, &fd), st, out);
            fds[peer * per + idx] = fd;
            st = lc__tcp_handshake(p, fd, peer, idx, ndata, &r, &i);
            if (st != LC_OK) {
                lc_error("handshake with rank %d (connection %d) failed: %s", peer, idx,
                         lc_status_str(st));
                goto out;
            }
        }
    }
    /* Accept every higher rank, refusing strangers. */
    expected = (p->size - 1 - p->rank) * per;
    while (accepted < expected) {
        struct pollfd pfd = { .fd = lfd, .events = POLLIN };
        uint64_t now = lc__now_ns();
        int r, fd, prank, pidx;
        if (now >= deadline) {
            lc_error("only %d of %d connections from higher ranks arrived within %u ms", accepted,
                     expected, p->config->connect_timeout_ms);
            st = LC_ERR_TIMEOUT;
            goto out;
        }
        r = poll(&pfd, 1, (int)LC_MIN(LC_DIV_UP(deadline - now, 1000000ull), 1000ull));
        if (r <= 0) continue;
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        st = lc__tcp_handshake(p, fd, -1, 0, ndata, &prank, &pidx);
        if (st != LC_OK || fds[prank * per + pidx] >= 0) {
            if (st == LC_OK) lc_warn("connection refused: duplicate rank %d / %d", prank, pidx);
            close(fd);
            continue;
        }
        fds[prank * per + pidx] = fd;
        accepted++;
    }
    st = LC_OK;
out:
    if (lfd >= 0) close(lfd);
    free(all);
    if (st != LC_OK) {
        for (int i = 0; i < p->size * per; i++) {
            if (fds[i] >= 0) close(fds[i]);
            fds[i] = -1;
        }
    }
    return st;
}

/* The smallest round trip the kernel measured on fd, in us: tcpi_min_rtt
 * (Linux 4.10+), read at its fixed place in the kernel's struct tcp_info
 * because glibc's copy of the struct ends before it; else the smoothed round
 * trip; 0 = unknown. Only a connection's data sender measures its round
 * trip: on the receiving end the figure counts the handshake's delayed
 * acknowledgements (milliseconds, even on loopback), and the sender's
 * smoothed figure after a bulk transfer counts the queue it built (many
 * times the link's round trip; docs/performance.md). */
#define LC_TCPI_MIN_RTT_AT 148
uint32_t lc__tcp_min_rtt(int fd)
{
    uint8_t raw[256];
    struct tcp_info ti;
    socklen_t len = sizeof(raw);
    uint32_t v = 0;

    memset(raw, 0, sizeof(raw));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, raw, &len) != 0) return 0;
    /* The fallback figure can only be larger: it makes the 16 round trips
     * harder to reach, never easier. */
    if (len >= LC_TCPI_MIN_RTT_AT + sizeof(v)) memcpy(&v, raw + LC_TCPI_MIN_RTT_AT, sizeof(v));
    if (v == UINT32_MAX) v = 0; /* no sample yet */
    if (v == 0 && len >= sizeof(ti)) {
        memcpy(&ti, raw, sizeof(ti));
        v = ti.tcpi_rtt;
    }
    return v;
}

int lc__tcp_same_host(int fd)
{
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof(me), pl = sizeof(peer);

    if (getsockname(fd, (struct sockaddr *)&me, &ml) != 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 || me.ss_family != peer.ss_family)
        return 0;
    if (me.ss_family == AF_INET)
        return ((struct sockaddr_in *)&me)->sin_addr.s_addr ==
               ((struct sockaddr_in *)&peer)->sin_addr.s_addr;
    if (me.ss_family == AF_INET6)
        return memcmp(&((struct sockaddr_in6 *)&me)->sin6_addr,
                      &((struct sockaddr_in6 *)&peer)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return 0;
}

lc_status_t lc__tcp_agree_link(const lc_tl_params_t *p, const int *fds, int per, uint32_t *rtt_us,
                               uint8_t *one_host)
{
    /* Per rank: [0] its longest round trip to a peer, [1] 1 if every peer is on its host. */
    uint32_t mine[2] = { 0, 1 }, *all = malloc((size_t)p->size * sizeof(mine));
    lc_status_t st;

    if (all == NULL) return LC_ERR_NO_MEMORY;
    for (int r = 0; r < p->size; r++) {
        uint32_t best = UINT32_MAX;
        if (r == p->rank) continue;
        for (int i = 0; i < per; i++) {
            struct tcp_info ti;
            socklen_t len = sizeof(ti);
            memset(&ti, 0, sizeof(ti));
            if (getsockopt(fds[r * per + i], IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
                ti.tcpi_rtt > 0)
                best = LC_MIN(best, (uint32_t)ti.tcpi_rtt);
            if (!lc__tcp_same_host(fds[r * per + i])) mine[1] = 0;
        }
        if (best != UINT32_MAX) mine[0] = LC_MAX(mine[0], best);
    }
    st = p->bootstrap->ops->allgather(p->bootstrap, mine, sizeof(mine), all);
    if (st == LC_OK) {
        *rtt_us = 0;
        *one_host = 1;
        for (int r = 0; r < p->size; r++) {
            *rtt_us = LC_MAX(*rtt_us, all[2 * r]);
            if (!all[2 * r + 1]) *one_host = 0;
        }
        lc_info("tcp: round trip %u us from this rank, %u us the longest between any ranks; "
                "%s",
                mine[0], *rtt_us, *one_host ? "all ranks on one host" : "ranks on several hosts");
    }
    free(all);
    return st;
}
