/*
 * Communicator life cycle: lc_comm_init (environment / params),
 * lc_get_unique_id + lc_comm_init_rank (NCCL style), destroy, queries.
 *
 * Creation order matters: bootstrap (address exchange through the
 * rendezvous), progress engine, transport (connects and authenticates the
 * full mesh, registering its sockets with the engine), schedule, and only then
 * the progress thread, so that everything registered before the thread runs
 * needs no locking.
 */
#include "api/comm.h"
#include "core/util.h"
#include "ft/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LC_UNIQUE_ID_MAGIC 0x4c434944u /* "LCID" */
#define LC_DEFAULT_JOB_KEY "laconic-default-insecure-job-key"

/* Layout of lc_unique_id_t::internal. */
typedef struct {
    uint32_t magic;
    uint16_t port;
    char host[46];
    uint8_t key[32];
    uint64_t job_id;
} lc_unique_id_body_t;

_Static_assert(sizeof(lc_unique_id_body_t) <= LC_UNIQUE_ID_BYTES, "unique id too large");

uint64_t lc__hash64(const void *data, size_t len, uint64_t h)
{
    const uint8_t *p = data;

    if (h == 0) h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

lc_status_t lc_comm_rank(const lc_comm_t *comm, int *rank_p)
{
    if (comm == NULL || rank_p == NULL) return LC_ERR_INVALID_ARG;
    *rank_p = comm->rank;
    return LC_OK;
}

lc_status_t lc_comm_size(const lc_comm_t *comm, int *size_p)
{
    if (comm == NULL || size_p == NULL) return LC_ERR_INVALID_ARG;
    *size_p = comm->size;
    return LC_OK;
}

/* ------------------------------------------------------------- create */

lc_status_t lc__comm_create(const lc_config_t *cfg, int rank, int size, const char *job_key,
                            lc_bootstrap_t *bs, lc_comm_t **comm_p)
{
    lc_comm_t *comm = calloc(1, sizeof(*comm));
    lc_status_t st;
    uint32_t tick_ms;

    if (comm == NULL) {
        if (bs != NULL) bs->ops->destroy(bs);
        return LC_ERR_NO_MEMORY;
    }
    comm->rank = rank;
    comm->size = size;
    comm->first_rank = rank;
    comm->first_size = size;
    comm->peer_map = malloc((size_t)size * sizeof(*comm->peer_map));
    if (comm->peer_map == NULL) {
        if (bs != NULL) bs->ops->destroy(bs);
        free(comm);
        return LC_ERR_NO_MEMORY;
    }
    for (int i = 0; i < size; i++) comm->peer_map[i] = i;
    comm->steps = cfg->steps;
    comm->cfg = *cfg;
    comm->wake_fd = -1;
    comm->next_seq = 1;
    comm->broken = LC_OK;
    comm->left_seq = UINT64_MAX;
    comm->job_key_len = LC_MIN(strlen(job_key), sizeof(comm->job_key));
    memcpy(comm->job_key, job_key, comm->job_key_len);
    comm->job_id = lc__hash64(cfg->job_id, strlen(cfg->job_id), 0);
    pthread_mutex_init(&comm->lock, NULL);

    tick_ms = LC_MAX(10u, LC_MIN(100u, cfg->peer_timeout_ms / 4));
    comm->tick_ms = tick_ms;
    LC_CHECK_GOTO(lc__progress_create(tick_ms, &comm->progress), st, err_free);
    LC_CHECK_GOTO(lc__sched_create(&comm->sched), st, err_progress);

    if (size > 1) {
        lc_ft_params_t fp = {
            .rank = rank,
            .size = size,
            .epoch = 0,
            .peer_timeout_ms = cfg->peer_timeout_ms,
            .progress = comm->progress,
            .event_cb = lc__comm_on_ft_event,
            .event_arg = comm,
            .coordinator = cfg->coordinator,
            .job_key = comm->job_key,
            .job_key_len = comm->job_key_len,
            .job_id = comm->job_id,
            .coord_timeout_ms = cfg->coord_timeout_ms,
        };
        LC_CHECK_GOTO(lc__ft_create(&fp, &comm->ft), st, err_sched);
        lc_tl_params_t tp = {
            .rank = rank,
            .size = size,
            .epoch = 0,
            .progress = comm->progress,
            .bootstrap = bs,
            .job_key = comm->job_key,
            .job_key_len = comm->job_key_len,
            .job_id = comm->job_id,
            .config = &comm->cfg,
            .event_cb = lc__ft_on_tl_event,
            .event_arg = comm->ft,
        };
        comm->tl_ops = lc__tl_find(cfg->transport);
        if (comm->tl_ops == NULL) {
            lc_error("transport '%s' is not available (not built in, or built for another "
                     "interface version)",
                     cfg->transport);
            st = LC_ERR_UNSUPPORTED;
            goto err_sched;
        }
        st = comm->tl_ops->create(&tp, &comm->tl);
        if (st != LC_OK) {
            lc_error("rank %d: %s transport set-up failed: %s", rank, comm->tl_ops->name,
                     lc_status_str(st));
            goto err_sched;
        }
        LC_CHECK_GOTO(lc__ft_start(comm->ft, comm->tl_ops, comm->tl), st, err_tl);
        lc_tl_stats_t ts;
        comm->tl_ops->stats(comm->tl, &ts);
        comm->link.rtt_us = ts.link_rtt_us;
        comm->link.one_host = ts.link_one_host;
        /* The link rate, through the transport (the bootstrap still up). */
        lc_ft_probe_params_t pp = {
            .rank = rank,
            .size = size,
            .ops = comm->tl_ops,
            .tl = comm->tl,
            .progress = comm->progress,
            .bootstrap = bs,
            .bytes = cfg->link_probe_bytes,
            .one_host = ts.link_one_host,
            .timeout_ms = cfg->connect_timeout_ms,
        };
        LC_CHECK_GOTO(lc__ft_probe_link(&pp, &comm->link.mbps), st, err_tl);
    }
    if (bs != NULL) {
        bs->ops->destroy(bs);
        bs = NULL;
    }

    comm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (comm->wake_fd < 0) {
        lc_error("eventfd: %s", strerror(errno));
        st = LC_ERR_SYSTEM;
        goto err_tl;
    }
    LC_CHECK_GOTO(lc__progress_fd_add(comm->progress, comm->wake_fd, EPOLLIN, lc__comm_on_wake,
                                      comm, &comm->wake_h),
                  st, err_wake);
    LC_CHECK_GOTO(lc__progress_tick_add(comm->progress, lc__comm_on_tick, comm), st, err_wake_h);
    LC_CHECK_GOTO(lc__driver_start(comm), st, err_wake_h);
    lc_info("rank %d/%d: communicator ready (transport %s)", rank, size,
            comm->tl_ops ? comm->tl_ops->name : "none");
    *comm_p = comm;
    return LC_OK;

err_wake_h:
    lc__progress_fd_del(comm->progress, comm->wake_h);
err_wake:
    close(comm->wake_fd);
err_tl:
    lc__ft_stop(comm->ft);
    if (comm->tl != NULL) comm->tl_ops->destroy(comm->tl);
err_sched:
    lc__sched_destroy(comm->sched);
err_progress:
    lc__progress_destroy(comm->progress);
    lc__ft_destroy(comm->ft); /* after the engine: its tick refers to it */
err_free:
    if (bs != NULL) bs->ops->destroy(bs);
    free(comm->peer_map);
    pthread_mutex_destroy(&comm->lock);
    free(comm);
    return st;
}

static const char *lc__job_key_or_default(const char *key)
{
    if (key != NULL && *key != '\0') return key;
    lc_info("LC_JOB_KEY is not set: connections are authenticated with a built-in key, "
            "which keeps out mistakes but not attackers");
    return LC_DEFAULT_JOB_KEY;
}

void lc__comm_apply_params(lc_config_t *cfg, const lc_comm_params_t *p)
{
    if (p == NULL) return;
    if (p->field_mask & LC_COMM_PARAM_FIELD_RANK) cfg->rank = p->rank;
    if (p->field_mask & LC_COMM_PARAM_FIELD_SIZE) cfg->world_size = p->size;
    if (p->field_mask & LC_COMM_PARAM_FIELD_COORD) cfg->coord = p->coord;
    if (p->field_mask & LC_COMM_PARAM_FIELD_JOB_KEY) cfg->job_key = p->job_key;
    if ((p->field_mask & LC_COMM_PARAM_FIELD_TIMEOUT_MS) && p->timeout_ms > 0)
        cfg->timeout_ms = p->timeout_ms;
    if ((p->field_mask & LC_COMM_PARAM_FIELD_PEER_TIMEOUT_MS) && p->peer_timeout_ms > 0)
        cfg->peer_timeout_ms = p->peer_timeout_ms;
    if ((p->field_mask & LC_COMM_PARAM_FIELD_TRANSPORT) && p->transport != NULL)
        cfg->transport = p->transport;
    if (p->field_mask & LC_COMM_PARAM_FIELD_STEPS) cfg->steps = p->steps != 0;
    if (p->field_mask & LC_COMM_PARAM_FIELD_COORDINATOR) cfg->coordinator = p->coordinator;
}

lc_status_t lc_comm_init(const lc_comm_params_t *params, lc_comm_t **comm_p)
{
    lc_config_t cfg = *lc__config_get();
    lc_bootstrap_t *bs = NULL;
    const char *key;

    if (comm_p == NULL) {
        lc_error("lc_comm_init: comm_p is NULL");
        return LC_ERR_INVALID_ARG;
    }
    lc__comm_apply_params(&cfg, params);
    if (cfg.world_size < 1 || cfg.rank < 0 || cfg.rank >= cfg.world_size) {
        lc_error("lc_comm_init: rank %d / size %d invalid or unset (set LC_RANK and "
                 "LC_WORLD_SIZE, run under lcrun or mpirun, or pass them in params)",
                 cfg.rank, cfg.world_size);
        return LC_ERR_INVALID_ARG;
    }
    lc__log_set_rank(cfg.rank);
    lc__config_print(&cfg);
    key = lc__job_key_or_default(cfg.job_key);
    /* A rendezvous socket inherited from lcrun is ours to close, used or not. */
    if (cfg.world_size == 1 && cfg.rank == 0 && cfg.coord_fd >= 0) close(cfg.coord_fd);
    if (cfg.world_size > 1) {
        if (cfg.coord == NULL) {
            lc_error("lc_comm_init: LC_COORD (host:port of the rendezvous, served by rank 0) "
                     "is not set");
            return LC_ERR_INVALID_ARG;
        }
        lc_bootstrap_tcp_params_t bp = {
            .rank = cfg.rank,
            .size = cfg.world_size,
            .coord = cfg.coord,
            .listen_fd = (cfg.rank == 0) ? cfg.coord_fd : -1,
            .job_key = (const uint8_t *)key,
            .job_key_len = strlen(key),
            .job_id = lc__hash64(cfg.job_id, strlen(cfg.job_id), 0),
            .timeout_ms = cfg.connect_timeout_ms,
            .external_server = 0,
        };
        LC_CHECK(lc__bootstrap_tcp_create(&bp, &bs));
    }
    return lc__comm_create(&cfg, cfg.rank, cfg.world_size, key, bs, comm_p);
}

/* The IPv4 address peers should use to reach this host: LC_IFADDR, else
 * the first non-loopback interface that is up, else loopback. */
static void lc__advertised_host(const lc_config_t *cfg, char *host, size_t len)
{
    struct ifaddrs *ifs, *i;

    snprintf(host, len, "127.0.0.1");
    if (cfg->ifaddr != NULL) {
        snprintf(host, len, "%s", cfg->ifaddr);
        return;
    }
    if (getifaddrs(&ifs) != 0) return;
    for (i = ifs; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET) continue;
        if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, host, (socklen_t)len);
        break;
    }
    freeifaddrs(ifs);
}

lc_status_t lc_get_unique_id(lc_unique_id_t *id_p)
{
    const lc_config_t *cfg = lc__config_get();
    lc_unique_id_body_t body;
    uint16_t port;

    if (id_p == NULL) return LC_ERR_INVALID_ARG;
    memset(&body, 0, sizeof(body));
    body.magic = LC_UNIQUE_ID_MAGIC;
    LC_CHECK(lc__random_bytes(body.key, sizeof(body.key)));
    LC_CHECK(lc__random_bytes(&body.job_id, sizeof(body.job_id)));
    lc__advertised_host(cfg, body.host, sizeof(body.host));
    LC_CHECK(lc__bootstrap_tcp_serve_detached(cfg->ifaddr, body.key, sizeof(body.key), body.job_id,
                                              cfg->connect_timeout_ms, &port));
    body.port = port;
    memset(id_p, 0, sizeof(*id_p));
    memcpy(id_p->internal, &body, sizeof(body));
    lc_info("unique id: rendezvous at %s:%u", body.host, (unsigned)port);
    return LC_OK;
}

lc_status_t lc_comm_init_rank(int nranks, const lc_unique_id_t *id, int rank, lc_comm_t **comm_p)
{
    return lc_comm_init_rank_params(nranks, id, rank, NULL, comm_p);
}

lc_status_t lc_comm_init_rank_params(int nranks, const lc_unique_id_t *id, int rank,
                                     const lc_comm_params_t *params, lc_comm_t **comm_p)
{
    const uint64_t from_id = LC_COMM_PARAM_FIELD_RANK | LC_COMM_PARAM_FIELD_SIZE |
                             LC_COMM_PARAM_FIELD_COORD | LC_COMM_PARAM_FIELD_JOB_KEY;
    lc_config_t cfg = *lc__config_get();
    lc_unique_id_body_t body;
    lc_bootstrap_t *bs = NULL;
    char coord[64], key[2 * sizeof(body.key) + 1], job[32];

    if (id == NULL || comm_p == NULL || nranks < 1 || rank < 0 || rank >= nranks) {
        lc_error("lc_comm_init_rank: invalid arguments (nranks %d, rank %d)", nranks, rank);
        return LC_ERR_INVALID_ARG;
    }
    if (params != NULL && (params->field_mask & from_id)) {
        lc_error("lc_comm_init_rank_params: rank, size, coord and job key come from the id and "
                 "the arguments, not from params (field_mask 0x%llx)",
                 (unsigned long long)params->field_mask);
        return LC_ERR_INVALID_ARG;
    }
    lc__comm_apply_params(&cfg, params);
    memcpy(&body, id->internal, sizeof(body));
    if (body.magic != LC_UNIQUE_ID_MAGIC || memchr(body.host, '\0', sizeof(body.host)) == NULL) {
        lc_error("lc_comm_init_rank: not an id made by lc_get_unique_id");
        return LC_ERR_INVALID_ARG;
    }
    lc__log_set_rank(rank);
    snprintf(coord, sizeof(coord), "%s:%u", body.host, (unsigned)body.port);
    for (size_t i = 0; i < sizeof(body.key); i++) snprintf(key + 2 * i, 3, "%02x", body.key[i]);
    snprintf(job, sizeof(job), "%016llx", (unsigned long long)body.job_id);
    cfg.rank = rank;
    cfg.world_size = nranks;
    cfg.coord = NULL;
    cfg.job_id = job; /* only hashed during create; not kept */
    if (nranks > 1) {
        lc_bootstrap_tcp_params_t bp = {
            .rank = rank,
            .size = nranks,
            .coord = coord,
            .listen_fd = -1,
            .job_key = body.key,
            .job_key_len = sizeof(body.key),
            .job_id = body.job_id,
            .timeout_ms = cfg.connect_timeout_ms,
            .external_server = 1,
        };
        LC_CHECK(lc__bootstrap_tcp_create(&bp, &bs));
    }
    lc_status_t st = lc__comm_create(&cfg, rank, nranks, key, bs, comm_p);
    if (st == LC_OK) (*comm_p)->cfg.job_id = "unique-id";
    return st;
}

lc_status_t lc_comm_destroy(lc_comm_t *comm)
{
    uint64_t last_seq;

    if (comm == NULL) return LC_OK;
    /* With the thread stopped, this thread is the only one touching the
     * engine, the transport and the schedule. */
    lc__driver_stop(comm);
    /* The last collective this rank took part in: failing the queue below
     * starts (and fails) the queued ones, which it never joined. */
    last_seq = comm->started_seq;
    lc__comm_fail_all(comm, LC_ERR_REVOKED);
    lc__comm_codecs_free(comm);
    lc__progress_fd_del(comm->progress, comm->wake_h);
    close(comm->wake_fd);
    /* Tell the peers we leave on purpose, after the last collective we
     * took part in: theirs up to it may still complete with what we sent. */
    if (comm->ft != NULL) {
        /* The coordinator hears it too: a rank that is done is not failed. */
        lc__ft_leave(comm->ft);
        lc__ft_goodbye(comm->ft, last_seq);
        lc__ft_stop(comm->ft);
    }
    if (comm->tl != NULL) comm->tl_ops->destroy(comm->tl);
    lc__comm_member_free(comm);
    lc__sched_destroy(comm->sched);
    lc__progress_destroy(comm->progress);
    lc__ft_destroy(comm->ft); /* after the engine: its tick refers to it */
    pthread_mutex_destroy(&comm->lock);
    free(comm);
    return LC_OK;
}
