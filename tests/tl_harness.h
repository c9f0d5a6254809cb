/*
 * A transport brought up in a forked test rank (tests/mp.h) through the TCP
 * rendezvous and driven from the test thread with lc__progress_run_once (no
 * progress thread): the harness of the transport and control-plane tests.
 */
#ifndef LC_TESTS_TL_HARNESS_H
#define LC_TESTS_TL_HARNESS_H

#include "core/progress.h"
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
    int lost_peer;         /* last PEER_LOST event's rank, -1 */
    lc_status_t up_status; /* what the transport's create returned */
    /* Set before tt_up to see every transport event too (the control
     * plane's lc__ft_on_tl_event, say). */
    lc_tl_event_cb_t on_event;
    void *on_event_arg;
} tt_t;

/* A send or receive's completion. */
typedef struct {
    int done;
    lc_status_t status;
    size_t length;
} tt_op_t;

void tt_complete(void *arg, lc_status_t status, size_t length);

/* Bring up the "tcp" transport as rank of size (t's on_event and
 * on_event_arg kept, the rest zeroed); 0 on success. */
int tt_up(tt_t *t, int rank, int size);
void tt_down(tt_t *t);

/* Drive the engine until *flag is set or timeout_s passes; 0 when set. */
int tt_until(tt_t *t, const int *flag, double timeout_s);

lc_tl_tag_t tt_tag(uint64_t seq, uint32_t index, uint32_t sig);

#endif
