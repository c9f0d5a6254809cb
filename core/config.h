/*
 * Every LC_* environment variable is read here, once per process, and
 * nowhere else. lc__config_get() returns the parsed values; LC_LOG=info
 * prints them all. Per-communicator overrides (lc_comm_params_t) are applied
 * by the caller on a copy.
 */
#ifndef LC_CORE_CONFIG_H
#define LC_CORE_CONFIG_H

#include "laconic.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int log_level;       /* LC_LOG: error|warn|info|debug|trace (default warn) */
    int rank;            /* LC_RANK, else OMPI_COMM_WORLD_RANK, else PMI_RANK; -1 if unset */
    int world_size;      /* LC_WORLD_SIZE, else OMPI_COMM_WORLD_SIZE, else PMI_SIZE; -1 if unset */
    const char *coord;   /* LC_COORD "host:port" (NULL if unset) */
    int coord_fd;        /* LC_COORD_FD: listening socket inherited from lcrun (-1 if unset) */
    const char *job_key; /* LC_JOB_KEY (NULL if unset: an insecure built-in key is used) */
    const char *job_id;  /* LC_JOB_ID (default "laconic") */
    const char *transport;    /* LC_TRANSPORT (default "tcp") */
    const char *ifaddr;       /* LC_IFADDR: IPv4 address to listen on and advertise (NULL = auto) */
    uint32_t timeout_ms;      /* LC_TIMEOUT_MS: collective no-progress timeout (default 300000) */
    uint32_t peer_timeout_ms; /* LC_PEER_TIMEOUT_MS: silent peer declared lost (default 2000) */
    const char *coordinator;  /* LC_COORDINATOR "host:port" of the membership coordinator
                                 (NULL: none) */
    uint32_t coord_timeout_ms; /* LC_COORD_TIMEOUT_MS: how long view changes wait for an
                                  unreachable coordinator (default 30000) */
    int steps;                 /* LC_STEPS: keep each step's state for lc_step_commit (default 0) */
    /* LC_FAULT=kill|stop:RANK:SEQ:MSG (fault injection, for tests): rank RANK
     * raises SIGKILL or SIGSTOP on itself just before posting its send
     * number MSG (from 0, in the order it posts them) of collective SEQ.
     * fault_sig 0: none. */
    int fault_sig;
    int fault_rank;
    uint64_t fault_seq;
    uint32_t fault_msg;
    uint32_t connect_timeout_ms; /* LC_CONNECT_TIMEOUT_MS: rendezvous + wire-up (default 30000) */
    int tcp_conns;               /* LC_TCP_CONNS: data connections per peer (default 2) */
    int tcp_bufsize; /* LC_TCP_BUFSIZE: SO_SNDBUF/SO_RCVBUF bytes (default 0 = kernel autotuning) */
    const char *tcp_congestion; /* LC_TCP_CONGESTION: congestion control of every connection
                                   (NULL = the system's default) */
    uint32_t tcp_rto_min_us;    /* LC_TCP_RTO_MIN_US: floor of every connection's retransmission
                                   timeout in us (default 10000; 0 = the system's floor) */
    uint32_t link_probe_bytes;  /* LC_LINK_PROBE_BYTES: bytes each rank sends its ring
                                   neighbour at set-up to measure the link rate (default 2 MiB;
                                   0 = do not measure) */
    lc_algo_t algo;     /* LC_ALGO: auto|ring|tree|recdbl|chain|twophase|pairwise|sparse (default
                           auto) */
    size_t chunk_bytes; /* LC_CHUNK_BYTES: pipeline chunk (default 512 KiB) */
    size_t small_bytes; /* LC_SMALL_BYTES: allreduce at or below uses recursive doubling (default 16
                           KiB) */
    size_t tree_bytes;  /* LC_TREE_BYTES: allreduce at or below uses the tree (default 256 KiB) */
    int ring_max_ranks; /* LC_RING_MAX_RANKS: above tree_bytes with every rank on one host,
                           the ring on at most this many ranks, the tree on more (default 2;
                           ranks on several hosts get the ring) */
    uint32_t wan_rtt_us;      /* LC_WAN_RTT_US: links whose round trip, measured at set-up, is at
                                 least this long are treated as long-haul by the algorithm choice
                                 (default 250; 0 = never) */
    int checksum;             /* LC_CHECKSUM: CRC32C on every payload (default 0) */
    int coded_tree_ranks;     /* LC_CODED_TREE_RANKS: compressed allreduce on short links uses the
                                 double binary tree from this many ranks up, two-phase below
                                 (default 16) */
    uint32_t coded_ring_mbps; /* LC_CODED_RING_MBPS: compressed allreduce between hosts uses
                                 the ring when the link rate measured at set-up times the
                                 codec's ratio is at most this many Mbit/s (default 8000;
                                 0 = never) */
    int sparse_fill_pct;      /* LC_SPARSE_FILL_PCT: topk allreduce uses the sparse all-gather while
                                 ranks x density is at most this many percent (default 2) */
} lc_config_t;

/* The process-wide configuration, parsed on first use (thread-safe). */
const lc_config_t *lc__config_get(void);

/* Log every value at info level. */
void lc__config_print(const lc_config_t *cfg);

/* Parse an algorithm name (lc_algo_str's); LC_ERR_INVALID_ARG if unknown. */
lc_status_t lc__algo_parse(const char *s, lc_algo_t *algo_p);

#endif
