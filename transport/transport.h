/*
 * The transport interface: the only thing coll/ and the API layer know about
 * moving bytes between ranks.
 *
 * A transport connects every pair of ranks of a communicator and carries
 * messages between them with FIFO semantics per (sender, receiver) pair: the
 * k-th message rank a sends to rank b is matched by the k-th receive b posts
 * for a. Both sides follow the same deterministic schedule, so FIFO order is
 * all the matching a collective needs; no tag search, no unexpected-message
 * buffers. A transport may stripe messages over several connections as long
 * as it keeps this order.
 *
 * Each message carries a tag (collective sequence number, message index,
 * argument signature, codec id). The receiver checks it against the tag of
 * the receive it posted: a different signature means the ranks called
 * different collectives (LC_ERR_MISMATCH); anything else that does not fit
 * is LC_ERR_CORRUPT. Payloads longer than the posted receive are refused, never
 * written past the buffer.
 *
 * Beside messages, a transport carries small *control messages* (at most
 * LC_TL_CTRL_MAX bytes) that it never queues behind data and never leaves
 * unread: the control plane above it (ft/: heartbeats, silence detection,
 * abort and goodbye notices, epochs) speaks through them, so a transport
 * is a byte mover and every transport gets the control plane for free.
 * What is the transport's own: connecting and authenticating, noticing a
 * connection that fails or closes (LC_TL_EVENT_PEER_LOST), when any bytes
 * last came from a peer (last_heard), the round trips measured at set-up,
 * and what it knows of each peer (peer_info: on this host? its round trip).
 *
 * Versioned: lc_tl_ops_t::abi is LC_TL_ABI for the interface a transport
 * was written against; lc__tl_find refuses another.
 *
 * Threading: create() runs on the caller's thread before the communicator's
 * progress thread starts; it registers its fds with params->progress. Every
 * other call, and every callback, happens on the progress thread (destroy()
 * and a last ctrl_send() run after it has stopped).
 */
#ifndef LC_TRANSPORT_TRANSPORT_H
#define LC_TRANSPORT_TRANSPORT_H

#include "laconic.h"
#include "core/config.h"
#include "core/progress.h"
#include "transport/bootstrap.h"

#include <stddef.h>
#include <stdint.h>

typedef struct lc_tl lc_tl_t;

/* The version of this interface (lc_tl_ops_t::abi). 2: control messages
 * (ctrl_send, LC_TL_EVENT_CTRL) replaced the transport's own heartbeats,
 * abort and goodbye notices; query() added. 3: peer_info() added, and the
 * link rate probe moved up to ft/ (lc_tl_stats_t lost link_mbps). */
#define LC_TL_ABI 3u

/* The longest control message a transport must carry. */
#define LC_TL_CTRL_MAX 64u

/* What a message says about itself; checked by the receiver. */
typedef struct {
    uint64_t seq;   /* collective sequence number on the communicator (starts at 1) */
    uint32_t index; /* message index within the collective for this (src, dst) pair */
    uint32_t sig;   /* hash of the collective's arguments */
    uint8_t codec;  /* codec id of the payload; 0 = raw */
    uint8_t lanes;  /* a transport with several connections per peer spreads the
                       collective's messages over at most this many (0 = all); both
                       sides of a pair pass the same value */
} lc_tl_tag_t;

/*
 * Completion of a send (buffer reusable) or a receive (payload in place).
 * length: bytes received (<= posted length) or sent. A failed operation
 * reports its status (LC_ERR_PEER_LOST, LC_ERR_MISMATCH, LC_ERR_CORRUPT...).
 * Operations cancelled by lc_tl_ops_t::cancel get no callback.
 */
typedef void (*lc_tl_complete_cb_t)(void *arg, lc_status_t status, size_t length);

typedef enum {
    /* A peer's connections failed, closed, or carried a frame that does not
     * validate (status LC_ERR_CORRUPT), or disconnect() was called: every
     * operation with it failed, nothing more moves. Once per peer. */
    LC_TL_EVENT_PEER_LOST = 1,
    /* A control message from peer (msg, len: valid during the callback). */
    LC_TL_EVENT_CTRL = 2
} lc_tl_event_type_t;

typedef struct {
    lc_tl_event_type_t type;
    int peer;
    lc_status_t status; /* PEER_LOST: LC_ERR_PEER_LOST or LC_ERR_CORRUPT */
    int leaving;        /* PEER_LOST: the peer had been marked leaving (peer_leaving) */
    const void *msg;    /* CTRL */
    size_t len;
} lc_tl_event_t;

typedef void (*lc_tl_event_cb_t)(void *arg, const lc_tl_event_t *event);

typedef struct {
    int rank;
    int size;
    uint32_t epoch;            /* the view's number (ft/): stamped on every message, and a
                                  message of another is dropped */
    lc_progress_t *progress;   /* engine the transport registers its fds with */
    lc_bootstrap_t *bootstrap; /* address exchange; valid during create() only */
    const uint8_t *job_key;    /* shared secret for the connection handshake */
    size_t job_key_len;
    uint64_t job_id;           /* hash of the job id string */
    const lc_config_t *config; /* LC_TCP_CONNS, LC_TCP_BUFSIZE, LC_IFADDR, timeouts... */
    lc_tl_event_cb_t event_cb; /* peer lost, control messages; on the progress thread */
    void *event_arg;
} lc_tl_params_t;

typedef struct {
    uint64_t bytes_sent;      /* payload bytes */
    uint64_t bytes_received;  /* payload bytes */
    uint64_t wire_bytes_sent; /* payload + frame headers */
    uint32_t link_rtt_us;     /* the longest round trip any rank measured to any peer at set-up:
                                 the same value on every rank (0 = not measured) */
    uint8_t link_one_host;    /* 1: every rank reached every peer at its own address (all ranks
                                 on one host); the same on every rank (0 = no, or unknown) */
} lc_tl_stats_t;

/* What a transport can do (query). */
typedef struct {
    size_t max_payload; /* the longest message */
    size_t ctrl_max;    /* the longest control message (>= LC_TL_CTRL_MAX) */
    int lanes;          /* connections (or queues) a peer's messages are spread over */
} lc_tl_props_t;

/* What the transport knows of one peer (peer_info). */
typedef struct {
    int local;       /* the peer is on this host (it reached us at our own address) */
    uint32_t rtt_us; /* the smallest round trip measured to it while sending (0 = none yet) */
} lc_tl_peer_info_t;

/* ctrl_send flags. */
#define LC_TL_CTRL_IF_IDLE 1u /* drop the message if earlier ones to peer are still queued */

typedef struct lc_tl_ops {
    uint32_t abi; /* LC_TL_ABI */
    const char *name;
    /* Connect to every peer (through params->bootstrap) and authenticate. */
    lc_status_t (*create)(const lc_tl_params_t *params, lc_tl_t **tl_p);
    /* Close everything. Called after the progress thread has stopped. */
    void (*destroy)(lc_tl_t *tl);
    /* Queue a message to peer. buf must stay valid until the callback. */
    lc_status_t (*send)(lc_tl_t *tl, int peer, const lc_tl_tag_t *tag, const void *buf,
                        size_t length, lc_tl_complete_cb_t cb, void *arg);
    /* Post a receive of at most length bytes from peer. */
    lc_status_t (*recv)(lc_tl_t *tl, int peer, const lc_tl_tag_t *tag, void *buf, size_t length,
                        lc_tl_complete_cb_t cb, void *arg);
    /*
     * Forget every queued or partial operation of collectives with
     * sequence <= seq, without callbacks and without touching their buffers
     * again; frames of those collectives that arrive later are read and
     * dropped. Keeps every stream in step so the next collective works.
     */
    void (*cancel)(lc_tl_t *tl, uint64_t seq);
    /*
     * Queue control message msg (len: 1..ctrl_max bytes, copied) to peer,
     * ahead of any data and in order with the earlier ones: LC_OK;
     * LC_INPROGRESS when flags has LC_TL_CTRL_IF_IDLE and it was dropped
     * because earlier ones are still queued; LC_ERR_PEER_LOST if the peer is
     * lost.
     */
    lc_status_t (*ctrl_send)(lc_tl_t *tl, int peer, const void *msg, size_t len, unsigned flags);
    /*
     * The peer said it leaves on purpose (ft/ heard its goodbye): the end of
     * its streams is no longer a failure by itself. What it sent stays
     * receivable; a receive its ended streams can never satisfy fails, and
     * once every stream has ended the peer is reported lost (leaving = 1).
     */
    void (*peer_leaving)(lc_tl_t *tl, int peer);
    /* Close everything with peer now (why: for the log), fail its operations
     * with status, and report it lost. */
    void (*disconnect)(lc_tl_t *tl, int peer, lc_status_t status, const char *why);
    /* When bytes of any kind last arrived from peer (lc__now_ns clock; the end
     * of set-up if none yet). */
    uint64_t (*last_heard)(const lc_tl_t *tl, int peer);
    /* What it can do. */
    void (*query)(const lc_tl_t *tl, lc_tl_props_t *props);
    /* What it knows of peer (ft/'s link probe reads it). */
    void (*peer_info)(const lc_tl_t *tl, int peer, lc_tl_peer_info_t *info);
    /* Counters since create, and the link measured at set-up. */
    void (*stats)(const lc_tl_t *tl, lc_tl_stats_t *stats);
} lc_tl_ops_t;

/* Every transport built in; NULL-terminated. */
extern const lc_tl_ops_t *const lc__transports[];

/* Find a transport by name; NULL if not built in, or built for another
 * LC_TL_ABI (logged). */
const lc_tl_ops_t *lc__tl_find(const char *name);

#endif
