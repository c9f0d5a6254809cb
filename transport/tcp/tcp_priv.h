/*
 * Private state of the TCP transport, shared by its set-up (tcp_wireup.c)
 * and its data path (tcp.c).
 */
#ifndef LC_TRANSPORT_TCP_PRIV_H
#define LC_TRANSPORT_TCP_PRIV_H

#include "transport/tcp/tcp_frame.h"
#include "transport/transport.h"

#include <netinet/tcp.h>
#include <stddef.h>
#include <stdint.h>

/* A queued send or posted receive. */
typedef struct lc_tcp_op {
    struct lc_tcp_op *next;
    lc_tl_tag_t tag;
    uint8_t *buf;
    size_t len;
    size_t done; /* payload bytes moved */
    lc_tl_complete_cb_t cb;
    void *arg;
    uint8_t hdr[LC_TCP_HDR_LEN]; /* sends: the encoded header */
    size_t hdr_done;
    int zero_fill;                 /* a cancelled send already on the wire: finish it with zeros */
    uint8_t ctrl[LC_TCP_CTRL_MAX]; /* a control message's copy (buf points here) */
} lc_tcp_op_t;

enum { LC_TCP_RX_HDR, LC_TCP_RX_DECIDE, LC_TCP_RX_INTO_OP, LC_TCP_RX_DISCARD, LC_TCP_RX_CTRL };

struct lc_tcp_peer;

typedef struct {
    int fd;
    int index; /* 0: control, 1..C: data */
    struct lc_tcp_peer *peer;
    lc_progress_fd_t *h;
    uint32_t events;
    int busy_rx, busy_tx; /* inside the read / write loop (re-entrancy guard) */
    int eof;              /* the peer closed this connection at a frame boundary */
    lc_tcp_op_t *sq_head, *sq_tail;
    lc_tcp_op_t *rq_head, *rq_tail;
    /* the frame being received */
    int rx_state;
    uint8_t rhdr[LC_TCP_HDR_LEN];
    size_t rhdr_got;
    lc_tcp_frame_t fh;
    size_t payload_done;
    uint32_t crc;
    lc_tcp_op_t *rop;
    uint8_t ctrl[LC_TCP_CTRL_MAX]; /* connection 0: the control message being read */
} lc_tcp_conn_t;

typedef struct lc_tcp_peer {
    struct lc_tl_tcp *tl;
    int rank;
    int alive;
    int said_bye;         /* it is closing on purpose (peer_leaving) */
    lc_tcp_conn_t *conns; /* 1 + ndata: control, then data */
    uint64_t last_rx_ns;  /* bytes last came from it (last_heard) */
} lc_tcp_peer_t;

typedef struct lc_tl_tcp {
    int rank, size;
    uint32_t epoch;
    int ndata; /* data connections per peer */
    int checksum;
    lc_progress_t *progress;
    lc_tl_event_cb_t event_cb;
    void *event_arg;
    lc_tcp_peer_t *peers; /* indexed by rank; peers[rank] unused */
    uint64_t cancel_wm;   /* frames and ops of collectives <= this are dropped */
    lc_tcp_op_t *free_ops;
    lc_tl_stats_t stats;
    uint8_t *discard; /* sink for dropped payloads */
} lc_tl_tcp_t;

/* TCP_RTO_MIN_US (Linux 6.15): the floor of a connection's retransmission
 * timeout, in microseconds. Debian 12's headers predate it; older kernels
 * refuse it with ENOPROTOOPT. */
#ifndef TCP_RTO_MIN_US
#define TCP_RTO_MIN_US 45
#endif

#define LC_TCP_DISCARD_BYTES (64u << 10)

/* Set-up: sockets connected and authenticated, one fd per (peer, index);
 * fds[peer * (1 + ndata) + index]. */
lc_status_t lc__tcp_wireup(const lc_tl_params_t *params, int ndata, int *fds);

/*
 * After wire-up: this rank's round trip to each peer is the smallest the
 * kernel measured (TCP_INFO) over that pair's connections, and a peer is on
 * this host when each of its connections has the same address at both ends
 * (outgoing connections are not bound: a connection between two loopback
 * addresses starts from 127.0.0.1). The ranks then exchange their largest
 * round trip and whether all their peers are local through the bootstrap,
 * and all keep the largest round trip (*rtt_us) and whether every rank
 * found every peer local (*one_host), so every rank ends with the same
 * values. The exchange doubles as a barrier: when it returns,
 * every rank has finished wiring up.
 */
lc_status_t lc__tcp_agree_link(const lc_tl_params_t *params, const int *fds, int per,
                               uint32_t *rtt_us, uint8_t *one_host);

/* The smallest round trip the kernel measured on fd while sending on it, in
 * us (0 = unknown). */
uint32_t lc__tcp_min_rtt(int fd);

/* 1 when the connection's two ends have the same address (a peer on this
 * host), else 0 (or when the addresses cannot be read). */
int lc__tcp_same_host(int fd);

/* Set fd's TCP congestion control to name (setsockopt's result: 0, or -1
 * with errno). */
int lc__tcp_set_congestion(int fd, const char *name);

/* Data path entry for a connection's fd events (registered by create). */
void lc__tcp_conn_event(void *arg, uint32_t events);

#endif
