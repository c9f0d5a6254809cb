/*
 * The control plane above every transport (DESIGN section 2): heartbeats,
 * silence detection, abort and goodbye notices, the view's epoch. It speaks
 * to peers only through a transport's control messages (ft/ctrl_msg.h over
 * lc_tl_ops_t::ctrl_send), so every transport gets it whole.
 *
 * - Heartbeats: a peer hears from us at least every quarter of the peer
 *   timeout (LC_PEER_TIMEOUT_MS), a HEARTBEAT when nothing else was sent.
 * - Silence: a peer from which no byte of any kind arrived for the peer
 *   timeout (lc_tl_ops_t::last_heard: data counts, so a peer busy sending
 *   a large message is not silent) is disconnected and reported lost.
 * - Abort: a collective that fails here is announced to every live peer
 *   (lc__ft_notify_abort), so ranks that do not talk to the cause do not
 *   wait for messages that never come; a peer's notice of the current
 *   epoch is reported as LC_FT_EVENT_ABORT.
 * - Goodbye: a rank that destroys its communicator says so with the last
 *   collective it took part in (lc__ft_goodbye); the transport is told the
 *   peer leaves (its closing streams are then no failure), and the
 *   communicator fails only the collectives after that one.
 * - Corrupt: a control message that does not validate disconnects its
 *   sender with LC_ERR_CORRUPT.
 *
 * Threading: like the transport, everything runs on the progress thread,
 * but for lc__ft_create, lc__ft_start (before it starts) and lc__ft_goodbye
 * and lc__ft_destroy (after it stopped).
 */
#ifndef LC_FT_FT_H
#define LC_FT_FT_H

#include "core/progress.h"
#include "laconic.h"
#include "transport/transport.h"

#include <stdint.h>

typedef struct lc_ft lc_ft_t;

typedef enum {
    LC_FT_EVENT_PEER_LOST = 1, /* a peer failed, went silent or sent garbage (status) */
    LC_FT_EVENT_ABORT = 2,     /* a peer reports that collective seq failed with status */
    LC_FT_EVENT_PEER_LEFT = 3  /* a peer left on purpose after collectives up to seq; what it
                                  sent for them stays receivable */
} lc_ft_event_type_t;

typedef struct {
    lc_ft_event_type_t type;
    int peer;
    lc_status_t status; /* PEER_LOST: LC_ERR_PEER_LOST or LC_ERR_CORRUPT; ABORT: the peer's */
    uint64_t seq;       /* ABORT: the failed collective; PEER_LEFT: its last one */
} lc_ft_event_t;

typedef void (*lc_ft_event_cb_t)(void *arg, const lc_ft_event_t *event);

typedef struct {
    int rank;
    int size;
    uint32_t epoch;            /* the view's number, in every message */
    uint32_t peer_timeout_ms;  /* silence longer than this is a lost peer */
    lc_progress_t *progress;   /* where the heartbeat tick runs */
    lc_ft_event_cb_t event_cb; /* on the progress thread */
    void *event_arg;
} lc_ft_params_t;

/* Make the control plane; the transport comes later (lc__ft_start). */
lc_status_t lc__ft_create(const lc_ft_params_t *params, lc_ft_t **ft_p);

/* The transport's event callback: pass it, with the lc_ft_t as its
 * argument, in lc_tl_params_t. */
void lc__ft_on_tl_event(void *arg, const lc_tl_event_t *event);

/* Start watching the peers over tl (created with lc__ft_on_tl_event):
 * silence counts from the end of the transport's set-up. */
lc_status_t lc__ft_start(lc_ft_t *ft, const lc_tl_ops_t *ops, lc_tl_t *tl);

/* Tell every live peer that collective seq failed here with status. */
void lc__ft_notify_abort(lc_ft_t *ft, uint64_t seq, lc_status_t status);

/* Tell every live peer we leave after collectives up to seq (best effort:
 * before the transport is destroyed). */
void lc__ft_goodbye(lc_ft_t *ft, uint64_t seq);

/* Free it, after the progress engine is destroyed (its tick refers to it). */
void lc__ft_destroy(lc_ft_t *ft);

#endif
