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
 * - Views: the members of the current view (ranks of the first view) and
 *   its epoch. A member that fails or leaves makes the view pending; the
 *   coordinator (ft/coord_server.h) forms the next view when every live
 *   member asks (lc__ft_request_view), and members it removed are
 *   disconnected here. Control messages of an older epoch are ignored.
 * - Steps: every member votes on each step (lc__ft_vote): it commits when
 *   every member voted to commit, and aborts when one voted to abort.
 *   When a voter is lost before its vote arrived the coordinator settles
 *   the step (step.c says why the answer is the same on every survivor).
 * - Coordinator: one connection to it (coord_client.c), kept up and
 *   re-made when it drops; it hears our heartbeats and the peers we lose.
 *   Without it only view changes and steps it must settle wait; they fail
 *   with LC_ERR_COORD_LOST after the coordinator timeout.
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
    LC_FT_EVENT_PEER_LEFT = 3, /* a peer left on purpose after collectives up to seq; what it
                                  sent for them stays receivable */
    LC_FT_EVENT_VIEW = 4,      /* the next view is in force (members, epoch; seq: the first
                                  collective sequence number of the view) */
    LC_FT_EVENT_STEP = 5,      /* step seq is decided: committed or not */
    LC_FT_EVENT_REMOVED = 6,   /* we are in no view: the others went on without us */
    LC_FT_EVENT_COORD_LOST = 7 /* a view change or a step waits for the coordinator, which has
                                  been unreachable for the coordinator timeout */
} lc_ft_event_type_t;

typedef struct {
    lc_ft_event_type_t type;
    int peer;
    lc_status_t status; /* PEER_LOST: LC_ERR_PEER_LOST or LC_ERR_CORRUPT; ABORT: the peer's */
    uint64_t seq;       /* ABORT: the failed collective; PEER_LEFT: its last one; VIEW, STEP */
    int committed;      /* STEP */
    uint32_t epoch;     /* VIEW */
    const int *members; /* VIEW: first-view ranks, ascending (valid during the callback) */
    int nmembers;
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
    const char *coordinator; /* "host:port", or NULL: none */
    const uint8_t *job_key;  /* authenticates us to the coordinator */
    size_t job_key_len;
    uint64_t job_id;
    uint32_t coord_timeout_ms; /* how long view changes wait for an absent coordinator */
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

/* Cast our vote on step (LC_OK: commit, an error code: abort); the
 * outcome comes as LC_FT_EVENT_STEP (or LC_FT_EVENT_COORD_LOST). */
void lc__ft_vote(lc_ft_t *ft, uint64_t step, lc_status_t vote);

/* Ask the coordinator for the next view (next_seq: the sequence number our
 * next collective would have had); it comes as LC_FT_EVENT_VIEW, or
 * LC_FT_EVENT_REMOVED, or LC_FT_EVENT_COORD_LOST. */
void lc__ft_request_view(lc_ft_t *ft, uint64_t next_seq);

/* The view change asked for is no longer waited for (a timeout): a view
 * that comes now is taken at the next request. */
void lc__ft_forget_view_request(lc_ft_t *ft);

/* Tell the coordinator we leave (best effort, before lc__ft_goodbye). */
void lc__ft_leave(lc_ft_t *ft);

/* Whether a member failed or left since the view began (any thread). */
int lc__ft_view_pending(lc_ft_t *ft);

/* Close the coordinator connection (before the engine is destroyed). */
void lc__ft_stop(lc_ft_t *ft);

/* Free it, after the progress engine is destroyed (its tick refers to it). */
void lc__ft_destroy(lc_ft_t *ft);

#endif
