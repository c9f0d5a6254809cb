/*
 * The coordinator: decides the views of one job's communicator and settles
 * the steps its ranks could not settle among themselves. Data never flows
 * through it; every rank keeps one authenticated connection to it
 * (coord_link.h) and training goes on while it is down (coord_client.c).
 *
 * What it decides, from what the ranks tell it:
 * - A member has failed when its connection is gone and it has not come
 *   back within the peer timeout, when it sent nothing for the peer
 *   timeout, or when a live member reports its link to it lost (the first
 *   report wins: of two ranks that lost each other, the one reported first
 *   goes). A member that leaves says so. Every live member hears of it at
 *   once (NOTICE), so its collectives fail fast and it asks for a view.
 * - The next view: once every live member asked (SHRINK), the members that
 *   asked, under the next epoch, with a sequence base above every
 *   collective any of them started.
 * - A step's outcome, when a rank could not decide it from the votes (a
 *   voter was lost): it polls every live member and commits the step if and
 *   only if one of them received every vote for commit. A rank that
 *   decided by itself decided commit only in that case, and abort only when
 *   someone voted abort, so the answer agrees with every rank's own.
 * - A restarted coordinator knows nothing: it takes the view from the
 *   first rank that reconnects (or a later one with a higher epoch).
 * - A rank that is not in the view (a zombie: stopped, removed, resumed)
 *   is told REMOVED.
 *
 * One thread, one poll loop; nothing here blocks on a client.
 */
#ifndef LC_FT_COORD_SERVER_H
#define LC_FT_COORD_SERVER_H

#include "laconic.h"

#include <stddef.h>
#include <stdint.h>

typedef struct lc_coord_server lc_coord_server_t;

typedef struct {
    int listen_fd;          /* a listening socket to serve on (taken), or -1 ... */
    const char *addr;       /* ... then bind this "host:port" (port 0: any free one) */
    const uint8_t *job_key; /* the job's shared secret */
    size_t job_key_len;
    uint64_t job_id;          /* hash of the job id string (as the ranks compute it) */
    uint32_t peer_timeout_ms; /* silence that makes a member failed, at least (the ranks'
                                 own, when longer, wins) */
} lc_coord_server_params_t;

/* Bind (or take the socket) and start serving on a thread of its own. */
lc_status_t lc__coord_server_start(const lc_coord_server_params_t *params,
                                   lc_coord_server_t **server_p);
/* "host:port" it serves on. */
void lc__coord_server_address(const lc_coord_server_t *server, char *buf, size_t len);
/* Stop the thread and close every connection. */
void lc__coord_server_stop(lc_coord_server_t *server);

#endif
