/*
 * The link rate probe at set-up (probe.c says how it measures), over any
 * transport: the slowest rate between hosts, the same on every rank.
 */
#ifndef LC_FT_PROBE_H
#define LC_FT_PROBE_H

#include "core/progress.h"
#include "laconic.h"
#include "transport/transport.h"

#include <stdint.h>

typedef struct {
    int rank, size;
    const lc_tl_ops_t *ops;
    lc_tl_t *tl;               /* created, its fds registered with progress */
    lc_progress_t *progress;   /* driven on the calling thread (no progress thread yet) */
    lc_bootstrap_t *bootstrap; /* for the exchange of the figures */
    uint64_t bytes;            /* LC_LINK_PROBE_BYTES (0: send none, rate unknown) */
    int one_host;              /* every rank on one host (agreed): no probe */
    uint32_t timeout_ms;       /* LC_CONNECT_TIMEOUT_MS */
} lc_ft_probe_params_t;

/* Measure and agree: *mbps_p is the slowest rate measured on a link between
 * two hosts in Mbit/s, the same on every rank, 0 when unknown (one host,
 * one rank, LC_LINK_PROBE_BYTES=0, a link too short-lived to measure).
 * Collective: every rank calls it with the same one_host. On failure the
 * rank whose exchange failed returns its reason (LC_ERR_TIMEOUT,
 * LC_ERR_PEER_LOST, LC_ERR_CORRUPT for a count over 1 GiB or an answer that
 * does not fit what was sent, LC_ERR_NO_MEMORY) and the others
 * LC_ERR_PEER_LOST. */
lc_status_t lc__ft_probe_link(const lc_ft_probe_params_t *params, uint32_t *mbps_p);

#endif
