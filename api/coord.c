/*
 * The membership coordinator as a public object (laconic.h, lc_coord_*):
 * the parameters a launcher or lccoord passes, turned into the control
 * plane's server (ft/coord_server.h). It reads no environment: a process
 * may run one beside (or instead of) a communicator.
 */
#include "api/comm.h"
#include "core/log.h"
#include "ft/coord_server.h"

#include <stdlib.h>
#include <string.h>

struct lc_coord {
    lc_coord_server_t *server;
};

lc_status_t lc_coord_create(const lc_coord_params_t *params, lc_coord_t **coord_p)
{
    lc_coord_server_params_t sp = { .listen_fd = -1, .peer_timeout_ms = 2000 };
    const char *job_id = "laconic";
    lc_coord_t *c;
    lc_status_t st;

    if (params == NULL || coord_p == NULL || !(params->field_mask & LC_COORD_PARAM_FIELD_JOB_KEY) ||
        params->job_key == NULL || params->job_key[0] == '\0') {
        lc_error("lc_coord_create: the job key is required");
        return LC_ERR_INVALID_ARG;
    }
    if (params->field_mask & LC_COORD_PARAM_FIELD_ADDRESS) sp.addr = params->address;
    if (params->field_mask & LC_COORD_PARAM_FIELD_LISTEN_FD) sp.listen_fd = params->listen_fd;
    if ((params->field_mask & LC_COORD_PARAM_FIELD_JOB_ID) && params->job_id != NULL)
        job_id = params->job_id;
    if ((params->field_mask & LC_COORD_PARAM_FIELD_PEER_TIMEOUT_MS) && params->peer_timeout_ms > 0)
        sp.peer_timeout_ms = params->peer_timeout_ms;
    /* Bound like the ranks bind it (api/comm.c: at most 64 bytes of key). */
    sp.job_key = (const uint8_t *)params->job_key;
    sp.job_key_len = strlen(params->job_key);
    if (sp.job_key_len > 64) sp.job_key_len = 64;
    sp.job_id = lc__hash64(job_id, strlen(job_id), 0);
    c = calloc(1, sizeof(*c));
    if (c == NULL) return LC_ERR_NO_MEMORY;
    st = lc__coord_server_start(&sp, &c->server);
    if (st != LC_OK) {
        free(c);
        return st;
    }
    *coord_p = c;
    return LC_OK;
}

lc_status_t lc_coord_address(const lc_coord_t *coord, char *buf, size_t len)
{
    if (coord == NULL || buf == NULL || len == 0) return LC_ERR_INVALID_ARG;
    lc__coord_server_address(coord->server, buf, len);
    return LC_OK;
}

lc_status_t lc_coord_destroy(lc_coord_t *coord)
{
    if (coord == NULL) return LC_OK;
    lc__coord_server_stop(coord->server);
    free(coord);
    return LC_OK;
}
