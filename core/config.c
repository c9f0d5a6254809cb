/*
 * The one place that reads LC_* environment variables. Values are parsed
 * once (pthread_once) into a process-wide lc_config_t; a malformed value is
 * logged and replaced by its default rather than silently misread.
 */
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static lc_config_t lc__config;
static pthread_once_t lc__config_once = PTHREAD_ONCE_INIT;

static const char *const lc__algo_names[LC_ALGO_COUNT] = { "auto",     "ring",  "tree",
                                                           "recdbl",   "chain", "twophase",
                                                           "pairwise", "sparse" };

const char *lc_algo_str(lc_algo_t algo)
{
    if ((unsigned)algo >= LC_ALGO_COUNT) return "unknown";
    return lc__algo_names[algo];
}

lc_status_t lc__algo_parse(const char *s, lc_algo_t *algo_p)
{
    for (int i = 0; i < LC_ALGO_COUNT; i++) {
        if (strcasecmp(s, lc__algo_names[i]) == 0) {
            *algo_p = (lc_algo_t)i;
            return LC_OK;
        }
    }
    return LC_ERR_INVALID_ARG;
}

/* Unsigned integer with an optional K/M/G suffix (powers of 1024). */
static int lc__parse_size(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-') return -1;
    switch (*end) {
    case 'k':
    case 'K':
        v <<= 10;
        end++;
        break;
    case 'm':
    case 'M':
        v <<= 20;
        end++;
        break;
    case 'g':
    case 'G':
        v <<= 30;
        end++;
        break;
    default: break;
    }
    if (*end == 'i' || *end == 'B') end++;
    if (*end != '\0') return -1;
    *out = v;
    return 0;
}

static unsigned long long lc__env_size(const char *name, unsigned long long def,
                                       unsigned long long min, unsigned long long max)
{
    const char *s = getenv(name);
    unsigned long long v;

    if (s == NULL || *s == '\0') return def;
    if (lc__parse_size(s, &v) != 0 || v < min || v > max) {
        lc_warn("%s=%s is not a number in [%llu, %llu]; using %llu", name, s, min, max, def);
        return def;
    }
    return v;
}

static int lc__env_int(const char *name, int def)
{
    const char *s = getenv(name);
    char *end;
    long v;

    if (s == NULL || *s == '\0') return def;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 1 << 30) {
        lc_warn("%s=%s is not a non-negative integer; ignored", name, s);
        return def;
    }
    return (int)v;
}

static const char *lc__env_str(const char *name, const char *def)
{
    const char *s = getenv(name);
    return (s != NULL && *s != '\0') ? s : def;
}

static int lc__parse_log_level(const char *s)
{
    static const char *const names[] = { "error", "warn", "info", "debug", "trace" };

    if (s == NULL) return LC_LOG_WARN;
    for (int i = 0; i < (int)LC_ARRAY_SIZE(names); i++) {
        if (strcasecmp(s, names[i]) == 0) return i;
    }
    if (strcasecmp(s, "warning") == 0) return LC_LOG_WARN;
    if (s[0] >= '0' && s[0] <= '4' && s[1] == '\0') return s[0] - '0';
    return -1;
}

/* LC_FAULT=kill|stop:RANK:SEQ:MSG into c (fault_sig 0 when unset or bad). */
static void lc__parse_fault(lc_config_t *c, const char *s)
{
    char action[8];
    int rank;
    unsigned long long seq;
    unsigned msg;
    int used = 0;

    c->fault_sig = 0;
    if (s == NULL || *s == '\0') return;
    if (sscanf(s, "%7[a-z]:%d:%llu:%u%n", action, &rank, &seq, &msg, &used) != 4 ||
        s[used] != '\0' || rank < 0 || seq == 0 ||
        (strcmp(action, "kill") != 0 && strcmp(action, "stop") != 0)) {
        lc_warn("LC_FAULT=%s is not kill|stop:RANK:SEQ:MSG (SEQ from 1); ignored", s);
        return;
    }
    c->fault_sig = strcmp(action, "kill") == 0 ? SIGKILL : SIGSTOP;
    c->fault_rank = rank;
    c->fault_seq = seq;
    c->fault_msg = msg;
    lc_warn("LC_FAULT=%s: rank %d will %s itself before its send %u of collective %llu", s, rank,
            action, msg, seq);
}

static void lc__config_load(void)
{
    lc_config_t *c = &lc__config;
    const char *lvl = getenv("LC_LOG");
    int level = lc__parse_log_level(lvl);

    if (level < 0) {
        level = LC_LOG_WARN;
        lc__log_set_level(level);
        lc_warn("LC_LOG=%s is not one of error|warn|info|debug|trace; using warn", lvl);
    }
    c->log_level = level;
    lc__log_set_level(level);

    c->rank =
        lc__env_int("LC_RANK", lc__env_int("OMPI_COMM_WORLD_RANK", lc__env_int("PMI_RANK", -1)));
    c->world_size = lc__env_int("LC_WORLD_SIZE",
                                lc__env_int("OMPI_COMM_WORLD_SIZE", lc__env_int("PMI_SIZE", -1)));
    c->coord = lc__env_str("LC_COORD", NULL);
    c->coord_fd = lc__env_int("LC_COORD_FD", -1);
    c->job_key = lc__env_str("LC_JOB_KEY", NULL);
    c->job_id = lc__env_str("LC_JOB_ID", "laconic");
    c->transport = lc__env_str("LC_TRANSPORT", "tcp");
    c->ifaddr = lc__env_str("LC_IFADDR", NULL);
    c->timeout_ms = (uint32_t)lc__env_size("LC_TIMEOUT_MS", 300000, 1, UINT32_MAX);
    c->peer_timeout_ms = (uint32_t)lc__env_size("LC_PEER_TIMEOUT_MS", 2000, 10, UINT32_MAX);
    c->coordinator = lc__env_str("LC_COORDINATOR", NULL);
    c->coord_timeout_ms = (uint32_t)lc__env_size("LC_COORD_TIMEOUT_MS", 30000, 10, UINT32_MAX);
    c->steps = lc__env_int("LC_STEPS", 0) != 0;
    lc__parse_fault(c, getenv("LC_FAULT"));
    c->connect_timeout_ms = (uint32_t)lc__env_size("LC_CONNECT_TIMEOUT_MS", 30000, 10, UINT32_MAX);
    c->tcp_conns = (int)lc__env_size("LC_TCP_CONNS", 2, 1, 64);
    c->tcp_bufsize = (int)lc__env_size("LC_TCP_BUFSIZE", 0, 0, 1u << 30);
    c->tcp_congestion = lc__env_str("LC_TCP_CONGESTION", NULL);
    c->tcp_rto_min_us = (uint32_t)lc__env_size("LC_TCP_RTO_MIN_US", 10000, 0, 200000);
    c->link_probe_bytes = (uint32_t)lc__env_size("LC_LINK_PROBE_BYTES", 2u << 20, 0, 1u << 30);
    c->chunk_bytes = (size_t)lc__env_size("LC_CHUNK_BYTES", 512u << 10, 64, 1u << 30);
    c->small_bytes = (size_t)lc__env_size("LC_SMALL_BYTES", 16u << 10, 0, 1ull << 40);
    c->tree_bytes = (size_t)lc__env_size("LC_TREE_BYTES", 256u << 10, 0, 1ull << 40);
    c->ring_max_ranks = (int)lc__env_size("LC_RING_MAX_RANKS", 2, 1, 1u << 20);
    c->wan_rtt_us = (uint32_t)lc__env_size("LC_WAN_RTT_US", 250, 0, UINT32_MAX);
    c->checksum = lc__env_int("LC_CHECKSUM", 0) != 0;
    c->coded_tree_ranks = (int)lc__env_size("LC_CODED_TREE_RANKS", 16, 2, 1u << 20);
    c->coded_ring_mbps = (uint32_t)lc__env_size("LC_CODED_RING_MBPS", 8000, 0, UINT32_MAX);
    c->sparse_fill_pct = (int)lc__env_size("LC_SPARSE_FILL_PCT", 2, 0, 100);
    c->algo = LC_ALGO_AUTO;
    const char *algo = lc__env_str("LC_ALGO", NULL);
    if (algo != NULL && lc__algo_parse(algo, &c->algo) != LC_OK) {
        lc_warn("LC_ALGO=%s is not one of "
                "auto|ring|tree|recdbl|chain|twophase|pairwise|sparse; using auto",
                algo);
        c->algo = LC_ALGO_AUTO;
    }
}

const lc_config_t *lc__config_get(void)
{
    pthread_once(&lc__config_once, lc__config_load);
    return &lc__config;
}

void lc__config_print(const lc_config_t *c)
{
    lc_info("config: LC_RANK=%d LC_WORLD_SIZE=%d LC_COORD=%s LC_COORD_FD=%d LC_JOB_ID=%s "
            "LC_JOB_KEY=%s LC_TRANSPORT=%s LC_IFADDR=%s",
            c->rank, c->world_size, c->coord ? c->coord : "(unset)", c->coord_fd, c->job_id,
            c->job_key ? "(set)" : "(unset: insecure default)", c->transport,
            c->ifaddr ? c->ifaddr : "(auto)");
    lc_info("config: LC_TIMEOUT_MS=%u LC_PEER_TIMEOUT_MS=%u LC_CONNECT_TIMEOUT_MS=%u "
            "LC_TCP_CONNS=%d LC_TCP_BUFSIZE=%d LC_TCP_CONGESTION=%s LC_TCP_RTO_MIN_US=%u "
            "LC_LINK_PROBE_BYTES=%u LC_CHECKSUM=%d",
            c->timeout_ms, c->peer_timeout_ms, c->connect_timeout_ms, c->tcp_conns, c->tcp_bufsize,
            c->tcp_congestion ? c->tcp_congestion : "(system)", c->tcp_rto_min_us,
            c->link_probe_bytes, c->checksum);
    lc_info("config: LC_COORDINATOR=%s LC_COORD_TIMEOUT_MS=%u LC_STEPS=%d",
            c->coordinator ? c->coordinator : "(unset)", c->coord_timeout_ms, c->steps);
    lc_info("config: LC_ALGO=%s LC_CHUNK_BYTES=%zu LC_SMALL_BYTES=%zu LC_TREE_BYTES=%zu "
            "LC_RING_MAX_RANKS=%d LC_WAN_RTT_US=%u LC_CODED_TREE_RANKS=%d LC_CODED_RING_MBPS=%u "
            "LC_SPARSE_FILL_PCT=%d",
            lc_algo_str(c->algo), c->chunk_bytes, c->small_bytes, c->tree_bytes, c->ring_max_ranks,
            c->wan_rtt_us, c->coded_tree_ranks, c->coded_ring_mbps, c->sparse_fill_pct);
}
