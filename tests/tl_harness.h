/*
 * A transport brought up in a forked test rank (tests/mp.h) through the TCP
 * rendezvous and driven from the test thread with lc__progress_run_once (no
 * progress thread): the harness of the transport and control-plane tests.
 */
#ifndef LC_TESTS_TL_HARNESS_H
#define LC_TESTS_TL_HARNESS_H

#include "core/progress.h"
#include "ft/ft.h"
#include "laconic.h"
#include "transport/transport.h"

#include <stddef.h>
#include <stdint.h>

/* The job key every harness rank uses. */
#define KEY "transport-test-key"

typedef struct {
    lc_progress_t *progress;
    const lc_tl_ops_t *ops;
    lc_tl_t *tl;
    int lost_peer;           /* last PEER_LOST event's rank, -1 */
    lc_status_t lost_status; /* ... its status */
    int lost_leaving;        /* ... and whether the peer had been marked leaving */
    lc_status_t up_status;   /* what the transport's create returned */
    /* Control messages received (the first 8): length, first and last byte. */
    int nctrl;
    size_t ctrl_len[8];
    uint8_t ctrl_first[8], ctrl_last[8];
    /* Set before tt_up: run the control plane (ft/) over the transport,
     * as a communicator does (heartbeats, silence, notices), its events to
     * ft_cb (may be NULL). */
    int with_ft;
    lc_ft_event_cb_t ft_cb;
    void *ft_arg;
    lc_ft_t *ft;
} tt_t;

/* A send or receive's completion. */
typedef struct {
    int done;
    lc_status_t status;
    size_t length;
} tt_op_t;

void tt_complete(void *arg, lc_status_t status, size_t length);

/* Bring up the "tcp" transport as rank of size (t's with_ft, ft_cb and
 * ft_arg kept, the rest zeroed), and the control plane over it when
 * with_ft; 0 on success. */
int tt_up(tt_t *t, int rank, int size);
void tt_down(tt_t *t);

/* Drive the engine until *flag is set or timeout_s passes; 0 when set. */
int tt_until(tt_t *t, const int *flag, double timeout_s);

/* Drive the engine until peer is reported lost (a PEER_LOST event) or
 * timeout_s passes; 0 when it was. */
int tt_until_lost(tt_t *t, int peer, double timeout_s);

/* After writing something peer must refuse: wait (a receive posted from it)
 * until peer drops our connections; 0 when it did within timeout_s. */
int tt_dropped_by(tt_t *t, int peer, double timeout_s);

lc_tl_tag_t tt_tag(uint64_t seq, uint32_t index, uint32_t sig);

#endif
