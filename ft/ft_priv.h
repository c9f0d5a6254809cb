/*
 * The control plane's state, shared by its files: ft.c (peers, heartbeats,
 * notices, the view), step.c (the step outcome vote) and coord_client.c
 * (the connection to the coordinator). Everything here is touched on the
 * progress thread only, but for `pending`.
 */
#ifndef LC_FT_FT_PRIV_H
#define LC_FT_FT_PRIV_H

#include "ft/coord_link.h"
#include "ft/ctrl_msg.h"
#include "ft/ft.h"

#include <netinet/in.h>
#include <stdatomic.h>

typedef struct {
    int member;          /* in the current view */
    int alive;           /* its transport link works */
    int left;            /* said goodbye ... */
    uint64_t left_seq;   /* ... after collectives up to this one */
    uint64_t last_tx_ns; /* we last sent it a control message */
    /* Its votes, by step parity (it can be one step ahead of us). */
    uint32_t vote_epoch[2];
    uint64_t vote_step[2];
    lc_status_t vote[2];
} lc_ft_peer_t;

enum { LC_CC_OFF = 0, LC_CC_DOWN, LC_CC_CONNECTING, LC_CC_CHALLENGE, LC_CC_ACCEPT, LC_CC_UP };

typedef struct {
    int phase;
    struct sockaddr_in addr;
    lc_clink_t link;
    lc_progress_fd_t *h;
    uint64_t retry_ns; /* next connection attempt (DOWN) */
    uint64_t down_ns;  /* not up since (0: up) */
    uint64_t beat_ns;  /* last BEAT sent */
    uint8_t nonce[16];
    /* What must reach it, sent again after a reconnection. */
    int want_view;
    uint64_t next_seq;
    int report;
    uint64_t report_step;
    int report_complete, report_asked;
} lc_ft_coord_t;

struct lc_ft {
    lc_ft_params_t p; /* p.epoch: the current view's */
    const lc_tl_ops_t *ops;
    lc_tl_t *tl;
    lc_ft_peer_t *peers; /* by rank of the first view */
    int *members;        /* the current view: first-view ranks, ascending */
    int nmembers;
    atomic_int pending; /* a member failed or left: the view must change */
    int removed;        /* the coordinator says we are in no view */

    /* The step being voted on (0: none), our vote, and whether its outcome
     * is the coordinator's to give (we reported to it). */
    uint64_t step;
    lc_status_t own;
    int frozen;
    uint64_t done_step[2]; /* the last steps decided here, by parity, and how */
    int done_complete[2];
    uint64_t poll_step; /* the coordinator asked about a step we have not voted in */

    lc_ft_coord_t c;
};

void lc__ft_emit(lc_ft_t *ft, const lc_ft_event_t *ev);
/* Send a control message to every live member. */
void lc__ft_broadcast(lc_ft_t *ft, const lc_ctrl_msg_t *m);
/* What the coordinator says. */
void lc__ft_on_view(lc_ft_t *ft, uint32_t epoch, uint64_t seq_base, const int *members, int n);
void lc__ft_on_notice(lc_ft_t *ft, int peer, int why);
void lc__ft_on_removed(lc_ft_t *ft);
/* A member failed (lost, or the coordinator says so) or left. */
void lc__ft_member_gone(lc_ft_t *ft, int peer);

/* step.c */
void lc__ft_step_eval(lc_ft_t *ft);
void lc__ft_step_on_vote(lc_ft_t *ft, int peer, uint32_t epoch, uint64_t step, lc_status_t st);
void lc__ft_step_on_poll(lc_ft_t *ft, uint64_t step);
void lc__ft_step_on_outcome(lc_ft_t *ft, uint64_t step, int commit);

/* coord_client.c */
lc_status_t lc__ft_coord_init(lc_ft_t *ft);
void lc__ft_coord_tick(lc_ft_t *ft, uint64_t now);
/* Send if connected (else what must be said is sent on reconnection). */
void lc__ft_coord_send(lc_ft_t *ft, int type, const void *body, size_t len);
void lc__ft_coord_report(lc_ft_t *ft, uint64_t step, int complete, int asked);
void lc__ft_coord_close(lc_ft_t *ft);

#endif
