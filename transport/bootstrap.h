/*
 * Bootstrap: the small out-of-band exchange a transport needs before it can
 * connect (each rank's listening address). Two implementations: the TCP
 * rendezvous (rank 0 or lcrun serves LC_COORD; lc_get_unique_id) and MPI
 * (MPI_Allgather on the user's communicator).
 */
#ifndef LC_TRANSPORT_BOOTSTRAP_H
#define LC_TRANSPORT_BOOTSTRAP_H

#include "laconic.h"

#include <stddef.h>
#include <stdint.h>

typedef struct lc_bootstrap lc_bootstrap_t;

typedef struct lc_bootstrap_ops {
    /* Every rank contributes len bytes; out receives size * len bytes, rank
     * r's at offset r * len. len must be equal on all ranks. Blocking, bounded
     * by the connect timeout. */
    lc_status_t (*allgather)(lc_bootstrap_t *bs, const void *mine, size_t len, void *out);
    void (*destroy)(lc_bootstrap_t *bs);
} lc_bootstrap_ops_t;

/* Every bootstrap starts with this header. */
struct lc_bootstrap {
    const lc_bootstrap_ops_t *ops;
    int rank;
    int size;
    /* IPv4 address this process used to reach the rendezvous, "" if unknown:
     * the interface peers can most likely reach it on too. */
    char local_ip[46];
};

typedef struct {
    int rank;
    int size;
    const char *coord; /* "host:port" of the rendezvous */
    int listen_fd;     /* rank 0: serve on this already-listening socket (-1 = bind coord) */
    const uint8_t *job_key;
    size_t job_key_len;
    uint64_t job_id;
    uint32_t timeout_ms; /* give up (LC_ERR_COORD_LOST) after this */
    int external_server; /* 1: a server already runs elsewhere (lc_get_unique_id), so
                            rank 0 only connects as a client; 0: rank 0 serves */
} lc_bootstrap_tcp_params_t;

/*
 * Rendezvous over TCP. Rank 0 starts a server thread on coord (or listen_fd)
 * that lives until every rank has checked in for every round and hung up;
 * every rank (0 included) connects to it as a client and authenticates with
 * an HMAC of the server's nonce under the job key.
 */
lc_status_t lc__bootstrap_tcp_create(const lc_bootstrap_tcp_params_t *params,
                                     lc_bootstrap_t **bs_p);

/*
 * A detached rendezvous server for lc_get_unique_id(): listens on host (NULL
 * or "" = all interfaces) and an ephemeral port, serves one communicator of
 * any size (taken from the first client), then exits. Writes the port chosen.
 */
lc_status_t lc__bootstrap_tcp_serve_detached(const char *host, const uint8_t *job_key,
                                             size_t job_key_len, uint64_t job_id,
                                             uint32_t timeout_ms, uint16_t *port_p);

#endif
